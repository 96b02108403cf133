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
        // The grid's default order, and "not deleted" on every read.
        try await sql.raw("CREATE UNIQUE INDEX \(ident: name + "_number") ON \(ident: name) (auto_number)").run()
        try await sql.raw("CREATE INDEX \(ident: name + "_live") ON \(ident: name) (deleted_at)").run()
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

    /// An index for sorting and filtering on a column (a view's sort and filter fields).
    func ensureIndex(_ table: String, _ column: String) async throws {
        try await sql.raw("CREATE INDEX IF NOT EXISTS \(ident: "\(table)_\(column)") ON \(ident: table) (\(ident: column))").run()
    }

    /// The indexes named for a column by `ensureIndex`.
    private func indexes(on table: String, column: String) async throws -> [String] {
        let name = "\(table)_\(column)"
        switch dialect {
        case .sqlite:
            return try await sql.raw("SELECT name FROM sqlite_master WHERE type = 'index' AND name = \(bind: name)").all()
                .map { try $0.decode(column: "name", as: String.self) }
        case .postgres:
            return try await sql.raw("SELECT indexname AS name FROM pg_indexes WHERE indexname = \(bind: name)").all()
                .map { try $0.decode(column: "name", as: String.self) }
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
