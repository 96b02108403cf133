import Foundation
import RoundsCore

/// A value as its column keeps it.
enum StoredValue: Sendable, Equatable {
    case null
    case text(String)
    case real(Double)
    case boolean(Bool)

    var bind: any Encodable & Sendable { bind(as: .text) }

    /// The value to bind; a null carries its column's type (PostgreSQL refuses a text NULL for a
    /// number column).
    func bind(as storage: TableDialect.Storage) -> any Encodable & Sendable {
        switch self {
        case .null:
            switch storage {
            case .text: return String?.none
            case .real: return Double?.none
            case .boolean: return Bool?.none
            }
        case .text(let t): return t
        case .real(let n): return n
        case .boolean(let b): return b
        }
    }
}

/// Why a value does not fit a field: named by field, so a bulk write can say which record and
/// which field were refused and why.
public struct CellProblem: Error, Sendable, Equatable, Codable {
    public var field: String
    public var reason: String
    public init(field: String, reason: String) { self.field = field; self.reason = reason }
}

/// Reads, checks and converts the values of one field kind: what a person typed (or an API
/// sent) to what the column keeps, and back.
struct FieldCodec {
    let field: TableField
    let kind: FieldKind
    let options: FieldOptions
    let timeZone: TimeZone

    init(_ field: TableField, timeZone: TimeZone) {
        self.field = field
        self.kind = field.fieldKind
        self.options = field.fieldOptions
        self.timeZone = timeZone
    }

    static let maximumText = 100_000

    func problem(_ reason: String) -> CellProblem { CellProblem(field: field.name, reason: reason) }

    var storage: TableDialect.Storage {
        switch resultType {
        case .number, .dateTime: return .real
        case .boolean: return .boolean
        default: return .text
        }
    }

    /// The type a formula sees (and, for a formula field, the type of its result).
    var resultType: FormulaType {
        kind == .formula ? Self.formulaType(code: options.resultType) : formulaType(of: kind)
    }

    static func code(of type: FormulaType) -> String {
        switch type {
        case .number: return "number"
        case .text, .any: return "text"
        case .boolean: return "boolean"
        case .date: return "date"
        case .dateTime: return "date_time"
        case .list: return "list"
        }
    }

    static func formulaType(code: String?) -> FormulaType {
        switch code {
        case "number": return .number
        case "boolean": return .boolean
        case "date": return .date
        case "date_time": return .dateTime
        case "list": return .list(.text)
        default: return .text
        }
    }

    /// How a formula sees this field.
    func formulaType(of kind: FieldKind) -> FormulaType {
        switch kind {
        case .number, .currency, .percent, .rating, .progress, .duration, .autoNumber: return .number
        case .checkbox: return .boolean
        case .date: return .date
        case .dateTime, .createdTime, .modifiedTime: return .dateTime
        case .multiSelect, .link, .lookup: return .list(.text)
        case .rollup:
            switch options.aggregate {
            case .arrayjoin?: return .text
            case .arrayunique?: return .list(.text)
            default: return .number
            }
        case .person: return options.many == true ? .list(.text) : .text
        case .formula: return Self.formulaType(code: options.resultType)
        default: return .text
        }
    }

    var calendar: Calendar {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = timeZone
        return c
    }

    // MARK: In

    /// The column's value for what was given. Person, department and patient ids are checked
    /// against the directory by the service (they need the database); here only their shape.
    func store(_ value: CellValue) throws -> StoredValue {
        if kind.isComputed { throw problem("is computed by Rounds and cannot be set") }
        if value.isEmpty, kind != .checkbox { return .null }
        switch kind {
        case .text, .phone, .email, .url, .longText, .department, .patient:
            let text = try self.text(value)
            guard text.count <= Self.maximumText else { throw problem("is longer than \(Self.maximumText) characters") }
            if kind != .longText, text.contains(where: \.isNewline) { throw problem("is one line; use a long-text field for several") }
            switch kind {
            case .phone:
                guard text.count <= 30, text.allSatisfy({ $0.isASCII && ($0.isNumber || "+-() ".contains($0)) }), text.contains(where: \.isNumber) else {
                    throw problem("“\(text)” is not a telephone number")
                }
            case .email:
                guard text.range(of: #"^[^@\s]+@[^@\s]+\.[^@\s]+$"#, options: .regularExpression) != nil else { throw problem("“\(text)” is not an e-mail address") }
            case .url:
                // Only web addresses: a javascript: or data: link would run in the reader's session.
                guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http", url.host != nil else {
                    throw problem("“\(text)” is not an http(s) address")
                }
            default: break
            }
            return .text(text)
        case .number, .currency, .percent, .progress, .duration:
            var n = try number(value)
            if kind == .progress, !(0...1).contains(n) { throw problem("is a fraction from 0 to 1 (50 % is 0.5)") }
            if kind == .duration, n < 0 { throw problem("a duration cannot be negative") }
            if let p = precision { n = FormulaFunctions.roundHalfAway(n, p) }
            return .real(n)
        case .rating:
            let n = try number(value)
            let top = options.max ?? 5
            guard n == n.rounded(), (0...Double(top)).contains(n) else { throw problem("is a whole number of stars from 0 to \(top)") }
            return .real(n)
        case .checkbox:
            switch value {
            case .null: return .boolean(false)
            case .bool(let b): return .boolean(b)
            case .number(let n) where n == 0 || n == 1: return .boolean(n == 1)
            case .text(let t):
                switch t.trimmingCharacters(in: .whitespaces).lowercased() {
                case "true", "yes", "y", "1", "是", "√", "✓": return .boolean(true)
                case "false", "no", "n", "0", "否", "": return .boolean(false)
                default: throw problem("“\(t)” is not yes or no")
                }
            default: throw problem("is yes or no (true/false)")
            }
        case .date:
            guard let day = date(value) else { throw problem("“\(describe(value))” is not a date (2026-12-04)") }
            return .text(Self.dayText(day, timeZone))
        case .dateTime:
            guard let instant = date(value) else { throw problem("“\(describe(value))” is not a date and time (2026-12-04T10:00:00+08:00)") }
            return .real(instant.timeIntervalSince1970)
        case .singleSelect:
            return .text(try choice(try text(value)).id)
        case .multiSelect:
            let names: [String]
            switch value {
            case .list(let items): names = try items.map(text)
            case .text(let t): names = t.split(whereSeparator: { $0 == "," || $0 == "，" || $0 == "、" }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            default: throw problem("is a list of choices")
            }
            var ids: [String] = []
            for name in names { let id = try choice(name).id; if !ids.contains(id) { ids.append(id) } }
            return ids.isEmpty ? .null : .text(Self.json(ids))
        case .person:
            let ids: [String]
            switch value {
            case .list(let items): ids = try items.map(text)
            default: ids = [try text(value)]
            }
            guard options.many == true || ids.count == 1 else { throw problem("takes one person") }
            guard ids.allSatisfy({ !$0.isEmpty && $0.count <= 64 }) else { throw problem("is staff ids") }
            var unique: [String] = []
            for id in ids where !unique.contains(id) { unique.append(id) }
            return options.many == true ? .text(Self.json(unique)) : .text(ids[0])
        case .link:
            // Record ids, "#12" (a record's number) or the linked record's name; the service
            // finds each in the linked table.
            let keys: [String]
            switch value {
            case .list(let items): keys = try items.map(text)
            case .text(let t): keys = t.split(whereSeparator: { $0 == "," || $0 == "，" || $0 == "、" || $0.isNewline })
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            default: keys = [try text(value)]
            }
            guard keys.count <= 1_000 else { throw problem("links at most 1,000 records") }
            guard options.many == true || keys.count <= 1 else { throw problem("links one record") }
            var unique: [String] = []
            for k in keys where !unique.contains(k) { unique.append(k) }
            return unique.isEmpty ? .null : .text(Self.json(unique))
        case .formula, .autoNumber, .createdTime, .modifiedTime, .createdBy, .modifiedBy, .lookup, .rollup:
            throw problem("is computed by Rounds and cannot be set")
        }
    }

    var precision: Int? {
        switch kind {
        case .number, .currency, .percent: return options.precision.map { min(max($0, 0), 8) }
        default: return nil
        }
    }

    func text(_ value: CellValue) throws -> String {
        switch value {
        case .text(let t): return t
        case .number(let n): return FormulaText.number(n)
        case .bool(let b): return b ? "true" : "false"
        case .null: return ""
        case .list(let items) where items.count == 1: return try text(items[0])
        case .list: throw problem("takes one value, not a list")
        }
    }

    func number(_ value: CellValue) throws -> Double {
        switch value {
        case .number(let n):
            guard n.isFinite else { throw problem("is not a finite number") }
            return n
        case .text(let t):
            var s = t.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: "")
            if kind == .currency { s = s.trimmingCharacters(in: CharacterSet(charactersIn: "¥￥$€£ ")) }
            if kind == .duration, let seconds = Self.duration(s) { return seconds }
            var scale = 1.0
            if (kind == .percent || kind == .progress), s.hasSuffix("%") { s.removeLast(); scale = 0.01 }
            guard let n = Double(s), n.isFinite else { throw problem("“\(t)” is not a number") }
            return n * scale
        case .bool: throw problem("is a number, not yes/no")
        case .list(let items) where items.count == 1: return try number(items[0])
        default: throw problem("is a number")
        }
    }

    /// "1:30" (hours:minutes) or "1:30:15" as seconds.
    static func duration(_ s: String) -> Double? {
        let parts = s.split(separator: ":").map(String.init)
        guard (2...3).contains(parts.count), let h = Double(parts[0]), let m = Double(parts[1]), (0..<60).contains(m) else { return nil }
        let sec = parts.count == 3 ? Double(parts[2]) : 0
        guard let sec, (0..<60).contains(sec) else { return nil }
        return h * 3600 + m * 60 + sec
    }

    func date(_ value: CellValue) -> Date? {
        guard case .text(let t) = value else { return nil }
        return DateMath.parse(t, FormulaEnvironment(now: Date(), timeZone: timeZone))
    }

    func choice(_ nameOrID: String) throws -> SelectOption {
        let choices = options.choices ?? []
        if let c = choices.first(where: { $0.id == nameOrID }) ?? choices.first(where: { $0.name == nameOrID }) { return c }
        let names = choices.map(\.name).joined(separator: "、")
        throw problem("“\(nameOrID)” is not one of the choices (\(names))")
    }

    func describe(_ value: CellValue) -> String { (try? text(value)) ?? value.description }

    static func dayText(_ date: Date, _ zone: TimeZone) -> String { FormulaText.format(date, "yyyy-MM-dd", zone) }

    static func json(_ items: [String]) -> String {
        String(decoding: try! JSONEncoder().encode(items), as: UTF8.self)
    }

    static func jsonList(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    // MARK: Out

    /// The API's value of what the column keeps.
    func cell(_ stored: StoredValue) -> CellValue {
        switch (stored, kind) {
        case (.null, .checkbox): return .bool(false)
        case (.null, _): return .null
        case (.real(let n), .dateTime), (.real(let n), .createdTime), (.real(let n), .modifiedTime):
            return .text(Self.isoText(Date(timeIntervalSince1970: n), timeZone))
        case (.real(let n), .formula) where resultType == .dateTime:
            return .text(Self.isoText(Date(timeIntervalSince1970: n), timeZone))
        case (.real(let n), _): return .number(n)
        case (.boolean(let b), _): return .bool(b)
        case (.text(let t), .singleSelect): return .text(options.choices?.first { $0.id == t }?.name ?? t)
        case (.text(let t), .multiSelect):
            return .list(Self.jsonList(t).map { id in .text(options.choices?.first { $0.id == id }?.name ?? id) })
        case (.text(let t), .person) where options.many == true: return .list(Self.jsonList(t).map { .text($0) })
        case (.text(let t), .link): return .list(Self.jsonList(t).map { .text($0) })
        case (.text(let t), .formula) where resultType == .list(.text): return .list(Self.jsonList(t).map { .text($0) })
        case (.text(let t), _): return .text(t)
        }
    }

    static func isoText(_ date: Date, _ zone: TimeZone) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = zone
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    /// How a formula reads the stored value.
    func formulaValue(_ stored: StoredValue) -> FormulaValue {
        switch stored {
        case .null: return kind == .checkbox ? .boolean(false) : .blank
        case .boolean(let b): return .boolean(b)
        case .real(let n):
            return resultType == .dateTime ? .dateTime(Date(timeIntervalSince1970: n)) : .number(n)
        case .text(let t):
            switch kind {
            case .formula where resultType == .date, .date:
                return DateMath.parse(t, FormulaEnvironment(now: Date(), timeZone: timeZone)).map { .date($0) } ?? .blank
            case .singleSelect: return .text(options.choices?.first { $0.id == t }?.name ?? t)
            case .multiSelect: return .list(Self.jsonList(t).map { id in .text(options.choices?.first { $0.id == id }?.name ?? id) })
            case .person where options.many == true: return .list(Self.jsonList(t).map { .text($0) })
            case .formula where resultType == .list(.text): return .list(Self.jsonList(t).map { .text($0) })
            default: return .text(t)
            }
        }
    }

    /// What a formula's result is kept as in its column.
    static func stored(_ value: FormulaValue, type: FormulaType, timeZone: TimeZone) -> StoredValue {
        switch value {
        case .blank, .error: return .null
        case .number(let n): return type == .text ? .text(FormulaText.number(n)) : .real(n)
        case .boolean(let b): return type == .boolean ? .boolean(b) : .text(b ? "TRUE" : "FALSE")
        case .text(let t): return .text(t)
        case .date(let d): return type == .dateTime ? .real(d.timeIntervalSince1970) : .text(dayText(d, timeZone))
        case .dateTime(let d): return .real(d.timeIntervalSince1970)
        case .list(let items): return .text(json(items.filter { !$0.isBlank }.map { FormulaText.display($0, timeZone: timeZone) }))
        }
    }
}
