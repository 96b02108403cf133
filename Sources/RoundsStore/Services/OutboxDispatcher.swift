import FluentKit
import Foundation
import Logging
import RoundsCore
import SQLKit

/// Hands outbox events (written in the same transaction as the change they describe) to the
/// modules that act on them — chat today, alerts and automations later — exactly once each:
/// the handler's writes and the "dispatched" mark commit together. On PostgreSQL the batch is
/// claimed with `FOR UPDATE SKIP LOCKED`, so several `rounds` processes can share the work.
public struct OutboxDispatcher: Sendable {
    public typealias Handler = @Sendable (OutboxEvent, any Database) async throws -> Void

    public let clock: any RoundsClock
    public let logger: Logger
    /// After this many failed attempts an event is set aside (dispatched with its error kept).
    public var maximumAttempts = 5

    public init(clock: any RoundsClock, logger: Logger = Logger(label: "rounds.outbox")) {
        self.clock = clock
        self.logger = logger
    }

    /// Dispatches up to `limit` pending events (see `pendingIDs` for the order); returns how many.
    @discardableResult
    public func dispatchPending(limit: Int = 20, on db: any Database, handler: @escaping Handler) async throws -> Int {
        let ids = try await pendingIDs(limit: limit, on: db)
        var done = 0
        for id in ids {
            do {
                // On SQLite, take turns with the HL7 intake: two write transactions that both read
                // first end in SQLITE_BUSY, and a busy event would be retried and could be set aside.
                let handled: Bool = try await SQLiteWriteGate.serialised(db) {
                    try await db.transaction { tx in
                        guard let event = try await Self.claim(id, on: tx) else { return false }
                        try await handler(event, tx)
                        event.dispatchedAt = clock.now()
                        try await event.save(on: tx)
                        return true
                    }
                }
                if handled { done += 1 }
            } catch {
                try await recordFailure(id, error: error, on: db)
            }
        }
        return done
    }

    /// Pending events in arrival order, except that a patient with a pending critical value goes
    /// first: under load a critical value must not wait behind routine cards. A patient's own
    /// events keep their order (the admission that opens the group still comes before the alert).
    private func pendingIDs(limit: Int, on db: any Database) async throws -> [String] {
        guard let sql = db as? any SQLDatabase else {
            return try await OutboxEvent.query(on: db).filter(\.$dispatchedAt == nil).sort(\.$id).limit(limit).all(\.$id)
        }
        return try await sql.raw("""
            SELECT id FROM outbox_events WHERE dispatched_at IS NULL
            ORDER BY CASE WHEN patient_id IN (SELECT patient_id FROM outbox_events
                                              WHERE dispatched_at IS NULL AND kind = 'observation.critical') THEN 0 ELSE 1 END, id
            LIMIT \(bind: limit)
            """).all().map { try $0.decode(column: "id", as: String.self) }
    }

    /// Locks one pending event for this transaction (PostgreSQL), or nil if another process has it.
    private static func claim(_ id: String, on tx: any Database) async throws -> OutboxEvent? {
        if let sql = tx as? any SQLDatabase, sql.dialect.name == "postgresql" {
            let rows = try await sql.raw("""
                SELECT id FROM outbox_events WHERE id = \(bind: id) AND dispatched_at IS NULL FOR UPDATE SKIP LOCKED
                """).all()
            guard !rows.isEmpty else { return nil }
        }
        guard let event = try await OutboxEvent.find(id, on: tx), event.dispatchedAt == nil else { return nil }
        return event
    }

    private func recordFailure(_ id: String, error: any Error, on db: any Database) async throws {
        guard let event = try await OutboxEvent.find(id, on: db) else { return }
        event.attempts += 1
        event.lastError = String(String(describing: error).prefix(500))
        if event.attempts >= maximumAttempts {
            event.dispatchedAt = clock.now()  // set aside; the error stays on the row for IT
            logger.error("outbox event set aside", metadata: ["id": .string(id), "kind": .string(event.kind), "error": .string(event.lastError ?? "")])
        } else {
            logger.warning("outbox event failed", metadata: ["id": .string(id), "kind": .string(event.kind), "error": .string(event.lastError ?? "")])
        }
        try await event.save(on: db)
    }
}
