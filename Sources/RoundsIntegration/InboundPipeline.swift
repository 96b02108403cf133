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
        case accepted, duplicate, error, rejected
    }

    public var outcome: Outcome
    /// The acknowledgement to send back, already encoded in the message's character set.
    public var acknowledgement: [UInt8]
    public var messageID: String?
    public var detail: String?
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

    public init(clock: any RoundsClock, ids: IDGenerator, logger: Logger = Logger(label: "rounds.hl7"), outbox: OutboxWriter, audit: AuditLog) {
        self.clock = clock
        self.ids = ids
        self.outbox = outbox
        self.audit = audit
        self.logger = logger
    }

    /// Processes one message. Returns nil only when the message could not be stored.
    public func receive(_ bytes: [UInt8], peer: String?, replayOf: String? = nil, submitter: HL7Submitter? = nil,
                        on db: any Database) async -> Receipt? {
        let started = DispatchTime.now()
        let receipt = await process(bytes, peer: peer, replayOf: replayOf, submitter: submitter, on: db)
        // Exported on /metrics: rounds_hl7_messages_total{outcome=…} and the time to an answer.
        Counter(label: "rounds_hl7_messages_total", dimensions: [("outcome", receipt?.outcome.rawValue ?? "not_stored")]).increment()
        Metrics.Timer(label: "rounds_hl7_processing_seconds").recordInterval(since: started)
        return receipt
    }

    private func process(_ bytes: [UInt8], peer: String?, replayOf: String?, submitter: HL7Submitter?, on db: any Database) async -> Receipt? {
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
        do { rules = ["ORU", "MDM"].contains(parsed.messageType) ? try await ruleCache.rules(on: db) : [] } catch { return nil }

        // SQLite has one writer: take turns in-process instead of colliding (a collision between
        // two transactions that both read first ends in SQLITE_BUSY, not a wait).
        // A message with a critical value goes before routine ones.
        // Cancelled while waiting (the server is stopping): nothing stored, so no ACK.
        return try? await SQLiteWriteGate.serialised(db, urgent: ResultMapper.carriesCriticalValue(parsed, rules: rules), writer: "hl7") {
            await apply(bytes, parsed, charset: charset, sender: sender, rules: rules, peer: peer, replayOf: replayOf, submitter: submitter, now: now, on: db)
        }
    }

    /// Stores and applies a readable message in one transaction (retried on write conflicts).
    private func apply(_ bytes: [UInt8], _ parsed: HL7Message, charset: HL7Charset, sender: String, rules: [CriticalValueRule],
                       peer: String?, replayOf: String?, submitter: HL7Submitter?, now: Date, on db: any Database) async -> Receipt? {
        let controlID = parsed.controlID
        // Concurrent senders may race on the same patient; a conflicting transaction is retried.
        var lastError: (any Error)?
        for attempt in 1...4 {
            do {
                if replayOf == nil, let original = try await HL7ControlID.find(HL7ControlID(sender: sender, controlID: controlID, messageID: "").id, on: db) {
                    return try await acknowledgeDuplicate(parsed, charset: charset, originalID: original.messageID, now: now, on: db)
                }
                let record = makeRecord(bytes, message: parsed, charset: charset, sender: sender, status: .accepted, peer: peer, submitter: submitter, now: now)
                record.replayOf = replayOf
                let eventCount = try await outbox.transaction(on: db) { tx in
                    var ctx = MappingContext(db: tx, message: parsed, messageID: record.id!, now: now, ids: ids, audit: audit,
                                             rules: rules, actor: "hl7:\(sender)", submitter: submitter, peer: peer)
                    try await Self.map(&ctx)
                    record.patientID = ctx.patientID
                    record.patientMRN = ctx.patientMRN
                    record.hospitalID = ctx.hospitalID
                    record.ackCode = HL7AckCode.accept.rawValue
                    try await record.create(on: tx)
                    if replayOf == nil {
                        try await HL7ControlID(sender: sender, controlID: controlID, messageID: record.id!).create(on: tx)
                    }
                    try await outbox.emit(ctx.events, in: tx)
                    return ctx.events.count
                }
                let ack = HL7Builder.ack(for: parsed, code: .accept, controlID: ids.next(), at: now)
                return Receipt(outcome: .accepted, acknowledgement: encode(ack, charset), messageID: record.id,
                               detail: "\(eventCount) events")
            } catch let error as MappingError {
                return await storeRefusal(bytes, message: parsed, charset: charset, status: .error, ack: .error, reason: error.text,
                                          errorCode: error.code, peer: peer, submitter: submitter, now: now, on: db)
            } catch let error as UnsupportedMessage {
                return await storeRefusal(bytes, message: parsed, charset: charset, status: .rejected, ack: .reject, reason: error.text,
                                          errorCode: error.code, peer: peer, submitter: submitter, now: now, on: db)
            } catch {
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
                                  errorCode: "207", peer: peer, submitter: submitter, now: now, on: db)
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
        case "ORM", "OMG", "RDE", "OMP": try await OrderMapper.apply(&ctx)
        case "ORU", "MDM": try await ResultMapper.apply(&ctx)
        default:
            throw UnsupportedMessage(text: "message type \(ctx.message.messageType)^\(ctx.message.triggerEvent) is not supported", code: "200")
        }
    }

    private func acknowledgeDuplicate(_ message: HL7Message, charset: HL7Charset, originalID: String, now: Date,
                                      on db: any Database) async throws -> Receipt {
        if let original = try await HL7MessageRecord.find(originalID, on: db) {
            original.duplicateCount += 1
            try await original.save(on: db)
        }
        let ack = HL7Builder.ack(for: message, code: .accept, text: "duplicate of an accepted message; not processed again",
                                 controlID: ids.next(), at: now)
        return Receipt(outcome: .duplicate, acknowledgement: encode(ack, charset), messageID: originalID, detail: "duplicate")
    }

    /// Stores a message that will not be applied, and answers AE or AR with the reason.
    private func storeRefusal(_ bytes: [UInt8], message: HL7Message?, charset: HL7Charset, status: Receipt.Outcome, ack: HL7AckCode,
                              reason: String, errorCode: String, peer: String?, submitter: HL7Submitter? = nil, now: Date,
                              on db: any Database) async -> Receipt? {
        let sender = message.map { "\($0.sendingApplication)@\($0.sendingFacility)" } ?? "unknown"
        let record = makeRecord(bytes, message: message, charset: charset, sender: sender, status: status, peer: peer, submitter: submitter, now: now)
        record.error = reason
        record.ackCode = ack.rawValue
        if let message, let mrn = message["PID-3-1"], !mrn.isEmpty { record.patientMRN = mrn }
        do {
            if let message { record.hospitalID = try await Self.hospitalID(of: message, on: db) }
            try await record.create(on: db)
        } catch {
            logger.error("could not store a refused HL7 message", metadata: ["error": .string(String(reflecting: error))])
            return nil
        }
        logger.notice("HL7 message \(status.rawValue)", metadata: ["reason": .string(reason), "sender": .string(sender)])
        let answer = HL7Builder.ack(for: message, code: ack, text: reason, errorCode: errorCode, controlID: ids.next(), at: now)
        return Receipt(outcome: status, acknowledgement: encode(answer, charset), messageID: record.id, detail: reason)
    }

    /// The hospital a refused message came for (PV1-3-4, else MSH-6 or MSH-4), so that hospital's
    /// IT staff can see and fix it; nil when no hospital has that HL7 facility or code.
    static func hospitalID(of message: HL7Message, on db: any Database) async throws -> String? {
        let names = [message["PV1-3-4"], message["MSH-6"], message["MSH-4"]].compactMap { $0 }.filter { !$0.isEmpty }
        guard !names.isEmpty else { return nil }
        let hospitals = try await Hospital.query(on: db).all()
        for name in names {
            if let match = hospitals.first(where: { $0.hl7Facility?.caseInsensitiveCompare(name) == .orderedSame || $0.code.caseInsensitiveCompare(name) == .orderedSame }) {
                return match.id
            }
        }
        return nil
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
    public func tooLarge(size: Int, limit: Int, peer: String?, on db: any Database) async -> [UInt8] {
        let now = clock.now()
        let reason = "message of \(size) bytes is larger than the \(limit)-byte limit"
        let record = makeRecord([], message: nil, charset: .utf8, sender: "unknown", status: .rejected, peer: peer, now: now)
        record.error = reason
        record.size = size
        record.ackCode = HL7AckCode.reject.rawValue
        try? await record.create(on: db)
        let ack = HL7Builder.ack(for: nil, code: .reject, text: reason, errorCode: "207", controlID: ids.next(), at: now)
        return Array(ack.encode().utf8)
    }
}
