import Foundation
import RoundsCore
import RoundsChat
import RoundsDirectory
import RoundsStore
import Vapor

struct GroupDTO: APISchema {
    static let enums = ["status": ["active", "archived"]]
    var id: String
    var name: String
    var status: String
    var patientId: String?
    var wardId: String?
    var previousGroupId: String?
    var unread: Int?
    /// An unread message @mentions me.
    var mentioned: Bool?
    var lastMessage: String?
    var createdAt: Date
    var archivedAt: Date?

    init(_ g: ChatGroup, unread: Int? = nil, mentioned: Bool? = nil, lastMessage: ChatMessage? = nil) {
        id = g.id ?? ""; name = g.name; status = g.status; patientId = g.patientID; wardId = g.wardID
        previousGroupId = g.previousGroupID; self.unread = unread; self.mentioned = mentioned; self.lastMessage = lastMessage?.text
        createdAt = g.createdAt; archivedAt = g.archivedAt
    }

    static let sample: GroupDTO = {
        let g = ChatGroup()
        g.id = "…"; g.name = "12床 · 王建国 · MRN10001"; g.status = "active"; g.patientID = "…"; g.wardID = "…"
        g.previousGroupID = "…"; g.createdAt = Date(timeIntervalSince1970: 0); g.archivedAt = Date(timeIntervalSince1970: 0)
        return GroupDTO(g, unread: 3, mentioned: true)
    }()
}

struct MemberDTO: APISchema {
    var staffId: String
    var name: String
    var reason: String
    var lastReadMessageId: String?
    static let sample = MemberDTO(staffId: "…", name: "李明", reason: "attending", lastReadMessageId: "…")
}

/// A bot that may post into the group.
struct GroupBotDTO: APISchema {
    var botId: String
    var name: String
    /// A staff id, or "rule" when the ward's rule added it.
    var addedBy: String
    var addedAt: Date
    static let sample = GroupBotDTO(botId: "…", name: "病理科机器人", addedBy: "rule", addedAt: Date(timeIntervalSince1970: 0))
}

struct GroupDetailDTO: APISchema {
    var group: GroupDTO
    var members: [MemberDTO]
    var bots: [GroupBotDTO]
    static let sample = GroupDetailDTO(group: .sample, members: [.sample], bots: [.sample])
}

struct ChatMessageDTO: APISchema {
    static let enums = ["kind": ["text", "card", "system", "file"]]
    var id: String
    var groupId: String
    var kind: String
    var senderId: String?
    var senderName: String
    var text: String
    var card: Card?
    var replyToId: String?
    var createdAt: Date
    var editedAt: Date?
    /// Recalled by the sender (the text is then empty).
    var recalled: Bool
    /// Staff ids @mentioned.
    var mentions: [String]
    /// For kind "file": GET /attachments/{id}.
    var attachmentId: String?

    init(_ m: ChatMessage) {
        id = m.id ?? ""; groupId = m.groupID; kind = m.kind; senderId = m.senderID; senderName = m.senderName; text = m.text
        card = m.card.flatMap { try? JSONDecoder().decode(Card.self, from: Data($0.utf8)) }
        replyToId = m.replyToID; createdAt = m.createdAt; editedAt = m.editedAt; recalled = m.recalledAt != nil
        mentions = m.mentions.map { $0.split(separator: " ").map(String.init) } ?? []
        attachmentId = m.attachmentID
    }

    static let sample: ChatMessageDTO = {
        let m = ChatMessage()
        m.id = "…"; m.groupID = "…"; m.kind = "card"; m.senderID = "…"; m.senderName = "Rounds"; m.text = "医嘱变更 · 顺铂"
        m.card = #"{"title":"医嘱变更 · 顺铂","severity":"warning","fields":[{"label":"剂量","value":"80 → 75"}],"buttons":[{"label":"查看医嘱","url":"/patients/…#orders"}]}"#
        m.replyToID = "…"; m.createdAt = Date(timeIntervalSince1970: 0); m.editedAt = Date(timeIntervalSince1970: 0); m.mentions = "…"; m.attachmentID = "…"
        return ChatMessageDTO(m)
    }()
}

struct PostMessageBody: APISchema {
    var text: String
    var replyTo: String?
    static let sample = PostMessageBody(text: "已通知家属 @李明", replyTo: "…")
}

struct ReadBody: APISchema {
    /// The newest message read; everything before it counts as read too.
    var upTo: String
    static let sample = ReadBody(upTo: "…")
}

struct ReadResultDTO: APISchema {
    var marked: Int
    static let sample = ReadResultDTO(marked: 4)
}

struct ReceiptDTOChat: APISchema {
    var staffId: String
    var name: String
    var readAt: Date
    static let sample = ReceiptDTOChat(staffId: "…", name: "李明", readAt: Date(timeIntervalSince1970: 0))
}

struct BotMessageBody: APISchema {
    var text: String?
    var card: Card?
    static let sample = BotMessageBody(text: nil, card: Card(
        title: "输血申请待审核", severity: .warning, fields: [.init("申请", "悬浮红细胞 2U")],
        buttons: [.init(label: "确认", action: "acknowledge"), .init(label: "查看", url: "/patients/…")]))
}

struct ConfigureBotBody: APISchema {
    /// Where Rounds POSTs card actions (signed); null to stop callbacks.
    var callbackUrl: String?
    static let sample = ConfigureBotBody(callbackUrl: "https://bots.example/rounds")
}

struct BotSecretDTO: APISchema {
    /// HMAC-SHA256 key for `X-Rounds-Signature`, shown once.
    var signingSecret: String
    static let sample = BotSecretDTO(signingSecret: "…")
}

struct ActionBody: APISchema {
    var action: String
    static let sample = ActionBody(action: "acknowledge")
}

struct ActionDTO: APISchema {
    var id: String
    var messageId: String
    var action: String
    var staffName: String
    var at: Date
    init(_ a: ChatAction) { id = a.id ?? ""; messageId = a.messageID; action = a.action; staffName = a.staffName; at = a.at }
    static let sample: ActionDTO = {
        let a = ChatAction()
        a.id = "…"; a.messageID = "…"; a.action = "acknowledge"; a.staffName = "王芳"; a.at = Date(timeIntervalSince1970: 0)
        return ActionDTO(a)
    }()
}

struct BotCardUpdateBody: APISchema {
    var card: Card
    static let sample = BotCardUpdateBody(card: Card(title: "输血申请已确认", severity: .success, fields: [], buttons: []))
}

struct EditBody: APISchema {
    var text: String
    static let sample = EditBody(text: "改为 20:00 复查")
}

struct EditDTO: APISchema {
    var previousText: String
    /// edit or recall.
    var change: String
    var at: Date
    static let sample = EditDTO(previousText: "…", change: "edit", at: Date(timeIntervalSince1970: 0))
}

extension ChatService.GroupRule: APISchema {
    static var sample: Self { .init(headNurses: true, wardNurses: true, wardDoctors: false, extraStaffIds: ["…"], botIds: ["…"]) }
}
