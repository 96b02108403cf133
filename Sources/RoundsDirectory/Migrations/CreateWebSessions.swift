import FluentKit

struct CreateWebSessions: AsyncMigration {
    /// As recorded by databases made before the store was split.
    var name: String { "RoundsStore.CreateWebSessions" }

    func prepare(on database: any Database) async throws {
        try await database.schema(WebSession.schema)
            .field("id", .string, .identifier(auto: false))
            .field("staff_id", .string, .required, .references(Staff.schema, "id", onDelete: .cascade))
            .field("csrf_token", .string, .required)
            .field("created_at", .datetime, .required)
            .field("expires_at", .datetime, .required)
            .field("client_address", .string)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(WebSession.schema).delete()
    }
}
