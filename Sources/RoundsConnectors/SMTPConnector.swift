import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import RoundsCore

/// E-mail through the hospital's mail server over SMTP (RFC 5321): EHLO, optional STARTTLS or
/// implicit TLS, optional AUTH PLAIN, one message to the people reached (their e-mail addresses)
/// and the connector's fixed `to` list. The body is UTF-8 text, Base64-encoded, so Chinese
/// survives every relay.
public struct SMTPConnector: AlertConnector {
    let clock: any RoundsClock
    let timeZone: TimeZone

    public init(clock: any RoundsClock, timeZone: TimeZone) {
        self.clock = clock
        self.timeZone = timeZone
    }

    public func deliver(_ notice: AlertNotice, settings: [String: String]) async throws {
        let host = try require(settings, "host")
        let from = try require(settings, "from")
        let security = settings["security"] ?? "none"
        guard ["none", "starttls", "tls"].contains(security) else {
            throw ConnectorError("setting 'security' must be none, starttls or tls", permanent: true)
        }
        guard let port = Int(settings["port"] ?? (security == "tls" ? "465" : "25")), (1...65535).contains(port) else {
            throw ConnectorError("setting 'port' is not a port number", permanent: true)
        }
        let fixed = (settings["to"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let recipients = Array(Set(notice.recipients.compactMap(\.email) + fixed)).filter(Self.isAddress).sorted()
        guard !recipients.isEmpty else { throw ConnectorError("no e-mail address for the people reached", permanent: true) }
        guard Self.isAddress(from) else { throw ConnectorError("setting 'from' is not an e-mail address", permanent: true) }
        let message = Self.message(from: from, to: recipients, subject: notice.headline, body: notice.text(timeZone: timeZone),
                                   date: clock.now(), id: "\(notice.alertID).\(notice.event.rawValue).\(notice.level)")
        var credentials: (String, String)?
        if let user = settings["username"], !user.isEmpty { credentials = (user, settings["password"] ?? "") }
        try await SMTPSession.run(host: host, port: port, implicitTLS: security == "tls") { session in
            try await session.expect(220)
            try await session.hello()
            if security == "starttls" {
                try await session.command("STARTTLS", expect: 220)
                try await session.startTLS(host: host)
                try await session.hello()
            }
            if let (user, password) = credentials {
                let token = Data("\0\(user)\0\(password)".utf8).base64EncodedString()
                try await session.command("AUTH PLAIN \(token)", expect: 235, redacted: "AUTH PLAIN …")
            }
            try await session.command("MAIL FROM:<\(from)>", expect: 250)
            for recipient in recipients { try await session.command("RCPT TO:<\(recipient)>", expect: 250) }
            try await session.command("DATA", expect: 354)
            try await session.command(message + "\r\n.", expect: 250, redacted: "(message)")
            try? await session.command("QUIT", expect: 221)
        }
    }

    /// Plain addresses only: no display names, no line breaks (they would inject headers).
    static func isAddress(_ s: String) -> Bool {
        let parts = s.split(separator: "@")
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
            && !s.contains(where: { $0.isWhitespace || "<>\r\n,;\"".contains($0) })
    }

    static func encodedWord(_ s: String) -> String {
        "=?UTF-8?B?\(Data(s.utf8).base64EncodedString())?="
    }

    static func message(from: String, to: [String], subject: String, body: String, date: Date, id: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        let encoded = Data(body.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        let domain = from.split(separator: "@").last.map(String.init) ?? "rounds"
        return [
            "From: \(from)", "To: \(to.joined(separator: ", "))", "Subject: \(encodedWord(subject))",
            "Date: \(formatter.string(from: date))", "Message-ID: <\(id)@\(domain)>", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: base64", "", encoded,
        ].joined(separator: "\r\n")
    }
}

/// One SMTP conversation: send a line, read the (possibly multi-line) reply.
struct SMTPSession {
    private var replies: NIOAsyncChannelInboundStream<String>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let channel: any Channel

    /// Connects, runs the conversation, closes. A server that stalls for 30 s is hung up on.
    static func run(host: String, port: Int, implicitTLS: Bool, _ body: (inout SMTPSession) async throws -> Void) async throws {
        let channel: NIOAsyncChannel<String, ByteBuffer>
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(10))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        if implicitTLS {
                            let context = try NIOSSLContext(configuration: .makeClientConfiguration())
                            try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: host))
                        }
                        try pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(30)))
                        try pipeline.addHandler(HangUpWhenIdle())
                        try pipeline.addHandler(ByteToMessageHandler(SMTPLineDecoder()))
                        return try NIOAsyncChannel<String, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw ConnectorError("could not reach the mail server: \(error)")
        }
        let raw = channel.channel
        try await channel.executeThenClose { inbound, outbound in
            var session = SMTPSession(replies: inbound.makeAsyncIterator(), outbound: outbound, channel: raw)
            try await body(&session)
        }
    }

    mutating func hello() async throws {
        try await command("EHLO rounds", expect: 250)
    }

    /// Sends one command line and checks the reply code. 5xx replies are final, 4xx are worth a retry.
    mutating func command(_ line: String, expect code: Int, redacted: String? = nil) async throws {
        try await outbound.write(ByteBuffer(string: line + "\r\n"))
        try await expect(code, after: redacted ?? line)
    }

    mutating func expect(_ code: Int, after command: String = "greeting") async throws {
        var last = ""
        repeat {
            guard let line = try await replies.next() else {
                throw ConnectorError("the mail server closed the connection after \(command)")
            }
            last = line
        } while last.count >= 4 && last[last.index(last.startIndex, offsetBy: 3)] == "-"
        let got = Int(last.prefix(3)) ?? 0
        guard got == code else {
            throw ConnectorError("the mail server answered '\(last.prefix(200))' to \(command)", permanent: (500..<600).contains(got))
        }
    }

    /// STARTTLS: TLS goes in front of everything else in the pipeline, then the conversation restarts.
    func startTLS(host: String) async throws {
        let context = try NIOSSLContext(configuration: .makeClientConfiguration())
        let handler = try NIOSSLClientHandler(context: context, serverHostname: host)
        try await channel.pipeline.addHandler(handler, position: .first).get()
    }
}

/// Closes the connection when the idle timer fires, so a stalled read ends.
final class HangUpWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }
}

/// Splits the server's byte stream into CRLF-terminated lines.
struct SMTPLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = String

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 64 * 1024 { throw ConnectorError("the mail server sent an over-long line") }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex + 1
        // Drop CR LF as bytes: in a Swift String "\r\n" is one Character, so suffix checks miss it.
        var bytes = buffer.readBytes(length: length) ?? []
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
        context.fireChannelRead(wrapInboundOut(String(decoding: bytes, as: UTF8.self)))
        return .continue
    }
}
