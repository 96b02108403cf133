import FluentKit
import Foundation
import RoundsCore
import RoundsHL7
@testable import RoundsChat
@testable import RoundsDirectory
import RoundsIntegration
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// One patient, one group: HL7 admission opens it with the care team, order changes arrive as
/// cards, people read and write with receipts, transfer brings the new team, discharge archives.
@Suite struct PatientGroupTests {
    /// Delivers an HL7 message through the pipeline, then the outbox to chat.
    static func deliver(_ app: Application, _ message: HL7Message) async throws {
        let receipt = try #require(await app.rounds.hl7.receive(Array(message.encode().utf8), peer: "10.1.1.1", on: app.db))
        #expect(receipt.outcome == .accepted, "\(receipt.detail ?? "")")
        try await app.rounds.dispatchOutbox(on: app.db)
    }

    static func fixture(_ name: String, controlID: String? = nil, _ edits: [String: String] = [:]) throws -> HL7Message {
        var m = try HL7Message.parse(bytes: HL7Fixtures.bytes(name)).0
        if let controlID { try m.set("MSH-10", controlID) }
        for (path, value) in edits { try m.set(path, value) }
        return m
    }

    static func group(_ app: Application) async throws -> ChatGroup {
        let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())
        return try #require(try await ChatGroup.query(on: app.db).filter(\.$patientID == patient.id!).sort(\.$id, .descending).first())
    }

    static func memberNames(_ app: Application, _ group: ChatGroup) async throws -> Set<String> {
        Set(try await app.rounds.chat.members(of: group, on: app.db).map(\.1.username))
    }

    @Test(arguments: Backend.all)
    func admissionOpensTheGroupAndOrderChangesArriveAsCards(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            try await Self.deliver(app, Self.fixture("adt_a01_utf8.hl7"))
            let group = try await Self.group(app)
            #expect(group.name == "12床 · 王建国 · MRN10001" && group.status == "active")
            #expect(try await Self.memberNames(app, group) == ["li.ming", "zhang.li", "wang.fang", "liu.yang"])
            let reasons = Dictionary(uniqueKeysWithValues: try await app.rounds.chat.members(of: group, on: app.db).map { ($0.1.username, $0.0.reason) })
            #expect(reasons["li.ming"] == "attending" && reasons["zhang.li"] == "responsible_nurse" && reasons["wang.fang"] == "ward_nurse")

            // New order at 80 mg/m2, then the HIS changes it to 75.
            clock.advance(by: 60)
            try await Self.deliver(app, Self.fixture("orm_o01_change.hl7", controlID: "ORD-NW", ["ORC-1": "NW", "RXO-2": "80"]))
            clock.advance(by: 60)
            try await Self.deliver(app, Self.fixture("orm_o01_change.hl7"))

            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let groups = try await nurse.get("/api/v1/groups").decode([GroupDTO].self)
            #expect(groups.map(\.id) == [group.id!])
            #expect(groups.first?.unread == 3)  // admission note and two cards
            let messages = try await nurse.get("/api/v1/groups/\(group.id!)/messages").decode([ChatMessageDTO].self)
            #expect(messages.map(\.kind) == ["system", "card", "card"])
            let change = try #require(messages.last?.card)
            #expect(change.title == "医嘱变更 · 顺铂" && change.severity == .warning)
            #expect(change.fields.contains(Card.Field("剂量", "80 → 75")))
            #expect(change.fields.contains(Card.Field("医生", "李明")))
            #expect(change.buttons.first?.url?.hasSuffix("#orders") == true)

            // Catch-up after a reconnect: only what came after the last id seen.
            let after = try await nurse.get("/api/v1/groups/\(group.id!)/messages?after=\(messages[1].id)").decode([ChatMessageDTO].self)
            #expect(after.map(\.id) == [messages[2].id])

            // The doctor reads; the nurse sees it in the receipts.
            let doctor = Client(app)
            try await doctor.login("li.ming")
            let read = try await doctor.json(.POST, "/api/v1/groups/\(group.id!)/read", ReadBody(upTo: messages[2].id))
            #expect(try read.decode(ReadResultDTO.self).marked == 3)
            let receipts = try await nurse.get("/api/v1/messages/\(messages[2].id)/receipts").decode([ReceiptDTOChat].self)
            #expect(receipts.map(\.name) == ["李明"])
            #expect(try await doctor.get("/api/v1/groups").decode([GroupDTO].self).first?.unread == 0)

            // The nurse writes, replying to the card; the doctor has one unread.
            let posted = try await nurse.json(.POST, "/api/v1/groups/\(group.id!)/messages", PostMessageBody(text: "已调整，补液 2L 已开始", replyTo: messages[2].id))
            #expect(posted.status == .created)
            let mine = try posted.decode(ChatMessageDTO.self)
            #expect(mine.senderName == "王芳" && mine.replyToId == messages[2].id)
            #expect(try await doctor.get("/api/v1/groups").decode([GroupDTO].self).first?.unread == 1)
            #expect(try await nurse.get("/api/v1/groups").decode([GroupDTO].self).first?.unread == 0)
            #expect(try await Demo.audit("chat.message.create", app).count == 1)
            #expect(try await Demo.audit("chat.message.list", app).count == 2)

            // Dispatching again changes nothing: each event was delivered once.
            #expect(try await app.rounds.dispatchOutbox(on: app.db) == 0)
            #expect(try await ChatMessage.query(on: app.db).filter(\.$kind == "card").count() == 2)
            #expect(try await OutboxEvent.query(on: app.db).filter(\.$dispatchedAt == nil).count() == 0)
        }
    }

    @Test(arguments: Backend.all)
    func transferBringsTheNewTeamAndDischargeArchives(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            try await Self.deliver(app, Self.fixture("adt_a01_utf8.hl7"))
            try await Self.deliver(app, Self.fixture("adt_a02_transfer.hl7"))
            let group = try await Self.group(app)
            #expect(group.name == "3床 · 王建国 · MRN10001")
            #expect(try await Self.memberNames(app, group) == ["li.ming", "zhang.li", "wang.fang", "liu.yang", "zhao.qiang", "xu.jing", "han.mei"])
            let notes = try await ChatMessage.query(on: app.db).filter(\.$groupID == group.id!).filter(\.$kind == "system").all().map(\.text)
            #expect(notes.contains { $0.hasPrefix("转科：LUNG 12 →") })

            // Discharge: archived, read-only, still readable.
            var a03 = try Self.fixture("adt_a02_transfer.hl7", controlID: "DIS1", ["MSH-9-2": "A03", "EVN-1": "A03"])
            try a03.set("PV1-6", "")
            try await Self.deliver(app, a03)
            let archived = try await Self.group(app)
            #expect(archived.status == "archived" && archived.archivedAt != nil)
            let nurse = Client(app)
            try await nurse.login("han.mei")
            let refused = try await nurse.json(.POST, "/api/v1/groups/\(group.id!)/messages", PostMessageBody(text: "still here?", replyTo: nil))
            #expect(refused.status == .conflict)
            #expect(try await nurse.get("/api/v1/groups/\(group.id!)/messages").status == .ok)
            // Archived groups stay searchable, by name and by what was said.
            let found = try await nurse.get("/api/v1/groups?q=MRN10001").decode([GroupDTO].self)
            #expect(found.map(\.id) == [group.id!] && found.first?.status == "archived")
            #expect(try await nurse.get("/api/v1/groups?q=%E8%BD%AC%E7%A7%91").decode([GroupDTO].self).map(\.id) == [group.id!])  // 转科
            #expect(try await nurse.get("/api/v1/groups?q=nothing-like-this").decode([GroupDTO].self).isEmpty)

            // Re-admission: a new group, linked to the previous one.
            try await Self.deliver(app, Self.fixture("adt_a01_utf8.hl7", controlID: "READMIT", ["PV1-19": "V20261201009"]))
            let again = try await Self.group(app)
            #expect(again.id != group.id && again.previousGroupID == group.id && again.status == "active")
        }
    }

    @Test(arguments: Backend.all)
    func outsidersAreRefusedAndBadInputIsRejected(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            try await Self.deliver(app, Self.fixture("adt_a01_utf8.hl7"))
            let group = try await Self.group(app)
            let firstMessage = try #require(try await ChatMessage.query(on: app.db).filter(\.$groupID == group.id!).first())

            // A nurse of another ward: no group, no messages, no receipts, no writing — each audited.
            let stranger = Client(app)
            try await stranger.login("zhou.ting")
            #expect(try await stranger.get("/api/v1/groups").decode([GroupDTO].self).isEmpty)
            #expect(try await stranger.get("/api/v1/groups/\(group.id!)").status == .forbidden)
            #expect(try await stranger.get("/api/v1/groups/\(group.id!)/messages").status == .forbidden)
            #expect(try await stranger.get("/api/v1/messages/\(firstMessage.id!)/receipts").status == .forbidden)
            #expect(try await stranger.json(.POST, "/api/v1/groups/\(group.id!)/messages", PostMessageBody(text: "hi", replyTo: nil)).status == .forbidden)
            #expect(try await stranger.json(.POST, "/api/v1/groups/\(group.id!)/read", ReadBody(upTo: firstMessage.id!)).status == .forbidden)
            let denied = try await AuditEvent.query(on: app.db).filter(\.$outcome == "denied").filter(\.$actorName == "周婷").all()
            #expect(Set(denied.map(\.action)) == ["chat.group.read", "chat.message.list", "chat.receipt.list", "chat.message.create", "chat.message.read"])
            #expect(denied.allSatisfy { $0.patientID == group.patientID })

            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let path = "/api/v1/groups/\(group.id!)/messages"
            let empty = try await nurse.json(.POST, path, PostMessageBody(text: "   ", replyTo: nil))
            #expect(empty.status == .unprocessableEntity && empty.problemCode == "validation_failed")
            let long = try await nurse.json(.POST, path, PostMessageBody(text: String(repeating: "长", count: 4001), replyTo: nil))
            #expect(long.status == .payloadTooLarge)
            #expect(try await nurse.json(.POST, path, PostMessageBody(text: "re", replyTo: "nope")).status == .unprocessableEntity)
            #expect(try await nurse.raw(.POST, path, "{\"text\":").status == .badRequest)
            #expect(try await nurse.json(.POST, "/api/v1/groups/unknown/messages", PostMessageBody(text: "hi", replyTo: nil)).status == .notFound)
            #expect(try await nurse.get("/api/v1/groups/unknown/messages").status == .notFound)
            #expect(try await nurse.json(.POST, "/api/v1/groups/\(group.id!)/read", ReadBody(upTo: "nope")).status == .unprocessableEntity)
            #expect(try await ChatMessage.query(on: app.db).filter(\.$kind == "text").count() == 0)

            // Hospital-wide quality control may read (audited) but not write.
            let qc = Client(app)
            try await qc.login("zhu.lin")
            #expect(try await qc.get(path).status == .ok)
            #expect(try await qc.json(.POST, path, PostMessageBody(text: "QC", replyTo: nil)).status == .forbidden)
        }
    }

    @Test func aFailingEventIsRetriedThenSetAside() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let event = OutboxEvent()
            event.id = app.rounds.configuration.ids.next()
            event.kind = "order.changed"
            event.patientID = "p"
            event.payload = "{not json"
            event.createdAt = Date()
            event.attempts = 0
            try await event.create(on: app.db)
            var dispatcher = app.rounds.outbox
            dispatcher.maximumAttempts = 2
            let chat = app.rounds.chat
            for _ in 0..<2 { try await dispatcher.dispatchPending(on: app.db) { e, tx in try await chat.handle(e, on: tx) } }
            let stored = try #require(try await OutboxEvent.find(event.id, on: app.db))
            #expect(stored.attempts == 2 && stored.lastError != nil && stored.dispatchedAt != nil)
        }
    }

    @Test func theGroupPagesWorkWithoutJavaScript() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            try await Self.deliver(app, Self.fixture("adt_a01_utf8.hl7"))
            try await Self.deliver(app, Self.fixture("orm_o01_change.hl7"))
            let group = try await Self.group(app)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let list = try await nurse.page("/groups")
            #expect(list.status == .ok && list.body.string.contains("12床 · 王建国 · MRN10001"))
            #expect(list.body.string.contains("class=\"badge unread\""))
            let page = try await nurse.page("/groups/\(group.id!)")
            #expect(page.status == .ok)
            let html = page.body.string
            #expect(html.contains("医嘱变更 · 顺铂") && html.contains("bot-card sev-warning") && html.contains("青霉素"))
            #expect(html.contains("主管医生") && html.contains("id=\"composer\""))
            // Opening the page (a GET) reads nothing; without JavaScript the nurse says so with a button.
            #expect(try await nurse.get("/api/v1/groups").decode([GroupDTO].self).first?.unread ?? 0 > 0)
            let upTo = try #require(html.range(of: "name=\"upTo\" value=\"").map { String(html[$0.upperBound...].prefix { $0 != "\"" }) })
            #expect(try await nurse.form("/groups/\(group.id!)/read", ["upTo": upTo]).status == .seeOther)
            #expect(try await nurse.get("/api/v1/groups").decode([GroupDTO].self).first?.unread == 0)
            // The form posts a message and comes back to the group.
            let posted = try await nurse.form("/groups/\(group.id!)/messages", ["text": "<b>收到</b>"])
            #expect(posted.status == .seeOther)
            let again = try await nurse.page("/groups/\(group.id!)").body.string
            #expect(again.contains("&lt;b&gt;收到&lt;/b&gt;") && !again.contains("<b>收到</b>"))  // escaped
            let empty = try await nurse.form("/groups/\(group.id!)/messages", ["text": " "])
            #expect(empty.status == .seeOther && empty.headers.first(name: .location)?.contains("error=") == true)

            let stranger = Client(app)
            try await stranger.login("zhou.ting")
            #expect(try await stranger.page("/groups/\(group.id!)").status == .forbidden)
            #expect(try await stranger.form("/groups/\(group.id!)/messages", ["text": "hi"]).status == .forbidden)
        }
    }

    @Test func seededStaysGetTheirGroups() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let opened = try await app.rounds.chat.openGroupsForActiveStays(on: app.db)
            #expect(opened == 28)
            #expect(try await app.rounds.chat.openGroupsForActiveStays(on: app.db) == 0)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let groups = try await nurse.get("/api/v1/groups").decode([GroupDTO].self)
            #expect(groups.count == 8)  // her ward's eight patients
        }
    }

    @Test(arguments: Backend.all)
    func editRecallAndMentionsKeepTheirHistory(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            try await Self.deliver(app, Self.fixture("adt_a01_utf8.hl7"))
            let group = try await Self.group(app)
            let nurse = Client(app), doctor = Client(app)
            try await nurse.login("wang.fang")
            try await doctor.login("li.ming")
            let path = "/api/v1/groups/\(group.id!)/messages"
            let first = try await nurse.json(.POST, path, PostMessageBody(text: "@李明 请看 12 床血钾", replyTo: nil)).decode(ChatMessageDTO.self)
            let doctorID = try await Demo.staff("li.ming", app).id!
            #expect(first.mentions == [doctorID])
            let doctorsView = try await doctor.get("/api/v1/groups").decode([GroupDTO].self)
            #expect(doctorsView.first?.mentioned == true)

            // Edit within the window; the earlier text stays in the history.
            clock.advance(by: 60)
            let edited = try await nurse.json(.PATCH, "/api/v1/messages/\(first.id)", EditBody(text: "@李明 请看 12 床血钾（6.9）"))
            #expect(edited.status == .ok)
            #expect(try edited.decode(ChatMessageDTO.self).editedAt != nil)
            let history = try await doctor.get("/api/v1/messages/\(first.id)/history").decode([EditDTO].self)
            #expect(history.map(\.previousText) == ["@李明 请看 12 床血钾"])
            // Only the sender edits; not after the window.
            #expect(try await doctor.json(.PATCH, "/api/v1/messages/\(first.id)", EditBody(text: "x")).status == .forbidden)
            clock.advance(by: 15 * 60)
            #expect(try await nurse.json(.PATCH, "/api/v1/messages/\(first.id)", EditBody(text: "late")).status == .conflict)
            #expect(try await nurse.request(.DELETE, "/api/v1/messages/\(first.id)", headers: ["X-CSRF-Token": nurse.csrf ?? ""]).status == .conflict)

            // Recall within two minutes: shown as recalled, text kept in the history.
            let second = try await nurse.json(.POST, path, PostMessageBody(text: "发错了", replyTo: nil)).decode(ChatMessageDTO.self)
            clock.advance(by: 30)
            let recalled = try await nurse.request(.DELETE, "/api/v1/messages/\(second.id)", headers: ["X-CSRF-Token": nurse.csrf ?? ""])
            #expect(recalled.status == .ok)
            let after = try await doctor.get("/api/v1/groups/\(group.id!)/messages").decode([ChatMessageDTO].self)
            let shown = try #require(after.first { $0.id == second.id })
            #expect(shown.recalled && shown.text.isEmpty)
            #expect(try await doctor.get("/api/v1/messages/\(second.id)/history").decode([EditDTO].self).map(\.change) == ["recall"])
            #expect(try await Demo.audit("chat.message.recall", app).count == 1)
            let page = try await doctor.page("/groups/\(group.id!)").body.string
            #expect(page.contains("撤回了一条消息") && page.contains("（已编辑）") && !page.contains("发错了"))
            // Bot cards and system notes are not anyone's to edit.
            let note = try #require(after.first { $0.kind == "system" })
            #expect(try await nurse.json(.PATCH, "/api/v1/messages/\(note.id)", EditBody(text: "x")).status == .forbidden)
        }
    }

    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]

    @Test(arguments: Backend.all)
    func filesAreCheckedStoredAndOnlyShownToTheCareTeam(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            try await Self.deliver(app, Self.fixture("adt_a01_utf8.hl7"))
            try await Self.deliver(app, Self.fixture("mdm_t02_pathology_pdf.hl7"))
            let group = try await Self.group(app)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let path = "/api/v1/groups/\(group.id!)/attachments"
            func upload(_ bytes: [UInt8], type: String, name: String = "伤口照片.png") async throws -> TestingHTTPResponse {
                try await nurse.request(.POST, path, headers: ["Content-Type": type, "X-Filename": name.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!,
                                                              "X-CSRF-Token": nurse.csrf ?? "", "Accept": "application/json"],
                                        body: ByteBuffer(bytes: bytes))
            }
            let posted = try await upload(Self.png, type: "image/png")
            #expect(posted.status == .created)
            let message = try posted.decode(ChatMessageDTO.self)
            #expect(message.kind == "file" && message.text == "伤口照片.png")
            let attachmentID = try #require(message.attachmentId)

            let doctor = Client(app)
            try await doctor.login("li.ming")
            let file = try await doctor.request(.GET, "/attachments/\(attachmentID)")
            #expect(file.status == .ok && file.headers.contentType?.serialize() == "image/png")
            #expect(Array(buffer: file.body) == Self.png)
            #expect(file.headers.first(name: "X-Content-Type-Options") == "nosniff")

            // Refused, and nothing stored: a lie about the type, a type a browser should not open,
            // nothing at all, too much.
            let before = try await Attachment.query(on: app.db).count()
            #expect(try await upload(Array("<script>alert(1)</script>".utf8), type: "image/png").status == .unsupportedMediaType)
            #expect(try await upload(Array("<html>".utf8), type: "text/html").status == .unsupportedMediaType)
            #expect(try await upload([], type: "image/png").status == .unprocessableEntity)
            let big = Self.png + [UInt8](repeating: 0, count: ChatService.maximumAttachmentSize)
            let tooBig = try await upload(big, type: "image/png")
            #expect(tooBig.status == .payloadTooLarge)
            #expect(try await Attachment.query(on: app.db).count() == before)

            // Another ward's nurse: neither the photo nor the pathology PDF; each attempt audited.
            let stranger = Client(app)
            try await stranger.login("zhou.ting")
            #expect(try await stranger.request(.GET, "/attachments/\(attachmentID)").status == .forbidden)
            let report = try #require(try await ClinicalReport.query(on: app.db).first())
            let pdf = try #require(report.attachmentID)
            #expect(try await stranger.request(.GET, "/attachments/\(pdf)").status == .forbidden)
            let denied = try await AuditEvent.query(on: app.db).filter(\.$outcome == "denied").filter(\.$actorName == "周婷").all()
            #expect(denied.count == 2 && denied.allSatisfy { $0.patientID == group.patientID })
            #expect(try await stranger.request(.POST, path, headers: ["Content-Type": "image/png", "X-CSRF-Token": stranger.csrf ?? ""],
                                               body: ByteBuffer(bytes: Self.png)).status == .forbidden)
            // The care team opens the report PDF from its card.
            let opened = try await nurse.request(.GET, "/attachments/\(pdf)")
            #expect(opened.status == .ok && opened.headers.contentType?.serialize() == "application/pdf")
            #expect(try await Demo.audit("attachment.read", app).filter { $0.outcome == "success" }.count == 2)
        }
    }

    @Test(arguments: Backend.all)
    func theHeadNurseDecidesWhoJoinsHerWardsGroups(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let lung = try await Demo.department("LUNG", app)
            let consultant = try await Demo.staff("yang.guang", app)
            let path = "/api/v1/wards/\(lung.id!)/group-rules"
            let headNurse = Client(app)
            try await headNurse.login("zhang.li")
            #expect(try await headNurse.get(path).decode(ChatService.GroupRule.self) == .standard)
            let rule = ChatService.GroupRule(headNurses: true, wardNurses: false, wardDoctors: true, extraStaffIds: [consultant.id!])
            let saved = try await headNurse.json(.PUT, path, rule)
            #expect(saved.status == .ok)
            #expect(try await Demo.audit("chat.rule.update", app).count == 1)

            try await Self.deliver(app, Self.fixture("adt_a01_utf8.hl7"))
            let group = try await Self.group(app)
            #expect(try await Self.memberNames(app, group) == ["li.ming", "zhang.li", "chen.jing", "yang.guang"])

            // A nurse may read the rule, not change it; nonsense is refused.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.get(path).status == .ok)
            #expect(try await nurse.json(.PUT, path, ChatService.GroupRule.standard).status == .forbidden)
            let bad = ChatService.GroupRule(headNurses: true, wardNurses: true, wardDoctors: false, extraStaffIds: ["nobody"])
            #expect(try await headNurse.json(.PUT, path, bad).status == .unprocessableEntity)
            // Another ward's head nurse cannot touch it.
            let other = Client(app)
            try await other.login("sun.lin")
            #expect(try await other.json(.PUT, path, ChatService.GroupRule.standard).status == .forbidden)
            #expect(try await headNurse.get("/api/v1/wards/nope/group-rules").status == .notFound)
        }
    }

    @Test func cardButtonsLeadToThePatientsOrdersResultsAndReports() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            for name in ["adt_a01_utf8.hl7", "orm_o01_change.hl7", "oru_r01_critical_k.hl7", "mdm_t02_pathology_pdf.hl7"] {
                try await Self.deliver(app, Self.fixture(name))
            }
            let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())
            let cards = try await ChatMessage.query(on: app.db).filter(\.$kind == "card").all()
                .compactMap { $0.card.flatMap { try? JSONDecoder().decode(Card.self, from: Data($0.utf8)) } }
            let links = Set(cards.flatMap(\.buttons).compactMap(\.url))
            #expect(links.contains("/patients/\(patient.id!)#orders") && links.contains("/patients/\(patient.id!)#results"))
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let html = try await nurse.page("/patients/\(patient.id!)").body.string
            #expect(html.contains("id=\"orders\"") && html.contains("ORD7788") && html.contains("顺铂"))
            #expect(html.contains("id=\"results\"") && html.contains("6.9 mmol/L") && html.contains("class=\"critical\""))
            #expect(html.contains("id=\"reports\"") && html.contains("DOC3344") && html.contains("/attachments/"))
        }
    }
}


@Suite struct GroupRulePageTests {
    /// The head nurse sets who joins her ward's new groups on a page; a nurse reads it; the
    /// rule is what the API then says.
    @Test(arguments: Backend.all)
    func theHeadNurseEditsTheWardsGroupRuleOnAPage(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let ward = try await Demo.department("LUNG", app)
            let doctor = try await Demo.staff("li.ming", app)
            let head = Client(app)
            try await head.login("zhang.li")
            let page = try await head.page("/wards/\(ward.id!)/group-rules")
            #expect(page.status == .ok && page.body.string.contains("本病区医生") && page.body.string.contains("李明"))
            #expect(try await head.page("/wards/\(ward.id!)/nursing").body.string.contains("/wards/\(ward.id!)/group-rules"))
            let saved = try await head.request(.POST, "/wards/\(ward.id!)/group-rules", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                                               body: ByteBuffer(string: "_csrf=\(head.csrf!)&roles[]=headNurses&roles[]=wardDoctors&staff[]=\(doctor.id!)"))
            #expect(saved.status == .seeOther && saved.headers.first(name: .location)?.contains("done=1") == true)
            let rule = try await head.get("/api/v1/wards/\(ward.id!)/group-rules").decode(ChatService.GroupRule.self)
            #expect(rule.headNurses && rule.wardDoctors && !rule.wardNurses && rule.extraStaffIds == [doctor.id!])
            #expect(try await Demo.audit("chat.rule.update", app).contains { $0.outcome == "success" })

            // A nurse of the ward reads it (boxes disabled, no save button) and cannot save.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let readOnly = try await nurse.page("/wards/\(ward.id!)/group-rules").body.string
            #expect(readOnly.contains("disabled") && !readOnly.contains("id=\"save-rule\""))
            #expect(!(try await nurse.page("/wards/\(ward.id!)/nursing").body.string.contains("/group-rules")))
            let refused = try await nurse.request(.POST, "/wards/\(ward.id!)/group-rules", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                                                  body: ByteBuffer(string: "_csrf=\(nurse.csrf!)&roles[]=wardNurses"))
            #expect(refused.status == .forbidden)
            #expect(try await head.get("/api/v1/wards/\(ward.id!)/group-rules").decode(ChatService.GroupRule.self) == rule)
        }
    }
}

@Suite struct PatientSearchTests {
    /// One box, for everyone who may see patients: by name, MRN or bed; only their wards'
    /// patients; a single hit opens the patient; searching is audited.
    @Test(arguments: Backend.all)
    func findAPatientByNameMRNOrBed(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let lung = try await Demo.patient(onWard: "LUNG", app)
            let icu = try await Demo.patient(onWard: "ICU", app)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.page("/").body.string.contains("id=\"patient-search\""))
            let byMRN = try await nurse.page("/patients?q=\(lung.mrn)")
            #expect(byMRN.status == .seeOther && byMRN.headers.first(name: .location) == "/patients/\(lung.id!)")
            let family = String(lung.name.prefix(1))
            let byName = try await nurse.page("/patients?q=\(Client.encode(family))")
            #expect(byName.status == .ok || byName.status == .seeOther)
            if byName.status == .ok { #expect(byName.body.string.contains(lung.name) && byName.body.string.contains("search-results")) }
            // Another ward's patient is not found by her, but by quality control.
            let hidden = try await nurse.page("/patients?q=\(icu.mrn)")
            #expect(hidden.status == .ok && hidden.body.string.contains("search-empty"))
            let qc = Client(app)
            try await qc.login("zhu.lin")
            #expect(try await qc.page("/patients?q=\(icu.mrn)").headers.first(name: .location) == "/patients/\(icu.id!)")
            #expect(try await Demo.audit("patient.search", app).count >= 4)
            // IT sees no patients: no box.
            let it = Client(app)
            try await it.login("hu.bin")
            #expect(!(try await it.page("/integration").body.string.contains("id=\"patient-search\"")))
        }
    }
}
