import FluentKit
import Foundation
import RoundsCore
import RoundsHL7
@testable import RoundsChat
@testable import RoundsDirectory
@testable import RoundsIntegration
@testable import RoundsMDT
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// MDT consultations on SQLite and PostgreSQL: requested by the responsible doctor only; experts
/// by name and by department find it in their inbox and give opinions; a guest from a partner
/// hospital joins by link and one-time code, sees that case only (another case: 403, audited),
/// and is shut out when the link expires; the signed report goes to the HIS as MDM and to the
/// patient's group; statistics for medical affairs, with CSV.
@Suite struct MDTTests {
    static func body(_ experts: [String], _ departments: [String]) -> NewMDTBody {
        NewMDTBody(type: "first_diagnosis_tumour", question: "右肺上叶腺癌 T2aN1M0：手术还是新辅助治疗？", scheduledAt: Date().addingTimeInterval(86_400),
                   departmentIds: departments, expertIds: experts, summary: nil)
    }

    @Test(arguments: Backend.all)
    func expertsAndAGuestGiveOpinionsAndTheSignedReportGoesToTheHISAndTheGroup(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            _ = try await app.rounds.chat.openGroupsForActiveStays(on: app.db)
            let his = try await FakeHL7Peer.start(answering: ["AA"])
            try await RoundNoteTests.hisDocumentChannel(app, port: his.port, at: clock.now())
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let other = try await Demo.patient(onWard: "BREAST", app)
            let breast = try await Demo.department("BREAST", app)
            let wu = try await Demo.staff("wu.qiang", app)
            let doctor = Client(app), nurse = Client(app), gi = Client(app), breastDoctor = Client(app), breastNurse = Client(app), admin = Client(app)
            try await doctor.login("li.ming"); try await nurse.login("wang.fang"); try await gi.login("wu.qiang")
            try await breastDoctor.login("zhao.min"); try await breastNurse.login("zhou.ting"); try await admin.login("admin")

            // Only the responsible doctors request; the summary is assembled from the record.
            #expect(try await nurse.json(.POST, "/api/v1/patients/\(patient.id!)/mdt", Self.body([wu.id!], [])).status == .forbidden)
            #expect(try await doctor.json(.POST, "/api/v1/patients/\(patient.id!)/mdt", Self.body([], [])).status == .unprocessableEntity)
            let made = try await doctor.json(.POST, "/api/v1/patients/\(patient.id!)/mdt", Self.body([wu.id!], [breast.id!]))
            #expect(made.status == .created, "\(made.body.string)")
            let mdt = try made.decode(MDTCaseDTO.self)
            #expect(mdt.summary.contains("【患者】\(patient.name)") && mdt.status == "open")
            let otherCase = try await breastDoctor.json(.POST, "/api/v1/patients/\(other.id!)/mdt", Self.body([wu.id!], [])).decode(MDTCaseDTO.self)

            // Experts by name and by department are told and see it in their inbox; a nurse of the invited ward is not.
            let notices = try await StaffNotice.query(on: app.db).filter(\.$kind == "mdt_invited").filter(\.$subjectID == mdt.id).all()
            let zhao = try await Demo.staff("zhao.min", app), zhou = try await Demo.staff("zhou.ting", app)
            #expect(Set(notices.map(\.staffID)).isSuperset(of: [wu.id!, zhao.id!]) && !notices.contains { $0.staffID == zhou.id! })
            #expect(notices.allSatisfy { !$0.textZH.contains(patient.name) })
            #expect(try await gi.get("/api/v1/mdt").decode([MDTCaseDTO].self).map(\.id).contains(mdt.id))
            #expect(try await breastDoctor.get("/api/v1/mdt").decode([MDTCaseDTO].self).map(\.id).contains(mdt.id))
            #expect(try await breastNurse.get("/api/v1/mdt/\(mdt.id)").status == .forbidden)
            #expect(try await breastNurse.json(.POST, "/api/v1/mdt/\(mdt.id)/opinions", MDTOpinionBody(department: "x", recommendation: "y")).status == .forbidden)
            #expect(try await nurse.json(.POST, "/api/v1/mdt/\(mdt.id)/opinions", MDTOpinionBody(department: "x", recommendation: "y")).status == .forbidden)
            #expect(try await Demo.audit("mdt.opinion", app).contains { $0.outcome == "denied" && $0.actorName == "王芳" })
            // Only doctors of the group are experts.
            let itStaff = try await Demo.staff("hu.bin", app)
            #expect(try await doctor.json(.POST, "/api/v1/patients/\(patient.id!)/mdt", Self.body([itStaff.id!], [])).status == .unprocessableEntity)
            #expect(try await nurse.get("/api/v1/mdt/\(mdt.id)").status == .ok)  // the patient's care team reads
            #expect(try await gi.json(.POST, "/api/v1/mdt/\(mdt.id)/opinions", MDTOpinionBody(department: "胃肠外科", recommendation: "建议新辅助化疗联合免疫治疗 2 周期后评估手术",
                                                                                             evidence: "CheckMate 816", text: nil)).status == .created)
            #expect(try await breastDoctor.json(.POST, "/api/v1/mdt/\(mdt.id)/opinions", MDTOpinionBody(department: "乳腺外科", recommendation: "同意", evidence: nil, text: nil)).status == .created)
            #expect(try await gi.json(.POST, "/api/v1/mdt/\(mdt.id)/messages", MDTMessageBody(text: "PET-CT 已做吗？")).status == .noContent)
            #expect(try await gi.json(.POST, "/api/v1/mdt/\(mdt.id)/opinions", MDTOpinionBody(department: "", recommendation: "   ")).status == .unprocessableEntity)

            // A guest: only the responsible doctor invites; link + one-time code.
            #expect(try await gi.json(.POST, "/api/v1/mdt/\(mdt.id)/guests", MDTGuestBody(name: "陈教授", institution: "省肿瘤医院", department: nil, hours: 24)).status == .forbidden)
            #expect(try await doctor.json(.POST, "/api/v1/mdt/\(mdt.id)/guests", MDTGuestBody(name: "陈教授", institution: "省肿瘤医院", department: nil, hours: 9999)).status == .unprocessableEntity)
            let invitation = try await doctor.json(.POST, "/api/v1/mdt/\(mdt.id)/guests",
                                                   MDTGuestBody(name: "陈教授", institution: "省肿瘤医院", department: "放疗科", hours: 24)).decode(MDTInvitationDTO.self)
            let guest = Client(app)
            #expect(try await guest.request(.GET, "/mdt-guest/case/\(mdt.id)").status == .unauthorized)
            #expect(try await guest.page(invitation.link).body.string.contains("陈教授"))
            let wrongCode = invitation.code == "000000" ? "111111" : "000000"
            let wrong = try await guest.form(invitation.link, ["code": wrongCode], includeCSRF: false)
            #expect(wrong.status == .seeOther || wrong.status == .found)
            #expect(try await MDTGuest.query(on: app.db).first()?.failedCodes == 1)
            let entered = try await guest.form(invitation.link, ["code": invitation.code], includeCSRF: false)
            #expect(entered.headers.first(name: .location) == "/mdt-guest/case/\(mdt.id)")
            let page = try await guest.page("/mdt-guest/case/\(mdt.id)")
            #expect(page.status == .ok && page.body.string.contains(patient.name))
            let csrf = try #require(Client.hiddenField("_csrf", in: page.body.string))
            // Posting without the guest's token is refused; with it, the opinion is the guest's.
            #expect(try await guest.form("/mdt-guest/case/\(mdt.id)/opinions", ["recommendation": "建议放疗科参与"], includeCSRF: false).status == .forbidden)
            _ = try await guest.form("/mdt-guest/case/\(mdt.id)/opinions", ["recommendation": "可考虑术后辅助放疗", "evidence": "NCCN", "_csrf": csrf], includeCSRF: false)
            // The guest sees this case only: another case, the staff pages and the API are closed.
            #expect(try await guest.page("/mdt-guest/case/\(otherCase.id)").status == .forbidden)
            #expect(try await Demo.audit("mdt.read", app).contains { $0.actorKind == "guest" && $0.outcome == "denied" && $0.entityID == otherCase.id })
            let foreignPost = try await guest.form("/mdt-guest/case/\(otherCase.id)/opinions", ["recommendation": "x", "_csrf": csrf], includeCSRF: false)
            #expect(foreignPost.status == .forbidden)
            #expect(try await Demo.audit("mdt.opinion", app).contains { $0.actorKind == "guest" && $0.outcome == "denied" && $0.entityID == otherCase.id })
            #expect(try await guest.get("/api/v1/mdt/\(mdt.id)").status == .unauthorized)
            #expect(try await guest.page("/patients/\(patient.id!)").status != .ok)
            // The code works once.
            let again = Client(app)
            let reused = try await again.form(invitation.link, ["code": invitation.code], includeCSRF: false)
            #expect(reused.headers.first(name: .location)?.contains("error") == true)

            let detail = try await doctor.get("/api/v1/mdt/\(mdt.id)").decode(MDTCaseDTO.self)
            #expect(detail.opinions?.map(\.author) == ["吴强", "赵敏", "陈教授（省肿瘤医院）"] && detail.opinions?.last?.guest == true)

            // Signing: the responsible doctor only; the report goes to the HIS and the group.
            #expect(try await gi.json(.POST, "/api/v1/mdt/\(mdt.id)/sign", MDTSignBody(conclusion: nil, recommendation: "x")).status == .forbidden)
            let signed = try await doctor.json(.POST, "/api/v1/mdt/\(mdt.id)/sign",
                                               MDTSignBody(conclusion: "T2aN1M0 IIB 期", recommendation: "新辅助化疗联合免疫治疗 2 周期后评估手术")).decode(MDTCaseDTO.self)
            #expect(signed.status == "reported" && signed.report?.signedBy == "李明")
            #expect(try await gi.json(.POST, "/api/v1/mdt/\(mdt.id)/opinions", MDTOpinionBody(department: "x", recommendation: "late")).status == .conflict)
            _ = try await app.rounds.dispatchOutbox(on: app.db)
            _ = try await app.rounds.outbound.runOnce(on: app.db)
            let sent = try #require(try await OutboundMessage.query(on: app.db).first())
            let mdm = try HL7Message.parse(bytes: Array(sent.raw)).0
            #expect(mdm.triggerEvent == "T02" && mdm["TXA-2-1"] == "MDT" && mdm["PID-3-1"] == patient.mrn && sent.status == "sent")
            #expect(mdm.encode().contains("新辅助化疗联合免疫治疗"))
            let group = try #require(try await app.rounds.chat.group(forPatient: patient.id!, encounterID: nil, on: app.db))
            let cards = try await ChatMessage.query(on: app.db).filter(\.$groupID == group.id!).all().compactMap(\.card)
                .compactMap { try? JSONDecoder().decode(Card.self, from: Data($0.utf8)) }
            #expect(cards.contains { $0.title == "MDT 报告已签名" && $0.buttons.first?.url == "/mdt/\(mdt.id)" })
            #expect(try await doctor.page("/mdt/\(mdt.id)/report").body.string.contains("新辅助化疗联合免疫治疗"))

            // Statistics for oversight; CSV export.
            #expect(try await doctor.get("/api/v1/mdt-statistics").status == .forbidden)
            let stats = try await admin.get("/api/v1/mdt-statistics").decode(MDTStatisticsDTO.self)
            #expect(stats.total == 2 && stats.reported == 1 && stats.opinionsPerCase == 1.5)
            #expect(stats.byDepartment.first?.label == breast.name)
            let csv = try await admin.page("/mdt/statistics?format=csv")
            #expect(csv.headers.contentType?.subType == "csv" && csv.body.string.contains(patient.mrn))

            // The guest's link expires: the case and the code form are closed.
            clock.advance(by: 25 * 3600)
            let closed = try await guest.page("/mdt-guest/case/\(mdt.id)")
            #expect(closed.status != .ok && !closed.body.string.contains(patient.name))
            #expect(try await again.page(invitation.link).status == .gone)
            await his.stop()
        }
    }
}
