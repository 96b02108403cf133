import FluentKit
import Foundation
import Logging
import RoundsCore
import RoundsHL7
import RoundsStore
import SQLKit

/// Messages Rounds sends to other systems over MLLP: queued as rows (so they survive a crash or
/// restart), claimed by a worker, sent, and retried with growing pauses until the peer
/// acknowledges, or marked dead after `maximumAttempts`.
public struct OutboundQueue: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public var maximumAttempts = 8
    /// How long a claim lasts; a worker that dies mid-send lets another retry after this.
    public var claimDuration: TimeInterval = 60
    public var ackTimeout: TimeAmountSeconds = 30
    public let logger: Logger

    public typealias TimeAmountSeconds = Int64

    public init(clock: any RoundsClock, ids: IDGenerator, logger: Logger = Logger(label: "rounds.hl7.outbound")) {
        self.clock = clock
        self.ids = ids
        self.logger = logger
    }

    /// Pause before attempt n+1: 2, 4, 8 … seconds, at most five minutes.
    public func backoff(afterAttempts attempts: Int) -> TimeInterval {
        min(300, pow(2, Double(max(1, attempts))))
    }

    @discardableResult
    public func enqueue(_ message: HL7Message, charset: HL7Charset = .utf8, host: String, port: Int, channelID: String? = nil,
                        on db: any Database) async throws -> OutboundMessage {
        let row = OutboundMessage()
        row.id = ids.next()
        row.host = host
        row.port = port
        row.channelID = channelID
        row.raw = Data(try charset.encode(message.encode()))
        row.controlID = message.controlID
        row.messageType = [message.messageType, message.triggerEvent].filter { !$0.isEmpty }.joined(separator: "^")
        row.status = "pending"
        row.attempts = 0
        row.nextAttemptAt = clock.now()
        row.createdAt = clock.now()
        try await row.create(on: db)
        return row
    }

    /// Claims up to `limit` due messages. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several
    /// `rounds` processes share the queue without sending anything twice; SQLite has one writer.
    public func claimDue(limit: Int, on db: any Database) async throws -> [OutboundMessage] {
        guard let sql = db as? any SQLDatabase else { return [] }
        let now = clock.now(), until = now.addingTimeInterval(claimDuration)
        let lock = sql.dialect.name == "postgresql" ? " FOR UPDATE SKIP LOCKED" : ""
        let rows = try await sql.raw("""
            UPDATE hl7_outbound SET claimed_until = \(bind: until)
            WHERE id IN (SELECT id FROM hl7_outbound
                         WHERE status = 'pending' AND next_attempt_at <= \(bind: now)
                           AND (claimed_until IS NULL OR claimed_until < \(bind: now))
                         ORDER BY next_attempt_at LIMIT \(bind: limit)\(unsafeRaw: lock))
            RETURNING id
            """).all()
        let claimed = try rows.map { try $0.decode(column: "id", as: String.self) }
        guard !claimed.isEmpty else { return [] }
        return try await OutboundMessage.query(on: db).filter(\.$id ~~ claimed).sort(\.$nextAttemptAt).all()
    }

    /// Sends what is due; returns how many were attempted.
    @discardableResult
    public func runOnce(limit: Int = 50, on db: any Database) async throws -> Int {
        let due = try await claimDue(limit: limit, on: db)
        let channelIDs = Set(due.compactMap(\.channelID))
        let policies = channelIDs.isEmpty ? [:] : Dictionary(uniqueKeysWithValues: try await HL7OutboundChannel.query(on: db)
            .filter(\.$id ~~ Array(channelIDs)).all().map { ($0.id!, $0.settings) })
        let byDestination = Dictionary(grouping: due) { "\($0.host):\($0.port)" }
        for (_, messages) in byDestination {
            await send(messages, policies: policies, on: db)
        }
        return due.count
    }

    /// Queues `message` for each enabled outbound channel that carries its type (for its
    /// hospital, or for any), changed as each destination wants it. Returns the queued rows.
    @discardableResult
    public func route(_ message: HL7Message, hospitalID: String?, on db: any Database) async throws -> [OutboundMessage] {
        let type = [message.messageType, message.triggerEvent].filter { !$0.isEmpty }.joined(separator: "^")
        var rows: [OutboundMessage] = []
        for channel in try await HL7OutboundChannel.query(on: db).filter(\.$enabled == true).sort(\.$name).all()
        where (channel.hospitalID == nil || channel.hospitalID == hospitalID) && channel.settings.carries(type) {
            rows.append(try await enqueue(try channel.settings.transformed(message), host: channel.host, port: channel.port,
                                          channelID: channel.id, on: db))
        }
        return rows
    }

    private func send(_ messages: [OutboundMessage], policies: [String: OutboundSettings] = [:], on db: any Database) async {
        guard let first = messages.first else { return }
        var remaining = messages[...]
        do {
            try await MLLPClient.withConnection(host: first.host, port: first.port, timeout: .seconds(ackTimeout)) { session in
                while let message = remaining.first {
                    let ack = try await session.send(Array(message.raw))
                    remaining = remaining.dropFirst()
                    await record(ack: ack, for: message, policy: message.channelID.flatMap { policies[$0] }, on: db)
                }
            }
        } catch {
            for message in remaining {
                await fail(message, reason: "\(error)", permanently: false, policy: message.channelID.flatMap { policies[$0] }, on: db)
            }
        }
    }

    private func record(ack bytes: [UInt8], for message: OutboundMessage, policy: OutboundSettings?, on db: any Database) async {
        guard let (ack, _) = try? HL7Message.parse(bytes: bytes), let code = ack["MSA-1"] else {
            await fail(message, reason: "the answer was not an HL7 acknowledgement", permanently: false, policy: policy, on: db)
            return
        }
        message.ackCode = code
        switch code {
        case "AA", "CA":
            message.status = "sent"
            message.sentAt = clock.now()
            message.attempts += 1
            message.claimedUntil = nil
            message.lastError = nil
            do { try await message.save(on: db) } catch { logger.error("could not mark outbound message sent: \(error)") }
        case "AR", "CR":
            await fail(message, reason: "rejected: " + (ack["ERR-8"] ?? ack["MSA-3"] ?? code), permanently: true, policy: policy, on: db)
        default:
            await fail(message, reason: "error: " + (ack["ERR-8"] ?? ack["MSA-3"] ?? code), permanently: false, policy: policy, on: db)
        }
    }

    /// `policy`: the message's channel's retry policy; the queue's own without one.
    private func fail(_ message: OutboundMessage, reason: String, permanently: Bool, policy: OutboundSettings? = nil, on db: any Database) async {
        message.attempts += 1
        message.lastError = String(reason.prefix(500))
        message.claimedUntil = nil
        if permanently || message.attempts >= (policy?.maximumAttempts ?? maximumAttempts) {
            message.status = "dead"
            logger.error("outbound HL7 message is dead", metadata: ["id": .string(message.id ?? ""), "reason": .string(reason)])
        } else {
            message.nextAttemptAt = clock.now().addingTimeInterval(policy?.backoff(afterAttempts: message.attempts) ?? backoff(afterAttempts: message.attempts))
        }
        do { try await message.save(on: db) } catch { logger.error("could not record outbound failure: \(error)") }
    }
}
