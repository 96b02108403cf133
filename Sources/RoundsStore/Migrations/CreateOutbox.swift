import FluentKit
import SQLKit

/// The outbox and the file store, in their first shape (`AddOutboxDelivery` follows). Until the
/// store was split they were created by the integration migration, so a database made then has
/// them already: every statement here leaves existing tables and indexes as they are.
struct CreateOutbox: AsyncMigration {
    var name: String { "RoundsStore.CreateOutbox" }

    func prepare(on database: any Database) async throws {
        try await database.schema(OutboxEvent.schema)
            .field("id", .string, .identifier(auto: false))
            .field("kind", .string, .required)
            .field("patient_id", .string)
            .field("encounter_id", .string)
            .field("hospital_id", .string)
            .field("source_message_id", .string)
            .field("payload", .string, .required)
            .field("created_at", .datetime, .required)
            .field("dispatched_at", .datetime)
            .ignoreExisting()
            .create()
        try await database.schema(Attachment.schema)
            .field("id", .string, .identifier(auto: false))
            .field("patient_id", .string)
            .field("source_message_id", .string)
            .field("content_type", .string, .required)
            .field("filename", .string, .required)
            .field("data", .data, .required)
            .field("size", .int, .required)
            .field("created_at", .datetime, .required)
            .ignoreExisting()
            .create()
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.raw("CREATE INDEX IF NOT EXISTS outbox_pending ON \(ident: OutboxEvent.schema) (dispatched_at)").run()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Attachment.schema).delete()
        try await database.schema(OutboxEvent.schema).delete()
    }
}
