import Foundation
import RoundsCore

enum Formatting {
    /// "2026-11-21 08:30" in the hospital's time zone (China Standard Time unless configured).
    static func dateTime(_ date: Date?) -> String {
        guard let date else { return "" }
        let f = DateFormatter()
        f.locale = Foundation.Locale(identifier: "en_US_POSIX")
        f.timeZone = hospitalTimeZone
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: date)
    }

    static let hospitalTimeZone: TimeZone = {
        if let name = ProcessInfo.processInfo.environment["ROUNDS_TIME_ZONE"], let zone = TimeZone(identifier: name) { return zone }
        return TimeZone(identifier: "Asia/Shanghai") ?? .current
    }()

    /// An HL7 abnormal flag in words ("HH" → 危急偏高); unknown flags as sent.
    static func flag(_ flag: String?, _ t: [String: String]) -> String {
        guard let flag, !flag.isEmpty else { return "" }
        return t["flag_\(flag.uppercased())"] ?? flag
    }

    /// Why a value is critical, in the reader's words: the mapper and reports record it in a
    /// fixed English form ("abnormal flag HH", "above 6.2 mmol/L", "reported by 钱丽").
    static func reason(_ reason: String?, _ t: [String: String]) -> String {
        guard let reason, !reason.isEmpty else { return "" }
        guard let parsed = CriticalReason(reason) else { return reason }
        let value = parsed.kind == .flag || parsed.kind == .finding ? flag(parsed.value, t) : parsed.value
        return (t["reason_\(parsed.kind.rawValue)"] ?? "%s").replacingOccurrences(of: "%s", with: value)
    }

    /// "2026-12-03" in the hospital's time zone: the day separators of a conversation.
    static func day(_ date: Date) -> String { dayFormatter().string(from: date) }

    /// The start of a day written "2026-12-03" (hospital time), or nil.
    static func day(_ text: String) -> Date? { dayFormatter().date(from: text) }

    private static func dayFormatter() -> DateFormatter {
        let f = DateFormatter()
        f.locale = Foundation.Locale(identifier: "en_US_POSIX")
        f.timeZone = hospitalTimeZone
        f.dateFormat = "yyyy-MM-dd"
        return f
    }

    /// "12 分钟前" / "12 min ago"; hours past the first hour.
    static func ago(_ date: Date, now: Date, _ t: [String: String]) -> String {
        let minutes = max(0, Int(now.timeIntervalSince(date) / 60))
        if minutes < 1 { return t["ago_now"] ?? "" }
        if minutes < 60 { return (t["ago_minutes"] ?? "%d").replacingOccurrences(of: "%d", with: String(minutes)) }
        return (t["ago_hours"] ?? "%d %m").replacingOccurrences(of: "%d", with: String(minutes / 60))
            .replacingOccurrences(of: "%m", with: String(minutes % 60))
    }

    /// Age in whole years from a yyyy-MM-dd birth date.
    static func age(birthDate: String?, now: Date) -> Int? {
        guard let birthDate else { return nil }
        let parts = birthDate.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = hospitalTimeZone
        let today = calendar.dateComponents([.year, .month, .day], from: now)
        guard let y = today.year, let m = today.month, let d = today.day else { return nil }
        return y - parts[0] - ((m, d) < (parts[1], parts[2]) ? 1 : 0)
    }
}
