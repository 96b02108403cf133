import FluentKit

/// Who handed an HL7 message in over HTTP: MSH-3/4 say only what the message claims.
struct AddHL7Submitter: AsyncMigration {
    /// As recorded by databases made before the store was split.
    var name: String { "RoundsStore.AddHL7Submitter" }

    func prepare(on database: any Database) async throws {
        try await database.schema(HL7MessageRecord.schema).field("submitted_by", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(HL7MessageRecord.schema).deleteField("submitted_by").update()
    }
}
