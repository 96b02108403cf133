import Foundation

/// The type of a formula's result, known when the formula is saved (so the column it fills, its
/// filters and its sorting are known too).
public indirect enum FormulaType: Sendable, Equatable, CustomStringConvertible {
    case number, text, boolean
    /// A calendar day in the hospital's time zone.
    case date
    /// An instant (shown in the hospital's time zone).
    case dateTime
    /// Several values (a multi-select, people, the values of a lookup through a link).
    case list(FormulaType)
    /// Not known until the value is there (a blank, an error); fits any place.
    case any

    public var description: String {
        switch self {
        case .number: return "number"
        case .text: return "text"
        case .boolean: return "true/false"
        case .date: return "date"
        case .dateTime: return "date and time"
        case .list(let element): return "list of \(element)"
        case .any: return "any"
        }
    }

    var isDate: Bool { self == .date || self == .dateTime }

    /// The one type two results share (IF's branches, SWITCH's cases), nil when they do not.
    static func unify(_ a: FormulaType, _ b: FormulaType) -> FormulaType? {
        if a == b { return a }
        if a == .any { return b }
        if b == .any { return a }
        if a.isDate && b.isDate { return .dateTime }
        if case .list(let x) = a, case .list(let y) = b { return unify(x, y).map { .list($0) } }
        return nil
    }
}

/// A cell's error: shown in the cell with its reason, never a crash and never a wrong number.
public struct FormulaError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Division by zero.
        case divideByZero = "DIV0"
        /// A value of the wrong kind or outside the function's range (SQRT(-1), LEFT(x, -1)).
        case value = "VALUE"
        /// A number too large to represent.
        case number = "NUM"
        /// ERROR() or a referenced field's own error.
        case custom = "ERROR"
    }
    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) { self.code = code; self.reason = reason }

    public var description: String { "#\(code.rawValue) \(reason)" }
}

/// A value while a formula is evaluated.
public enum FormulaValue: Sendable, Equatable, CustomStringConvertible {
    case blank
    case number(Double)
    case text(String)
    case boolean(Bool)
    /// Midnight, hospital time, of a calendar day.
    case date(Date)
    case dateTime(Date)
    case list([FormulaValue])
    case error(FormulaError)

    public var isBlank: Bool {
        switch self {
        case .blank: return true
        case .text(let t): return t.isEmpty
        case .list(let items): return items.allSatisfy(\.isBlank)
        default: return false
        }
    }

    public var error: FormulaError? {
        if case .error(let e) = self { return e }
        if case .list(let items) = self { return items.lazy.compactMap(\.error).first }
        return nil
    }

    public var description: String { FormulaText.display(self, timeZone: FormulaText.utc) }
}

/// How values read as text (concatenation, TEXT-like functions, the cell's display when the
/// column is text): whole numbers without a decimal point, up to ten decimals otherwise.
enum FormulaText {
    static let utc = TimeZone(identifier: "UTC")!

    static func number(_ n: Double) -> String {
        if n.isNaN { return "NaN" }
        if n == n.rounded(), abs(n) < 1e15 { return String(Int64(n)) }
        var s = String(format: "%.10f", n)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func display(_ value: FormulaValue, timeZone: TimeZone) -> String {
        switch value {
        case .blank: return ""
        case .number(let n): return number(n)
        case .text(let t): return t
        case .boolean(let b): return b ? "TRUE" : "FALSE"
        case .date(let d): return format(d, "yyyy-MM-dd", timeZone)
        case .dateTime(let d): return format(d, "yyyy-MM-dd HH:mm", timeZone)
        case .list(let items): return items.filter { !$0.isBlank }.map { display($0, timeZone: timeZone) }.joined(separator: ", ")
        case .error(let e): return e.description
        }
    }

    static func format(_ date: Date, _ pattern: String, _ zone: TimeZone) -> String {
        // The two forms cells are stored and shown in, without a formatter (made per call, they
        // cost more than the rest of a record's write).
        if pattern == "yyyy-MM-dd" || pattern == "yyyy-MM-dd HH:mm" {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = zone
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
            let day = String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
            return pattern == "yyyy-MM-dd" ? day : day + String(format: " %02d:%02d", c.hour ?? 0, c.minute ?? 0)
        }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.calendar = Calendar(identifier: .gregorian)
        f.timeZone = zone
        f.dateFormat = pattern
        return f.string(from: date)
    }
}
