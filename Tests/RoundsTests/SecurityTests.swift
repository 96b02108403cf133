import FluentKit
import Foundation
import NIOCore
import RoundsCore
import RoundsDemo
import RoundsHL7
@testable import RoundsAlerts
@testable import RoundsChat
@testable import RoundsIntegration
@testable import RoundsDirectory
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

    // MARK: Access control

    @Test(arguments: Backend.all)
    func rolesAreGivenOnlyByThoseWhoMay(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let lung = try await Demo.department("LUNG", app)
            let it = try await Demo.staff("hu.bin", app), lab = try await Demo.staff("qian.li", app), nurse = try await Demo.staff("wang.fang", app)
            let itClient = Client(app)
            try await itClient.login("hu.bin")
            func grant(_ client: Client, _ staff: Staff, _ role: Role) async throws -> HTTPStatus {
                try await client.json(.POST, "/api/v1/staff/\(staff.id!)/roles", AssignRoleBody(departmentId: lung.id!, role: role)).status
            }
            // IT makes nobody a clinician, administrator or overseer, least of all itself.
            for role in [Role.nurse, .doctor, .administrator, .qualityControl] {
                #expect(try await grant(itClient, it, role) == .forbidden, "IT gave itself \(role)")
                #expect(try await grant(itClient, lab, role) == .forbidden, "IT gave \(role)")
            }
            #expect(try await grant(itClient, it, .laboratory) == .forbidden)
            #expect(try await grant(itClient, lab, .it) == .created)
            #expect(try await grant(itClient, nurse, .laboratory) == .created)
            // Nor takes a clinical role away.
            let nurseRole = try #require(try await StaffRole.query(on: app.db).filter(\.$staffID == nurse.id!).filter(\.$role == .nurse).first())
            #expect(try await itClient.raw(.DELETE, "/api/v1/staff/\(nurse.id!)/roles/\(nurseRole.id!)", "").status == .forbidden)
            let denied = try await Demo.audit("staff.role.assign", app).filter { $0.outcome == "denied" }
            #expect(denied.count == 9)
            // After all that, IT still cannot read patients.
            let patient = try await Demo.patient(onWard: "LUNG", app)
            #expect(try await itClient.get("/api/v1/patients/\(patient.id!)").status == .forbidden)

            // The group administrator gives every role, but not to itself.
            let admin = Client(app)
            try await admin.login("admin")
            #expect(try await grant(admin, lab, .administrator) == .created)
            let adminStaff = try await Demo.staff("admin", app)
            #expect(try await grant(admin, adminStaff, .doctor) == .forbidden)
            // An organisation:write token (the HR system) gives clinical roles, never administrator.
            let main = try await Demo.hospital("HK01", app)
            let hr = Client(app)
            hr.bearer = try #require(try await TokenTests().issue(app, scopes: [.organisationWrite], hospital: main.id).secret)
            #expect(try await grant(hr, it, .administrator) == .forbidden)
            #expect(try await grant(hr, lab, .doctor) == .created)
        }
    }

    /// A new administrator is no quiet matter: the hospital's other administrators (and the
    /// group's) are told on their next page, until they say they have seen it.
    @Test(arguments: Backend.all)
    func makingAnAdministratorTellsTheOtherAdministrators(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let office = try await Demo.department("YZB", app)
            let nurse = try await Demo.staff("zhou.ting", app)
            let admin = Client(app), luo = Client(app), zhou = Client(app)
            try await admin.login("admin")
            try await luo.login("luo.jie")
            try await zhou.login("zhou.ting")
            #expect(try await luo.get("/api/v1/me/notices").decode([NoticeDTO].self).isEmpty)
            // A lesser role tells nobody.
            #expect(try await admin.json(.POST, "/api/v1/staff/\(nurse.id!)/roles", AssignRoleBody(departmentId: office.id!, role: .laboratory)).status == .created)
            #expect(try await StaffNotice.query(on: app.db).count() == 0)

            let granted = try await admin.json(.POST, "/api/v1/staff/\(nurse.id!)/roles", AssignRoleBody(departmentId: office.id!, role: .administrator))
            #expect(granted.status == .created)
            let notices = try await luo.get("/api/v1/me/notices").decode([NoticeDTO].self)
            #expect(notices.map(\.kind) == ["administrator_granted"] && notices.first?.subjectId == nurse.id)
            #expect(notices.first?.text.contains("周婷") == true && notices.first?.text.contains("华康医院东院") == true)
            // Neither the one who granted nor the new administrator is told.
            #expect(try await admin.get("/api/v1/me/notices").decode([NoticeDTO].self).isEmpty)
            #expect(try await zhou.get("/api/v1/me/notices").decode([NoticeDTO].self).isEmpty)
            #expect(try await Demo.audit("staff.notice.create", app).count == 1)

            // Shown on every page until marked read; nobody else may mark it.
            let page = try await luo.page("/groups")
            #expect(page.body.string.contains("/notices/\(notices[0].id)/read") && page.body.string.contains("周婷"))
            #expect(try await zhou.json(.POST, "/api/v1/me/notices/\(notices[0].id)/read", [String: String]()).status == .notFound)
            #expect(try await luo.form("/notices/\(notices[0].id)/read", ["back": "/groups"]).status == .seeOther)
            #expect(!(try await luo.page("/groups").body.string.contains("/notices/")))

            // Taking the role away is told as well, here to the group's administrator.
            let role = try #require(try await StaffRole.query(on: app.db).filter(\.$staffID == nurse.id!).filter(\.$role == .administrator).first())
            #expect(try await luo.raw(.DELETE, "/api/v1/staff/\(nurse.id!)/roles/\(role.id!)", "").status == .noContent)
            #expect(try await admin.get("/api/v1/me/notices").decode([NoticeDTO].self).map(\.kind) == ["administrator_removed"])
        }
    }

    @Test(arguments: Backend.all)
    func wardGroupRulesAreForTheHeadNurseAndTheHospitalsStaff(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let lung = try await Demo.department("LUNG", app)
            let it = try await Demo.staff("hu.bin", app), east = try await Demo.staff("luo.jie", app), pharmacist = try await Demo.staff("qian.li", app)
            func rule(_ extras: [String]) -> ChatService.GroupRule {
                .init(headNurses: true, wardNurses: true, wardDoctors: true, extraStaffIds: extras)
            }
            let itClient = Client(app)
            try await itClient.login("hu.bin")
            #expect(try await itClient.json(.PUT, "/api/v1/wards/\(lung.id!)/group-rules", rule([it.id!])).status == .forbidden)
            let headNurse = Client(app)
            try await headNurse.login("zhang.li")
            // Someone of the other hospital does not join this ward's patients' groups.
            let stranger = try await headNurse.json(.PUT, "/api/v1/wards/\(lung.id!)/group-rules", rule([east.id!]))
            #expect(stranger.status == .unprocessableEntity && stranger.body.string.contains("hospital"))
            #expect(try await headNurse.json(.PUT, "/api/v1/wards/\(lung.id!)/group-rules", rule([pharmacist.id!])).status == .ok)
            #expect(try await Demo.audit("chat.rule.update", app).contains { $0.outcome == "denied" && $0.actorName == "胡斌" })

            // The memberships the rule creates are each audited.
            try await PatientGroupTests.deliver(app, try PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            let added = try await Demo.audit("chat.member.add", app)
            #expect(added.contains { $0.detail?.hasPrefix(pharmacist.id!) == true && $0.patientID != nil })
        }
    }

    /// The group administrator's (and a role-less account's) contact details are the group's
    /// own administrators' business, not a hospital administrator's or IT's.
    @Test(arguments: Backend.all)
    func theSuperusersContactDetailsAreOutOfReach(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let superuser = try await Demo.staff("admin", app), nurse = try await Demo.staff("wang.fang", app)
            for username in ["luo.jie", "hu.bin"] {
                let other = Client(app)
                try await other.login(username)
                let changed = try await other.json(.PUT, "/api/v1/staff/\(superuser.id!)/contact", StaffContactBody(mobile: "13900000000", email: nil))
                #expect(changed.status == .forbidden, "\(username)")
                #expect(try await other.get("/api/v1/staff/\(superuser.id!)").status == .forbidden, "\(username)")
            }
            #expect(try await Demo.staff("admin", app).mobile == superuser.mobile)
            // IT still looks after the staff of its own hospital.
            let it = Client(app)
            try await it.login("hu.bin")
            #expect(try await it.json(.PUT, "/api/v1/staff/\(nurse.id!)/contact", StaffContactBody(mobile: "13800001234", email: nil)).status == .ok)
        }
    }

    /// IT cannot send critical-value notices (name, MRN, value) to an address of its choosing.
    @Test(arguments: Backend.all)
    func connectorsAreForAdministrators(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let it = Client(app)
            try await it.login("hu.bin")
            let body = ConnectorBody(hospitalId: main.id, kind: "sms", name: "外发", settings: ["url": "https://sms.example/send", "token": "t", "to": "13800000000"])
            #expect(try await it.json(.POST, "/api/v1/alert-connectors", body).status == .forbidden)
            #expect(try await it.get("/api/v1/alert-connectors").status == .forbidden)
            #expect(try await Demo.audit("alert.connector.list", app).contains { $0.outcome == "denied" })
            let admin = Client(app)
            try await admin.login("admin")
            #expect(try await admin.get("/api/v1/alert-connectors").status == .ok)
        }
    }

    /// Even an administrator sends only where the installation allows: no connector or
    /// outbound HL7 peer outside the allow-list, nothing sent to a destination taken off it, and
    /// "send a test" does not tell a refused connection from a 404.
    @Test(arguments: Backend.all)
    func destinationsComeFromTheInstallationsAllowList(_ backend: Backend) async throws {
        let web = try await FakeWebhookServer.start()
        do {
            try await TestApp.with(backend) { app, _ in
                let main = try await Demo.hospital("HK01", app)
                let admin = Client(app)
                try await admin.login("admin")
                for (kind, settings) in [("sms", ["url": "http://10.1.2.3:8080/send", "token": "t"]),
                                         ("feishu", ["webhook": "https://open.feishu.cn@evil.example/open-apis/bot/v2/hook/x"]),
                                         ("wecom", ["webhook": "https://qyapi.weixin.qq.com.evil.example/cgi-bin/webhook/send?key=k"]),
                                         ("email", ["host": "mail.evil.example", "from": "a@b.cn"]),
                                         ("hl7", ["host": "10.9.9.9", "port": "2575"]),
                                         ("sms", ["url": web.base + "/sms/send", "token": "t", "patientData": "everything"])] {
                    let refused = try await admin.json(.POST, "/api/v1/alert-connectors", ConnectorBody(hospitalId: main.id, kind: kind, name: "x", settings: settings))
                    #expect(refused.status == .unprocessableEntity, "\(kind) \(settings)")
                }
                #expect(try await AlertConnectorRow.query(on: app.db).count() == 0)
                // The public Feishu host is allowed without configuration.
                #expect(try await admin.json(.POST, "/api/v1/alert-connectors", ConnectorBody(
                    hospitalId: main.id, kind: "feishu", name: "飞书", settings: ["webhook": "https://open.feishu.cn/open-apis/bot/v2/hook/x"])).status == .created)

                let outbound = try await admin.json(.POST, "/api/v1/hl7/outbound", EnqueueOutboundBody(
                    host: "10.9.9.9", port: 22, message: String(decoding: try HL7Fixtures.bytes("oru_r01_critical_k.hl7"), as: UTF8.self)))
                #expect(outbound.status == .unprocessableEntity)
                #expect(try await OutboundMessage.query(on: app.db).count() == 0)
                #expect(try await Demo.audit("hl7.outbound.enqueue", app).contains { $0.outcome == "denied" })

                // Allowed when saved, taken off the list since: nothing is sent.
                let sms = try await admin.json(.POST, "/api/v1/alert-connectors", ConnectorBody(
                    hospitalId: main.id, kind: "sms", name: "短信", settings: ["url": web.base + "/sms/send", "token": FakeWebhookServer.smsToken]))
                    .decode(AlertService.ConnectorView.self)
                _ = try await CriticalValueTests.raise(app)
                var narrowed = app.rounds.alerts
                narrowed.destinations = .standard
                _ = try await narrowed.deliverDue(using: app.rounds.alertConnectors, on: app.db)
                let delivery = try #require(try await AlertDelivery.query(on: app.db).filter(\.$connectorID == sms.id).first())
                #expect(delivery.status == "dead" && delivery.lastError?.contains("allow-list") == true)
                #expect(web.received.isEmpty)

                // A closed port and a 404 look the same from the test button.
                let closed = try await admin.json(.POST, "/api/v1/alert-connectors", ConnectorBody(
                    hospitalId: main.id, kind: "sms", name: "closed", settings: ["url": "http://127.0.0.1:9/send", "token": "t"])).decode(AlertService.ConnectorView.self)
                let missing = try await admin.json(.POST, "/api/v1/alert-connectors", ConnectorBody(
                    hospitalId: main.id, kind: "sms", name: "404", settings: ["url": web.base + "/nothing-here", "token": "t"])).decode(AlertService.ConnectorView.self)
                var answers: [String] = []
                for id in [closed.id, missing.id] {
                    let test = try await admin.json(.POST, "/api/v1/alert-connectors/\(id)/test", [String: String]()).decode(ConnectorTestDTO.self)
                    #expect(!test.delivered)
                    let error = try #require(test.error)
                    answers.append(error.replacingOccurrences(of: #"reference \S+"#, with: "reference …", options: .regularExpression))
                }
                #expect(answers.count == 2 && answers[0] == answers[1])
            }
        } catch {
            await web.stop()
            throw error
        }
        await web.stop()
    }

    @Test func theAllowListMatchesHostsPortsDomainsAndNetworks() throws {
        let list = try DestinationAllowList(["gw.example:8443", "*.hospital.cn", "10.20.0.0/16:2575", "LIS.local"])
        #expect(list.permits(url: "https://gw.example:8443/send") && !list.permits(url: "https://gw.example/send"))
        #expect(list.permits(url: "https://sms.hospital.cn/send"))
        #expect(list.permits(host: "mail.hospital.cn", port: 25) && !list.permits(host: "hospital.cn", port: 25))
        #expect(!list.permits(host: "hospital.cn.evil.example", port: 443) && !list.permits(host: "evilhospital.cn", port: 443))
        #expect(list.permits(host: "10.20.3.4", port: 2575) && !list.permits(host: "10.20.3.4", port: 22) && !list.permits(host: "10.21.0.1", port: 2575))
        #expect(list.permits(host: "lis.local.", port: 2575))
        #expect(!list.permits(url: "https://user@lis.local/x") && !list.permits(url: "ftp://lis.local/x") && !list.permits(url: "not a url"))
        #expect(!DestinationAllowList.standard.permits(host: "127.0.0.1", port: 80))
        for bad in ["*", "a.*.cn", "10.0.0.0/33", "host:0", "host:http", "evil host", "10.0.0/8"] {
            #expect(throws: RoundsError.self, "\(bad)") { try DestinationAllowList([bad]) }
        }
    }

    // MARK: Audit

    /// A hospital's quality control sees the reads of its patients' care plans and assessments,
    /// its staff's sign-ins, and who read a patient group: rows written without the hospital
    /// used to be visible to the group's auditors only.
    @Test(arguments: Backend.all)
    func aHospitalsAuditorsSeeWhatConcernsTheirPatientsAndStaff(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            try await PatientGroupTests.deliver(app, try PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            let group = try await PatientGroupTests.group(app)
            let patient = try #require(try await Patient.find(try #require(group.patientID), on: app.db))
            let nurse = Client(app), east = Client(app), qc = Client(app)
            try await nurse.login("wang.fang")
            try await east.login("luo.jie")
            try await qc.login("zhu.lin")
            #expect(try await nurse.get("/api/v1/patients/\(patient.id!)/care-plan").status == .ok)
            #expect(try await nurse.get("/api/v1/patients/\(patient.id!)/assessments").status == .ok)
            #expect(try await nurse.get("/api/v1/groups/\(group.id!)").status == .ok)

            func seen(_ action: String) async throws -> [AuditEventDTO] {
                try await qc.get("/api/v1/audit?action=\(action)&limit=1000").decode([AuditEventDTO].self)
            }
            let wangFang = try await Demo.staff("wang.fang", app), luoJie = try await Demo.staff("luo.jie", app)
            #expect(try await seen("care_plan.list").contains { $0.patientId == patient.id && $0.hospitalId == patient.hospitalID })
            #expect(try await seen("chat.group.read").contains { $0.entityId == group.id && $0.actorId == wangFang.id && $0.outcome == "success" })
            let signIns = try await seen("auth.login")
            #expect(signIns.contains { $0.entityId == wangFang.id })
            // The other hospital's administrator signing in is that hospital's business.
            #expect(!signIns.contains { $0.entityId == luoJie.id })
            let all = try await qc.get("/api/v1/audit?limit=10000").decode([AuditEventDTO].self)
            #expect(!all.contains { $0.actorId == luoJie.id })
        }
    }

    /// HL7 over HTTP is the token's (or person's) doing, whatever MSH-3/4 claim: the stored
    /// message and every row its mapping writes name them.
    @Test(arguments: Backend.all)
    func hl7OverHTTPIsAttributedToWhoeverSentIt(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let admin = Client(app)
            try await admin.login("admin")
            let token = try await admin.json(.POST, "/api/v1/tokens", CreateTokenBody(name: "检验系统", scopes: [.integration], hospitalId: main.id, expiresAt: nil))
                .decode(TokenDTO.self)
            let lis = Client(app)
            lis.bearer = try #require(token.secret)
            let sent = try await lis.request(.POST, "/api/v1/hl7/inbound", headers: ["Content-Type": "application/hl7-v2"],
                                             body: ByteBuffer(bytes: try HL7Fixtures.bytes("adt_a01_utf8.hl7")))
            #expect(sent.status == .ok)
            let record = try #require(try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == "MSG00001").first())
            #expect(record.submittedBy == "token:\(token.id)" && record.sender == "HIS@ARION")
            let rows = try await AuditEvent.query(on: app.db).filter(\.$action == "patient.create").all()
            #expect(!rows.isEmpty && rows.allSatisfy { $0.actorKind == "token" && $0.actorID == token.id && $0.actorName.contains("检验系统")
                                                          && $0.actorName.contains("hl7:HIS@ARION") })
            // Over MLLP the sending system is all there is.
            try await PatientGroupTests.deliver(app, try PatientGroupTests.fixture("adt_a01_utf8.hl7", controlID: "MLLP-1", ["PID-3": "MRN10098^^^ARION^MR", "PV1-19": "V20261121098"]))
            let overMLLP = try #require(try await HL7MessageRecord.query(on: app.db).filter(\.$controlID == "MLLP-1").first())
            #expect(overMLLP.submittedBy == nil)
            #expect(try await AuditEvent.query(on: app.db).filter(\.$action == "patient.create").filter(\.$actorKind == "system").count() >= 1)
        }
    }

    // MARK: Untrusted content

    /// An HL7 report's attachment claimed to be HTML (or anything but a PDF or an image) is kept,
    /// but only ever downloaded, in a sandbox: it cannot run in a clinician's session.
    @Test(arguments: Backend.all)
    func anHL7AttachmentIsNeverServedSoThatItRuns(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            try await PatientGroupTests.deliver(app, try PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            let script = Data("<html><script>fetch('/api/v1/me')</script></html>".utf8).base64EncodedString()
            for (n, type, subtype) in [("1", "text", "html"), ("2", "application", "javascript"), ("3", "IM", "svg+xml")] {
                let message = try PatientGroupTests.fixture("mdm_t02_pathology_pdf.hl7", controlID: "XSS-\(n)",
                                                            ["OBX(2)-5-2": type, "OBX(2)-5-3": subtype, "OBX(2)-5-5": script, "TXA-12": "DOCX\(n)"])
                let receipt = try #require(await app.rounds.hl7.receive(Array(message.encode().utf8), peer: "127.0.0.1", on: app.db))
                #expect(receipt.outcome == .accepted)
            }
            let stored = try await Attachment.query(on: app.db).all()
            #expect(stored.count == 3 && stored.allSatisfy { $0.contentType == FileType.opaque && $0.filename.hasSuffix(".bin") })
            // A row stored before the check existed is checked again on the way out.
            let legacy = try #require(stored.first)
            legacy.contentType = "text/html"
            try await legacy.save(on: app.db)

            let nurse = Client(app)
            try await nurse.login("wang.fang")
            for file in stored {
                let response = try await nurse.request(.GET, "/attachments/\(file.id!)")
                #expect(response.status == .ok)
                #expect(response.headers.contentType?.serialize() == FileType.opaque)
                #expect(response.headers.first(name: .contentDisposition)?.hasPrefix("attachment;") == true)
                #expect(response.headers.first(name: "Content-Security-Policy") == "sandbox; default-src 'none'")
                #expect(response.headers.first(name: "X-Content-Type-Options") == "nosniff")
            }
            // A real PDF still opens in the browser, in the same sandbox.
            let pdf = try PatientGroupTests.fixture("mdm_t02_pathology_pdf.hl7", controlID: "PDF-1")
            _ = await app.rounds.hl7.receive(Array(pdf.encode().utf8), peer: "127.0.0.1", on: app.db)
            let report = try #require(try await Attachment.query(on: app.db).filter(\.$contentType == "application/pdf").first())
            let opened = try await nurse.request(.GET, "/attachments/\(report.id!)")
            #expect(opened.headers.contentType?.serialize() == "application/pdf")
            #expect(opened.headers.first(name: .contentDisposition)?.hasPrefix("inline;") == true)
            #expect(opened.headers.first(name: "Content-Security-Policy") == "sandbox; default-src 'none'")
        }
    }

    @Test func linksThatLeaveTheSiteAreRefused() {
        for bad in ["\t/evil.example", "/\t/evil.example", "/\\evil.example", "//evil.example", "/\n/evil.example", "https://evil.example",
                    "javascript:alert(1)", "/\u{0B}/evil.example", " /x", "/x y"] {
            #expect(!LinkCheck.isLocalPath(bad), "\(bad.debugDescription) passed as local")
        }
        for good in ["/", "/patients/1?tab=results#orders", "/groups/a%2Fb"] { #expect(LinkCheck.isLocalPath(good), "\(good)") }
        #expect(LinkCheck.isHTTPSLink("https://bot.hospital.cn/case/1"))
        for bad in ["https://", "https:/\\evil", "https://a b", "http://bot.hospital.cn", "https://user@evil.example/"] {
            #expect(!LinkCheck.isHTTPSLink(bad), "\(bad.debugDescription)")
        }
    }

    @Test(arguments: Backend.all)
    func signInNeverRedirectsOffSite(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            for next in ["\t/evil.example", "/\t/evil.example", "/\\evil.example"] {
                let client = Client(app)
                let page = try await client.page("/login")
                let token = Client.hiddenField("_csrf", in: page.body.string) ?? ""
                let response = try await client.form("/login", ["username": "wang.fang", "password": DemoSeed.password, "_csrf": token, "next": next],
                                                     includeCSRF: false)
                #expect(response.status == .seeOther && response.headers.first(name: .location) == "/", "\(next.debugDescription)")
            }
        }
    }

    @Test func aWebSocketFromAnotherSiteIsRefused() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let port = try await RealtimeTests.serve(app)
            do {
                let nurse = Client(app)
                try await nurse.login("wang.fang")
                let cookie = nurse.cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
                await #expect(throws: (any Error).self) {
                    try await WebSocket.connect(to: "ws://127.0.0.1:\(port)/api/v1/ws", headers: ["Cookie": cookie, "Origin": "https://evil.example"],
                                                on: MultiThreadedEventLoopGroup.singleton) { _ in }
                }
                #expect(try await Demo.audit("chat.ws.connect", app).contains { $0.outcome == "denied" && $0.actorName == "王芳" })
                // From Rounds' own page it opens.
                let box = RealtimeTests.SocketBox()
                try await WebSocket.connect(to: "ws://127.0.0.1:\(port)/api/v1/ws", headers: ["Cookie": cookie, "Origin": "http://127.0.0.1:\(port)"],
                                            on: MultiThreadedEventLoopGroup.singleton) { ws in box.socket = ws }
                for _ in 0..<100 where box.socket == nil { try await Task.sleep(for: .milliseconds(20)) }
                try await #require(box.socket).close()
            } catch {
                await app.server.shutdown()
                throw error
            }
            await app.server.shutdown()
        }
    }

    @Test(arguments: Backend.all)
    func openingAGroupPageMarksNothingRead(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            try await PatientGroupTests.deliver(app, try PatientGroupTests.fixture("adt_a01_utf8.hl7"))
            try await PatientGroupTests.deliver(app, try PatientGroupTests.fixture("orm_o01_change.hl7"))
            let group = try await PatientGroupTests.group(app)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let before = try await ChatReceipt.query(on: app.db).count()
            #expect(try await nurse.page("/groups/\(group.id!)").status == .ok)
            #expect(try await ChatReceipt.query(on: app.db).count() == before)
        }
    }

    // MARK: Audit

    @Test(arguments: Backend.all)
    func refusedCallsLeaveATraceAndTokenGuessingIsSlowedDown(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            #expect(try await Client(app).get("/api/v1/patients/x").status == .unauthorized)
            #expect(try await Demo.audit("auth.required", app).contains { $0.detail == "GET /api/v1/patients/x" })
            let guesser = Client(app)
            var codes: [UInt] = []
            for n in 0..<51 {
                guesser.bearer = "rnd_guess_\(n)"
                codes.append(try await guesser.get("/api/v1/me").status.code)
            }
            #expect(codes.prefix(50).allSatisfy { $0 == 401 } && codes.last == 429)
            #expect(try await Demo.audit("auth.token", app).count == 50)
            // A form without its CSRF token is refused, and that is audited too.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            #expect(try await nurse.form("/groups/none/messages", ["text": "hi"], includeCSRF: false).status == .forbidden)
            #expect(try await Demo.audit("auth.csrf", app).contains { $0.actorName == "王芳" && $0.outcome == "denied" })
        }
    }

    // MARK: Storage

    @Test func theSQLiteFileIsTheServersAlone() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            guard case .sqlite(let path) = app.rounds.configuration.database else { Issue.record("not SQLite"); return }
            let permissions = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)
            #expect(permissions.intValue & 0o077 == 0, "the database file is \(String(permissions.intValue, radix: 8))")
        }
        let fresh = NSTemporaryDirectory() + "rounds-perm-\(UUID().uuidString).sqlite"
        defer { try? FileManager.default.removeItem(atPath: fresh) }
        try DatabaseLocation.restrictToOwner(fresh)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: fresh)[.posixPermissions] as? NSNumber)
        #expect(mode.intValue == 0o600)
    }
}
