import FluentKit
import Foundation
import RoundsCore
import SQLKit

/// An outside system a hospital's critical values are delivered to (Feishu group, WeCom group,
/// SMS gateway, mail server, the LIS over HL7). Settings are JSON; secrets in them are never
/// returned by the API or written to logs.
public final class AlertConnectorRow: Model, @unchecked Sendable {
    public static let schema = "alert_connectors"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "hospital_id") public var hospitalID: String
    @Field(key: "kind") public var kind: String
    @Field(key: "name") public var name: String
    @Field(key: "settings") public var settings: String
    /// Messaging connectors: the lowest step that is sent (0 = from the first alert, 1 = from the
    /// first escalation, …).
    @Field(key: "min_level") public var minLevel: Int
    @Field(key: "enabled") public var enabled: Bool
    @Field(key: "created_at") public var createdAt: Date

    public init() {}

    public var connectorKind: ConnectorKind? { ConnectorKind(rawValue: kind) }

    public var decodedSettings: [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(settings.utf8))) ?? [:]
    }
}

/// One notice to one connector, as a queue row: retried with growing pauses until sent, or
/// dead after `AlertService.maximumDeliveryAttempts`. Survives restarts like every timer here.
public final class AlertDelivery: Model, @unchecked Sendable {
    public static let schema = "alert_deliveries"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "alert_id") public var alertID: String
    @Field(key: "connector_id") public var connectorID: String
    /// raised, escalated, acknowledged, closed.
    @Field(key: "event") public var event: String
    @Field(key: "level") public var level: Int
    /// The staff ids this step reached, space-separated.
    @Field(key: "recipients") public var recipients: String
    /// pending, sent, dead.
    @Field(key: "status") public var status: String
    @Field(key: "attempts") public var attempts: Int
    @Field(key: "next_attempt_at") public var nextAttemptAt: Date
    @OptionalField(key: "claimed_until") public var claimedUntil: Date?
    @OptionalField(key: "last_error") public var lastError: String?
    @OptionalField(key: "sent_at") public var sentAt: Date?
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
}

struct CreateAlertConnectors: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AlertConnectorRow.schema)
            .field("id", .string, .identifier(auto: false))
            .field("hospital_id", .string, .required).field("kind", .string, .required).field("name", .string, .required)
            .field("settings", .string, .required).field("min_level", .int, .required).field("enabled", .bool, .required)
            .field("created_at", .datetime, .required)
            .create()
        try await database.schema(AlertDelivery.schema)
            .field("id", .string, .identifier(auto: false))
            .field("alert_id", .string, .required).field("connector_id", .string, .required)
            .field("event", .string, .required).field("level", .int, .required).field("recipients", .string, .required)
            .field("status", .string, .required).field("attempts", .int, .required).field("next_attempt_at", .datetime, .required)
            .field("claimed_until", .datetime).field("last_error", .string).field("sent_at", .datetime)
            .field("created_at", .datetime, .required)
            .unique(on: "connector_id", "alert_id", "event", "level")
            .create()
        if let sql = database as? any SQLDatabase {
            try await sql.create(index: "alert_deliveries_due").on(AlertDelivery.schema).column("status").column("next_attempt_at").run()
            try await sql.create(index: "alert_deliveries_alert").on(AlertDelivery.schema).column("alert_id").run()
            try await sql.create(index: "critical_alert_escalations_due").on(AlertEscalation.schema).column("status").column("due_at").run()
            try await sql.create(index: "critical_alerts_raised").on(CriticalAlert.schema).column("raised_at").run()
            try await sql.create(index: "critical_alerts_card").on(CriticalAlert.schema).column("card_message_id").run()
        }
        // Where the value came from: the stored HL7 message (for feedback to the LIS), or who reported it.
        try await database.schema(CriticalAlert.schema).field("source_message_id", .string).update()
        try await database.schema(CriticalAlert.schema).field("reported_by", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(CriticalAlert.schema).deleteField("reported_by").update()
        try await database.schema(CriticalAlert.schema).deleteField("source_message_id").update()
        try await database.schema(AlertDelivery.schema).delete()
        try await database.schema(AlertConnectorRow.schema).delete()
    }
}
