import FluentKit
import SQLKit

struct CreatePatients: AsyncMigration {
    /// As recorded by databases made before the store was split.
    var name: String { "RoundsStore.CreatePatients" }

    func prepare(on database: any Database) async throws {
        try await database.schema(Patient.schema)
            .field("id", .string, .identifier(auto: false))
            .field("hospital_id", .string, .required, .references(Hospital.schema, "id"))
            .field("mrn", .string, .required)
            .field("name", .string, .required)
            .field("gender", .string, .required)
            .field("birth_date", .string)
            .field("allergies", .string)
            .field("created_at", .datetime, .required)
            .unique(on: "hospital_id", "mrn")
            .create()
        try await database.schema(Encounter.schema)
            .field("id", .string, .identifier(auto: false))
            .field("patient_id", .string, .required, .references(Patient.schema, "id"))
            .field("hospital_id", .string, .required, .references(Hospital.schema, "id"))
            .field("visit_number", .string)
            .field("ward_id", .string, .required, .references(Department.schema, "id"))
            .field("bed_id", .string, .references(Bed.schema, "id"))
            .field("attending_id", .string, .references(Staff.schema, "id"))
            .field("nurse_id", .string, .references(Staff.schema, "id"))
            .field("status", .string, .required)
            .field("admitted_at", .datetime, .required)
            .field("discharged_at", .datetime)
            .create()
        if let sql = database as? any SQLDatabase {
            try await sql.create(index: "encounters_ward_status").on(Encounter.schema)
                .column("ward_id").column("status").run()
            try await sql.create(index: "encounters_patient").on(Encounter.schema).column("patient_id").run()
        }
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Encounter.schema).delete()
        try await database.schema(Patient.schema).delete()
    }
}
