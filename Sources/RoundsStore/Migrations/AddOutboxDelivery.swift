import FluentKit
import FluentSQL
import SQLKit

/// Delivery bookkeeping for the outbox: attempts and the last error of a failed dispatch.
struct AddOutboxDelivery: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(OutboxEvent.schema)
            .field("attempts", .int, .required, .sql(.default(0)))
            .update()
        try await database.schema(OutboxEvent.schema).field("last_error", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(OutboxEvent.schema).deleteField("last_error").update()
        try await database.schema(OutboxEvent.schema).deleteField("attempts").update()
    }
}
