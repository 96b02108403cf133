import FluentKit
import Foundation
import RoundsCore
import RoundsStore

/// Editing and recalling one's own messages within a window, with the history kept; and
/// @mentions of members.
extension ChatService {
    /// A message may be edited this long after it was sent.
    public static let editWindow: TimeInterval = 15 * 60
    /// A message may be recalled this long after it was sent.
    public static let recallWindow: TimeInterval = 2 * 60

    /// Staff ids of the members named as "@name" in the text.
    func mentions(in text: String, groupID: String, on db: any Database) async throws -> [String] {
        guard text.contains("@") else { return [] }
        let members = try await members(of: try await ChatGroup.find(groupID, on: db) ?? ChatGroup(), on: db)
        return members.filter { text.contains("@" + $0.1.displayName) }.map(\.1.id!)
    }

    public func edit(messageID: String, text: String, context: RequestContext, on db: any Database) async throws -> ChatMessage {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw RoundsError.validation("text: a message needs some text") }
        guard trimmed.count <= Self.maximumTextLength else { throw RoundsError.payloadTooLarge("text: at most \(Self.maximumTextLength) characters") }
        let (message, group) = try await ownMessage(messageID, action: "chat.message.edit", context: context, on: db)
        guard message.recalledAt == nil else { throw RoundsError.conflict("the message was recalled") }
        guard clock.now().timeIntervalSince(message.createdAt) <= Self.editWindow else {
            throw RoundsError.conflict("messages can be edited for \(Int(Self.editWindow / 60)) minutes after sending")
        }
        guard trimmed != message.text else { return message }
        let mentioned = try await mentions(in: trimmed, groupID: group.id!, on: db)
        try await notifier.transaction(on: db) { tx in
            try await history(message, change: "edit", on: tx)
            message.text = trimmed
            message.editedAt = clock.now()
            message.mentions = mentioned.isEmpty ? nil : mentioned.joined(separator: " ")
            try await message.save(on: tx)
            try await audit.record("chat.message.edit", entityType: "chat_message", entityID: messageID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, context: context, on: tx)
            try await notifier.signal(.messageUpdated(messageID), on: tx)
        }
        return message
    }

    public func recall(messageID: String, context: RequestContext, on db: any Database) async throws -> ChatMessage {
        let (message, group) = try await ownMessage(messageID, action: "chat.message.recall", context: context, on: db)
        guard message.recalledAt == nil else { return message }
        guard clock.now().timeIntervalSince(message.createdAt) <= Self.recallWindow else {
            throw RoundsError.conflict("messages can be recalled for \(Int(Self.recallWindow / 60)) minutes after sending")
        }
        try await notifier.transaction(on: db) { tx in
            try await history(message, change: "recall", on: tx)
            message.recalledAt = clock.now()
            message.text = ""
            message.mentions = nil
            try await message.save(on: tx)
            try await audit.record("chat.message.recall", entityType: "chat_message", entityID: messageID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, context: context, on: tx)
            try await notifier.signal(.messageUpdated(messageID), on: tx)
        }
        return message
    }

    /// Earlier texts of a message, oldest first (members and readers of the group).
    public func history(messageID: String, context: RequestContext, on db: any Database) async throws -> [ChatMessageEdit] {
        guard let message = try await ChatMessage.find(messageID, on: db) else { throw RoundsError.notFound("message", id: messageID) }
        let group = try await readableGroup(message.groupID, action: "chat.message.history", context: context, on: db)
        let edits = try await ChatMessageEdit.query(on: db).filter(\.$messageID == messageID).sort(\.$id).all()
        try await audit.record("chat.message.history", entityType: "chat_message", entityID: messageID, patientID: group.patientID,
                               hospitalID: group.hospitalID, context: context, on: db)
        return edits
    }

    private func ownMessage(_ id: String, action: String, context: RequestContext, on db: any Database) async throws -> (ChatMessage, ChatGroup) {
        guard let message = try await ChatMessage.find(id, on: db), let group = try await ChatGroup.find(message.groupID, on: db) else {
            throw RoundsError.notFound("message", id: id)
        }
        guard message.kind == "text", message.senderID == context.principal.id else {
            try await audit.record(action, entityType: "chat_message", entityID: id, patientID: group.patientID, hospitalID: group.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("only the sender changes a message")
        }
        guard !group.isArchived else { throw RoundsError.conflict("the group is archived (the patient was discharged); it is read-only") }
        return (message, group)
    }

    private func history(_ message: ChatMessage, change: String, on db: any Database) async throws {
        let edit = ChatMessageEdit()
        edit.id = ids.next()
        edit.messageID = message.id!
        edit.previousText = message.text
        edit.change = change
        edit.at = clock.now()
        try await edit.create(on: db)
    }
}
