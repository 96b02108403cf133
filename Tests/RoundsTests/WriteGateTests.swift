import FluentKit
import NIOCore
import NIOEmbedded
import Foundation
import RoundsCore
@testable import RoundsHL7
import RoundsWeb
@testable import RoundsIntegration
@testable import RoundsDirectory
@testable import RoundsStore
import Testing
import Vapor

/// SQLite's write gate: one per database, fair to routine writers, released on every path.
@Suite struct WriteGateTests {
    @Test func eachSQLiteDatabaseHasAGateOfItsOwn() async throws {
        try await TestApp.with(.sqlite) { first, _ in
            try await TestApp.with(.sqlite) { second, _ in
                let a = try #require(SQLiteWriteGate.of(first.db)), b = try #require(SQLiteWriteGate.of(second.db))
                #expect(a !== b)
                // Every handle of one database, transactions included, finds the same gate.
                #expect(SQLiteWriteGate.of(first.db) === a)
                try await first.db.transaction { tx in #expect(SQLiteWriteGate.of(tx) === a) }
            }
        }
    }

    @Test(arguments: Backend.all.filter { $0 == .postgres })
    func postgreSQLHasNoGate(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in #expect(SQLiteWriteGate.of(app.db) == nil) }
    }

    @Test func routineWritersGetTurnsWhileCriticalValuesKeepArriving() async throws {
        let gate = SQLiteWriteGate(urgentBurst: 3)
        let order = OutboxDispatchTests.Recorder()
        try await gate.acquire(writer: "first")
        let routine = Task { try await gate.acquire(writer: "routine"); await order.add("routine"); await gate.release() }
        while await gate.waitingCount < 1 { await Task.yield() }
        // Ten critical writers queue behind; each one that finishes queues the next.
        let urgent = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<10 {
                    group.addTask { try await gate.acquire(urgent: true, writer: "u\(n)"); await order.add("urgent"); await gate.release() }
                }
                try await group.waitForAll()
            }
        }
        while await gate.waitingCount < 11 { await Task.yield() }
        await gate.release()
        try await routine.value
        try await urgent.value
        let items = await order.items
        // Three critical values, then the routine writer; the rest after it.
        #expect(items.firstIndex(of: "routine") == 3, "\(items)")
        #expect(items.count == 11)
        #expect(await gate.waitingCount == 0)
        #expect(await gate.currentHolder == nil)
    }

    @Test func aCancelledWaiterLeavesTheQueueAndTheGateStaysUsable() async throws {
        let gate = SQLiteWriteGate()
        try await gate.acquire(writer: "holder")
        let waiter = Task { try await gate.acquire(writer: "cancelled") }
        while await gate.waitingCount < 1 { await Task.yield() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(await gate.waitingCount == 0)
        await gate.release()
        // Free again: the next writer gets it at once.
        try await gate.acquire(writer: "next")
        await gate.release()
        #expect(await gate.currentHolder == nil)
    }

    @Test func serialisedReleasesWhenTheBodyThrows() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            struct Boom: Error {}
            await #expect(throws: Boom.self) {
                try await SQLiteWriteGate.serialised(app.db, writer: "failing") { throw Boom() }
            }
            let gate = try #require(SQLiteWriteGate.of(app.db))
            #expect(await gate.currentHolder == nil)
            #expect(try await SQLiteWriteGate.serialised(app.db, writer: "after") { 42 } == 42)
        }
    }

    @Test func aMissingAcknowledgementNamesTheMessageAndTheWait() {
        let error = MLLPClientError.noAcknowledgement(controlID: "MSG00004", timeoutSeconds: 60)
        #expect(error.description.contains("MSG00004") && error.description.contains("60 s"))
        let message = Array("MSH|^~\\&|LIS|ARION|ROUNDS|ARION|20261121153010||ORU^R01|MSG00004|P|2.5.1\rPID|1".utf8)
        #expect(MLLPClient.Session.controlID(message) == "MSG00004")
        #expect(MLLPClient.Session.controlID(Array("garbage".utf8)) == nil)
    }
}

let latencyTestsEnabled = ProcessInfo.processInfo.environment["ROUNDS_LATENCY_TESTS"] == "1"

/// Tests that assert a time. They would measure the rest of the suite's load, not Rounds, if
/// they ran beside it, so `scripts/test` runs them on their own afterwards
/// (`ROUNDS_LATENCY_TESTS=1 swift test --filter LatencyTests`).
@Suite(.serialized, .enabled(if: latencyTestsEnabled, "runs alone: ROUNDS_LATENCY_TESTS=1 swift test --filter LatencyTests"))
struct LatencyTests {
    /// One hospital's database floods with critical and routine results over eight connections;
    /// a second database in the same process still acknowledges its one admission at once.
    /// (With one gate for the whole process, critical values of the first went before the
    /// second's routine message for as long as the flood lasted.)
    @Test func aFloodOnOneDatabaseDoesNotHoldUpAnother() async throws {
        try await TestApp.with(.sqlite) { busy, _ in
            try await TestApp.with(.sqlite) { quiet, _ in
                let (busyService, busyPort) = try await MLLPEngineTests.start(busy)
                let (quietService, quietPort) = try await MLLPEngineTests.start(quiet)
                let floodEnds = ContinuousClock.now + .seconds(6)
                let flood = Task {
                    try await withThrowingTaskGroup(of: Int.self) { group in
                        for connection in 0..<8 {
                            group.addTask {
                                try await MLLPClient.withConnection(host: "127.0.0.1", port: busyPort) { session in
                                    var sent = 0
                                    while ContinuousClock.now < floodEnds, sent < 2_000 {
                                        // Six of every eight connections send critical values.
                                        let name = connection < 6 ? "oru_r01_critical_k.hl7" : "orm_o01_change.hl7"
                                        let message = try PatientGroupTests.fixture(name, controlID: "F\(connection)-\(sent)")
                                        _ = try await session.send(Array(message.encode().utf8))
                                        sent += 1
                                    }
                                    return sent
                                }
                            }
                        }
                        return try await group.reduce(0, +)
                    }
                }
                // Let the flood build up its queue, then send the one message.
                try await Task.sleep(for: .seconds(1))
                let admission = try PatientGroupTests.fixture("adt_a01_utf8.hl7", controlID: "QUIET-1")
                let started = ContinuousClock.now
                let ack = try await MLLPClient.withConnection(host: "127.0.0.1", port: quietPort) { session in
                    try await session.send(Array(admission.encode().utf8))
                }
                let waited = ContinuousClock.now - started
                let floodStillRunning = ContinuousClock.now < floodEnds
                #expect(try HL7Message.parse(bytes: ack).0["MSA-1"] == "AA")
                #expect(waited < .seconds(2), "the admission on the quiet database waited \(waited) for its ACK")
                let flooded = try await flood.value
                #expect(floodStillRunning, "the flood ended before the admission was answered; the test proved nothing")
                #expect(flooded > 50, "only \(flooded) flood messages were sent")
                await busyService.stop()
                await quietService.stop()
            }
        }
    }

}

/// The MLLP frame reader searches each byte once, however the frame is cut into reads.
@Suite struct MLLPFramingTests {
    static func frames(_ chunks: [[UInt8]], maximumSize: Int = 8 * 1024 * 1024) throws -> [MLLPFrame] {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(MLLPFrameDecoder(maximumSize: maximumSize)))
        for chunk in chunks { try channel.writeInbound(ByteBuffer(bytes: chunk)) }
        var out: [MLLPFrame] = []
        while let frame = try channel.readInbound(as: MLLPFrame.self) { out.append(frame) }
        _ = try channel.finish()
        return out
    }

    @Test func aFiveMebibyteFrameInSmallReadsIsReadOnce() throws {
        let payload = [UInt8](repeating: UInt8(ascii: "A"), count: 5 * 1024 * 1024)
        let framed = MLLP.frame(payload) + MLLP.frame(Array("MSH|next".utf8))
        // 1 KiB reads: with a search from the start on every read this was ~13 billion byte looks.
        let chunks = stride(from: 0, to: framed.count, by: 1024).map { Array(framed[$0..<min($0 + 1024, framed.count)]) }
        let frames = try Self.frames(chunks)
        #expect(frames.count == 2)
        #expect(frames.first == .message(payload))
        #expect(frames.last == .message(Array("MSH|next".utf8)))
    }

    @Test func theEndBlockMayArriveAloneOrSplitFromItsCarriageReturn() throws {
        let message = Array("MSH|^~\\&|A".utf8)
        let frames = try Self.frames([[0x0B], Array(message.prefix(4)), Array(message.dropFirst(4)), [0x1C], [0x0D, 0x0B] + message + [0x1C, 0x0D]])
        #expect(frames == [.message(message), .message(message)])
        // Over the limit in pieces: refused whole, and the next frame still read.
        let big = [UInt8](repeating: 0x41, count: 3000)
        let refused = try Self.frames([[0x0B] + big.prefix(1000), Array(big.dropFirst(1000)), [0x1C, 0x0D]] + [MLLP.frame(message)], maximumSize: 2048)
        #expect(refused.count == 2 && refused.last == .message(message))
        if case .tooLarge = refused.first {} else { Issue.record("expected tooLarge, got \(String(describing: refused.first))") }
    }
}
