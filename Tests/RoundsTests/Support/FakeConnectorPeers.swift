import Foundation
import NIOCore
import NIOPosix
@testable import RoundsConnectors
import Vapor

/// Starts a fake's routes on a free loopback port; returns the port.
enum LocalHTTP {
    static func serve(_ app: Application) async throws -> Int {
        app.logger.logLevel = .critical
        try await app.asyncBoot()
        try await app.server.start(address: .hostname("127.0.0.1", port: 0))
        guard let port = app.http.server.shared.localAddress?.port else { throw Abort(.internalServerError) }
        return port
    }
}

/// A local HTTP server that speaks the documented protocols of the outside services the
/// connectors call: Feishu's custom bot webhook (checks the signature with its secret), WeCom's
/// group robot (checks the key), and the SMS gateway of docs/CONNECTORS.md (checks the bearer
/// token). It records every request, and can be told to fail the next ones with an HTTP status.
final class FakeWebhookServer: @unchecked Sendable {
    struct Received { var path: String; var headers: HTTPHeaders; var json: [String: Any] }

    static let feishuSecret = "feishu-s3cret"
    static let wecomKey = "wecom-key-1"
    static let smsToken = "sms-token-1"

    private let lock = NSLock()
    private var _received: [Received] = []
    private var _failures: [HTTPStatus] = []
    private let app: Application
    private(set) var port = 0

    private init(app: Application) { self.app = app }

    var received: [Received] { lock.withLock { _received } }
    var base: String { "http://127.0.0.1:\(port)" }

    /// The next `count` requests are answered with `status` (and nothing is recorded).
    func fail(next count: Int, with status: HTTPStatus) {
        lock.withLock { _failures += Array(repeating: status, count: count) }
    }

    static func start() async throws -> FakeWebhookServer {
        let app = try await Application.make(.testing)
        let server = FakeWebhookServer(app: app)
        app.post("open-apis", "bot", "v2", "hook", ":token") { req in try server.feishu(req) }
        app.post("cgi-bin", "webhook", "send") { req in try server.wecom(req) }
        app.post("sms", "send") { req in try server.sms(req) }
        server.port = try await LocalHTTP.serve(app)
        return server
    }

    func stop() async {
        await app.server.shutdown()
        try? await app.asyncShutdown()
    }

    private func take(_ req: Request) throws -> (Response?, [String: Any]) {
        if let status = lock.withLock({ _failures.isEmpty ? nil : _failures.removeFirst() }) {
            return (Response(status: status), [:])
        }
        let body = req.body.data.map { Data(buffer: $0) } ?? Data()
        let json = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:]
        lock.withLock { _received.append(Received(path: req.url.path, headers: req.headers, json: json)) }
        return (nil, json)
    }

    private func answer(_ object: [String: Any], status: HTTPStatus = .ok) throws -> Response {
        let response = Response(status: status, body: .init(data: try JSONSerialization.data(withJSONObject: object)))
        response.headers.contentType = .json
        return response
    }

    /// Feishu: a bot with a signing secret refuses unsigned or wrongly signed messages with code 19021.
    private func feishu(_ req: Request) throws -> Response {
        let (failed, json) = try take(req)
        if let failed { return failed }
        guard json["msg_type"] as? String == "text", ((json["content"] as? [String: Any])?["text"] as? String) != nil else {
            return try answer(["code": 9499, "msg": "Bad Request"])
        }
        if req.parameters.get("token") == "signed" {
            guard let timestamp = json["timestamp"] as? String, let sign = json["sign"] as? String,
                  sign == FeishuConnector.sign(timestamp: timestamp, secret: Self.feishuSecret) else {
                return try answer(["code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"])
            }
        }
        return try answer(["code": 0, "msg": "success", "data": [:]])
    }

    /// WeCom: an unknown key is error 93000; a good message {"errcode":0,"errmsg":"ok"}.
    private func wecom(_ req: Request) throws -> Response {
        let (failed, json) = try take(req)
        if let failed { return failed }
        guard req.query[String.self, at: "key"] == Self.wecomKey else { return try answer(["errcode": 93000, "errmsg": "invalid webhook url"]) }
        guard json["msgtype"] as? String == "text" else { return try answer(["errcode": 40008, "errmsg": "invalid message type"]) }
        return try answer(["errcode": 0, "errmsg": "ok"])
    }

    /// The SMS gateway: bearer token, then 202 with how many numbers were accepted.
    private func sms(_ req: Request) throws -> Response {
        let (failed, json) = try take(req)
        if let failed { return failed }
        guard req.headers.bearerAuthorization?.token == Self.smsToken else { return try answer(["error": "unauthorised"], status: .unauthorized) }
        return try answer(["accepted": (json["to"] as? [String])?.count ?? 0], status: .accepted)
    }
}

/// A local SMTP server (RFC 5321, plain text, AUTH PLAIN) that keeps what it is sent.
final class FakeSMTPServer: @unchecked Sendable {
    struct Mail { var from: String; var to: [String]; var data: String }

    static let user = "rounds"
    static let password = "mail-pass"

    private let lock = NSLock()
    private var _mails: [Mail] = []
    private var channel: (any Channel)?
    var port: Int { channel?.localAddress?.port ?? 0 }
    var mails: [Mail] { lock.withLock { _mails } }

    func keep(_ mail: Mail) { lock.withLock { _mails.append(mail) } }

    static func start() async throws -> FakeSMTPServer {
        let server = FakeSMTPServer()
        server.channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPLineDecoder()))
                    try channel.pipeline.syncOperations.addHandler(Session(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return server
    }

    func stop() async { try? await channel?.close().get() }

    final class Session: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = String
        typealias OutboundOut = ByteBuffer
        let server: FakeSMTPServer
        var from = "", to: [String] = [], data: [String] = [], inData = false, authenticated = false

        init(server: FakeSMTPServer) { self.server = server }

        func say(_ context: ChannelHandlerContext, _ text: String) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text + "\r\n")), promise: nil)
        }

        func channelActive(context: ChannelHandlerContext) { say(context, "220 fake.example ESMTP ready") }

        func channelRead(context: ChannelHandlerContext, data raw: NIOAny) {
            let line = unwrapInboundIn(raw)
            if inData {
                if line == "." {
                    server.keep(Mail(from: from, to: to, data: data.joined(separator: "\r\n")))
                    inData = false
                    say(context, "250 2.0.0 queued")
                } else {
                    data.append(line.hasPrefix("..") ? String(line.dropFirst()) : line)
                }
                return
            }
            let upper = line.uppercased()
            if upper.hasPrefix("EHLO") { say(context, "250-fake.example\r\n250-8BITMIME\r\n250 AUTH PLAIN") }
            else if upper.hasPrefix("AUTH PLAIN ") {
                let token = Data(base64Encoded: String(line.dropFirst(11))).map { String(decoding: $0, as: UTF8.self) }
                authenticated = token == "\0\(FakeSMTPServer.user)\0\(FakeSMTPServer.password)"
                say(context, authenticated ? "235 2.7.0 authenticated" : "535 5.7.8 authentication failed")
            } else if upper.hasPrefix("MAIL FROM:") {
                guard authenticated else { return say(context, "530 5.7.0 authentication required") }
                from = String(line.dropFirst(10)); to = []; data = []
                say(context, "250 OK")
            } else if upper.hasPrefix("RCPT TO:") { to.append(String(line.dropFirst(8))); say(context, "250 OK") }
            else if upper == "DATA" { inData = true; say(context, "354 end with <CRLF>.<CRLF>") }
            else if upper == "QUIT" { say(context, "221 bye"); context.close(promise: nil) }
            else { say(context, "502 5.5.2 command not recognised") }
        }
    }
}
