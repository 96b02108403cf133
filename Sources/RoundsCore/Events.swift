import Foundation

/// What happened, as the outbox records it (`outbox_events.kind`). Capabilities register
/// handlers for the kinds they consume; a kind nobody handles is simply marked dispatched.
public enum EventKind: String, Codable, Sendable, CaseIterable {
    // Patients and stays (ADT, or the API): payload `ClinicalEvent.PatientMoved`.
    case patientAdmitted = "patient.admitted"
    case patientTransferred = "patient.transferred"
    case patientDischarged = "patient.discharged"
    case patientUpdated = "patient.updated"
    case patientMerged = "patient.merged"
    case admissionCancelled = "admission.cancelled"
    case transferCancelled = "transfer.cancelled"
    case dischargeCancelled = "discharge.cancelled"
    // Orders: payload `ClinicalEvent.OrderChanged`.
    case orderCreated = "order.created"
    case orderChanged = "order.changed"
    case orderCancelled = "order.cancelled"
    case orderDiscontinued = "order.discontinued"
    // Results and reports.
    case observationResult = "observation.result"      // ClinicalEvent.ResultsReported
    case observationCritical = "observation.critical"  // ClinicalEvent.ObservationResult
    case reportReceived = "report.received"            // ClinicalEvent.ReportReceived
    // Bedside nursing.
    case assessmentHighRisk = "assessment.high_risk"   // ClinicalEvent.AssessmentRecorded
    // Ward-round notes: a version signed (payload `ClinicalEvent.DocumentSigned`).
    case roundNoteSigned = "round_note.signed"
    // MDT: the report signed (payload `ClinicalEvent.DocumentSigned`, type MDT).
    case mdtReportSigned = "mdt.report_signed"
    // Tables: a record created, changed, deleted or restored (payload `TableEvent.RecordChanged`).
    case tableRecordCreated = "table.record_created"
    case tableRecordUpdated = "table.record_updated"
    case tableRecordDeleted = "table.record_deleted"
    case tableRecordRestored = "table.record_restored"
    /// A comment on a record, with the people it @mentions (payload `TableEvent.Commented`).
    case tableRecordCommented = "table.record_commented"

    /// A critical value: its patient's events go before routine ones, and a routine batch yields.
    public var isUrgent: Bool { self == .observationCritical }

    public static let orderKinds: Set<EventKind> = [.orderCreated, .orderChanged, .orderCancelled, .orderDiscontinued]
}

/// An event not yet written: its kind, whom it is about, and its payload as JSON (sorted keys,
/// ISO 8601 dates — the form handlers decode).
public struct PendingEvent: Sendable, Equatable {
    public var kind: EventKind
    public var patientID: String?
    public var encounterID: String?
    public var hospitalID: String?
    /// The inbound message it came from, when it came from one (replay and the message page).
    public var sourceMessageID: String?
    public var payload: String

    public init(_ kind: EventKind, patientID: String?, encounterID: String?, hospitalID: String?, sourceMessageID: String? = nil,
                payload: some Encodable) throws {
        self.kind = kind
        self.patientID = patientID
        self.encounterID = encounterID
        self.hospitalID = hospitalID
        self.sourceMessageID = sourceMessageID
        self.payload = String(decoding: try Self.encoder.encode(payload), as: UTF8.self)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    /// Reads a stored payload back (the handlers' side).
    public static func decode<P: Decodable>(_ type: P.Type, from payload: String) throws -> P {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: Data(payload.utf8))
    }
}

/// A wake-up: "look again, something you follow changed". Sent within a process and, on
/// PostgreSQL, to every process through NOTIFY (the raw value is the NOTIFY payload).
public struct Wake: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Outbox events committed: the dispatcher looks for them.
    public static let outbox = Wake(rawValue: "outbox")
    /// …and one of them is a critical value: the batch in hand yields to it.
    public static let outboxUrgent = Wake(rawValue: "outbox-urgent")
    /// Messages, members or read receipts changed in some group.
    public static let chat = Wake(rawValue: "chat")
    /// A listener (re)connected: whatever was missed meanwhile, every reader catches up.
    public static let catchUp = Wake(rawValue: "")
    /// One message was edited, recalled or its card replaced.
    public static func messageUpdated(_ messageID: String) -> Wake { Wake(rawValue: "update:\(messageID)") }
    /// Someone is typing (`typing:<group>:<staff>:<name>`), for the group's members only.
    public static func typing(groupID: String, staffID: String, name: String) -> Wake {
        Wake(rawValue: "typing:\(groupID):\(staffID):\(name)")
    }

    /// Records of a user table changed: its open grids look (`table:<tableId>`).
    public static func tableChanged(_ tableID: String) -> Wake { Wake(rawValue: "table:\(tableID)") }

    /// The wake-up a batch of events sends.
    public static func forEvents(_ kinds: some Sequence<EventKind>) -> Wake {
        kinds.contains(where: \.isUrgent) ? .outboxUrgent : .outbox
    }

    public var isOutbox: Bool { self == .outbox || self == .outboxUrgent }
    public var updatedMessageID: String? { rawValue.hasPrefix("update:") ? String(rawValue.dropFirst(7)) : nil }
    public var isTyping: Bool { rawValue.hasPrefix("typing:") }
    public var changedTableID: String? { rawValue.hasPrefix("table:") ? String(rawValue.dropFirst(6)) : nil }
    public var description: String { rawValue.isEmpty ? "catch-up" : rawValue }
}
