import FluentKit
import RoundsCore

/// What a capability does with the events it consumes. Handlers run inside the dispatcher's
/// transaction: their writes and the event's "dispatched" mark commit together, and a handler
/// that throws has the event retried (alone) later. A handler must therefore be safe to run
/// again for the same event after a failure rolled its writes back.
public protocol EventHandler: Sendable {
    /// For logs and the registry ("chat.cards", "alerts.raise").
    var name: String { get }
    /// The kinds it acts on; other events never reach it.
    var kinds: Set<EventKind> { get }
    func handle(_ event: OutboxEvent, on tx: any Database) async throws
}

/// The handlers capabilities registered, in registration order: a capability that builds on
/// another's writes for the same event registers after it (alerts after the patient groups,
/// whose admission handler opens the group the alert card goes to).
public struct EventHandlers: Sendable {
    public private(set) var all: [any EventHandler] = []

    public init() {}

    public mutating func register(_ handler: any EventHandler) {
        precondition(!all.contains { $0.name == handler.name }, "event handler \(handler.name) registered twice")
        all.append(handler)
    }

    /// Who consumes `kind`, in order.
    public func handlers(for kind: EventKind) -> [any EventHandler] {
        all.filter { $0.kinds.contains(kind) }
    }

    /// Hands one event to each of its handlers. A kind this version does not know is left alone.
    public func handle(_ event: OutboxEvent, on tx: any Database) async throws {
        guard let kind = event.eventKind else { return }
        for handler in handlers(for: kind) { try await handler.handle(event, on: tx) }
    }
}

/// A handler from a closure, for capabilities whose handling is one service call.
public struct EventHandlerFunction: EventHandler {
    public let name: String
    public let kinds: Set<EventKind>
    let body: @Sendable (OutboxEvent, any Database) async throws -> Void

    public init(_ name: String, kinds: Set<EventKind>, _ body: @escaping @Sendable (OutboxEvent, any Database) async throws -> Void) {
        self.name = name
        self.kinds = kinds
        self.body = body
    }

    public func handle(_ event: OutboxEvent, on tx: any Database) async throws { try await body(event, tx) }
}
