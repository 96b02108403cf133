import FluentKit
import Foundation
import NIOCore
import RoundsCore
import RoundsHL7
@testable import RoundsAlerts
@testable import RoundsChat
@testable import RoundsIntegration
@testable import RoundsStore
@testable import RoundsWeb
import SQLKit
import Testing
import Vapor
import VaporTesting

/// Defects found by probing the running server as an attacker and as careless colleagues
/// would: each test failed before its fix.
@Suite struct SecurityTests {
    // MARK: Patient safety

    /// 505 newer critical values in the other hospital used to push the nurse's open K⁺ out of
    /// her list (and out of the popup shown on every page): the limit came before the filter.
    @Test(arguments: Backend.all)
    func anOpenAlertOfMyWardIsNeverPushedOutByOthers(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let lab = Client(app)
            try await lab.login("qian.li")
            let mine = try await lab.json(.POST, "/api/v1/critical-values", CriticalValueLoopTests.potassium(patient)).decode(AlertDTO.self)
            clock.advance(by: 60)
            let east = try await Demo.hospital("HK02", app)
            let stranger = try #require(try await Patient.query(on: app.db).filter(\.$hospitalID == east.id!).first())
            try await app.db.transaction { tx in
                for n in 0..<505 {
                    let a = CriticalAlert()
                    a.id = "zz-\(n)"; a.patientID = stranger.id!; a.hospitalID = east.id!; a.source = "api"; a.sourceKey = "flood:\(n)"
                    a.testCode = "2823-3"; a.testName = "血钾"; a.value = "7.0"; a.raisedAt = clock.now().addingTimeInterval(Double(n))
                    a.status = "open"; a.level = 0
                    try await a.create(on: tx)
                }
            }
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let open = try await nurse.get("/api/v1/alerts?status=open").decode([AlertDTO].self)
            #expect(open.map(\.id) == [mine.id])
            // The alerts page (limit 200) shows it too.
            #expect(try await nurse.page("/alerts").body.string.contains("/alerts/\(mine.id)"))
            // The group administrator sees everything, newest first, and still within the limit.
            let admin = Client(app)
            try await admin.login("admin")
            let all = try await admin.get("/api/v1/alerts?status=open").decode([AlertDTO].self)
            #expect(all.count == 500 && all.first?.id == "zz-504")
            // Quality control of 总院 sees its own hospital's alert, not 东院's flood.
            let qc = Client(app)
            try await qc.login("zhu.lin")
            #expect(try await qc.get("/api/v1/alerts?status=open").decode([AlertDTO].self).map(\.id) == [mine.id])
        }
    }

    /// Oversight roles read critical values but cannot acknowledge (cancelling the ladder) or
    /// close the loop; the patient's care team can.
    @Test(arguments: Backend.all)
    func oversightRolesCannotSilenceTheLoop(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let lab = Client(app)
            try await lab.login("qian.li")
            let alert = try await lab.json(.POST, "/api/v1/critical-values", CriticalValueLoopTests.potassium(patient)).decode(AlertDTO.self)
            for username in ["zhu.lin", "ma.jun", "admin"] {
                let overseer = Client(app)
                try await overseer.login(username)
                #expect(try await overseer.get("/api/v1/alerts/\(alert.id)").status == .ok, "\(username) reads")
                let ack = try await overseer.json(.POST, "/api/v1/alerts/\(alert.id)/acknowledge", AcknowledgeBody(readBack: "血钾 6.9"))
                #expect(ack.status == .forbidden, "\(username) acknowledged")
                #expect(!(try await overseer.page("/alerts/\(alert.id)").body.string.contains("name=\"readBack\"")), "\(username) sees the form")
            }
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.status == "open")
            #expect(try await AlertEscalation.query(on: app.db).filter(\.$alertID == alert.id).filter(\.$status == "pending").count() == 3)
            let denied = try await Demo.audit("alert.acknowledge", app).filter { $0.outcome == "denied" }
            #expect(Set(denied.compactMap(\.actorName)) == ["朱琳", "马军", "系统管理员"])

            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.json(.POST, "/api/v1/alerts/\(alert.id)/acknowledge", AcknowledgeBody(readBack: "血钾 6.9")).status == .ok)
            let qc = Client(app)
            try await qc.login("zhu.lin")
            #expect(try await qc.json(.POST, "/api/v1/alerts/\(alert.id)/action", ["kind": "retest"]).status == .forbidden)
            #expect(try await CriticalAlert.find(alert.id, on: app.db)?.status == "acknowledged")
        }
    }

    /// An admission and a discharge through the API open and archive the patient group, as the
    /// same events over HL7 do.
    @Test(arguments: Backend.all)
    func admissionAndDischargeThroughTheAPIOpenAndCloseTheGroup(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let headNurse = Client(app)
            try await headNurse.login("zhang.li")
            let lung = try await Demo.department("LUNG", app)
            let doctor = try await Demo.staff("li.ming", app), nurse = try await Demo.staff("wang.fang", app)
            let created = try await headNurse.json(.POST, "/api/v1/admissions", AdmitBody(
                mrn: "MRN-API-1", name: "孙丽华", gender: .female, birthDate: "1971-05-02", allergies: nil, wardId: lung.id!,
                bedId: nil, attendingId: doctor.id, nurseId: nurse.id, visitNumber: nil))
            #expect(created.status == .created)
            let patient = try created.decode(PatientDTO.self)
            let encounterID = try #require(patient.encounters?.first?.id)
            #expect(try await OutboxEvent.query(on: app.db).filter(\.$kind == "patient.admitted").filter(\.$encounterID == encounterID).count() == 1)
            try await app.rounds.dispatchOutbox(on: app.db)
            let group = try #require(try await ChatGroup.query(on: app.db).filter(\.$patientID == patient.id).first())
            #expect(group.status == "active")
            let members = Set(try await app.rounds.chat.members(of: group, on: app.db).map(\.1.username))
            #expect(members.isSuperset(of: ["li.ming", "wang.fang"]))

            #expect(try await headNurse.json(.POST, "/api/v1/encounters/\(encounterID)/discharge", [String: String]()).status == .ok)
            try await app.rounds.dispatchOutbox(on: app.db)
            #expect(try await ChatGroup.find(group.id, on: app.db)?.status == "archived")
            let doctorClient = Client(app)
            try await doctorClient.login("li.ming")
            let late = try await doctorClient.json(.POST, "/api/v1/groups/\(group.id!)/messages", ["text": "出院后还能写吗？"])
            #expect(late.status == .conflict)
        }
    }
}
