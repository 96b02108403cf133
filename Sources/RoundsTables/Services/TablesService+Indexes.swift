import FluentKit
import Foundation
import RoundsCore
import RoundsStore
import SQLKit

/// Indexes for the views people keep open: a sort gets one index over its ORDER BY exactly as the
/// records query writes it (blanks last, the auto-number last), so the first page of a sorted —
/// and filtered — view on a million records is read from the index instead of sorting them all;
/// a filter field gets one of its own. Owners ask for them (a saved view does, in part 2); a
/// field's indexes go when the field does.
extension TablesService {
    public struct ViewIndex: Codable, Sendable, Equatable {
        public var name: String
        public var definition: String

        public init(name: String, definition: String) { self.name = name; self.definition = definition }
    }

    public func createIndexes(table tableID: String, sort: [SortKey], filterFields: [String], context: RequestContext,
                              on db: any Database) async throws -> [ViewIndex] {
        guard !sort.isEmpty || !filterFields.isEmpty else { throw RoundsError.validation("sort, filterFields: name at least one field") }
        guard filterFields.count <= 5 else { throw RoundsError.validation("filterFields: at most 5") }
        let ctx = try await self.context(.owner, table: tableID, action: "table.index.create", request: context, on: db)
        let sql = db as! any SQLDatabase
        let builder = recordSQL(ctx, sql, seesAll: true)
        var wanted: [String] = []
        if !sort.isEmpty {
            wanted.append(try Self.elements(builder.orderBy(try builder.keys(sort)), on: sql))
        }
        for key in filterFields {
            let (_, column) = try builder.column(key)
            wanted.append(try Self.elements(SQLIdentifier(column.name), on: sql))
        }
        let schema = TableSchema(db)
        for elements in wanted {
            try await schema.ensureIndex(ctx.table.sqlName, name: Self.indexName(ctx.table.sqlName, elements), elements: elements)
        }
        // Fresh statistics, so the planner knows a filter on a field of three choices keeps a
        // third of the records (and walks the sort's index rather than sorting that third).
        switch TableDialect(sql) {
        case .sqlite:
            try await sql.raw("PRAGMA analysis_limit = 1000").run()
            try await sql.raw("ANALYZE \(ident: ctx.table.sqlName)").run()
            // SQLite's other connections read the statistics only when they reload the schema,
            // which ANALYZE alone does not make them do: a schema change (a view made and
            // dropped) does, so every pooled connection plans with the new statistics.
            try await sql.raw("CREATE VIEW IF NOT EXISTS rounds_reload_statistics AS SELECT 1").run()
            try await sql.raw("DROP VIEW IF EXISTS rounds_reload_statistics").run()
        case .postgres:
            try await sql.raw("ANALYZE \(ident: ctx.table.sqlName)").run()
        }
        try await audit.record("table.index.create", entityType: "table", entityID: tableID, hospitalID: ctx.base.hospitalID,
                               detail: "sort \(sort.map { ($0.descending ? "-" : "") + $0.field }.joined(separator: ",")); filter \(filterFields.joined(separator: ","))",
                               context: context, on: db)
        return try await indexes(ctx, on: db)
    }

    public func indexes(table tableID: String, context: RequestContext, on db: any Database) async throws -> [ViewIndex] {
        let ctx = try await self.context(.owner, table: tableID, action: "table.index.list", request: context, on: db)
        return try await indexes(ctx, on: db)
    }

    public func dropIndex(table tableID: String, name: String, context: RequestContext, on db: any Database) async throws {
        let ctx = try await self.context(.owner, table: tableID, action: "table.index.delete", request: context, on: db)
        guard try await indexes(ctx, on: db).contains(where: { $0.name == name }) else { throw RoundsError.notFound("index", id: name) }
        try await TableSchema(db).dropIndex(name)
        try await audit.record("table.index.delete", entityType: "table", entityID: tableID, hospitalID: ctx.base.hospitalID,
                               detail: name, context: context, on: db)
    }

    func indexes(_ ctx: TableContext, on db: any Database) async throws -> [ViewIndex] {
        try await TableSchema(db).viewIndexes(of: ctx.table.sqlName).map { ViewIndex(name: $0.name, definition: $0.definition) }
    }

    /// The SQL text of index elements (no binds: an index holds no parameters).
    static func elements(_ expression: any SQLExpression, on sql: any SQLDatabase) throws -> String {
        var serializer = SQLSerializer(database: sql)
        expression.serialize(to: &serializer)
        guard serializer.binds.isEmpty else { throw RoundsError.validation("sort: this order cannot be indexed") }
        return serializer.sql
    }

    /// ix_<table>_<hash of the elements>: the same view asks for the same index.
    static func indexName(_ table: String, _ elements: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (table + "|" + elements).utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return "ix_" + String(table.prefix(40)) + "_" + String(hash, radix: 16)
    }
}
