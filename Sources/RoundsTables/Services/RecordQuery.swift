import FluentKit
import Foundation
import RoundsCore
import RoundsStore
import SQLKit

/// What a grid or an API call asks of a table: filters (nested AND/OR groups), sort keys, a
/// search, a page size and a cursor. All of it runs in SQL, never over the table in memory.
public struct RecordQuery: Sendable, Codable, Equatable {
    public var filter: FilterGroup?
    public var sort: [SortKey]
    public var search: String?
    public var limit: Int
    /// From the previous page's answer (keyset pagination: stable while records are added).
    public var cursor: String?
    /// The deleted records (the trash), instead of the live ones.
    public var deleted: Bool
    /// An owner's preview: the records as this staff member would see them.
    public var previewAs: String?
    /// Only these fields in each record (ids or names); nil for every field the reader may see.
    public var fields: [String]?

    public init(filter: FilterGroup? = nil, sort: [SortKey] = [], search: String? = nil, limit: Int = 100,
                cursor: String? = nil, deleted: Bool = false, previewAs: String? = nil) {
        self.filter = filter; self.sort = sort; self.search = search; self.limit = limit; self.cursor = cursor; self.deleted = deleted
        self.previewAs = previewAs
    }

    public static let maximumLimit = 1_000

    /// Everything may be left out of a query body (the defaults above).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        filter = try c.decodeIfPresent(FilterGroup.self, forKey: .filter)
        sort = try c.decodeIfPresent([SortKey].self, forKey: .sort) ?? []
        search = try c.decodeIfPresent(String.self, forKey: .search)
        limit = try c.decodeIfPresent(Int.self, forKey: .limit) ?? 100
        cursor = try c.decodeIfPresent(String.self, forKey: .cursor)
        deleted = try c.decodeIfPresent(Bool.self, forKey: .deleted) ?? false
        previewAs = try c.decodeIfPresent(String.self, forKey: .previewAs)
        fields = try c.decodeIfPresent([String].self, forKey: .fields)
    }
}

public struct SortKey: Sendable, Codable, Equatable {
    /// A field's id or name.
    public var field: String
    public var descending: Bool

    public init(field: String, descending: Bool = false) { self.field = field; self.descending = descending }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        field = try c.decode(String.self, forKey: .field)
        descending = try c.decodeIfPresent(Bool.self, forKey: .descending) ?? false
    }
}

public struct FilterGroup: Sendable, Codable, Equatable {
    public enum Conjunction: String, Sendable, Codable { case and, or }
    public var conjunction: Conjunction
    public var conditions: [FilterCondition]
    public var groups: [FilterGroup]

    public init(_ conjunction: Conjunction = .and, conditions: [FilterCondition] = [], groups: [FilterGroup] = []) {
        self.conjunction = conjunction; self.conditions = conditions; self.groups = groups
    }

    /// "and" and no sub-groups unless said.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        conjunction = try c.decodeIfPresent(Conjunction.self, forKey: .conjunction) ?? .and
        conditions = try c.decodeIfPresent([FilterCondition].self, forKey: .conditions) ?? []
        groups = try c.decodeIfPresent([FilterGroup].self, forKey: .groups) ?? []
    }

    var depth: Int { 1 + (groups.map(\.depth).max() ?? 0) }
    var size: Int { conditions.count + groups.map(\.size).reduce(0, +) }
}

public struct FilterCondition: Sendable, Codable, Equatable {
    public enum Operator: String, Sendable, Codable, CaseIterable {
        case `is`, isNot = "is_not", contains, notContains = "not_contains", isEmpty = "is_empty", isNotEmpty = "is_not_empty"
        case greater = "gt", greaterOrEqual = "gte", less = "lt", lessOrEqual = "lte"
        case isAnyOf = "is_any_of", isNoneOf = "is_none_of"
        /// person, created/modified by: the reader. department: one of the reader's departments or wards.
        case isMe = "is_me"
        /// dates: "today", "yesterday", "tomorrow", "this_week", "this_month", "past_7_days", "next_30_days"…
        case isWithin = "is_within"
    }

    public var field: String
    public var op: Operator
    public var value: CellValue?

    public init(field: String, _ op: Operator, _ value: CellValue? = nil) { self.field = field; self.op = op; self.value = value }
}

/// A page of records, and the cursor of the next page (nil on the last).
public struct RecordPage: Sendable, Codable, Equatable {
    public var records: [TableRecord]
    public var next: String?

    public init(records: [TableRecord], next: String?) { self.records = records; self.next = next }
}

/// Turns a `RecordQuery` into SQL for one table.
struct RecordSQL {
    let ctx: TableContext
    let dialect: TableDialect
    let principal: Principal
    let timeZone: TimeZone
    let now: Date
    /// Also the fields hidden from the reader (a row rule filters on them).
    var seesAll = false

    enum Column {
        case field(TableField, String, TableDialect.Storage)
        case system(String, TableDialect.Storage)

        var name: String {
            switch self {
            case .field(_, let c, _), .system(let c, _): return c
            }
        }
        var storage: TableDialect.Storage {
            switch self {
            case .field(_, _, let s), .system(_, let s): return s
            }
        }
    }

    func column(_ key: String) throws -> (TableField, Column) {
        guard let field = seesAll ? ctx.anyField(key) : ctx.field(key) else { throw RoundsError.validation("no field “\(key)” in this table") }
        switch field.fieldKind {
        case .autoNumber: return (field, .system("auto_number", .real))
        case .createdTime: return (field, .system("created_at", .real))
        case .modifiedTime: return (field, .system("modified_at", .real))
        case .createdBy: return (field, .system("created_by", .text))
        case .modifiedBy: return (field, .system("modified_by", .text))
        case .link, .lookup, .rollup:
            throw RoundsError.validation("\(field.name): records are sorted, grouped and compared by their own fields, not by what they link to (a link can be filtered as empty, not empty or holding a record)")
        default: return (field, .field(field, field.columnName!, ctx.codecs[field.id!]!.storage))
        }
    }

    // MARK: Filters

    func predicate(_ group: FilterGroup) throws -> any SQLExpression {
        guard group.depth <= 5, group.size <= 100 else { throw RoundsError.validation("filter: at most 5 levels and 100 conditions") }
        let parts = try group.conditions.map(predicate) + group.groups.map(predicate)
        guard !parts.isEmpty else { return sqlText("1 = 1") }
        let joiner = group.conjunction == .and ? " AND " : " OR "
        var out = sqlText("(")
        for (i, part) in parts.enumerated() {
            if i > 0 { out += SQLQueryString(stringLiteral: joiner) }
            out += "\(part)"
        }
        out += ")"
        return out
    }

    /// The value a condition compares with, as its column keeps it.
    func operand(_ field: TableField, _ column: Column, _ value: CellValue?) throws -> StoredValue {
        guard let value, !value.isEmpty else { throw RoundsError.validation("filter on \(field.name): a value is needed") }
        switch column {
        case .system(let name, _):
            switch name {
            case "auto_number": return .real(try ctx.codecs[field.id!]!.number(value))
            case "created_at", "modified_at":
                guard case .text(let t) = value, let d = DateMath.parse(t, FormulaEnvironment(now: now, timeZone: timeZone)) else {
                    throw RoundsError.validation("filter on \(field.name): not a date")
                }
                return .real(d.timeIntervalSince1970)
            default:
                guard case .text(let t) = value else { throw RoundsError.validation("filter on \(field.name): a staff id") }
                return .text(t)
            }
        case .field:
            let codec = ctx.codecs[field.id!]!
            switch field.fieldKind {
            case .formula:
                switch codec.storage {
                case .real:
                    if codec.resultType == .dateTime, case .text(let t) = value, let d = DateMath.parse(t, FormulaEnvironment(now: now, timeZone: timeZone)) {
                        return .real(d.timeIntervalSince1970)
                    }
                    return .real(try codec.number(value))
                case .boolean:
                    if case .bool(let b) = value { return .boolean(b) }
                    throw RoundsError.validation("filter on \(field.name): true or false")
                case .text: return .text(try codec.text(value))
                }
            case .multiSelect:
                return .text(try codec.choice(try codec.text(value)).id)
            case .person, .department, .patient:
                return .text(try codec.text(value))
            default:
                do { return try codec.store(value) } catch let p as CellProblem {
                    throw RoundsError.validation("filter on \(field.name): \(p.reason)")
                }
            }
        }
    }

    func predicate(_ c: FilterCondition) throws -> any SQLExpression {
        if let link = seesAll ? ctx.anyField(c.field) : ctx.field(c.field), link.fieldKind == .link { return try linkPredicate(link, c) }
        let (field, column) = try column(c.field)
        let col = SQLIdentifier(column.name)
        let isList = field.fieldKind == .multiSelect || (field.fieldKind == .person && field.fieldOptions.many == true)
        let empty: SQLQueryString = column.storage == .text ? "(\(col) IS NULL OR \(col) = '')" : "(\(col) IS NULL)"
        switch c.op {
        case .isEmpty:
            if column.storage == .boolean { return sqlText("(\(col) IS NULL OR \(col) = \(bind: false))") }
            return empty
        case .isNotEmpty:
            if column.storage == .boolean { return sqlText("(\(col) = \(bind: true))") }
            return sqlText("NOT \(empty)")
        case .isMe:
            switch field.fieldKind {
            case .department:
                let mine = Array(Set(principal.assignments.map(\.departmentID)))
                return mine.isEmpty ? sqlText("1 = 0") : sqlText("(\(col) IN (\(binds: mine)))")
            case .person where isList: return dialect.jsonListContains(col, principal.id)
            case .person, .createdBy, .modifiedBy: return sqlText("(\(col) = \(bind: principal.id))")
            default: throw RoundsError.validation("filter on \(field.name): “is me” is for people and departments")
            }
        case .isWithin:
            guard case .text(let word)? = c.value else { throw RoundsError.validation("filter on \(field.name): a period such as \"today\"") }
            let (from, to) = try period(word)
            let isDay = column.storage == .text
            guard isDay || column.storage == .real, [.date, .dateTime, .createdTime, .modifiedTime, .formula].contains(field.fieldKind) else {
                throw RoundsError.validation("filter on \(field.name): “is within” is for dates")
            }
            if isDay {
                return sqlText("(\(col) >= \(bind: FieldCodec.dayText(from, timeZone)) AND \(col) < \(bind: FieldCodec.dayText(to, timeZone)))")
            }
            return sqlText("(\(col) >= \(bind: from.timeIntervalSince1970) AND \(col) < \(bind: to.timeIntervalSince1970))")
        case .isAnyOf, .isNoneOf:
            guard case .list(let items)? = c.value, !items.isEmpty, items.count <= 100 else {
                throw RoundsError.validation("filter on \(field.name): a list of 1 to 100 values")
            }
            let values = try items.map { try operand(field, column, $0) }
            let any: any SQLExpression
            if isList {
                var s = sqlText("(")
                for (i, v) in values.enumerated() {
                    if i > 0 { s += " OR " }
                    if case .text(let t) = v { s += "\(dialect.jsonListContains(col, t))" }
                }
                s += ")"
                any = s
            } else {
                any = sqlText("(\(col) IN (\(binds: values.map(\.bind))))")
            }
            return c.op == .isAnyOf ? any : sqlText("(\(col) IS NULL OR NOT \(any))")
        case .contains, .notContains:
            if isList {
                let inner = dialect.jsonListContains(col, try textOperand(field, column, c.value))
                return c.op == .contains ? inner : sqlText("(\(col) IS NULL OR NOT \(inner))")
            }
            guard column.storage == .text, field.fieldKind != .singleSelect, field.fieldKind != .date else {
                throw RoundsError.validation("filter on \(field.name): “contains” is for text")
            }
            guard case .text(let t)? = c.value, !t.isEmpty else { throw RoundsError.validation("filter on \(field.name): the text to look for") }
            let like = sqlText("\(col) \(unsafeRaw: dialect.like) \(bind: "%" + Self.escapeLike(t) + "%") ESCAPE '\\'")
            return c.op == .contains ? sqlText("(\(like))") : sqlText("(\(col) IS NULL OR NOT (\(like)))")
        case .is, .isNot, .greater, .greaterOrEqual, .less, .lessOrEqual:
            if isList {
                guard c.op == .is || c.op == .isNot else { throw RoundsError.validation("filter on \(field.name): a list is not ordered") }
                let inner = dialect.jsonListContains(col, try textOperand(field, column, c.value))
                return c.op == .is ? inner : sqlText("(\(col) IS NULL OR NOT \(inner))")
            }
            let v = try operand(field, column, c.value)
            if column.storage == .boolean {
                guard case .boolean(let b) = v, c.op == .is || c.op == .isNot else {
                    throw RoundsError.validation("filter on \(field.name): is true or false")
                }
                let wanted = c.op == .is ? b : !b
                return wanted ? sqlText("(\(col) = \(bind: true))") : sqlText("(\(col) IS NULL OR \(col) = \(bind: false))")
            }
            let sorted = sortable(col, column)
            switch c.op {
            case .is: return sqlText("(\(col) = \(bind: v.bind))")
            case .isNot: return sqlText("(\(col) IS NULL OR \(col) <> \(bind: v.bind))")
            case .greater: return sqlText("(\(sorted) > \(bind: v.bind))")
            case .greaterOrEqual: return sqlText("(\(sorted) >= \(bind: v.bind))")
            case .less: return sqlText("(\(sorted) < \(bind: v.bind))")
            default: return sqlText("(\(sorted) <= \(bind: v.bind))")
            }
        }
    }

    /// A link: empty, not empty, or holding a record (by id), through its junction table.
    func linkPredicate(_ link: TableField, _ c: FilterCondition) throws -> any SQLExpression {
        guard let junction = link.fieldOptions.junction else { throw RoundsError.validation("\(link.name): this link has no records") }
        let (mine, other) = TablesService.junctionSides(link)
        let outer = sqlText("\(ident: ctx.table.sqlName).id")
        // Live linked records only (a deleted one is not linked for anyone until restored).
        let target = "ut_" + (link.fieldOptions.linkTable ?? "").filter(\.isHexDigit).lowercased()
        let exists = sqlText("EXISTS (SELECT 1 FROM \(ident: junction) j JOIN \(ident: target) x ON x.id = j.\(ident: other) WHERE x.deleted_at IS NULL AND j.\(ident: mine) = \(outer)")
        switch c.op {
        case .isEmpty: return sqlText("NOT \(exists))")
        case .isNotEmpty: return sqlText("\(exists))")
        case .contains, .is, .notContains, .isNot:
            guard case .text(let id)? = c.value, !id.isEmpty else { throw RoundsError.validation("filter on \(link.name): a record id") }
            let holds = sqlText("\(exists) AND j.\(ident: other) = \(bind: id))")
            return c.op == .contains || c.op == .is ? holds : sqlText("NOT \(holds)")
        default:
            throw RoundsError.validation("filter on \(link.name): a link is empty, not empty, or holds a record")
        }
    }

    func textOperand(_ field: TableField, _ column: Column, _ value: CellValue?) throws -> String {
        guard case .text(let t) = try operand(field, column, value) else { throw RoundsError.validation("filter on \(field.name): a value") }
        return t
    }

    static func escapeLike(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }

    /// [from, to) of a named period, in the hospital's days.
    func period(_ word: String) throws -> (Date, Date) {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = timeZone
        cal.firstWeekday = 2  // weeks start on Monday
        let today = cal.startOfDay(for: now)
        func days(_ n: Int) -> Date { cal.date(byAdding: .day, value: n, to: today)! }
        switch word {
        case "today": return (today, days(1))
        case "yesterday": return (days(-1), today)
        case "tomorrow": return (days(1), days(2))
        case "this_week":
            let start = cal.dateInterval(of: .weekOfYear, for: now)!.start
            return (start, cal.date(byAdding: .day, value: 7, to: start)!)
        case "this_month":
            let interval = cal.dateInterval(of: .month, for: now)!
            return (interval.start, interval.end)
        default:
            let parts = word.split(separator: "_")
            if parts.count == 3, let n = Int(parts[1]), (1...3660).contains(n), parts[2] == "days" {
                if parts[0] == "past" { return (days(-n), days(1)) }
                if parts[0] == "next" { return (today, days(n + 1)) }
            }
            throw RoundsError.validation("filter: “\(word)” is not a period (today, yesterday, tomorrow, this_week, this_month, past_N_days, next_N_days)")
        }
    }

    /// Text compares byte by byte on both databases (PostgreSQL's locale collation would order
    /// otherwise), so pages and cursors agree everywhere.
    func sortable(_ col: SQLIdentifier, _ column: Column) -> any SQLExpression {
        column.storage == .text && dialect == .postgres ? sqlText("\(col) COLLATE \"C\"") : col
    }

    func search(_ words: String) throws -> any SQLExpression {
        let q = words.trimmingCharacters(in: .whitespaces)
        guard q.count <= 200 else { throw RoundsError.validation("search: at most 200 characters") }
        var parts: [SQLQueryString] = []
        for field in ctx.stored where !ctx.access.hidden.contains(field.id!) {
            let col = SQLIdentifier(field.columnName!)
            switch field.fieldKind {
            case .text, .longText, .phone, .email, .url:
                parts.append("\(col) \(unsafeRaw: dialect.like) \(bind: "%" + Self.escapeLike(q) + "%") ESCAPE '\\'")
            case .formula where ctx.codecs[field.id!]!.storage == .text:
                parts.append("\(col) \(unsafeRaw: dialect.like) \(bind: "%" + Self.escapeLike(q) + "%") ESCAPE '\\'")
            case .singleSelect, .multiSelect:
                let ids = (field.fieldOptions.choices ?? []).filter { $0.name.localizedCaseInsensitiveContains(q) }.map(\.id)
                for id in ids { parts.append(field.fieldKind == .singleSelect ? "\(col) = \(bind: id)" : "\(dialect.jsonListContains(col, id))") }
            case .number, .currency, .percent, .rating, .autoNumber:
                if let n = Double(q) { parts.append("\(col) = \(bind: n)") }
            default: break
            }
        }
        if let n = Int(q) { parts.append("auto_number = \(bind: n)") }
        guard !parts.isEmpty else { return sqlText("1 = 0") }
        var out = sqlText("(")
        for (i, p) in parts.enumerated() { if i > 0 { out += " OR " }; out += p }
        out += ")"
        return out
    }

    // MARK: Sorting and pages

    struct Key {
        let column: Column
        let descending: Bool
    }

    func keys(_ sort: [SortKey]) throws -> [Key] {
        guard sort.count <= 5 else { throw RoundsError.validation("sort: at most 5 keys") }
        // The auto-number last: unique, so every order is total and a cursor is exact.
        return try sort.map { Key(column: try column($0.field).1, descending: $0.descending) } + [Key(column: .system("auto_number", .real), descending: false)]
    }

    /// ORDER BY: blanks last in either direction, then the value.
    func orderBy(_ keys: [Key]) -> any SQLExpression {
        var out = sqlText("")
        for (i, key) in keys.enumerated() {
            if i > 0 { out += ", " }
            let col = SQLIdentifier(key.column.name)
            if case .system("auto_number", _) = key.column {
                out += "\(col) \(unsafeRaw: key.descending ? "DESC" : "ASC")"
            } else {
                out += "(CASE WHEN \(col) IS NULL THEN 1 ELSE 0 END) ASC, \(sortable(col, key.column)) \(unsafeRaw: key.descending ? "DESC" : "ASC")"
            }
        }
        return out
    }

    /// Rows after the cursor's row in the order of `keys`: (k1 after v1) OR (k1 = v1 AND k2 after
    /// v2) OR …, where a blank sorts after every value.
    func after(_ cursor: [StoredValue], _ keys: [Key]) throws -> any SQLExpression {
        guard cursor.count == keys.count else { throw RoundsError.validation("cursor: does not match this sort; start again") }
        var disjuncts: [SQLQueryString] = []
        for i in keys.indices {
            var parts: [SQLQueryString] = []
            for j in 0..<i { parts.append(equal(keys[j], cursor[j])) }
            guard let later = later(keys[i], cursor[i]) else { continue }
            parts.append(later)
            var s = sqlText("(")
            for (k, p) in parts.enumerated() { if k > 0 { s += " AND " }; s += p }
            s += ")"
            disjuncts.append(s)
        }
        guard !disjuncts.isEmpty else { return sqlText("1 = 0") }
        var out = sqlText("(")
        for (k, d) in disjuncts.enumerated() { if k > 0 { out += " OR " }; out += d }
        out += ")"
        return out
    }

    func equal(_ key: Key, _ value: StoredValue) -> SQLQueryString {
        let col = SQLIdentifier(key.column.name)
        if value == .null { return "\(col) IS NULL" }
        return "\(col) = \(bind: value.bind)"
    }

    /// Rows after `value` in this key's order; nil when none can be (after the last blank).
    func later(_ key: Key, _ value: StoredValue) -> SQLQueryString? {
        let col = SQLIdentifier(key.column.name)
        if value == .null { return nil }
        let op = key.descending ? "<" : ">"
        if case .system("auto_number", _) = key.column { return "\(col) \(unsafeRaw: op) \(bind: value.bind)" }
        return "(\(col) IS NULL OR \(sortable(col, key.column)) \(unsafeRaw: op) \(bind: value.bind))"
    }
}

/// The cursor: the last row's sort values, as opaque URL-safe text.
enum RecordCursor {
    private struct Stored: Codable {
        var t: [String?]
        var k: [String]
    }

    static func encode(_ values: [StoredValue]) -> String {
        let stored = Stored(
            t: values.map { v in
                switch v {
                case .null: return nil
                case .text(let s): return s
                case .real(let n): return String(n)
                case .boolean(let b): return b ? "1" : "0"
                }
            },
            k: values.map { v in
                switch v {
                case .null: return "n"
                case .text: return "t"
                case .real: return "r"
                case .boolean: return "b"
                }
            })
        return Data(try! JSONEncoder().encode(stored)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) throws -> [StoredValue] {
        var b64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard text.count <= 4_000, let data = Data(base64Encoded: b64), let stored = try? JSONDecoder().decode(Stored.self, from: data),
              stored.t.count == stored.k.count else {
            throw RoundsError.validation("cursor: not one this server gave; start again")
        }
        return try zip(stored.t, stored.k).map { value, kind in
            switch (kind, value) {
            case ("n", _): return .null
            case ("t", let s?): return .text(s)
            case ("r", let s?): guard let n = Double(s) else { fallthrough }; return .real(n)
            case ("b", let s?): return .boolean(s == "1")
            default: throw RoundsError.validation("cursor: not one this server gave; start again")
            }
        }
    }
}

extension TablesService {
    /// A page of records matching the query, in its order; the reader's role is checked and,
    /// for a table of patient data, each patient shown is audited.
    public func records(table tableID: String, _ query: RecordQuery, context: RequestContext, on db: any Database) async throws -> RecordPage {
        let ctx = try await self.context(.viewer, table: tableID, action: "table.record.list", request: context, previewAs: query.previewAs, on: db)
        let sql = db as! any SQLDatabase
        let builder = recordSQL(ctx, sql)
        let limit = max(1, min(query.limit, RecordQuery.maximumLimit))
        let keys = try builder.keys(query.sort)
        var conditions: [any SQLExpression] = [sqlText(query.deleted ? "deleted_at IS NOT NULL" : "deleted_at IS NULL")]
        if let scope = try builder.scope() { conditions.append(scope) }
        if let filter = query.filter { conditions.append(try builder.predicate(filter)) }
        if let words = query.search, !words.trimmingCharacters(in: .whitespaces).isEmpty { conditions.append(try builder.search(words)) }
        if let cursor = query.cursor { conditions.append(try builder.after(try RecordCursor.decode(cursor), keys)) }
        var statement = sqlText("SELECT \(SQLList(selectColumns(ctx))) FROM \(ident: ctx.table.sqlName) WHERE ")
        statement += "\(SQLList(conditions, separator: SQLRaw(" AND ")))"
        statement += " ORDER BY \(builder.orderBy(keys)) LIMIT \(literal: limit + 1)"
        var rows = try await sql.raw(statement).all().map { try decode($0, ctx) }
        try await attachLinks(&rows, ctx, on: db)
        let more = rows.count > limit
        if more { rows.removeLast() }
        var next: String?
        if more, let last = rows.last {
            next = RecordCursor.encode(keys.map { key in
                switch key.column {
                case .system("auto_number", _): return .real(Double(last.number))
                case .system(let name, _):
                    switch name {
                    case "created_at": return .real(last.createdAt.timeIntervalSince1970)
                    case "modified_at": return .real(last.modifiedAt.timeIntervalSince1970)
                    case "created_by": return .text(last.createdBy)
                    default: return .text(last.modifiedBy)
                    }
                case .field(let field, _, _): return last.values[field.id!] ?? .null
                }
            })
        }
        var chosen: Set<String>?
        if let names = query.fields {
            guard names.count <= TablesService.maximumFields else { throw RoundsError.validation("fields: too many") }
            chosen = Set(try names.map { name in
                guard let f = ctx.field(name) else { throw RoundsError.validation("fields: no field “\(name)” in this table") }
                return f.id!
            })
        }
        try await auditPatients("table.record.list", rows: rows, ctx, context: context, on: db)
        let mrns = try await mrns(of: rows, ctx, on: db)
        let linked = try await linked(rows, ctx, context: context, on: db)
        return RecordPage(records: rows.map { row in
            var r = record(row, ctx, mrns: mrns, linked: linked)
            if let chosen { r.fields = r.fields.filter { chosen.contains($0.key) } }
            return r
        }, next: next)
    }
}

/// One group of a grouped grid: the values of its group-by fields, how many records it holds,
/// and the sums of the asked number fields.
public struct RecordGroup: Sendable, Codable, Equatable {
    public var values: [CellValue]
    public var count: Int
    /// By field id.
    public var sums: [String: Double]

    public init(values: [CellValue], count: Int, sums: [String: Double] = [:]) { self.values = values; self.count = count; self.sums = sums }
}

extension TablesService {
    /// Counts (and sums) per group, up to three levels, over the records the query matches —
    /// computed by the database's GROUP BY.
    public func groups(table tableID: String, by keys: [String], sums: [String] = [], _ query: RecordQuery,
                       context: RequestContext, on db: any Database) async throws -> [RecordGroup] {
        guard (1...3).contains(keys.count) else { throw RoundsError.validation("group by: 1 to 3 fields") }
        guard sums.count <= 10 else { throw RoundsError.validation("sums: at most 10 fields") }
        let ctx = try await self.context(.viewer, table: tableID, action: "table.record.group", request: context, previewAs: query.previewAs, on: db)
        let sql = db as! any SQLDatabase
        let builder = recordSQL(ctx, sql)
        let grouped = try keys.map { try builder.column($0) }
        let summed = try sums.map { key -> (TableField, RecordSQL.Column) in
            let c = try builder.column(key)
            guard c.1.storage == .real else { throw RoundsError.validation("sums: \(c.0.name) is not a number") }
            return c
        }
        var conditions: [any SQLExpression] = [sqlText(query.deleted ? "deleted_at IS NOT NULL" : "deleted_at IS NULL")]
        if let scope = try builder.scope() { conditions.append(scope) }
        if let filter = query.filter { conditions.append(try builder.predicate(filter)) }
        if let words = query.search, !words.trimmingCharacters(in: .whitespaces).isEmpty { conditions.append(try builder.search(words)) }
        var columns: [any SQLExpression] = grouped.enumerated().map { i, g in sqlText("\(ident: g.1.name) AS \(ident: "g\(i)")") }
        columns.append(sqlText("COUNT(*) AS n"))
        columns += summed.enumerated().map { i, s in sqlText("SUM(\(ident: s.1.name)) AS \(ident: "s\(i)")") }
        var statement = sqlText("SELECT \(SQLList(columns)) FROM \(ident: ctx.table.sqlName) WHERE \(SQLList(conditions, separator: SQLRaw(" AND ")))")
        statement += " GROUP BY \(SQLList(grouped.map { SQLIdentifier($0.1.name) }))"
        statement += " ORDER BY \(builder.orderBy(grouped.map { RecordSQL.Key(column: $0.1, descending: false) })) LIMIT 10000"
        let rows = try await sql.raw(statement).all()
        return try rows.map { row in
            let values = try grouped.enumerated().map { i, g -> CellValue in
                let stored = try RecordRow.value(row, column: "g\(i)", storage: g.1.storage)
                switch g.1 {
                case .field(let field, _, _): return ctx.codecs[field.id!]!.cell(stored)
                case .system: return ctx.codecs[g.0.id!]!.cell(stored)
                }
            }
            var totals: [String: Double] = [:]
            for (i, s) in summed.enumerated() { totals[s.0.id!] = try row.decode(column: "s\(i)", as: Double?.self) ?? 0 }
            return RecordGroup(values: values, count: try row.decode(column: "n", as: Int.self), sums: totals)
        }
    }
}
