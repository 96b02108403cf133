import Foundation
import RoundsCore

/// The kinds of field a table may have. Each is stored in a real column of the table's own SQL
/// table (links in a junction table), so filtering and sorting run in the database.
public enum FieldKind: String, Sendable, Codable, CaseIterable {
    case text
    /// Several lines (kept as typed; shown with its line breaks, never as HTML).
    case longText = "long_text"
    case number, currency, percent
    /// Whole stars, 1 to `max` (5 by default).
    case rating
    /// 0 to 100 %.
    case progress
    case singleSelect = "single_select"
    case multiSelect = "multi_select"
    /// A calendar day, in the hospital's time zone.
    case date
    case dateTime = "date_time"
    /// Seconds.
    case duration
    case checkbox
    /// Staff, one or many (`options.many`).
    case person
    /// A department or ward.
    case department
    /// A patient by MRN: shown with name, ward and bed, following transfers. A table with one is
    /// patient data: every read and write audited.
    case patient
    case phone, email, url
    case formula
    case autoNumber = "auto_number"
    case createdTime = "created_time"
    case modifiedTime = "modified_time"
    case createdBy = "created_by"
    case modifiedBy = "modified_by"
    /// Records of another table of the base (or this one), one or many; two-way: the other table
    /// gets the field that links back. Kept in a junction table both fields share.
    case link
    /// A field of the linked records, read through a link.
    case lookup
    /// The linked records summed up: count, sum, average, min, max, joined or unique values.
    case rollup

    /// Filled by Rounds, never by the person editing.
    public var isComputed: Bool {
        switch self {
        case .formula, .autoNumber, .createdTime, .modifiedTime, .createdBy, .modifiedBy, .lookup, .rollup: return true
        default: return false
        }
    }

    /// Kept in a column of its own (the system kinds read the system columns, links a junction
    /// table, lookups and rollups the linked records when read).
    var hasOwnColumn: Bool {
        switch self {
        case .autoNumber, .createdTime, .modifiedTime, .createdBy, .modifiedBy, .link, .lookup, .rollup: return false
        default: return true
        }
    }

    /// Reads other records through a link.
    var readsLinks: Bool { self == .link || self == .lookup || self == .rollup }
}

/// How a rollup sums up the linked records.
public enum RollupAggregate: String, Sendable, Codable, CaseIterable {
    /// How many records are linked.
    case count
    /// How many linked records have a value in the field.
    case counta
    case sum, average, min, max
    /// The values joined with "、".
    case arrayjoin
    /// The distinct values.
    case arrayunique
}

/// A choice of a single or multi select: its id stays when the name is edited.
public struct SelectOption: Sendable, Codable, Equatable {
    public var id: String
    public var name: String
    /// One of the palette's names (blue, green, orange, red, purple, grey…).
    public var color: String

    public init(id: String, name: String, color: String = "grey") {
        self.id = id; self.name = name; self.color = color
    }

    /// A new choice needs only its name (the id is made, the colour grey until chosen).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? ""
        name = try c.decode(String.self, forKey: .name)
        color = try c.decodeIfPresent(String.self, forKey: .color) ?? "grey"
    }

    public static let colors = ["grey", "blue", "cyan", "green", "yellow", "orange", "red", "pink", "purple"]
}

/// A field's settings; which apply depends on the kind.
public struct FieldOptions: Sendable, Codable, Equatable {
    /// number, currency, percent: decimals shown and kept (0–8).
    public var precision: Int?
    /// number: the unit shown after it (mmol/L, 天…).
    public var unit: String?
    /// currency: the symbol (¥ by default).
    public var symbol: String?
    /// rating: the most stars (1–10, 5 by default).
    public var max: Int?
    /// single and multi select.
    public var choices: [SelectOption]?
    /// person: several people.
    public var many: Bool?
    /// formula: the expression as written.
    public var formula: String?
    /// formula: the type of its result, found when it was saved (decides its column).
    public var resultType: String?
    /// link: the table linked to (one of the same base's).
    public var linkTable: String?
    /// link: the junction table both sides share, and which of its columns is this side's.
    public var junction: String?
    public var side: String?
    /// link: the field of the other table that links back.
    public var inverse: String?
    /// lookup, rollup: the link field read through, and the linked table's field read.
    public var via: String?
    public var target: String?
    /// rollup: how the values are summed up.
    public var aggregate: RollupAggregate?

    public init(precision: Int? = nil, unit: String? = nil, symbol: String? = nil, max: Int? = nil,
                choices: [SelectOption]? = nil, many: Bool? = nil, formula: String? = nil,
                linkTable: String? = nil, via: String? = nil, target: String? = nil, aggregate: RollupAggregate? = nil) {
        self.precision = precision; self.unit = unit; self.symbol = symbol; self.max = max
        self.choices = choices; self.many = many; self.formula = formula
        self.linkTable = linkTable; self.via = via; self.target = target; self.aggregate = aggregate
    }
}

/// A cell's value as the API and the pages give and take it: JSON's own shapes. Dates are
/// "2026-12-04", date-times ISO 8601 ("2026-12-04T10:00:00+08:00"), selects the option's
/// name (or id), people and departments their ids, a patient the MRN.
public enum CellValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case text(String)
    case list([CellValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let t = try? c.decode(String.self) { self = .text(t) }
        else if let l = try? c.decode([CellValue].self) { self = .list(l) }
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "a cell is null, true/false, a number, text or a list") }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .text(let t): try c.encode(t)
        case .list(let l): try c.encode(l)
        }
    }

    public var isEmpty: Bool {
        switch self {
        case .null: return true
        case .text(let t): return t.isEmpty
        case .list(let l): return l.isEmpty
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return FormulaText.number(n)
        case .text(let t): return "\"\(t)\""
        case .list(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
