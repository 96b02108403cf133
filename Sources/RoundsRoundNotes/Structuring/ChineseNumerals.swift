import Foundation

/// Numbers as doctors say them: "三十八点五" 38.5, "一百二" 120 (the trailing unit is implied,
/// as in speech), "一百零五" 105, "两千" 2000, "六点九" 6.9, and Arabic digits as they are.
enum ChineseNumerals {
    static let digits: [Character: Int] = ["零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
                                           "六": 6, "七": 7, "八": 8, "九": 9]
    static let units: [Character: Int] = ["十": 10, "百": 100, "千": 1000, "万": 10000]
    /// Every character a spoken number may hold (the decimal point included).
    static let characters = Set(digits.keys).union(units.keys).union(["点"])

    /// The value of a run of numeral characters, or nil when it is not a number.
    static func value(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let arabic = Double(trimmed.replacingOccurrences(of: "．", with: ".")) { return arabic }
        guard !trimmed.isEmpty, trimmed.allSatisfy({ characters.contains($0) }) else { return nil }
        let parts = trimmed.split(separator: "点", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = integer(String(parts[0])) else { return nil }
        guard parts.count == 2 else { return Double(whole) }
        // After the point each digit is read on its own: 三点一四 = 3.14.
        var fraction = "", rest = parts[1]
        guard !rest.isEmpty else { return nil }
        while let c = rest.first, let d = digits[c] { fraction.append(String(d)); rest = rest.dropFirst() }
        guard rest.isEmpty else { return nil }
        return Double("\(whole).\(fraction)")
    }

    /// 一百二十三 123; 一百二 120 (a lone digit after a unit is one unit lower); 十五 15.
    static func integer(_ text: String) -> Int? {
        if text.isEmpty { return nil }
        if text.allSatisfy({ digits[$0] != nil }) {
            // Read digit by digit (幺三八 = 138), as numbers are read out.
            return Int(text.map { String(digits[$0]!) }.joined())
        }
        var total = 0, section = 0, pending: Int? = nil, lastUnit = 0
        for c in text {
            if let d = digits[c] {
                if pending != nil, d != 0 { return nil }  // 二三十: two digits in a row is not a number
                pending = d == 0 ? nil : d
                if d == 0 { lastUnit = 0 }
            } else if let u = units[c] {
                if u == 10000 {
                    section += pending ?? 0
                    total += max(section, 1) * u
                    section = 0; pending = nil; lastUnit = 10000
                    continue
                }
                section += (pending ?? (section == 0 && u == 10 ? 1 : 0)) * u
                if pending == nil && !(section == u && u == 10) && u != 10 { return nil }
                pending = nil
                lastUnit = u
            } else {
                return nil
            }
        }
        if let p = pending {
            // 一百二 = 120, 三千五 = 3500, but 一百零二 = 102 (the zero reset the implied unit).
            section += lastUnit >= 100 ? p * lastUnit / 10 : p
        }
        return total + section
    }

    /// Formats a value as the record writes it: no trailing ".0".
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e12 { return String(Int(value)) }
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}
