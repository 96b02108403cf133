import FluentKit
import Foundation
import RoundsCore
@testable import RoundsChat
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// Records the bot callbacks instead of sending them; answers with the scripted statuses.
final class CallbackRecorder: @unchecked Sendable {
    private let lock = NSLock()
    var statuses: [Int]
    private(set) var calls: [(url: String, headers: [String: String], body: Data)] = []

    init(statuses: [Int]) { self.statuses = statuses }

    func post(_ url: String, _ headers: [String: String], _ body: Data) -> Int {
        lock.withLock {
            calls.append((url, headers, body))
            return statuses.count > 1 ? statuses.removeFirst() : (statuses.first ?? 200)
        }
    }
}

/// Bots: a `bot` token posts cards; members press action buttons; the bot is called back with
/// a signed request and may update its card by a signed request of its own.
@Suite struct BotTests {
    struct Setup {
        var group: ChatGroup
        var bot: Client
        var botID: String
        var secret: String
    }

    static func setUp(_ app: Application, hospital: String = "HK01", join: Bool = true) async throws -> Setup {
        try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7"))
        let group = try await PatientGroupTests.group(app)
        let admin = Client(app)
        try await admin.login("admin")
        let hospitalID = try await Demo.hospital(hospital, app).id
        let issued = try await admin.json(.POST, "/api/v1/tokens", CreateTokenBody(name: "输血科机器人", scopes: [.bot], hospitalId: hospitalID, expiresAt: nil))
        let token = try issued.decode(TokenDTO.self)
        let configured = try await admin.json(.PUT, "/api/v1/bots/\(token.id)", ConfigureBotBody(callbackUrl: "https://bots.example/rounds"))
        #expect(configured.status == .ok)
        if join {
            #expect(try await admin.json(.PUT, "/api/v1/groups/\(group.id!)/bots/\(token.id)", [String: String]()).status == .ok)
        }
        let bot = Client(app)
        bot.bearer = try #require(token.secret)
        return Setup(group: group, bot: bot, botID: token.id, secret: try configured.decode(BotSecretDTO.self).signingSecret)
    }

    static let card = Card(title: "输血申请待确认", severity: .warning, fields: [.init("申请", "悬浮红细胞 2U")],
                           buttons: [.init(label: "确认", action: "acknowledge"), .init(label: "查看", url: "/patients/x")])

    @Test(arguments: Backend.all)
    func aBotCardIsActedOnAndTheBotIsCalledBackSigned(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let s = try await Self.setUp(app)
            let posted = try await s.bot.json(.POST, "/api/v1/groups/\(s.group.id!)/bot-messages", BotMessageBody(text: nil, card: Self.card))
            #expect(posted.status == .created)
            let message = try posted.decode(ChatMessageDTO.self)
            #expect(message.kind == "card" && message.senderName == "输血科机器人" && message.card == Self.card)

            // The nurse presses "确认"; pressing again is the same action.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let acted = try await nurse.json(.POST, "/api/v1/messages/\(message.id)/actions", ActionBody(action: "acknowledge"))
            #expect(acted.status == .ok)
            let action = try acted.decode(ActionDTO.self)
            #expect(action.staffName == "王芳")
            let again = try await nurse.json(.POST, "/api/v1/messages/\(message.id)/actions", ActionBody(action: "acknowledge"))
            #expect(try again.decode(ActionDTO.self).id == action.id)
            #expect(try await nurse.json(.POST, "/api/v1/messages/\(message.id)/actions", ActionBody(action: "delete_everything")).status == .unprocessableEntity)
            let stranger = Client(app)
            try await stranger.login("zhou.ting")
            #expect(try await stranger.json(.POST, "/api/v1/messages/\(message.id)/actions", ActionBody(action: "acknowledge")).status == .forbidden)

            // The callback: queued once, signed, retried after a failure.
            #expect(try await BotCallback.query(on: app.db).count() == 1)
            let recorder = CallbackRecorder(statuses: [503, 200])
            try await app.rounds.chat.deliverCallbacks(on: app.db) { url, headers, body in recorder.post(url, headers, body) }
            #expect(try await BotCallback.query(on: app.db).first()?.status == "pending")
            clock.advance(by: 2)
            try await app.rounds.chat.deliverCallbacks(on: app.db) { url, headers, body in recorder.post(url, headers, body) }
            #expect(try await BotCallback.query(on: app.db).first()?.status == "sent")
            #expect(recorder.calls.count == 2)
            let call = try #require(recorder.calls.last)
            #expect(call.url == "https://bots.example/rounds")
            #expect(ChatService.verify(call.body, signature: call.headers["X-Rounds-Signature"], secret: s.secret))
            let payload = try JSONSerialization.jsonObject(with: call.body) as? [String: Any]
            #expect(payload?["action"] as? String == "acknowledge" && payload?["staffName"] as? String == "王芳")
            #expect(payload?["messageId"] as? String == message.id)

            // The bot turns its card green, signing the request.
            let update = Data(#"{"card":{"title":"输血申请已确认","severity":"success","fields":[],"buttons":[]}}"#.utf8)
            let updated = try await s.bot.request(.PUT, "/api/v1/bots/\(s.botID)/cards/\(message.id)",
                                                  headers: ["Content-Type": "application/json", "X-Rounds-Signature": ChatService.signature(update, secret: s.secret)],
                                                  body: ByteBuffer(data: update))
            #expect(updated.status == .ok)
            #expect(try await ChatMessage.find(message.id, on: app.db)?.text == "输血申请已确认")
        }
    }

    @Test(arguments: Backend.all)
    func forgedCallbacksAndBadCardsAreRefused(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let s = try await Self.setUp(app)
            let posted = try await s.bot.json(.POST, "/api/v1/groups/\(s.group.id!)/bot-messages", BotMessageBody(text: nil, card: Self.card))
            let message = try posted.decode(ChatMessageDTO.self)

            // Forged: wrong secret, no signature, a signature for another body. Nothing changes.
            let update = Data(#"{"card":{"title":"HACKED","severity":"success","fields":[],"buttons":[]}}"#.utf8)
            let anonymous = Client(app)
            for signature in [ChatService.signature(update, secret: "guess"), nil, ChatService.signature(Data("{}".utf8), secret: s.secret)] {
                var headers: HTTPHeaders = ["Content-Type": "application/json"]
                if let signature { headers.add(name: "X-Rounds-Signature", value: signature) }
                let forged = try await anonymous.request(.PUT, "/api/v1/bots/\(s.botID)/cards/\(message.id)", headers: headers, body: ByteBuffer(data: update))
                #expect(forged.status == .unauthorized && forged.problemCode == "bad_signature")
            }
            #expect(try await ChatMessage.find(message.id, on: app.db)?.text == "输血申请待确认")
            let denied = try await AuditEvent.query(on: app.db).filter(\.$action == "chat.card.update").filter(\.$outcome == "denied").count()
            #expect(denied == 3)
            // A correctly signed body that is not a card.
            let junk = Data("not json".utf8)
            let bad = try await anonymous.request(.PUT, "/api/v1/bots/\(s.botID)/cards/\(message.id)",
                                                  headers: ["Content-Type": "application/json", "X-Rounds-Signature": ChatService.signature(junk, secret: s.secret)],
                                                  body: ByteBuffer(data: junk))
            #expect(bad.status == .badRequest)

            // Cards that could hurt or make no sense.
            let path = "/api/v1/groups/\(s.group.id!)/bot-messages"
            for card in [Card(title: "x", severity: .info, fields: [], buttons: [.init(label: "go", url: "javascript:alert(1)")]),
                         Card(title: "x", severity: .info, fields: [], buttons: [.init(label: "go", action: "rm -rf")]),
                         Card(title: "x", severity: .info, fields: [], buttons: [.init(label: "go")]),
                         Card(title: " ", severity: .info, fields: [], buttons: [])] {
                #expect(try await s.bot.json(.POST, path, BotMessageBody(text: nil, card: card)).status == .unprocessableEntity)
            }
            #expect(try await s.bot.json(.POST, path, BotMessageBody(text: nil, card: nil)).status == .unprocessableEntity)
            #expect(try await s.bot.json(.POST, "/api/v1/groups/nope/bot-messages", BotMessageBody(text: "hi", card: nil)).status == .notFound)
            // People post through the members' route, not as bots.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.json(.POST, path, BotMessageBody(text: "hi", card: nil)).status == .forbidden)
            #expect(try await ChatMessage.query(on: app.db).filter(\.$botID != nil).count() == 1)
        }
    }

    @Test func aBotOfAnotherHospitalCannotPost() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let s = try await Self.setUp(app, hospital: "HK02", join: false)
            // Nor can it be added to a group of this hospital.
            let admin = Client(app)
            try await admin.login("admin")
            #expect(try await admin.json(.PUT, "/api/v1/groups/\(s.group.id!)/bots/\(s.botID)", [String: String]()).status == .unprocessableEntity)
            let refused = try await s.bot.json(.POST, "/api/v1/groups/\(s.group.id!)/bot-messages", BotMessageBody(text: "hi", card: nil))
            #expect(refused.status == .forbidden)
            #expect(try await Demo.audit("chat.message.create", app).contains { $0.outcome == "denied" })
            // Only administrators configure bots.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.json(.PUT, "/api/v1/bots/\(s.botID)", ConfigureBotBody(callbackUrl: nil)).status == .forbidden)
        }
    }

    /// A token covering the whole installation still posts only into groups it was added to;
    /// the ward's head nurse adds and removes it (members see it join), a nurse cannot, and the
    /// ward's rule brings it into every new group.
    @Test(arguments: Backend.all)
    func botsPostOnlyWhereTheyAreMembers(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            let group = try await PatientGroupTests.group(app)
            let admin = Client(app)
            try await admin.login("admin")
            let issued = try await admin.json(.POST, "/api/v1/tokens", CreateTokenBody(name: "病理科机器人", scopes: [.bot], hospitalId: nil, expiresAt: nil))
            let token = try issued.decode(TokenDTO.self)
            let bot = Client(app)
            bot.bearer = try #require(token.secret)
            let path = "/api/v1/groups/\(group.id!)/bot-messages"

            let refused = try await bot.json(.POST, path, BotMessageBody(text: "病理报告已发布", card: nil))
            #expect(refused.status == .forbidden)
            #expect(try await Demo.audit("chat.message.create", app).contains { $0.outcome == "denied" && $0.detail == "bot is not a member" })

            // A nurse of the ward may not add it; the head nurse may.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.json(.PUT, "/api/v1/groups/\(group.id!)/bots/\(token.id)", [String: String]()).status == .forbidden)
            #expect(try await Demo.audit("chat.bot.add", app).contains { $0.outcome == "denied" })
            let headNurse = Client(app)
            try await headNurse.login("zhang.li")
            let added = try await headNurse.json(.PUT, "/api/v1/groups/\(group.id!)/bots/\(token.id)", [String: String]())
            #expect(added.status == .ok)
            #expect(try added.decode([GroupBotDTO].self).map(\.name) == ["病理科机器人"])
            #expect(try await headNurse.json(.PUT, "/api/v1/groups/\(group.id!)/bots/nope", [String: String]()).status == .unprocessableEntity)
            #expect(try await bot.json(.POST, path, BotMessageBody(text: "病理报告已发布", card: nil)).status == .created)
            let detail = try await nurse.get("/api/v1/groups/\(group.id!)").decode(GroupDetailDTO.self)
            #expect(detail.bots.map(\.botId) == [token.id])
            let notes = try await ChatMessage.query(on: app.db).filter(\.$groupID == group.id!).filter(\.$kind == "system").all(\.$text)
            #expect(notes.contains("机器人「病理科机器人」已加入本群"))

            // Removed: it posts no more.
            #expect(try await headNurse.json(.DELETE, "/api/v1/groups/\(group.id!)/bots/\(token.id)", [String: String]()).status == .ok)
            #expect(try await bot.json(.POST, path, BotMessageBody(text: "again", card: nil)).status == .forbidden)
            #expect(try await ChatMessage.query(on: app.db).filter(\.$botID != nil).count() == 1)

            // By the ward's rule, it joins the next patient's group (and only bot tokens may be named).
            let wardID = try #require(group.wardID)
            let rulePath = "/api/v1/wards/\(wardID)/group-rules"
            var rule = try await headNurse.get(rulePath).decode(ChatService.GroupRule.self)
            rule.botIds = ["not-a-bot"]
            #expect(try await headNurse.json(.PUT, rulePath, rule).status == .unprocessableEntity)
            rule.botIds = [token.id]
            #expect(try await headNurse.json(.PUT, rulePath, rule).status == .ok)
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7", controlID: "SECOND",
                                                                               ["PID-3": "MRN10099^^^ARION^MR", "PV1-19": "V20261121099", "PV1-3-2": "14"]))
            let groups = try await ChatGroup.query(on: app.db).filter(\.$id != group.id!).all()
            let second = try #require(groups.first)
            #expect(try await ChatBotMember.query(on: app.db).filter(\.$groupID == second.id!).all(\.$addedBy) == ["rule"])
            #expect(try await bot.json(.POST, "/api/v1/groups/\(second.id!)/bot-messages", BotMessageBody(text: "病理报告已发布", card: nil)).status == .created)
        }
    }
}
