import FluentKit
import Foundation
import RoundsAlerts
import RoundsChat
import RoundsCore
@testable import RoundsDirectory
import RoundsIntegration
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// The critical-value screens must not mislead: every control acts on the alert it shows,
/// acknowledging takes a typed read-back, the urgent panel says whose value it is, and a
/// replayed message raises nothing new.
@Suite struct CriticalValueSafetyTests {
    static func report(_ lab: Client, _ patient: Patient, test: String, code: String, value: String, unit: String,
                       externalID: String) async throws -> AlertDTO {
        try await lab.json(.POST, "/api/v1/critical-values", CriticalValueBody(
            patientId: nil, mrn: patient.mrn, hospitalId: nil, testCode: code, testName: test, value: value, unit: unit, flag: "LL",
            note: nil, externalId: externalID, observedAt: nil)).decode(AlertDTO.self)
    }

    /// Two open alerts of one patient: each card (first and escalation) points at its own alert,
    /// never at "the oldest open one".
    @Test(arguments: Backend.all)
    func everyCardActsOnTheAlertItShows(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7"))  // 王建国, with his group
            let patient = try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())
            let lab = Client(app)
            try await lab.login("qian.li")
            let potassium = try await Self.report(lab, patient, test: "血钾", code: "2823-3", value: "7.1", unit: "mmol/L", externalID: "K-1")
            clock.advance(by: 60)
            let sodium = try await Self.report(lab, patient, test: "血钠", code: "2951-2", value: "108", unit: "mmol/L", externalID: "NA-1")
            clock.advance(by: 5 * 60)
            #expect(try await app.rounds.alerts.escalateDue(on: app.db) == 2)
            let group = try #require(try await CriticalAlert.find(sodium.id, on: app.db)?.groupID)
            let cards = try await ChatMessage.query(on: app.db).filter(\.$groupID == group).filter(\.$kind == "card").all()
                .compactMap { m in m.card.flatMap { try? JSONDecoder().decode(Card.self, from: Data($0.utf8)) } }
            let escalations = cards.filter { $0.title.hasPrefix("危急值未确认") }
            #expect(escalations.count == 2)
            for card in cards where card.severity == .critical {
                let target = try #require(card.buttons.compactMap(\.url).first { $0.hasPrefix("/alerts/") })
                let id = String(target.dropFirst("/alerts/".count))
                let alert = try #require(try await CriticalAlert.find(id, on: app.db))
                #expect(card.title.hasSuffix("\(alert.testName) \(alert.value)"), "\(card.title) → \(alert.testName) \(alert.value)")
                #expect(card.fields.contains { $0.label == "患者" && $0.value.contains(patient.name) && $0.value.contains(patient.mrn) })
            }
            // Acknowledging the sodium (read back "108") leaves the potassium open.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.json(.POST, "/api/v1/alerts/\(sodium.id)/acknowledge", AcknowledgeBody(readBack: "血钠108")).status == .ok)
            #expect(try await CriticalAlert.find(sodium.id, on: app.db)?.status == "acknowledged")
            #expect(try await CriticalAlert.find(potassium.id, on: app.db)?.status == "open")
        }
    }

    /// The panel on every page names the patient (name, bed, ward, MRN), the value with its
    /// flag in words, the hospital time and how long ago; it has no acknowledge control, one
    /// entry per alert (not per escalation), newest first; gone once acknowledged.
    @Test(arguments: Backend.all)
    func theUrgentPanelSaysWhoseValueItIsAndCannotAcknowledge(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let encounter = try #require(try await Encounter.query(on: app.db).filter(\.$patientID == patient.id!).filter(\.$status == .active).first())
            let bed = try #require(try await Bed.find(encounter.bedID, on: app.db))
            let lab = Client(app)
            try await lab.login("qian.li")
            let older = try await Self.report(lab, patient, test: "血钾", code: "2823-3", value: "7.1", unit: "mmol/L", externalID: "K-1")
            clock.advance(by: 12 * 60)
            _ = try await app.rounds.alerts.escalateDue(on: app.db)  // a second, third card for the same alert
            let newer = try await Self.report(lab, patient, test: "血钠", code: "2951-2", value: "108", unit: "mmol/L", externalID: "NA-1")

            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let page = try await nurse.page("/groups").body.string
            let start = try #require(page.range(of: "id=\"urgent-alerts\""))
            let end = try #require(page.range(of: "</section>", range: start.upperBound..<page.endIndex))
            let panel = String(page[start.lowerBound..<end.lowerBound])
            #expect(panel.contains(patient.name) && panel.contains(patient.mrn) && panel.contains(bed.label) && panel.contains("肺癌中心"))
            #expect(panel.contains("血钾 7.1 mmol/L") && panel.contains("血钠 108 mmol/L") && panel.contains("危急偏低"))
            #expect(panel.contains("12 分钟前") && panel.contains("刚刚"))
            #expect(panel.contains("已升级至第"))
            #expect(!panel.contains("LL") && !panel.contains("T0") && !panel.contains("Z<"))  // no raw flag, no UTC stamp
            #expect(panel.components(separatedBy: "class=\"urgent-item\"").count - 1 == 2)  // one per alert
            #expect(panel.range(of: "/alerts/\(newer.id)")!.lowerBound < panel.range(of: "/alerts/\(older.id)")!.lowerBound)
            #expect(!panel.contains("<form") && !panel.contains("<button") && !panel.contains("acknowledge"))
            #expect(panel.contains("data-count=\"2\""))

            // Oversight reads but does not act: no panel.
            let qc = Client(app)
            try await qc.login("zhu.lin")
            #expect(try await qc.page("/groups").body.string.contains("data-count=\"0\""))

            // Acknowledged anywhere: gone from the panel (the fragment the page's script swaps in).
            #expect(try await nurse.json(.POST, "/api/v1/alerts/\(older.id)/acknowledge", AcknowledgeBody(readBack: "7.1")).status == .ok)
            let fragment = try await nurse.page("/alerts/urgent").body.string
            #expect(fragment.contains("data-count=\"1\"") && !fragment.contains(older.id) && fragment.contains(newer.id))
            #expect(try await Client(app).page("/alerts/urgent").status != .ok)  // signed out: nothing
        }
    }

    /// The alert page asks for the read-back empty (no value pre-filled, no placeholder that
    /// looks like one) and refuses the form without it; the dashboard shows who read back what.
    @Test(arguments: Backend.all)
    func theAlertPageRequiresATypedReadBackAndTheDashboardShowsIt(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let lab = Client(app)
            try await lab.login("qian.li")
            let alert = try await Self.report(lab, patient, test: "血钾", code: "2823-3", value: "7.1", unit: "mmol/L", externalID: "K-1")
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let page = try await nurse.page("/alerts/\(alert.id)").body.string
            let input = try #require(page.range(of: "name=\"readBack\"").map { String(page[$0.lowerBound...].prefix(200)) })
            #expect(!input.contains("value=") && !input.contains("placeholder") && input.contains("required"))
            let refused = try await nurse.form("/alerts/\(alert.id)/acknowledge", ["readBack": "好的"])
            #expect(refused.status == .seeOther || refused.status == .found)
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.status == "open")
            clock.advance(by: 150)
            _ = try await nurse.form("/alerts/\(alert.id)/acknowledge", ["readBack": "血钾7.1，已复述"])
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.readBack == "血钾7.1，已复述")
            let qc = Client(app)
            try await qc.login("zhu.lin")
            let dashboard = try await qc.page("/alerts/dashboard").body.string
            #expect(dashboard.contains("血钾7.1，已复述") && dashboard.contains("王芳") && dashboard.contains("2.5"))
            let csv = try await qc.request(.GET, "/alerts/export.csv").body.string
            #expect(csv.contains("血钾7.1，已复述"))
        }
    }

    /// Replaying (or resending) a message whose critical result was already alerted raises
    /// nothing new; a corrected value is a new alert.
    @Test(arguments: Backend.all)
    func aReplayedResultRaisesNothingNew(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("oru_r01_critical_k.hl7"))
            let alert = try #require(try await CriticalAlert.query(on: app.db).first())
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.json(.POST, "/api/v1/alerts/\(alert.id!)/acknowledge", AcknowledgeBody(readBack: "6.9")).status == .ok)
            #expect(try await nurse.json(.POST, "/api/v1/alerts/\(alert.id!)/action", AlertActionBody(kind: "medication", text: "葡萄糖酸钙")).status == .ok)

            let admin = Client(app)
            try await admin.login("admin")
            let message = try #require(try await HL7MessageRecord.query(on: app.db).filter(\.$messageType == "ORU^R01").first())
            // In the browser, replay asks first, showing what it will do and what was already alerted.
            let confirm = try await admin.page("/integration/messages/\(message.id!)/replay").body.string
            #expect(confirm.contains("已提醒过的危急值不会再次提醒") && confirm.contains("Potassium 6.9") && confirm.contains("已闭环"))
            let before = try await HL7MessageRecord.query(on: app.db).count()
            let stray = try await admin.form("/integration/messages/\(message.id!)/replay", [:])
            #expect(stray.headers.first(name: .location) == "/integration/messages/\(message.id!)/replay")
            #expect(try await HL7MessageRecord.query(on: app.db).count() == before)
            let done = try await admin.form("/integration/messages/\(message.id!)/replay", ["confirm": "yes"])
            #expect(done.headers.first(name: .location)?.contains("ok=") == true)
            #expect(try await HL7MessageRecord.query(on: app.db).count() == before + 1)
            _ = try await app.rounds.dispatchOutbox(on: app.db)
            let replay = try await admin.json(.POST, "/api/v1/hl7/messages/\(message.id!)/replay", [String: String]())
            #expect(replay.status == .ok)
            _ = try await app.rounds.dispatchOutbox(on: app.db)
            // The same result under a new control id (a resend by the LIS): nothing new either.
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("oru_r01_critical_k.hl7", controlID: "RESEND-1"))
            #expect(try await CriticalAlert.query(on: app.db).count() == 1)
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.status == "closed")
            // A corrected value is a new critical value.
            try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("oru_r01_critical_k.hl7", controlID: "CORR-1", ["OBX-5": "7.4"]))
            #expect(try await CriticalAlert.query(on: app.db).count() == 2)
        }
    }
}

@Suite struct WebOnlyNodeTests {
    /// What an outside system received, in order (an in-process adapter standing in for SMS).
    final class RecordingConnector: AlertConnector, @unchecked Sendable {
        private let lock = NSLock()
        private var notices: [AlertNotice] = []
        func deliver(_ notice: AlertNotice, settings: [String: String]) async throws { lock.withLock { notices.append(notice) } }
        var received: [AlertNotice] { lock.withLock { notices } }
    }

    /// `rounds serve --no-mllp`: no MLLP listener, yet a critical value reported over the API
    /// climbs its ladder in the background on schedule (the runtime's timers do not depend on the
    /// listener), and each step reaches the outside connectors.
    @Test(arguments: Backend.all)
    func escalationRunsWithoutTheMLLPListener(_ backend: Backend) async throws {
        let sms = RecordingConnector()
        try await TestApp.with(backend, adjust: {
            $0.integration = nil; $0.backgroundWork = true; $0.alertConnectors = [.sms: sms]
            $0.allowedDestinations = try! DestinationAllowList.standard.adding(["sms.example.cn"])
        }) { app, clock in
            _ = try await RealtimeTests.serve(app)
            #expect(app.mllpPort == nil)
            let admin = Client(app)
            try await admin.login("admin")
            let main = try await Demo.hospital("HK01", app)
            #expect(try await admin.json(.POST, "/api/v1/alert-connectors", ConnectorBody(
                hospitalId: main.id, kind: "sms", name: "短信", settings: ["url": "https://sms.example.cn/send", "token": "t"])).status == .created)
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let lab = Client(app)
            try await lab.login("qian.li")
            let alert = try await CriticalValueSafetyTests.report(lab, patient, test: "血钾", code: "2823-3", value: "7.1", unit: "mmol/L",
                                                                 externalID: "K-1")
            func eventually(_ what: String, _ done: () async throws -> Bool) async throws {
                for _ in 0..<100 { if try await done() { return }; try await Task.sleep(for: .milliseconds(100)) }
                Issue.record("timed out waiting for \(what)")
            }
            try await eventually("the raised notice") { sms.received.map(\.event) == [.raised] }
            // Not before its time: a minute short of the first rung, nothing climbs.
            clock.advance(by: 4 * 60)
            try await Task.sleep(for: .milliseconds(1200))
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.level == 0)
            clock.advance(by: 60 + 1)
            try await eventually("the first rung") { try await CriticalAlert.find(alert.id, on: app.db)?.level == 1 }
            try await eventually("the escalation notice") { sms.received.map(\.event) == [.raised, .escalated] }
            #expect(sms.received.last?.level == 1)
            // Fired once, however many rounds the loop went.
            try await Task.sleep(for: .milliseconds(1200))
            #expect(try await AlertEscalation.query(on: app.db).filter(\.$alertID == alert.id).filter(\.$status == "fired").count() == 1)
            #expect(sms.received.count == 2)
            await app.server.shutdown()
        }
    }
}
