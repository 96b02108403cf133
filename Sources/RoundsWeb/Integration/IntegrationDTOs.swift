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
    /// The outbound channel it goes through, if it was routed.
    var channelId: String?

    init(_ m: OutboundMessage) {
        id = m.id ?? ""; host = m.host; port = m.port; controlId = m.controlID; messageType = m.messageType; status = m.status
        channelId = m.channelID
        attempts = m.attempts; nextAttemptAt = m.nextAttemptAt; lastError = m.lastError; ackCode = m.ackCode
        createdAt = m.createdAt; sentAt = m.sentAt
    }
    static let sample: OutboundDTO = {
        let m = OutboundMessage()
        m.id = "…"; m.host = "his.example"; m.port = 2575; m.controlID = "R0001"; m.messageType = "ORR^O02"; m.status = "pending"
        m.attempts = 1; m.nextAttemptAt = Date(timeIntervalSince1970: 0); m.lastError = "…"; m.ackCode = "AE"
        m.createdAt = Date(timeIntervalSince1970: 0); m.sentAt = Date(timeIntervalSince1970: 0); m.channelID = "…"
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

extension ChannelSettings.Unknown: APIEnumeration {}
extension ChannelSettings.AttendingSource: APIEnumeration {}

/// A sending system's channel as the API reads and writes it.
struct ChannelDTO: APISchema {
    var id: String
    var name: String
    /// MSH-3 matched ("" any).
    var application: String
    /// MSH-4 matched ("" any).
    var facility: String
    var hospitalId: String?
    var enabled: Bool
    var settings: ChannelSettings
    var version: Int
    var updatedAt: Date
    var updatedBy: String?

    init(_ c: HL7Channel) {
        id = c.id ?? ""; name = c.name; application = c.application; facility = c.facility; hospitalId = c.hospitalID
        enabled = c.enabled; settings = c.settings; version = c.version; updatedAt = c.updatedAt; updatedBy = c.updatedBy
    }

    static let sampleSettings: ChannelSettings = {
        var s = ChannelSettings()
        s.wardCodes = ["5N": "LUNG"]
        s.messageTypes = ["ADT", "ORU^R01"]
        return s
    }()

    static let sample: ChannelDTO = {
        let c = HL7Channel()
        c.id = "…"; c.name = "检验科 LIS"; c.application = "LIS"; c.facility = "ARION"; c.hospitalID = "…"; c.enabled = true
        c.settings = sampleSettings; c.version = 3; c.updatedAt = Date(timeIntervalSince1970: 0); c.updatedBy = "胡斌"
        return ChannelDTO(c)
    }()
}

struct ChannelBody: APISchema {
    var name: String
    var application: String
    var facility: String
    var hospitalId: String?
    var enabled: Bool?
    var settings: ChannelSettings?
    /// The version the edit started from; a stale one is refused with 409.
    var version: Int?

    var draft: ChannelService.Draft {
        .init(name: name, application: application, facility: facility, hospitalID: hospitalId, enabled: enabled ?? true,
              settings: settings ?? ChannelSettings(), version: version)
    }

    static let sample = ChannelBody(name: "检验科 LIS", application: "LIS", facility: "ARION", hospitalId: "…", enabled: true,
                                    settings: ChannelDTO.sampleSettings, version: 3)
}

struct ChannelVersionDTO: APISchema {
    var version: Int
    var name: String
    var application: String
    var facility: String
    var hospitalId: String?
    var enabled: Bool
    var settings: ChannelSettings
    var savedAt: Date
    var savedBy: String?

    init(_ v: HL7ChannelVersion) {
        version = v.version; name = v.name; application = v.application; facility = v.facility; hospitalId = v.hospitalID
        enabled = v.enabled
        settings = v.settings
        savedAt = v.savedAt; savedBy = v.savedBy
    }

    static let sample: ChannelVersionDTO = {
        let v = HL7ChannelVersion()
        v.version = 2; v.name = "检验科 LIS"; v.application = "LIS"; v.facility = "ARION"; v.hospitalID = "…"; v.enabled = true
        v.settings = ChannelDTO.sampleSettings
        v.savedAt = Date(timeIntervalSince1970: 0); v.savedBy = "胡斌"
        return ChannelVersionDTO(v)
    }()
}

/// A message to try: its text, or a stored message's id; through a saved channel, a draft, or
/// the channel it would match.
struct ChannelTestBody: APISchema {
    var message: String?
    var messageId: String?
    var channelId: String?
    var channel: ChannelBody?
    static let sample = ChannelTestBody(message: "MSH|^~\\&|LIS|ARION|…", messageId: nil, channelId: "…", channel: nil)
}

struct DryRunDTO: APISchema {
    static let enums = ["outcome": ["accepted", "held", "error", "rejected"]]
    var outcome: String
    var reason: String?
    var messageType: String
    var channel: String?
    var hospitalId: String?
    var patientMrn: String?
    var patientName: String?
    var patientKnown: Bool?
    var waitingFor: String?
    var events: [InboundPipeline.DryRun.Event]
    /// Always false: nothing was written.
    var written: Bool

    init(_ r: InboundPipeline.DryRun) {
        outcome = r.outcome; reason = r.reason; messageType = r.messageType; channel = r.channel; hospitalId = r.hospitalID
        patientMrn = r.patientMRN; patientName = r.patientName; patientKnown = r.patientKnown; waitingFor = r.waitingFor
        events = r.events; written = false
    }

    static let sample = DryRunDTO(InboundPipeline.DryRun(
        outcome: "accepted", reason: "…", messageType: "ORU^R01", channel: "检验科 LIS", hospitalID: "…", patientMRN: "MRN10001",
        patientName: "王建国", patientKnown: true, waitingFor: "…",
        events: [.init(kind: "observation.result", summary: "Potassium 6.9 mmol/L", critical: true)]))
}

/// One group of the mapping queue.
struct WaitingDTO: APISchema {
    static let enums = ["kind": ["ward", "staff", "patient", "other"]]
    var key: String
    var kind: String
    var sender: String
    var hospitalId: String?
    var code: String
    var count: Int
    var oldest: Date
    var newest: Date

    init(_ w: ChannelService.Waiting) {
        key = w.key; kind = w.kind; sender = w.sender; hospitalId = w.hospitalID; code = w.code; count = w.count
        oldest = w.oldest; newest = w.newest
    }

    static let sample = WaitingDTO(ChannelService.Waiting(key: "ward|HIS@ARION|…|5N", kind: "ward", sender: "HIS@ARION", hospitalID: "…",
                                                          code: "5N", count: 37, oldest: Date(timeIntervalSince1970: 0),
                                                          newest: Date(timeIntervalSince1970: 0)))
}

struct MapWardBody: APISchema {
    var key: String
    var wardId: String
    static let sample = MapWardBody(key: "ward|HIS@ARION|…|5N", wardId: "…")
}

struct MapStaffBody: APISchema {
    var key: String
    var staffId: String
    static let sample = MapStaffBody(key: "staff|HIS@ARION|…|D777", staffId: "…")
}

struct ReleaseBody: APISchema {
    var key: String
    static let sample = ReleaseBody(key: "ward|HIS@ARION|…|5N")
}

/// What releasing a group did: how many messages were applied, and those that still wait or failed.
struct ReleaseDTO: APISchema {
    var applied: Int
    var stillWaiting: Int
    var failed: Int
    var receipts: [ReceiptDTO]

    init(_ receipts: [Receipt]) {
        applied = receipts.filter { $0.outcome == .accepted }.count
        stillWaiting = receipts.filter { $0.outcome == .held }.count
        failed = receipts.count - applied - stillWaiting
        self.receipts = receipts.map(ReceiptDTO.init)
    }

    static let sample = ReleaseDTO(applied: 36, stillWaiting: 1, failed: 0, receipts: [ReceiptDTO.sample])
    init(applied: Int, stillWaiting: Int, failed: Int, receipts: [ReceiptDTO]) {
        self.applied = applied; self.stillWaiting = stillWaiting; self.failed = failed; self.receipts = receipts
    }
}

struct OutboundChannelDTO: APISchema {
    var id: String
    var name: String
    var host: String
    var port: Int
    var hospitalId: String?
    var enabled: Bool
    var settings: OutboundSettings
    var version: Int
    var updatedAt: Date
    var updatedBy: String?

    init(_ c: HL7OutboundChannel) {
        id = c.id ?? ""; name = c.name; host = c.host; port = c.port; hospitalId = c.hospitalID; enabled = c.enabled
        settings = c.settings; version = c.version; updatedAt = c.updatedAt; updatedBy = c.updatedBy
    }

    static let sampleSettings: OutboundSettings = {
        var s = OutboundSettings()
        s.messageTypes = ["MDM^T02"]
        s.transforms = [.init(path: "MSH-5", value: "HIS")]
        return s
    }()

    static let sample: OutboundChannelDTO = {
        let c = HL7OutboundChannel()
        c.id = "…"; c.name = "HIS 病历接收"; c.host = "his.example"; c.port = 2575; c.hospitalID = "…"; c.enabled = true
        c.settings = sampleSettings; c.version = 1; c.updatedAt = Date(timeIntervalSince1970: 0); c.updatedBy = "管理员"
        return OutboundChannelDTO(c)
    }()
}

struct OutboundChannelBody: APISchema {
    var name: String
    var host: String
    var port: Int
    var hospitalId: String?
    var enabled: Bool?
    var settings: OutboundSettings?
    var version: Int?

    var draft: ChannelService.OutboundDraft {
        .init(name: name, host: host, port: port, hospitalID: hospitalId, enabled: enabled ?? true, settings: settings ?? OutboundSettings(), version: version)
    }

    static let sample = OutboundChannelBody(name: "HIS 病历接收", host: "his.example", port: 2575, hospitalId: "…", enabled: true,
                                            settings: OutboundChannelDTO.sampleSettings, version: 1)
}

struct RouteOutboundBody: APISchema {
    /// The message text (segments separated by CR or newlines).
    var message: String
    /// The hospital it concerns: channels for that hospital and channels for any.
    var hospitalId: String?
    static let sample = RouteOutboundBody(message: "MSH|^~\\&|ROUNDS|…", hospitalId: "…")
}
