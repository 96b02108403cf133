import FluentKit

/// What the first mapping dropped: NTE comments, coded results' text, a report's second PDF,
/// and a notice on a stored message for IT (a control id reused for different content).
struct AddMessageDetails: AsyncMigration {
    func prepare(on database: any Database) async throws {
        // One column per statement: SQLite adds a single column per ALTER TABLE.
        try await database.schema(HL7MessageRecord.schema).field("notice", .string).update()
        try await database.schema(Observation.schema).field("value_text", .string).update()
        try await database.schema(Observation.schema).field("comment", .string).update()
        try await database.schema(ClinicalReport.schema).field("attachment_ids", .string).update()
        try await database.schema(ClinicalReport.schema).field("comment", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(HL7MessageRecord.schema).deleteField("notice").update()
        try await database.schema(Observation.schema).deleteField("value_text").update()
        try await database.schema(Observation.schema).deleteField("comment").update()
        try await database.schema(ClinicalReport.schema).deleteField("attachment_ids").update()
        try await database.schema(ClinicalReport.schema).deleteField("comment").update()
    }
}
