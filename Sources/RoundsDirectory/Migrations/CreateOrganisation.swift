import FluentKit
import SQLKit

struct CreateOrganisation: AsyncMigration {
    /// As recorded by databases made before the store was split.
    var name: String { "RoundsStore.CreateOrganisation" }

    func prepare(on database: any Database) async throws {
        try await database.schema(HospitalGroup.schema)
            .field("id", .string, .identifier(auto: false))
            .field("name", .string, .required)
            .field("created_at", .datetime, .required)
            .create()
        try await database.schema(Hospital.schema)
            .field("id", .string, .identifier(auto: false))
            .field("group_id", .string, .required, .references(HospitalGroup.schema, "id"))
            .field("code", .string, .required)
            .field("name", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "code")
            .create()
        try await database.schema(Department.schema)
            .field("id", .string, .identifier(auto: false))
            .field("hospital_id", .string, .required, .references(Hospital.schema, "id"))
            .field("parent_id", .string, .references(Department.schema, "id"))
            .field("code", .string, .required)
            .field("name", .string, .required)
            .field("kind", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "hospital_id", "code")
            .create()
        try await database.schema(Bed.schema)
            .field("id", .string, .identifier(auto: false))
            .field("ward_id", .string, .required, .references(Department.schema, "id"))
            .field("label", .string, .required)
            .field("sort_order", .int, .required)
            .unique(on: "ward_id", "label")
            .create()
    }

    func revert(on database: any Database) async throws {
        for schema in [Bed.schema, Department.schema, Hospital.schema, HospitalGroup.schema] {
            try await database.schema(schema).delete()
        }
    }
}
