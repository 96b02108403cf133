import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsHL7
import RoundsStore

/// The message store as people use it: find messages, read them raw and as a named tree,
/// replay them, export them. HL7 messages are patient data, so every read is audited.
public struct MessageStore: Sendable {
    public let audit: AuditLog

    public init(audit: AuditLog) {
        self.audit = audit
    }

    public struct Filter: Sendable {
        public var messageType: String?
        public var status: String?
        public var sender: String?
        public var mrn: String?
        public var direction: String?
        public var from: Date?
        public var to: Date?
        public var limit: Int
        public var beforeID: String?

        public init(messageType: String? = nil, status: String? = nil, sender: String? = nil, mrn: String? = nil, direction: String? = nil,
                    from: Date? = nil, to: Date? = nil, limit: Int = 100, beforeID: String? = nil) {
            self.messageType = messageType; self.status = status; self.sender = sender; self.mrn = mrn; self.direction = direction
            self.from = from; self.to = to; self.limit = limit; self.beforeID = beforeID
        }
    }

    private func requireAccess(_ context: RequestContext, action: String, on db: any Database) async throws {
        guard context.principal.canUseIntegration else {
            try await audit.record(action, entityType: "hl7_message", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("the HL7 message store is for IT, administrators and integration tokens")
        }
    }

    /// The outbound queue (what Rounds sends to the HIS/LIS: patient data): for group
    /// administrators and installation-wide integration tokens only; the read is audited.
    public func outbound(limit: Int = 200, context: RequestContext, on db: any Database) async throws -> [OutboundMessage] {
        try await requireOutboundAccess(context, action: "hl7.outbound.list", on: db)
        let rows = try await OutboundMessage.query(on: db).sort(\.$createdAt, .descending).limit(limit).all()
        try await audit.record("hl7.outbound.list", entityType: "hl7_outbound", entityID: nil, detail: "\(rows.count) messages",
                               context: context, on: db)
        return rows
    }

    /// Reading or filling the outbound queue; a refusal is audited like any other.
    public func requireOutboundAccess(_ context: RequestContext, action: String, on db: any Database) async throws {
        guard context.principal.managesOutboundHL7 else {
            try await audit.record(action, entityType: "hl7_outbound", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("the outbound HL7 queue is for group administrators and installation-wide integration tokens")
        }
    }

    /// The message store page's outbound section: the queue for those who may see it, nothing
    /// (and nothing read) for the others.
    public func outboundSection(limit: Int = 20, context: RequestContext, on db: any Database) async throws -> [OutboundMessage] {
        guard context.principal.managesOutboundHL7 else { return [] }
        return try await outbound(limit: limit, context: context, on: db)
    }

    private func visible(_ record: HL7MessageRecord, to principal: Principal) -> Bool {
        // A message no hospital claims (unknown facility, unreadable) is IT's to sort out: every
        // hospital's IT sees it, or nobody but the group administrator would ever fix the mapping.
        // (IT staff, that is: a token limited to one hospital is a machine of that hospital.)
        guard let hospitals = principal.integrationHospitalIDs else { return true }
        return record.hospitalID.map(hospitals.contains) ?? (principal.kind == .staff)
    }

    public func search(_ filter: Filter, context: RequestContext, on db: any Database) async throws -> [HL7MessageRecord] {
        try await requireAccess(context, action: "hl7.message.list", on: db)
        let query = HL7MessageRecord.query(on: db)
        if let hospitals = context.principal.integrationHospitalIDs {
            if context.principal.kind == .staff {
                query.group(.or) { $0.filter(\.$hospitalID ~~ Array(hospitals)).filter(\.$hospitalID == nil) }
            } else {
                query.filter(\.$hospitalID ~~ Array(hospitals))
            }
        }
        if let v = filter.messageType { query.filter(\.$messageType, .custom("LIKE"), v.uppercased() + "%") }
        if let v = filter.status { query.filter(\.$status == v) }
        if let v = filter.sender { query.filter(\.$sender == v) }
        if let v = filter.mrn { query.filter(\.$patientMRN == v) }
        if let v = filter.direction { query.filter(\.$direction == v) }
        if let v = filter.from { query.filter(\.$receivedAt >= v) }
        if let v = filter.to { query.filter(\.$receivedAt < v) }
        if let v = filter.beforeID { query.filter(\.$id < v) }
        // Ids grow with arrival (UUIDv7, monotonic), so newest-first by id pages cleanly with `before`.
        let rows = try await query.sort(\.$id, .descending)
            .limit(max(1, min(filter.limit, 5000))).all()
        try await audit.record("hl7.message.list", entityType: "hl7_message", entityID: nil, detail: "\(rows.count) messages",
                               context: context, on: db)
        return rows
    }

    public func message(id: String, context: RequestContext, on db: any Database) async throws -> HL7MessageRecord {
        try await requireAccess(context, action: "hl7.message.read", on: db)
        guard let record = try await HL7MessageRecord.find(id, on: db), visible(record, to: context.principal) else {
            throw RoundsError.notFound("HL7 message", id: id)
        }
        try await audit.record("hl7.message.read", entityType: "hl7_message", entityID: id, patientID: record.patientID,
                               hospitalID: record.hospitalID, context: context, on: db)
        return record
    }

    /// What the replay confirmation shows: the message (read as `message` reads it), its patient,
    /// and the ids of it and its earlier replays (whatever they raised is not raised again).
    public struct ReplayPreview: Sendable {
        public var record: HL7MessageRecord
        public var patient: Patient?
        public var messageIDs: [String]
    }

    public func replayPreview(id: String, context: RequestContext, on db: any Database) async throws -> ReplayPreview {
        let record = try await message(id: id, context: context, on: db)
        var patient: Patient?
        if let patientID = record.patientID { patient = try await Patient.find(patientID, on: db) }
        let replays = try await HL7MessageRecord.query(on: db).filter(\.$replayOf == .some(record.id!)).all().compactMap(\.id)
        return ReplayPreview(record: record, patient: patient, messageIDs: replays + [record.id!])
    }

    /// Runs a stored message through the pipeline again (after fixing what made it fail).
    /// The new processing is stored as a new message that points back at the original.
    public func replay(id: String, pipeline: InboundPipeline, context: RequestContext, on db: any Database) async throws -> Receipt {
        let record = try await message(id: id, context: context, on: db)
        guard record.direction == "in" else { throw RoundsError.validation("only inbound messages can be replayed") }
        guard !record.raw.isEmpty else { throw RoundsError.validation("this message was refused before its bytes were kept (too large)") }
        guard let receipt = await pipeline.receive(Array(record.raw), peer: "replay by \(context.principal.displayName)", replayOf: id,
                                                   submitter: HL7Submitter(context.principal), on: db) else {
            throw RoundsError(code: "storage_unavailable", status: 503, zh: "暂时无法保存消息，请稍后重试", en: "The message could not be stored; try again")
        }
        try await audit.record("hl7.message.replay", entityType: "hl7_message", entityID: id, patientID: record.patientID,
                               hospitalID: record.hospitalID, detail: receipt.outcome.rawValue, context: context, on: db)
        return receipt
    }

    /// The messages as one file: each message's segments end with CR and messages are
    /// separated by a blank line, as HL7 batch tools read them.
    public static func export(_ records: [HL7MessageRecord]) -> Data {
        var out = Data()
        for record in records where !record.raw.isEmpty {
            var raw = record.raw
            if raw.last != 0x0D { raw.append(0x0D) }
            out.append(raw)
            out.append(0x0A)
        }
        return out
    }

    // MARK: The parsed tree

    public struct TreeField: Sendable, Codable {
        public var position: String
        public var name: String
        public var value: String
        public var components: [String]
        public init(position: String, name: String, value: String, components: [String]) {
            self.position = position; self.name = name; self.value = value; self.components = components
        }
    }

    public struct TreeSegment: Sendable, Codable {
        public var name: String
        public var description: String
        public var fields: [TreeField]
        public init(name: String, description: String, fields: [TreeField]) {
            self.name = name; self.description = description; self.fields = fields
        }
    }

    /// Segment → non-empty fields, each with its standard name, raw value and unescaped components.
    public static func tree(of record: HL7MessageRecord) -> (text: String, segments: [TreeSegment], error: String?) {
        let bytes = Array(record.raw)
        let charset = HL7Charset.declared(in: bytes)
        let text = (try? charset.decode(bytes)) ?? String(decoding: bytes, as: UTF8.self)
        guard let (message, _) = try? HL7Message.parse(bytes: bytes) else {
            return (text, [], record.error ?? "not readable as HL7")
        }
        let d = message.delimiters
        var counts: [String: Int] = [:]
        let segments = message.segments.map { segment -> TreeSegment in
            counts[segment.name, default: 0] += 1
            let occurrence = counts[segment.name]!
            var fields: [TreeField] = []
            for index in 1..<segment.fields.count {
                let field = segment.fields[index]
                let raw = field.map { rep in rep.map { $0.joined(separator: String(d.subcomponent)) }.joined(separator: String(d.component)) }
                    .joined(separator: String(d.repetition))
                guard !raw.isEmpty else { continue }
                let components = (field.first ?? []).map { HL7Escaping.unescape($0.joined(separator: String(d.subcomponent)), d) }
                let position = occurrence > 1 ? "\(segment.name)(\(occurrence))-\(index)" : "\(segment.name)-\(index)"
                fields.append(TreeField(position: position, name: HL7FieldNames.name(segment.name, index), value: raw, components: components))
            }
            return TreeSegment(name: segment.name, description: HL7FieldNames.segments[segment.name] ?? "", fields: fields)
        }
        return (text, segments, nil)
    }
}
