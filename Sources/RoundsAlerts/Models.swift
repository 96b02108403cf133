import FluentKit
import Foundation

/// A critical value waiting for its loop to close: raised → acknowledged (who, when, from where,
/// read-back) → clinical action recorded → closed.
public final class CriticalAlert: Model, @unchecked Sendable {
    public static let schema = "critical_alerts"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @OptionalField(key: "encounter_id") public var encounterID: String?
    @Field(key: "hospital_id") public var hospitalID: String
    @OptionalField(key: "ward_id") public var wardID: String?
    @OptionalField(key: "group_id") public var groupID: String?
    @OptionalField(key: "card_message_id") public var cardMessageID: String?
    /// hl7, api or manual.
    @Field(key: "source") public var source: String
    /// The outbox event or request that raised it (one alert per source).
    @Field(key: "source_key") public var sourceKey: String
    /// The stored HL7 message it came in with (hl7 alerts).
    @OptionalField(key: "source_message_id") public var sourceMessageID: String?
    /// Who reported it (api and manual alerts): a person's or a system's name.
    @OptionalField(key: "reported_by") public var reportedBy: String?
    @Field(key: "test_code") public var testCode: String
    @Field(key: "test_name") public var testName: String
    @Field(key: "value") public var value: String
    @OptionalField(key: "unit") public var unit: String?
    @OptionalField(key: "flag") public var flag: String?
    /// The reference range reported with the value (OBX-7), shown beside it.
    @OptionalField(key: "reference_range") public var referenceRange: String?
    @OptionalField(key: "reason") public var reason: String?
    @Field(key: "raised_at") public var raisedAt: Date
    /// open, acknowledged, closed.
    @Field(key: "status") public var status: String
    /// How far up the ladder it has gone (0 = the responsible doctor and nurse).
    @Field(key: "level") public var level: Int
    @OptionalField(key: "acknowledged_at") public var acknowledgedAt: Date?
    @OptionalField(key: "acknowledged_by") public var acknowledgedBy: String?
    @OptionalField(key: "acknowledged_by_name") public var acknowledgedByName: String?
    @OptionalField(key: "acknowledged_from") public var acknowledgedFrom: String?
    @OptionalField(key: "read_back") public var readBack: String?
    @OptionalField(key: "action_at") public var actionAt: Date?
    @OptionalField(key: "action_by_name") public var actionByName: String?
    @OptionalField(key: "action_kind") public var actionKind: String?
    @OptionalField(key: "action_text") public var actionText: String?

    public init() {}
}

/// One rung of the ladder, as a timer row: due at a time, claimed by one worker, fired once.
public final class AlertEscalation: Model, @unchecked Sendable {
    public static let schema = "critical_alert_escalations"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "alert_id") public var alertID: String
    @Field(key: "level") public var level: Int
    /// Comma-separated target kinds: ward_doctors, head_nurse, director, medical_affairs.
    @Field(key: "targets") public var targets: String
    @Field(key: "due_at") public var dueAt: Date
    /// pending, fired, cancelled.
    @Field(key: "status") public var status: String
    @OptionalField(key: "fired_at") public var firedAt: Date?
    @OptionalField(key: "notified") public var notified: String?

    public init() {}
}

/// Every step of an alert's life, for the record and the quality dashboard.
public final class AlertStep: Model, @unchecked Sendable {
    public static let schema = "critical_alert_steps"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "alert_id") public var alertID: String
    /// raised, escalated, acknowledged, action, closed.
    @Field(key: "kind") public var kind: String
    @Field(key: "level") public var level: Int
    @OptionalField(key: "staff") public var staff: String?
    @OptionalField(key: "detail") public var detail: String?
    @Field(key: "at") public var at: Date

    public init() {}
}

/// A ward's escalation ladder (JSON list of steps); without one, the standard ladder.
public final class EscalationLadderRow: Model, @unchecked Sendable {
    public static let schema = "critical_alert_ladders"
    /// The ward's id.
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "steps") public var steps: String
    @Field(key: "updated_at") public var updatedAt: Date

    public init() {}
}

struct CreateCriticalAlerts: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(CriticalAlert.schema)
            .field("id", .string, .identifier(auto: false))
            .field("patient_id", .string, .required).field("encounter_id", .string)
            .field("hospital_id", .string, .required).field("ward_id", .string)
            .field("group_id", .string).field("card_message_id", .string)
            .field("source", .string, .required).field("source_key", .string, .required)
            .field("test_code", .string, .required).field("test_name", .string, .required)
            .field("value", .string, .required).field("unit", .string).field("flag", .string).field("reason", .string)
            .field("raised_at", .datetime, .required).field("status", .string, .required).field("level", .int, .required)
            .field("acknowledged_at", .datetime).field("acknowledged_by", .string).field("acknowledged_by_name", .string)
            .field("acknowledged_from", .string).field("read_back", .string)
            .field("action_at", .datetime).field("action_by_name", .string).field("action_kind", .string).field("action_text", .string)
            .unique(on: "source_key")
            .create()
        try await database.schema(AlertEscalation.schema)
            .field("id", .string, .identifier(auto: false))
            .field("alert_id", .string, .required).field("level", .int, .required).field("targets", .string, .required)
            .field("due_at", .datetime, .required).field("status", .string, .required)
            .field("fired_at", .datetime).field("notified", .string)
            .unique(on: "alert_id", "level")
            .create()
        try await database.schema(AlertStep.schema)
            .field("id", .string, .identifier(auto: false))
            .field("alert_id", .string, .required).field("kind", .string, .required).field("level", .int, .required)
            .field("staff", .string).field("detail", .string).field("at", .datetime, .required)
            .create()
        try await database.schema(EscalationLadderRow.schema)
            .field("id", .string, .identifier(auto: false))
            .field("steps", .string, .required).field("updated_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        for schema in [EscalationLadderRow.schema, AlertStep.schema, AlertEscalation.schema, CriticalAlert.schema] {
            try await database.schema(schema).delete()
        }
    }
}

public enum AlertMigrations {
    public static var all: [any Migration] { [CreateCriticalAlerts(), CreateAlertConnectors(), AddAlertReferenceRange()] }
}

/// The reference range travels with the alert, so the popup and the page show it beside the value.
struct AddAlertReferenceRange: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(CriticalAlert.schema).field("reference_range", .string).update()
    }
    func revert(on database: any Database) async throws {
        try await database.schema(CriticalAlert.schema).deleteField("reference_range").update()
    }
}
