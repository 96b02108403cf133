import Fluent
import Foundation
import RoundsClinical
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// Bedside nursing pages, iPad-first: the ward's beds with score badges and what is due, the
/// assessment form (large targets, running score, kept as a draft when the network drops), the
/// patient's nursing record with charts and comparison, care plan, calendars, instruments admin.
struct NursingPages {
    struct Option: Encodable { var value: String; var label: String; var selected: Bool = false }
    struct Badge: Encodable { var instrument: String; var short: String; var total: Int; var band: String; var severity: String }
    struct DueView: Encodable { var instrument: String; var title: String; var at: String; var status: String; var reason: String }
    struct BedView: Encodable { var patientId: String; var bed: String; var name: String; var mrn: String; var badges: [Badge]; var due: [DueView] }
    struct WardData: Encodable {
        var wardId: String; var wardName: String; var beds: [BedView]; var overdue: Int; var dueNow: Int
        /// Only the ward's nurses chart: others see what is due without a link they cannot use.
        var canChart: Bool
        var canEditRules: Bool
    }

    static let shortNames = ["morse-fall-scale": "跌倒", "braden-scale": "压疮", "nrs-2002": "营养", "barthel-index": "自理",
                             "caprini-vte": "VTE", "pain-nrs": "疼痛"]

    func register(_ routes: any RoutesBuilder) {
        routes.get("wards", ":wardId", "nursing", use: ward)
        routes.get("wards", ":wardId", "calendar", use: wardCalendar)
        routes.get("patients", ":patientId", "nursing", use: patient)
        routes.get("patients", ":patientId", "nursing", "compare", use: compare)
        routes.get("patients", ":patientId", "calendar", use: patientCalendar)
        routes.get("patients", ":patientId", "assess", ":code", use: form)
        routes.post("patients", ":patientId", "assess", ":code", use: submit)
        routes.post("patients", ":patientId", "care-plan", use: addTask)
        routes.post("patients", ":patientId", "falls", use: fall)
        routes.post("care-plan", ":taskId", "record", use: recordTask)
        routes.post("care-plan", ":taskId", "stop", use: stopTask)
        routes.post("calendar", "feed", use: newFeed)
        routes.get("admin", "instruments", use: instruments)
        routes.post("admin", "instruments", use: importInstrument)
    }

    /// The iCalendar feed: its secret token is the credential (calendar apps send no cookies).
    static func registerFeed(_ routes: any RoutesBuilder) {
        routes.get("calendar", "feed", ":token", "rounds.ics") { req -> Response in
            let text = try await req.rounds.nursing.calendarFeed(token: req.parameters.require("token"), clientAddress: req.clientAddress, on: req.db)
            let response = Response(status: .ok, body: .init(string: text))
            response.headers.contentType = HTTPMediaType(type: "text", subType: "calendar", parameters: ["charset": "utf-8"])
            response.headers.replaceOrAdd(name: .cacheControl, value: "private, no-store")
            return response
        }
    }

    // MARK: Ward

    @Sendable func ward(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let (ward, beds) = try await req.rounds.nursing.ward(req.parameters.require("wardId"), context: req.context(), on: req.db)
        let header = try await req.rounds.nursing.wardHeader(ward.id!, context: req.context(), on: req.db)
        let views = beds.map { b in
            BedView(patientId: b.patient.id!, bed: b.bed, name: b.patient.name, mrn: b.patient.mrn,
                    badges: b.latest.values.sorted { $0.instrumentCode < $1.instrumentCode }.map {
                        Badge(instrument: $0.instrumentCode, short: Self.shortNames[$0.instrumentCode] ?? $0.instrumentCode, total: $0.total,
                              band: $0.band, severity: $0.severity)
                    },
                    due: b.due.filter { $0.status != "ok" }.map { Self.dueView($0, t) })
        }
        let all = beds.flatMap(\.due)
        return try await req.page("nursing_ward", title: "nursing_ward_title", data: WardData(
            wardId: ward.id!, wardName: ward.name, beds: views, overdue: all.filter { $0.status == "overdue" }.count,
            dueNow: all.filter { $0.status == "due" }.count, canChart: header.canChart, canEditRules: header.canEditRules))
    }

    static func dueView(_ d: NursingService.DueItem, _ t: [String: String]) -> DueView {
        DueView(instrument: d.instrument, title: shortNames[d.instrument] ?? d.title, at: Formatting.dateTime(d.dueAt), status: d.status,
                reason: t["due_reason_\(d.reason)"] ?? d.reason)
    }

    // MARK: Patient

    struct HistoryRow: Encodable { var id: String; var at: String; var total: Int; var band: String; var severity: String; var assessor: String; var reason: String }
    struct Point: Encodable { var x: Int; var y: Int; var label: String }
    struct Chart: Encodable { var points: [Point]; var polyline: String; var maxLabel: String; var hasLine: Bool }
    struct InstrumentHistory: Encodable {
        var code: String; var title: String; var rows: [HistoryRow]; var chart: Chart?; var canAssess: Bool
    }
    struct TaskView: Encodable { var id: String; var title: String; var schedule: String; var since: String; var active: Bool; var by: String }
    struct PatientData: Encodable {
        var patientId: String; var name: String; var mrn: String; var bed: String; var ward: String; var canChart: Bool
        var histories: [InstrumentHistory]; var tasks: [TaskView]; var due: [DueView]
    }

    @Sendable func patient(req: Request) async throws -> Response {
        let context = try req.context()
        let nursing = req.rounds.nursing, db = req.db
        let t = req.rounds.catalogue.table(req.locale)
        let patientID = try req.parameters.require("patientId")
        let assessments = try await nursing.assessments(patientID: patientID, instrument: nil, context: context, on: db)
        let tasks = try await nursing.tasks(patientID: patientID, context: context, on: db)
        let bedside = try await nursing.bedside(patientID: patientID, context: context, on: db)
        let patient = bedside.patient, encounter = bedside.encounter, bed = bedside.bed, canChart = bedside.canChart
        let wardName = bedside.ward?.name ?? ""
        var due: [DueView] = []
        if let encounter, let ward = bedside.ward, bedside.canViewWard {
            due = try await nursing.ward(ward.id!, context: context, on: db).1.first { $0.encounter.id == encounter.id }?.due.map { Self.dueView($0, t) } ?? []
        }
        let instruments = try await nursing.instruments(on: db)
        let histories = instruments.map { instrument -> InstrumentHistory in
            let rows = assessments.filter { $0.instrumentCode == instrument.code }
            return InstrumentHistory(
                code: instrument.code, title: instrument.title.text(req.locale),
                rows: rows.map { a in
                    HistoryRow(id: a.id!, at: Formatting.dateTime(a.assessedAt), total: a.total,
                               band: instrument.bands.first { $0.key == a.band }?.label.text(req.locale) ?? a.band,
                               severity: a.severity, assessor: a.assessorName, reason: t["assessment_reason_\(a.reason)"] ?? a.reason)
                },
                chart: Self.chart(rows.reversed(), maxTotal: instrument.bands.map(\.max).max() ?? 1), canAssess: canChart && encounter != nil)
        }
        let taskViews = tasks.map { task in
            TaskView(id: task.id!, title: task.title, schedule: Self.scheduleText(task, t), since: Formatting.dateTime(task.startsAt),
                     active: task.status == "active", by: task.createdByName)
        }
        return try await req.page("nursing_patient", title: "nursing_patient_title", data: PatientData(
            patientId: patientID, name: patient.name, mrn: patient.mrn, bed: bed, ward: wardName, canChart: canChart,
            histories: histories, tasks: taskViews, due: due),
            flash: req.query[String.self, at: "done"].map { done in Self.savedMessage(done, assessments, instruments, req.locale, t) },
            error: req.query[String.self, at: "error"])
    }

    /// After an assessment, at the top of the page she lands on: the score, the band, and the
    /// care-plan tasks the band starts.
    static func savedMessage(_ done: String, _ assessments: [Assessment], _ instruments: [Instrument],
                             _ locale: RoundsCore.Locale, _ t: [String: String]) -> String {
        guard let a = assessments.first(where: { $0.id == done }),
              let instrument = instruments.first(where: { $0.code == a.instrumentCode }),
              let band = instrument.bands.first(where: { $0.key == a.band }) else { return t["saved"] ?? "" }
        var text = (t["assessment_saved"] ?? "%1 %2 %3")
            .replacingOccurrences(of: "%1", with: instrument.title.text(locale))
            .replacingOccurrences(of: "%2", with: String(a.total))
            .replacingOccurrences(of: "%3", with: band.label.text(locale))
        let started = (band.interventions ?? []).map { $0.title.text(locale) }
        if !started.isEmpty {
            text += (t["assessment_tasks_started"] ?? "%s").replacingOccurrences(of: "%s", with: started.joined(separator: "、"))
        }
        return text
    }

    static func scheduleText(_ task: CareTask, _ t: [String: String]) -> String {
        switch task.scheduleKind {
        case "every_hours": return (t["schedule_every_hours"] ?? "every %d h").replacingOccurrences(of: "%d", with: String(task.everyHours ?? 0))
        case "daily_at": return (t["schedule_daily_at"] ?? "daily") + " " + (task.times ?? "").replacingOccurrences(of: ",", with: "、")
        default: return t["schedule_once"] ?? "once"
        }
    }

    /// Score over time, drawn as SVG coordinates on a 600×160 canvas (oldest left).
    static func chart(_ rows: [Assessment], maxTotal: Int) -> Chart? {
        guard !rows.isEmpty else { return nil }
        let top = max(1, maxTotal)
        let step = rows.count > 1 ? 540 / (rows.count - 1) : 0
        let points = rows.enumerated().map { i, a in Point(x: 40 + i * step, y: 140 - Int(Double(min(a.total, top)) / Double(top) * 120), label: String(a.total)) }
        return Chart(points: points, polyline: points.map { "\($0.x),\($0.y)" }.joined(separator: " "), maxLabel: String(top), hasLine: points.count > 1)
    }

    // MARK: Compare

    struct CompareRow: Encodable { var item: String; var a: String; var b: String; var changed: Bool }
    struct CompareData: Encodable {
        var patientId: String; var title: String; var aAt: String; var bAt: String; var aTotal: Int; var bTotal: Int
        var aBand: String; var bBand: String; var rows: [CompareRow]
    }

    @Sendable func compare(req: Request) async throws -> Response {
        let context = try req.context()
        let nursing = req.rounds.nursing
        guard let aID = req.query[String.self, at: "a"], let bID = req.query[String.self, at: "b"] else {
            throw RoundsError.badRequest("a and b: the two assessments to compare")
        }
        let a = try await nursing.assessment(id: aID, context: context, on: req.db), b = try await nursing.assessment(id: bID, context: context, on: req.db)
        let patientID = try req.parameters.require("patientId")
        guard a.patientID == patientID, b.patientID == patientID, a.instrumentCode == b.instrumentCode else {
            throw RoundsError.validation("a and b: two assessments of this patient with the same instrument")
        }
        let instrument = try await nursing.instrument(a.instrumentCode, on: req.db)
        let (older, newer) = a.assessedAt <= b.assessedAt ? (a, b) : (b, a)
        let oa = older.decodedAnswers, na = newer.decodedAnswers
        func label(_ item: Instrument.Item, _ key: String?) -> String {
            guard let key, let option = item.options.first(where: { $0.key == key }) else { return "—" }
            return "\(option.label.text(req.locale))（\(option.points)）"
        }
        let rows = instrument.items.filter { oa[$0.key] != nil || na[$0.key] != nil }.map {
            CompareRow(item: $0.label.text(req.locale), a: label($0, oa[$0.key]), b: label($0, na[$0.key]), changed: oa[$0.key] != na[$0.key])
        }
        let band = { (key: String) in instrument.bands.first { $0.key == key }?.label.text(req.locale) ?? key }
        return try await req.page("nursing_compare", title: "nursing_compare_title", data: CompareData(
            patientId: patientID, title: instrument.title.text(req.locale), aAt: Formatting.dateTime(older.assessedAt),
            bAt: Formatting.dateTime(newer.assessedAt), aTotal: older.total, bTotal: newer.total, aBand: band(older.band),
            bBand: band(newer.band), rows: rows))
    }

    // MARK: The form

    struct FormOption: Encodable { var key: String; var label: String; var points: Int; var checked: Bool }
    struct FormItem: Encodable {
        var key: String; var label: String; var required: Bool; var showIf: String; var group: String; var options: [FormOption]
        /// The question the last submission left unanswered: highlighted.
        var missing: Bool
    }
    struct FormBand: Encodable { var key: String; var min: Int; var max: Int; var label: String; var severity: String }
    struct FormData: Encodable {
        var patientId: String; var patientName: String; var bed: String; var code: String; var title: String
        var items: [FormItem]; var bands: [FormBand]; var rule: String; var age: Int; var ageMinimum: Int; var agePoints: Int; var ageWhenShown: String
        var key: String; var reasons: [Option]
    }

    @Sendable func form(req: Request) async throws -> Response {
        try await renderForm(req)
    }

    /// The form, empty or as it was sent (without JavaScript a refused form comes back with its
    /// answers, the unanswered question named and highlighted, and the same idempotency key).
    func renderForm(_ req: Request, answers: [String: String] = [:], reason: String? = nil, key: String? = nil,
                    missing: String? = nil, error: String? = nil, status: HTTPStatus = .ok) async throws -> Response {
        let context = try req.context()
        let t = req.rounds.catalogue.table(req.locale)
        let patientID = try req.parameters.require("patientId")
        let instrument = try await req.rounds.nursing.instrument(req.parameters.require("code"), on: req.db)
        // The same check as the submission: only the ward's nurses see the form (refusals audited).
        let bedside = try await req.rounds.nursing.chartingBedside(patientID: patientID, context: context, on: req.db)
        let patient = bedside.patient, bed: String? = bedside.bed
        let now = req.rounds.configuration.clock.now()
        let data = FormData(
            patientId: patientID, patientName: patient.name, bed: bed ?? "", code: instrument.code, title: instrument.title.text(req.locale),
            items: instrument.items.map { item in
                FormItem(key: item.key, label: item.label.text(req.locale), required: item.isRequired,
                         showIf: (item.showIf ?? []).map { "\($0.item)=\($0.option)" }.joined(separator: " "), group: item.group ?? "",
                         options: item.options.map { FormOption(key: $0.key, label: $0.label.text(req.locale), points: $0.points,
                                                                checked: answers[item.key] == $0.key) },
                         missing: item.key == missing)
            },
            bands: instrument.bands.map { FormBand(key: $0.key, min: $0.min, max: $0.max, label: $0.label.text(req.locale), severity: $0.severity) },
            rule: instrument.scoring.rule,
            age: NursingService.age(birthDate: patient.birthDate, on: now, timeZone: Formatting.hospitalTimeZone) ?? 0,
            ageMinimum: instrument.scoring.ageAdjustment?.minimumAge ?? 1000, agePoints: instrument.scoring.ageAdjustment?.points ?? 0,
            ageWhenShown: instrument.scoring.ageAdjustment?.whenShown ?? "",
            key: key ?? UUID().uuidString.lowercased(),
            reasons: NursingService.reasons.map { Option(value: $0, label: t["assessment_reason_\($0)"] ?? $0, selected: $0 == reason) })
        return try await req.page("nursing_assess", title: "nursing_assess_title", data: data,
                                  error: error ?? req.query[String.self, at: "error"], status: status)
    }

    /// The form without JavaScript: fields `a_<item>`; errors come back to the form.
    @Sendable func submit(req: Request) async throws -> Response {
        let patientID = try req.parameters.require("patientId"), code = try req.parameters.require("code")
        struct Fields: Decodable {
            var values: [String: String]
            init(from decoder: any Decoder) throws {
                let c = try decoder.singleValueContainer()
                values = (try? c.decode([String: String].self)) ?? [:]
            }
        }
        let fields = try req.content.decode(Fields.self).values
        var answers: [String: String] = [:]
        for (key, value) in fields where key.hasPrefix("a_") && !value.isEmpty { answers[String(key.dropFirst(2))] = value }
        do {
            let (assessment, _) = try await req.rounds.nursing.record(
                patientID: patientID, .init(instrument: code, answers: answers, idempotencyKey: fields["idempotencyKey"], reason: fields["reason"]),
                context: req.context(), on: req.db)
            return req.redirect(to: "/patients/\(patientID)/nursing?done=\(assessment.id!)")
        } catch let error as RoundsError where error.status == 422 {
            // "answers.<item>: required" names the question; say it in words, keep the answers.
            let missing = error.detail.flatMap { $0.wholeMatch(of: /answers\.([A-Za-z0-9_\-]+): .*/)?.1 }.map(String.init)
            let instrument = try await req.rounds.nursing.instrument(code, on: req.db)
            let t = req.rounds.catalogue.table(req.locale)
            let message = missing.flatMap { key in instrument.items.first { $0.key == key } }
                .map { (t["assessment_missing"] ?? "%s").replacingOccurrences(of: "%s", with: $0.label.text(req.locale)) }
                ?? error.message(locale: req.locale) + (error.detail.map { ": \($0)" } ?? "")
            return try await renderForm(req, answers: answers, reason: fields["reason"], key: fields["idempotencyKey"], missing: missing,
                                        error: message, status: .unprocessableEntity)
        } catch let error as RoundsError where error.status == 409 {
            return req.redirect(to: "/patients/\(patientID)/assess/\(code)", error: error)
        }
    }

    // MARK: Care plan, falls


    /// Where a form came from (only local paths), to go back there.
    private func returnPath(_ req: Request, default path: String) -> String {
        guard let back = try? req.content.get(String.self, at: "back"), LinkCheck.isLocalPath(back) else { return path }
        return back
    }

    @Sendable func addTask(req: Request) async throws -> Response {
        struct Form: Content { var title: String; var kind: String; var everyHours: Int?; var times: String?; var durationHours: Int? }
        let patientID = try req.parameters.require("patientId")
        let form = try req.content.decode(Form.self)
        let times = form.times?.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "，" }).map(String.init)
        return try await req.formResult(back: "/patients/\(patientID)/nursing") {
            _ = try await req.rounds.nursing.addTask(patientID: patientID, .init(
                title: form.title, schedule: .init(kind: form.kind, everyHours: form.everyHours, times: times), durationHours: form.durationHours),
                context: req.context(), on: req.db)
        }
    }

    @Sendable func fall(req: Request) async throws -> Response {
        struct Form: Content { var note: String? }
        let patientID = try req.parameters.require("patientId")
        let form = try req.content.decode(Form.self)
        return try await req.formResult(back: "/patients/\(patientID)/nursing") {
            _ = try await req.rounds.nursing.recordFall(patientID: patientID, note: form.note, context: req.context(), on: req.db)
        }
    }

    @Sendable func recordTask(req: Request) async throws -> Response {
        struct Form: Content { var dueAt: String; var outcome: String; var reason: String? }
        let form = try req.content.decode(Form.self)
        guard let dueAt = ISO8601DateFormatter().date(from: form.dueAt) else { throw RoundsError.badRequest("dueAt: an ISO 8601 time") }
        let taskID = try req.parameters.require("taskId")
        return try await req.formResult(back: returnPath(req, default: "/")) {
            _ = try await req.rounds.nursing.recordTask(taskID: taskID, dueAt: dueAt, outcome: form.outcome, reason: form.reason,
                                                        context: req.context(), on: req.db)
        }
    }

    @Sendable func stopTask(req: Request) async throws -> Response {
        let taskID = try req.parameters.require("taskId")
        let task = try await req.rounds.nursing.stopTask(taskID: taskID, context: req.context(), on: req.db)
        return req.redirect(to: "/patients/\(task.patientID)/nursing?done=1")
    }

    // MARK: Calendars

    /// `from`/`to` from the query (ISO or YYYY-MM-DD); by default today in the hospital's time zone.
    static func range(_ req: Request) throws -> (Date, Date) {
        let now = req.rounds.configuration.clock.now()
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = Formatting.hospitalTimeZone
        let from = try AuditFilterQuery.date(req, "from") ?? calendar.startOfDay(for: now)
        let to = try AuditFilterQuery.date(req, "to") ?? calendar.date(byAdding: .day, value: 1, to: from)!
        return (from, to)
    }

    struct EntryView: Encodable {
        var time: String; var iso: String; var bed: String; var patient: String; var patientId: String; var title: String
        var status: String; var statusLabel: String; var taskId: String?; var open: Bool; var recorded: String; var isTask: Bool
    }
    struct DayView: Encodable { var label: String; var entries: [EntryView] }
    struct CalendarData: Encodable {
        var title: String; var path: String; var view: String; var date: String; var previous: String; var next: String
        var days: [DayView]; var canChart: Bool; var back: String; var feedURL: String?
    }

    @Sendable func wardCalendar(req: Request) async throws -> Response {
        let wardID = try req.parameters.require("wardId")
        let header = try await req.rounds.nursing.wardHeader(wardID, context: req.context(), on: req.db)
        return try await calendarPage(req, title: header.ward.name, path: "/wards/\(wardID)/calendar", canChart: header.canChart) { from, to in
            try await req.rounds.nursing.wardCalendar(wardID, from: from, to: to, context: req.context(), on: req.db)
        }
    }

    @Sendable func patientCalendar(req: Request) async throws -> Response {
        let patientID = try req.parameters.require("patientId")
        let bedside = try await req.rounds.nursing.bedside(patientID: patientID, context: req.context(), on: req.db)
        return try await calendarPage(req, title: bedside.patient.name, path: "/patients/\(patientID)/calendar",
                                      canChart: bedside.canChart) { from, to in
            try await req.rounds.nursing.patientCalendar(patientID, from: from, to: to, context: req.context(), on: req.db)
        }
    }

    private func calendarPage(_ req: Request, title: String, path: String, canChart: Bool,
                              _ load: (Date, Date) async throws -> [NursingService.CalendarEntry]) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = Formatting.hospitalTimeZone
        let view = req.query[String.self, at: "view"] == "week" ? "week" : "day"
        let day = DateFormatter()
        day.locale = Foundation.Locale(identifier: "en_US_POSIX")
        day.timeZone = Formatting.hospitalTimeZone
        day.dateFormat = "yyyy-MM-dd"
        let anchor = req.query[String.self, at: "date"].flatMap(day.date(from:)) ?? calendar.startOfDay(for: req.rounds.configuration.clock.now())
        let start = view == "week" ? calendar.dateInterval(of: .weekOfYear, for: anchor)?.start ?? anchor : anchor
        let length = view == "week" ? 7 : 1
        let end = calendar.date(byAdding: .day, value: length, to: start)!
        let entries = try await load(start, end)
        let heading = DateFormatter()
        heading.locale = Foundation.Locale(identifier: req.locale == .en ? "en_GB" : "zh_CN")
        heading.timeZone = Formatting.hospitalTimeZone
        heading.dateFormat = req.locale == .en ? "EEE d MMM" : "M月d日 EEE"
        let clock = DateFormatter()
        clock.locale = Foundation.Locale(identifier: "en_US_POSIX")
        clock.timeZone = Formatting.hospitalTimeZone
        clock.dateFormat = "HH:mm"
        let iso = ISO8601DateFormatter()
        let back = path + "?view=\(view)&date=\(day.string(from: anchor))"
        let days = (0..<length).map { offset -> DayView in
            let d0 = calendar.date(byAdding: .day, value: offset, to: start)!, d1 = calendar.date(byAdding: .day, value: 1, to: d0)!
            let inDay = entries.filter { ($0.at >= d0 && $0.at < d1) || (offset == 0 && $0.at < d0 && $0.status == "overdue") }
            return DayView(label: heading.string(from: d0), entries: inDay.map { e in
                EntryView(time: e.at < d0 ? Formatting.dateTime(e.at) : clock.string(from: e.at), iso: iso.string(from: e.at), bed: e.bed,
                          patient: e.patientName, patientId: e.patientId, title: e.title, status: e.status,
                          statusLabel: t["calendar_status_\(e.status)"] ?? e.status, taskId: e.taskId,
                          open: e.kind == "task" && !["done", "skipped"].contains(e.status),
                          recorded: [e.recordedBy, e.reason].compactMap { $0 }.joined(separator: " · "), isTask: e.kind == "task")
            })
        }
        let step = view == "week" ? 7 : 1
        return try await req.page("nursing_calendar", title: "nursing_calendar_title", data: CalendarData(
            title: title, path: path, view: view, date: day.string(from: anchor),
            previous: day.string(from: calendar.date(byAdding: .day, value: -step, to: anchor)!),
            next: day.string(from: calendar.date(byAdding: .day, value: step, to: anchor)!), days: days, canChart: canChart, back: back,
            feedURL: req.query[String.self, at: "feed"]), flash: req.query[String.self, at: "done"].map { _ in t["saved"] ?? "" },
            error: req.query[String.self, at: "error"])
    }

    @Sendable func newFeed(req: Request) async throws -> Response {
        let token = try await req.rounds.nursing.newCalendarFeedToken(context: req.context(), on: req.db)
        let back = returnPath(req, default: "/")
        let feed = "/calendar/feed/\(token)/rounds.ics"
        return req.redirect(to: back + (back.contains("?") ? "&" : "?") + "feed=" + (feed.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
    }

    // MARK: Instruments (administrators)

    struct InstrumentRow: Encodable { var code: String; var version: Int; var title: String; var category: String; var items: Int; var bands: String }

    @Sendable func instruments(req: Request) async throws -> Response {
        let rows = try await req.rounds.nursing.instrumentsForAdministration(context: req.context(), on: req.db).map {
            InstrumentRow(code: $0.code, version: $0.version, title: $0.title.text(req.locale), category: $0.category, items: $0.items.count,
                          bands: $0.bands.map { "\($0.label.text(req.locale)) \($0.min)–\($0.max)" }.joined(separator: " · "))
        }
        let t = req.rounds.catalogue.table(req.locale)
        return try await req.page("admin_instruments", title: "admin_instruments", data: rows,
                                  flash: req.query[String.self, at: "ok"].map { "\(t["saved"] ?? "") \($0)" }, error: req.query[String.self, at: "error"])
    }

    @Sendable func importInstrument(req: Request) async throws -> Response {
        let json = (try? req.content.get(String.self, at: "definition")) ?? ""
        do {
            let instrument = try await req.rounds.nursing.importInstrument(Data(json.utf8), context: req.context(), on: req.db)
            return req.redirect(to: "/admin/instruments?ok=\(instrument.code)%20v\(instrument.version)")
        } catch let error as RoundsError where error.status == 422 {
            return req.redirect(to: "/admin/instruments", error: error)
        }
    }
}

