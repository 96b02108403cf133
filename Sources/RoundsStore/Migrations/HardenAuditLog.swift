import FluentKit
import SQLKit

/// Closes the two ways round the append-only triggers of `CreateAuditLog`: on SQLite,
/// `INSERT OR REPLACE` with an existing id deletes the old row without firing the DELETE
/// trigger (recursive triggers are off); on PostgreSQL, `TRUNCATE` fires no row trigger.
/// (Anyone who can write the SQLite file itself is outside what triggers can guard.)
struct HardenAuditLog: AsyncMigration {
    func prepare(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        switch sql.dialect.name {
        case "postgresql":
            try await sql.raw("""
                CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
                FOR EACH STATEMENT EXECUTE FUNCTION rounds_audit_append_only()
                """).run()
        default:
            try await sql.raw("""
                CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events
                WHEN EXISTS (SELECT 1 FROM audit_events WHERE id = NEW.id)
                BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
                """).run()
        }
    }

    func revert(on database: any Database) async throws {
        guard let sql = database as? any SQLDatabase else { return }
        if sql.dialect.name == "postgresql" {
            try await sql.raw("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events").run()
        } else {
            try await sql.raw("DROP TRIGGER IF EXISTS audit_events_no_replace").run()
        }
    }
}
