import NIOCore

/// MLLP framing: <VT> message <FS><CR>. Bytes outside a frame are dropped (and reported);
/// a frame over the size limit is dropped whole and reported, and the connection stays usable.
public enum MLLPFrame: Sendable, Equatable {
    case message([UInt8])
    /// `head`: the first bytes of the frame (up to 4 KiB), so the refusal can name the message.
    case tooLarge(size: Int, head: [UInt8])
    case junk(count: Int)
    /// The connection closed inside a frame: the bytes after the start block, with no end.
    case truncated([UInt8])
}

public struct MLLPFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = MLLPFrame

    public static let startBlock: UInt8 = 0x0B
    public static let endBlock: UInt8 = 0x1C
    public static let carriageReturn: UInt8 = 0x0D

    let maximumSize: Int
    static let headSize = 4096
    /// Inside an over-sized frame: skipping to its end, having seen this many bytes.
    private var skipping: Int?
    /// The start of the over-sized frame being skipped.
    private var skippedHead: [UInt8] = []
    /// How many bytes of the frame being received (from the reader index) were already searched
    /// for its end: each read searches only what is new, so a frame of n bytes arriving in many
    /// reads costs O(n), not O(n²) (5 MiB used to take the event loop for most of a minute).
    private var searched = 0

    public init(maximumSize: Int) {
        self.maximumSize = maximumSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let skipped = skipping {
            if let end = buffer.readableBytesView.firstIndex(of: Self.endBlock) {
                let consumed = end - buffer.readerIndex + 1
                buffer.moveReaderIndex(forwardBy: consumed)
                if buffer.readableBytesView.first == Self.carriageReturn { buffer.moveReaderIndex(forwardBy: 1) }
                skipping = nil
                context.fireChannelRead(wrapInboundOut(.tooLarge(size: skipped + consumed, head: skippedHead)))
                skippedHead = []
                return .continue
            }
            skipping = skipped + buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        }
        guard let first = buffer.readableBytesView.first else { return .needMoreData }
        if first != Self.startBlock {
            // Junk before a frame (a stray CR/LF between frames is common and harmless).
            let junk = buffer.readableBytesView.firstIndex(of: Self.startBlock).map { $0 - buffer.readerIndex } ?? buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: junk)
            let onlyWhitespace = junk <= 2
            if !onlyWhitespace { context.fireChannelRead(wrapInboundOut(.junk(count: junk))) }
            return .continue
        }
        let view = buffer.readableBytesView
        guard let end = view.dropFirst(max(searched, 1)).firstIndex(of: Self.endBlock) else {
            searched = view.count
            if buffer.readableBytes - 1 > maximumSize {
                skipping = buffer.readableBytes
                skippedHead = Array(view.dropFirst().prefix(Self.headSize))
                searched = 0
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
            return .needMoreData
        }
        searched = 0
        // The CR after FS is expected but not waited for: a sender that omits it still gets its ACK.
        let payloadLength = end - buffer.readerIndex - 1
        buffer.moveReaderIndex(forwardBy: 1)
        let payload = buffer.readBytes(length: payloadLength) ?? []
        buffer.moveReaderIndex(forwardBy: 1)  // FS
        if buffer.readableBytesView.first == Self.carriageReturn { buffer.moveReaderIndex(forwardBy: 1) }
        if payload.count > maximumSize {
            context.fireChannelRead(wrapInboundOut(.tooLarge(size: payload.count, head: Array(payload.prefix(Self.headSize)))))
        } else {
            context.fireChannelRead(wrapInboundOut(.message(payload)))
        }
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // The peer closed inside a frame: no one to acknowledge to, but the bytes are reported so
        // they can be kept (stored as rejected) rather than silently lost.
        while buffer.readableBytes > 0 {
            if case .continue = try decode(context: context, buffer: &buffer) { continue }
            break
        }
        if skipping == nil, buffer.readableBytesView.first == Self.startBlock {
            buffer.moveReaderIndex(forwardBy: 1)
            context.fireChannelRead(wrapInboundOut(.truncated(buffer.readBytes(length: buffer.readableBytes) ?? [])))
        }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}

public enum MLLP {
    /// Wraps a payload in an MLLP frame.
    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        [MLLPFrameDecoder.startBlock] + payload + [MLLPFrameDecoder.endBlock, MLLPFrameDecoder.carriageReturn]
    }

    public static let defaultPort = 2575
    public static let defaultMaximumSize = 10 * 1024 * 1024
    public static let defaultMaximumConnections = 256
}
