import FluentKit
import Foundation
import RoundsCore
import RoundsHL7
@testable import RoundsIntegration
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor

/// Channels that IT configures without code: feeds shaped like Epic, Oracle/Cerner and Chinese
/// HIS systems read by their channel; a message tried against a channel writes nothing; the
/// mapping queue lets waiting messages through, in order, once their ward code is mapped.
@Suite struct ChannelTests {
    static func receive(_ app: Application, _ segments: [String]) async throws -> Receipt {
        try #require(await app.rounds.hl7.receive(Array(segments.joined(separator: "\r").utf8), peer: "10.8.0.41", on: app.db))
    }

    static func body(_ name: String, application: String, facility: String = "", hospital: Hospital?, version: Int? = nil,
                     _ edit: (inout ChannelSettings) -> Void = { _ in }) -> ChannelBody {
        var settings = ChannelSettings()
        edit(&settings)
        return ChannelBody(name: name, application: application, facility: facility, hospitalId: hospital?.id, enabled: true,
                           settings: settings, version: version)
    }

    @Test(arguments: Backend.all)
    func channelsAreVersionedAuditedAndKeptToTheirHospital(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let it = Client(app)
            try await it.login("hu.bin")  // IT of the main hospital
            let created = try await it.json(.POST, "/api/v1/hl7/channels", Self.body("检验科 LIS", application: "LIS", hospital: main) { $0.wardCodes = ["5n": "lung"] })
            #expect(created.status == .created)
            let channel = try created.decode(ChannelDTO.self)
            #expect(channel.version == 1 && channel.settings.wardCodes == ["5N": "LUNG"] && channel.updatedBy == "胡斌")

            // An edit from the current version is a new version; one from a stale version is refused.
            let edited = try await it.json(.PUT, "/api/v1/hl7/channels/\(channel.id)",
                                           Self.body("检验科 LIS", application: "LIS", hospital: main, version: 1) { $0.criticalFlags = ["HH", "LL"] })
            #expect(try edited.status == .ok && edited.decode(ChannelDTO.self).version == 2)
            let stale = try await it.json(.PUT, "/api/v1/hl7/channels/\(channel.id)", Self.body("旧的", application: "LIS", hospital: main, version: 1))
            #expect(stale.status == .conflict && stale.problemCode == "conflict")
            let versions = try await it.get("/api/v1/hl7/channels/\(channel.id)/versions").decode([ChannelVersionDTO].self)
            #expect(versions.map(\.version) == [2, 1] && versions[1].settings.criticalFlags == ChannelSettings().criticalFlags)
            #expect(try await Demo.audit("hl7.channel.create", app).count == 1)
            #expect(try await Demo.audit("hl7.channel.update", app).first?.detail == "检验科 LIS v1 → 检验科 LIS v2")

            // Bad settings are refused with the reason, and change nothing.
            let cases: [(ChannelBody, String)] = [
                (Self.body("x", application: "", hospital: main), "MSH-3"),
                (Self.body("x", application: "PACS", hospital: main) { $0.wardComponent = 12 }, "wardComponent"),
                (Self.body("x", application: "PACS", hospital: main) { $0.unknownWard = .create }, "unknownWard"),
                (Self.body("x", application: "PACS", hospital: main) { $0.messageTypes = ["QRY"] }, "QRY"),
                (Self.body("x", application: "PACS", hospital: main) { $0.bedComponents = [1] }, "differ"),
            ]
            for (body, reason) in cases {
                let refused = try await it.json(.POST, "/api/v1/hl7/channels", body)
                #expect(refused.status == .unprocessableEntity || refused.status == .badRequest, "\(reason)")
                #expect(refused.body.string.contains(reason), "\(reason): \(refused.body.string)")
            }
            let twin = try await it.json(.POST, "/api/v1/hl7/channels", Self.body("again", application: "lis", hospital: main))
            #expect(twin.status == .conflict)
            #expect(try await HL7Channel.query(on: app.db).count() == 1)

            // The east campus's administrator neither sees nor edits it, nor makes one for the main hospital.
            let east = Client(app)
            try await east.login("luo.jie")
            #expect(try await east.get("/api/v1/hl7/channels").decode([ChannelDTO].self).isEmpty)
            #expect(try await east.get("/api/v1/hl7/channels/\(channel.id)").status == .notFound)
            #expect(try await east.json(.POST, "/api/v1/hl7/channels", Self.body("x", application: "RIS", hospital: main)).status == .forbidden)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.get("/api/v1/hl7/channels").status == .forbidden)
            #expect(try await nurse.get("/api/v1/hl7/mapping-queue").status == .forbidden)
            let denied = try await AuditEvent.query(on: app.db).filter(\.$outcome == "denied").all().map(\.action)
            #expect(denied.contains("hl7.channel.create") && denied.contains("hl7.channel.list"))
        }
    }

    /// The same admission as three kinds of HIS send it; each channel reads its own shape.
    @Test(arguments: Backend.all)
    func feedsShapedLikeEpicCernerAndAChineseHISAreReadByTheirChannels(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let services = app.rounds.channels
            let admin = try await TablesTests.context("admin", app)
            // Epic-like: its own facility code, department codes of its own, the bed in PL-3, attending in PV1-7.
            _ = try await services.create(.init(name: "Epic ADT", application: "EPIC", facility: "", hospitalID: main.id!,
                                                settings: { var s = ChannelSettings(); s.wardCodes = ["5N": "LUNG"]; s.bedComponents = [3]; return s }()),
                                          context: admin, on: app.db)
            // Oracle/Cerner-like: the nurse unit in PL-4, the bed in PL-3, the attending in ROL, nurses coded PRN.
            _ = try await services.create(.init(name: "Cerner", application: "HNAM", facility: "", hospitalID: main.id!,
                                                settings: { var s = ChannelSettings(); s.wardComponent = 4; s.bedComponents = [3]
                                                    s.attendingSource = .rol; s.nurseRoleCodes = ["PRN"]; return s }()),
                                          context: admin, on: app.db)
            let epic = try await Self.receive(app, [
                "MSH|^~\\&|EPIC|ARIONMC|ROUNDS|ARION|20261121083000||ADT^A01|E1|P|2.5.1",
                "EVN|A01|20261121083000", "PID|1||E-77^^^EPI^MR||Smith^Anne||19800101|F",
                "PV1|1|I|5N^512^3^ARIONMC||||D001^Li^Ming|||||||||||IP|V-E1"])
            #expect(epic.outcome == .accepted, "\(epic.detail ?? "")")
            let cerner = try await Self.receive(app, [
                "MSH|^~\\&|HNAM|ARION-C|ROUNDS|ARION|20261121083000||ADT^A01|C1|P|2.5",
                "EVN|A01|20261121083000", "PID|1||C-88^^^CERN^MR||Jones^Bob||19700101|M",
                "PV1|1|I|^^4^BREAST||||||||||||||||V-C1",
                "ROL|1|AD|ATND^Attending|D001^Li^Ming", "ROL|2|AD|PRN^Primary nurse|N007^Zhang^Li"])
            #expect(cerner.outcome == .accepted, "\(cerner.detail ?? "")")
            // A Chinese HIS with no channel: PL-1 ward, PL-2 bed, nurse RT in ROL (the defaults).
            let his = try await Self.receive(app, try String(decoding: HL7Fixtures.bytes("adt_a01_utf8.hl7"), as: UTF8.self)
                .split(separator: "\r").map(String.init))
            #expect(his.outcome == .accepted)

            let doctor = try await Demo.staff("li.ming", app)
            let nurse = try #require(try await Staff.query(on: app.db).filter(\.$hl7ID == "N007").first())
            func stay(_ mrn: String) async throws -> (ward: String, bed: String?, attending: String?, nurse: String?) {
                let p = try #require(try await Patient.query(on: app.db).filter(\.$mrn == mrn).first())
                let e = try #require(try await Encounter.query(on: app.db).filter(\.$patientID == p.id!).first())
                let ward = try #require(try await Department.find(e.wardID, on: app.db))
                let bed = try await e.bedID.asyncFlatMap { try await Bed.find($0, on: app.db)?.label }
                return (ward.code, bed, e.attendingID, e.nurseID)
            }
            let e = try await stay("E-77")
            #expect(e.ward == "LUNG" && e.bed == "3" && e.attending == doctor.id)
            let c = try await stay("C-88")
            #expect(c.ward == "BREAST" && c.bed == "4" && c.attending == doctor.id && c.nurse == nurse.id)
            let h = try await stay("MRN10001")
            #expect(h.ward == "LUNG" && h.bed == "12" && h.attending == doctor.id && h.nurse == nurse.id)

            // A channel limits what its sender may send.
            let lab = try await services.create(.init(name: "LIS", application: "LIS", facility: "ARION", hospitalID: main.id!,
                                                      settings: { var s = ChannelSettings(); s.messageTypes = ["ORU^R01"]; s.criticalFlags = ["HH"]; return s }()),
                                                context: admin, on: app.db)
            _ = lab
            let order = try await Self.receive(app, ["MSH|^~\\&|LIS|ARION|ROUNDS|ARION|20261121090000||ORM^O01|L1|P|2.5",
                                                     "PID|1||MRN10001^^^ARION^MR||王^建国", "ORC|NW|X1", "OBR|1|X1||K^钾"])
            #expect(try order.outcome == .rejected && HL7Message.parse(bytes: order.acknowledgement).0["MSA-1"] == "AR")
            #expect(order.detail?.contains("not allowed on channel 'LIS'") == true)
            // Only HH is critical on this channel: an LL result is not raised.
            let low = try await Self.receive(app, ["MSH|^~\\&|LIS|ARION|ROUNDS|ARION|20261121090500||ORU^R01|L2|P|2.5",
                                                   "PID|1||MRN10001^^^ARION^MR||王^建国", "OBR|1|X2||K^钾",
                                                   "OBX|1|NM|GLU^Glucose||2.1|mmol/L|3.9-6.1|LL|||F"])
            #expect(low.outcome == .accepted)
            #expect(try await Observation.query(on: app.db).filter(\.$code == "GLU").first()?.isCritical == false)
        }
    }

    @Test(arguments: Backend.all)
    func aMessageTriedAgainstAChannelWritesNothing(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let it = Client(app)
            try await it.login("hu.bin")
            let channel = try await it.json(.POST, "/api/v1/hl7/channels", Self.body("Epic", application: "EPIC", hospital: main)).decode(ChannelDTO.self)
            let message = ["MSH|^~\\&|EPIC|ARIONMC|ROUNDS|ARION|20261121083000||ADT^A01|T1|P|2.5.1", "EVN|A01|20261121083000",
                           "PID|1||E-90^^^EPI^MR||Smith^Anne||19800101|F", "PV1|1|I|5N^512^3||||D777^New^Doctor"].joined(separator: "\n")
            func counts() async throws -> [Int] {
                [try await Patient.query(on: app.db).count(), try await Encounter.query(on: app.db).count(),
                 try await HL7MessageRecord.query(on: app.db).count(), try await OutboxEvent.query(on: app.db).count(),
                 try await Staff.query(on: app.db).count(), try await AuditEvent.query(on: app.db).filter(\.$action != "hl7.channel.test").count()]
            }
            let before = try await counts()
            // As saved: ward 5N is not known, so it would wait in the mapping queue.
            let saved = try await it.json(.POST, "/api/v1/hl7/channels/test", ChannelTestBody(message: message, messageId: nil, channelId: channel.id, channel: nil))
            #expect(saved.status == .ok)
            let waits = try saved.decode(DryRunDTO.self)
            #expect(waits.outcome == "held" && waits.reason?.contains("5N") == true && waits.waitingFor?.hasSuffix("|5N") == true && !waits.written)
            // With a draft that maps 5N and puts the bed in PL-3: an admission to 肺癌中心 bed 3, a new patient, a new doctor account.
            let draft = Self.body("Epic", application: "EPIC", hospital: main) { $0.wardCodes = ["5N": "LUNG"]; $0.bedComponents = [3] }
            let admitted = try await it.json(.POST, "/api/v1/hl7/channels/test", ChannelTestBody(message: message, messageId: nil, channelId: channel.id, channel: draft))
                .decode(DryRunDTO.self)
            #expect(admitted.outcome == "accepted" && admitted.patientMrn == "E-90" && admitted.patientKnown == false)
            #expect(admitted.events.map(\.kind) == ["patient.admitted"] && admitted.events[0].summary.contains("LUNG 3"))
            #expect(try await counts() == before)
            // A result: its critical value shows, and still nothing is stored.
            _ = try await Self.receive(app, try String(decoding: HL7Fixtures.bytes("adt_a01_utf8.hl7"), as: UTF8.self).split(separator: "\r").map(String.init))
            let afterAdmission = try await counts()
            let result = try await it.json(.POST, "/api/v1/hl7/channels/test", ChannelTestBody(
                message: String(decoding: try HL7Fixtures.bytes("oru_r01_critical_k.hl7"), as: UTF8.self), messageId: nil, channelId: nil, channel: nil))
                .decode(DryRunDTO.self)
            #expect(result.outcome == "accepted" && result.patientKnown == true && result.patientName == "王建国")
            #expect(result.events.contains { $0.kind == "observation.critical" && $0.summary.contains("6.9") })
            #expect(try await counts() == afterAdmission)
            #expect(try await Demo.audit("hl7.channel.test", app).count == 3)
            // Nothing to try: a clear refusal.
            let empty = try await it.json(.POST, "/api/v1/hl7/channels/test", ChannelTestBody(message: " ", messageId: nil, channelId: nil, channel: nil))
            #expect(empty.status == .unprocessableEntity || empty.status == .badRequest)
        }
    }

    @Test(arguments: Backend.all)
    func mappingAWardCodeAppliesWhatWaitedForItInOrder(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            func adt(_ trigger: String, _ id: String, mrn: String, name: String, ward: String = "5N", bed: String = "3") -> [String] {
                ["MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121083000||ADT^\(trigger)|\(id)|P|2.5", "EVN|\(trigger)|20261121083000",
                 "PID|1||\(mrn)^^^ARION^MR||\(name)||19600101|M", "PV1|1|I|\(ward)^\(bed)^^ARION||||D001^李^明|||||||||||IP|V-\(mrn)"]
            }
            let x1 = try await Self.receive(app, adt("A01", "Q1", mrn: "Q-1", name: "赵^一"))
            let x2 = try await Self.receive(app, ["MSH|^~\\&|LIS|ARION|ROUNDS|ARION|20261121090000||ORU^R01|Q2|P|2.5",
                                                  "PID|1||Q-1^^^ARION^MR||赵^一", "OBR|1|Q2||K^钾",
                                                  "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.3|N|||F"])
            let y1 = try await Self.receive(app, adt("A01", "Q3", mrn: "Q-2", name: "钱^二", bed: "4"))
            let y2 = try await Self.receive(app, adt("A03", "Q4", mrn: "Q-2", name: "钱^二", bed: "4"))
            for r in [x1, x2, y1, y2] { #expect(r.outcome == .held, "\(r.detail ?? "")") }
            #expect(try await Patient.query(on: app.db).filter(\.$mrn ~~ ["Q-1", "Q-2"]).count() == 0)

            let it = Client(app)
            try await it.login("hu.bin")
            let groups = try await it.get("/api/v1/hl7/mapping-queue").decode([WaitingDTO].self)
            let ward = try #require(groups.first { $0.kind == "ward" })
            // The admissions wait for the ward, and the result and the discharge wait behind their patient's admission.
            #expect(groups.count == 1 && ward.code == "5N" && ward.count == 4 && ward.sender == "HIS@ARION")
            let east = Client(app)
            try await east.login("luo.jie")
            #expect(try await east.get("/api/v1/hl7/mapping-queue").decode([WaitingDTO].self).isEmpty)
            let eastWard = try await Demo.department("CARD", app)
            let lung = try await Demo.department("LUNG", app)
            #expect(try await east.json(.POST, "/api/v1/hl7/mapping-queue/map-ward", MapWardBody(key: ward.key, wardId: lung.id!)).status == .forbidden)
            // A ward of another hospital is refused.
            #expect(try await it.json(.POST, "/api/v1/hl7/mapping-queue/map-ward", MapWardBody(key: ward.key, wardId: eastWard.id!)).status == .unprocessableEntity)

            let mapped = try await it.json(.POST, "/api/v1/hl7/mapping-queue/map-ward", MapWardBody(key: ward.key, wardId: lung.id!))
            #expect(mapped.status == .ok)
            let release = try mapped.decode(ReleaseDTO.self)
            #expect(release.applied == 4 && release.stillWaiting == 0 && release.failed == 0)
            // Applied in the order they came: the replays' ids follow the originals'.
            let replays = try await HL7MessageRecord.query(on: app.db).filter(\.$replayOf != nil).sort(\.$id).all()
            #expect(replays.map(\.replayOf) == [x1.messageID, x2.messageID, y1.messageID, y2.messageID])
            let x = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "Q-1").first())
            let xStay = try #require(try await Encounter.query(on: app.db).filter(\.$patientID == x.id!).first())
            #expect(xStay.wardID == lung.id && xStay.status == .active)
            #expect(try await Observation.query(on: app.db).filter(\.$patientID == x.id!).count() == 1)
            let y = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "Q-2").first())
            #expect(try await Encounter.query(on: app.db).filter(\.$patientID == y.id!).first()?.status == .discharged)
            #expect(try await it.get("/api/v1/hl7/mapping-queue").decode([WaitingDTO].self).isEmpty)
            // The mapping went into a channel made for the sender, as a version of it.
            let channel = try #require(try await HL7Channel.query(on: app.db).filter(\.$application == "HIS").first())
            #expect(channel.settings.wardCodes == ["5N": "LUNG"] && channel.facility == "ARION" && channel.version == 1)
            #expect(try await Demo.audit("hl7.mapping_queue.map", app).filter { $0.outcome == "success" }.map(\.detail) == ["HIS@ARION ward 5N → LUNG"])
            // The next message with 5N goes straight through.
            #expect(try await Self.receive(app, adt("A01", "Q5", mrn: "Q-3", name: "孙^三", bed: "5")).outcome == .accepted)
        }
    }

    /// The pages IT uses: make a channel, try a message on the form as it stands, map from the queue.
    @Test func itWorksTheChannelsAndTheQueueFromThePages() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let it = Client(app)
            try await it.login("hu.bin")
            #expect(try await it.page("/integration").body.string.contains("/integration/mapping"))
            let made = try await it.form("/integration/channels", ["name": "急诊 HIS", "application": "EDHIS", "facility": "", "hospitalId": main.id!])
            #expect(made.status == .seeOther || made.status == .found)
            let channel = try #require(try await HL7Channel.query(on: app.db).filter(\.$application == "EDHIS").first())
            let listPage = try await it.page("/integration/channels")
            #expect(listPage.status == .ok && listPage.body.string.contains("/integration/channels/\(channel.id!)"), "\(listPage.body.string.suffix(2000))")
            let page = try await it.page("/integration/channels/\(channel.id!)")
            #expect(page.status == .ok && page.body.string.contains("急诊 HIS") && page.body.string.contains("v1"))
            // Try a message with an unsaved code map: the page says what would happen; nothing is saved.
            let message = "MSH|^~\\&|EDHIS|ARION|ROUNDS|ARION|20261121083000||ADT^A01|P1|P|2.5\nPID|1||P-1^^^ARION^MR||周^五||19600101|M\nPV1|1|I|EM1^2"
            let fields = ["name": "急诊 HIS", "application": "EDHIS", "facility": "", "hospitalId": main.id!, "enabled": "on",
                          "wardComponent": "1", "bedComponents": "2", "wardCodes": "EM1=ICU", "attendingSource": "PV1-7",
                          "attendingRoleCodes": "AT", "nurseRoleCodes": "RN", "criticalFlags": "HH, LL", "messageTypes": "",
                          "unknownWard": "queue", "unknownStaff": "create", "unknownPatient": "queue", "version": "1"]
            var testFields = fields
            testFields["message"] = message
            let tried = try await it.form("/integration/channels/\(channel.id!)/test", testFields)
            #expect(tried.status == .ok)
            let html = tried.body.string
            #expect(html.contains("将被接受") && html.contains("入院") && html.contains("ICU 2") && html.contains("未写入任何数据"))
            #expect(try await Patient.query(on: app.db).filter(\.$mrn == "P-1").count() == 0)
            #expect(try await HL7Channel.find(channel.id, on: app.db)?.version == 1)
            // A bad code map line is explained on the page.
            var bad = fields
            bad["wardCodes"] = "EM1"
            let refused = try await it.form("/integration/channels/\(channel.id!)", bad)
            #expect(refused.headers.first(name: .location)?.contains("error=") == true)
            let saved = try await it.form("/integration/channels/\(channel.id!)", fields)
            #expect(saved.headers.first(name: .location)?.contains("ok=") == true)
            #expect(try await HL7Channel.find(channel.id, on: app.db)?.settings.wardCodes == ["EM1": "ICU"])

            // The queue page: a ward code group with the hospital's wards to choose from; mapping it applies the message.
            let held = try #require(await app.rounds.hl7.receive(Array(("MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121083000||ADT^A01|P2|P|2.5\r"
                + "PID|1||P-2^^^ARION^MR||吴^六||19600101|M\rPV1|1|I|7W^3").utf8), peer: "t", on: app.db))
            #expect(held.outcome == .held)
            let queue = try await it.page("/integration/mapping")
            #expect(queue.body.string.contains("病区编码 7W") && queue.body.string.contains("肺癌中心（LUNG）"))
            let key = try #require(try await HL7MessageRecord.find(held.messageID, on: app.db)?.waitingFor)
            let lung = try await Demo.department("LUNG", app)
            let done = try await it.form("/integration/mapping/ward", ["key": key, "wardId": lung.id!])
            #expect(done.headers.first(name: .location)?.contains("ok=") == true)
            #expect(try await Patient.query(on: app.db).filter(\.$mrn == "P-2").count() == 1)
            #expect(try await it.page("/integration/mapping").body.string.contains("没有等待映射的消息"))
        }
    }

    /// A sender whose header says nothing Rounds can use gets a port of its own: what arrives
    /// there is that channel's (its hospital, its codes); the same bytes on the main port are not.
    @Test(arguments: Backend.all)
    func aChannelWithAPortOfItsOwnTakesWhatArrivesThere(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let it = Client(app)
            try await it.login("hu.bin")
            let port = Int.random(in: 40_000...59_000)
            let made = try await it.json(.POST, "/api/v1/hl7/channels", Self.body("旧检验系统（专用端口）", application: "OLDLAB", hospital: main) { $0.listenPort = port })
            #expect(made.status == .created, "\(made.body.string)")
            #expect(try made.decode(ChannelDTO.self).settings.listenPort == port)
            #expect(try await it.json(.POST, "/api/v1/hl7/channels", Self.body("另一个", application: "OTHER", hospital: main) { $0.listenPort = port }).status == .conflict)
            #expect(try await it.json(.POST, "/api/v1/hl7/channels", Self.body("低端口", application: "LOW", hospital: main) { $0.listenPort = 80 }).status == .unprocessableEntity)
            app.rounds.hl7.channels.invalidate()

            let (service, mainPort) = try await MLLPEngineTests.start(app)
            let bytes = try HL7Fixtures.bytes("custom_delimiters.hl7")  // MSH-4 SITE: no hospital of the group
            let onMain = try await MLLPClient.withConnection(host: "127.0.0.1", port: mainPort) { try await $0.send(bytes) }
            #expect(try MLLPEngineTests.ackCode(onMain).0 == "AE")
            let again = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "MSG00006", with: "PORT0006").utf8)
            let onOwn = try await MLLPClient.withConnection(host: "127.0.0.1", port: port) { try await $0.send(again) }
            let stored = try #require(try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == "PORT0006").first())
            let answer = try MLLPEngineTests.ackCode(onOwn).1.encode()
            #expect(stored.hospitalID == main.id, "\(answer)")
            await service.stop()
        }
    }

    @Test(arguments: Backend.all)
    func outboundChannelsRouteTransformAndRetryTheirOwnWay(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let admin = Client(app)
            try await admin.login("admin")
            let peer = try await FakeHL7Peer.start(answering: ["AA"])
            var settings = OutboundSettings()
            settings.messageTypes = ["MDM^T02"]
            settings.transforms = [.init(path: "msh-5", value: "EMR"), .init(path: "MSH-6", value: "ARION")]
            settings.maximumAttempts = 2
            settings.backoffSeconds = 5
            let made = try await admin.json(.POST, "/api/v1/hl7/outbound-channels",
                                            OutboundChannelBody(name: "EMR 病历", host: "127.0.0.1", port: peer.port, hospitalId: nil, enabled: true, settings: settings, version: nil))
            #expect(made.status == .created)
            let channel = try made.decode(OutboundChannelDTO.self)
            #expect(channel.settings.transforms.first?.path == "MSH-5")

            // Refusals: a host off the allow-list, a transform of the control id, IT staff (not the group administrator).
            var bad = settings
            bad.transforms = [.init(path: "MSH-10", value: "X")]
            let cases: [(OutboundChannelBody, HTTPStatus)] = [
                (OutboundChannelBody(name: "x", host: "evil.example", port: 2575, hospitalId: nil, enabled: true, settings: settings, version: nil), .unprocessableEntity),
                (OutboundChannelBody(name: "x", host: "127.0.0.1", port: 2575, hospitalId: nil, enabled: true, settings: bad, version: nil), .unprocessableEntity),
                (OutboundChannelBody(name: "x", host: "127.0.0.1", port: 0, hospitalId: nil, enabled: true, settings: settings, version: nil), .unprocessableEntity),
            ]
            for (body, status) in cases { #expect(try await admin.json(.POST, "/api/v1/hl7/outbound-channels", body).status == status, "\(body.host) \(body.port)") }
            let it = Client(app)
            try await it.login("hu.bin")
            #expect(try await it.get("/api/v1/hl7/outbound-channels").status == .forbidden)
            #expect(try await HL7OutboundChannel.query(on: app.db).count() == 1)

            // Routed: only the types it carries, changed as the destination wants, sent and acknowledged.
            let mdm = "MSH|^~\\&|ROUNDS|ARION|HIS|ARION|20261121100000||MDM^T02|OUT-MDM-1|P|2.5\rPID|1||MRN10001^^^ARION^MR||王^建国\rTXA|1|PN|TX"
            let routed = try await admin.json(.POST, "/api/v1/hl7/outbound/route", RouteOutboundBody(message: mdm, hospitalId: nil))
            #expect(routed.status == .created)
            let rows = try routed.decode([OutboundDTO].self)
            #expect(rows.count == 1 && rows[0].channelId == channel.id && rows[0].controlId == "OUT-MDM-1")
            let stored = try #require(try await OutboundMessage.find(rows[0].id, on: app.db))
            let sent = try HL7Message.parse(bytes: Array(stored.raw)).0
            #expect(sent["MSH-5"] == "EMR" && sent["MSH-6"] == "ARION" && sent["MSH-10"] == "OUT-MDM-1")
            let adt = mdm.replacingOccurrences(of: "MDM^T02", with: "ADT^A08")
            #expect(try await admin.json(.POST, "/api/v1/hl7/outbound/route", RouteOutboundBody(message: adt, hospitalId: nil)).status == .unprocessableEntity)
            #expect(try await app.rounds.outbound.runOnce(on: app.db) == 1)
            #expect(try await OutboundMessage.find(rows[0].id, on: app.db)?.status == "sent")
            await peer.stop()

            // Its retry policy, not the queue's: 5 s before the second attempt, dead after two.
            let again = try await app.rounds.outbound.route(try HL7Message.parse(mdm.replacingOccurrences(of: "OUT-MDM-1", with: "OUT-MDM-2")),
                                                            hospitalID: nil, on: app.db)
            #expect(try await app.rounds.outbound.runOnce(on: app.db) == 1)
            let first = try #require(try await OutboundMessage.find(again[0].id, on: app.db))
            #expect(first.status == "pending" && abs(first.nextAttemptAt.timeIntervalSince(clock.now()) - 5) < 0.5)
            clock.advance(by: 6)
            #expect(try await app.rounds.outbound.runOnce(on: app.db) == 1)
            #expect(try await OutboundMessage.find(again[0].id, on: app.db)?.status == "dead")
            #expect(try await Demo.audit("hl7.outbound_channel.create", app).filter { $0.outcome == "success" }.count == 1)
        }
    }

    @Test(arguments: Backend.all)
    func aStaffIDWaitingInTheQueueIsGivenToAMemberOfStaff(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let admin = try await TablesTests.context("admin", app)
            var settings = ChannelSettings()
            settings.unknownStaff = .queue
            _ = try await app.rounds.channels.create(.init(name: "HIS", application: "HIS", facility: "ARION", hospitalID: main.id!, settings: settings),
                                                     context: admin, on: app.db)
            let held = try await Self.receive(app, ["MSH|^~\\&|HIS|ARION|ROUNDS|ARION|20261121083000||ADT^A01|S1|P|2.5", "EVN|A01|20261121083000",
                                                    "PID|1||Z-1^^^ARION^MR||郑^八||19600101|M", "PV1|1|I|LUNG^6^^ARION||||D777^新^医生|||||||||||IP|V-Z1"])
            #expect(held.outcome == .held && held.detail?.contains("D777") == true)
            #expect(try await Staff.query(on: app.db).filter(\.$hl7ID == "D777").count() == 0)
            let it = Client(app)
            try await it.login("hu.bin")
            let group = try #require(try await it.get("/api/v1/hl7/mapping-queue").decode([WaitingDTO].self).first)
            #expect(group.kind == "staff" && group.code == "D777" && group.count == 1)
            #expect(try await it.page("/integration/mapping").body.string.contains("人员工号 D777"))
            // Someone who has a HIS id already is refused; the id goes to a doctor without one.
            let doctor = try await Demo.staff("li.ming", app)
            #expect(try await it.json(.POST, "/api/v1/hl7/mapping-queue/map-staff", MapStaffBody(key: group.key, staffId: doctor.id!)).status == .conflict)
            let mainStaff = Set(try await StaffRole.query(on: app.db).filter(\.$hospitalID == main.id!).all().map(\.staffID))
            let free = try #require(try await Staff.query(on: app.db).all().first { mainStaff.contains($0.id!) && ($0.hl7ID ?? "").isEmpty && $0.isActive })
            let mapped = try await it.json(.POST, "/api/v1/hl7/mapping-queue/map-staff", MapStaffBody(key: group.key, staffId: free.id!))
            #expect(try mapped.status == .ok && mapped.decode(ReleaseDTO.self).applied == 1)
            #expect(try await Staff.find(free.id, on: app.db)?.hl7ID == "D777")
            let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "Z-1").first())
            #expect(try await Encounter.query(on: app.db).filter(\.$patientID == patient.id!).first()?.attendingID == free.id)
            #expect(try await Demo.audit("staff.update", app).contains { $0.entityID == free.id && $0.detail?.contains("D777") == true })
        }
    }

    @Test func theGroupAdministratorKeepsOutboundChannelsOnAPage() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let admin = Client(app)
            try await admin.login("admin")
            #expect(try await admin.page("/integration/channels").body.string.contains("/integration/outbound-channels"))
            let fields = ["name": "HIS 病历", "host": "127.0.0.1", "port": "2575", "hospitalId": "", "messageTypes": "MDM^T02",
                          "transforms": "MSH-5=HIS\nMSH-8=", "maximumAttempts": "3", "backoffSeconds": "10", "maximumBackoffSeconds": "60"]
            let made = try await admin.form("/integration/outbound-channels", fields)
            #expect(made.headers.first(name: .location)?.contains("ok=") == true, "\(made.headers)")
            let channel = try #require(try await HL7OutboundChannel.query(on: app.db).first())
            #expect(channel.settings.transforms == [.init(path: "MSH-5", value: "HIS"), .init(path: "MSH-8", value: "")])
            #expect(channel.settings.maximumAttempts == 3 && channel.settings.backoff(afterAttempts: 1) == 10 && channel.settings.backoff(afterAttempts: 9) == 60)
            let page = try await admin.page("/integration/outbound-channels/\(channel.id!)")
            #expect(page.status == .ok && page.body.string.contains("HIS 病历") && page.body.string.contains("最多 3 次"))
            // A host off the allow-list is explained, and nothing changes.
            var bad = fields
            bad["host"] = "evil.example"
            bad["version"] = "1"
            let refused = try await admin.form("/integration/outbound-channels/\(channel.id!)", bad)
            #expect(refused.headers.first(name: .location)?.contains("error=") == true)
            #expect(try await HL7OutboundChannel.find(channel.id, on: app.db)?.host == "127.0.0.1")
            // IT staff of one hospital do not reach it.
            let it = Client(app)
            try await it.login("hu.bin")
            #expect(try await it.page("/integration/outbound-channels").status == .forbidden)
        }
    }
}

extension Optional {
    func asyncFlatMap<T>(_ transform: (Wrapped) async throws -> T?) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
