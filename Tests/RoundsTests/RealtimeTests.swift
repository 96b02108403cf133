import FluentKit
import Foundation
import NIOCore
import NIOPosix
import RoundsCore
import RoundsHL7
@testable import RoundsChat
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import WebSocketKit

/// What one WebSocket client received, for the assertions.
actor Inbox {
    private(set) var events: [ChatFeed.Event] = []

    func add(_ text: String) {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        if let event = try? decoder.decode(ChatFeed.Event.self, from: Data(text.utf8)) { events.append(event) }
    }

    /// Waits (up to 10 s) for an event that matches.
    func first(_ match: @Sendable (ChatFeed.Event) -> Bool) async throws -> ChatFeed.Event {
        for _ in 0..<200 {
            if let found = events.first(where: match) { return found }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError("no matching event; got \(events.map(\.type))")
    }
}

/// Realtime delivery over real sockets: cards, receipts and typing reach the open clients of
/// the group's members, and with PostgreSQL a second process's writes reach them too.
@Suite struct RealtimeTests {
    static func serve(_ app: Application) async throws -> Int {
        try await app.asyncBoot()
        try await app.server.start(address: .hostname("127.0.0.1", port: 0))
        return try #require(app.http.server.shared.localAddress?.port)
    }

    /// Opens a WebSocket as a signed-in member; events go to the inbox.
    static func connect(port: Int, as client: Client, inbox: Inbox) async throws -> WebSocket {
        let cookie = client.cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        let box = SocketBox()
        try await WebSocket.connect(to: "ws://127.0.0.1:\(port)/api/v1/ws", headers: ["Cookie": cookie],
                                    on: MultiThreadedEventLoopGroup.singleton) { ws in
            ws.onText { _, text in await inbox.add(text) }
            box.socket = ws
        }
        for _ in 0..<100 where box.socket == nil { try await Task.sleep(for: .milliseconds(20)) }
        return try #require(box.socket)
    }

    final class SocketBox: @unchecked Sendable { var socket: WebSocket? }

    static func waitForClients(_ app: Application, _ count: Int) async throws {
        for _ in 0..<100 {
            if await app.chatFeed.connectedClients >= count { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSetupError("clients did not connect")
    }

    @Test(arguments: Backend.all)
    func cardsReceiptsAndTypingReachTheCareTeamLive(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let port = try await Self.serve(app)
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            let group = try await PatientGroupTests.group(app)

            let nurse = Client(app), doctor = Client(app), stranger = Client(app)
            try await nurse.login("wang.fang")
            try await doctor.login("li.ming")
            try await stranger.login("zhou.ting")
            let nurseInbox = Inbox(), doctorInbox = Inbox(), strangerInbox = Inbox()
            let nurseSocket = try await Self.connect(port: port, as: nurse, inbox: nurseInbox)
            let doctorSocket = try await Self.connect(port: port, as: doctor, inbox: doctorInbox)
            let strangerSocket = try await Self.connect(port: port, as: stranger, inbox: strangerInbox)
            try await Self.waitForClients(app, 3)

            // The HIS changes an order: the card arrives on the nurse's open client.
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("orm_o01_change.hl7"))
            let card = try await nurseInbox.first { $0.type == "message" && $0.message?.kind == "card" }
            #expect(card.groupId == group.id && card.message?.card?.title == "医嘱变更 · 顺铂")

            // The doctor reads it: the nurse sees the receipt.
            let read = try await doctor.json(.POST, "/api/v1/groups/\(group.id!)/read", ReadBody(upTo: card.message!.id))
            #expect(read.status == .ok)
            let receipt = try await nurseInbox.first { $0.type == "receipt" && $0.receipt?.messageId == card.message?.id }
            #expect(receipt.receipt?.name == "李明")

            // The doctor types; the nurse sees it (not the doctor himself).
            try await doctorSocket.send(#"{"type":"typing","groupId":"\#(group.id!)"}"#)
            let typing = try await nurseInbox.first { $0.type == "typing" }
            #expect(typing.name == "李明" && typing.groupId == group.id)

            // The nurse writes; the doctor gets it once.
            _ = try await nurse.json(.POST, "/api/v1/groups/\(group.id!)/messages", PostMessageBody(text: "收到", replyTo: nil))
            let text = try await doctorInbox.first { $0.message?.text == "收到" }
            #expect(text.message?.senderName == "王芳")
            try await Task.sleep(for: .milliseconds(1300))  // a tick of the feed passes
            #expect(await doctorInbox.events.filter { $0.message?.text == "收到" }.count == 1)
            #expect(await doctorInbox.events.contains { $0.type == "typing" } == false)

            // Someone outside the care team hears nothing of this group.
            #expect(await strangerInbox.events.isEmpty)

            // No session, no socket.
            await #expect(throws: (any Error).self) {
                try await WebSocket.connect(to: "ws://127.0.0.1:\(port)/api/v1/ws", on: MultiThreadedEventLoopGroup.singleton) { _ in }
            }
            for socket in [nurseSocket, doctorSocket, strangerSocket] { try await socket.close() }
            await app.server.shutdown()
        }
    }

    /// Two `rounds` processes sharing PostgreSQL: a message written through one reaches a
    /// client connected to the other (NOTIFY/LISTEN).
    @Test func aSecondProcessDeliversToTheFirstOnesClients() async throws {
        guard Backend.all.contains(.postgres) else { return }
        let (location, dispose) = try await TestDatabases.shared.make(.postgres)
        let clock = TestClock()
        var apps: [Application] = []
        do {
            for _ in 0..<2 {
                let app = try await Application.make(.testing)
                app.logger.logLevel = .warning
                apps.append(app)
                var configuration = TestApp.configuration(location, clock: clock)
                // No regular looks: only NOTIFY from the other process can wake the feed.
                configuration.feedSafetyTick = .seconds(3600)
                try await configure(app, configuration)
            }
            let (first, second) = (apps[0], apps[1])
            let firstPort = try await Self.serve(first)
            _ = try await Self.serve(second)
            try await PatientGroupTests.deliver(first, PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            let group = try await PatientGroupTests.group(first)

            let nurse = Client(first)
            try await nurse.login("wang.fang")
            let inbox = Inbox()
            let socket = try await Self.connect(port: firstPort, as: nurse, inbox: inbox)
            try await Self.waitForClients(first, 1)

            // The doctor is on the other process.
            let doctor = Client(second)
            try await doctor.login("li.ming")
            let posted = try await doctor.json(.POST, "/api/v1/groups/\(group.id!)/messages", PostMessageBody(text: "请复查血钾", replyTo: nil))
            #expect(posted.status == .created)
            let event = try await inbox.first { $0.message?.text == "请复查血钾" }
            #expect(event.message?.senderName == "李明")
            try await socket.close()
        } catch {
            for app in apps { await app.server.shutdown(); try? await app.asyncShutdown() }
            await dispose()
            throw error
        }
        for app in apps { await app.server.shutdown(); try await app.asyncShutdown() }
        await dispose()
    }
}

/// The whole path of the patient-groups issue, as a hospital runs it: HL7 over MLLP into a
/// running server, the outbox worker opening the group and posting the card, a nurse's open
/// WebSocket receiving it, the doctor's read in the receipts, and discharge archiving.
@Suite struct PatientGroupEndToEndTests {
    static func eventually<T>(_ what: String, _ probe: () async throws -> T?) async throws -> T {
        for _ in 0..<200 {
            if let value = try await probe() { return value }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError("timed out waiting for \(what)")
    }

    @Test(arguments: Backend.all)
    func admissionOverMLLPToCardOnTheNursesScreen(_ backend: Backend) async throws {
        try await TestApp.serving(backend) { app, port, mllp in
            func send(_ name: String, controlID: String? = nil, _ edits: [String: String] = [:]) async throws {
                try await TestApp.sendOverMLLP(name, port: mllp, controlID: controlID, edits)
            }

            try await send("adt_a01_utf8.hl7")
            let group = try await Self.eventually("the patient group") {
                try await ChatGroup.query(on: app.db).filter(\.$name == "12床 · 王建国 · MRN10001").first()
            }
            #expect(try await PatientGroupTests.memberNames(app, group) == ["li.ming", "zhang.li", "wang.fang", "liu.yang"])

            let nurse = Client(app), doctor = Client(app)
            try await nurse.login("wang.fang")
            try await doctor.login("li.ming")
            let inbox = Inbox()
            let socket = try await RealtimeTests.connect(port: port, as: nurse, inbox: inbox)
            try await RealtimeTests.waitForClients(app, 1)

            try await send("orm_o01_change.hl7")
            let card = try await inbox.first { $0.type == "message" && $0.message?.kind == "card" }
            #expect(card.message?.card?.title == "医嘱变更 · 顺铂")

            _ = try await doctor.json(.POST, "/api/v1/groups/\(group.id!)/read", ReadBody(upTo: card.message!.id))
            let receipts = try await nurse.get("/api/v1/messages/\(card.message!.id)/receipts").decode([ReceiptDTOChat].self)
            #expect(receipts.map(\.name) == ["李明"])

            // The HIS discharges him.
            try await send("adt_a01_utf8.hl7", controlID: "A03-1", ["MSH-9-2": "A03", "EVN-1": "A03"])
            let archived = try await Self.eventually("the archive") {
                try await ChatGroup.find(group.id, on: app.db).flatMap { $0.isArchived ? $0 : nil }
            }
            #expect(archived.archivedAt != nil)
            try await socket.close()
        }
    }
}
