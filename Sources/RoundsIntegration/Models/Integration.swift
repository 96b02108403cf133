import Crypto
import FluentKit
import Foundation

/// Every HL7 message in or out, stored with its raw bytes before it is acknowledged.
public final class HL7MessageRecord: Model, @unchecked Sendable {
    public static let schema = "hl7_messages"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    /// "in" or "out".
    @Field(key: "direction") public var direction: String
    /// MSH-3@MSH-4 of the sender ("HIS@ARION"); the key for duplicate control ids.
    @Field(key: "sender") public var sender: String
    @OptionalField(key: "control_id") public var controlID: String?
    /// "ADT^A01"; empty when the message could not be read.
    @Field(key: "message_type") public var messageType: String
    @OptionalField(key: "version") public var version: String?
    @Field(key: "charset") public var charset: String
    @Field(key: "raw") public var raw: Data
    @Field(key: "size") public var size: Int
    /// accepted | held | error | rejected (inbound); pending | sent | dead (outbound).
    /// held: readable and valid, waiting for review (e.g. a result for a patient not admitted yet).
    @Field(key: "status") public var status: String
    @OptionalField(key: "ack_code") public var ackCode: String?
    @OptionalField(key: "error") public var error: String?
    @OptionalField(key: "patient_mrn") public var patientMRN: String?
    @OptionalField(key: "patient_id") public var patientID: String?
    @OptionalField(key: "hospital_id") public var hospitalID: String?
    @OptionalField(key: "peer") public var peer: String?
    /// Who handed it in over HTTP or replayed it ("staff:<id>", "token:<id>"); nil over MLLP.
    @OptionalField(key: "submitted_by") public var submittedBy: String?
    @OptionalField(key: "replay_of") public var replayOf: String?
    /// How many times the sender delivered this control id again (acknowledged, not processed).
    @Field(key: "duplicate_count") public var duplicateCount: Int
    /// Something IT should look at although the message was stored (a control id the sender
    /// used before for a different message); nil for most.
    @OptionalField(key: "notice") public var notice: String?
    /// For a held message: what it waits for ("ward|<sender>|<hospital id>|5N", "patient|<hospital id>|MRN1"),
    /// the key the mapping queue groups by.
    @OptionalField(key: "waiting_for") public var waitingFor: String?
    @Field(key: "received_at") public var receivedAt: Date

    public init() {}
}

/// Guards "one sender, one control id, processed once" with a primary key, so two connections
/// delivering the same message at the same moment cannot both process it.
public final class HL7ControlID: Model, @unchecked Sendable {
    public static let schema = "hl7_control_ids"
    /// sender + "\u{1F}" + control id.
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "message_id") public var messageID: String

    public init() {}
    public init(sender: String, controlID: String, messageID: String) {
        self.id = Self.key(sender: sender, controlID: controlID)
        self.messageID = messageID
    }

    /// A later message reusing the id with other content: keyed by its content too, so its own
    /// resends are duplicates of it (and two copies arriving at once are still stored once).
    public init(sender: String, controlID: String, content: [UInt8], messageID: String) {
        self.id = Self.key(sender: sender, controlID: controlID, content: content)
        self.messageID = messageID
    }

    public static func key(sender: String, controlID: String) -> String { sender + "\u{1F}" + controlID }

    public static func key(sender: String, controlID: String, content: [UInt8]) -> String {
        let digest = SHA256.hash(data: trimmed(content)).map { String(format: "%02x", $0) }.joined()
        return key(sender: sender, controlID: controlID) + "\u{1F}" + digest
    }

    /// Byte-identical but for line endings at the end (some senders add a trailing CR or LF on resend).
    public static func sameContent(_ a: [UInt8], _ b: [UInt8]) -> Bool { trimmed(a) == trimmed(b) }

    static func trimmed(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        var slice = bytes[...]
        while let last = slice.last, last == 0x0D || last == 0x0A { slice = slice.dropLast() }
        return slice
    }
}

/// An order as the HIS last described it (new, changed, discontinued).
public final class ClinicalOrder: Model, @unchecked Sendable {
    public static let schema = "clinical_orders"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @OptionalField(key: "encounter_id") public var encounterID: String?
    @Field(key: "placer_number") public var placerNumber: String
    @OptionalField(key: "filler_number") public var fillerNumber: String?
    /// active | discontinued | cancelled
    @Field(key: "status") public var status: String
    @Field(key: "code") public var code: String
    @Field(key: "description") public var description: String
    /// Dose, unit, frequency, notes, as JSON.
    @Field(key: "details") public var details: String
    @OptionalField(key: "ordered_by") public var orderedBy: String?
    @Field(key: "updated_at") public var updatedAt: Date

    public init() {}
}

/// One result value (OBX) with its abnormal flag and whether it is critical.
public final class Observation: Model, @unchecked Sendable {
    public static let schema = "observations"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @OptionalField(key: "encounter_id") public var encounterID: String?
    @OptionalField(key: "order_number") public var orderNumber: String?
    @Field(key: "code") public var code: String
    @Field(key: "name") public var name: String
    /// The code for a coded result (CE/CWE), else the value as sent.
    @Field(key: "value") public var value: String
    /// A coded result's text (OBX-5-2: "阳性" for POS), shown beside the code.
    @OptionalField(key: "value_text") public var valueText: String?
    /// The lab's NTE comments after this OBX (where "SEE COMMENTS" puts the interpretation).
    @OptionalField(key: "comment") public var comment: String?
    @OptionalField(key: "unit") public var unit: String?
    @OptionalField(key: "reference_range") public var referenceRange: String?
    @OptionalField(key: "abnormal_flag") public var abnormalFlag: String?
    @Field(key: "is_critical") public var isCritical: Bool
    @OptionalField(key: "observed_at") public var observedAt: Date?
    @Field(key: "source_message_id") public var sourceMessageID: String
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
}

/// A pathology, imaging or other document report, with its text and optional PDF.
public final class ClinicalReport: Model, @unchecked Sendable {
    public static let schema = "clinical_reports"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @OptionalField(key: "encounter_id") public var encounterID: String?
    @Field(key: "document_number") public var documentNumber: String
    @Field(key: "title") public var title: String
    @Field(key: "text") public var text: String
    /// The first attachment; `attachmentIDs` holds all of them in message order.
    @OptionalField(key: "attachment_id") public var attachmentID: String?
    /// Every embedded document of the report (JSON array of attachment ids), nil when none or
    /// stored before there could be more than one.
    @OptionalField(key: "attachment_ids") public var attachmentIDsJSON: String?
    /// NTE comments of the report.
    @OptionalField(key: "comment") public var comment: String?
    @OptionalField(key: "author") public var author: String?
    @Field(key: "status") public var status: String
    @Field(key: "source_message_id") public var sourceMessageID: String
    @Field(key: "created_at") public var createdAt: Date

    public init() {}

    public var attachmentIDs: [String] {
        get {
            if let json = attachmentIDsJSON, let ids = try? JSONDecoder().decode([String].self, from: Data(json.utf8)) { return ids }
            return attachmentID.map { [$0] } ?? []
        }
        set {
            attachmentID = newValue.first
            attachmentIDsJSON = newValue.isEmpty ? nil : String(decoding: (try? JSONEncoder().encode(newValue)) ?? Data("[]".utf8), as: UTF8.self)
        }
    }
}

/// A configurable critical-value rule: a result for `code` (in `unit`) below `low` or above
/// `high` is critical even when the lab did not flag it.
public final class CriticalValueRule: Model, @unchecked Sendable {
    public static let schema = "critical_value_rules"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "code") public var code: String
    @Field(key: "name") public var name: String
    @Field(key: "unit") public var unit: String
    @OptionalField(key: "low") public var low: Double?
    @OptionalField(key: "high") public var high: Double?

    public init() {}
    public init(id: String, code: String, name: String, unit: String, low: Double?, high: Double?) {
        self.id = id; self.code = code; self.name = name; self.unit = unit; self.low = low; self.high = high
    }
}

/// A message waiting to go out over MLLP, with its retry state. Survives restarts.
public final class OutboundMessage: Model, @unchecked Sendable {
    public static let schema = "hl7_outbound"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "host") public var host: String
    @Field(key: "port") public var port: Int
    /// The outbound channel it goes through (its retry policy); nil: sent as addressed.
    @OptionalField(key: "channel_id") public var channelID: String?
    @Field(key: "raw") public var raw: Data
    @OptionalField(key: "control_id") public var controlID: String?
    @Field(key: "message_type") public var messageType: String
    /// pending | sent | dead
    @Field(key: "status") public var status: String
    @Field(key: "attempts") public var attempts: Int
    @Field(key: "next_attempt_at") public var nextAttemptAt: Date
    @OptionalField(key: "claimed_until") public var claimedUntil: Date?
    @OptionalField(key: "last_error") public var lastError: String?
    @OptionalField(key: "ack_code") public var ackCode: String?
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "sent_at") public var sentAt: Date?

    public init() {}
}
