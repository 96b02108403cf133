import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
import RoundsStore
@testable import RoundsTables
@testable import RoundsWeb
import Testing
import Vapor

/// Comments on records and @mentions that notify: only people who may read the record are told
/// (the others named back to the writer), a viewer cannot comment, nobody comments on a record
/// outside their rows, and opening the record reads the notice.
@Suite struct TableCommentTests {
    @Test(arguments: Backend.all)
    func mentionsNotifyOnlyThoseWhoMayReadTheRecord(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let s = try await TableRulesTests.setup(app)
            let t = s.table.id!
            // 李明 may read his record; 王芳 (row rule: her own records) may not, so she is not told.
            let result = try await tables.addComment(table: t, record: s.mine.id, text: "＠李明 @王芳 请复核体重，明早复查", context: s.owner, on: app.db)
            #expect(result.notified == ["李明"] && result.notNotified == ["王芳"])
            #expect(result.comment.mentions == [s.doctor.principal.id] && result.comment.authorName == "张丽")
            #expect(try await tables.unreadMentions(context: s.doctor, on: app.db) == 1)
            #expect(try await tables.unreadMentions(context: s.nurse, on: app.db) == 0)
            #expect(try await tables.mentions(context: s.nurse, on: app.db).isEmpty)
            let notice = try #require(try await tables.mentions(context: s.doctor, on: app.db).first)
            #expect(notice.recordId == s.mine.id && notice.authorName == "张丽" && notice.text.contains("复查") && !notice.read)
            // The event for connectors and automations names only the one told.
            let events = try await OutboxEvent.query(on: app.db).filter(\.$kind == EventKind.tableRecordCommented.rawValue).all()
            let payload = try PendingEvent.decode(TableEvent.Commented.self, from: try #require(events.first).payload)
            #expect(events.count == 1 && payload.mentioned == [s.doctor.principal.id] && payload.recordID == s.mine.id)

            // He answers on his record; on hers he cannot even find it (audited).
            _ = try await tables.addComment(table: t, record: s.mine.id, text: "已复核，体重 72 kg", context: s.doctor, on: app.db)
            await #expect(throws: RoundsError.notFound("record", id: s.theirs.id)) {
                try await tables.addComment(table: t, record: s.theirs.id, text: "看看", context: s.doctor, on: app.db)
            }
            #expect(try await Demo.audit("table.comment.create", app).contains { $0.outcome == "denied" && $0.actorName == "李明" })
            await #expect(throws: RoundsError.notFound("record", id: s.theirs.id)) {
                try await tables.comments(table: t, record: s.theirs.id, context: s.doctor, on: app.db)
            }
            let thread = try await tables.comments(table: t, record: s.mine.id, context: s.doctor, on: app.db)
            #expect(thread.map(\.authorName) == ["张丽", "李明"])

            // A viewer reads but does not comment (403, audited); empty and overlong comments are refused.
            let breast = try await TablesTests.context("zhou.ting", app)
            try await tables.grant(base: s.base.id!, granteeKind: "staff", granteeID: breast.principal.id, role: .viewer, context: s.owner, on: app.db)
            await #expect(throws: RoundsError.self) {
                try await tables.addComment(table: t, record: s.mine.id, text: "我也看看", context: breast, on: app.db)
            }
            #expect(try await Demo.audit("table.comment.create", app).contains { $0.outcome == "denied" && $0.actorName == "周婷" })
            await #expect(throws: RoundsError.self) { try await tables.addComment(table: t, record: s.mine.id, text: "  ", context: s.owner, on: app.db) }
            let long = String(repeating: "长", count: TablesService.maximumComment + 1)
            await #expect(throws: RoundsError.self) { try await tables.addComment(table: t, record: s.mine.id, text: long, context: s.owner, on: app.db) }
            #expect(try await tables.comments(table: t, record: s.mine.id, context: s.owner, on: app.db).count == 2)

            // Through the pages: his notice, then the record with the thread; opening it reads the notice.
            let doctor = Client(app)
            try await doctor.login("li.ming")
            let home = try await doctor.page("/tables")
            #expect(home.body.string.contains("id=\"mentions-unread\">1<"))
            let list = try await doctor.page("/tables/mentions")
            #expect(list.status == .ok && list.body.string.contains("请复核体重") && list.body.string.contains("class=\"unread\""))
            let page = try await doctor.page("/tables/\(s.base.id!)/\(t)/records/\(s.mine.id)")
            #expect(page.status == .ok && page.body.string.contains("已复核，体重 72 kg") && page.body.string.contains("comment-form"))
            #expect(page.body.string.contains("修改记录"))
            #expect(try await tables.unreadMentions(context: s.doctor, on: app.db) == 0)
            #expect(try await doctor.page("/tables/\(s.base.id!)/\(t)/records/\(s.theirs.id)").status == .notFound)
            // He writes from the page; @张丽 (the owner) is told.
            let posted = try await doctor.form("/tables/\(s.base.id!)/\(t)/records/\(s.mine.id)/comments", ["text": "@张丽 已处理"])
            #expect(posted.status == .seeOther && posted.headers.first(name: .location)?.contains("notified=") == true)
            #expect(try await tables.unreadMentions(context: s.owner, on: app.db) == 1)
            // The API: a 422 problem for an empty comment, 201 with who was told.
            let empty = try await doctor.json(.POST, "/api/v1/bases/\(s.base.id!)/tables/\(t)/records/\(s.mine.id)/comments", CommentBody(text: ""))
            #expect(empty.status == .unprocessableEntity)
            let made = try await doctor.json(.POST, "/api/v1/bases/\(s.base.id!)/tables/\(t)/records/\(s.mine.id)/comments", CommentBody(text: "好的"))
            #expect(made.status == .created)
        }
    }
}
