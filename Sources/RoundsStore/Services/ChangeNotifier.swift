import FluentKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO
import RoundsCore
import SQLKit

/// Wakes the readers of a process when something they follow has changed (a chat message, a
/// read receipt), so they fetch it. Within a process it is a broadcast; across `rounds`
/// processes sharing PostgreSQL it rides on NOTIFY/LISTEN — and a NOTIFY sent inside the
/// writing transaction is delivered only when that transaction commits, so nobody is woken for
/// a row they cannot see yet. Readers must still fetch by cursor: a wake-up may be lost (a
/// reconnecting listener), so they also look every second.
public final class ChangeNotifier: @unchecked Sendable {
    public static let channel = "rounds_changes"
    private let lock = NSLock()
    private var listeners: [UUID: AsyncStream<Wake>.Continuation] = [:]

    public init() {}

    /// A stream of wake-ups, until `stop(id)`.
    public func updates() -> (UUID, AsyncStream<Wake>) {
        let id = UUID()
        let (stream, continuation) = AsyncStream<Wake>.makeStream(bufferingPolicy: .bufferingNewest(256))
        lock.withLock { listeners[id] = continuation }
        return (id, stream)
    }

    public func stop(_ id: UUID) {
        lock.withLock { listeners.removeValue(forKey: id) }?.finish()
    }

    /// Wakes this process's readers now (what they look for has committed).
    public func broadcastLocally(_ wake: Wake) {
        for continuation in lock.withLock({ Array(listeners.values) }) { continuation.yield(wake) }
    }

    /// The one way to say "this changed" from inside a write: NOTIFY every process on
    /// PostgreSQL (delivered at commit), and wake this process once the change is visible —
    /// at the end of the enclosing `transaction(on:)`, or at once when `db` is not in a
    /// transaction (the write has committed). A plain `db.transaction` that signals must be
    /// one whose owner looks again after it commits (the outbox dispatcher does).
    public func signal(_ wake: Wake, on db: any Database) async throws {
        try await notify(wake, on: db)
        if let pending = PendingWakes.current {
            pending.add(wake)
        } else if !db.inTransaction {
            broadcastLocally(wake)
        }
    }

    /// Runs `body` in one transaction of `db`; the local wake-ups `signal` asked for inside it
    /// are sent after it commits (none when it fails).
    public func transaction<T: Sendable>(on db: any Database, _ body: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        let pending = PendingWakes()
        // Bound inside the transaction's closure: drivers run it on a task of their own, which
        // would not inherit a binding made out here.
        let result = try await db.transaction { tx in try await PendingWakes.$current.withValue(pending) { try await body(tx) } }
        for wake in pending.drain() { broadcastLocally(wake) }
        return result
    }

    /// NOTIFY only (PostgreSQL, delivered at commit); nothing elsewhere. Prefer `signal`.
    public func notify(_ wake: Wake, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        try await sql.raw("SELECT pg_notify(\(bind: Self.channel), \(bind: wake.rawValue))").run()
    }

    /// Listens on PostgreSQL and passes every notification to the local readers; reconnects
    /// after a failure. Cancel the task to stop.
    public func listen(postgresURL: String, logger: Logger) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                do {
                    let configuration = try SQLPostgresConfiguration(url: postgresURL).coreConfiguration
                    let connection = try await PostgresConnection.connect(
                        on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: 1, logger: logger).get()
                    defer { Task { try? await connection.close() } }
                    let notifications = try await connection.listen(Self.channel)
                    // Anything written while we were away is picked up by the readers' own catch-up.
                    broadcastLocally(.catchUp)
                    for try await notification in notifications {
                        broadcastLocally(Wake(rawValue: notification.payload))
                    }
                } catch {
                    if Task.isCancelled { break }
                    logger.warning("LISTEN \(Self.channel) failed; retrying: \(error)")
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// The wake-ups asked for inside a `ChangeNotifier.transaction`, sent once it commits.
final class PendingWakes: @unchecked Sendable {
    @TaskLocal static var current: PendingWakes?
    private let lock = NSLock()
    private var wakes: [Wake] = []

    func add(_ wake: Wake) { lock.withLock { if !wakes.contains(wake) { wakes.append(wake) } } }
    func drain() -> [Wake] { lock.withLock { defer { wakes = [] }; return wakes } }
}
