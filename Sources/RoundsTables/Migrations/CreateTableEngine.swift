import FluentKit
import SQLKit

/// The table engine's metadata. The records themselves live in one SQL table per user table,
/// created at run time (see `TableSchema`).
struct CreateTableEngine: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(TableBase.schema)
            .field("id", .string, .identifier(auto: false))
            .field("hospital_id", .string, .required)
            .field("department_id", .string)
            .field("name", .string, .required)
            .field("created_by", .string, .required)
            .field("created_at", .datetime, .required)
            .field("deleted_at", .datetime)
            .create()
        try await database.schema(UserTable.schema)
            .field("id", .string, .identifier(auto: false))
            .field("base_id", .string, .required, .references(TableBase.schema, "id"))
            .field("name", .string, .required)
            .field("sql_name", .string, .required)
            .field("last_number", .int, .required)
            .field("next_column", .int, .required)
            .field("has_patients", .bool, .required)
            .field("position", .int, .required)
            .field("created_by", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "sql_name")
            .create()
        try await database.schema(TableField.schema)
            .field("id", .string, .identifier(auto: false))
            .field("table_id", .string, .required, .references(UserTable.schema, "id"))
            .field("name", .string, .required)
            .field("kind", .string, .required)
            .field("column_name", .string)
            .field("options", .string, .required)
            .field("position", .int, .required)
            .field("is_primary", .bool, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "table_id", "name")
            .create()
        try await database.schema(BaseGrant.schema)
            .field("id", .string, .identifier(auto: false))
            .field("base_id", .string, .required, .references(TableBase.schema, "id"))
            .field("grantee_kind", .string, .required)
            .field("grantee_id", .string, .required)
            .field("role", .string, .required)
            .field("created_by", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "base_id", "grantee_kind", "grantee_id")
            .create()
        try await database.schema(CellChange.schema)
            .field("id", .string, .identifier(auto: false))
            .field("table_id", .string, .required)
            .field("record_id", .string, .required)
            .field("field_id", .string)
            .field("action", .string, .required)
            .field("old_value", .string)
            .field("new_value", .string)
            .field("version", .int, .required)
            .field("actor_id", .string, .required)
            .field("actor_name", .string, .required)
            .field("at", .datetime, .required)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "table_cell_changes_record").on(CellChange.schema).column("record_id").column("version").run()
        try await sql.create(index: "table_grants_grantee").on(BaseGrant.schema).column("grantee_id").run()
    }

    func revert(on database: any Database) async throws {
        for schema in [CellChange.schema, BaseGrant.schema, TableField.schema, UserTable.schema, TableBase.schema] {
            try await database.schema(schema).delete()
        }
    }
}

/// Field and row rules per table (see `TableRules`).
struct CreateTableRules: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(TableRuleSet.schema)
            .field("id", .string, .identifier(auto: false))
            .field("rules", .string, .required)
            .field("updated_by", .string, .required)
            .field("updated_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(TableRuleSet.schema).delete()
    }
}

/// Comments on records, and the people they @mention (each mention a notice until read).
struct CreateTableComments: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(TableComment.schema)
            .field("id", .string, .identifier(auto: false))
            .field("table_id", .string, .required)
            .field("record_id", .string, .required)
            .field("author_id", .string, .required)
            .field("author_name", .string, .required)
            .field("text", .string, .required)
            .field("created_at", .datetime, .required)
            .create()
        try await database.schema(TableMention.schema)
            .field("id", .string, .identifier(auto: false))
            .field("comment_id", .string, .required)
            .field("table_id", .string, .required)
            .field("record_id", .string, .required)
            .field("staff_id", .string, .required)
            .field("created_at", .datetime, .required)
            .field("read_at", .datetime)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "table_comments_record").on(TableComment.schema).column("record_id").column("id").run()
        try await sql.create(index: "table_mentions_staff").on(TableMention.schema).column("staff_id").column("id").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(TableMention.schema).delete()
        try await database.schema(TableComment.schema).delete()
    }
}

public enum TablesMigrations {
    public static var all: [any Migration] { [CreateTableEngine(), CreateTableRules(), CreateTableComments()] }
}
