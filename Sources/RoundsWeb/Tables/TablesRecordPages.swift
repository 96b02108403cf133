import Foundation
import RoundsCore
import RoundsTables
import Vapor

/// A record's own page (its cells in words, every change, the comments and a box to write one,
/// "@姓名" notifying) and my notices of comments that mention me.
struct TablesRecordPages {
    func register(_ routes: any RoutesBuilder) {
        routes.get("tables", "mentions", use: mentions)
        routes.get("tables", ":baseId", ":tableId", "records", ":recordId", use: record)
        routes.post("tables", ":baseId", ":tableId", "records", ":recordId", "comments", use: comment)
    }

    struct RecordData: Encodable {
        struct Cell: Encodable { var name: String; var text: String }
        struct Change: Encodable { var time: String; var who: String; var what: String }
        struct CommentView: Encodable { var id: String; var author: String; var time: String; var text: String; var mentions: String }
        var baseId: String
        var baseName: String
        var tableId: String
        var tableName: String
        var recordId: String
        var number: Int
        var title: String
        var deleted: Bool
        var cells: [Cell]
        var history: [Change]
        var comments: [CommentView]
        var canComment: Bool
        var members: [String]
        var notified: String
        var missed: String
    }

    @Sendable func record(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId"), tableID = try req.parameters.require("tableId")
        let recordID = try req.parameters.require("recordId")
        let tables = req.rounds.tables, context = try req.context()
        try await tables.requireTable(tableID, inBase: baseID, on: req.db)
        let t = req.rounds.catalogue.table(req.locale)
        let summary = try await tables.base(baseID, context: context, on: req.db)
        let (table, fields) = try await tables.tableDetail(tableID, context: context, on: req.db)
        guard let live = try await tables.liveRecords(table: tableID, ids: [recordID], context: context, on: req.db).first else {
            throw RoundsError.notFound("record", id: recordID)
        }
        let names = Dictionary(fields.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
        let history = try await tables.history(table: tableID, record: recordID, context: context, on: req.db)
        let comments = try await tables.comments(table: tableID, record: recordID, context: context, on: req.db)
        // Opening the record reads my notices of it.
        try await tables.markMentionsRead(record: recordID, context: context, on: req.db)
        let members = try await tables.commentable(base: baseID, context: context, on: req.db)
        let people = Dictionary(members.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let primary = fields.first { $0.isPrimary }
        let data = RecordData(
            baseId: baseID, baseName: summary.base.name, tableId: tableID, tableName: table.name, recordId: recordID, number: live.number,
            title: primary.flatMap { live.cells[$0.id!]?.text }.flatMap { $0.isEmpty ? nil : $0 } ?? "#\(live.number)",
            deleted: live.deleted,
            cells: fields.compactMap { f in live.cells[f.id!].map { RecordData.Cell(name: f.name, text: $0.text.isEmpty ? "—" : $0.text) } },
            history: history.reversed().map { h in
                let what: String
                switch h.action {
                case "set":
                    let old = h.old.map { TablesService.editText($0, .text) } ?? ""
                    let new = h.new.map { TablesService.editText($0, .text) } ?? ""
                    what = "\(h.fieldName ?? names[h.fieldID ?? ""] ?? "")：\(old.isEmpty ? "—" : old) → \(new.isEmpty ? "—" : new)"
                default: what = t["tables_history_\(h.action)"] ?? h.action
                }
                return RecordData.Change(time: Formatting.dateTime(h.at), who: h.actorName, what: what)
            },
            comments: comments.map { c in
                RecordData.CommentView(id: c.id, author: c.authorName, time: Formatting.dateTime(c.createdAt), text: c.text,
                                       mentions: c.mentions.compactMap { people[$0] }.joined(separator: "、"))
            },
            canComment: summary.role.canComment && !live.deleted,
            members: members.filter { $0.id != context.principal.id }.map(\.name),
            notified: req.query[String.self, at: "notified"] ?? "", missed: req.query[String.self, at: "missed"] ?? "")
        return try await req.page("tables_record", title: "tables_record_title", data: data, error: req.query[String.self, at: "error"])
    }

    @Sendable func comment(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId"), tableID = try req.parameters.require("tableId")
        let recordID = try req.parameters.require("recordId")
        let back = "/tables/\(baseID)/\(tableID)/records/\(recordID)"
        let text = (try? req.content.get(String.self, at: "text")) ?? ""
        do {
            try await req.rounds.tables.requireTable(tableID, inBase: baseID, on: req.db)
            let result = try await req.rounds.tables.addComment(table: tableID, record: recordID, text: text, context: req.context(), on: req.db)
            var query = URLComponents()
            query.queryItems = [URLQueryItem(name: "done", value: "1"),
                                URLQueryItem(name: "notified", value: result.notified.joined(separator: "、")),
                                URLQueryItem(name: "missed", value: result.notNotified.joined(separator: "、"))]
            return req.redirect(to: back + "?" + (query.percentEncodedQuery ?? "") + "#comments")
        } catch let error as RoundsError where [409, 413, 422].contains(error.status) {
            return req.redirect(to: back, error: error)
        }
    }

    struct MentionsData: Encodable {
        struct Notice: Encodable { var href: String; var table: String; var author: String; var time: String; var text: String; var read: Bool }
        var notices: [Notice]
    }

    @Sendable func mentions(req: Request) async throws -> Response {
        let context = try req.context()
        let notices = try await req.rounds.tables.mentions(context: context, on: req.db)
        let data = MentionsData(notices: notices.map { n in
            .init(href: "/tables/\(n.baseId)/\(n.tableId)/records/\(n.recordId)#comments", table: n.tableName, author: n.authorName,
                  time: Formatting.dateTime(n.createdAt), text: n.text, read: n.read)
        })
        return try await req.page("tables_mentions", title: "tables_mentions_title", data: data)
    }
}
