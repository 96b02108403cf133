import FluentKit
import Foundation
import RoundsCore

/// Writes outbox events inside the caller's transaction, so an event exists exactly when the
/// change it describes committed, and wakes the dispatcher (NOTIFY on PostgreSQL, delivered at
/// commit; `wakeAfterCommit` for this process).
public struct OutboxWriter: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let notifier: ChangeNotifier

    public init(clock: any RoundsClock, ids: IDGenerator, notifier: ChangeNotifier) {
        self.clock = clock
        self.ids = ids
        self.notifier = notifier
    }

    /// The event row, not yet stored.
    public func event(_ kind: String, patientID: String?, encounterID: String?, hospitalID: String?, sourceMessageID: String? = nil,
                      payload: some Encodable) throws -> OutboxEvent {
        try OutboxEvent.make(id: ids.next(), kind, at: clock.now(), patientID: patientID, encounterID: encounterID,
                             hospitalID: hospitalID, sourceMessageID: sourceMessageID, payload: payload)
    }

    /// Stores `events` in the transaction `tx` and tells the other processes at its commit.
    public func store(_ events: [OutboxEvent], in tx: any Database) async throws {
        guard !events.isEmpty else { return }
        for event in events { try await event.create(on: tx) }
        try await notifier.notify(Self.wake(for: events), on: tx)
    }

    /// After the commit: wakes this process's dispatcher.
    public func wakeAfterCommit(_ events: [OutboxEvent]) {
        guard !events.isEmpty else { return }
        notifier.broadcastLocally(Self.wake(for: events))
    }

    /// The wake-up a batch of events sends: urgent when it carries a critical value.
    public static func wake(for events: [OutboxEvent]) -> String {
        events.contains { $0.kind == "observation.critical" } ? "outbox-urgent" : "outbox"
    }
}

extension OutboxEvent {
    /// A pending event with its payload as JSON (sorted keys, ISO 8601 dates).
    public static func make(id: String, _ kind: String, at now: Date, patientID: String?, encounterID: String?, hospitalID: String?,
                            sourceMessageID: String?, payload: some Encodable) throws -> OutboxEvent {
        let event = OutboxEvent()
        event.id = id
        event.kind = kind
        event.patientID = patientID
        event.encounterID = encounterID
        event.hospitalID = hospitalID
        event.sourceMessageID = sourceMessageID
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        event.payload = String(decoding: try encoder.encode(payload), as: UTF8.self)
        event.createdAt = now
        event.attempts = 0
        return event
    }
}
