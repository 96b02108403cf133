import NIOCore
import NIOPosix
import NIOSSL

public enum MLLPClientError: Error, Sendable, CustomStringConvertible {
    /// The message (by MSH-10, when readable) got no answer: the connection closed, or stayed
    /// silent for the whole timeout.
    case noAcknowledgement(controlID: String?, timeoutSeconds: Int64)
    case frame(String)

    public var description: String {
        switch self {
        case .noAcknowledgement(let controlID, let timeout):
            return "no acknowledgement for message \(controlID ?? "(no MSH-10)") within \(timeout) s: the connection closed or stayed silent"
        case .frame(let s): return s
        }
    }
}

/// Sends messages over MLLP and reads one acknowledgement per message.
public enum MLLPClient {
    /// One open connection inside `withConnection`.
    public final class Session {
        private var inbound: NIOAsyncChannelInboundStream<MLLPFrame>.AsyncIterator
        private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
        private let timeout: TimeAmount

        init(inbound: NIOAsyncChannelInboundStream<MLLPFrame>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
             timeout: TimeAmount) {
            self.inbound = inbound
            self.outbound = outbound
            self.timeout = timeout
        }

        /// Sends one message and waits for its acknowledgement (the payload, unframed).
        public func send(_ payload: [UInt8]) async throws -> [UInt8] {
            try await outbound.write(ByteBuffer(bytes: MLLP.frame(payload)))
            while let frame = try await inbound.next() {
                switch frame {
                case .message(let ack): return ack
                case .junk, .truncated: continue
                case .tooLarge(let size, _): throw MLLPClientError.frame("acknowledgement of \(size) bytes is over the limit")
                }
            }
            throw MLLPClientError.noAcknowledgement(controlID: Self.controlID(payload), timeoutSeconds: timeout.nanoseconds / 1_000_000_000)
        }

        /// MSH-10 of an outgoing message, for the error that names what was awaited.
        static func controlID(_ payload: [UInt8]) -> String? {
            let header = payload.prefix { $0 != 0x0D }
            guard header.count > 4, header.starts(with: Array("MSH".utf8)) else { return nil }
            let fields = header.split(separator: header[header.startIndex + 3], omittingEmptySubsequences: false)
            return fields.count > 9 ? String(decoding: fields[9], as: UTF8.self) : nil
        }

        /// Writes raw bytes (for tests of malformed input).
        public func write(raw: [UInt8]) async throws {
            try await outbound.write(ByteBuffer(bytes: raw))
        }

        public func next() async throws -> [UInt8]? {
            while let frame = try await inbound.next() {
                if case .message(let ack) = frame { return ack }
            }
            return nil
        }
    }

    public static func withConnection<T: Sendable>(
        host: String, port: Int, tls: NIOSSLContext? = nil, serverHostname: String? = nil,
        timeout: TimeAmount = .seconds(60), maximumSize: Int = MLLP.defaultMaximumSize,
        _ body: (Session) async throws -> T
    ) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname)) }
                    try pipeline.addHandler(IdleStateHandler(readTimeout: timeout))
                    try pipeline.addHandler(CloseWhenIdle())
                    try pipeline.addHandler(ByteToMessageHandler(MLLPFrameDecoder(maximumSize: maximumSize)))
                    return try NIOAsyncChannel<MLLPFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(Session(inbound: inbound.makeAsyncIterator(), outbound: outbound, timeout: timeout))
        }
    }
}
