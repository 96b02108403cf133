import FluentKit
import Foundation
import Logging
import Metrics
import SQLKit

/// Lets one write transaction at a time into one SQLite database. SQLite has one writer; two
/// transactions that both read before writing end in SQLITE_BUSY instead of waiting, so the busy
/// parts of Rounds (HL7 intake, the outbox, escalation timers) take turns in-process.
///
/// A gate belongs to the database it guards (`SQLiteWriteGate.install(on:)` puts it into that
/// database's configuration, `of(_:)` finds it again): two Rounds databases in one process —
/// a test hospital beside the real one, or the test suite's hundreds — never wait for each other.
///
/// Waiters marked urgent (anything carrying a critical value) go first, each kind in arrival
/// order; but after `urgentBurst` urgent turns in a row a waiting routine writer gets one, so a
/// stream of critical values cannot starve admissions and orders. A waiter whose task is
/// cancelled leaves the queue (`acquire` throws); every hold ends with `release`, also on errors
/// (`serialised` does both), and a hold longer than `slowHold` is logged with who held it.
public actor SQLiteWriteGate {
    /// Urgent turns granted in a row before a waiting routine writer goes.
    public let urgentBurst: Int
    /// Holds longer than this are logged as warnings (who, how long, how many waited).
    public let slowHold: Duration
    private let logger: Logger

    private struct Waiter {
        let id: UInt64
        let writer: String
        let continuation: CheckedContinuation<Bool, Never>
    }

    private var holder: (writer: String, since: ContinuousClock.Instant)?
    private var urgent: [Waiter] = []
    private var routine: [Waiter] = []
    private var urgentInARow = 0
    private var nextID: UInt64 = 0
    private(set) public var longestHold: Duration = .zero
    private(set) public var longestHolder: String?

    public init(urgentBurst: Int = 4, slowHold: Duration = .seconds(2), logger: Logger = Logger(label: "rounds.sqlite-gate")) {
        self.urgentBurst = max(1, urgentBurst)
        self.slowHold = slowHold
        self.logger = logger
    }

    /// Waits for the gate. `writer` names who asks (for metrics and slow-hold warnings).
    /// Throws `CancellationError` when the task is cancelled while waiting (it then holds nothing).
    public func acquire(urgent isUrgent: Bool = false, writer: String = "writer") async throws {
        let asked = ContinuousClock.now
        if holder == nil {
            grant(to: writer, urgent: isUrgent)
        } else {
            nextID += 1
            let id = nextID
            let granted = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let waiter = Waiter(id: id, writer: writer, continuation: continuation)
                    if Task.isCancelled {
                        continuation.resume(returning: false)
                    } else if isUrgent {
                        urgent.append(waiter)
                    } else {
                        routine.append(waiter)
                    }
                }
            } onCancel: {
                Task { await self.withdraw(id) }
            }
            guard granted else { throw CancellationError() }
        }
        Metrics.Timer(label: "rounds_sqlite_gate_wait_seconds", dimensions: [("writer", writer)])
            .record(duration: ContinuousClock.now - asked)
    }

    /// Ends a hold and hands the gate to the next waiter.
    public func release() {
        if let holder {
            let held = ContinuousClock.now - holder.since
            Metrics.Timer(label: "rounds_sqlite_gate_hold_seconds", dimensions: [("writer", holder.writer)]).record(duration: held)
            if held > longestHold { longestHold = held; longestHolder = holder.writer }
            if held > slowHold {
                logger.warning("SQLite write gate held for a long time", metadata: [
                    "writer": .string(holder.writer), "held_ms": .stringConvertible(held.milliseconds),
                    "waiting": .stringConvertible(waitingCount),
                ])
            }
        }
        holder = nil
        let routineDue = !routine.isEmpty && (urgent.isEmpty || urgentInARow >= urgentBurst)
        let next: Waiter? = routineDue ? routine.removeFirst() : (urgent.isEmpty ? nil : urgent.removeFirst())
        guard let next else { return }
        grant(to: next.writer, urgent: !routineDue)
        next.continuation.resume(returning: true)
    }

    private func grant(to writer: String, urgent isUrgent: Bool) {
        holder = (writer, ContinuousClock.now)
        urgentInARow = isUrgent ? urgentInARow + 1 : 0
    }

    /// A cancelled waiter leaves the queue; one already granted keeps its turn (and releases it).
    private func withdraw(_ id: UInt64) {
        if let index = urgent.firstIndex(where: { $0.id == id }) {
            urgent.remove(at: index).continuation.resume(returning: false)
        } else if let index = routine.firstIndex(where: { $0.id == id }) {
            routine.remove(at: index).continuation.resume(returning: false)
        }
    }

    /// Someone with a critical value is waiting: a long holder should finish early.
    public var hasUrgentWaiters: Bool { !urgent.isEmpty }
    public var waitingCount: Int { urgent.count + routine.count }
    /// Who holds the gate now, and since when (nil when free).
    public var currentHolder: (writer: String, heldFor: Duration)? {
        holder.map { ($0.writer, ContinuousClock.now - $0.since) }
    }
}

extension SQLiteWriteGate {
    /// Gives the SQLite database `id` of `databases` a gate of its own. It travels in the
    /// database's configuration, so every `Database` handed out for it (requests, transactions,
    /// background loops) finds the same gate, and no other database does.
    public static func install(on databases: Databases, id: DatabaseID, gate: SQLiteWriteGate = SQLiteWriteGate()) {
        databases.middleware.use(Carrier(gate: gate), on: id)
    }

    /// The gate writers to `db` take turns at: its own on SQLite (when installed), none elsewhere.
    public static func of(_ db: any Database) -> SQLiteWriteGate? {
        for middleware in db.context.configuration.middleware {
            if let carrier = middleware as? Carrier { return carrier.gate }
        }
        return nil
    }

    /// Runs `body` holding `db`'s gate when it has one, straight through otherwise. The gate is
    /// released however `body` ends.
    public static func serialised<T: Sendable>(_ db: any Database, urgent: Bool = false, writer: String = "writer",
                                               _ body: () async throws -> T) async throws -> T {
        guard let gate = of(db) else { return try await body() }
        try await gate.acquire(urgent: urgent, writer: writer)
        do {
            let result = try await body()
            await gate.release()
            return result
        } catch {
            await gate.release()
            throw error
        }
    }

    /// Holds the gate in the database's configuration. As a model middleware it only passes
    /// each model event on; it is there to be found by `of(_:)`.
    struct Carrier: AnyModelMiddleware {
        let gate: SQLiteWriteGate

        func handle(_ event: ModelEvent, _ model: any AnyModel, on db: any Database,
                    chainingTo next: any AnyModelResponder) -> EventLoopFuture<Void> {
            next.handle(event, model, on: db)
        }
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
