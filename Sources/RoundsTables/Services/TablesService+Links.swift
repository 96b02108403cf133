import FluentKit
import Foundation
import RoundsCore
import RoundsStore
import SQLKit

/// Links between records: a junction table per pair of link fields (this side's record in one
/// column, the other side's in the other), lookups and rollups read through them. What a reader
/// gets through a link is limited by the linked table's rules for them: records outside its row
/// rule are not linked for them, a hidden field is not looked up.
extension TablesService {
    /// The linked records a page needs: by link field, the live records the reader may see.
    struct Linked: Sendable {
        struct Record: Sendable {
            var name: String
            /// By the linked table's field id.
            var values: [String: CellValue]
        }
        var byLink: [String: [String: Record]] = [:]
        static let none = Linked()
    }

    static func junctionSides(_ link: TableField) -> (mine: String, other: String) {
        link.fieldOptions.side == "b" ? ("b_id", "a_id") : ("a_id", "b_id")
    }

    // MARK: Making links

    struct LinkPlan {
        var junction: String
        var inverse: TableField
        var target: UserTable
    }

    /// A new link field's other side: the junction table's name and the field that links back
    /// from the linked table (named after this table, made unique there).
    func planLink(_ field: TableField, options: inout FieldOptions, table: UserTable, on db: any Database) async throws -> LinkPlan {
        guard let targetID = options.linkTable, let target = try await UserTable.find(targetID, on: db), target.baseID == table.baseID else {
            throw RoundsError.validation("linkTable: one of this base's tables")
        }
        let junction = "lk_" + field.id!.filter(\.isHexDigit).lowercased()
        let inverse = TableField()
        inverse.id = ids.next(); inverse.tableID = target.id!
        let taken = Set(try await fields(of: target.id!, on: db).map(\.name) + (target.id == table.id ? [field.name] : []))
        var name = target.id == table.id ? "\(field.name)（反向）" : table.name
        var n = 2
        while taken.contains(name) { name = (target.id == table.id ? "\(field.name)（反向）" : table.name) + " \(n)"; n += 1 }
        inverse.name = name; inverse.kind = FieldKind.link.rawValue; inverse.isPrimary = false; inverse.createdAt = clock.now()
        inverse.position = (try await fields(of: target.id!, on: db).map(\.position).max() ?? -1) + 1 + (target.id == table.id ? 1 : 0)
        var back = FieldOptions(many: true, linkTable: table.id)
        back.junction = junction; back.side = "b"; back.inverse = field.id
        inverse.options = Self.encode(back)
        options.junction = junction; options.side = "a"; options.inverse = inverse.id
        return LinkPlan(junction: junction, inverse: inverse, target: target)
    }

    func createLink(_ plan: LinkPlan, on tx: any Database) async throws {
        let sql = tx as! any SQLDatabase
        let real = TableDialect(sql).real
        try await sql.raw("""
            CREATE TABLE \(ident: plan.junction) (a_id TEXT NOT NULL, b_id TEXT NOT NULL, at \(unsafeRaw: real) NOT NULL, PRIMARY KEY (a_id, b_id))
            """).run()
        try await sql.raw("CREATE INDEX \(ident: plan.junction + "_b") ON \(ident: plan.junction) (b_id)").run()
        try await plan.inverse.create(on: tx)
    }

    /// A lookup's or rollup's link and linked field, checked.
    func checkLookup(_ kind: FieldKind, _ options: inout FieldOptions, fields: [TableField], on db: any Database) async throws {
        guard let viaKey = options.via, let via = fields.first(where: { ($0.id == viaKey || $0.name == viaKey) && $0.fieldKind == .link }) else {
            throw RoundsError.validation("via: a link field of this table")
        }
        options.via = via.id
        if kind == .rollup {
            guard let aggregate = options.aggregate else {
                throw RoundsError.validation("aggregate: one of \(RollupAggregate.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if aggregate == .count { options.target = nil; return }
        }
        let linkedFields = try await self.fields(of: via.fieldOptions.linkTable ?? "", on: db)
        guard let targetKey = options.target, let target = linkedFields.first(where: { $0.id == targetKey || $0.name == targetKey }) else {
            throw RoundsError.validation("target: a field of the linked table")
        }
        guard !target.fieldKind.readsLinks, target.fieldKind != .patient else {
            throw RoundsError.validation("target: \(target.name) cannot be read through a link (links, lookups, rollups and patients are not)")
        }
        if kind == .rollup, [.sum, .average, .min, .max].contains(options.aggregate),
           FieldCodec(target, timeZone: timeZone).resultType != .number {
            throw RoundsError.validation("target: \(options.aggregate!.rawValue) needs a number field; \(target.name) is not")
        }
        options.target = target.id
    }

    /// The lookups and rollups (of any table of the base) that read a field or a link.
    func readersThroughLinks(of field: TableField, base baseID: String, on db: any Database) async throws -> [TableField] {
        let tables = try await UserTable.query(on: db).filter(\.$baseID == baseID).all().compactMap(\.id)
        return try await TableField.query(on: db).filter(\.$tableID ~~ tables).filter(\.$kind ~~ [FieldKind.lookup.rawValue, FieldKind.rollup.rawValue]).all()
            .filter { $0.fieldOptions.via == field.id || $0.fieldOptions.target == field.id || (field.fieldKind == .link && $0.fieldOptions.via == field.fieldOptions.inverse) }
    }

    // MARK: Reading

    /// Each row's linked record ids (all of them; what a reader may see is decided on output).
    func attachLinks(_ rows: inout [Row], _ ctx: TableContext, on db: any Database) async throws {
        let links = ctx.fields.filter { $0.fieldKind == .link }
        guard !links.isEmpty, !rows.isEmpty else { return }
        let sql = db as! any SQLDatabase
        let ids = rows.map(\.id)
        for link in links {
            guard let junction = link.fieldOptions.junction else { continue }
            let (mine, other) = Self.junctionSides(link)
            var byRecord: [String: [String]] = [:]
            for start in stride(from: 0, to: ids.count, by: 500) {
                let chunk = Array(ids[start..<min(start + 500, ids.count)])
                for row in try await sql.raw("""
                    SELECT \(ident: mine) AS s, \(ident: other) AS d FROM \(ident: junction) WHERE \(ident: mine) IN (\(binds: chunk)) ORDER BY at, \(ident: other)
                    """).all() {
                    byRecord[try row.decode(column: "s", as: String.self), default: []].append(try row.decode(column: "d", as: String.self))
                }
            }
            for i in rows.indices {
                let list = byRecord[rows[i].id] ?? []
                rows[i].values[link.id!] = list.isEmpty ? .null : .text(FieldCodec.json(list))
            }
        }
    }

    /// The linked table as this reader works with it (their role on the base, its rules for them).
    func linkedContext(_ link: TableField, _ ctx: TableContext, on db: any Database) async throws -> TableContext? {
        guard let id = link.fieldOptions.linkTable, let table = try await UserTable.find(id, on: db) else { return nil }
        let fields = try await fields(of: id, on: db)
        let plan = try FormulaPlan(fields: fields, timeZone: timeZone)
        return TableContext(table: table, base: ctx.base, role: ctx.role, fields: fields,
                            codecs: Dictionary(fields.map { ($0.id!, FieldCodec($0, timeZone: timeZone)) }, uniquingKeysWith: { a, _ in a }),
                            plan: plan, access: try await access(for: ctx.role, table: table, fields: fields, plan: plan, on: db), reader: ctx.reader)
    }

    /// The records the page's links point to, that the reader may see in the linked table; a
    /// linked table of patient data audits each patient so shown.
    func linked(_ rows: [Row], _ ctx: TableContext, context: RequestContext, on db: any Database) async throws -> Linked {
        var out = Linked()
        for link in ctx.visible where link.fieldKind == .link {
            let ids = Array(Set(rows.flatMap { row -> [String] in
                if case .text(let t)? = row.values[link.id!] { return FieldCodec.jsonList(t) }; return []
            }))
            guard !ids.isEmpty, let target = try await linkedContext(link, ctx, on: db) else { out.byLink[link.id!] = [:]; continue }
            var found: [Row] = []
            for start in stride(from: 0, to: ids.count, by: 500) {
                found += try await self.rows(ids: Array(ids[start..<min(start + 500, ids.count)]), target, lock: false, links: false, on: db).values
                    .filter { $0.deletedAt == nil }
            }
            try await auditPatients("table.record.list", rows: found, target, context: context, on: db)
            let primary = target.fields.first { $0.isPrimary }
            var records: [String: Linked.Record] = [:]
            for row in found {
                var values: [String: CellValue] = [:]
                for f in target.visible where f.columnName != nil { values[f.id!] = target.codecs[f.id!]!.cell(row.values[f.id!] ?? .null) }
                for f in target.visible where !f.fieldKind.hasOwnColumn && !f.fieldKind.readsLinks {
                    values[f.id!] = record(row, target, mrns: [:]).fields[f.id!]
                }
                let name = primary.map { Self.plain(values[$0.id!] ?? .null) } ?? ""
                records[row.id] = Linked.Record(name: name.isEmpty ? "#\(row.number)" : name, values: values)
            }
            out.byLink[link.id!] = records
        }
        return out
    }

    static func plain(_ value: CellValue) -> String {
        switch value {
        case .null: return ""
        case .bool(let b): return b ? "✓" : ""
        case .number(let n): return FormulaText.number(n)
        case .text(let t): return t
        case .list(let l): return l.map(plain).filter { !$0.isEmpty }.joined(separator: "、")
        }
    }

    /// A link, lookup or rollup cell of one row, from the linked records the reader may see.
    func linkCell(_ field: TableField, row: Row, _ ctx: TableContext, linked: Linked) -> CellValue {
        let o = field.fieldOptions
        let linkID = field.fieldKind == .link ? field.id! : (o.via ?? "")
        guard let records = linked.byLink[linkID] else { return field.fieldKind == .rollup ? .null : .list([]) }
        var ids: [String] = []
        if case .text(let t)? = row.values[linkID] { ids = FieldCodec.jsonList(t).filter { records[$0] != nil } }
        switch field.fieldKind {
        case .link: return .list(ids.map { .text($0) })
        case .lookup:
            guard let target = o.target else { return .list([]) }
            return .list(ids.flatMap { id -> [CellValue] in
                switch records[id]?.values[target] ?? .null {
                case .null: return []
                case .list(let l): return l
                case let v: return [v]
                }
            })
        default:
            let values = ids.flatMap { id -> [CellValue] in
                guard let target = o.target else { return [] }
                switch records[id]?.values[target] ?? .null {
                case .null: return []
                case .list(let l): return l
                case let v: return [v]
                }
            }
            let numbers = values.compactMap { v -> Double? in if case .number(let n) = v { return n }; return nil }
            switch o.aggregate ?? .count {
            case .count: return .number(Double(ids.count))
            case .counta: return .number(Double(values.filter { !$0.isEmpty }.count))
            case .sum: return .number(numbers.reduce(0, +))
            case .average: return numbers.isEmpty ? .null : .number(numbers.reduce(0, +) / Double(numbers.count))
            case .min: return numbers.min().map { .number($0) } ?? .null
            case .max: return numbers.max().map { .number($0) } ?? .null
            case .arrayjoin: return .text(values.map(Self.plain).filter { !$0.isEmpty }.joined(separator: "、"))
            case .arrayunique:
                var seen: [CellValue] = []
                for v in values where !seen.contains(v) { seen.append(v) }
                return .list(seen)
            }
        }
    }

    // MARK: Writing

    /// The record ids a link value names: ids, "#12" (a number) or a record's name, each found
    /// among the live records of the linked table the writer may see.
    func resolveLinks(_ keys: [String], link: TableField, _ ctx: TableContext, on db: any Database) async throws -> [String] {
        guard let target = try await linkedContext(link, ctx, on: db) else { throw CellProblem(field: link.name, reason: "links a table that is gone") }
        let sql = db as! any SQLDatabase
        let primary = target.fields.first { $0.isPrimary }!
        let numbers = keys.compactMap { $0.hasPrefix("#") ? Int($0.dropFirst()) : nil }
        var query = sqlText("SELECT id, auto_number, \(ident: primary.columnName!) AS name FROM \(ident: target.table.sqlName) WHERE deleted_at IS NULL AND (id IN (\(binds: keys)) OR \(ident: primary.columnName!) IN (\(binds: keys))")
        if !numbers.isEmpty { query += " OR auto_number IN (\(binds: numbers))" }
        query += ")"
        if let scope = try recordSQL(target, sql).scope() { query += " AND \(scope)" }
        query += " LIMIT 5000"
        let found = try await sql.raw(query).all().map { row in
            (id: try row.decode(column: "id", as: String.self), number: try row.decode(column: "auto_number", as: Int.self),
             name: try row.decode(column: "name", as: String?.self))
        }
        return try keys.map { key in
            if let byID = found.first(where: { $0.id == key }) { return byID.id }
            if key.hasPrefix("#"), let n = Int(key.dropFirst()), let byNumber = found.first(where: { $0.number == n }) { return byNumber.id }
            let named = found.filter { $0.name == key }
            if named.count == 1 { return named[0].id }
            if named.count > 1 { throw CellProblem(field: link.name, reason: "“\(key)” names \(named.count) records of \(target.table.name); use its number (#\(named[0].number))") }
            throw CellProblem(field: link.name, reason: "no record “\(key)” in \(target.table.name)")
        }
    }

    /// The links of new records, many rows a statement.
    func insertLinks(_ link: TableField, _ pairs: [(record: String, to: [String])], on tx: any Database) async throws {
        guard let junction = link.fieldOptions.junction else { return }
        let sql = tx as! any SQLDatabase
        let (mine, other) = Self.junctionSides(link)
        let now = clock.now().timeIntervalSince1970
        let all = pairs.flatMap { pair in pair.to.enumerated().map { (pair.record, $0.element, now + Double($0.offset) / 1_000_000) } }
        for start in stride(from: 0, to: all.count, by: 500) {
            var statement = sqlText("INSERT INTO \(ident: junction) (\(ident: mine), \(ident: other), at) VALUES ")
            for (k, row) in all[start..<min(start + 500, all.count)].enumerated() {
                statement += k == 0 ? "(\(bind: row.0), \(bind: row.1), \(bind: row.2))" : ", (\(bind: row.0), \(bind: row.1), \(bind: row.2))"
            }
            try await sql.raw(statement).run()
        }
    }

    /// Replaces a record's links of one field.
    func writeLinks(_ link: TableField, record: String, to ids: [String], replacing: Bool, on tx: any Database) async throws {
        guard let junction = link.fieldOptions.junction else { return }
        let sql = tx as! any SQLDatabase
        let (mine, other) = Self.junctionSides(link)
        if replacing { try await sql.raw("DELETE FROM \(ident: junction) WHERE \(ident: mine) = \(bind: record)").run() }
        let now = clock.now().timeIntervalSince1970
        for (i, id) in ids.enumerated() {
            try await sql.raw("""
                INSERT INTO \(ident: junction) (\(ident: mine), \(ident: other), at) VALUES (\(bind: record), \(bind: id), \(bind: now + Double(i) / 1_000_000))
                """).run()
        }
    }
}
