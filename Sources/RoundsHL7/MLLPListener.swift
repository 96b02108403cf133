import NIOCore
import NIOPosix
import NIOSSL
import NIOConcurrencyHelpers
import Logging

/// Who sent a frame, for the message store and the audit log.
public struct MLLPPeer: Sendable {
    public var address: String
}

/// The MLLP server: many connections, many messages per connection, answered in order.
/// Each frame goes to `handler`, whose answer (an ACK, unframed) is written back before the
/// next frame of that connection is read, so a sender never sees ACKs out of order.
public final class MLLPListener: Sendable {
    /// What to do after a frame: answer it, say nothing, or hang up (the sender then resends).
    public enum Answer: Sendable {
        case reply([UInt8])
        case nothing
        case close
    }

    public typealias Handler = @Sendable (MLLPFrame, MLLPPeer) async -> Answer
    typealias Connection = NIOAsyncChannel<MLLPFrame, ByteBuffer>

    private let server: NIOAsyncChannel<Connection, Never>
    private let handler: Handler
    private let maximumConnections: Int
    /// The connections being served, and whether each is handling a message right now; set
    /// `draining` once a stop began (see `close(grace:)`).
    private let live = NIOLockedValueBox<(connections: [ObjectIdentifier: (channel: any Channel, busy: Bool)], draining: Bool)>(([:], false))
    private let logger = Logger(label: "rounds.mllp")
    public let port: Int

    /// Connections being served now.
    public var openConnections: Int { live.withLockedValue { $0.connections.count } }

    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var maximumMessageSize: Int
        /// A connection with no data for this long is closed.
        public var idleTimeout: TimeAmount
        /// Connections served at once; one more is closed as soon as it opens (the sender retries),
        /// so a flood of connections cannot exhaust memory or file descriptors.
        public var maximumConnections: Int
        public var tls: NIOSSLContext?

        public init(host: String = "0.0.0.0", port: Int = MLLP.defaultPort, maximumMessageSize: Int = MLLP.defaultMaximumSize,
                    idleTimeout: TimeAmount = .minutes(10), maximumConnections: Int = MLLP.defaultMaximumConnections,
                    tls: NIOSSLContext? = nil) {
            self.host = host
            self.port = port
            self.maximumMessageSize = maximumMessageSize
            self.idleTimeout = idleTimeout
            self.maximumConnections = maximumConnections
            self.tls = tls
        }
    }

    private init(server: NIOAsyncChannel<Connection, Never>, port: Int, maximumConnections: Int, handler: @escaping Handler) {
        self.server = server
        self.port = port
        self.maximumConnections = maximumConnections
        self.handler = handler
    }

    /// Binds the port (0 picks a free one; see `port`). Call `run()` to serve.
    public static func bind(_ options: Options, handler: @escaping Handler) async throws -> MLLPListener {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: options.host, port: options.port) { child in
                child.eventLoop.makeCompletedFuture {
                    let pipeline = child.pipeline.syncOperations
                    if let tls = options.tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    try pipeline.addHandler(IdleStateHandler(readTimeout: options.idleTimeout))
                    try pipeline.addHandler(CloseWhenIdle())
                    try pipeline.addHandler(ByteToMessageHandler(MLLPFrameDecoder(maximumSize: options.maximumMessageSize)))
                    return try Connection(wrappingChannelSynchronously: child)
                }
            }
        let port = server.channel.localAddress?.port ?? options.port
        return MLLPListener(server: server, port: port, maximumConnections: options.maximumConnections, handler: handler)
    }

    /// Serves until `close()` (or cancellation).
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    // One count of open connections: the map `close` drains (nothing to keep in step).
                    let key = ObjectIdentifier(connection.channel)
                    let admitted = live.withLockedValue { state -> Bool in
                        guard !state.draining, state.connections.count < maximumConnections else { return false }
                        state.connections[key] = (connection.channel, false)
                        return true
                    }
                    guard admitted else {
                        logger.warning("MLLP connection refused: \(maximumConnections) already open, or stopping",
                                       metadata: ["peer": .string(connection.channel.remoteAddress?.ipAddress ?? "unknown")])
                        try? await connection.channel.close()
                        continue
                    }
                    group.addTask { await self.serve(connection, key: key) }
                }
            }
        }
    }

    /// Stops accepting at once. A connection waiting for its next message is closed; one whose
    /// message is being handled gets its answer first and is closed after it — or, after
    /// `grace`, closed regardless (a message not yet stored then gets no ACK, and its sender
    /// resends it; one already stored is acknowledged as a duplicate when it comes again).
    public func close(grace: Duration = .seconds(10)) async {
        try? await server.channel.close()
        let idle = live.withLockedValue { state -> [any Channel] in
            state.draining = true
            return state.connections.values.filter { !$0.busy }.map(\.channel)
        }
        for channel in idle { try? await channel.close() }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, live.withLockedValue({ !$0.connections.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for channel in live.withLockedValue({ $0.connections.values.map(\.channel) }) { try? await channel.close() }
    }

    private func serve(_ connection: Connection, key: ObjectIdentifier) async {
        let peer = MLLPPeer(address: connection.channel.remoteAddress?.ipAddress ?? "unknown")
        defer { live.withLockedValue { _ = $0.connections.removeValue(forKey: key) } }
        func setBusy(_ busy: Bool) -> Bool {
            live.withLockedValue { state in
                state.connections[key]?.busy = busy
                return state.draining
            }
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                for try await frame in inbound {
                    if setBusy(true) { return }  // stopping: not started, so not answered; it is resent
                    let answer = await handler(frame, peer)
                    switch answer {
                    case .reply(let bytes): try await outbound.write(ByteBuffer(bytes: MLLP.frame(bytes)))
                    case .nothing: break
                    case .close: return
                    }
                    if setBusy(false) { return }  // stopping: answered, now closed
                }
            }
        } catch {
            // A peer that hangs up mid-frame or times out: nothing more to tell it.
        }
    }
}

/// Closes a connection that has been silent for the idle timeout.
final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
