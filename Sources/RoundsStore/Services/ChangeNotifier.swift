import FluentKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO
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
    private var listeners: [UUID: AsyncStream<String>.Continuation] = [:]

    public init() {}

    /// A stream of wake-up payloads, until `stop(id)`.
    public func updates() -> (UUID, AsyncStream<String>) {
        let id = UUID()
        let (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(256))
        lock.withLock { listeners[id] = continuation }
        return (id, stream)
    }

    public func stop(_ id: UUID) {
        lock.withLock { listeners.removeValue(forKey: id) }?.finish()
    }

    /// Wakes this process's readers (after a commit).
    public func broadcastLocally(_ payload: String) {
        for continuation in lock.withLock({ Array(listeners.values) }) { continuation.yield(payload) }
    }

    /// Inside a transaction: on PostgreSQL, NOTIFY every process (delivered at commit).
    /// Elsewhere nothing: the caller broadcasts locally after the commit.
    public func notify(_ payload: String, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase, sql.dialect.name == "postgresql" else { return }
        try await sql.raw("SELECT pg_notify(\(bind: Self.channel), \(bind: payload))").run()
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
                    broadcastLocally("")
                    for try await notification in notifications {
                        broadcastLocally(notification.payload)
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
