import FluentKit
import Foundation
import Logging
import RoundsCore
import SQLKit

/// Hands outbox events (written in the same transaction as the change they describe) to the
/// modules that act on them — chat, alerts, automations — exactly once each: the handlers'
/// writes and the "dispatched" mark commit together. On PostgreSQL the events are claimed with
/// `FOR UPDATE SKIP LOCKED`, so several `rounds` processes can share the work.
///
/// Events are handled in batches, one transaction each (one commit, one turn at SQLite's single
/// writer, instead of one per event). Critical values go first: a patient with a pending
/// critical value is dispatched in a batch of its own before routine cards, and a routine batch
/// stops early when a critical value arrives meanwhile (`signalUrgent`).
public struct OutboxDispatcher: Sendable {
    public typealias Handler = @Sendable (OutboxEvent, any Database) async throws -> Void

    public let clock: any RoundsClock
    public let logger: Logger
    /// Wakes this process's readers for what handlers signalled, once a batch commits.
    public var notifier: ChangeNotifier?
    /// After this many failed attempts an event is set aside (dispatched with its error kept).
    public var maximumAttempts = 5
    private let urgent = UrgentSignal()

    public init(clock: any RoundsClock, logger: Logger = Logger(label: "rounds.outbox"), notifier: ChangeNotifier? = nil) {
        self.clock = clock
        self.logger = logger
        self.notifier = notifier
    }

    /// Dispatches to the registered handlers until nothing is pending (a batch may stop early to
    /// let a critical value go first, so this goes round again); returns how many were handled.
    @discardableResult
    public func dispatchAll(on db: any Database, to handlers: EventHandlers) async throws -> Int {
        var count = 0
        while case let done = try await dispatchPending(on: db, handler: { event, tx in try await handlers.handle(event, on: tx) }), done > 0 {
            count += done
        }
        return count
    }

    /// A critical value was committed (here or in another process): the batch in hand yields.
    public func signalUrgent() { urgent.set(true) }

    /// Dispatches up to `limit` pending events (see `pendingIDs` for the order); returns how many.
    @discardableResult
    public func dispatchPending(limit: Int = 20, on db: any Database, handler: @escaping Handler) async throws -> Int {
        urgent.set(false)  // the query below sees every critical value committed before now
        let pending = try await pendingIDs(limit: limit, on: db)
        let urgentIDs = pending.filter(\.urgent).map(\.id), routineIDs = pending.filter { !$0.urgent }.map(\.id)
        var done = 0
        if !urgentIDs.isEmpty { done += try await dispatch(urgentIDs, urgent: true, on: db, handler: handler) }
        if !routineIDs.isEmpty { done += try await dispatch(routineIDs, urgent: false, on: db, handler: handler) }
        return done
    }

    /// One batch in one transaction. If an event fails it takes the batch with it: then each
    /// event goes alone, so only the failing one is retried (and in the end set aside).
    private func dispatch(_ ids: [String], urgent isUrgent: Bool, on db: any Database, handler: @escaping Handler) async throws -> Int {
        do {
            // On SQLite, take turns with the HL7 intake: two write transactions that both read
            // first end in SQLITE_BUSY, and a busy event would be retried and could be set aside.
            return try await SQLiteWriteGate.serialised(db, urgent: isUrgent, writer: "outbox") {
                try await transaction(on: db) { tx in
                    var handled: [String] = []
                    for event in try await Self.claim(ids, on: tx) {
                        // A critical value arrived or waits to be stored: commit what is done and
                        // go back for it.
                        if !isUrgent, !handled.isEmpty, await shouldYield(db) { break }
                        try await handler(event, tx)
                        handled.append(event.id!)
                    }
                    if !handled.isEmpty {
                        try await OutboxEvent.query(on: tx).filter(\.$id ~~ handled).set(\.$dispatchedAt, to: clock.now()).update()
                    }
                    return handled.count
                }
            }
        } catch {
            guard ids.count > 1 else {
                try await recordFailure(ids[0], error: error, on: db)
                return 0
            }
            var done = 0
            for id in ids { done += try await dispatch([id], urgent: isUrgent, on: db, handler: handler) }
            return done
        }
    }

    private func transaction<T: Sendable>(on db: any Database, _ body: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        if let notifier { return try await notifier.transaction(on: db, body) }
        return try await db.transaction(body)
    }

    private func shouldYield(_ db: any Database) async -> Bool {
        if urgent.get() { return true }
        return await SQLiteWriteGate.of(db)?.hasUrgentWaiters ?? false
    }

    /// Pending events in arrival order, except that a patient with a pending critical value goes
    /// first (urgent): under load a critical value must not wait behind routine cards. A
    /// patient's own events keep their order (the admission that opens the group still comes
    /// before the alert).
    private func pendingIDs(limit: Int, on db: any Database) async throws -> [(id: String, urgent: Bool)] {
        guard let sql = db as? any SQLDatabase else {
            return try await OutboxEvent.query(on: db).filter(\.$dispatchedAt == nil).sort(\.$id).limit(limit).all(\.$id).map { ($0, false) }
        }
        return try await sql.raw("""
            SELECT id, CASE WHEN patient_id IN (SELECT patient_id FROM outbox_events
                                                WHERE dispatched_at IS NULL AND kind = \(bind: EventKind.observationCritical.rawValue)) THEN 1 ELSE 0 END AS urgent
            FROM outbox_events WHERE dispatched_at IS NULL
            ORDER BY urgent DESC, id
            LIMIT \(bind: limit)
            """).all().map { (try $0.decode(column: "id", as: String.self), try $0.decode(column: "urgent", as: Int.self) == 1) }
    }

    /// Locks the still-pending events of `ids` for this transaction (PostgreSQL: those another
    /// process holds are skipped) and returns them in the order of `ids`.
    private static func claim(_ ids: [String], on tx: any Database) async throws -> [OutboxEvent] {
        var claimable = ids
        if let sql = tx as? any SQLDatabase, sql.dialect.name == "postgresql" {
            claimable = try await sql.raw("""
                SELECT id FROM outbox_events WHERE id IN (\(binds: ids)) AND dispatched_at IS NULL FOR UPDATE SKIP LOCKED
                """).all().map { try $0.decode(column: "id", as: String.self) }
            guard !claimable.isEmpty else { return [] }
        }
        let events = try await OutboxEvent.query(on: tx).filter(\.$id ~~ claimable).filter(\.$dispatchedAt == nil).all()
        let position = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
        return events.sorted { position[$0.id!, default: 0] < position[$1.id!, default: 0] }
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

/// "A critical value is waiting", shared by the copies of a dispatcher.
final class UrgentSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set(_ newValue: Bool) { lock.withLock { value = newValue } }
    func get() -> Bool { lock.withLock { value } }
}
