import FluentKit
import Foundation
import RoundsCore
@testable import RoundsChat
@testable import RoundsClinical
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

/// Bedside nursing through the API and the pages, on SQLite and PostgreSQL: assessments scored on
/// the server, permissions, idempotent resends, high-risk cards and tasks, due/overdue with an
/// injected clock, care-plan records, calendars and the iCalendar feed, FHIR export, instruments
/// added without code.
@Suite struct NursingTests {
    static let highMorse = ["history_of_falling": "yes", "secondary_diagnosis": "no", "ambulatory_aid": "none_bedrest_nurse",
                            "iv_access": "yes", "gait": "normal_bedrest_wheelchair", "mental_status": "oriented"]  // 45, high
    static let lowMorse = ["history_of_falling": "no", "secondary_diagnosis": "no", "ambulatory_aid": "none_bedrest_nurse",
                           "iv_access": "no", "gait": "normal_bedrest_wheelchair", "mental_status": "oriented"]  // 0, low

    /// 王建国 admitted to 肺癌中心 bed 12 over HL7; returns him.
    static func admit(_ app: Application) async throws -> Patient {
        try await PatientGroupTests.deliver(app, PatientGroupTests.fixture("adt_a01_utf8.hl7"))
        return try #require(try await Patient.query(on: app.db).filter(\.$mrn == "MRN10001").first())
    }

    static func body(_ answers: [String: String], key: String? = nil, instrument: String = "morse-fall-scale",
                     encounter: String? = nil) -> NewAssessmentBody {
        NewAssessmentBody(instrument: instrument, encounterId: encounter, answers: answers, idempotencyKey: key, reason: "admission")
    }

    @Test(arguments: Backend.all)
    func aNurseAssessesAndAHighRiskBandStartsTasksAndACard(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let patient = try await Self.admit(app)
            let nurse = Client(app), doctor = Client(app), other = Client(app)
            try await nurse.login("wang.fang")
            try await doctor.login("li.ming")
            try await other.login("zhou.ting")
            let path = "/api/v1/patients/\(patient.id!)/assessments"

            // The client's own score is not trusted: only answers count.
            let raw = try await nurse.raw(.POST, path, """
                {"instrument":"morse-fall-scale","answers":\(String(decoding: try JSONEncoder().encode(Self.highMorse), as: UTF8.self)),
                 "idempotencyKey":"key-0001-abcd","total":0,"band":"low"}
                """)
            #expect(raw.status == .created)
            let assessment = try raw.decode(AssessmentDTO.self)
            #expect(assessment.total == 45 && assessment.band == "high" && assessment.assessor == "王芳" && assessment.instrumentVersion == 1)
            // The same submission again (a resend after a network drop): the same assessment.
            let again = try await nurse.json(.POST, path, Self.body(Self.highMorse, key: "key-0001-abcd"))
            #expect(again.status == .ok)
            #expect(try again.decode(AssessmentDTO.self).id == assessment.id)
            #expect(try await Assessment.query(on: app.db).count() == 1)

            // The band's interventions became care-plan tasks; the high risk is a card in the group.
            let tasks = try await nurse.get("/api/v1/patients/\(patient.id!)/care-plan").decode([CareTaskDTO].self)
            #expect(Set(tasks.map(\.title)) == ["床栏拉起，悬挂防跌倒标识", "每班巡视，确认防跌倒措施落实"])
            #expect(tasks.allSatisfy { $0.sourceAssessmentId == assessment.id })
            try await app.rounds.dispatchOutbox(on: app.db)
            let group = try await PatientGroupTests.group(app)
            let card = try #require(try await ChatMessage.query(on: app.db).filter(\.$groupID == group.id!).filter(\.$kind == "card").all()
                .first { $0.text.contains("护理评估高风险") || ($0.card ?? "").contains("护理评估高风险") })
            #expect((card.card ?? "").contains("Morse") && (card.card ?? "").contains("45"))
            // A low result makes no card and no task.
            _ = try await nurse.json(.POST, path, Self.body(Self.lowMorse, key: "key-0002-abcd"))
            #expect(try await CareTask.query(on: app.db).count() == 2)
            #expect(try await OutboxEvent.query(on: app.db).filter(\.$kind == "assessment.high_risk").count() == 1)

            // Doctors read, do not chart; other wards neither.
            #expect(try await doctor.json(.POST, path, Self.body(Self.lowMorse, key: "key-0003-abcd")).status == .forbidden)
            #expect(try await doctor.get(path).decode([AssessmentDTO].self).map(\.total) == [0, 45])
            #expect(try await other.get(path).status == .forbidden)
            #expect(try await other.json(.POST, path, Self.body(Self.lowMorse, key: "key-0004-abcd")).status == .forbidden)

            // Bad answers: 422 naming the item; another patient's stay: 403. Nothing stored.
            var missing = Self.lowMorse
            missing.removeValue(forKey: "gait")
            let noGait = try await nurse.json(.POST, path, Self.body(missing, key: "key-0005-abcd"))
            #expect(noGait.status == .unprocessableEntity && noGait.body.string.contains("answers.gait: required"))
            var unknown = Self.lowMorse
            unknown["gait"] = "running"
            let badOption = try await nurse.json(.POST, path, Self.body(unknown, key: "key-0006-abcd"))
            #expect(badOption.status == .unprocessableEntity && badOption.body.string.contains("answers.gait"))
            let seeded = try await Demo.patient(onWard: "LUNG", app)
            let theirs = try #require(try await Encounter.query(on: app.db).filter(\.$patientID == seeded.id!).first())
            #expect(try await nurse.json(.POST, path, Self.body(Self.lowMorse, key: "key-0007-abcd", encounter: theirs.id)).status == .forbidden)
            #expect(try await nurse.json(.POST, path, Self.body(Self.lowMorse, instrument: "no-such-scale")).status == .notFound)
            #expect(try await nurse.raw(.POST, path, "{\"instrument\": 5").status == .badRequest)
            #expect(try await Assessment.query(on: app.db).count() == 2)
            let audit = try await Demo.audit("assessment.create", app)
            #expect(audit.filter { $0.outcome == "success" }.count == 2 && audit.contains { $0.outcome == "denied" && $0.actorName == "李明" })

            // FHIR: the assessment as a QuestionnaireResponse, the instrument as a Questionnaire.
            let fhir = try await nurse.get("/api/v1/assessments/\(assessment.id)/questionnaire-response")
            #expect(fhir.headers.contentType?.subType == "fhir+json")
            let response = try JSONSerialization.jsonObject(with: Data(buffer: fhir.body)) as? [String: Any]
            #expect(response?["resourceType"] as? String == "QuestionnaireResponse" && response?["questionnaire"] as? String == "urn:rounds:instrument:morse-fall-scale|1")
            let items = response?["item"] as? [[String: Any]] ?? []
            #expect(items.contains { ($0["linkId"] as? String) == "total" && (($0["answer"] as? [[String: Any]])?.first?["valueInteger"] as? Int) == 45 })
            #expect(try await other.get("/api/v1/assessments/\(assessment.id)/questionnaire-response").status == .forbidden)
            let questionnaire = try await nurse.get("/api/v1/instruments/braden-scale/questionnaire")
            #expect(questionnaire.status == .ok && questionnaire.body.string.contains("\"resourceType\":\"Questionnaire\""))
        }
    }

    @Test func dueAndOverdueFollowAdmissionBandsFallsAndTransfersAcrossShiftsAndDays() throws {
        let service = NursingService(clock: TestClock(), ids: .uuidV7(), audit: AuditLog(clock: TestClock(), ids: .uuidV7()),
                                     timeZone: TimeZone(identifier: "Asia/Shanghai")!,
                                     outbox: OutboxWriter(clock: TestClock(), ids: .uuidV7(), notifier: ChangeNotifier()))
        let instruments = try ShippedInstruments.all().filter { ["morse-fall-scale", "braden-scale"].contains($0.code) }
        let f = ISO8601DateFormatter()
        let admitted = f.date(from: "2026-11-23T07:00:00+08:00")!  // start of the day shift
        let stay = Encounter()
        stay.admittedAt = admitted
        func status(_ code: String, at now: String, assessments: [Assessment] = [], falls: [Date] = [], transfers: [Date] = []) -> NursingService.DueItem {
            service.dueItems(encounter: stay, instruments: instruments, assessments: assessments, falls: falls, transfers: transfers,
                             now: f.date(from: now)!).first { $0.instrument == code }!
        }
        // Admission assessment within 24 h: fine in the day shift, due in the night shift, overdue the next morning.
        #expect(status("morse-fall-scale", at: "2026-11-23T10:00:00+08:00").status == "ok")
        let night = status("morse-fall-scale", at: "2026-11-23T23:30:00+08:00")
        #expect(night.status == "due" && night.reason == "admission" && night.dueAt == f.date(from: "2026-11-24T07:00:00+08:00"))
        #expect(status("morse-fall-scale", at: "2026-11-24T07:00:01+08:00").status == "overdue")

        // Assessed high risk at 23:50: reassess in 24 h, across midnight.
        let high = Assessment()
        high.instrumentCode = "morse-fall-scale"; high.band = "high"; high.assessedAt = f.date(from: "2026-11-23T23:50:00+08:00")!
        #expect(status("morse-fall-scale", at: "2026-11-24T08:00:00+08:00", assessments: [high]).dueAt == f.date(from: "2026-11-24T23:50:00+08:00"))
        #expect(status("morse-fall-scale", at: "2026-11-24T08:00:00+08:00", assessments: [high]).status == "ok")
        #expect(status("morse-fall-scale", at: "2026-11-24T16:00:00+08:00", assessments: [high]).status == "due")
        #expect(status("morse-fall-scale", at: "2026-11-25T00:00:00+08:00", assessments: [high]).status == "overdue")
        // Low risk: a week.
        let low = Assessment()
        low.instrumentCode = "morse-fall-scale"; low.band = "low"; low.assessedAt = high.assessedAt
        #expect(status("morse-fall-scale", at: "2026-11-26T08:00:00+08:00", assessments: [low]).dueAt == f.date(from: "2026-11-30T23:50:00+08:00"))
        // A fall after it: Morse within the hour; Braden does not care about falls.
        let fall = f.date(from: "2026-11-25T03:10:00+08:00")!
        let afterFall = status("morse-fall-scale", at: "2026-11-25T03:15:00+08:00", assessments: [low], falls: [fall])
        #expect(afterFall.reason == "fall" && afterFall.status == "due" && afterFall.dueAt == fall.addingTimeInterval(3600))
        #expect(status("morse-fall-scale", at: "2026-11-25T04:11:00+08:00", assessments: [low], falls: [fall]).status == "overdue")
        #expect(status("braden-scale", at: "2026-11-23T08:00:00+08:00", falls: [fall]).reason == "admission")
        // A fall before the last assessment is already covered.
        #expect(status("morse-fall-scale", at: "2026-11-26T08:00:00+08:00", assessments: [low],
                       falls: [f.date(from: "2026-11-23T20:00:00+08:00")!]).reason == "reassess")
        // A transfer: Braden within 24 h of it.
        let transfer = f.date(from: "2026-11-24T14:00:00+08:00")!
        let braden = Assessment()
        braden.instrumentCode = "braden-scale"; braden.band = "none"; braden.assessedAt = f.date(from: "2026-11-23T09:00:00+08:00")!
        let moved = status("braden-scale", at: "2026-11-24T15:00:00+08:00", assessments: [braden], transfers: [transfer])
        #expect(moved.reason == "transfer" && moved.dueAt == transfer.addingTimeInterval(86_400) && moved.status == "ok")
    }

    @Test func taskOccurrencesFollowTheHospitalsClock() throws {
        let zone = TimeZone(identifier: "Asia/Shanghai")!
        let f = ISO8601DateFormatter()
        let task = CareTask()
        task.scheduleKind = "daily_at"; task.times = "08:00,16:00,00:00"; task.startsAt = f.date(from: "2026-11-23T10:00:00+08:00")!
        let window = NursingService.occurrences(of: task, from: f.date(from: "2026-11-23T00:00:00+08:00")!, to: f.date(from: "2026-11-25T00:00:00+08:00")!, timeZone: zone)
        #expect(window.map { f.string(from: $0) } == ["2026-11-23T08:00:00Z", "2026-11-23T16:00:00Z", "2026-11-24T00:00:00Z", "2026-11-24T08:00:00Z"])
        task.scheduleKind = "every_hours"; task.everyHours = 2; task.times = nil
        task.endsAt = f.date(from: "2026-11-23T17:00:00+08:00")!
        let every = NursingService.occurrences(of: task, from: f.date(from: "2026-11-23T11:00:00+08:00")!, to: f.date(from: "2026-11-24T00:00:00+08:00")!, timeZone: zone)
        #expect(every.count == 3 && every.first == f.date(from: "2026-11-23T12:00:00+08:00") && every.last == f.date(from: "2026-11-23T16:00:00+08:00"))
        task.scheduleKind = "once"; task.endsAt = nil
        #expect(NursingService.occurrences(of: task, from: task.startsAt, to: task.startsAt.addingTimeInterval(1), timeZone: zone) == [task.startsAt])
    }

    @Test(arguments: Backend.all)
    func theWardViewShowsDueAssessmentsAndFallsMakeMorseDue(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let lung = try await Demo.department("LUNG", app)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let view = try await nurse.get("/api/v1/wards/\(lung.id!)/nursing")
            #expect(view.status == .ok, "\(view.body.string)")
            let beds = try view.decode([BedStatusDTO].self)
            #expect(beds.count == 8 && beds.allSatisfy { $0.latest.isEmpty && $0.due.count == 6 })
            clock.advance(by: 25 * 3600)  // every seeded stay is past its 24 hours now
            try await nurse.login("wang.fang")  // a new shift, a new session
            let later = try await nurse.get("/api/v1/wards/\(lung.id!)/nursing").decode([BedStatusDTO].self)
            #expect(later.allSatisfy { $0.due.allSatisfy { $0.status == "overdue" && $0.reason == "admission" } })
            let first = later[0]
            _ = try await nurse.json(.POST, "/api/v1/patients/\(first.patientId)/assessments", Self.body(Self.lowMorse, key: "ward-0001-key"))
            var now = try await nurse.get("/api/v1/wards/\(lung.id!)/nursing").decode([BedStatusDTO].self).first { $0.patientId == first.patientId }!
            #expect(now.latest.map(\.instrument) == ["morse-fall-scale"])
            #expect(now.due.first { $0.instrument == "morse-fall-scale" }?.status == "ok")
            clock.advance(by: 600)
            #expect(try await nurse.json(.POST, "/api/v1/patients/\(first.patientId)/falls", FallBody(note: "如厕时滑倒")).status == .noContent)
            now = try await nurse.get("/api/v1/wards/\(lung.id!)/nursing").decode([BedStatusDTO].self).first { $0.patientId == first.patientId }!
            let morse = try #require(now.due.first { $0.instrument == "morse-fall-scale" })
            #expect(morse.reason == "fall" && morse.status == "due" && morse.dueAt == clock.now().addingTimeInterval(3600))
            #expect(try await Demo.audit("nursing.fall", app).count == 1)
            let page = try await nurse.page("/wards/\(lung.id!)/nursing")
            #expect(page.status == .ok && page.body.string.contains("跌倒后复评") && page.body.string.contains("sev-low"))
            let stranger = Client(app)
            try await stranger.login("zhou.ting")
            #expect(try await stranger.get("/api/v1/wards/\(lung.id!)/nursing").status == .forbidden)
        }
    }

    @Test(arguments: Backend.all)
    func carePlanRecordsCalendarsAndTheICalendarFeed(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let patient = try await Self.admit(app)
            let lung = try await Demo.department("LUNG", app)
            let nurse = Client(app), doctor = Client(app)
            try await nurse.login("wang.fang")
            try await doctor.login("li.ming")
            let created = try await nurse.json(.POST, "/api/v1/patients/\(patient.id!)/care-plan",
                                               NewTaskBody(title: "每2小时翻身", schedule: .init(kind: "every_hours", everyHours: 2), startsAt: nil,
                                                           durationHours: nil, assigneeId: nil, assigneeRole: nil))
            #expect(created.status == .created)
            let task = try created.decode(CareTaskDTO.self)
            #expect(try await nurse.json(.POST, "/api/v1/patients/\(patient.id!)/care-plan",
                                         NewTaskBody(title: "x", schedule: .init(kind: "daily_at", times: ["8点"]), startsAt: nil, durationHours: nil,
                                                     assigneeId: nil, assigneeRole: nil)).status == .unprocessableEntity)
            #expect(try await doctor.json(.POST, "/api/v1/patients/\(patient.id!)/care-plan",
                                          NewTaskBody(title: "y", schedule: .init(kind: "once"), startsAt: nil, durationHours: nil, assigneeId: nil, assigneeRole: nil)).status == .forbidden)
            // Tasks for the head nurse only: in her feed, not in the nurse's.
            #expect(try await nurse.json(.POST, "/api/v1/patients/\(patient.id!)/care-plan",
                                         NewTaskBody(title: "护士长查看压疮护理", schedule: .init(kind: "once"), startsAt: nil, durationHours: nil,
                                                     assigneeId: nil, assigneeRole: "head_nurse")).status == .created)
            #expect(try await nurse.json(.POST, "/api/v1/patients/\(patient.id!)/care-plan",
                                         NewTaskBody(title: "z", schedule: .init(kind: "once"), startsAt: nil, durationHours: nil,
                                                     assigneeId: nil, assigneeRole: "janitor")).status == .unprocessableEntity)

            let iso = ISO8601DateFormatter()
            let start = clock.now()
            let range = "from=\(iso.string(from: start))&to=\(iso.string(from: start.addingTimeInterval(6 * 3600)))"
            let entries = try await nurse.get("/api/v1/wards/\(lung.id!)/calendar?\(range)").decode([NursingService.CalendarEntry].self)
            let turns = entries.filter { $0.taskId == task.id }
            #expect(turns.map(\.at) == [start, start.addingTimeInterval(7200), start.addingTimeInterval(14400)])
            // His admission assessments fall due 24 h after the HIS's admission time.
            let stay = try #require(try await Encounter.query(on: app.db).filter(\.$patientID == patient.id!).first())
            let due = stay.admittedAt.addingTimeInterval(86_400)
            let around = "from=\(iso.string(from: due.addingTimeInterval(-60)))&to=\(iso.string(from: due.addingTimeInterval(60)))"
            let reassessments = try await nurse.get("/api/v1/patients/\(patient.id!)/calendar?\(around)").decode([NursingService.CalendarEntry].self)
                .filter { $0.kind == "assessment" }
            #expect(reassessments.count == 6 && reassessments.allSatisfy { $0.at == due && $0.reason == "admission" })

            let recordPath = "/api/v1/care-plan/\(task.id)/records"
            #expect(try await nurse.json(.POST, recordPath, TaskRecordBody(dueAt: turns[0].at, outcome: "done", reason: nil)).status == .created)
            #expect(try await nurse.json(.POST, recordPath, TaskRecordBody(dueAt: turns[0].at, outcome: "done", reason: nil)).status == .conflict)
            #expect(try await nurse.json(.POST, recordPath, TaskRecordBody(dueAt: turns[1].at, outcome: "skipped", reason: " ")).status == .unprocessableEntity)
            #expect(try await nurse.json(.POST, recordPath, TaskRecordBody(dueAt: turns[1].at, outcome: "skipped", reason: "患者外出做CT")).status == .created)
            #expect(try await nurse.json(.POST, recordPath, TaskRecordBody(dueAt: turns[1].at.addingTimeInterval(600), outcome: "done", reason: nil))
                .status == .unprocessableEntity)
            #expect(try await doctor.json(.POST, recordPath, TaskRecordBody(dueAt: turns[2].at, outcome: "done", reason: nil)).status == .forbidden)
            clock.advance(by: 5 * 3600)
            let after = try await doctor.get("/api/v1/patients/\(patient.id!)/calendar?\(range)").decode([NursingService.CalendarEntry].self)
                .filter { $0.taskId == task.id }
            #expect(after.map(\.status) == ["done", "skipped", "overdue"] && after[1].reason == "患者外出做CT" && after[0].recordedBy == "王芳")

            // The pages: day and week views, the form to record from the calendar.
            let day = try await nurse.page("/wards/\(lung.id!)/calendar")
            #expect(day.status == .ok && day.body.string.contains("每2小时翻身") && day.body.string.contains("status-overdue"))
            #expect(try await nurse.page("/patients/\(patient.id!)/calendar?view=week").status == .ok)
            let third = iso.string(from: turns[2].at)
            let posted = try await nurse.form("/care-plan/\(task.id)/record", ["dueAt": third, "outcome": "done", "back": "/wards/\(lung.id!)/calendar"])
            #expect(posted.status == .seeOther && posted.headers.first(name: .location)?.hasPrefix("/wards/\(lung.id!)/calendar") == true)
            #expect(try await CareTaskRecord.query(on: app.db).count() == 3)

            // Stopping ends the occurrences from now on.
            #expect(try await nurse.json(.POST, "/api/v1/care-plan/\(task.id)/stop", [String: String]()).status == .ok)
            let stopped = try await nurse.get("/api/v1/patients/\(patient.id!)/calendar?from=\(iso.string(from: clock.now()))&to=\(iso.string(from: clock.now().addingTimeInterval(86_400)))")
                .decode([NursingService.CalendarEntry].self)
            #expect(!stopped.contains { $0.taskId == task.id })

            // iCalendar: a secret address, no cookie needed; a wrong token finds nothing.
            let feed = try await nurse.json(.POST, "/api/v1/me/calendar-feed", [String: String]()).decode(CalendarFeedDTO.self)
            let calendar = try await Client(app).request(.GET, feed.url)
            #expect(calendar.status == .ok && calendar.headers.contentType?.subType == "calendar")
            #expect(calendar.body.string.hasPrefix("BEGIN:VCALENDAR") && calendar.body.string.contains("BEGIN:VEVENT")
                    && calendar.body.string.contains("12床 王建国"))
            #expect(try await Client(app).request(.GET, "/calendar/feed/not-a-token/rounds.ics").status == .notFound)
            #expect(!calendar.body.string.contains("护士长查看压疮护理"))
            let headNurse = Client(app)
            try await headNurse.login("zhang.li")
            let hers = try await headNurse.json(.POST, "/api/v1/me/calendar-feed", [String: String]()).decode(CalendarFeedDTO.self)
            #expect(try await Client(app).request(.GET, hers.url).body.string.contains("护士长查看压疮护理"))
            #expect(try await Demo.audit("calendar.feed.read", app).count == 2)
        }
    }

    static let deliriumJSON = """
        {"code":"delirium-check","version":7,"title":{"zh-CN":"谵妄筛查","en":"Delirium check"},"category":"other",
         "scoring":{"rule":"max_of_group"},
         "items":[{"key":"attention","label":{"zh-CN":"注意力"},"group":"mind","options":[{"key":"ok","label":{"zh-CN":"正常"},"points":0},{"key":"poor","label":{"zh-CN":"差"},"points":2}]},
                  {"key":"orientation","label":{"zh-CN":"定向力"},"group":"mind","options":[{"key":"ok","label":{"zh-CN":"正常"},"points":0},{"key":"poor","label":{"zh-CN":"差"},"points":2}]},
                  {"key":"agitation","label":{"zh-CN":"躁动"},"required":false,"options":[{"key":"no","label":{"zh-CN":"无"},"points":0},{"key":"yes","label":{"zh-CN":"有"},"points":1}]}],
         "bands":[{"key":"low","min":0,"max":1,"label":{"zh-CN":"低"},"severity":"low","reassessHours":24},
                  {"key":"high","min":2,"max":3,"label":{"zh-CN":"高"},"severity":"high","reassessHours":8,
                   "interventions":[{"title":{"zh-CN":"每4小时评估意识"},"schedule":{"kind":"every_hours","everyHours":4},"durationHours":48}]}],
         "admissionWithinHours":24}
        """

    @Test(arguments: Backend.all)
    func administratorsAddInstrumentsWithoutCode(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let patient = try await Self.admit(app)
            let admin = Client(app), nurse = Client(app)
            try await admin.login("admin")
            try await nurse.login("wang.fang")
            #expect(try await nurse.raw(.POST, "/api/v1/instruments", Self.deliriumJSON).status == .forbidden)
            let created = try await admin.raw(.POST, "/api/v1/instruments", Self.deliriumJSON)
            #expect(created.status == .created)
            #expect(try created.decode(Instrument.self).version == 1)  // numbered by Rounds, not by the upload
            #expect(try await admin.raw(.POST, "/api/v1/instruments", Self.deliriumJSON).decode(Instrument.self).version == 2)
            let gap = Self.deliriumJSON.replacingOccurrences(of: "\"min\":2,\"max\":3", with: "\"min\":3,\"max\":3")
            let refused = try await admin.raw(.POST, "/api/v1/instruments", gap)
            #expect(refused.status == .unprocessableEntity && refused.body.string.contains("bands.high"))
            let missing = try await admin.raw(.POST, "/api/v1/instruments", #"{"code":"x","version":1}"#)
            #expect(missing.status == .unprocessableEntity && missing.body.string.contains("title: required"))
            // The form on the admin page does the same.
            let page = try await admin.form("/admin/instruments", ["definition": Self.deliriumJSON])
            #expect(page.status == .seeOther && page.headers.first(name: .location)?.contains("delirium-check") == true)
            #expect(try await admin.page("/admin/instruments").body.string.contains("谵妄筛查"))

            // Nurses use it at once; the worst of a group counts.
            let scored = try await nurse.json(.POST, "/api/v1/patients/\(patient.id!)/assessments",
                                              Self.body(["attention": "poor", "orientation": "poor", "agitation": "yes"], key: "delirium-001", instrument: "delirium-check"))
            let result = try scored.decode(AssessmentDTO.self)
            #expect(result.total == 3 && result.band == "high" && result.instrumentVersion == 3)
            #expect(try await CareTask.query(on: app.db).filter(\.$title == "每4小时评估意识").first()?.endsAt != nil)
            let export = try await nurse.get("/api/v1/instruments/delirium-check?version=1").decode(Instrument.self)
            #expect(export.version == 1 && export.items.count == 3)
        }
    }

    @Test(arguments: Backend.all)
    func thePagesWorkWithoutJavaScriptToo(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let patient = try await Self.admit(app)
            let nurse = Client(app), doctor = Client(app)
            try await nurse.login("wang.fang")
            try await doctor.login("li.ming")
            let form = try await nurse.page("/patients/\(patient.id!)/assess/morse-fall-scale")
            #expect(form.status == .ok && form.body.string.contains("data-item=\"history_of_falling\"") && form.body.string.contains("/js/assess.js"))
            #expect(try await doctor.page("/patients/\(patient.id!)/assess/morse-fall-scale").status == .forbidden)
            let key = try #require(Client.hiddenField("idempotencyKey", in: form.body.string))
            var fields = Dictionary(uniqueKeysWithValues: Self.highMorse.map { ("a_\($0.key)", $0.value) })
            fields["idempotencyKey"] = key
            fields["reason"] = "admission"
            let sent = try await nurse.form("/patients/\(patient.id!)/assess/morse-fall-scale", fields)
            #expect(sent.status == .seeOther && sent.headers.first(name: .location)?.hasPrefix("/patients/\(patient.id!)/nursing?done=") == true)
            // Where she lands, at the top: the score, the band and the tasks it started.
            let landed = try await nurse.page(try #require(sent.headers.first(name: .location))).body.string
            #expect(landed.contains("已保存：") && landed.contains("45 分") && landed.contains("高风险") && landed.contains("已开始护理措施："))
            fields["a_history_of_falling"] = "no"
            fields["idempotencyKey"] = key + "-2"
            _ = try await nurse.form("/patients/\(patient.id!)/assess/morse-fall-scale", fields)
            fields.removeValue(forKey: "a_gait")
            fields["idempotencyKey"] = key + "-3"
            // A question left out: the form comes back (422) naming it in words, highlighted, with
            // every other answer still chosen and the same idempotency key; nothing is stored.
            let before = try await Assessment.query(on: app.db).count()
            let bad = try await nurse.form("/patients/\(patient.id!)/assess/morse-fall-scale", fields)
            #expect(bad.status == .unprocessableEntity)
            let page = bad.body.string
            #expect(page.contains("还有一题未回答") && page.contains("步态"))
            #expect(page.contains("class=\"item missing\" id=\"item-gait\""))
            #expect(page.contains("name=\"a_history_of_falling\" value=\"no\" data-points=\"0\" checked"))
            #expect(page.contains("value=\"\(key)-3\""))
            #expect(!page.contains("answers.gait"))
            #expect(try await Assessment.query(on: app.db).count() == before)

            let record = try await doctor.page("/patients/\(patient.id!)/nursing")
            #expect(record.status == .ok && record.body.string.contains("<polyline") && !record.body.string.contains("assess/morse-fall-scale"))
            let ids = try await Assessment.query(on: app.db).sort(\.$assessedAt).sort(\.$id).all().map { $0.id! }
            let compare = try await doctor.page("/patients/\(patient.id!)/nursing/compare?a=\(ids[0])&b=\(ids[1])")
            #expect(compare.status == .ok && compare.body.string.contains("class=\"changed\"") && compare.body.string.contains("45"))
            #expect(try await nurse.page("/patients/\(patient.id!)/nursing").body.string.contains("fall-form"))
        }
    }
}

@Suite struct CareTaskTimingTests {
    /// A task created now is due now, not overdue; half an hour past its time it is overdue.
    @Test(arguments: Backend.all)
    func aNewTaskIsDueNotOverdue(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let patient = try await NursingTests.admit(app)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let created = try await nurse.json(.POST, "/api/v1/patients/\(patient.id!)/care-plan",
                                               NewTaskBody(title: "翻身", schedule: .init(kind: "every_hours", everyHours: 2), startsAt: nil,
                                                           durationHours: 24, assigneeId: nil, assigneeRole: "nurse"))
            #expect(created.status == .created)
            func firstStatus() async throws -> String? {
                let entries = try await nurse.get("/api/v1/patients/\(patient.id!)/calendar").decode([NursingService.CalendarEntry].self)
                return entries.first { $0.kind == "task" && $0.title == "翻身" }?.status
            }
            clock.advance(by: 5)
            #expect(try await firstStatus() == "due")
            clock.advance(by: 31 * 60)
            #expect(try await firstStatus() == "overdue")
        }
    }
}
