import Fluent
import Foundation
import RoundsClinical
import RoundsCore
import RoundsFHIR
import RoundsDirectory
import RoundsStore
import Vapor

struct AssessmentDTO: APISchema {
    var id: String
    var patientId: String
    var encounterId: String
    var instrument: String
    var instrumentVersion: Int
    var answers: [String: String]
    var total: Int
    var band: String
    var severity: String
    var assessor: String
    var assessedAt: Date
    var reason: String

    init(_ a: Assessment) {
        id = a.id ?? ""; patientId = a.patientID; encounterId = a.encounterID; instrument = a.instrumentCode
        instrumentVersion = a.instrumentVersion; answers = a.decodedAnswers; total = a.total; band = a.band; severity = a.severity
        assessor = a.assessorName; assessedAt = a.assessedAt; reason = a.reason
    }
    static let sample: AssessmentDTO = {
        let a = Assessment()
        a.id = "…"; a.patientID = "…"; a.encounterID = "…"; a.instrumentCode = "morse-fall-scale"; a.instrumentVersion = 1
        a.answers = #"{"history_of_falling":"yes"}"#; a.total = 45; a.band = "high"; a.severity = "high"; a.assessorName = "王芳"
        a.assessedAt = Date(timeIntervalSince1970: 0); a.reason = "admission"
        return AssessmentDTO(a)
    }()
}

struct NewAssessmentBody: APISchema {
    var instrument: String
    var encounterId: String?
    /// Item key → option key. The score is computed by the server; a client's score is ignored.
    var answers: [String: String]
    /// A key the client makes once per filled-in form: sending it again returns the first assessment.
    var idempotencyKey: String?
    /// admission, routine, after_fall, after_transfer, change_in_condition, other.
    var reason: String?
    static let sample = NewAssessmentBody(instrument: "morse-fall-scale", encounterId: nil, answers: ["history_of_falling": "yes"],
                                          idempotencyKey: "3f0c9a7e-…", reason: "admission")
}

extension Instrument: Content {}
extension Instrument: APISchema {
    static var sample: Instrument { (try? ShippedInstruments.all().first { $0.code == "pain-nrs" }) ?? (try! ShippedInstruments.all()[0]) }
}

struct DueDTO: APISchema {
    static let enums = ["status": ["overdue", "due", "ok"]]
    var instrument: String
    var title: String
    var dueAt: Date
    var status: String
    var reason: String
    init(_ d: NursingService.DueItem) { instrument = d.instrument; title = d.title; dueAt = d.dueAt; status = d.status; reason = d.reason }
    static let sample = DueDTO(.init(instrument: "braden-scale", title: "Braden", dueAt: Date(timeIntervalSince1970: 0), status: "overdue", reason: "reassess"))
}

struct BedStatusDTO: APISchema {
    var patientId: String
    var patientName: String
    var mrn: String
    var encounterId: String
    var bed: String
    var latest: [AssessmentDTO]
    var due: [DueDTO]
    init(_ b: NursingService.BedStatus) {
        patientId = b.patient.id!; patientName = b.patient.name; mrn = b.patient.mrn; encounterId = b.encounter.id!; bed = b.bed
        latest = b.latest.values.sorted { $0.instrumentCode < $1.instrumentCode }.map(AssessmentDTO.init); due = b.due.map(DueDTO.init)
    }
    init(patientId: String, patientName: String, mrn: String, encounterId: String, bed: String, latest: [AssessmentDTO], due: [DueDTO]) {
        self.patientId = patientId; self.patientName = patientName; self.mrn = mrn; self.encounterId = encounterId; self.bed = bed
        self.latest = latest; self.due = due
    }
    static let sample = BedStatusDTO(patientId: "…", patientName: "王建国", mrn: "MRN10001", encounterId: "…", bed: "12", latest: [.sample], due: [.sample])
}

struct CareTaskDTO: APISchema {
    static let enums = ["status": ["active", "stopped"]]
    var id: String
    var title: String
    var schedule: Instrument.Schedule
    var startsAt: Date
    var endsAt: Date?
    var assigneeId: String?
    var assigneeRole: String?
    var status: String
    var sourceAssessmentId: String?
    var createdBy: String
    init(_ t: CareTask) {
        id = t.id ?? ""; title = t.title
        schedule = .init(kind: t.scheduleKind, everyHours: t.everyHours, times: t.times.map { $0.split(separator: ",").map(String.init) })
        startsAt = t.startsAt; endsAt = t.endsAt; assigneeId = t.assigneeID; assigneeRole = t.assigneeRole; status = t.status; sourceAssessmentId = t.sourceAssessmentID
        createdBy = t.createdByName
    }
    static let sample: CareTaskDTO = {
        let t = CareTask()
        t.id = "…"; t.title = "每2小时翻身"; t.scheduleKind = "every_hours"; t.everyHours = 2; t.startsAt = Date(timeIntervalSince1970: 0)
        t.status = "active"; t.createdByName = "王芳"
        return CareTaskDTO(t)
    }()
}

struct NewTaskBody: APISchema {
    var title: String
    var schedule: Instrument.Schedule
    var startsAt: Date?
    var durationHours: Int?
    /// A named nurse of the ward, or
    var assigneeId: String?
    /// nurse or head_nurse: the ward's staff in that role (none named: all the ward's nurses).
    var assigneeRole: String?
    static let sample = NewTaskBody(title: "床头抬高30°", schedule: .init(kind: "daily_at", times: ["08:00", "20:00"]), startsAt: nil,
                                    durationHours: 72, assigneeId: nil, assigneeRole: "nurse")
}

struct TaskRecordBody: APISchema {
    /// The occurrence (as listed by the calendar).
    var dueAt: Date
    /// done or skipped (skipped needs a reason).
    var outcome: String
    var reason: String?
    static let sample = TaskRecordBody(dueAt: Date(timeIntervalSince1970: 0), outcome: "skipped", reason: "患者外出检查")
}

struct TaskRecordDTO: APISchema {
    var taskId: String
    var dueAt: Date
    var outcome: String
    var reason: String?
    var by: String
    var at: Date
    static let sample = TaskRecordDTO(taskId: "…", dueAt: Date(timeIntervalSince1970: 0), outcome: "done", reason: nil, by: "王芳", at: Date(timeIntervalSince1970: 0))
}

struct FallBody: APISchema {
    var note: String?
    static let sample = FallBody(note: "如厕时滑倒，无明显外伤")
}

extension NursingService.CalendarEntry: Content {}
extension NursingService.CalendarEntry: APISchema {
    static var sample: NursingService.CalendarEntry {
        .init(kind: "task", at: Date(timeIntervalSince1970: 0), title: "每2小时翻身", patientId: "…", patientName: "王建国", bed: "12",
              taskId: "…", instrument: nil, status: "upcoming", recordedBy: nil, reason: nil)
    }
}

struct CalendarFeedDTO: APISchema {
    /// Subscribe to this address in a calendar app; it is shown once and replaces the previous one.
    var url: String
    static let sample = CalendarFeedDTO(url: "/calendar/feed/…/rounds.ics")
}

struct FHIRJSON: AsyncResponseEncodable {
    let data: Data
    func encodeResponse(for request: Request) async throws -> Response {
        let response = Response(status: .ok, body: .init(data: data))
        response.headers.contentType = HTTPMediaType(type: "application", subType: "fhir+json", parameters: ["charset": "utf-8"])
        return response
    }
    init(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        data = try encoder.encode(value)
    }
}

/// `/api/v1`: nursing instruments, assessments, the ward's nursing view, care plans, calendars.
struct NursingRoutes {
    let api: APIBuilder

    func register() {
        api.on(.GET, "instruments", summary: "Assessment instruments (newest version of each)", tag: "nursing",
               returns: Instrument.self, array: true) { req in
            _ = try req.context()
            return try await req.rounds.nursing.instruments(on: req.db)
        }
        api.on(.GET, "instruments", ":code", summary: "One instrument's definition (export; ?version=)", tag: "nursing",
               returns: Instrument.self, query: ["version"]) { req in
            _ = try req.context()
            return try await req.rounds.nursing.instrument(req.parameters.require("code"), version: req.query[Int.self, at: "version"], on: req.db)
        }
        api.on(.POST, "instruments", summary: "Add an instrument or a new version of one (administrators)", tag: "nursing",
               body: Instrument.self, returns: Instrument.self, status: 201) { req -> Response in
            let data = req.body.data.map { Data(buffer: $0) } ?? Data()
            let instrument = try await req.rounds.nursing.importInstrument(data, context: req.context(), on: req.db)
            return try await instrument.encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "instruments", ":code", "questionnaire", summary: "The instrument as a FHIR R4 Questionnaire", tag: "nursing",
               query: ["version"], contentType: "application/fhir+json") { req in
            _ = try req.context()
            return try FHIRJSON(try await req.rounds.nursing.instrument(req.parameters.require("code"), version: req.query[Int.self, at: "version"],
                                                                         on: req.db).questionnaire())
        }
        api.on(.POST, "patients", ":patientId", "assessments", summary: "Record an assessment (scored on the server)", tag: "nursing",
               body: NewAssessmentBody.self, returns: AssessmentDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(NewAssessmentBody.self)
            let (assessment, created) = try await req.rounds.nursing.record(
                patientID: req.parameters.require("patientId"),
                .init(instrument: body.instrument, encounterID: body.encounterId, answers: body.answers, idempotencyKey: body.idempotencyKey,
                      reason: body.reason), context: req.context(), on: req.db)
            return try await AssessmentDTO(assessment).encodeResponse(status: created ? .created : .ok, for: req)
        }
        api.on(.GET, "patients", ":patientId", "assessments", summary: "A patient's assessments, newest first", tag: "nursing",
               returns: AssessmentDTO.self, array: true, query: ["instrument"]) { req in
            try await req.rounds.nursing.assessments(patientID: req.parameters.require("patientId"), instrument: req.query[String.self, at: "instrument"],
                                                     context: req.context(), on: req.db).map(AssessmentDTO.init)
        }
        api.on(.GET, "assessments", ":assessmentId", summary: "One assessment", tag: "nursing", returns: AssessmentDTO.self) { req in
            AssessmentDTO(try await req.rounds.nursing.assessment(id: req.parameters.require("assessmentId"), context: req.context(), on: req.db))
        }
        api.on(.GET, "assessments", ":assessmentId", "questionnaire-response", summary: "The assessment as a FHIR R4 QuestionnaireResponse",
               tag: "nursing", contentType: "application/fhir+json") { req in
            try FHIRJSON(await req.rounds.nursing.questionnaireResponse(assessmentID: req.parameters.require("assessmentId"),
                                                                        context: req.context(), on: req.db))
        }
        api.on(.GET, "wards", ":wardId", "nursing", summary: "The ward's beds: latest scores and what is due or overdue", tag: "nursing",
               returns: BedStatusDTO.self, array: true) { req in
            try await req.rounds.nursing.ward(req.parameters.require("wardId"), context: req.context(), on: req.db).1.map(BedStatusDTO.init)
        }
        api.on(.POST, "patients", ":patientId", "falls", summary: "Record a fall (fall-risk reassessment falls due)", tag: "nursing",
               body: FallBody.self, status: 204) { req -> HTTPStatus in
            let body = try req.content.decode(FallBody.self)
            _ = try await req.rounds.nursing.recordFall(patientID: req.parameters.require("patientId"), note: body.note, context: req.context(), on: req.db)
            return .noContent
        }
        registerPlan()
    }

    private func registerPlan() {
        api.on(.GET, "patients", ":patientId", "care-plan", summary: "A patient's care-plan tasks", tag: "nursing",
               returns: CareTaskDTO.self, array: true) { req in
            try await req.rounds.nursing.tasks(patientID: req.parameters.require("patientId"), context: req.context(), on: req.db).map(CareTaskDTO.init)
        }
        api.on(.POST, "patients", ":patientId", "care-plan", summary: "Add a care-plan task", tag: "nursing",
               body: NewTaskBody.self, returns: CareTaskDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(NewTaskBody.self)
            let task = try await req.rounds.nursing.addTask(
                patientID: req.parameters.require("patientId"),
                .init(title: body.title, schedule: body.schedule, startsAt: body.startsAt, durationHours: body.durationHours,
                      assigneeID: body.assigneeId, assigneeRole: body.assigneeRole),
                context: req.context(), on: req.db)
            return try await CareTaskDTO(task).encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "care-plan", ":taskId", "records", summary: "Record one occurrence done, or skipped with a reason", tag: "nursing",
               body: TaskRecordBody.self, returns: TaskRecordDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(TaskRecordBody.self)
            let r = try await req.rounds.nursing.recordTask(taskID: req.parameters.require("taskId"), dueAt: body.dueAt, outcome: body.outcome,
                                                            reason: body.reason, context: req.context(), on: req.db)
            return try await TaskRecordDTO(taskId: r.taskID, dueAt: r.dueAt, outcome: r.outcome, reason: r.reason, by: r.byName, at: r.at)
                .encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "care-plan", ":taskId", "stop", summary: "Stop a care-plan task", tag: "nursing", returns: CareTaskDTO.self) { req in
            CareTaskDTO(try await req.rounds.nursing.stopTask(taskID: req.parameters.require("taskId"), context: req.context(), on: req.db))
        }
        api.on(.GET, "wards", ":wardId", "calendar", summary: "The ward's tasks and reassessments in [from, to)", tag: "nursing",
               returns: NursingService.CalendarEntry.self, array: true, query: ["from", "to"]) { req in
            let (from, to) = try NursingPages.range(req)
            return try await req.rounds.nursing.wardCalendar(req.parameters.require("wardId"), from: from, to: to, context: req.context(), on: req.db)
        }
        api.on(.GET, "patients", ":patientId", "calendar", summary: "A patient's tasks and reassessments in [from, to)", tag: "nursing",
               returns: NursingService.CalendarEntry.self, array: true, query: ["from", "to"]) { req in
            let (from, to) = try NursingPages.range(req)
            return try await req.rounds.nursing.patientCalendar(req.parameters.require("patientId"), from: from, to: to, context: req.context(), on: req.db)
        }
        api.on(.POST, "me", "calendar-feed", summary: "A new secret iCalendar address for my tasks (replaces the previous one)", tag: "nursing",
               returns: CalendarFeedDTO.self) { req in
            let token = try await req.rounds.nursing.newCalendarFeedToken(context: req.context(), on: req.db)
            return CalendarFeedDTO(url: "/calendar/feed/\(token)/rounds.ics")
        }
    }
}
