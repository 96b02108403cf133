import Crypto
import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// Bots: API tokens with the `bot` scope post messages and cards to groups of their hospital;
/// when a member presses one of a bot's action buttons, Rounds records it and calls the bot back
/// (HTTP POST, `X-Rounds-Signature: sha256=<HMAC-SHA256 of the body>`); the bot may then update
/// its card by a signed request of its own.
extension ChatService {
    /// Signs a body with a bot's secret, as `sha256=<hex>`.
    public static func signature(_ body: Data, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// Compares in constant time.
    public static func verify(_ body: Data, signature: String?, secret: String) -> Bool {
        guard let signature else { return false }
        let expected = Array(Self.signature(body, secret: secret).utf8), given = Array(signature.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Sets a bot's callback URL and makes a new signing secret (returned once).
    public func configureBot(tokenID: String, callbackURL: String?, context: RequestContext, on db: any Database) async throws -> String {
        guard let token = try await APIToken.find(tokenID, on: db), token.revokedAt == nil,
              token.scopes.split(separator: " ").contains(Substring(TokenScope.bot.rawValue)) else {
            throw RoundsError.notFound("bot token", id: tokenID)
        }
        guard context.principal.canManageTokens(hospitalID: token.hospitalID) else {
            try await audit.record("bot.configure", entityType: "api_token", entityID: tokenID, hospitalID: token.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("bots are configured by administrators of their hospital")
        }
        if let callbackURL {
            guard let url = URL(string: callbackURL), ["https", "http"].contains(url.scheme ?? ""), url.host != nil else {
                throw RoundsError.validation("callbackUrl: an http(s) URL")
            }
        }
        var random = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &random)) }.joined()
        let bot = try await ChatBot.find(tokenID, on: db) ?? ChatBot()
        bot.id = tokenID
        bot.callbackURL = callbackURL
        bot.signingSecret = secret
        bot.updatedAt = clock.now()
        try await bot.save(on: db)
        try await audit.record("bot.configure", entityType: "api_token", entityID: tokenID, hospitalID: token.hospitalID,
                               detail: callbackURL, context: context, on: db)
        return secret
    }

    /// A bot posts text or a card.
    public func postAsBot(groupID: String, text: String?, card: Card?, context: RequestContext, on db: any Database) async throws -> ChatMessage {
        guard let group = try await ChatGroup.find(groupID, on: db) else { throw RoundsError.notFound("group", id: groupID) }
        guard context.principal.isBot(for: group.hospitalID) else {
            try await audit.record("chat.message.create", entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("posting needs a token with the bot scope for this hospital")
        }
        // A token covering the hospital is not enough: a bot posts only where it was added.
        guard try await ChatBotMember.query(on: db).filter(\.$groupID == groupID).filter(\.$botID == context.principal.id).first() != nil else {
            try await audit.record("chat.message.create", entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, outcome: .denied, detail: "bot is not a member", context: context, on: db)
            throw RoundsError.forbidden("this bot is not a member of the group: the ward's head nurse adds it (or the ward's rule)")
        }
        guard !group.isArchived else { throw RoundsError.conflict("the group is archived (the patient was discharged); it is read-only") }
        if let card { try Self.validate(card) }
        let body = (text ?? card?.title ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !body.isEmpty else { throw RoundsError.validation("text or card: a message needs one") }
        guard body.count <= Self.maximumTextLength else { throw RoundsError.payloadTooLarge("text: at most \(Self.maximumTextLength) characters") }
        let message: ChatMessage = try await notifier.transaction(on: db) { tx in
            let message = ChatMessage()
            message.id = ids.next()
            message.groupID = groupID
            message.kind = card == nil ? "text" : "card"
            // Shown as the bot's name (the token's name), without the "token:" of the audit trail.
            message.senderName = context.principal.displayName.hasPrefix("token:")
                ? String(context.principal.displayName.dropFirst(6)) : context.principal.displayName
            message.botID = context.principal.id
            message.text = body
            message.card = try card.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
            message.createdAt = clock.now()
            try await message.create(on: tx)
            try await audit.record("chat.message.create", entityType: "chat_message", entityID: message.id, patientID: group.patientID,
                                   hospitalID: group.hospitalID, detail: "bot", context: context, on: tx)
            try await notifier.signal(.chat, on: tx)
            return message
        }
        return message
    }

    // MARK: Bot membership

    /// A bot token that may join groups of the hospital: bot scope, not revoked or expired.
    @discardableResult
    func requireBot(_ botID: String, forHospital hospitalID: String, field: String, on db: any Database) async throws -> APIToken {
        guard let token = try await APIToken.find(botID, on: db),
              token.scopes.split(separator: " ").contains(Substring(TokenScope.bot.rawValue)) else {
            throw RoundsError.validation("\(field): \(botID) is not a bot token")
        }
        guard token.revokedAt == nil, token.expiresAt.map({ $0 > clock.now() }) ?? true else {
            throw RoundsError.validation("\(field): the bot token \(botID) is revoked or expired")
        }
        guard token.hospitalID == nil || token.hospitalID == hospitalID else {
            throw RoundsError.validation("\(field): the bot \(botID) belongs to another hospital")
        }
        return token
    }

    /// The bots of a group, with their names.
    /// The bots of a group, by the group's id (after a change, to answer with the new list).
    public func bots(groupID: String, on db: any Database) async throws -> [(ChatBotMember, name: String)] {
        guard let group = try await ChatGroup.find(groupID, on: db) else { throw RoundsError.notFound("group", id: groupID) }
        return try await bots(of: group, on: db)
    }

    public func bots(of group: ChatGroup, on db: any Database) async throws -> [(ChatBotMember, name: String)] {
        let members = try await ChatBotMember.query(on: db).filter(\.$groupID == group.id!).sort(\.$addedAt).all()
        let tokens = try await APIToken.query(on: db).filter(\.$id ~~ members.map(\.botID)).all()
        let names = Dictionary(tokens.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
        return members.map { ($0, names[$0.botID] ?? $0.botID) }
    }

    /// The ward's head nurse (or an administrator of its hospital) adds a bot to one group; the
    /// members see a note that it joined.
    public func addBot(_ botID: String, toGroup groupID: String, context: RequestContext, on db: any Database) async throws {
        let group = try await groupForBotChange(groupID, action: "chat.bot.add", context: context, on: db)
        let token = try await requireBot(botID, forHospital: group.hospitalID, field: "botId", on: db)
        guard !group.isArchived else { throw RoundsError.conflict("the group is archived (the patient was discharged); it is read-only") }
        try await notifier.transaction(on: db) { tx in
            try await insertBot(token, into: group, addedBy: context.principal.id, context: context, on: tx)
            try await notifier.signal(.chat, on: tx)
        }
    }

    public func removeBot(_ botID: String, fromGroup groupID: String, context: RequestContext, on db: any Database) async throws {
        let group = try await groupForBotChange(groupID, action: "chat.bot.remove", context: context, on: db)
        guard let member = try await ChatBotMember.query(on: db).filter(\.$groupID == groupID).filter(\.$botID == botID).first() else {
            throw RoundsError.notFound("bot of this group", id: botID)
        }
        let name = try await APIToken.find(botID, on: db)?.name ?? botID
        try await notifier.transaction(on: db) { tx in
            try await member.delete(on: tx)
            try await postSystem("机器人「\(name)」已移出本群", to: group, on: tx)
            try await audit.record("chat.bot.remove", entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, detail: botID, context: context, on: tx)
            try await notifier.signal(.chat, on: tx)
        }
    }

    /// Adds the bot unless it is there already. `context` nil: the ward's rule did it.
    func insertBot(_ token: APIToken, into group: ChatGroup, addedBy: String, context: RequestContext?, on db: any Database) async throws {
        if try await ChatBotMember.query(on: db).filter(\.$groupID == group.id!).filter(\.$botID == token.id!).first() != nil { return }
        let member = ChatBotMember()
        member.id = ids.next()
        member.groupID = group.id!
        member.botID = token.id!
        member.addedBy = addedBy
        member.addedAt = clock.now()
        try await member.create(on: db)
        try await postSystem("机器人「\(token.name)」已加入本群", to: group, on: db)
        if let context {
            try await audit.record("chat.bot.add", entityType: "chat_group", entityID: group.id, patientID: group.patientID,
                                   hospitalID: group.hospitalID, detail: token.id, context: context, on: db)
        } else {
            try await audit.record("chat.bot.add", entityType: "chat_group", entityID: group.id, patientID: group.patientID,
                                   hospitalID: group.hospitalID, detail: "\(token.id!) (ward rule)", actorKind: "system",
                                   actorID: nil, actorName: "patient group", clientAddress: nil, on: db)
        }
        try await notifier.signal(.chat, on: db)
    }

    private func groupForBotChange(_ groupID: String, action: String, context: RequestContext, on db: any Database) async throws -> ChatGroup {
        guard let group = try await ChatGroup.find(groupID, on: db) else { throw RoundsError.notFound("group", id: groupID) }
        var ward: Department?
        if let wardID = group.wardID { ward = try await Department.find(wardID, on: db) }
        guard let ward, context.principal.canEditGroupRules(in: ward.wardRef) else {
            try await audit.record(action, entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("bots are added to a patient group by the ward's head nurse or an administrator")
        }
        return group
    }

    static func validate(_ card: Card) throws {
        guard !card.title.trimmingCharacters(in: .whitespaces).isEmpty, card.title.count <= 200 else {
            throw RoundsError.validation("card.title: 1 to 200 characters")
        }
        guard card.fields.count <= 30 else { throw RoundsError.validation("card.fields: at most 30") }
        guard card.buttons.count <= 6 else { throw RoundsError.validation("card.buttons: at most 6") }
        for button in card.buttons {
            guard !button.label.isEmpty, button.label.count <= 40 else { throw RoundsError.validation("card.buttons.label: 1 to 40 characters") }
            switch (button.url, button.action) {
            case (let url?, nil):
                // Links stay inside Rounds or go to https: no javascript: or data: URLs on a ward PC.
                guard LinkCheck.isLocalPath(url) || LinkCheck.isHTTPSLink(url) else {
                    throw RoundsError.validation("card.buttons.url: a path in Rounds (/…) or an https:// link")
                }
            case (nil, let action?):
                guard !action.isEmpty, action.count <= 40, action.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                    throw RoundsError.validation("card.buttons.action: letters, digits and _ (at most 40)")
                }
            default:
                throw RoundsError.validation("card.buttons: each has either url or action")
            }
        }
    }

    /// A member presses an action button of a card. Recorded once per person and action; the
    /// bot that posted the card is called back.
    public func act(messageID: String, action: String, context: RequestContext, on db: any Database) async throws -> ChatAction {
        guard let message = try await ChatMessage.find(messageID, on: db) else { throw RoundsError.notFound("message", id: messageID) }
        guard let group = try await ChatGroup.find(message.groupID, on: db) else { throw RoundsError.notFound("group", id: message.groupID) }
        guard try await isMember(group, context, on: db) else {
            try await audit.record("chat.card.action", entityType: "chat_message", entityID: messageID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("only members of the group act on its cards")
        }
        guard let card = message.card.flatMap({ try? JSONDecoder().decode(Card.self, from: Data($0.utf8)) }),
              card.buttons.contains(where: { $0.action == action }) else {
            throw RoundsError.validation("action: the card has no '\(action)' button")
        }
        if let done = try await ChatAction.query(on: db).filter(\.$messageID == messageID).filter(\.$action == action)
            .filter(\.$staffID == context.principal.id).first() {
            return done  // pressing twice is one action
        }
        let recorded: ChatAction = try await db.transaction { tx in
            let row = ChatAction()
            row.id = ids.next()
            row.messageID = messageID
            row.groupID = group.id!
            row.action = action
            row.staffID = context.principal.id
            row.staffName = context.principal.displayName
            row.clientAddress = context.clientAddress
            row.at = clock.now()
            try await row.create(on: tx)
            // A button another capability owns acts in this transaction: refused, nothing is kept.
            if let owner = cardActions.handler(for: action) {
                try await owner.handle(CardActionPress(messageID: messageID, groupID: group.id!, patientID: group.patientID,
                                                       action: action, context: context), on: tx)
            }
            if let botID = message.botID, let bot = try await ChatBot.find(botID, on: tx), let url = bot.callbackURL {
                struct Payload: Encodable {
                    var event = "card.action"
                    var actionId: String, messageId: String, groupId: String, patientId: String?, action: String
                    var staffId: String, staffName: String, at: Date
                }
                let encoder = JSONEncoder()
                encoder.dateEncodingStrategy = .iso8601
                encoder.outputFormatting = [.sortedKeys]
                let body = try encoder.encode(Payload(actionId: row.id!, messageId: messageID, groupId: group.id!, patientId: group.patientID,
                                                      action: action, staffId: row.staffID, staffName: row.staffName, at: row.at))
                let callback = BotCallback()
                callback.id = ids.next()
                callback.botID = botID
                callback.url = url
                callback.body = String(decoding: body, as: UTF8.self)
                callback.status = "pending"
                callback.attempts = 0
                callback.nextAttemptAt = clock.now()
                callback.createdAt = clock.now()
                try await callback.create(on: tx)
            }
            try await audit.record("chat.card.action", entityType: "chat_message", entityID: messageID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, detail: action, context: context, on: tx)
            return row
        }
        return recorded
    }

    /// A bot replaces its card (e.g. turns it green once handled). The request is signed with
    /// the bot's secret; anything else is refused and nothing changes.
    public func updateCardAsBot(botID: String, messageID: String, body: Data, signature: String?, clientAddress: String?,
                                on db: any Database) async throws -> ChatMessage {
        guard let bot = try await ChatBot.find(botID, on: db), Self.verify(body, signature: signature, secret: bot.signingSecret) else {
            try await audit.record("chat.card.update", entityType: "chat_message", entityID: messageID, outcome: .denied,
                                   detail: "bad or missing signature", actorKind: "bot", actorID: botID, actorName: "bot \(botID)",
                                   clientAddress: clientAddress, on: db)
            throw RoundsError(code: "bad_signature", status: 401, zh: "签名无效", en: "The request signature is missing or wrong")
        }
        guard let token = try await APIToken.find(botID, on: db), token.revokedAt == nil else {
            throw RoundsError(code: "bad_signature", status: 401, zh: "签名无效", en: "The bot's token is revoked")
        }
        struct Update: Decodable { var card: Card }
        let update: Update
        do { update = try JSONDecoder().decode(Update.self, from: body) } catch {
            throw RoundsError.badJSON("body: {\"card\": {…}}")
        }
        try Self.validate(update.card)
        guard let message = try await ChatMessage.find(messageID, on: db), message.botID == botID else {
            throw RoundsError.notFound("card of this bot", id: messageID)
        }
        let group = try await ChatGroup.find(message.groupID, on: db)
        message.card = String(decoding: try JSONEncoder().encode(update.card), as: UTF8.self)
        message.text = update.card.title
        message.updatedAt = clock.now()
        try await notifier.transaction(on: db) { tx in
            try await message.save(on: tx)
            try await audit.record("chat.card.update", entityType: "chat_message", entityID: messageID, patientID: group?.patientID,
                                   hospitalID: group?.hospitalID, actorKind: "bot", actorID: botID, actorName: token.name,
                                   clientAddress: clientAddress, on: tx)
            try await notifier.signal(.messageUpdated(messageID), on: tx)
        }
        return message
    }

    /// Sends due bot callbacks; `post` performs the HTTP POST and returns the status code.
    @discardableResult
    public func deliverCallbacks(on db: any Database,
                                 post: @Sendable (_ url: String, _ headers: [String: String], _ body: Data) async throws -> Int) async throws -> Int {
        let due = try await BotCallback.query(on: db).filter(\.$status == "pending").filter(\.$nextAttemptAt <= clock.now())
            .sort(\.$createdAt).limit(50).all()
        for callback in due {
            let body = Data(callback.body.utf8)
            let secret = try await ChatBot.find(callback.botID, on: db)?.signingSecret ?? ""
            callback.attempts += 1
            do {
                let status = try await post(callback.url, ["Content-Type": "application/json", "X-Rounds-Event": "card.action",
                                                           "X-Rounds-Signature": Self.signature(body, secret: secret)], body)
                if (200..<300).contains(status) {
                    callback.status = "sent"
                    callback.sentAt = clock.now()
                    callback.lastError = nil
                } else {
                    callback.lastError = "HTTP \(status)"
                }
            } catch {
                callback.lastError = String(String(describing: error).prefix(300))
            }
            if callback.status == "pending" {
                if callback.attempts >= 8 { callback.status = "dead" } else {
                    callback.nextAttemptAt = clock.now().addingTimeInterval(min(300, pow(2, Double(callback.attempts))))
                }
            }
            try await callback.save(on: db)
        }
        return due.count
    }
}
