import FluentKit
import Foundation
import NIOCore
import NIOPosix
import RoundsCore
@testable import RoundsTables
@testable import RoundsWeb
import Testing
import Vapor
import WebSocketKit

/// What one grid's socket received.
actor GridInbox {
    private(set) var events: [TableFeed.Event] = []

    func add(_ text: String) {
        if let event = try? JSONDecoder().decode(TableFeed.Event.self, from: Data(text.utf8)) { events.append(event) }
    }

    func first(_ match: @Sendable (TableFeed.Event) -> Bool) async throws -> TableFeed.Event {
        for _ in 0..<200 {
            if let found = events.first(where: match) { return found }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSetupError("no matching event; got \(events)")
    }
}

/// Other people's edits reach an open grid over the WebSocket, as that reader may see them:
/// their row rule and hidden fields apply to what is pushed, a record leaving their rows is
/// removed, and someone without a role on the base is refused the watch.
@Suite struct TableLiveTests {
    static func open(_ port: Int, _ username: String, _ app: Application, table: String, showing: [String]) async throws -> (WebSocket, GridInbox) {
        let client = Client(app)
        try await client.login(username)
        let cookie = client.cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        let inbox = GridInbox()
        let box = RealtimeTests.SocketBox()
        let hello = RealtimeTests.SocketBox()
        try await WebSocket.connect(to: "ws://127.0.0.1:\(port)/api/v1/ws", headers: ["Cookie": cookie],
                                    on: MultiThreadedEventLoopGroup.singleton) { ws in
            ws.onText { ws, text in
                if text.contains("\"hello\"") { hello.socket = ws }
                await inbox.add(text)
            }
            box.socket = ws
        }
        // Frames are sent once the server has said hello (before, they may be lost).
        for _ in 0..<200 where hello.socket == nil { try await Task.sleep(for: .milliseconds(20)) }
        let socket = try #require(box.socket)
        let ids = showing.map { "\"\($0)\"" }.joined(separator: ",")
        try await socket.send(#"{"type":"watch","tableId":"\#(table)","records":[\#(ids)]}"#)
        return (socket, inbox)
    }

    @Test(arguments: Backend.all)
    func editsReachOpenGridsAsEachReaderMaySeeThem(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let port = try await RealtimeTests.serve(app)
            let tables = app.rounds.tables
            let s = try await TableRulesTests.setup(app)
            let t = s.table.id!
            let (doctorSocket, doctor) = try await Self.open(port, "li.ming", app, table: t, showing: [s.mine.id])
            let (ownerSocket, owner) = try await Self.open(port, "zhang.li", app, table: t, showing: [s.mine.id, s.theirs.id])
            let (strangerSocket, stranger) = try await Self.open(port, "zhou.ting", app, table: t, showing: [])
            // Nobody on 乳腺 holds a role on this base: the watch is refused.
            let closed = try await stranger.first { $0.type == "closed" }
            #expect(closed.tableId == t)
            for _ in 0..<100 where await app.tableFeed.watching < 2 { try await Task.sleep(for: .milliseconds(20)) }

            // (The records just made may arrive first, as they are now: what follows looks for the edits.)
            // The owner changes the doctor's record: the remark reaches his grid, the hidden diagnosis does not.
            _ = try await tables.updateRecords(table: t, [RecordPatch(id: s.mine.id, version: s.mine.version,
                                                                      fields: ["备注": .text("复查 CT"), "诊断": .text("肺腺癌 IV 期")])],
                                               context: s.owner, on: app.db)
            let pushed = try await doctor.first { $0.type == "records" && $0.records?.first?.cells[s.fid("备注")]?.text == "复查 CT" }
            let record = try #require(pushed.records?.first)
            #expect(record.id == s.mine.id && record.version == s.mine.version + 1)
            #expect(record.cells[s.fid("诊断")] == nil && record.cells[s.fid("诊断字数")] == nil)
            #expect(record.cells[s.fid("主管医生")]?.text == "李明" && record.cells[s.fid("主管医生")]?.raw == s.doctor.principal.id)
            #expect(pushed.by == ["张丽"])
            // The owner's grid has the diagnosis and the formula over it.
            let ownerPush = try await owner.first { $0.records?.first?.cells[s.fid("备注")]?.text == "复查 CT" }
            #expect(ownerPush.records?.first?.cells[s.fid("诊断")]?.text == "肺腺癌 IV 期")
            #expect(ownerPush.records?.first?.cells[s.fid("诊断字数")]?.text == "8")

            // A change to a record outside his rows is not pushed to him, not even its id.
            _ = try await tables.updateRecords(table: t, [RecordPatch(id: s.theirs.id, version: s.theirs.version, fields: ["备注": .text("夜班交接")])],
                                               context: s.owner, on: app.db)
            _ = try await owner.first { $0.records?.first?.cells[s.fid("备注")]?.text == "夜班交接" }
            try await Task.sleep(for: .milliseconds(1300))  // a tick of the feed passes
            #expect(await doctor.events.contains { e in e.records?.contains { $0.id == s.theirs.id } == true || e.hidden?.contains(s.theirs.id) == true } == false)

            // The record is handed to the nurse: it leaves his grid.
            _ = try await tables.updateRecords(table: t, [RecordPatch(id: s.mine.id, version: s.mine.version + 1,
                                                                      fields: ["主管医生": .text(s.nurse.principal.id)])],
                                               context: s.owner, on: app.db)
            let gone = try await doctor.first { $0.hidden == [s.mine.id] }
            #expect(gone.records?.isEmpty == true)
            // Each push of records was sent once per change.
            #expect(await doctor.events.filter { $0.records?.first?.cells[s.fid("备注")]?.text == "复查 CT" }.count == 1)

            // A deleted record arrives marked deleted (the grid removes it).
            try await tables.deleteRecords(table: t, ids: [s.theirs.id], context: s.owner, on: app.db)
            let deleted = try await owner.first { $0.records?.first { $0.id == s.theirs.id }?.deleted == true }
            #expect(deleted.type == "records")
            // New records are counted for the grids that may see them (a reload shows them), not sent.
            _ = try await tables.createRecords(table: t, [["名称": .text("新病人"), "主管医生": .text(s.doctor.principal.id)],
                                                           ["名称": .text("她的新病人"), "主管医生": .text(s.nurse.principal.id)]],
                                               context: s.owner, on: app.db)
            let added = try await doctor.first { $0.type == "added" }
            #expect(added.added == 1 && added.records == nil)
            _ = try await owner.first { $0.type == "added" && $0.added == 2 }
            for socket in [doctorSocket, ownerSocket, strangerSocket] { try await socket.close() }
            await app.server.shutdown()
        }
    }
}
