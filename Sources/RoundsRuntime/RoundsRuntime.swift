import AsyncHTTPClient
import FluentKit
import Foundation
import Logging
import NIOCore
import RoundsAlerts
import RoundsChat
import RoundsCore
import RoundsIntegration
import RoundsStore
import ServiceLifecycle
import UnixSignals

/// Everything Rounds does in the background, as ServiceLifecycle services: `rounds serve` runs
/// them beside the web server, `rounds worker` alone, `rounds serve --no-worker` not at all. The
/// work is claimed in the database (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any number of
/// workers may run against one database and each event, timer and delivery is done once.
public struct RoundsRuntime: Sendable {
    /// What the loops work with; built once per process from the capabilities.
    public struct Parts: Sendable {
        public var database: @Sendable () -> any Database
        public var dispatcher: OutboxDispatcher
        public var handlers: EventHandlers
        public var notifier: ChangeNotifier
        public var alerts: AlertService
        public var connectors: [ConnectorKind: any AlertConnector]
        public var chat: ChatService
        /// The MLLP listener; nil when this process has none (`--no-mllp`).
        public var integration: IntegrationService?
        /// The outbound HL7 queue this process sends; nil when it sends none.
        public var outbound: OutboundQueue?
        /// Where bot callbacks are posted (the status code decides sent or retry).
        public var post: @Sendable (_ url: String, _ headers: [String: String], _ body: Data) async throws -> Int
        public var logger: Logger

        public init(database: @escaping @Sendable () -> any Database, dispatcher: OutboxDispatcher, handlers: EventHandlers,
                    notifier: ChangeNotifier, alerts: AlertService, connectors: [ConnectorKind: any AlertConnector], chat: ChatService,
                    integration: IntegrationService?, outbound: OutboundQueue?, post: @escaping @Sendable (String, [String: String], Data) async throws -> Int = RoundsRuntime.post,
                    logger: Logger) {
            self.database = database; self.dispatcher = dispatcher; self.handlers = handlers; self.notifier = notifier
            self.alerts = alerts; self.connectors = connectors; self.chat = chat; self.integration = integration
            self.outbound = outbound; self.post = post; self.logger = logger
        }
    }

    public let parts: Parts

    public init(_ parts: Parts) { self.parts = parts }

    /// Binds the MLLP listener now (when there is one), so that a port in use fails the start
    /// instead of a service later; returns the bound port.
    public func bindListener() async throws -> Int? {
        guard let integration = parts.integration else { return nil }
        return try await integration.start()
    }

    /// The services as one group. `signals`: those that start a graceful stop (a worker's own
    /// SIGTERM/SIGINT; none beside the web server, which stops the group itself).
    public func serviceGroup(signals: [UnixSignal], logger: Logger) -> ServiceGroup {
        ServiceGroup(configuration: .init(services: services().map { .init(service: $0) }, gracefulShutdownSignals: signals, logger: logger))
    }

    /// The services in start order; a ServiceGroup stops them in reverse: the MLLP listener
    /// first (no new messages), the dispatcher last (what was stored is still handed on).
    public func services() -> [any Service] {
        var services: [any Service] = []
        services.append(OutboxDispatchService(parts: parts))
        services.append(EscalationTimerService(parts: parts))
        services.append(AlertDeliveryService(parts: parts))
        services.append(BotCallbackService(parts: parts))
        if let outbound = parts.outbound { services.append(OutboundHL7Service(outbound: outbound, database: parts.database, logger: parts.logger)) }
        if let integration = parts.integration { services.append(MLLPListenerService(integration: integration)) }
        return services
    }

    /// One signed bot callback over HTTPS (AsyncHTTPClient's shared client).
    @Sendable public static func post(_ url: String, headers: [String: String], body: Data) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return Int(response.status.code)
    }
}

/// A loop that runs `body` whenever woken (or every `every`), until graceful shutdown; the
/// round in hand finishes first. Errors are logged and the loop goes on.
struct WakeLoop: Sendable {
    let name: String
    let every: Duration
    let logger: Logger

    func run(wakes: AsyncStream<Void>? = nil, _ body: @escaping @Sendable () async throws -> Void) async {
        let (kicks, kick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let every = self.every
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    while !Task.isCancelled && !Task.isShuttingDownGracefully {
                        try? await Task.sleep(for: every)
                        kick.yield()
                    }
                }
                if let wakes {
                    group.addTask { for await _ in wakes { kick.yield() } }
                }
                var next = kicks.makeAsyncIterator()
                repeat {
                    do { try await body() } catch { logger.warning("\(name) failed: \(error)") }
                } while await next.next() != nil && !Task.isShuttingDownGracefully
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
        let (listenerID, wakes) = parts.notifier.updates()
        let (outboxWakes, outboxWake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let forwarder = Task {
            for await wake in wakes where wake.isOutbox {
                if wake == .outboxUrgent { parts.dispatcher.signalUrgent() }
                outboxWake.yield()
            }
            outboxWake.finish()
        }
        await WakeLoop(name: "outbox dispatch", every: .milliseconds(500), logger: parts.logger).run(wakes: outboxWakes) {
            try await parts.dispatcher.dispatchAll(on: parts.database(), to: parts.handlers)
        }
        parts.notifier.stop(listenerID)
        forwarder.cancel()
    }
}

/// Fires due escalation timers (each once, also across processes). A timer due during a stop
/// stays pending in the database and fires at the next start.
struct EscalationTimerService: Service {
    let parts: RoundsRuntime.Parts

    func run() async throws {
        let parts = self.parts
        await WakeLoop(name: "escalation", every: .seconds(1), logger: parts.logger).run {
            _ = try await parts.alerts.escalateDue(on: parts.database())
        }
    }
}

/// Critical values to Feishu, WeCom, SMS, e-mail and the LIS, on a loop of their own so a slow
/// peer never holds up the patient groups' cards.
struct AlertDeliveryService: Service {
    let parts: RoundsRuntime.Parts

    func run() async throws {
        let parts = self.parts
        await WakeLoop(name: "critical-value delivery", every: .seconds(1), logger: parts.logger).run {
            while try await parts.alerts.deliverDue(using: parts.connectors, on: parts.database()) > 0 {}
        }
    }
}

/// Signed callbacks to bots when someone presses their card buttons; retried with back-off.
struct BotCallbackService: Service {
    let parts: RoundsRuntime.Parts

    func run() async throws {
        let parts = self.parts
        await WakeLoop(name: "bot callbacks", every: .seconds(1), logger: parts.logger).run {
            _ = try await parts.chat.deliverCallbacks(on: parts.database(), post: parts.post)
        }
    }
}

/// HL7 back to the HIS/LIS (queued messages, sent in order per destination).
struct OutboundHL7Service: Service {
    let outbound: OutboundQueue
    let database: @Sendable () -> any Database
    let logger: Logger

    func run() async throws {
        let outbound = self.outbound, database = self.database
        await WakeLoop(name: "outbound HL7", every: .seconds(1), logger: logger).run {
            while try await outbound.runOnce(on: database()) > 0 {}
        }
    }
}

/// The MLLP listener. On graceful shutdown it stops accepting, lets the messages in hand finish
/// (a message not stored gets no ACK, so the sender resends), and closes the connections.
struct MLLPListenerService: Service {
    let integration: IntegrationService

    func run() async throws {
        if !integration.isStarted { try await integration.start() }
        try? await gracefulShutdown()
        await integration.stop()
    }
}

