/// The two languages the UI ships in. zh-CN is the default for every new user.
public enum Locale: String, Sendable, CaseIterable, Codable {
    case zhCN = "zh-CN"
    case en = "en"

    public static let `default`: Locale = .zhCN

    /// Accepts "zh", "zh-CN", "zh_CN", "en", "en-US", … and falls back to nil.
    public init?(tag: String) {
        let lower = tag.lowercased().replacingOccurrences(of: "_", with: "-")
        if lower.hasPrefix("zh") { self = .zhCN }
        else if lower.hasPrefix("en") { self = .en }
        else { return nil }
    }
}
