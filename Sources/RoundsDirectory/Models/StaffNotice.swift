import FluentKit
import Foundation

/// Something a person must know that is not about a patient: today, that someone was made (or
/// stopped being) an administrator. Shown on their pages until they mark it read.
public final class StaffNotice: Model, @unchecked Sendable {
    public static let schema = "staff_notices"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    /// Who is told.
    @Field(key: "staff_id") public var staffID: String
    /// administrator_granted, administrator_removed.
    @Field(key: "kind") public var kind: String
    @Field(key: "text_zh") public var textZH: String
    @Field(key: "text_en") public var textEN: String
    /// The staff member it is about.
    @OptionalField(key: "subject_id") public var subjectID: String?
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "read_at") public var readAt: Date?

    public init() {}
}

struct AddStaffNotices: AsyncMigration {
    /// As recorded by databases made before the store was split.
    var name: String { "RoundsStore.AddStaffNotices" }

    func prepare(on database: any Database) async throws {
        try await database.schema(StaffNotice.schema)
            .field("id", .string, .identifier(auto: false))
            .field("staff_id", .string, .required)
            .field("kind", .string, .required)
            .field("text_zh", .string, .required)
            .field("text_en", .string, .required)
            .field("subject_id", .string)
            .field("created_at", .datetime, .required)
            .field("read_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(StaffNotice.schema).delete()
    }
}
