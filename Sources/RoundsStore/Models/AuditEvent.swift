import FluentKit
import Foundation

/// One line of the audit trail: who did what to which record, when, from where, and whether
/// it was allowed. Rows are only ever inserted; the database refuses updates and deletes.
public final class AuditEvent: Model, @unchecked Sendable {
    public static let schema = "audit_events"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "at") public var at: Date
    @Field(key: "actor_kind") public var actorKind: String
    @OptionalField(key: "actor_id") public var actorID: String?
    @Field(key: "actor_name") public var actorName: String
    @Field(key: "action") public var action: String
    @Field(key: "entity_type") public var entityType: String
    @OptionalField(key: "entity_id") public var entityID: String?
    @OptionalField(key: "patient_id") public var patientID: String?
    @OptionalField(key: "hospital_id") public var hospitalID: String?
    @OptionalField(key: "client_address") public var clientAddress: String?
    @Field(key: "outcome") public var outcome: String
    @OptionalField(key: "detail") public var detail: String?

    public init() {}
}
