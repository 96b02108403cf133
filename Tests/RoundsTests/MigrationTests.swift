import Fluent
import RoundsStore
import RoundsWeb
import SQLKit
import Testing
import Vapor

/// The schema's history: what databases made by earlier versions recorded must still match.
@Suite struct MigrationTests {
    /// Before the store was split, the directory's and the integration engine's migrations were
    /// the store's and were recorded under "RoundsStore.…"; and the outbox and the file store were
    /// created by the integration migration. A database of then must upgrade in place: nothing
    /// created twice, nothing lost.
    @Test(arguments: Backend.all)
    func aDatabaseFromBeforeTheStoreWasSplitUpgradesInPlace(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let sql = try #require(app.db as? any SQLDatabase)
            let names = try await sql.raw("SELECT name FROM _fluent_migrations").all().map { try $0.decode(column: "name", as: String.self) }
            for recorded in ["CreateOrganisation", "CreateStaff", "CreatePatients", "CreateAuditLog", "CreateWebSessions",
                             "CreateIntegration", "SeedCriticalValueRules", "AddOutboxDelivery", "AddStaffContact",
                             "HardenAuditLog", "AddStaffNotices", "AddHL7Submitter"] {
                #expect(names.contains("RoundsStore.\(recorded)"), "\(recorded) is recorded under its old name")
            }
            // As such a database is: every table there, the new store migration not yet run.
            try await sql.raw("INSERT INTO outbox_events (id, kind, payload, created_at, attempts) VALUES ('old-event', 'patient.admitted', '{}', \(bind: Date()), 0)").run()
            try await sql.raw("DELETE FROM _fluent_migrations WHERE name = 'RoundsStore.CreateOutbox'").run()
            let patients = try await sql.raw("SELECT COUNT(*) AS n FROM patients").first()?.decode(column: "n", as: Int.self)
            try await app.autoMigrate()
            let after = try await sql.raw("SELECT name FROM _fluent_migrations").all().map { try $0.decode(column: "name", as: String.self) }
            #expect(after.filter { $0 == "RoundsStore.CreateOutbox" }.count == 1)
            #expect(after.count == names.count)
            #expect(try await sql.raw("SELECT COUNT(*) AS n FROM patients").first()?.decode(column: "n", as: Int.self) == patients)
            #expect(try await sql.raw("SELECT kind FROM outbox_events WHERE id = 'old-event'").first()?.decode(column: "kind", as: String.self)
                    == "patient.admitted")
        }
    }
}
