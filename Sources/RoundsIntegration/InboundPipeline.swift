import FluentKit
import Foundation
import NIOConcurrencyHelpers
import Logging
import Metrics
import RoundsCore
import RoundsDirectory
import RoundsHL7
import RoundsStore
import SQLKit

/// Who handed a message in over HTTP (a person or an API token), as opposed to the sending
/// system named in MSH-3/4, which anyone can write.
public struct HL7Submitter: Sendable, Equatable {
    /// staff or token.
    public var kind: String
    public var id: String
    public var name: String
    public init(kind: String, id: String, name: String) { self.kind = kind; self.id = id; self.name = name }

    public init(_ principal: Principal) {
        self.init(kind: principal.actorKind, id: principal.id, name: principal.displayName)
    }

    /// As stored on the message: "staff:<id>" or "token:<id>".
    public var reference: String { "\(kind):\(id)" }
}

/// What happened to one inbound message.
public struct Receipt: Sendable {
    public enum Outcome: String, Sendable {
        case accepted, duplicate, held, error, rejected
    }

    public var outcome: Outcome
    /// The acknowledgement to send back, already encoded in the message's character set.
    public var acknowledgement: [UInt8]
    public var messageID: String?
    public var detail: String?
    /// The patient and hospital an applied message was about (what waits for them can go).
    var patientMRN: String? = nil
    var hospitalID: String? = nil
}

/// Inbound HL7, the whole way: read → store the raw bytes → apply to patients, orders, results
/// and reports → write outbox events → acknowledge. Storing, applying and the outbox happen in
/// one transaction, which commits before the AA is returned; if nothing could be stored, no
/// acknowledgement is returned at all (the caller closes the connection and the sender resends).
public struct InboundPipeline: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let audit: AuditLog
    public let logger: Logger
    /// Writes the clinical events (and wakes the outbox dispatcher of every process when they commit).
    let outbox: OutboxWriter
    let ruleCache = RuleCache()
    /// The configured channels, read through a short-lived cache.
    public let channels = ChannelDirectory()
    /// Hospitals and staff by HIS id, read through a short-lived cache.
    public let lookups = LookupCache()

    public init(clock: any RoundsClock, ids: IDGenerator, logger: Logger = Logger(label: "rounds.hl7"), outbox: OutboxWriter, audit: AuditLog) {
        self.clock = clock
        self.ids = ids
        self.outbox = outbox
        self.audit = audit
        self.logger = logger
    }

    /// Processes one message. Returns nil only when the message could not be stored.
    /// `port`: the listening port it came in on (a channel may own one).
    public func receive(_ bytes: [UInt8], peer: String?, port: Int? = nil, replayOf: String? = nil, submitter: HL7Submitter? = nil,
                        on db: any Database) async -> Receipt? {
        let started = DispatchTime.now()
        let receipt = await process(bytes, peer: peer, port: port, replayOf: replayOf, submitter: submitter, on: db)
        // Exported on /metrics: rounds_hl7_messages_total{outcome=…} and the time to an answer.
        Counter(label: "rounds_hl7_messages_total", dimensions: [("outcome", receipt?.outcome.rawValue ?? "not_stored")]).increment()
        Metrics.Timer(label: "rounds_hl7_processing_seconds").recordInterval(since: started)
        return receipt
    }

    private func process(_ bytes: [UInt8], peer: String?, port: Int?, replayOf: String?, submitter: HL7Submitter?, on db: any Database) async -> Receipt? {
        let now = clock.now()
        let parsed: HL7Message
        let charset: HL7Charset
        do {
            (parsed, charset) = try HL7Message.parse(bytes: bytes)
        } catch {
            let reason = (error as? HL7Error)?.description ?? "unreadable message"
            let code = (error as? HL7Error)?.errorCode ?? "100"
            return await storeRefusal(bytes, message: nil, charset: .utf8, status: .rejected, ack: .reject, reason: reason,
                                      errorCode: code, peer: peer, submitter: submitter, now: now, on: db)
        }
        let sender = "\(parsed.sendingApplication)@\(parsed.sendingFacility)"
        let controlID = parsed.controlID
        guard !controlID.isEmpty else {
            return await storeRefusal(bytes, message: parsed, charset: charset, status: .rejected, ack: .reject,
                                      reason: "MSH-10 (message control id) is required", errorCode: "101", peer: peer, submitter: submitter, now: now, on: db)
        }
        guard !parsed.messageType.isEmpty else {
            return await storeRefusal(bytes, message: parsed, charset: charset, status: .rejected, ack: .reject,
                                      reason: "MSH-9 (message type) is required", errorCode: "101", peer: peer, submitter: submitter, now: now, on: db)
        }
        let rules: [CriticalValueRule]
        let channel: ResolvedChannel
        do {
            rules = ["ORU", "MDM"].contains(parsed.messageType) ? try await ruleCache.rules(on: db) : []
            channel = try await channels.channel(for: parsed, port: port, on: db)
        } catch { return nil }
        guard channel.settings.allows(type: parsed.messageType, trigger: parsed.triggerEvent) else {
            return await storeRefusal(bytes, message: parsed, charset: charset, status: .rejected, ack: .reject,
                                      reason: "message type \(parsed.messageType)^\(parsed.triggerEvent) is not allowed on channel '\(channel.name)'",
                                      errorCode: "200", peer: peer, submitter: submitter, replayOf: replayOf, now: now, on: db)
        }
        let flags = Set(channel.settings.criticalFlags.map { $0.uppercased() })

        // SQLite has one writer: take turns in-process instead of colliding (a collision between
        // two transactions that both read first ends in SQLITE_BUSY, not a wait).
        // A message with a critical value goes before routine ones.
        // Cancelled while waiting (the server is stopping): nothing stored, so no ACK.
        let receipt = try? await SQLiteWriteGate.serialised(db, urgent: ResultMapper.carriesCriticalValue(parsed, rules: rules, flags: flags), writer: "hl7") {
            await apply(bytes, parsed, charset: charset, sender: sender, rules: rules, channel: channel, peer: peer, replayOf: replayOf,
                        submitter: submitter, now: now, on: db)
        }
        if let receipt, receipt.outcome == .accepted, parsed.messageType == "ADT", let mrn = receipt.patientMRN, let hospitalID = receipt.hospitalID {
            // The orders and results that waited for this patient go now, in the order they came.
            _ = try? await release(waitingFor: "patient|\(hospitalID)|\(mrn)",
                                   by: "released after \(parsed.messageType)^\(parsed.triggerEvent) \(parsed.controlID)", on: db)
        }
        return receipt
    }

    /// Applies the held messages waiting for `key`, oldest first. One that still cannot be
    /// applied stays held (waiting for what it needs now) or keeps its failed replay with the reason.
    public func release(waitingFor key: String, by: String, submitter: HL7Submitter? = nil, on db: any Database) async throws -> [Receipt] {
        let held = try await HL7MessageRecord.query(on: db).filter(\.$status == Receipt.Outcome.held.rawValue)
            .filter(\.$waitingFor == key).filter(\.$direction == "in").sort(\.$id).limit(5000).all()
        var receipts: [Receipt] = []
        for message in held {
            if let receipt = await receive(Array(message.raw), peer: by, replayOf: message.id, submitter: submitter, on: db) {
                receipts.append(receipt)
            }
        }
        return receipts
    }

    /// Stores and applies a readable message in one transaction (retried on write conflicts).
    private func apply(_ bytes: [UInt8], _ parsed: HL7Message, charset: HL7Charset, sender: String, rules: [CriticalValueRule],
                       channel: ResolvedChannel, peer: String?, replayOf: String?, submitter: HL7Submitter?, now: Date,
                       on db: any Database) async -> Receipt? {
        let controlID = parsed.controlID
        // Concurrent senders may race on the same patient; a conflicting transaction is retried.
        var lastError: (any Error)?
        for attempt in 1...4 {
            var delivery = Delivery.first
            do {
                if replayOf == nil {
                    delivery = try await priorDelivery(of: bytes, sender: sender, controlID: controlID, on: db)
                    if case .duplicate(let originalID) = delivery {
                        return try await acknowledgeDuplicate(parsed, charset: charset, originalID: originalID, now: now, on: db)
                    }
                }
                let record = makeRecord(bytes, message: parsed, charset: charset, sender: sender, status: .accepted, peer: peer, submitter: submitter, now: now)
                record.replayOf = replayOf
                if case .reused(let earlierID) = delivery {
                    record.notice = "control id \(controlID) was used before by message \(earlierID) with different content: "
                        + "stored and applied as a new message; check the sender's message numbering"
                }
                let seen = delivery
                let eventCount = try await outbox.transaction(on: db) { tx in
                    var ctx = MappingContext(db: tx, message: parsed, messageID: record.id!, now: now, ids: ids, audit: audit,
                                             rules: rules, actor: "hl7:\(sender)", submitter: submitter, peer: peer)
                    ctx.channel = channel
                    ctx.replayOf = replayOf
                    ctx.lookups = lookups
                    try await Self.map(&ctx)
                    record.patientID = ctx.patientID
                    record.patientMRN = ctx.patientMRN
                    record.hospitalID = ctx.hospitalID
                    record.ackCode = HL7AckCode.accept.rawValue
                    try await record.create(on: tx)
                    if replayOf == nil { try await claim(seen, of: bytes, sender: sender, controlID: controlID, for: record.id!, on: tx) }
                    try await outbox.emit(ctx.events, in: tx)
                    // A held message applied by its replay is released (resends of it are then duplicates).
                    if let replayOf, let original = try await HL7MessageRecord.find(replayOf, on: tx), original.status == Receipt.Outcome.held.rawValue {
                        original.status = "released"
                        try await original.save(on: tx)
                    }
                    return ctx.events.count
                }
                let ack = HL7Builder.ack(for: parsed, code: .accept, text: record.notice.map { _ in "stored as a new message: control id used before" },
                                         controlID: ids.next(), at: now)
                return Receipt(outcome: .accepted, acknowledgement: encode(ack, charset), messageID: record.id,
                               detail: record.notice ?? "\(eventCount) events", patientMRN: record.patientMRN, hospitalID: record.hospitalID)
            } catch let held as HeldForReview {
                lookups.invalidate()
                do {
                    if let replayOf, let original = try await HL7MessageRecord.find(replayOf, on: db), original.status == Receipt.Outcome.held.rawValue {
                        // Released but waiting for something else now: it moves to that group of the queue.
                        original.waitingFor = held.key
                        original.error = held.text
                        try await original.save(on: db)
                        let ack = HL7Builder.ack(for: parsed, code: .error, text: held.text, errorCode: held.code, controlID: ids.next(), at: now)
                        return Receipt(outcome: .held, acknowledgement: encode(ack, charset), messageID: replayOf, detail: held.text)
                    }
                    return try await hold(bytes, parsed, charset: charset, sender: sender, delivery: replayOf == nil ? delivery : .duplicate(""),
                                          reason: held, replayOf: replayOf, peer: peer, submitter: submitter, now: now, on: db)
                } catch {
                    lastError = error
                    if attempt < 4 { try? await Task.sleep(for: .milliseconds(20 * attempt)) }
                }
            } catch let error as MappingError {
                lookups.invalidate()
                return await storeRefusal(bytes, message: parsed, charset: charset, status: .error, ack: .error, reason: error.text,
                                          errorCode: error.code, peer: peer, submitter: submitter, replayOf: replayOf, now: now, on: db)
            } catch let error as UnsupportedMessage {
                return await storeRefusal(bytes, message: parsed, charset: charset, status: .rejected, ack: .reject, reason: error.text,
                                          errorCode: error.code, peer: peer, submitter: submitter, replayOf: replayOf, now: now, on: db)
            } catch {
                // What was read inside the rolled-back transaction may not exist: read it afresh.
                lookups.invalidate()
                // Write conflicts (SQLite busy, PostgreSQL serialisation) are expected under load.
                logger.log(level: attempt < 4 ? .debug : .warning, "storing HL7 message failed (attempt \(attempt))", metadata: ["control_id": .string(controlID), "error": .string(String(reflecting: error))])
                lastError = error
                if attempt < 4 { try? await Task.sleep(for: .milliseconds(20 * attempt)) }
            }
        }
        // Applying keeps failing: keep the message (status error, replayable once fixed) and tell
        // the sender with AE. If even that cannot be stored, the database is away: no ACK at all.
        return await storeRefusal(bytes, message: parsed, charset: charset, status: .error, ack: .error,
                                  reason: "internal error while applying the message (\(lastError.map { "\(type(of: $0))" } ?? "unknown"))",
                                  errorCode: "207", peer: peer, submitter: submitter, replayOf: replayOf, now: now, on: db)
    }

    /// Critical-value rules change rarely (a configuration, not a feed): read them at most every
    /// 30 seconds instead of for every result message.
    final class RuleCache: Sendable {
        private let box = NIOLockedValueBox<(loaded: ContinuousClock.Instant, rules: [CriticalValueRule])?>(nil)
        static let lifetime: Duration = .seconds(30)

        func rules(on db: any Database) async throws -> [CriticalValueRule] {
            let now = ContinuousClock.now
            if let cached = box.withLockedValue({ $0 }), now - cached.loaded < Self.lifetime { return cached.rules }
            let rules = try await CriticalValueRule.query(on: db).all()
            box.withLockedValue { $0 = (now, rules) }
            return rules
        }
    }

    static func map(_ ctx: inout MappingContext) async throws {
        switch ctx.message.messageType {
        case "ADT": try await ADTMapper.apply(&ctx)
        case "ORM", "OML", "OMG", "RDE", "OMP": try await OrderMapper.apply(&ctx)
        case "ORU", "MDM": try await ResultMapper.apply(&ctx)
        default:
            throw UnsupportedMessage(text: "message type \(ctx.message.messageType)^\(ctx.message.triggerEvent) is not supported", code: "200")
        }
    }

    /// How this sender's control id was seen before.
    enum Delivery {
        /// Never: the message's own id.
        case first
        /// The same bytes again (a resend after a lost ACK): acknowledged, not processed.
        case duplicate(String)
        /// The id of an earlier message with different content (a sender whose counter restarted,
        /// or a changed result reusing the id): a message in its own right, never to be dropped.
        case reused(String)
    }

    func priorDelivery(of bytes: [UInt8], sender: String, controlID: String, on db: any Database) async throws -> Delivery {
        guard let first = try await HL7ControlID.find(HL7ControlID.key(sender: sender, controlID: controlID), on: db) else { return .first }
        if let original = try await HL7MessageRecord.find(first.messageID, on: db),
           HL7ControlID.sameContent(Array(original.raw), bytes) {
            return .duplicate(first.messageID)
        }
        if let again = try await HL7ControlID.find(HL7ControlID.key(sender: sender, controlID: controlID, content: bytes), on: db) {
            return .duplicate(again.messageID)
        }
        return .reused(first.messageID)
    }

    /// Records that `messageID` holds this sender's control id (keyed by content too when the id
    /// was used before for other content), so a resend is found as its duplicate.
    private func claim(_ delivery: Delivery, of bytes: [UInt8], sender: String, controlID: String, for messageID: String,
                       on tx: any Database) async throws {
        switch delivery {
        case .first: try await HL7ControlID(sender: sender, controlID: controlID, messageID: messageID).create(on: tx)
        case .reused: try await HL7ControlID(sender: sender, controlID: controlID, content: bytes, messageID: messageID).create(on: tx)
        case .duplicate: break
        }
    }

    /// Stores a valid message that is not applied yet, with its control id (so a resend is a
    /// duplicate of it), and answers AE with the reason.
    private func hold(_ bytes: [UInt8], _ parsed: HL7Message, charset: HL7Charset, sender: String, delivery: Delivery, reason: HeldForReview,
                      replayOf: String? = nil, peer: String?, submitter: HL7Submitter?, now: Date, on db: any Database) async throws -> Receipt {
        let record = makeRecord(bytes, message: parsed, charset: charset, sender: sender, status: .held, peer: peer, submitter: submitter, now: now)
        record.error = reason.text
        record.waitingFor = reason.key
        record.replayOf = replayOf
        record.ackCode = HL7AckCode.error.rawValue
        record.patientMRN = reason.mrn
        record.hospitalID = reason.hospitalID
        try await db.transaction { tx in
            try await record.create(on: tx)
            try await claim(delivery, of: bytes, sender: sender, controlID: parsed.controlID, for: record.id!, on: tx)
        }
        logger.notice("HL7 message held", metadata: ["reason": .string(reason.text), "sender": .string(sender)])
        let ack = HL7Builder.ack(for: parsed, code: .error, text: reason.text, errorCode: reason.code, controlID: ids.next(), at: now)
        return Receipt(outcome: .held, acknowledgement: encode(ack, charset), messageID: record.id, detail: reason.text)
    }

    private func acknowledgeDuplicate(_ message: HL7Message, charset: HL7Charset, originalID: String, now: Date,
                                      on db: any Database) async throws -> Receipt {
        if let original = try await HL7MessageRecord.find(originalID, on: db) {
            original.duplicateCount += 1
            try await original.save(on: db)
            if original.status == Receipt.Outcome.held.rawValue {
                // Still waiting: the sender hears so again rather than an AA it would take as applied.
                let text = "duplicate of a message held for review: " + (original.error ?? "")
                let ack = HL7Builder.ack(for: message, code: .error, text: text, errorCode: "204", controlID: ids.next(), at: now)
                return Receipt(outcome: .duplicate, acknowledgement: encode(ack, charset), messageID: originalID, detail: text)
            }
        }
        let ack = HL7Builder.ack(for: message, code: .accept, text: "duplicate of an accepted message; not processed again",
                                 controlID: ids.next(), at: now)
        return Receipt(outcome: .duplicate, acknowledgement: encode(ack, charset), messageID: originalID, detail: "duplicate")
    }

    /// Stores a message that will not be applied, and answers AE or AR with the reason.
    private func storeRefusal(_ bytes: [UInt8], message: HL7Message?, charset: HL7Charset, status: Receipt.Outcome, ack: HL7AckCode,
                              reason: String, errorCode: String, peer: String?, submitter: HL7Submitter? = nil, replayOf: String? = nil,
                              now: Date, on db: any Database) async -> Receipt? {
        let sender = message.map { "\($0.sendingApplication)@\($0.sendingFacility)" } ?? "unknown"
        let record = makeRecord(bytes, message: message, charset: charset, sender: sender, status: status, peer: peer, submitter: submitter, now: now)
        record.error = reason
        record.ackCode = ack.rawValue
        record.replayOf = replayOf
        if let message, let mrn = message["PID-3-1"], !mrn.isEmpty { record.patientMRN = mrn }
        // Unparseable: the header as far as it reads still names the message (store and MSA-2).
        let peek = message == nil ? HL7HeaderPeek(bytes) : nil
        if let peek { label(record, with: peek) }
        do {
            if let message { record.hospitalID = try await hospitalID(of: message, on: db) }
            try await record.create(on: db)
        } catch {
            logger.error("could not store a refused HL7 message", metadata: ["error": .string(String(reflecting: error))])
            return nil
        }
        logger.notice("HL7 message \(status.rawValue)", metadata: ["reason": .string(reason), "sender": .string(sender)])
        let answer = HL7Builder.ack(for: message, peek: peek, code: ack, text: reason, errorCode: errorCode, controlID: ids.next(), at: now)
        return Receipt(outcome: status, acknowledgement: encode(answer, charset), messageID: record.id, detail: reason)
    }

    /// The hospital a refused message came for (PV1-3-4, else MSH-6 or MSH-4), so that hospital's
    /// IT staff can see and fix it; nil when no hospital has that HL7 facility or code.
    func hospitalID(of message: HL7Message, on db: any Database) async throws -> String? {
        let names = [message["PV1-3-4"], message["MSH-6"], message["MSH-4"]].compactMap { $0 }.filter { !$0.isEmpty }
        guard !names.isEmpty else { return nil }
        return try await lookups.hospital(facility: names, soleHospital: false, on: db)?.id
    }

    private func makeRecord(_ bytes: [UInt8], message: HL7Message?, charset: HL7Charset, sender: String, status: Receipt.Outcome,
                            peer: String?, submitter: HL7Submitter? = nil, now: Date) -> HL7MessageRecord {
        let record = HL7MessageRecord()
        record.id = ids.next()
        record.direction = "in"
        record.sender = sender
        record.controlID = message?.controlID
        record.messageType = message.map { [$0.messageType, $0.triggerEvent].filter { !$0.isEmpty }.joined(separator: "^") } ?? ""
        record.version = message?.version
        record.charset = charset.rawValue
        record.raw = Data(bytes)
        record.size = bytes.count
        record.status = status.rawValue
        record.peer = peer
        record.submittedBy = submitter?.reference
        record.duplicateCount = 0
        record.receivedAt = now
        return record
    }

    /// Names an unparseable message by what its header says (it stays rejected; nothing is applied).
    private func label(_ record: HL7MessageRecord, with peek: HL7HeaderPeek) {
        if !peek.controlID.isEmpty { record.controlID = peek.controlID }
        if !peek.sendingApplication.isEmpty || !peek.sendingFacility.isEmpty {
            record.sender = "\(peek.sendingApplication)@\(peek.sendingFacility)"
        }
        record.messageType = [peek.messageType, peek.triggerEvent].filter { !$0.isEmpty }.joined(separator: "^")
        if !peek.version.isEmpty { record.version = String(peek.version.prefix(16)) }
    }

    private func encode(_ ack: HL7Message, _ charset: HL7Charset) -> [UInt8] {
        (try? charset.encode(ack.encode())) ?? Array(ack.encode().utf8)
    }

    /// A frame cut off by the connection closing: kept as rejected, for the record; there is
    /// no one to answer.
    public func truncated(_ bytes: [UInt8], peer: String?, on db: any Database) async {
        let message = try? HL7Message.parse(bytes: bytes).0
        let record = makeRecord(bytes, message: message, charset: .utf8,
                                sender: message.map { "\($0.sendingApplication)@\($0.sendingFacility)" } ?? "unknown",
                                status: .rejected, peer: peer, now: clock.now())
        record.error = "the connection closed before the end of the MLLP frame (\(bytes.count) bytes arrived)"
        record.ackCode = nil
        do { try await record.create(on: db) } catch {
            logger.error("could not store a truncated frame", metadata: ["error": .string(String(reflecting: error))])
        }
    }

    /// An answer for a frame that was too large to read: stored as a note (no bytes kept).
    /// `head` is the start of the frame: its MSH names the message in the store and in MSA-2.
    public func tooLarge(size: Int, limit: Int, head: [UInt8] = [], peer: String?, on db: any Database) async -> [UInt8] {
        let now = clock.now()
        let reason = "message of \(size) bytes is larger than the \(limit)-byte limit"
        let peek = HL7HeaderPeek(head)
        let record = makeRecord([], message: nil, charset: .utf8, sender: "unknown", status: .rejected, peer: peer, now: now)
        record.error = reason
        if let peek { label(record, with: peek) }
        record.size = size
        record.ackCode = HL7AckCode.reject.rawValue
        try? await record.create(on: db)
        let ack = HL7Builder.ack(for: nil, peek: peek, code: .reject, text: reason, errorCode: "207", controlID: ids.next(), at: now)
        return Array(ack.encode().utf8)
    }
}
