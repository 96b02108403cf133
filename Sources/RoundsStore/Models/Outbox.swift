import FluentKit
import Foundation

/// Clinical events for the rest of Rounds (patient groups, alerts, automations), written in the
/// same transaction as the message and the records they describe (transactional outbox).
public final class OutboxEvent: Model, @unchecked Sendable {
    public static let schema = "outbox_events"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "kind") public var kind: String
    @OptionalField(key: "patient_id") public var patientID: String?
    @OptionalField(key: "encounter_id") public var encounterID: String?
    @OptionalField(key: "hospital_id") public var hospitalID: String?
    @OptionalField(key: "source_message_id") public var sourceMessageID: String?
    /// JSON.
    @Field(key: "payload") public var payload: String
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "dispatched_at") public var dispatchedAt: Date?
    /// Failed dispatch attempts, and the last error (see `OutboxDispatcher`).
    @Field(key: "attempts") public var attempts: Int
    @OptionalField(key: "last_error") public var lastError: String?

    public init() {}
}

/// A file that came with a message (a pathology PDF) or with a chat message: one store of files
/// for every capability.
public final class Attachment: Model, @unchecked Sendable {
    public static let schema = "attachments"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @OptionalField(key: "patient_id") public var patientID: String?
    @OptionalField(key: "source_message_id") public var sourceMessageID: String?
    @Field(key: "content_type") public var contentType: String
    @Field(key: "filename") public var filename: String
    @Field(key: "data") public var data: Data
    @Field(key: "size") public var size: Int
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
}
