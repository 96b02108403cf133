import FluentKit
import Foundation
import NIOCore
import RoundsCore
import RoundsHL7
@testable import RoundsIntegration
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// The message store API and pages: who may see what, the parsed tree, raw bytes, replay,
/// export, HL7 over HTTP and the outbound queue — each audited.
@Suite struct MessageStoreTests {
    static func deliver(_ app: Application, _ names: [String]) async throws -> [String: String] {
        var ids: [String: String] = [:]
        for name in names {
            let receipt = try #require(await app.rounds.hl7.receive(try HL7Fixtures.bytes(name), peer: "10.1.1.1", on: app.db))
            ids[name] = receipt.messageID
        }
        return ids
    }

    @Test(arguments: Backend.all)
    func itStaffFindAndReadMessagesOfTheirHospitalOnly(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let ids = try await Self.deliver(app, ["adt_a01_utf8.hl7", "oru_r01_critical_k.hl7", "custom_delimiters.hl7"])
            let it = Client(app)
            try await it.login("hu.bin")  // IT, 总院 (facility ARION)

            let all = try await it.get("/api/v1/hl7/messages")
            #expect(all.status == .ok)
            // custom_delimiters names facility SITE, which no hospital claims: IT sees it, to map it.
            #expect(try all.decode([HL7MessageDTO].self).map(\.controlId) == ["MSG00006", "MSG00004", "MSG00001"])
            let adt = try await it.get("/api/v1/hl7/messages?type=ADT&mrn=MRN10001")
            #expect(try adt.decode([HL7MessageDTO].self).map(\.messageType) == ["ADT^A01"])
            #expect(try await it.get("/api/v1/hl7/messages?status=error").decode([HL7MessageDTO].self).map(\.controlId) == ["MSG00006"])

            let detail = try await it.get("/api/v1/hl7/messages/\(ids["adt_a01_utf8.hl7"]!)")
            #expect(detail.status == .ok)
            let tree = try detail.decode(HL7MessageDetailDTO.self)
            let pid = try #require(tree.segments.first { $0.name == "PID" })
            #expect(pid.description == "Patient Identification")
            let name = try #require(pid.fields.first { $0.position == "PID-5" })
            #expect(name.name == "Patient Name" && name.components.prefix(2) == ["王", "建国"])
            #expect(tree.text.hasPrefix("MSH|^~\\&|HIS|ARION"))

            let raw = try await it.request(.GET, "/api/v1/hl7/messages/\(ids["adt_a01_utf8.hl7"]!)/raw")
            let fixture = try HL7Fixtures.bytes("adt_a01_utf8.hl7")
            #expect(raw.status == .ok && Array(buffer: raw.body) == fixture)

            let reads = try await Demo.audit("hl7.message.read", app)
            #expect(reads.count == 2)
            #expect(reads.allSatisfy { $0.actorName == "胡斌" && $0.entityID == ids["adt_a01_utf8.hl7"] && $0.patientID != nil })
            #expect(try await Demo.audit("hl7.message.list", app).count == 4)  // her landing page (the store) and three searches

            // The east campus administrator sees none of the main hospital's messages, only the
            // one no hospital claims.
            let east = Client(app)
            try await east.login("luo.jie")
            #expect(try await east.get("/api/v1/hl7/messages").decode([HL7MessageDTO].self).map(\.controlId) == ["MSG00006"])
            #expect(try await east.get("/api/v1/hl7/messages/\(ids["adt_a01_utf8.hl7"]!)").status == .notFound)
            #expect(try await east.get("/api/v1/hl7/messages/\(ids["custom_delimiters.hl7"]!)").status == .ok)

            // The group administrator sees all three.
            let admin = Client(app)
            try await admin.login("admin")
            #expect(try await admin.get("/api/v1/hl7/messages").decode([HL7MessageDTO].self).count == 3)
        }
    }

    @Test(arguments: Backend.all)
    func cliniciansMayNotUseTheMessageStore(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let ids = try await Self.deliver(app, ["adt_a01_utf8.hl7"])
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.get("/api/v1/hl7/messages").status == .forbidden)
            #expect(try await nurse.get("/api/v1/hl7/messages/\(ids.values.first!)").status == .forbidden)
            #expect(try await nurse.request(.GET, "/api/v1/hl7/messages/\(ids.values.first!)/raw").status == .forbidden)
            #expect(try await nurse.page("/integration").status == .forbidden)
            #expect(try await nurse.json(.POST, "/api/v1/hl7/outbound", EnqueueOutboundBody(host: "h", port: 1, message: "MSH|^~\\&|A")).status == .forbidden)
            let denied = try await AuditEvent.query(on: app.db).filter(\.$outcome == "denied").all()
            #expect(denied.contains { $0.action == "hl7.message.list" && $0.actorName == "王芳" })
            #expect(try await nurse.get("/api/v1/hl7/messages/unknown-id").status == .forbidden)

            let anonymous = Client(app)
            #expect(try await anonymous.get("/api/v1/hl7/messages").status == .unauthorized)
        }
    }

    @Test(arguments: Backend.all)
    func aFailedMessageIsReplayedOnceTheCauseIsFixed(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let ids = try await Self.deliver(app, ["custom_delimiters.hl7"])
            let failed = try #require(ids["custom_delimiters.hl7"])
            #expect(try await HL7MessageRecord.find(failed, on: app.db)?.status == "error")

            let admin = Client(app)
            try await admin.login("admin")
            // Still failing: the replay is stored too, with the same reason.
            let again = try await admin.request(.POST, "/api/v1/hl7/messages/\(failed)/replay", headers: ["X-CSRF-Token": admin.csrf ?? ""])
            let stillFailing = try again.decode(ReceiptDTO.self)
            #expect(stillFailing.outcome == "error")
            // …and linked to the message it replays, like a successful replay.
            #expect(try await HL7MessageRecord.find(stillFailing.messageId, on: app.db)?.replayOf == failed)

            // IT sets the lab's facility code on the east hospital; the replay now applies.
            let east = try await Demo.hospital("HK02", app)
            east.hl7Facility = "SITE"
            try await east.save(on: app.db)
            // Before the patient is registered there, the replay would be held: register her.
            try await Patient(id: "p-anne", hospitalID: east.id!, mrn: "MRN20002", name: "Anne Smith", gender: .female,
                              birthDate: "1980-01-01", allergies: nil, createdAt: Date()).create(on: app.db)
            let replay = try await admin.request(.POST, "/api/v1/hl7/messages/\(failed)/replay", headers: ["X-CSRF-Token": admin.csrf ?? ""])
            #expect(replay.status == .ok)
            let receipt = try replay.decode(ReceiptDTO.self)
            #expect(receipt.outcome == "accepted")
            let replayed = try #require(try await HL7MessageRecord.find(receipt.messageId, on: app.db))
            #expect(replayed.replayOf == failed && replayed.status == "accepted")
            let observation = try #require(try await Observation.query(on: app.db).filter(\.$code == "GLU").first())
            #expect(observation.value == "Value with # and * escaped")
            #expect(try await Demo.audit("hl7.message.replay", app).count == 2)
            // The original keeps its own history.
            #expect(try await HL7MessageRecord.find(failed, on: app.db)?.status == "error")
            // Without the CSRF token a cookie session cannot replay.
            #expect(try await admin.request(.POST, "/api/v1/hl7/messages/\(failed)/replay").status == .forbidden)
        }
    }

    @Test func exportGivesOneFileOfTheMatchingMessages() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            _ = try await Self.deliver(app, ["adt_a01_utf8.hl7", "oru_r01_critical_k.hl7", "orm_o01_change.hl7"])
            let admin = Client(app)
            try await admin.login("admin")
            let export = try await admin.request(.GET, "/api/v1/hl7/export?type=OR")
            #expect(export.status == .ok)
            #expect(export.headers.first(name: .contentType) == "application/hl7-v2")
            let messages = HL7Sender.messages(inFile: Array(buffer: export.body))
            // Oldest first; both the ORU and the ORM, not the ADT.
            #expect(messages.compactMap { try? HL7Message.parse(bytes: $0).0.controlID } == ["MSG00004", "MSG00003"])
            #expect(try await admin.get("/api/v1/hl7/export?from=not-a-date").status == .badRequest)
        }
    }

    @Test(arguments: Backend.all)
    func hl7OverHTTPForSystemsWithoutMLLP(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let admin = Client(app)
            try await admin.login("admin")
            let issued = try await admin.json(.POST, "/api/v1/tokens", CreateTokenBody(name: "LIS", scopes: [.integration], hospitalId: main.id, expiresAt: nil))
            let lis = Client(app)
            lis.bearer = try #require(try issued.decode(TokenDTO.self).secret)

            let sent = try await lis.request(.POST, "/api/v1/hl7/inbound", headers: ["Content-Type": "application/hl7-v2"],
                                             body: ByteBuffer(bytes: try HL7Fixtures.bytes("adt_a01_utf8.hl7")))
            #expect(sent.status == .ok)
            #expect(try HL7Message.parse(bytes: Array(buffer: sent.body)).0["MSA-1"] == "AA")
            let junk = try await lis.request(.POST, "/api/v1/hl7/inbound", headers: ["Content-Type": "application/hl7-v2"],
                                             body: ByteBuffer(string: "hello"))
            #expect(junk.status == .badRequest)
            #expect(try HL7Message.parse(bytes: Array(buffer: junk.body)).0["MSA-1"] == "AR")
            let empty = try await lis.request(.POST, "/api/v1/hl7/inbound", headers: ["Content-Type": "application/hl7-v2"])
            #expect(empty.status == .badRequest && empty.problemCode == "bad_request")
            // The token reads its own hospital's messages.
            #expect(try await lis.get("/api/v1/hl7/messages").decode([HL7MessageDTO].self).map(\.controlId) == ["MSG00001"])

            // A patients-only token may not deliver HL7.
            let other = try await admin.json(.POST, "/api/v1/tokens", CreateTokenBody(name: "EMR", scopes: [.patientsRead], hospitalId: main.id, expiresAt: nil))
            let emr = Client(app)
            emr.bearer = try #require(try other.decode(TokenDTO.self).secret)
            let refused = try await emr.request(.POST, "/api/v1/hl7/inbound", headers: ["Content-Type": "application/hl7-v2"],
                                                body: ByteBuffer(bytes: try HL7Fixtures.bytes("orm_o01_change.hl7")))
            #expect(refused.status == .forbidden)
            #expect(try await HL7MessageRecord.query(on: app.db).count() == 2)
        }
    }

    @Test(arguments: Backend.all)
    func outboundMessagesAreQueuedThroughTheAPI(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let peer = try await FakeHL7Peer.start(answering: ["AA"])
            let text = "MSH|^~\\&|ROUNDS|ARION|LIS|ARION|20261122||ACK^R01|OUT9|P|2.5\nMSA|AA|MSG00004"
            // IT of one hospital aims no patient data at hosts of its choosing, nor reads the queue.
            let it = Client(app)
            try await it.login("hu.bin")
            #expect(try await it.json(.POST, "/api/v1/hl7/outbound", EnqueueOutboundBody(host: "127.0.0.1", port: peer.port, message: text)).status == .forbidden)
            #expect(try await it.get("/api/v1/hl7/outbound").status == .forbidden)
            let main = try await Demo.hospital("HK01", app)
            let scoped = Client(app)
            scoped.bearer = try #require(try await TokenTests().issue(app, scopes: [.integration], hospital: main.id).secret)
            #expect(try await scoped.get("/api/v1/hl7/outbound").status == .forbidden)
            #expect(try await Demo.audit("hl7.outbound.list", app).filter { $0.outcome == "denied" }.count == 2)
            let admin = Client(app)
            try await admin.login("admin")
            let queued = try await admin.json(.POST, "/api/v1/hl7/outbound", EnqueueOutboundBody(host: "127.0.0.1", port: peer.port, message: text))
            #expect(queued.status == .created)
            let row = try queued.decode(OutboundDTO.self)
            #expect(row.status == "pending" && row.controlId == "OUT9" && row.messageType == "ACK^R01")
            try await app.rounds.outbound.runOnce(on: app.db)
            #expect(peer.received == ["OUT9"])
            let list = try await admin.get("/api/v1/hl7/outbound").decode([OutboundDTO].self)
            #expect(list.first?.status == "sent")
            #expect(try await Demo.audit("hl7.outbound.enqueue", app).filter { $0.outcome == "success" }.count == 1)
            // The message store page shows the queue only to those the API shows it to.
            #expect(try await admin.page("/integration").body.string.contains("OUT9"))
            let itPage = try await it.page("/integration")
            #expect(itPage.status == .ok && !itPage.body.string.contains("OUT9"))

            let bad = try await admin.json(.POST, "/api/v1/hl7/outbound", EnqueueOutboundBody(host: "127.0.0.1", port: 2575, message: "not hl7"))
            #expect(bad.status == .unprocessableEntity && bad.problemCode == "validation_failed")
            let badPort = try await admin.json(.POST, "/api/v1/hl7/outbound", EnqueueOutboundBody(host: "127.0.0.1", port: 70000, message: text))
            #expect(badPort.status == .unprocessableEntity)
            #expect(try await admin.raw(.POST, "/api/v1/hl7/outbound", "{\"host\":").status == .badRequest)
            #expect(try await OutboundMessage.query(on: app.db).count() == 1)
            await peer.stop()
        }
    }

    @Test func theMessageStorePagesRender() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let ids = try await Self.deliver(app, ["adt_a01_utf8.hl7", "custom_delimiters.hl7"])
            let admin = Client(app)
            try await admin.login("admin")
            let list = try await admin.page("/integration?type=ADT")
            #expect(list.status == .ok)
            #expect(list.body.string.contains("MSG00001") && !list.body.string.contains("MSG00006"))
            let detail = try await admin.page("/integration/messages/\(ids["adt_a01_utf8.hl7"]!)")
            #expect(detail.status == .ok)
            #expect(detail.body.string.contains("Patient Name") && detail.body.string.contains("建国"))
            let replay = try await admin.form("/integration/messages/\(ids["custom_delimiters.hl7"]!)/replay", ["confirm": "yes"])
            #expect(replay.status == .seeOther)
            #expect(try await HL7MessageRecord.query(on: app.db).count() == 3)
        }
    }
}
