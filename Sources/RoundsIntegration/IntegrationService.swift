import FluentKit
import Foundation
import Logging
import NIOCore
import NIOSSL
import RoundsCore
import RoundsHL7
import RoundsStore

/// The MLLP listener feeding the inbound pipeline (and, in demo mode, the simulated feed).
/// The runtime runs it, and the outbound queue, as services (`RoundsRuntime`).
public final class IntegrationService: BackgroundListener {
    public struct Settings: Sendable {
        public var host: String
        public var port: Int
        public var maximumMessageSize: Int
        public var idleTimeoutSeconds: Int64
        public var maximumConnections: Int
        public var tls: NIOSSLContext?
        /// Messages per second of the simulated HIS/LIS feed sent to our own listener (demo
        /// mode); 0 = none.
        public var demoFeedRate: Double

        public init(host: String = "0.0.0.0", port: Int = MLLP.defaultPort, maximumMessageSize: Int = MLLP.defaultMaximumSize,
                    idleTimeoutSeconds: Int64 = 600, maximumConnections: Int = MLLP.defaultMaximumConnections,
                    tls: NIOSSLContext? = nil, demoFeedRate: Double = 0) {
            self.maximumConnections = maximumConnections
            self.host = host
            self.port = port
            self.maximumMessageSize = maximumMessageSize
            self.idleTimeoutSeconds = idleTimeoutSeconds
            self.tls = tls
            self.demoFeedRate = demoFeedRate
        }
    }

    public let pipeline: InboundPipeline
    public let outbound: OutboundQueue
    let settings: Settings
    let database: @Sendable () -> any Database
    let logger: Logger
    private let state = LockedState()
    /// Listening now (between `start()` and `stop()`).
    public var isStarted: Bool { state.isStarted }

    public init(settings: Settings, pipeline: InboundPipeline, outbound: OutboundQueue, logger: Logger,
                database: @escaping @Sendable () -> any Database) {
        self.settings = settings
        self.pipeline = pipeline
        self.outbound = outbound
        self.logger = logger
        self.database = database
    }

    /// Binds the MLLP port and starts serving; returns the bound port.
    @discardableResult
    public func start() async throws -> Int {
        let limit = settings.maximumMessageSize
        let listener = try await MLLPListener.bind(.init(
            host: settings.host, port: settings.port, maximumMessageSize: limit,
            idleTimeout: .seconds(settings.idleTimeoutSeconds), maximumConnections: settings.maximumConnections, tls: settings.tls
        ), handler: handler(port: nil))
        let serving = Task {
            do { try await listener.run() } catch { logger.error("MLLP listener stopped: \(error)") }
        }
        var feed: Task<Void, Never>?
        if settings.demoFeedRate > 0, settings.tls == nil {
            feed = Self.demoFeed(port: listener.port, rate: settings.demoFeedRate, logger: logger)
        }
        // The ports channels own (read once at start: a port added later opens at the next start).
        var own: [(MLLPListener, Task<Void, Never>)] = []
        do {
            for (port, name) in try await pipeline.channels.listenPorts(on: database()) where port != listener.port {
                do {
                    let extra = try await MLLPListener.bind(.init(
                        host: settings.host, port: port, maximumMessageSize: limit, idleTimeout: .seconds(settings.idleTimeoutSeconds),
                        maximumConnections: settings.maximumConnections, tls: settings.tls), handler: handler(port: port))
                    let logger = self.logger
                    own.append((extra, Task { do { try await extra.run() } catch { logger.error("MLLP listener \(port) stopped: \(error)") } }))
                    logger.notice("MLLP listener on \(settings.host):\(port) for channel '\(name)'")
                } catch {
                    logger.error("could not listen on port \(port) for channel '\(name)': \(error)")
                }
            }
        } catch {
            logger.error("could not read the channels' ports: \(error)")
        }
        state.set(listener: listener, serving: serving, tasks: [feed].compactMap { $0 }, extra: own)
        logger.notice("MLLP listener on \(settings.host):\(listener.port)\(settings.tls == nil ? "" : " (TLS)")")
        return listener.port
    }

    /// What a listener does with each frame; `port`: a channel's own port (nil: the main one).
    func handler(port: Int?) -> MLLPListener.Handler {
        let pipeline = self.pipeline, database = self.database, limit = settings.maximumMessageSize, logger = self.logger
        return { frame, peer in
            switch frame {
            case .message(let bytes):
                // Not stored means not acknowledged: close, so the sender resends.
                guard let receipt = await pipeline.receive(bytes, peer: peer.address, port: port, on: database()) else { return .close }
                return .reply(receipt.acknowledgement)
            case .tooLarge(let size, let head):
                return .reply(await pipeline.tooLarge(size: size, limit: limit, head: head, peer: peer.address, on: database()))
            case .truncated(let bytes):
                // The sender hung up mid-frame: keep what arrived (rejected); it will resend.
                await pipeline.truncated(bytes, peer: peer.address, on: database())
                return .close
            case .junk(let count):
                logger.notice("dropped \(count) bytes outside MLLP frames", metadata: ["peer": .string(peer.address)])
                return .nothing
            }
        }
    }

    /// The demo hospital's HIS/LIS: simulated messages over MLLP to our own port, so the demo
    /// shows the whole path (listener, store, mapping) working.
    static func demoFeed(port: Int, rate: Double, logger: Logger) -> Task<Void, Never> {
        Task {
            var simulator = FeedSimulator(seed: UInt64.random(in: 0...UInt64.max), runTag: String(Int(Date().timeIntervalSince1970) % 100_000))
            let sender = HL7Sender(host: "127.0.0.1", port: port)
            do {
                try await sender.run(next: {
                    try? await Task.sleep(for: .milliseconds(Int(1000 / rate)))
                    if Task.isCancelled { return nil }
                    return Array(simulator.next(at: Date()).utf8)
                }, done: { result in
                    if result.ackCode != "AA" {
                        logger.notice("demo feed: \(result.controlID) answered \(result.ackCode) \(result.text ?? "")")
                    }
                })
            } catch {
                logger.warning("demo feed stopped: \(error)")
            }
        }
    }

    /// Stops the listener (see `MLLPListener.close(grace:)`: messages in hand finish or get no ACK).
    public func stop() async {
        let (listener, serving, tasks, extra) = state.take()
        for task in tasks { task.cancel() }
        await listener?.close()
        for (other, _) in extra { await other.close() }
        _ = await serving?.value
        for (_, task) in extra { _ = await task.value }
        for task in tasks { _ = await task.value }
    }
}

private final class LockedState: @unchecked Sendable {
    private let lock = NSLock()
    private var listener: MLLPListener?
    private var serving: Task<Void, Never>?
    private var tasks: [Task<Void, Never>] = []
    private var extra: [(MLLPListener, Task<Void, Never>)] = []

    func set(listener: MLLPListener, serving: Task<Void, Never>, tasks: [Task<Void, Never>], extra: [(MLLPListener, Task<Void, Never>)]) {
        lock.withLock { self.listener = listener; self.serving = serving; self.tasks = tasks; self.extra = extra }
    }

    var isStarted: Bool { lock.withLock { listener != nil } }

    func take() -> (MLLPListener?, Task<Void, Never>?, [Task<Void, Never>], [(MLLPListener, Task<Void, Never>)]) {
        lock.withLock {
            defer { listener = nil; serving = nil; tasks = []; extra = [] }
            return (listener, serving, tasks, extra)
        }
    }
}
