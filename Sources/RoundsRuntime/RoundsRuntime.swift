import FluentKit
import Foundation
import Logging
import RoundsCore
import RoundsStore
import ServiceLifecycle
import UnixSignals

/// Everything Rounds does in the background, as ServiceLifecycle services: `rounds serve` runs
/// them beside the web server, `rounds worker` alone, `rounds serve --no-worker` not at all. The
/// work is claimed in the database (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any number of
/// workers may run against one database and each event, timer and delivery is done once.
///
/// The runtime knows no capability: the outbox dispatcher hands events to the handlers they
/// registered, and each capability's own loops arrive as `BackgroundWork`.
public struct RoundsRuntime: Sendable {
    /// What the loops work with; built once per process from the capabilities.
    public struct Parts: Sendable {
        public var database: @Sendable () -> any Database
        public var dispatcher: OutboxDispatcher
        public var handlers: EventHandlers
        public var notifier: ChangeNotifier
        /// The capabilities' loops, in the order they registered.
        public var work: [BackgroundWork]
        /// The MLLP listener; nil when this process has none (`--no-mllp`).
        public var listener: (any BackgroundListener)?
        public var logger: Logger

        public init(database: @escaping @Sendable () -> any Database, dispatcher: OutboxDispatcher, handlers: EventHandlers,
                    notifier: ChangeNotifier, work: [BackgroundWork], listener: (any BackgroundListener)?, logger: Logger) {
            self.database = database; self.dispatcher = dispatcher; self.handlers = handlers; self.notifier = notifier
            self.work = work; self.listener = listener; self.logger = logger
        }
    }

    public let parts: Parts

    public init(_ parts: Parts) { self.parts = parts }

    /// Binds the listener now (when there is one), so that a port in use fails the start
    /// instead of a service later; returns the bound port.
    public func bindListener() async throws -> Int? {
        guard let listener = parts.listener else { return nil }
        return try await listener.start()
    }

    /// The services as one group. `signals`: those that start a graceful stop (a worker's own
    /// SIGTERM/SIGINT; none beside the web server, which stops the group itself).
    public func serviceGroup(signals: [UnixSignal], logger: Logger) -> ServiceGroup {
        ServiceGroup(configuration: .init(services: services().map { .init(service: $0) }, gracefulShutdownSignals: signals, logger: logger))
    }

    /// The services in start order; a ServiceGroup stops them in reverse: the listener first (no
    /// new messages), the dispatcher last (what was stored is still handed on).
    public func services() -> [any Service] {
        var services: [any Service] = [OutboxDispatchService(parts: parts)]
        services += parts.work.map { WorkService(work: $0, parts: parts) }
        if let listener = parts.listener { services.append(ListenerService(listener: listener)) }
        return services
    }
}

/// A loop that runs `body` whenever woken (or every `every`), until graceful shutdown; the
/// round in hand finishes first. Errors are logged and the loop goes on.
struct WakeLoop: Sendable {
    let name: String
    let every: Duration
    let logger: Logger

    /// `wakes`: the notifier's wake-ups this loop answers at once (`matching`), besides the tick.
    func run(notifier: ChangeNotifier? = nil, matching: (@Sendable (Wake) -> Bool)? = nil,
             onWake: (@Sendable (Wake) -> Void)? = nil, _ body: @escaping @Sendable () async throws -> Void) async {
        let (kicks, kick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let every = self.every
        let listening = matching.flatMap { matching in notifier.map { ($0, $0.updates(), matching) } }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        try? await Task.sleep(for: every)
                        kick.yield()
                    }
                }
                if let (_, (_, wakes), matching) = listening {
                    group.addTask {
                        for await wake in wakes where matching(wake) {
                            onWake?(wake)
                            kick.yield()
                        }
                    }
                }
                var next = kicks.makeAsyncIterator()
                repeat {
                    do { try await body() } catch { logger.warning("\(name) failed: \(error)") }
                } while await next.next() != nil && !Task.isShuttingDownGracefully
                if let (notifier, (id, _), _) = listening { notifier.stop(id) }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            kick.finish()
        }
    }
}

/// Hands outbox events to the handlers capabilities registered. Woken at once when events
/// commit (here, or through NOTIFY in another process), and every half second regardless.
struct OutboxDispatchService: Service {
    let parts: RoundsRuntime.Parts

    func run() async throws {
        let parts = self.parts
        await WakeLoop(name: "outbox dispatch", every: .milliseconds(500), logger: parts.logger).run(
            notifier: parts.notifier, matching: { $0.isOutbox },
            onWake: { if $0 == .outboxUrgent { parts.dispatcher.signalUrgent() } }
        ) {
            try await parts.dispatcher.dispatchAll(on: parts.database(), to: parts.handlers)
        }
    }
}

/// One capability's loop (escalation timers, outside deliveries, bot callbacks, outbound HL7).
/// A timer due during a stop stays pending in the database and fires at the next start.
struct WorkService: Service {
    let work: BackgroundWork
    let parts: RoundsRuntime.Parts

    func run() async throws {
        let work = self.work, database = parts.database
        await WakeLoop(name: work.name, every: work.every, logger: parts.logger).run(notifier: parts.notifier, matching: work.wakesOn) {
            try await work.round(database())
        }
    }
}

/// The listener. On graceful shutdown it stops accepting, lets the messages in hand finish
/// (a message not stored gets no ACK, so the sender resends), and closes the connections.
struct ListenerService: Service {
    let listener: any BackgroundListener

    func run() async throws {
        if !listener.isStarted { _ = try await listener.start() }
        try? await gracefulShutdown()
        await listener.stop()
    }
}
