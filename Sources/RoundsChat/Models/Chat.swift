import FluentKit
import Foundation

/// A conversation. Today every group is a patient group: one per stay, created on admission
/// with the care team, archived (read-only, still searchable) on discharge.
public final class ChatGroup: Model, @unchecked Sendable {
    public static let schema = "chat_groups"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "kind") public var kind: String
    @Field(key: "hospital_id") public var hospitalID: String
    @OptionalField(key: "ward_id") public var wardID: String?
    @OptionalField(key: "patient_id") public var patientID: String?
    @OptionalField(key: "encounter_id") public var encounterID: String?
    /// "bed · patient name · MRN", kept current on transfer.
    @Field(key: "name") public var name: String
    /// active or archived.
    @Field(key: "status") public var status: String
    /// The group of the patient's previous stay (re-admission).
    @OptionalField(key: "previous_group_id") public var previousGroupID: String?
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "archived_at") public var archivedAt: Date?

    public init() {}

    public var isArchived: Bool { status == "archived" }
}

/// Someone in a group, why they are there, and how far they have read.
public final class ChatMember: Model, @unchecked Sendable {
    public static let schema = "chat_members"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "group_id") public var groupID: String
    @Field(key: "staff_id") public var staffID: String
    /// attending, responsible_nurse, head_nurse, ward_nurse, added.
    @Field(key: "reason") public var reason: String
    @Field(key: "added_at") public var addedAt: Date
    /// Id of the newest message this member has read.
    @OptionalField(key: "last_read_message_id") public var lastReadMessageID: String?

    public init() {}
}

/// A message: text from a person, a structured card from a bot, or a system note.
public final class ChatMessage: Model, @unchecked Sendable {
    public static let schema = "chat_messages"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "group_id") public var groupID: String
    /// text, card or system.
    @Field(key: "kind") public var kind: String
    @OptionalField(key: "sender_id") public var senderID: String?
    @Field(key: "sender_name") public var senderName: String
    @Field(key: "text") public var text: String
    /// For cards: `Card` as JSON.
    @OptionalField(key: "card") public var card: String?
    @OptionalField(key: "reply_to_id") public var replyToID: String?
    /// The outbox event a card came from (one card per event).
    @OptionalField(key: "source_event_id") public var sourceEventID: String?
    /// The bot (API token) that posted it; its actions are called back to that bot.
    @OptionalField(key: "bot_id") public var botID: String?
    @OptionalField(key: "updated_at") public var updatedAt: Date?
    @OptionalField(key: "edited_at") public var editedAt: Date?
    /// Recalled by its sender: shown as recalled; the text is kept in the edit history.
    @OptionalField(key: "recalled_at") public var recalledAt: Date?
    /// Staff ids @mentioned in the text, space-separated.
    @OptionalField(key: "mentions") public var mentions: String?
    /// For kind "file": the attachment (image or PDF).
    @OptionalField(key: "attachment_id") public var attachmentID: String?
    @Field(key: "created_at") public var createdAt: Date

    public init() {}
}

/// "Read by": one row per (message, reader), written when a member reads up to it.
public final class ChatReceipt: Model, @unchecked Sendable {
    public static let schema = "chat_receipts"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "message_id") public var messageID: String
    @Field(key: "group_id") public var groupID: String
    @Field(key: "staff_id") public var staffID: String
    @Field(key: "read_at") public var readAt: Date

    public init() {}
}

/// A bot's settings: where Rounds calls back when someone presses one of its card buttons,
/// and the shared secret both sides sign with (HMAC-SHA256 over the body).
public final class ChatBot: Model, @unchecked Sendable {
    public static let schema = "chat_bots"
    /// The API token's id.
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @OptionalField(key: "callback_url") public var callbackURL: String?
    @Field(key: "signing_secret") public var signingSecret: String
    @Field(key: "updated_at") public var updatedAt: Date

    public init() {}
}

/// A bot (API token with the bot scope) that may post into a group. Bots are members like people:
/// added by the ward's head nurse or an administrator (or by the ward's rule for new groups), and
/// a bot token posts only where it was added, whatever hospitals its token covers.
public final class ChatBotMember: Model, @unchecked Sendable {
    public static let schema = "chat_bot_members"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "group_id") public var groupID: String
    @Field(key: "bot_id") public var botID: String
    /// Who added it (a staff id), or "rule" for the ward's rule.
    @Field(key: "added_by") public var addedBy: String
    @Field(key: "added_at") public var addedAt: Date

    public init() {}
}

/// Someone pressed an action button of a card.
public final class ChatAction: Model, @unchecked Sendable {
    public static let schema = "chat_actions"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "message_id") public var messageID: String
    @Field(key: "group_id") public var groupID: String
    @Field(key: "action") public var action: String
    @Field(key: "staff_id") public var staffID: String
    @Field(key: "staff_name") public var staffName: String
    @OptionalField(key: "client_address") public var clientAddress: String?
    @Field(key: "at") public var at: Date

    public init() {}
}

/// A signed HTTP callback to a bot, queued so that it survives restarts and is retried.
public final class BotCallback: Model, @unchecked Sendable {
    public static let schema = "chat_bot_callbacks"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "bot_id") public var botID: String
    @Field(key: "url") public var url: String
    @Field(key: "body") public var body: String
    /// pending, sent, dead.
    @Field(key: "status") public var status: String
    @Field(key: "attempts") public var attempts: Int
    @Field(key: "next_attempt_at") public var nextAttemptAt: Date
    @OptionalField(key: "last_error") public var lastError: String?
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "sent_at") public var sentAt: Date?

    public init() {}
}

/// The text a message had before an edit or a recall.
public final class ChatMessageEdit: Model, @unchecked Sendable {
    public static let schema = "chat_message_edits"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "message_id") public var messageID: String
    @Field(key: "previous_text") public var previousText: String
    /// edit or recall.
    @Field(key: "change") public var change: String
    @Field(key: "at") public var at: Date

    public init() {}
}
