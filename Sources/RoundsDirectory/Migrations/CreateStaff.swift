import FluentKit

struct CreateStaff: AsyncMigration {
    /// As recorded by databases made before the store was split.
    var name: String { "RoundsStore.CreateStaff" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Staff.schema)
            .field("id", .string, .identifier(auto: false))
            .field("username", .string, .required)
            .field("display_name", .string, .required)
            .field("employee_no", .string)
            .field("password_hash", .string, .required)
            .field("locale", .string, .required)
            .field("is_superuser", .bool, .required)
            .field("is_active", .bool, .required)
            .field("failed_logins", .int, .required)
            .field("locked_until", .datetime)
            .field("created_at", .datetime, .required)
            .unique(on: "username")
            .create()
        try await database.schema(StaffRole.schema)
            .field("id", .string, .identifier(auto: false))
            .field("staff_id", .string, .required, .references(Staff.schema, "id"))
            .field("department_id", .string, .required, .references(Department.schema, "id"))
            .field("hospital_id", .string, .required, .references(Hospital.schema, "id"))
            .field("role", .string, .required)
            .unique(on: "staff_id", "department_id", "role")
            .create()
        try await database.schema(APIToken.schema)
            .field("id", .string, .identifier(auto: false))
            .field("name", .string, .required)
            .field("token_hash", .string, .required)
            .field("prefix", .string, .required)
            .field("scopes", .string, .required)
            .field("hospital_id", .string, .references(Hospital.schema, "id"))
            .field("created_by", .string, .required, .references(Staff.schema, "id"))
            .field("created_at", .datetime, .required)
            .field("expires_at", .datetime)
            .field("revoked_at", .datetime)
            .field("last_used_at", .datetime)
            .unique(on: "token_hash")
            .create()
    }

    func revert(on database: any Database) async throws {
        for schema in [APIToken.schema, StaffRole.schema, Staff.schema] {
            try await database.schema(schema).delete()
        }
    }
}
