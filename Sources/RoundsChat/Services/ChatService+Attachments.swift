import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// Files in patient groups (photos of a wound, a scanned consent, a PDF report). Kept in the
/// database beside the message, limited in size and to types a browser previews safely; the
/// bytes must be what the declared type says they are.
extension ChatService {
    public static let maximumAttachmentSize = 10 * 1024 * 1024
    public static var attachmentTypes: [String] { FileType.previewable }

    /// A member posts a file to the group.
    public func attach(groupID: String, filename: String, contentType: String, data: Data, context: RequestContext,
                       on db: any Database) async throws -> ChatMessage {
        guard let group = try await ChatGroup.find(groupID, on: db) else { throw RoundsError.notFound("group", id: groupID) }
        guard try await isMember(group, context, on: db) else {
            try await audit.record("chat.attachment.create", entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("only members of the group post files in it")
        }
        guard !group.isArchived else { throw RoundsError.conflict("the group is archived (the patient was discharged); it is read-only") }
        guard !data.isEmpty else { throw RoundsError.validation("file: empty") }
        guard data.count <= Self.maximumAttachmentSize else {
            throw RoundsError.payloadTooLarge("file: at most \(Self.maximumAttachmentSize / 1024 / 1024) MiB (this one has \(data.count) bytes)")
        }
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard Self.attachmentTypes.contains(type) else {
            throw RoundsError(code: "unsupported_media_type", status: 415, zh: "不支持的文件类型", en: "Unsupported file type",
                              detail: "\(type.isEmpty ? "no type" : type): send \(Self.attachmentTypes.joined(separator: ", "))")
        }
        guard FileType.bytes(data, are: type) else {
            throw RoundsError(code: "unsupported_media_type", status: 415, zh: "文件内容与类型不符", en: "The file is not what its type says",
                              detail: "the bytes are not \(type)")
        }
        let name = String(filename.filter { !"/\\\0\r\n\"".contains($0) }.prefix(120))
        let message: ChatMessage = try await notifier.transaction(on: db) { tx in
            let attachment = Attachment()
            attachment.id = ids.next()
            attachment.patientID = group.patientID
            attachment.contentType = type
            attachment.filename = name.isEmpty ? "file" : name
            attachment.data = data
            attachment.size = data.count
            attachment.createdAt = clock.now()
            try await attachment.create(on: tx)
            let message = ChatMessage()
            message.id = ids.next()
            message.groupID = groupID
            message.kind = "file"
            message.senderID = context.principal.id
            message.senderName = context.principal.displayName
            message.text = attachment.filename
            message.attachmentID = attachment.id
            message.createdAt = clock.now()
            try await message.create(on: tx)
            try await audit.record("chat.attachment.create", entityType: "attachment", entityID: attachment.id, patientID: group.patientID,
                                   hospitalID: group.hospitalID, detail: "\(type) \(data.count) bytes", context: context, on: tx)
            try await notifier.signal(.chat, on: tx)
            return message
        }
        return message
    }

    /// An attachment, for those who may read where it belongs: the group of the message that
    /// carries it, or (a report's PDF) the patient's ward. Refusals are audited.
    public func attachment(id: String, context: RequestContext, on db: any Database) async throws -> Attachment {
        guard let attachment = try await Attachment.find(id, on: db) else { throw RoundsError.notFound("attachment", id: id) }
        var allowed = false
        var hospitalID: String?
        if let message = try await ChatMessage.query(on: db).filter(\.$attachmentID == id).first() {
            _ = try await readableGroup(message.groupID, action: "attachment.read", context: context, on: db)  // throws 403, audited
            allowed = true
        } else if let patientID = attachment.patientID {
            let stays = try await Encounter.query(on: db).filter(\.$patientID == patientID).all()
            for stay in stays {
                hospitalID = stay.hospitalID
                if let ward = try await Department.find(stay.wardID, on: db), context.principal.canViewPatients(in: ward.wardRef) {
                    allowed = true
                    break
                }
            }
            // Report PDFs are also reachable through the patient's group.
            if !allowed, try await ChatGroup.query(on: db).filter(\.$patientID == patientID).all().asyncContains({ try await isMember($0, context, on: db) }) {
                allowed = true
            }
        }
        guard allowed else {
            try await audit.record("attachment.read", entityType: "attachment", entityID: id, patientID: attachment.patientID,
                                   hospitalID: hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("this file belongs to a patient outside your care")
        }
        try await audit.record("attachment.read", entityType: "attachment", entityID: id, patientID: attachment.patientID,
                               hospitalID: hospitalID, context: context, on: db)
        return attachment
    }
}

extension Array {
    func asyncContains(_ predicate: (Element) async throws -> Bool) async rethrows -> Bool {
        for element in self where try await predicate(element) { return true }
        return false
    }
}
