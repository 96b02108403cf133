import FluentKit
import SQLKit

/// The audit table, plus triggers that make it append-only at the database level, so not even
/// a bug (or a future route) in Rounds can rewrite history.
struct CreateAuditLog: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AuditEvent.schema)
            .field("id", .string, .identifier(auto: false))
            .field("at", .datetime, .required)
            .field("actor_kind", .string, .required)
            .field("actor_id", .string)
            .field("actor_name", .string, .required)
            .field("action", .string, .required)
            .field("entity_type", .string, .required)
            .field("entity_id", .string)
            .field("patient_id", .string)
            .field("hospital_id", .string)
            .field("client_address", .string)
            .field("outcome", .string, .required)
            .field("detail", .string)
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.create(index: "audit_events_at").on(AuditEvent.schema).column("at").run()
        try await sql.create(index: "audit_events_patient").on(AuditEvent.schema).column("patient_id").run()
        switch sql.dialect.name {
        case "postgresql":
            try await sql.raw("""
                CREATE FUNCTION rounds_audit_append_only() RETURNS trigger AS $$
                BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql
                """).run()
            try await sql.raw("""
                CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
                FOR EACH ROW EXECUTE FUNCTION rounds_audit_append_only()
                """).run()
        default:
            try await sql.raw("""
                CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
                """).run()
            try await sql.raw("""
                CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
                """).run()
        }
    }

    func revert(on database: any Database) async throws {
        if let sql = database as? any SQLDatabase, sql.dialect.name == "postgresql" {
            try await sql.raw("DROP FUNCTION IF EXISTS rounds_audit_append_only() CASCADE").run()
        }
        try await database.schema(AuditEvent.schema).delete()
    }
}
