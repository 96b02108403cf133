import FluentKit
import Foundation
import SQLKit

/// The DDL of user tables: one SQL table per user table, one column per field, created and
/// altered at run time inside the caller's transaction (both databases run DDL transactionally,
/// so a failed change leaves the table as it was).
struct TableSchema {
    let sql: any SQLDatabase
    let dialect: TableDialect

    init(_ db: any Database) {
        sql = db as! any SQLDatabase
        dialect = TableDialect(sql)
    }

    /// The system columns every user table has.
    enum System: String, CaseIterable {
        case id, autoNumber = "auto_number", createdAt = "created_at", createdBy = "created_by"
        case modifiedAt = "modified_at", modifiedBy = "modified_by", version, deletedAt = "deleted_at"
    }

    func createTable(_ name: String) async throws {
        let d = dialect
        try await sql.raw("""
            CREATE TABLE \(ident: name) (
              id TEXT PRIMARY KEY,
              auto_number \(unsafeRaw: d.bigint) NOT NULL,
              created_at \(unsafeRaw: d.real) NOT NULL,
              created_by TEXT NOT NULL,
              modified_at \(unsafeRaw: d.real) NOT NULL,
              modified_by TEXT NOT NULL,
              version \(unsafeRaw: d.bigint) NOT NULL,
              deleted_at \(unsafeRaw: d.real)
            )
            """).run()
        // The grid's default order; and the deleted records, for the bin. Not an index of every
        // record's deleted_at: "not deleted" matches nearly all of them, and the planner would
        // pick it over the view's sort index and sort a million rows.
        try await sql.raw("CREATE UNIQUE INDEX \(ident: name + "_number") ON \(ident: name) (auto_number)").run()
        try await sql.raw("CREATE INDEX \(ident: name + "_deleted") ON \(ident: name) (deleted_at) WHERE deleted_at IS NOT NULL").run()
    }

    func dropTable(_ name: String) async throws {
        try await sql.raw("DROP TABLE \(ident: name)").run()
    }

    func addColumn(_ table: String, _ column: String, _ storage: TableDialect.Storage) async throws {
        try await sql.raw("ALTER TABLE \(ident: table) ADD COLUMN \(ident: column) \(unsafeRaw: dialect.type(storage))").run()
    }

    func dropColumn(_ table: String, _ column: String) async throws {
        for index in try await indexes(on: table, column: column) {
            try await sql.raw("DROP INDEX \(ident: index)").run()
        }
        try await sql.raw("ALTER TABLE \(ident: table) DROP COLUMN \(ident: column)").run()
    }

    /// An index over `elements` (columns, or the ORDER BY expressions of a sort exactly as the
    /// records query writes them, so the planner walks it instead of sorting), live records only.
    func ensureIndex(_ table: String, name: String, elements: String) async throws {
        try await sql.raw("CREATE INDEX IF NOT EXISTS \(ident: name) ON \(ident: table) (\(unsafeRaw: elements)) WHERE deleted_at IS NULL").run()
    }

    func dropIndex(_ name: String) async throws {
        try await sql.raw("DROP INDEX IF EXISTS \(ident: name)").run()
    }

    /// The view indexes of a table (named ix_…), with their definitions.
    func viewIndexes(of table: String) async throws -> [(name: String, definition: String)] {
        let rows: [any SQLRow]
        switch dialect {
        case .sqlite:
            rows = try await sql.raw("SELECT name, sql AS def FROM sqlite_master WHERE type = 'index' AND tbl_name = \(bind: table) AND name LIKE 'ix\\_%' ESCAPE '\\'").all()
        case .postgres:
            rows = try await sql.raw("SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = \(bind: table) AND indexname LIKE 'ix\\_%'").all()
        }
        return try rows.map { (try $0.decode(column: "name", as: String.self), (try? $0.decode(column: "def", as: String.self)) ?? "") }
    }

    /// The view indexes that read a column (dropped with it: SQLite refuses to drop an indexed column).
    private func indexes(on table: String, column: String) async throws -> [String] {
        switch dialect {
        case .sqlite:
            return try await viewIndexes(of: table).filter { $0.definition.contains("\"\(column)\"") }.map(\.name)
        case .postgres:
            let word = try NSRegularExpression(pattern: "\\b\(NSRegularExpression.escapedPattern(for: column))\\b")
            return try await viewIndexes(of: table).filter { index in
                word.firstMatch(in: index.definition, range: NSRange(index.definition.startIndex..., in: index.definition)) != nil
            }.map(\.name)
        }
    }

    /// Reads one column of every record (deleted ones too), in batches, for a type change.
    func readColumn(_ table: String, _ column: String, storage: TableDialect.Storage,
                    after: String?, limit: Int) async throws -> [(id: String, value: StoredValue)] {
        var query = sqlText("SELECT id, \(ident: column) AS v FROM \(ident: table)")
        if let after { query += " WHERE id > \(bind: after)" }
        query += " ORDER BY id LIMIT \(literal: limit)"
        return try await sql.raw(query).all().map { row in
            (try row.decode(column: "id", as: String.self), try RecordRow.value(row, column: "v", storage: storage))
        }
    }

    func write(_ table: String, _ column: String, id: String, _ value: StoredValue, storage: TableDialect.Storage) async throws {
        try await sql.raw("UPDATE \(ident: table) SET \(ident: column) = \(bind: value.bind(as: storage)) WHERE id = \(bind: id)").run()
    }
}

/// Reading values out of rows of a user table.
enum RecordRow {
    static func value(_ row: any SQLRow, column: String, storage: TableDialect.Storage) throws -> StoredValue {
        switch storage {
        case .text: return try row.decode(column: column, as: String?.self).map(StoredValue.text) ?? .null
        case .real: return try row.decode(column: column, as: Double?.self).map(StoredValue.real) ?? .null
        case .boolean: return try row.decode(column: column, as: Bool?.self).map(StoredValue.boolean) ?? .null
        }
    }
}
