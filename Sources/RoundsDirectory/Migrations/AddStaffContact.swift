import FluentKit

/// Mobile number and e-mail address of staff, for critical-value notices outside Rounds.
struct AddStaffContact: AsyncMigration {
    /// As recorded by databases made before the store was split.
    var name: String { "RoundsStore.AddStaffContact" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Staff.schema).field("mobile", .string).update()
        try await database.schema(Staff.schema).field("email", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Staff.schema).deleteField("email").update()
        try await database.schema(Staff.schema).deleteField("mobile").update()
    }
}
