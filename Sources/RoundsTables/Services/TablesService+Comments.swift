import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// Comments on a record, and @mentions that notify. A commenter (or more) who may see the record
/// writes; "@name" of someone with a role on the base mentions them — but only if they may read
/// that record themselves (their row rule), so a notice never carries a record past its rules;
/// the others are named back to the writer as not notified.
extension TablesService {
    public static let maximumComment = 2_000

    public struct Comment: Codable, Sendable, Equatable {
        public var id: String
        public var recordId: String
        public var authorId: String
        public var authorName: String
        public var text: String
        public var mentions: [String]
        public var createdAt: Date

        public init(id: String, recordId: String, authorId: String, authorName: String, text: String, mentions: [String], createdAt: Date) {
            self.id = id; self.recordId = recordId; self.authorId = authorId; self.authorName = authorName; self.text = text
            self.mentions = mentions; self.createdAt = createdAt
        }
    }

    public struct CommentResult: Codable, Sendable {
        public var comment: Comment
        /// Mentioned and told.
        public var notified: [String]
        /// Mentioned, but they may not read this record: not told.
        public var notNotified: [String]

        public init(comment: Comment, notified: [String], notNotified: [String]) {
            self.comment = comment; self.notified = notified; self.notNotified = notNotified
        }
    }

    /// A notice for me: a comment that mentions me.
    public struct MentionNotice: Codable, Sendable, Equatable {
        public var id: String
        public var baseId: String
        public var tableId: String
        public var tableName: String
        public var recordId: String
        public var authorName: String
        public var text: String
        public var createdAt: Date
        public var read: Bool

        public init(id: String, baseId: String, tableId: String, tableName: String, recordId: String, authorName: String, text: String,
                    createdAt: Date, read: Bool) {
            self.id = id; self.baseId = baseId; self.tableId = tableId; self.tableName = tableName; self.recordId = recordId
            self.authorName = authorName; self.text = text; self.createdAt = createdAt; self.read = read
        }
    }

    public func addComment(table tableID: String, record recordID: String, text: String, context: RequestContext,
                           on db: any Database) async throws -> CommentResult {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw RoundsError.validation("text: a comment needs some text") }
        guard trimmed.count <= Self.maximumComment else {
            throw RoundsError.payloadTooLarge("text: at most \(Self.maximumComment) characters (this one has \(trimmed.count))")
        }
        let ctx = try await self.context(.commenter, table: tableID, action: "table.comment.create", request: context, on: db)
        guard let row = try await rows(ids: [recordID], ctx, lock: false, links: false, on: db)[recordID], row.deletedAt == nil else {
            try await audit.record("table.comment.create", entityType: "table", entityID: tableID, hospitalID: ctx.base.hospitalID,
                                   outcome: .denied, detail: "record \(recordID.prefix(40)) not readable", context: context, on: db)
            throw RoundsError.notFound("record", id: recordID)
        }
        // "@王芳": people of the base, longest names first (so "@王芳芳" is not also "@王芳").
        var notified: [Member] = [], refused: [Member] = []
        if trimmed.contains("@") || trimmed.contains("＠") {
            let normalized = trimmed.replacingOccurrences(of: "＠", with: "@")
            var rest = normalized
            for member in try await members(of: ctx.base, on: db).sorted(by: { $0.name.count > $1.name.count })
            where member.id != context.principal.id && rest.contains("@" + member.name) {
                rest = rest.replacingOccurrences(of: "@" + member.name, with: "")
                if try await canRead(recordID, staffID: member.id, ctx, on: db) { notified.append(member) } else { refused.append(member) }
            }
        }
        let now = clock.now()
        let comment = TableComment()
        comment.id = ids.next(); comment.tableID = tableID; comment.recordID = recordID
        comment.authorID = context.principal.id; comment.authorName = context.principal.displayName
        comment.text = trimmed; comment.createdAt = now
        let mentioned = notified
        try await events.transaction(on: db) { tx in
            try await comment.create(on: tx)
            for member in mentioned {
                let mention = TableMention()
                mention.id = self.ids.next(); mention.commentID = comment.id!; mention.tableID = tableID; mention.recordID = recordID
                mention.staffID = member.id; mention.createdAt = now
                try await mention.create(on: tx)
            }
            if ctx.table.hasPatients {
                try await self.auditPatients("table.comment.create", rows: [row], ctx, context: context, on: tx)
            }
            try await self.audit.record("table.comment.create", entityType: "table", entityID: tableID, hospitalID: ctx.base.hospitalID,
                                        detail: "record #\(row.number)" + (mentioned.isEmpty ? "" : ", mentions \(mentioned.map(\.name).joined(separator: ", "))"),
                                        context: context, on: tx)
            let payload = TableEvent.Commented(baseID: ctx.base.id!, tableID: tableID, recordID: recordID, commentID: comment.id!,
                                               authorID: context.principal.id, mentioned: mentioned.map(\.id))
            try await self.events.emit(try PendingEvent(.tableRecordCommented, patientID: nil, encounterID: nil, hospitalID: ctx.base.hospitalID,
                                                        payload: payload), in: tx)
        }
        return CommentResult(comment: Self.comment(comment, mentions: mentioned.map(\.id)), notified: mentioned.map(\.name),
                             notNotified: refused.map(\.name))
    }

    /// The comments of a record the caller may read, oldest first.
    public func comments(table tableID: String, record recordID: String, context: RequestContext, on db: any Database) async throws -> [Comment] {
        let ctx = try await self.context(.viewer, table: tableID, action: "table.comment.list", request: context, on: db)
        guard let row = try await rows(ids: [recordID], ctx, lock: false, links: false, on: db)[recordID] else { throw RoundsError.notFound("record", id: recordID) }
        try await auditPatients("table.comment.list", rows: [row], ctx, context: context, on: db)
        let comments = try await TableComment.query(on: db).filter(\.$recordID == recordID).filter(\.$tableID == tableID).sort(\.$id).limit(500).all()
        let mentions = try await TableMention.query(on: db).filter(\.$commentID ~~ comments.compactMap(\.id)).all()
        return comments.map { c in Self.comment(c, mentions: mentions.filter { $0.commentID == c.id }.map(\.staffID)) }
    }

    /// My notices, newest first (unread and the last read ones). A notice whose record I may no
    /// longer read (rules changed, record deleted) shows no text.
    public func mentions(context: RequestContext, limit: Int = 50, on db: any Database) async throws -> [MentionNotice] {
        let mine = try await TableMention.query(on: db).filter(\.$staffID == context.principal.id).sort(\.$id, .descending).limit(limit).all()
        guard !mine.isEmpty else { return [] }
        let comments = Dictionary(try await TableComment.query(on: db).filter(\.$id ~~ mine.map(\.commentID)).all().map { ($0.id!, $0) },
                                  uniquingKeysWith: { a, _ in a })
        var out: [MentionNotice] = []
        var readable: [String: TableContext?] = [:]
        for mention in mine {
            guard let comment = comments[mention.commentID] else { continue }
            if readable[mention.tableID] == nil {
                readable[mention.tableID] = try? await self.context(.viewer, table: mention.tableID, action: "table.mention.list", request: context, on: db)
            }
            guard let ctx = readable[mention.tableID] ?? nil,
                  let row = try await rows(ids: [mention.recordID], ctx, lock: false, links: false, on: db)[mention.recordID], row.deletedAt == nil else { continue }
            try await auditPatients("table.mention.list", rows: [row], ctx, context: context, on: db)
            out.append(MentionNotice(id: mention.id!, baseId: ctx.base.id!, tableId: mention.tableID, tableName: ctx.table.name,
                                     recordId: mention.recordID, authorName: comment.authorName, text: comment.text,
                                     createdAt: comment.createdAt, read: mention.readAt != nil))
        }
        return out
    }

    public func unreadMentions(context: RequestContext, on db: any Database) async throws -> Int {
        try await TableMention.query(on: db).filter(\.$staffID == context.principal.id).filter(\.$readAt == nil).count()
    }

    /// Marks my notices read (all of them, or those of one record when I open it).
    public func markMentionsRead(record recordID: String? = nil, context: RequestContext, on db: any Database) async throws {
        let query = TableMention.query(on: db).filter(\.$staffID == context.principal.id).filter(\.$readAt == nil)
        if let recordID { query.filter(\.$recordID == recordID) }
        try await query.set(\.$readAt, to: clock.now()).update()
    }

    /// The people of a base one can @mention (anyone with a role reads who else has one).
    public func commentable(base baseID: String, context: RequestContext, on db: any Database) async throws -> [Member] {
        let (base, _) = try await require(.viewer, base: baseID, action: "table.base.members", context: context, on: db)
        return try await members(of: base, on: db)
    }

    /// Whether this person may read the record themselves: their role on the base, their row rule.
    func canRead(_ recordID: String, staffID: String, _ ctx: TableContext, on db: any Database) async throws -> Bool {
        guard let staff = try await Staff.find(staffID, on: db), staff.isActive else { return false }
        let reader = try await Principal.of(staff, on: db)
        guard let role = try await role(on: ctx.base, reader, on: db) else { return false }
        var theirs = ctx
        theirs.role = role
        theirs.reader = reader
        theirs.access = try await access(for: role, table: ctx.table, fields: ctx.fields, plan: ctx.plan, on: db)
        guard let row = try await rows(ids: [recordID], theirs, lock: false, links: false, on: db)[recordID] else { return false }
        return row.deletedAt == nil
    }

    static func comment(_ c: TableComment, mentions: [String]) -> Comment {
        Comment(id: c.id!, recordId: c.recordID, authorId: c.authorID, authorName: c.authorName, text: c.text, mentions: mentions, createdAt: c.createdAt)
    }
}
