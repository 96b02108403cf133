import FluentKit
import Foundation
import RoundsCore

/// The one way events enter the outbox. `emit` writes them inside the caller's transaction, so
/// an event exists exactly when the change it describes committed, and wakes the dispatchers:
/// every process's by NOTIFY on PostgreSQL (delivered at commit), this process's after the
/// commit (see `ChangeNotifier.signal`; run the write in `transaction(on:)`).
public struct OutboxWriter: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let notifier: ChangeNotifier

    public init(clock: any RoundsClock, ids: IDGenerator, notifier: ChangeNotifier) {
        self.clock = clock
        self.ids = ids
        self.notifier = notifier
    }

    /// Stores `events` in `tx`, in order, and asks for the wake-up (urgent with a critical value).
    public func emit(_ events: [PendingEvent], in tx: any Database) async throws {
        guard !events.isEmpty else { return }
        let now = clock.now()
        // One INSERT for all of them, in order (ids grow with the position).
        try await events.map { OutboxEvent($0, id: ids.next(), at: now) }.create(on: tx)
        try await notifier.signal(Wake.forEvents(events.map(\.kind)), on: tx)
    }

    public func emit(_ event: PendingEvent, in tx: any Database) async throws {
        try await emit([event], in: tx)
    }

    /// One transaction whose events wake this process's dispatcher once it commits.
    public func transaction<T: Sendable>(on db: any Database, _ body: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        try await notifier.transaction(on: db, body)
    }
}

extension OutboxEvent {
    /// A pending row for `event`.
    convenience init(_ event: PendingEvent, id: String, at now: Date) {
        self.init()
        self.id = id
        kind = event.kind.rawValue
        patientID = event.patientID
        encounterID = event.encounterID
        hospitalID = event.hospitalID
        sourceMessageID = event.sourceMessageID
        payload = event.payload
        createdAt = now
        attempts = 0
    }

    /// The kind as a type; nil for a kind this version does not know (written by a newer one).
    public var eventKind: EventKind? { EventKind(rawValue: kind) }

    /// The payload as the handler expects it.
    public func decode<P: Decodable>(_ type: P.Type) throws -> P {
        try PendingEvent.decode(type, from: payload)
    }
}
