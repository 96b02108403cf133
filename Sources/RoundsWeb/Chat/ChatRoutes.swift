import Foundation
import RoundsAlerts
import RoundsChat
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// `/api/v1/groups`: patient groups, their messages and read receipts.
struct ChatRoutes {
    let api: APIBuilder
    /// `/api/v1` without the sign-in requirement: for requests authenticated by signature.
    let signed: APIBuilder

    func register() {
        api.on(.GET, "groups", summary: "My groups with unread counts (active first); q searches names and messages, archived included",
               tag: "chat", returns: GroupDTO.self, array: true, query: ["q"]) { req in
            try await req.rounds.chat.myGroups(context: req.context(), search: req.query[String.self, at: "q"], on: req.db)
                .map { GroupDTO($0.group, unread: $0.unread, mentioned: $0.mentioned, lastMessage: $0.lastMessage) }
        }
        api.on(.GET, "groups", ":groupId", summary: "A group and its members", tag: "chat", returns: GroupDetailDTO.self) { req in
            let chat = req.rounds.chat
            let group = try await chat.readGroup(req.parameters.require("groupId"), context: req.context(), on: req.db)
            let members = try await chat.members(of: group, on: req.db).map {
                MemberDTO(staffId: $0.1.id ?? "", name: $0.1.displayName, reason: $0.0.reason, lastReadMessageId: $0.0.lastReadMessageID)
            }
            let bots = try await chat.bots(of: group, on: req.db).map {
                GroupBotDTO(botId: $0.0.botID, name: $0.name, addedBy: $0.0.addedBy, addedAt: $0.0.addedAt)
            }
            return GroupDetailDTO(group: GroupDTO(group), members: members, bots: bots)
        }
        api.on(.PUT, "groups", ":groupId", "bots", ":botId", summary: "Add a bot to a group (ward's head nurse or administrator)",
               tag: "chat", returns: GroupBotDTO.self, array: true) { req in
            let chat = req.rounds.chat
            let groupID = try req.parameters.require("groupId")
            try await chat.addBot(req.parameters.require("botId"), toGroup: groupID, context: req.context(), on: req.db)
            return try await Self.botList(groupID, req)
        }
        api.on(.DELETE, "groups", ":groupId", "bots", ":botId", summary: "Remove a bot from a group (ward's head nurse or administrator)",
               tag: "chat", returns: GroupBotDTO.self, array: true) { req in
            let chat = req.rounds.chat
            let groupID = try req.parameters.require("groupId")
            try await chat.removeBot(req.parameters.require("botId"), fromGroup: groupID, context: req.context(), on: req.db)
            return try await Self.botList(groupID, req)
        }
        api.on(.GET, "groups", ":groupId", "messages", summary: "Messages after an id, oldest first (catch up after a reconnect)",
               tag: "chat", returns: ChatMessageDTO.self, array: true, query: ["after", "limit"]) { req in
            try await req.rounds.chat.messages(groupID: req.parameters.require("groupId"), after: req.query[String.self, at: "after"],
                                               limit: req.query[Int.self, at: "limit"] ?? 100, context: req.context(), on: req.db)
                .map(ChatMessageDTO.init)
        }
        api.on(.POST, "groups", ":groupId", "messages", summary: "Write to a group (members; not when archived)", tag: "chat",
               body: PostMessageBody.self, returns: ChatMessageDTO.self, status: 201, maxBody: "64kb") { req in
            let body = try req.content.decode(PostMessageBody.self)
            let message = try await req.rounds.chat.post(groupID: req.parameters.require("groupId"), text: body.text, replyTo: body.replyTo,
                                                         context: req.context(), on: req.db)
            return try await ChatMessageDTO(message).encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "groups", ":groupId", "read", summary: "Mark the group read up to a message (read receipts)", tag: "chat",
               body: ReadBody.self, returns: ReadResultDTO.self) { req in
            let body = try req.content.decode(ReadBody.self)
            let marked = try await req.rounds.chat.read(groupID: req.parameters.require("groupId"), upTo: body.upTo,
                                                        context: req.context(), on: req.db)
            return ReadResultDTO(marked: marked)
        }
        api.on(.GET, "messages", ":messageId", "receipts", summary: "Who has read a message, and when", tag: "chat",
               returns: ReceiptDTOChat.self, array: true) { req in
            try await req.rounds.chat.receipts(messageID: req.parameters.require("messageId"), context: req.context(), on: req.db)
                .map { ReceiptDTOChat(staffId: $0.1.id ?? "", name: $0.1.displayName, readAt: $0.0.readAt) }
        }
        api.on(.POST, "groups", ":groupId", "bot-messages", summary: "A bot posts text or a card (token with the bot scope)", tag: "chat",
               body: BotMessageBody.self, returns: ChatMessageDTO.self, status: 201, maxBody: "64kb") { req in
            let body = try req.content.decode(BotMessageBody.self)
            let message = try await req.rounds.chat.postAsBot(groupID: req.parameters.require("groupId"), text: body.text, card: body.card,
                                                              context: req.context(), on: req.db)
            return try await ChatMessageDTO(message).encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "messages", ":messageId", "actions", summary: "Press an action button of a card (the bot is called back, signed)",
               tag: "chat", body: ActionBody.self, returns: ActionDTO.self) { req in
            let body = try req.content.decode(ActionBody.self)
            let messageID = try req.parameters.require("messageId")
            let action = try await req.rounds.chat.act(messageID: messageID, action: body.action, context: req.context(), on: req.db)
            return ActionDTO(action)
        }
        api.on(.PUT, "bots", ":botId", summary: "Set a bot's callback URL; answers a new signing secret (shown once)", tag: "chat",
               body: ConfigureBotBody.self, returns: BotSecretDTO.self) { req in
            let body = try req.content.decode(ConfigureBotBody.self)
            return BotSecretDTO(signingSecret: try await req.rounds.chat.configureBot(
                tokenID: req.parameters.require("botId"), callbackURL: body.callbackUrl, context: req.context(), on: req.db))
        }
        signed.on(.PUT, "bots", ":botId", "cards", ":messageId",
                  summary: "A bot replaces its card; signed: X-Rounds-Signature: sha256=HMAC-SHA256(secret, body)", tag: "chat",
                  body: BotCardUpdateBody.self, returns: ChatMessageDTO.self, maxBody: "64kb") { req in
            let body = req.body.data.map { Data(buffer: $0) } ?? Data()
            return ChatMessageDTO(try await req.rounds.chat.updateCardAsBot(
                botID: req.parameters.require("botId"), messageID: req.parameters.require("messageId"), body: body,
                signature: req.headers.first(name: "X-Rounds-Signature"), clientAddress: req.clientAddress, on: req.db))
        }
        api.on(.PATCH, "messages", ":messageId", summary: "Edit my message (within 15 minutes; the earlier text is kept)", tag: "chat",
               body: EditBody.self, returns: ChatMessageDTO.self) { req in
            let body = try req.content.decode(EditBody.self)
            return ChatMessageDTO(try await req.rounds.chat.edit(messageID: req.parameters.require("messageId"), text: body.text,
                                                                 context: req.context(), on: req.db))
        }
        api.on(.DELETE, "messages", ":messageId", summary: "Recall my message (within 2 minutes; kept in its history)", tag: "chat",
               returns: ChatMessageDTO.self) { req in
            ChatMessageDTO(try await req.rounds.chat.recall(messageID: req.parameters.require("messageId"), context: req.context(), on: req.db))
        }
        api.on(.GET, "messages", ":messageId", "history", summary: "Earlier texts of an edited or recalled message", tag: "chat",
               returns: EditDTO.self, array: true) { req in
            try await req.rounds.chat.history(messageID: req.parameters.require("messageId"), context: req.context(), on: req.db)
                .map { EditDTO(previousText: $0.previousText, change: $0.change, at: $0.at) }
        }
        api.on(.POST, "groups", ":groupId", "attachments",
               summary: "Post a file (body: the bytes; Content-Type image/png, image/jpeg, image/gif, image/webp or application/pdf; X-Filename, percent-encoded)",
               tag: "chat", returns: ChatMessageDTO.self, status: 201, contentType: "application/json",
               rawBody: ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"], maxBody: "11mb") { req in
            let data = req.body.data.map { Data(buffer: $0) } ?? Data()
            let filename = req.headers.first(name: "X-Filename").flatMap { $0.removingPercentEncoding } ?? "file"
            let message = try await req.rounds.chat.attach(groupID: req.parameters.require("groupId"), filename: filename,
                                                           contentType: req.headers.contentType?.serialize() ?? "", data: data,
                                                           context: req.context(), on: req.db)
            return try await ChatMessageDTO(message).encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "wards", ":wardId", "group-rules", summary: "Who joins the ward's new patient groups", tag: "chat",
               returns: ChatService.GroupRule.self) { req in
            try await req.rounds.chat.groupRule(wardID: req.parameters.require("wardId"), context: req.context(), on: req.db)
        }
        api.on(.PUT, "wards", ":wardId", "group-rules", summary: "Set who joins the ward's new patient groups (head nurse)", tag: "chat",
               body: ChatService.GroupRule.self, returns: ChatService.GroupRule.self) { req in
            let rule = try req.content.decode(ChatService.GroupRule.self)
            return try await req.rounds.chat.setGroupRule(wardID: req.parameters.require("wardId"), rule, context: req.context(), on: req.db)
        }
    }

    private static func botList(_ groupID: String, _ req: Request) async throws -> [GroupBotDTO] {
        try await req.rounds.chat.bots(groupID: groupID, on: req.db).map {
            GroupBotDTO(botId: $0.0.botID, name: $0.name, addedBy: $0.0.addedBy, addedAt: $0.0.addedAt)
        }
    }
}
