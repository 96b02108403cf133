import Fluent
import Foundation
import RoundsChat
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// My patient groups and the group view (messages, cards, members, patient header). The page
/// works without JavaScript (the composer posts a form); `chat.js` makes it live.
struct ChatPages {
    struct GroupRow: Encodable {
        var id: String; var name: String; var unread: Int; var hasUnread: Bool; var archived: Bool; var mentioned: Bool; var last: String
    }
    struct ListData: Encodable { var groups: [GroupRow]; var empty: Bool; var q: String }

    struct CardView: Encodable {
        var title: String; var severity: String; var fields: [Card.Field]; var buttons: [Card.Button]
    }
    struct MessageView: Encodable {
        var id: String; var kind: String; var sender: String; var text: String; var time: String; var mine: Bool
        var card: CardView?; var replyTo: String?; var readers: String; var readCount: Int; var recalled: Bool; var edited: Bool
        var attachmentId: String?; var isImage: Bool; var quote: String?
        /// The day, on the first message of each day (a separator above it).
        var day: String?
        /// Same sender as the message before, within five minutes: the name is not repeated.
        var continued: Bool
        var mentionsMe: Bool
        var canEdit: Bool; var canRecall: Bool
        /// The first message I have not read: the "unread from here" line goes above it.
        var firstUnread: Bool
    }
    struct MemberView: Encodable { var name: String; var reason: String }
    struct GroupData: Encodable {
        var id: String; var name: String; var archived: Bool; var isMember: Bool
        var patientName: String; var mrn: String; var ward: String; var bed: String; var doctor: String; var allergies: String?
        var members: [MemberView]; var messages: [MessageView]; var lastId: String; var meId: String
        var previousGroupId: String?; var patientId: String?; var memberNames: String
    }

    func register(_ routes: any RoutesBuilder) {
        routes.get("groups", use: list)
        routes.get("groups", ":id", use: show)
        routes.post("groups", ":id", "messages", use: post)
        routes.post("groups", ":id", "read", use: markRead)
        routes.get("attachments", ":id", use: attachment)
    }

    /// The bytes of an image or PDF, shown inline; nothing in them may run as a page of Rounds.
    @Sendable func attachment(req: Request) async throws -> Response {
        let file = try await req.rounds.chat.attachment(id: req.parameters.require("id"), context: req.context(), on: req.db)
        return Self.serve(file)
    }

    /// Untrusted bytes (from HL7 senders and uploads): checked again on the way out (rows stored
    /// before the type check existed), previewable types inline, everything else as a download,
    /// and always in a sandbox that runs nothing and loads nothing.
    static func serve(_ file: Attachment) -> Response {
        let type = FileType.verified(file.contentType, file.data)
        let response = Response(status: .ok, body: .init(data: file.data))
        response.headers.replaceOrAdd(name: .contentType, value: type)
        let encoded = file.filename.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "file"
        let disposition = type == FileType.opaque ? "attachment" : "inline"
        response.headers.replaceOrAdd(name: .contentDisposition, value: "\(disposition); filename*=UTF-8''\(encoded)")
        response.headers.replaceOrAdd(name: "Content-Security-Policy", value: "sandbox; default-src 'none'")
        response.headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        response.headers.replaceOrAdd(name: .cacheControl, value: "private, no-store")
        return response
    }

    @Sendable func list(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let q = req.query[String.self, at: "q"] ?? ""
        let rows = try await req.rounds.chat.myGroups(context: req.context(), search: q, on: req.db).map {
            GroupRow(id: $0.group.id!, name: $0.group.name, unread: $0.unread, hasUnread: $0.unread > 0, archived: $0.group.isArchived,
                     mentioned: $0.mentioned,
                     last: $0.lastMessage.map { "\($0.senderName): \($0.text)" } ?? (t["chat_no_messages"] ?? ""))
        }
        return try await req.page("groups", title: "chat_groups", data: ListData(groups: rows, empty: rows.isEmpty, q: q))
    }

    @Sendable func show(req: Request) async throws -> Response {
        let context = try req.context()
        let chat = req.rounds.chat, db = req.db
        let id = try req.parameters.require("id")
        let view = try await chat.conversation(id, context: context, on: db)
        let group = view.group, messages = view.messages, members = view.members, readers = view.readers
        let t = req.rounds.catalogue.table(req.locale)
        let isMember = members.contains { $0.1.id == context.principal.id }
        let patientName = view.patientName, mrn = view.mrn, wardName = view.wardName, bedLabel = view.bedLabel
        let doctor = view.doctor, allergies = view.allergies
        let byID = Dictionary(messages.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        let me = context.principal.id
        let lastRead = members.first { $0.1.id == me }?.0.lastReadMessageID
        let firstUnreadID = messages.first { m in m.senderID != me && lastRead.map { m.id! > $0 } ?? true }?.id
        let now = req.rounds.configuration.clock.now()
        var previous: ChatMessage?
        let views = messages.map { m -> MessageView in
            defer { previous = m }
            let day = Formatting.day(m.createdAt)
            let newDay = previous.map { Formatting.day($0.createdAt) != day } ?? true
            let continued = !newDay && previous.map { $0.senderID == m.senderID && $0.kind == "text" && m.kind == "text"
                && m.createdAt.timeIntervalSince($0.createdAt) < 300 } ?? false
            let mine = m.senderID == me && m.kind == "text" && m.recalledAt == nil
            let card = m.card.flatMap { try? JSONDecoder().decode(Card.self, from: Data($0.utf8)) }
            let who = readers[m.id!] ?? []
            return MessageView(id: m.id!, kind: m.kind, sender: m.senderName, text: m.text, time: Formatting.dateTime(m.createdAt),
                               mine: m.senderID == context.principal.id,
                               card: card.map { CardView(title: $0.title, severity: $0.severity.rawValue, fields: $0.fields, buttons: $0.buttons) },
                               replyTo: m.replyToID, readers: who.joined(separator: "、"), readCount: who.count,
                               recalled: m.recalledAt != nil, edited: m.editedAt != nil,
                               attachmentId: m.attachmentID, isImage: m.kind == "file" && !m.text.lowercased().hasSuffix(".pdf"),
                               quote: m.replyToID.flatMap { id in byID[id].map { "\($0.senderName): \($0.recalledAt == nil ? String($0.text.prefix(60)) : "…")" } },
                               day: newDay ? day : nil, continued: continued,
                               mentionsMe: m.mentions?.split(separator: " ").contains(Substring(me)) == true,
                               canEdit: mine && now.timeIntervalSince(m.createdAt) <= ChatService.editWindow,
                               canRecall: mine && now.timeIntervalSince(m.createdAt) <= ChatService.recallWindow,
                               firstUnread: m.id == firstUnreadID && lastRead != nil)
        }
        // A GET marks nothing read (a link or a prefetch is not reading): the page's script
        // posts the read receipt when the group is on screen.
        let data = GroupData(id: id, name: group.name, archived: group.isArchived, isMember: isMember, patientName: patientName, mrn: mrn,
                             ward: wardName, bed: bedLabel, doctor: doctor, allergies: allergies,
                             members: members.map { MemberView(name: $0.1.displayName, reason: t["chat_reason_\($0.0.reason)"] ?? $0.0.reason) },
                             messages: views, lastId: messages.last?.id ?? "", meId: context.principal.id, previousGroupId: group.previousGroupID,
                             patientId: group.patientID, memberNames: members.map(\.1.displayName).joined(separator: "|"))
        return try await req.page("group", title: "chat_group", data: data, error: req.query[String.self, at: "error"])
    }

    @Sendable func post(req: Request) async throws -> Response {
        struct Form: Content { var text: String; var replyTo: String? }
        let id = try req.parameters.require("id")
        let form = try req.content.decode(Form.self)
        do {
            _ = try await req.rounds.chat.post(groupID: id, text: form.text, replyTo: form.replyTo?.isEmpty == false ? form.replyTo : nil,
                                               context: req.context(), on: req.db)
        } catch let error as RoundsError where error.status == 422 || error.status == 409 || error.status == 413 {
            return req.redirect(to: "/groups/\(id)", error: error)
        }
        return req.redirect(to: "/groups/\(id)#composer")
    }

    /// Without JavaScript the reader says so with a button (a GET never marks anything read).
    @Sendable func markRead(req: Request) async throws -> Response {
        struct Form: Content { var upTo: String }
        let id = try req.parameters.require("id")
        let form = try req.content.decode(Form.self)
        _ = try await req.rounds.chat.read(groupID: id, upTo: form.upTo, context: req.context(), on: req.db)
        return req.redirect(to: "/groups/\(id)")
    }
}
