/// Events of the table engine: a record change is an event like an admission, so automations,
/// cards and the live grid react to it through the same outbox.
public enum TableEvent {
    public struct RecordChanged: Codable, Sendable, Equatable {
        public var baseID: String
        public var tableID: String
        public var recordIDs: [String]
        /// The fields a change touched (empty for create, delete and restore).
        public var fieldIDs: [String]
        public var actorID: String

        public init(baseID: String, tableID: String, recordIDs: [String], fieldIDs: [String], actorID: String) {
            self.baseID = baseID; self.tableID = tableID; self.recordIDs = recordIDs; self.fieldIDs = fieldIDs; self.actorID = actorID
        }
    }
    public struct Commented: Codable, Sendable, Equatable {
        public var baseID: String
        public var tableID: String
        public var recordID: String
        public var commentID: String
        public var authorID: String
        /// The staff notified (those who may read the record).
        public var mentioned: [String]

        public init(baseID: String, tableID: String, recordID: String, commentID: String, authorID: String, mentioned: [String]) {
            self.baseID = baseID; self.tableID = tableID; self.recordID = recordID; self.commentID = commentID
            self.authorID = authorID; self.mentioned = mentioned
        }
    }
}

/// A person's role on a base (a set of tables), from most to least.
public enum BaseRole: String, Sendable, Codable, CaseIterable, Comparable {
    /// Changes the tables, the fields and who has which role.
    case owner
    /// Adds, edits and deletes records.
    case editor
    /// Reads and comments.
    case commenter
    /// Reads.
    case viewer

    var rank: Int { [.owner: 3, .editor: 2, .commenter: 1, .viewer: 0][self]! }
    public static func < (a: BaseRole, b: BaseRole) -> Bool { a.rank < b.rank }

    public var canManage: Bool { self == .owner }
    public var canEditRecords: Bool { self >= .editor }
    public var canComment: Bool { self >= .commenter }
}
