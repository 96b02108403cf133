import FluentKit
import Foundation
import NIOCore
import NIOSSL
import RoundsCore
import RoundsHL7
import RoundsWeb
@testable import RoundsIntegration
@testable import RoundsDirectory
@testable import RoundsStore
import Testing
import Vapor

/// The MLLP listener in front of the pipeline, over real sockets: framing, many messages per
/// connection, many connections, size limit, idle timeout, truncated frames, TLS.
@Suite struct MLLPEngineTests {
    static func start(_ app: Application, maximumSize: Int = 64 * 1024, idle: Int64 = 30,
                      tls: NIOSSLContext? = nil) async throws -> (IntegrationService, Int) {
        let service = IntegrationService(
            settings: .init(host: "127.0.0.1", port: 0, maximumMessageSize: maximumSize, idleTimeoutSeconds: idle, tls: tls),
            pipeline: app.rounds.hl7, outbound: app.rounds.outbound, logger: app.logger, database: { app.db })
        return (service, try await service.start())
    }

    static func ackCode(_ bytes: [UInt8]) throws -> (String?, HL7Message) {
        let ack = try HL7Message.parse(bytes: bytes).0
        return (ack["MSA-1"], ack)
    }

    @Test(arguments: Backend.all)
    func samplesOverOneConnectionAreStoredThenAcknowledged(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let (service, port) = try await Self.start(app)
            let expected = ["adt_a01_utf8.hl7": "AA", "adt_a02_transfer.hl7": "AA", "orm_o01_change.hl7": "AA",
                            "oru_r01_critical_k.hl7": "AA", "mdm_t02_pathology_pdf.hl7": "AA", "custom_delimiters.hl7": "AE"]
            let order = ["adt_a01_utf8.hl7", "adt_a02_transfer.hl7", "orm_o01_change.hl7", "oru_r01_critical_k.hl7",
                         "mdm_t02_pathology_pdf.hl7", "custom_delimiters.hl7"]
            try await MLLPClient.withConnection(host: "127.0.0.1", port: port) { session in
                for name in order {
                    let bytes = try HL7Fixtures.bytes(name)
                    let (code, ack) = try Self.ackCode(try await session.send(bytes))
                    #expect(code == expected[name], "\(name)")
                    #expect(ack["MSA-2"] == (try HL7Message.parse(bytes: bytes).0.controlID))
                    // Store first: by the time the ACK is read, the message is committed.
                    let stored = try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == ack["MSA-2"]!).first()
                    #expect(stored?.peer == "127.0.0.1", "\(name)")
                }
                // Stray bytes between frames are skipped; the next frame is still answered.
                try await session.write(raw: Array("garbage between frames".utf8))
                let (code, _) = try Self.ackCode(try await session.send(HL7Fixtures.bytes("oru_r01_critical_k.hl7")))
                #expect(code == "AA")  // a duplicate, acknowledged
            }
            #expect(try await HL7MessageRecord.query(on: app.db).count() == 6)
            #expect(try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == "MSG00004").first()?.duplicateCount == 1)
            await service.stop()
        }
    }

    @Test(arguments: Backend.all)
    func manyConnectionsAtOnce(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let (service, port) = try await Self.start(app)
            var feed = FeedSimulator(seed: 9, runTag: "C")
            // Results and orders only (no bed changes), 4 connections × 25 messages.
            var batches: [[[UInt8]]] = Array(repeating: [], count: 4)
            var admissions: [[UInt8]] = []
            var n = 0
            while batches.map(\.count).reduce(0, +) < 100 {
                let text = feed.next(at: clock.now())
                guard text.contains("ORU^R01") || text.contains("ORM^O01") else {
                    // The patients' admissions go first, so no result waits for its patient.
                    admissions.append(Array(text.utf8))
                    continue
                }
                batches[n % 4].append(Array(text.utf8))
                n += 1
            }
            for admission in admissions { _ = try #require(await app.rounds.hl7.receive(admission, peer: "feed", on: app.db)) }
            let codes = try await withThrowingTaskGroup(of: [String].self) { group in
                for batch in batches {
                    group.addTask {
                        try await MLLPClient.withConnection(host: "127.0.0.1", port: port) { session in
                            var codes: [String] = []
                            for message in batch { codes.append(try Self.ackCode(try await session.send(message)).0 ?? "?") }
                            return codes
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(codes.count == 100)
            let errors = try await HL7MessageRecord.query(on: app.db).filter(\.$status != "accepted").all().map { $0.error ?? "" }
            #expect(codes.allSatisfy { $0 == "AA" }, "\(errors)")
            #expect(try await HL7MessageRecord.query(on: app.db).filter(\.$status == "accepted").filter(\.$messageType ~~ ["ORU^R01", "ORM^O01"]).count() == 100)
            await service.stop()
        }
    }

    @Test func anOversizedMessageIsRefusedAndTheConnectionStaysUsable() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let (service, port) = try await Self.start(app, maximumSize: 4096)
            try await MLLPClient.withConnection(host: "127.0.0.1", port: port) { session in
                let big = "MSH|^~\\&|LIS|ARION|ROUNDS|ARION|20261121||ORU^R01|BIG1|P|2.5\rOBX|1|TX|X||" + String(repeating: "长", count: 5000)
                let (code, ack) = try Self.ackCode(try await session.send(Array(big.utf8)))
                #expect(code == "AR")
                #expect(ack["ERR-8"]?.contains("larger than the 4096-byte limit") == true)
                let (next, _) = try Self.ackCode(try await session.send(HL7Fixtures.bytes("adt_a01_utf8.hl7")))
                #expect(next == "AA")
            }
            let refused = try #require(try await HL7MessageRecord.query(on: app.db).filter(\.$status == "rejected").first())
            #expect(refused.size > 4096 && refused.error?.contains("4096") == true)
            await service.stop()
        }
    }

    @Test func aFrameCutOffByTheSenderIsKeptAsRejected() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let (service, port) = try await Self.start(app)
            let bytes = try HL7Fixtures.bytes("oru_r01_critical_k.hl7")
            try await MLLPClient.withConnection(host: "127.0.0.1", port: port) { session in
                try await session.write(raw: [0x0B] + bytes.prefix(120))  // no end block, then hang up
            }
            var stored: HL7MessageRecord?
            for _ in 0..<50 where stored == nil {
                stored = try await HL7MessageRecord.query(on: app.db).first()
                if stored == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let record = try #require(stored)
            #expect(record.status == "rejected" && record.error?.contains("closed before the end") == true)
            #expect(Array(record.raw) == Array(bytes.prefix(120)))
            // Nothing was applied.
            #expect(try await Observation.query(on: app.db).count() == 0)
            await service.stop()
        }
    }

    /// Random bytes and mutated messages inside MLLP frames, over one connection: every frame
    /// gets an ACK, the process stays up, and a valid message afterwards is still accepted.
    @Test func fuzzedFramesAreAllAnswered() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let (service, port) = try await Self.start(app)
            var random = SeededGenerator(seed: 77)
            let sample = try HL7Fixtures.bytes("oru_r01_critical_k.hl7")
            try await MLLPClient.withConnection(host: "127.0.0.1", port: port) { session in
                for round in 0..<60 {
                    var bytes: [UInt8]
                    if round % 2 == 0 {
                        // No start or end block inside, or the frame would be split differently.
                        bytes = (0..<Int.random(in: 1...300, using: &random)).map { _ in UInt8.random(in: 0x1D...0xFF, using: &random) }
                    } else {
                        bytes = sample
                        for _ in 0..<4 { bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0x20...0x7E, using: &random) }
                    }
                    let (code, _) = try Self.ackCode(try await session.send(bytes))
                    #expect(["AA", "AE", "AR"].contains(code ?? ""), "round \(round)")
                }
                let (code, _) = try Self.ackCode(try await session.send(HL7Fixtures.bytes("adt_a01_utf8.hl7")))
                #expect(code == "AA")
            }
            await service.stop()
        }
    }

    @Test func idleConnectionsAreClosed() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let (service, port) = try await Self.start(app, idle: 1)
            let closed = try await MLLPClient.withConnection(host: "127.0.0.1", port: port, timeout: .seconds(10)) { session in
                try await session.next() == nil  // blocks until the server hangs up
            }
            #expect(closed)
            await service.stop()
        }
    }

    @Test func mllpOverTLS() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let dir = HL7Fixtures.directory.deletingLastPathComponent().appendingPathComponent("tls")
            let cert = try NIOSSLCertificate.fromPEMFile(dir.appendingPathComponent("test-cert.pem").path)
            let key = try NIOSSLPrivateKey(file: dir.appendingPathComponent("test-key.pem").path, format: .pem)
            let server = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: cert.map { .certificate($0) },
                                                                                    privateKey: .privateKey(key)))
            let (service, port) = try await Self.start(app, tls: server)
            var trusting = TLSConfiguration.makeClientConfiguration()
            trusting.trustRoots = .certificates(cert)
            let code = try await MLLPClient.withConnection(host: "127.0.0.1", port: port, tls: try NIOSSLContext(configuration: trusting),
                                                           serverHostname: "localhost") { session in
                try Self.ackCode(try await session.send(HL7Fixtures.bytes("adt_a01_utf8.hl7"))).0
            }
            #expect(code == "AA")
            // A client that does not trust the certificate gets nothing through.
            let untrusting = try NIOSSLContext(configuration: .makeClientConfiguration())
            await #expect(throws: (any Error).self) {
                try await MLLPClient.withConnection(host: "127.0.0.1", port: port, tls: untrusting, serverHostname: "localhost") { session in
                    _ = try await session.send(HL7Fixtures.bytes("orm_o01_change.hl7"))
                }
            }
            #expect(try await HL7MessageRecord.query(on: app.db).count() == 1)
            await service.stop()
        }
    }
}

/// A scripted MLLP peer for the outbound tests: answers each message with the next code.
final class FakeHL7Peer: @unchecked Sendable {
    private let lock = NSLock()
    private var codes: [String]
    private(set) var received: [String] = []
    let listener: MLLPListener
    private var serving: Task<Void, Never>?

    private init(listener: MLLPListener, codes: [String]) {
        self.listener = listener
        self.codes = codes
    }

    var port: Int { listener.port }
    var count: Int { lock.withLock { received.count } }

    static func start(answering codes: [String]) async throws -> FakeHL7Peer {
        let box = Box()
        let listener = try await MLLPListener.bind(.init(host: "127.0.0.1", port: 0)) { frame, _ in
            guard case .message(let bytes) = frame, let peer = box.peer else { return .nothing }
            return .reply(peer.answer(bytes))
        }
        let peer = FakeHL7Peer(listener: listener, codes: codes)
        box.peer = peer
        peer.serving = Task { try? await listener.run() }
        return peer
    }

    private func answer(_ bytes: [UInt8]) -> [UInt8] {
        let message = try? HL7Message.parse(bytes: bytes).0
        let code: String = lock.withLock {
            received.append(message?.controlID ?? "?")
            return codes.count > 1 ? codes.removeFirst() : (codes.first ?? "AA")
        }
        let ack = HL7Builder.ack(for: message, code: HL7AckCode(rawValue: code) ?? .accept, text: code == "AA" ? nil : "scripted \(code)",
                                 controlID: "P\(received.count)", at: Date())
        return Array(ack.encode().utf8)
    }

    func stop() async {
        await listener.close()
        _ = await serving?.value
    }

    private final class Box: @unchecked Sendable { var peer: FakeHL7Peer? }
}

@Suite struct OutboundQueueTests {
    static func message(_ id: String) throws -> HL7Message {
        var m = try HL7Message.parse(bytes: HL7Fixtures.bytes("oru_r01_critical_k.hl7")).0
        try m.set("MSH-10", id)
        return m
    }

    @Test(arguments: Backend.all)
    func retriesWithBackOffUntilAcknowledged(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let peer = try await FakeHL7Peer.start(answering: ["AE", "AA"])
            let queue = app.rounds.outbound
            let row = try await queue.enqueue(Self.message("OUT1"), host: "127.0.0.1", port: peer.port, on: app.db)
            #expect(try await queue.runOnce(on: app.db) == 1)
            var stored = try #require(try await OutboundMessage.find(row.id, on: app.db))
            #expect(stored.status == "pending" && stored.attempts == 1 && stored.ackCode == "AE")
            #expect(stored.lastError?.contains("scripted AE") == true)
            #expect(stored.nextAttemptAt == clock.now().addingTimeInterval(2))
            // Not due yet: nothing is sent.
            #expect(try await queue.runOnce(on: app.db) == 0)
            clock.advance(by: 2)
            #expect(try await queue.runOnce(on: app.db) == 1)
            stored = try #require(try await OutboundMessage.find(row.id, on: app.db))
            #expect(stored.status == "sent" && stored.attempts == 2 && stored.ackCode == "AA" && stored.sentAt == clock.now())
            #expect(peer.received == ["OUT1", "OUT1"])
            #expect(try await queue.runOnce(on: app.db) == 0)
            await peer.stop()
        }
    }

    @Test(arguments: Backend.all)
    func aRejectionOrTooManyFailuresMarksTheMessageDead(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let peer = try await FakeHL7Peer.start(answering: ["AR"])
            var queue = app.rounds.outbound
            let rejected = try await queue.enqueue(Self.message("OUT2"), host: "127.0.0.1", port: peer.port, on: app.db)
            try await queue.runOnce(on: app.db)
            #expect(try await OutboundMessage.find(rejected.id, on: app.db)?.status == "dead")
            await peer.stop()

            // Nobody listening: retried with growing pauses, dead after the last attempt.
            queue.maximumAttempts = 3
            let unreachable = try await queue.enqueue(Self.message("OUT3"), host: "127.0.0.1", port: peer.port, on: app.db)
            var pauses: [TimeInterval] = []
            for _ in 0..<3 {
                clock.advance(by: 301)
                #expect(try await queue.runOnce(on: app.db) == 1)
                let row = try #require(try await OutboundMessage.find(unreachable.id, on: app.db))
                pauses.append(row.nextAttemptAt.timeIntervalSince(clock.now()))
            }
            let dead = try #require(try await OutboundMessage.find(unreachable.id, on: app.db))
            #expect(dead.status == "dead" && dead.attempts == 3 && dead.lastError != nil)
            #expect(Array(pauses.prefix(2)) == [2, 4])
            clock.advance(by: 3600)
            #expect(try await queue.runOnce(on: app.db) == 0)
        }
    }

    @Test(arguments: Backend.all)
    func twoWorkersNeverClaimTheSameMessage(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let queue = app.rounds.outbound
            for n in 0..<30 { try await queue.enqueue(Self.message("C\(n)"), host: "127.0.0.1", port: 9, on: app.db) }
            let claims = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<3 { group.addTask { try await queue.claimDue(limit: 30, on: app.db).compactMap(\.id) } }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(claims.count == 30)
            #expect(Set(claims).count == 30)
        }
    }

    /// A message queued before a crash (and one claimed by a worker that died mid-send) is sent
    /// by the next process.
    @Test(arguments: Backend.all)
    func queuedMessagesSurviveARestart(_ backend: Backend) async throws {
        let (location, dispose) = try await TestDatabases.shared.make(backend)
        let clock = TestClock()
        let peer = try await FakeHL7Peer.start(answering: ["AA"])

        let before = try await Application.make(.testing)
        before.logger.logLevel = .warning
        try await configure(before, TestApp.configuration(location, clock: clock))
        try await before.rounds.outbound.enqueue(Self.message("R1"), host: "127.0.0.1", port: peer.port, on: before.db)
        clock.advance(by: 1)
        try await before.rounds.outbound.enqueue(Self.message("R2"), host: "127.0.0.1", port: peer.port, on: before.db)
        // R1 was claimed by a worker that then died.
        let claimed = try await before.rounds.outbound.claimDue(limit: 1, on: before.db)
        #expect(claimed.map(\.controlID) == ["R1"])
        try await before.asyncShutdown()

        let after = try await Application.make(.testing)
        after.logger.logLevel = .warning
        do {
            try await configure(after, TestApp.configuration(location, clock: clock))
            try await after.rounds.outbound.runOnce(on: after.db)
            #expect(peer.received == ["R2"])  // R1's claim still holds
            clock.advance(by: 61)
            try await after.rounds.outbound.runOnce(on: after.db)
            #expect(peer.received.sorted() == ["R1", "R2"])
            #expect(try await OutboundMessage.query(on: after.db).filter(\.$status == "sent").count() == 2)
        } catch {
            try? await after.asyncShutdown()
            throw error
        }
        try await after.asyncShutdown()
        await peer.stop()
        await dispose()
    }
}
