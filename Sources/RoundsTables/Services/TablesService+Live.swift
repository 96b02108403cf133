import FluentKit
import Foundation
import RoundsCore
import RoundsStore
import SQLKit

/// What an open grid receives when records change: each record as that reader sees it now
/// (their row rule, their hidden fields), the cells in words and in the form the editor takes.
extension TablesService {
    public struct LiveCell: Codable, Sendable, Equatable {
        public var text: String
        public var raw: String
    }

    public struct LiveRecord: Codable, Sendable, Equatable {
        public var id: String
        public var number: Int
        public var version: Int
        public var deleted: Bool
        /// By field id; only the fields the reader may see.
        public var cells: [String: LiveCell]
    }

    /// The records among `ids` the reader may see, as their grid shows them; the others are left
    /// out (outside their row rule, or gone), never described.
    public func liveRecords(table tableID: String, ids: [String], context: RequestContext, on db: any Database) async throws -> [LiveRecord] {
        let ctx = try await self.context(.viewer, table: tableID, action: "table.record.read", request: context, on: db)
        let found = try await rows(ids: ids, ctx, lock: false, on: db)
        let rows = ids.compactMap { found[$0] }
        guard !rows.isEmpty else { return [] }
        try await auditPatients("table.record.read", rows: rows, ctx, context: context, on: db)
        let mrns = try await mrns(of: rows, ctx, on: db)
        let linked = try await linked(rows, ctx, context: context, on: db)
        let shown = try await gridRows(rows.map { record($0, ctx, mrns: mrns, linked: linked) }, ctx, on: db)
        return shown.map { row in
            var cells: [String: LiveCell] = [:]
            for field in ctx.visible {
                let text = row.display[field.id!] ?? ""
                let raw = field.fieldKind == .link ? text : Self.editText(row.record.fields[field.id!] ?? .null, field.fieldKind)
                cells[field.id!] = LiveCell(text: text, raw: raw)
            }
            return LiveRecord(id: row.record.id, number: row.record.number, version: row.record.version, deleted: row.record.deleted, cells: cells)
        }
    }

    /// How many of `ids` the reader may see (live, inside their row rule): counted in SQL, not read.
    public func visibleCount(table tableID: String, ids: [String], context: RequestContext, on db: any Database) async throws -> Int {
        let ctx = try await self.context(.viewer, table: tableID, action: "table.record.read", request: context, on: db)
        let sql = db as! any SQLDatabase
        var total = 0
        for start in stride(from: 0, to: ids.count, by: 500) {
            let slice = Array(ids[start..<min(start + 500, ids.count)])
            var query = sqlText("SELECT COUNT(*) AS n FROM \(ident: ctx.table.sqlName) WHERE deleted_at IS NULL AND id IN (\(binds: slice))")
            if let scope = try recordSQL(ctx, sql).scope() { query += " AND \(scope)" }
            total += try await sql.raw(query).first()?.decode(column: "n", as: Int.self) ?? 0
        }
        return total
    }

    /// A cell as its editor takes it (the grid's input), not as it is shown.
    public static func editText(_ value: CellValue, _ kind: FieldKind) -> String {
        switch value {
        case .null: return ""
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .text(let t): return kind == .dateTime ? String(t.prefix(16)) : t
        case .list(let items): return items.compactMap { if case .text(let t) = $0 { return t }; return nil }.joined(separator: ", ")
        }
    }
}
