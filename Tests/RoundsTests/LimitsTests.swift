import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import RoundsCore
import RoundsHL7
@testable import RoundsWeb
import Testing
import Vapor

/// A plain TCP client that sends what it is told and reads until the server closes (or a
/// deadline passes): for clients that misbehave on purpose.
struct RawTCP {
    struct Result { var received: String; var closedByServer: Bool }

    static func exchange(port: Int, send chunks: [String], closeAfterSending: Bool = false, trickle: Int? = nil,
                         wait: Duration = .seconds(5)) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let outcome = ResultBox()
        do {
            try await channel.executeThenClose { inbound, outbound in
                outcome.value = try await run(inbound, outbound)
            }
        } catch is ChannelError {
            // The server closed first; what we read before that stands.
        }
        return outcome.value

        func run(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> Result {
            do {
                for chunk in chunks { try await outbound.write(ByteBuffer(string: chunk)) }
            } catch {
                return Result(received: "", closedByServer: true)  // closed before we finished sending
            }
            if closeAfterSending { return Result(received: "", closedByServer: false) }
            let collected = NIOLockedValueBoxString()
            let closed = try await withThrowingTaskGroup(of: Bool.self) { group in
                if let trickle {
                    group.addTask {
                        // One more body byte now and then, until the server stops listening.
                        while true {
                            try await Task.sleep(for: .milliseconds(trickle))
                            do { try await outbound.write(ByteBuffer(string: " ")) } catch { return true }
                        }
                    }
                }
                group.addTask {
                    do { for try await buffer in inbound { collected.append(String(buffer: buffer)) } } catch {}
                    return true
                }
                group.addTask { try await Task.sleep(for: wait); return false }
                let first = try await group.next() ?? false
                group.cancelAll()
                return first
            }
            return Result(received: collected.value, closedByServer: closed)
        }
    }

    final class ResultBox: @unchecked Sendable { var value = Result(received: "", closedByServer: true) }
}

final class NIOLockedValueBoxString: @unchecked Sendable {
    private let lock = NSLock()
    private var text = ""
    func append(_ s: String) { lock.lock(); text += s; lock.unlock() }
    var value: String { lock.lock(); defer { lock.unlock() }; return text }
}

@Suite struct HTTPLimitsTests {
    /// A client that sends its headers and then trickles (here: stops) the body gets a 408 and
    /// its connection closed once the body deadline passes, instead of holding it forever.
    @Test func aBodyThatDoesNotArriveInTimeIsRefusedAndTheConnectionClosed() async throws {
        // (Trickling: a byte every 300 ms would keep an idle timer happy; the deadline is not fooled.)
        try await TestApp.serving(.sqlite, adjust: { $0.httpLimits = .init(idleTimeout: .seconds(30), bodyTimeout: .seconds(1)) }) { _, port, _ in
            let started = ContinuousClock.now
            let result = try await RawTCP.exchange(port: port, send: [
                "POST /api/v1/critical-values HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 500\r\n\r\n{\"mrn\":",
            ], trickle: 300, wait: .seconds(10))
            #expect(result.received.hasPrefix("HTTP/1.1 408"), "\(result.received.prefix(200))")
            #expect(result.received.contains("request_timeout"))
            #expect(result.closedByServer)
            #expect(ContinuousClock.now - started < .seconds(8))
        }
    }

    /// A connection that sends nothing (or half a request line and then nothing) is closed.
    @Test func aSilentConnectionIsClosed() async throws {
        // 6 s idle: long enough that a request in hand on a loaded 2-core machine is not cut off.
        try await TestApp.serving(.sqlite, adjust: { $0.httpLimits = .init(idleTimeout: .seconds(6), bodyTimeout: .seconds(30)) }) { _, port, _ in
            let silent = try await RawTCP.exchange(port: port, send: ["GET /heal"], wait: .seconds(20))
            #expect(silent.closedByServer)
            #expect(silent.received.isEmpty)
            // A normal request on a fresh connection is still served. (A file, not /healthz: the
            // health check pings the database, which on a loaded machine can take longer than this
            // test's idle limit, and the limit counts a request in hand as idle.)
            let normal = try await RawTCP.exchange(port: port, send: ["GET /css/rounds.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
                                                   wait: .seconds(20))
            #expect(normal.received.hasPrefix("HTTP/1.1 200"), "\(normal.received.prefix(120))")
        }
    }

    /// A body within the deadline is read as before, and the route's own size limit still holds.
    @Test func bodiesInTimeAreServedAndSizeLimitsStillHold() async throws {
        try await TestApp.serving(.sqlite, adjust: { $0.httpLimits = .init(idleTimeout: .seconds(30), bodyTimeout: .seconds(5)) }) { _, port, _ in
            let body = #"{"username":"nobody","password":"x"}"#
            let ok = try await RawTCP.exchange(port: port, send: [
                "POST /api/v1/me/locale HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n",
                body,
            ])
            #expect(ok.received.hasPrefix("HTTP/1.1 40"), "\(ok.received.prefix(120))")  // refused for who it is, not for time
            #expect(!ok.received.contains("request_timeout"))
            let big = String(repeating: "a", count: 1_100_000)
            let tooLarge = try await RawTCP.exchange(port: port, send: [
                "POST /api/v1/critical-values HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: \(big.utf8.count)\r\n\r\n",
                big,
            ])
            #expect(tooLarge.received.hasPrefix("HTTP/1.1 413"), "\(tooLarge.received.prefix(120))")
        }
    }

    /// A client that hangs up halfway through its body is its own fault: not logged or counted
    /// as a server error.
    @Test func aClientThatHangsUpMidBodyIsNotAServerError() async throws {
        let request = Request(application: try await Application.make(.testing), on: MultiThreadedEventLoopGroup.singleton.any())
        defer { Task { try? await request.application.asyncShutdown() } }
        for error: any Error in [HTTPParserError.invalidEOFState, ChannelError.eof, ChannelError.ioOnClosedChannel] {
            let problem = ProblemMiddleware.roundsError(for: error, request: request)
            #expect(problem.status == 400 && problem.code == "client_closed", "\(error)")
        }
        try await TestApp.serving(.sqlite) { _, port, _ in
            _ = try await RawTCP.exchange(port: port, send: [
                "POST /api/v1/critical-values HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 500\r\n\r\n{\"mrn\":",
            ], closeAfterSending: true)
            try await Task.sleep(for: .milliseconds(300))
            let metrics = try await RawTCP.exchange(port: port, send: ["GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"])
            let serverErrors = metrics.received.split(separator: "\n").filter {
                $0.hasPrefix("http_requests_total") && $0.contains("critical-values") && $0.contains("status=\"500\"")
            }
            #expect(serverErrors.isEmpty, "\(serverErrors)")
        }
    }

    /// TRACE, or a method a path does not have, is a 405 naming the methods it has.
    @Test func aMethodThePathDoesNotHaveIsA405() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let client = Client(app)
            try await client.login("admin")
            let trace = try await client.request(.TRACE, "/api/v1/me", headers: ["Accept": "application/json"])
            #expect(trace.status == .methodNotAllowed)
            #expect(trace.headers.first(name: .allow) == "GET, HEAD")
            #expect(trace.body.string.contains("method_not_allowed"))
            let delete = try await client.json(.DELETE, "/api/v1/alerts/statistics", [String: String]())
            #expect(delete.status == .methodNotAllowed)
            #expect(try await client.get("/api/v1/no-such-thing").status == .notFound)
            #expect(try await client.get("/api/v1/alerts/no-such-alert").status == .notFound)
        }
    }
}

@Suite struct MLLPConnectionCapTests {
    /// One connection more than the cap is closed as it opens; those within it are served, and
    /// a place freed is taken by the next sender.
    @Test func connectionsBeyondTheCapAreClosedAndTheOthersServed() async throws {
        let listener = try await MLLPListener.bind(.init(host: "127.0.0.1", port: 0, maximumConnections: 2)) { frame, _ in
            guard case .message(let bytes) = frame else { return .nothing }
            return .reply(bytes)
        }
        let serving = Task { try? await listener.run() }
        defer { serving.cancel() }
        let frame = "\u{0B}MSH|^~\\&|A|B|C|D|20261203||ADT^A01|1|P|2.5\r\u{1C}\r"
        let first = Task { try await RawTCP.exchange(port: listener.port, send: [frame], wait: .seconds(3)) }
        let second = Task { try await RawTCP.exchange(port: listener.port, send: [frame], wait: .seconds(3)) }
        for _ in 0..<100 where listener.openConnections < 2 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(listener.openConnections == 2)
        let third = try await RawTCP.exchange(port: listener.port, send: [frame], wait: .seconds(2))
        #expect(third.closedByServer && third.received.isEmpty)
        let a = try await first.value, b = try await second.value
        #expect(a.received.contains("ADT^A01") && b.received.contains("ADT^A01"))
        // The places free once the server has seen both hang-ups (slower on a loaded machine).
        for _ in 0..<500 where listener.openConnections > 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(listener.openConnections == 0)
        let fourth = try await RawTCP.exchange(port: listener.port, send: [frame], wait: .seconds(3))
        #expect(fourth.received.contains("ADT^A01"))
        await listener.close()
    }
}
