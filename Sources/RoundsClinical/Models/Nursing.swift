import FluentKit
import Foundation
import SQLKit

/// One version of an assessment instrument (its whole definition as JSON).
public final class InstrumentRecord: Model, @unchecked Sendable {
    public static let schema = "nursing_instruments"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "code") public var code: String
    @Field(key: "version") public var version: Int
    @Field(key: "definition") public var definition: String
    @Field(key: "created_at") public var createdAt: Date
    @Field(key: "created_by") public var createdBy: String
    public init() {}
}

/// A scored assessment at the bedside: the answers as given, the total and band the server
/// computed, the instrument version, who and when. Never changed afterwards.
public final class Assessment: Model, @unchecked Sendable {
    public static let schema = "nursing_assessments"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @Field(key: "encounter_id") public var encounterID: String
    @Field(key: "ward_id") public var wardID: String
    @Field(key: "instrument_code") public var instrumentCode: String
    @Field(key: "instrument_version") public var instrumentVersion: Int
    @Field(key: "answers") public var answers: String
    @Field(key: "total") public var total: Int
    @Field(key: "band") public var band: String
    @Field(key: "severity") public var severity: String
    @Field(key: "assessor_id") public var assessorID: String
    @Field(key: "assessor_name") public var assessorName: String
    @Field(key: "assessed_at") public var assessedAt: Date
    /// admission, routine, after_fall, after_transfer, other.
    @Field(key: "reason") public var reason: String
    /// The client's key for this submission: a resend after a network drop finds the first.
    @Field(key: "idempotency_key") public var idempotencyKey: String
    public init() {}

    public var decodedAnswers: [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(answers.utf8))) ?? [:]
    }
}

/// Something at the bedside that calls for reassessment (a fall).
public final class NursingEvent: Model, @unchecked Sendable {
    public static let schema = "nursing_events"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @Field(key: "encounter_id") public var encounterID: String
    @Field(key: "kind") public var kind: String
    @OptionalField(key: "note") public var note: String?
    @Field(key: "by_name") public var byName: String
    @Field(key: "at") public var at: Date
    public init() {}
}

/// A care-plan task: what, how often, for whom; its occurrences are computed from the schedule.
public final class CareTask: Model, @unchecked Sendable {
    public static let schema = "care_plan_tasks"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @Field(key: "encounter_id") public var encounterID: String
    @Field(key: "ward_id") public var wardID: String
    @Field(key: "title") public var title: String
    /// once, every_hours, daily_at.
    @Field(key: "schedule_kind") public var scheduleKind: String
    @OptionalField(key: "every_hours") public var everyHours: Int?
    /// Comma-separated "HH:mm" for daily_at.
    @OptionalField(key: "times") public var times: String?
    @Field(key: "starts_at") public var startsAt: Date
    @OptionalField(key: "ends_at") public var endsAt: Date?
    /// A named nurse; or nil for the ward's nurses (all of them, or those of `assigneeRole`).
    @OptionalField(key: "assignee_id") public var assigneeID: String?
    /// nurse or head_nurse: the ward's staff in that role.
    @OptionalField(key: "assignee_role") public var assigneeRole: String?
    @OptionalField(key: "source_assessment_id") public var sourceAssessmentID: String?
    /// active, stopped.
    @Field(key: "status") public var status: String
    @Field(key: "created_by_name") public var createdByName: String
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}

/// One occurrence of a task done, or skipped with a reason.
public final class CareTaskRecord: Model, @unchecked Sendable {
    public static let schema = "care_plan_records"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "task_id") public var taskID: String
    @Field(key: "due_at") public var dueAt: Date
    /// done, skipped.
    @Field(key: "outcome") public var outcome: String
    @OptionalField(key: "reason") public var reason: String?
    @Field(key: "by_id") public var byID: String
    @Field(key: "by_name") public var byName: String
    @Field(key: "at") public var at: Date
    public init() {}
}

/// A nurse's secret iCalendar feed address (only its SHA-256 digest is stored).
public final class CalendarFeed: Model, @unchecked Sendable {
    public static let schema = "nursing_calendar_feeds"
    /// The staff member's id.
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "token_hash") public var tokenHash: String
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}

struct CreateNursing: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(InstrumentRecord.schema)
            .field("id", .string, .identifier(auto: false))
            .field("code", .string, .required).field("version", .int, .required).field("definition", .string, .required)
            .field("created_at", .datetime, .required).field("created_by", .string, .required)
            .unique(on: "code", "version").create()
        try await database.schema(Assessment.schema)
            .field("id", .string, .identifier(auto: false))
            .field("patient_id", .string, .required).field("encounter_id", .string, .required).field("ward_id", .string, .required)
            .field("instrument_code", .string, .required).field("instrument_version", .int, .required)
            .field("answers", .string, .required).field("total", .int, .required).field("band", .string, .required)
            .field("severity", .string, .required).field("assessor_id", .string, .required).field("assessor_name", .string, .required)
            .field("assessed_at", .datetime, .required).field("reason", .string, .required)
            .field("idempotency_key", .string, .required)
            .unique(on: "idempotency_key").create()
        try await database.schema(NursingEvent.schema)
            .field("id", .string, .identifier(auto: false))
            .field("patient_id", .string, .required).field("encounter_id", .string, .required).field("kind", .string, .required)
            .field("note", .string).field("by_name", .string, .required).field("at", .datetime, .required).create()
        try await database.schema(CareTask.schema)
            .field("id", .string, .identifier(auto: false))
            .field("patient_id", .string, .required).field("encounter_id", .string, .required).field("ward_id", .string, .required)
            .field("title", .string, .required).field("schedule_kind", .string, .required).field("every_hours", .int).field("times", .string)
            .field("starts_at", .datetime, .required).field("ends_at", .datetime).field("assignee_id", .string)
            .field("assignee_role", .string).field("source_assessment_id", .string).field("status", .string, .required).field("created_by_name", .string, .required)
            .field("created_at", .datetime, .required).create()
        try await database.schema(CareTaskRecord.schema)
            .field("id", .string, .identifier(auto: false))
            .field("task_id", .string, .required).field("due_at", .datetime, .required).field("outcome", .string, .required)
            .field("reason", .string).field("by_id", .string, .required).field("by_name", .string, .required).field("at", .datetime, .required)
            .unique(on: "task_id", "due_at").create()
        try await database.schema(CalendarFeed.schema)
            .field("id", .string, .identifier(auto: false))
            .field("token_hash", .string, .required).field("created_at", .datetime, .required)
            .unique(on: "token_hash").create()
        if let sql = database as? any SQLDatabase {
            try await sql.create(index: "nursing_assessments_patient").on(Assessment.schema).column("patient_id").column("assessed_at").run()
            try await sql.create(index: "nursing_assessments_encounter").on(Assessment.schema).column("encounter_id").run()
            try await sql.create(index: "care_plan_tasks_encounter").on(CareTask.schema).column("encounter_id").run()
            try await sql.create(index: "nursing_events_encounter").on(NursingEvent.schema).column("encounter_id").run()
        }
        // The shipped instruments, version 1 each.
        for instrument in try ShippedInstruments.all() {
            let row = InstrumentRecord()
            row.id = "instrument-\(instrument.code)-v\(instrument.version)"
            row.code = instrument.code
            row.version = instrument.version
            row.definition = String(decoding: try JSONEncoder().encode(instrument), as: UTF8.self)
            row.createdAt = Date()
            row.createdBy = "rounds"
            try await row.create(on: database)
        }
    }

    func revert(on database: any Database) async throws {
        for schema in [CalendarFeed.schema, CareTaskRecord.schema, CareTask.schema, NursingEvent.schema, Assessment.schema, InstrumentRecord.schema] {
            try await database.schema(schema).delete()
        }
    }
}

public enum ClinicalMigrations {
    public static var all: [any Migration] { [CreateNursing()] }
}

/// The instruments Rounds ships, from the JSON files in `Instruments/Shipped`.
public enum ShippedInstruments {
    public static func all() throws -> [Instrument] {
        guard let folder = Bundle.module.url(forResource: "Shipped", withExtension: nil) else { return [] }
        let files = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try files.map { try JSONDecoder().decode(Instrument.self, from: Data(contentsOf: $0)) }
    }
}
