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
    public func enqueue(_ message: HL7Message, charset: HL7Charset = .utf8, host: String, port: Int, on db: any Database) async throws -> OutboundMessage {
        let row = OutboundMessage()
        row.id = ids.next()
        row.host = host
        row.port = port
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
        let byDestination = Dictionary(grouping: due) { "\($0.host):\($0.port)" }
        for (_, messages) in byDestination {
            await send(messages, on: db)
        }
        return due.count
    }

    private func send(_ messages: [OutboundMessage], on db: any Database) async {
        guard let first = messages.first else { return }
        var remaining = messages[...]
        do {
            try await MLLPClient.withConnection(host: first.host, port: first.port, timeout: .seconds(ackTimeout)) { session in
                while let message = remaining.first {
                    let ack = try await session.send(Array(message.raw))
                    remaining = remaining.dropFirst()
                    await record(ack: ack, for: message, on: db)
                }
            }
        } catch {
            for message in remaining {
                await fail(message, reason: "\(error)", permanently: false, on: db)
            }
        }
    }

    private func record(ack bytes: [UInt8], for message: OutboundMessage, on db: any Database) async {
        guard let (ack, _) = try? HL7Message.parse(bytes: bytes), let code = ack["MSA-1"] else {
            await fail(message, reason: "the answer was not an HL7 acknowledgement", permanently: false, on: db)
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
            await fail(message, reason: "rejected: " + (ack["ERR-8"] ?? ack["MSA-3"] ?? code), permanently: true, on: db)
        default:
            await fail(message, reason: "error: " + (ack["ERR-8"] ?? ack["MSA-3"] ?? code), permanently: false, on: db)
        }
    }

    private func fail(_ message: OutboundMessage, reason: String, permanently: Bool, on db: any Database) async {
        message.attempts += 1
        message.lastError = String(reason.prefix(500))
        message.claimedUntil = nil
        if permanently || message.attempts >= maximumAttempts {
            message.status = "dead"
            logger.error("outbound HL7 message is dead", metadata: ["id": .string(message.id ?? ""), "reason": .string(reason)])
        } else {
            message.nextAttemptAt = clock.now().addingTimeInterval(backoff(afterAttempts: message.attempts))
        }
        do { try await message.save(on: db) } catch { logger.error("could not record outbound failure: \(error)") }
    }
}
