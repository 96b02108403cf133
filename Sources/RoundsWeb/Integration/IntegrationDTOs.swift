import Foundation
import RoundsIntegration
import RoundsDirectory
import RoundsStore
import Vapor

struct HL7MessageDTO: APISchema {
    static let enums = ["status": ["accepted", "held", "released", "error", "rejected", "duplicate", "pending", "sent", "dead"]]
    var id: String
    var direction: String
    var sender: String
    var controlId: String?
    var messageType: String
    var version: String?
    var status: String
    var ackCode: String?
    var error: String?
    var patientMrn: String?
    var patientId: String?
    var size: Int
    var duplicateCount: Int
    var replayOf: String?
    var peer: String?
    /// Who handed it in over HTTP or replayed it ("staff:<id>", "token:<id>"); absent over MLLP.
    var submittedBy: String?
    /// For IT: stored, but look at it (a control id the sender used before for another message).
    var notice: String?
    var receivedAt: Date

    init(_ r: HL7MessageRecord) {
        id = r.id ?? ""; direction = r.direction; sender = r.sender; controlId = r.controlID; messageType = r.messageType
        version = r.version; status = r.status; ackCode = r.ackCode; error = r.error; patientMrn = r.patientMRN
        patientId = r.patientID; size = r.size; duplicateCount = r.duplicateCount; replayOf = r.replayOf; peer = r.peer
        submittedBy = r.submittedBy; notice = r.notice; receivedAt = r.receivedAt
    }

    static let sample: HL7MessageDTO = {
        let r = HL7MessageRecord()
        r.id = "…"; r.direction = "in"; r.sender = "HIS@ARION"; r.controlID = "MSG00001"; r.messageType = "ADT^A01"; r.version = "2.5"
        r.status = "accepted"; r.ackCode = "AA"; r.error = "…"; r.patientMRN = "MRN10001"; r.patientID = "…"; r.size = 812
        r.duplicateCount = 0; r.replayOf = "…"; r.peer = "10.1.2.3"; r.submittedBy = "token:…"; r.notice = "…"; r.receivedAt = Date(timeIntervalSince1970: 0)
        return HL7MessageDTO(r)
    }()
}

struct HL7MessageDetailDTO: APISchema {
    var message: HL7MessageDTO
    /// The message as text, segments separated by CR.
    var text: String
    var segments: [MessageStore.TreeSegment]
    var parseError: String?

    static let sample = HL7MessageDetailDTO(
        message: .sample, text: "MSH|^~\\&|HIS|ARION|…",
        segments: [.init(name: "PID", description: "Patient Identification",
                         fields: [.init(position: "PID-5", name: "Patient Name", value: "王^建国", components: ["王", "建国"])])],
        parseError: "…")
}

struct ReceiptDTO: APISchema {
    static let enums = ["outcome": ["accepted", "duplicate", "held", "error", "rejected"]]
    var outcome: String
    var messageId: String?
    var detail: String?
    /// The HL7 acknowledgement that was (or would be) sent back.
    var acknowledgement: String

    init(_ r: Receipt) {
        outcome = r.outcome.rawValue; messageId = r.messageID; detail = r.detail
        acknowledgement = String(decoding: r.acknowledgement, as: UTF8.self)
    }
    init(outcome: String, messageId: String?, detail: String?, acknowledgement: String) {
        self.outcome = outcome; self.messageId = messageId; self.detail = detail; self.acknowledgement = acknowledgement
    }
    static let sample = ReceiptDTO(outcome: "accepted", messageId: "…", detail: "1 events", acknowledgement: "MSH|^~\\&|ROUNDS|…")
}

struct OutboundDTO: APISchema {
    var id: String
    var host: String
    var port: Int
    var controlId: String?
    var messageType: String
    var status: String
    var attempts: Int
    var nextAttemptAt: Date
    var lastError: String?
    var ackCode: String?
    var createdAt: Date
    var sentAt: Date?

    init(_ m: OutboundMessage) {
        id = m.id ?? ""; host = m.host; port = m.port; controlId = m.controlID; messageType = m.messageType; status = m.status
        attempts = m.attempts; nextAttemptAt = m.nextAttemptAt; lastError = m.lastError; ackCode = m.ackCode
        createdAt = m.createdAt; sentAt = m.sentAt
    }
    static let sample: OutboundDTO = {
        let m = OutboundMessage()
        m.id = "…"; m.host = "his.example"; m.port = 2575; m.controlID = "R0001"; m.messageType = "ORR^O02"; m.status = "pending"
        m.attempts = 1; m.nextAttemptAt = Date(timeIntervalSince1970: 0); m.lastError = "…"; m.ackCode = "AE"
        m.createdAt = Date(timeIntervalSince1970: 0); m.sentAt = Date(timeIntervalSince1970: 0)
        return OutboundDTO(m)
    }()
}

struct EnqueueOutboundBody: APISchema {
    var host: String
    var port: Int
    /// The message text (segments separated by CR or newlines).
    var message: String
    static let sample = EnqueueOutboundBody(host: "his.example", port: 2575, message: "MSH|^~\\&|ROUNDS|…")
}
