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
