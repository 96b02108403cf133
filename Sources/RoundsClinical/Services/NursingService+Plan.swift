import Crypto
import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// What is due at the bedside: reassessments (admission, by band interval, after a fall or
/// transfer) and care-plan task occurrences; recording them; the calendars and iCalendar feed.
extension NursingService {
    /// A due assessment is "due" within this many hours of its time (one shift), "overdue" after it.
    public static let shiftHours = 8

    public struct DueItem: Sendable, Codable, Equatable {
        public var instrument: String
        public var title: String
        public var dueAt: Date
        /// overdue, due (within the shift), ok.
        public var status: String
        /// admission, reassess, fall, transfer.
        public var reason: String

        public init(instrument: String, title: String, dueAt: Date, status: String, reason: String) {
            self.instrument = instrument; self.title = title; self.dueAt = dueAt; self.status = status; self.reason = reason
        }
    }

    /// When each instrument of the admission set is next due for one stay.
    public func dueItems(encounter: Encounter, instruments: [Instrument], assessments: [Assessment], falls: [Date],
                         transfers: [Date], now: Date) -> [DueItem] {
        instruments.compactMap { instrument -> DueItem? in
            guard let within = instrument.admissionWithinHours else { return nil }
            let latest = assessments.filter { $0.instrumentCode == instrument.code }.max { $0.assessedAt < $1.assessedAt }
            var candidates: [(Date, String)] = []
            if let latest {
                let hours = instrument.bands.first { $0.key == latest.band }?.reassessHours ?? 168
                candidates.append((latest.assessedAt.addingTimeInterval(TimeInterval(hours * 3600)), "reassess"))
            } else {
                candidates.append((encounter.admittedAt.addingTimeInterval(TimeInterval(within * 3600)), "admission"))
            }
            let since = latest?.assessedAt ?? encounter.admittedAt
            for (kind, dates) in [("fall", falls), ("transfer", transfers)] {
                guard let hours = instrument.reassessAfterEvents?[kind] else { continue }
                for date in dates where date > since {
                    candidates.append((date.addingTimeInterval(TimeInterval(hours * 3600)), kind))
                }
            }
            let (dueAt, reason) = candidates.min { $0.0 < $1.0 }!
            let status = now > dueAt ? "overdue" : (dueAt.timeIntervalSince(now) <= TimeInterval(Self.shiftHours * 3600) ? "due" : "ok")
            return DueItem(instrument: instrument.code, title: instrument.title.zh, dueAt: dueAt, status: status, reason: reason)
        }
    }

    /// One bed of the ward view: the patient, the latest result per instrument, what is due.
    public struct BedStatus: Sendable {
        public var patient: Patient
        public var encounter: Encounter
        public var bed: String
        public var latest: [String: Assessment]
        public var due: [DueItem]
    }

    /// The ward at a glance: every admitted patient with badges and due/overdue items.
    public func ward(_ wardID: String, context: RequestContext, on db: any Database) async throws -> (Department, [BedStatus]) {
        guard let ward = try await Department.find(wardID, on: db), ward.kind == .ward else { throw RoundsError.notFound("ward", id: wardID) }
        guard context.principal.canViewPatients(in: ward.wardRef) else {
            try await audit.record("nursing.ward", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden()
        }
        let encounters = try await Encounter.query(on: db).filter(\.$wardID == wardID).filter(\.$status == .active).all()
        let statuses = try await bedStatuses(encounters, on: db)
        try await audit.record("nursing.ward", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                               detail: "\(statuses.count) patients", context: context, on: db)
        return (ward, statuses)
    }

    func bedStatuses(_ encounters: [Encounter], on db: any Database) async throws -> [BedStatus] {
        guard !encounters.isEmpty else { return [] }
        let ids = encounters.compactMap(\.id)
        let patients = Dictionary(try await Patient.query(on: db).filter(\.$id ~~ Set(encounters.map(\.patientID))).all().map { ($0.id!, $0) },
                                  uniquingKeysWith: { a, _ in a })
        let beds = Dictionary(try await Bed.query(on: db).filter(\.$id ~~ Set(encounters.compactMap(\.bedID))).all().map { ($0.id!, $0) },
                              uniquingKeysWith: { a, _ in a })
        let assessments = Dictionary(grouping: try await Assessment.query(on: db).filter(\.$encounterID ~~ ids).all(), by: \.encounterID)
        let falls = Dictionary(grouping: try await NursingEvent.query(on: db).filter(\.$encounterID ~~ ids).filter(\.$kind == "fall").all(), by: \.encounterID)
        let transfers = Dictionary(grouping: try await OutboxEvent.query(on: db).filter(\.$encounterID ~~ ids).filter(\.$kind == EventKind.patientTransferred.rawValue).all(),
                                   by: { $0.encounterID ?? "" })
        let instruments = try await self.instruments(on: db)
        let now = clock.now()
        return encounters.compactMap { e -> BedStatus? in
            guard let patient = patients[e.patientID] else { return nil }
            let mine = assessments[e.id!] ?? []
            var latest: [String: Assessment] = [:]
            for a in mine where (latest[a.instrumentCode]?.assessedAt ?? .distantPast) < a.assessedAt { latest[a.instrumentCode] = a }
            return BedStatus(patient: patient, encounter: e, bed: e.bedID.flatMap { beds[$0]?.label } ?? "—", latest: latest,
                             due: dueItems(encounter: e, instruments: instruments, assessments: mine, falls: (falls[e.id!] ?? []).map(\.at),
                                           transfers: (transfers[e.id!] ?? []).map(\.createdAt), now: now))
        }.sorted { ($0.bed.count, $0.bed) < ($1.bed.count, $1.bed) }
    }

    // MARK: Care-plan tasks

    public struct NewTask: Sendable {
        public var title: String
        public var schedule: Instrument.Schedule
        public var startsAt: Date?
        public var durationHours: Int?
        public var assigneeID: String?
        /// nurse or head_nurse (when no one is named).
        public var assigneeRole: String?
        public init(title: String, schedule: Instrument.Schedule, startsAt: Date? = nil, durationHours: Int? = nil, assigneeID: String? = nil,
                    assigneeRole: String? = nil) {
            self.title = title; self.schedule = schedule; self.startsAt = startsAt; self.durationHours = durationHours
            self.assigneeID = assigneeID; self.assigneeRole = assigneeRole
        }
    }

    public func addTask(patientID: String, _ input: NewTask, context: RequestContext, on db: any Database) async throws -> CareTask {
        let title = input.title.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(title.count) else { throw RoundsError.validation("title: 1 to 200 characters") }
        let s = input.schedule
        switch s.kind {
        case "once": break
        case "every_hours": guard let h = s.everyHours, (1...168).contains(h) else { throw RoundsError.validation("schedule.everyHours: 1 to 168") }
        case "daily_at":
            guard let times = s.times, !times.isEmpty, times.count <= 24, times.allSatisfy({ TaskSchedule.minutes($0) != nil }) else {
                throw RoundsError.validation("schedule.times: times of day like 08:00")
            }
        default: throw RoundsError.validation("schedule.kind: once, every_hours or daily_at")
        }
        if let hours = input.durationHours, !(1...2160).contains(hours) { throw RoundsError.validation("durationHours: 1 to 2160") }
        if let role = input.assigneeRole, ![Role.nurse.rawValue, Role.headNurse.rawValue].contains(role) {
            throw RoundsError.validation("assigneeRole: nurse or head_nurse")
        }
        let stay = try await stay(patientID: patientID, encounterID: nil, chart: true, action: "care_plan.create", context: context, on: db)
        if let assignee = input.assigneeID {
            guard try await StaffRole.query(on: db).filter(\.$staffID == assignee).filter(\.$departmentID == stay.ward.id!).first() != nil else {
                throw RoundsError.validation("assigneeId: a member of the ward's staff")
            }
        }
        let now = clock.now()
        let task = CareTask()
        task.id = ids.next()
        task.patientID = patientID
        task.encounterID = stay.encounter.id!
        task.wardID = stay.ward.id!
        task.title = title
        task.scheduleKind = s.kind
        task.everyHours = s.kind == "every_hours" ? s.everyHours : nil
        task.times = s.kind == "daily_at" ? s.times?.joined(separator: ",") : nil
        task.startsAt = input.startsAt ?? now
        task.endsAt = input.durationHours.map { task.startsAt.addingTimeInterval(TimeInterval($0 * 3600)) }
        task.assigneeID = input.assigneeID
        task.assigneeRole = input.assigneeID == nil ? input.assigneeRole : nil
        task.status = "active"
        task.createdByName = context.principal.displayName
        task.createdAt = now
        try await db.transaction { tx in
            try await task.create(on: tx)
            try await audit.record("care_plan.create", entityType: "care_task", entityID: task.id, patientID: patientID,
                                   hospitalID: stay.encounter.hospitalID, detail: title, context: context, on: tx)
        }
        return task
    }

    public func tasks(patientID: String, context: RequestContext, on db: any Database) async throws -> [CareTask] {
        _ = try await readablePatient(patientID, action: "care_plan.list", context: context, on: db)
        let rows = try await CareTask.query(on: db).filter(\.$patientID == patientID).sort(\.$createdAt, .descending).all()
        try await audit.record("care_plan.list", entityType: "patient", entityID: patientID, patientID: patientID,
                               detail: "\(rows.count) tasks", context: context, on: db)
        return rows
    }

    /// Done, or skipped with a reason, for one occurrence of a task.
    public func recordTask(taskID: String, dueAt: Date, outcome: String, reason: String?, context: RequestContext,
                           on db: any Database) async throws -> CareTaskRecord {
        guard let task = try await CareTask.find(taskID, on: db) else { throw RoundsError.notFound("task", id: taskID) }
        _ = try await stay(patientID: task.patientID, encounterID: task.encounterID, chart: true, action: "care_plan.record", context: context, on: db)
        guard ["done", "skipped"].contains(outcome) else { throw RoundsError.validation("outcome: done or skipped") }
        let why = reason?.trimmingCharacters(in: .whitespacesAndNewlines)
        if outcome == "skipped", why?.isEmpty ?? true { throw RoundsError.validation("reason: say why it was skipped") }
        let window = Self.occurrences(of: task, from: dueAt.addingTimeInterval(-1), to: dueAt.addingTimeInterval(1), timeZone: timeZone)
        guard let occurrence = window.first else { throw RoundsError.validation("dueAt: not a time this task falls due") }
        if try await CareTaskRecord.query(on: db).filter(\.$taskID == taskID).filter(\.$dueAt == occurrence).first() != nil {
            throw RoundsError.conflict("this occurrence is already recorded")
        }
        let record = CareTaskRecord()
        record.id = ids.next()
        record.taskID = taskID
        record.dueAt = occurrence
        record.outcome = outcome
        record.reason = why.map { String($0.prefix(500)) }
        record.byID = context.principal.id
        record.byName = context.principal.displayName
        record.at = clock.now()
        try await db.transaction { tx in
            try await record.create(on: tx)
            try await audit.record("care_plan.record", entityType: "care_task", entityID: taskID, patientID: task.patientID,
                                   detail: "\(outcome) \(why ?? "")", context: context, on: tx)
        }
        return record
    }

    public func stopTask(taskID: String, context: RequestContext, on db: any Database) async throws -> CareTask {
        guard let task = try await CareTask.find(taskID, on: db) else { throw RoundsError.notFound("task", id: taskID) }
        _ = try await stay(patientID: task.patientID, encounterID: task.encounterID, chart: true, action: "care_plan.stop", context: context, on: db)
        guard task.status == "active" else { return task }
        task.status = "stopped"
        task.endsAt = min(task.endsAt ?? .distantFuture, clock.now())
        try await db.transaction { tx in
            try await task.save(on: tx)
            try await audit.record("care_plan.stop", entityType: "care_task", entityID: taskID, patientID: task.patientID, context: context, on: tx)
        }
        return task
    }

    /// The times a task falls due in [from, to), in the hospital's time zone for daily times.
    public static func occurrences(of task: CareTask, from: Date, to: Date, timeZone: TimeZone, limit: Int = 500) -> [Date] {
        let start = max(from, task.startsAt)
        let end = min(to, task.endsAt ?? .distantFuture)
        guard start < end else { return task.scheduleKind == "once" && task.startsAt >= from && task.startsAt < to && task.startsAt < (task.endsAt ?? .distantFuture) ? [task.startsAt] : [] }
        switch task.scheduleKind {
        case "once":
            return task.startsAt >= start && task.startsAt < end ? [task.startsAt] : []
        case "every_hours":
            let step = TimeInterval((task.everyHours ?? 24) * 3600)
            let skipped = max(0, (start.timeIntervalSince(task.startsAt) / step).rounded(.up))
            var at = task.startsAt.addingTimeInterval(skipped * step), out: [Date] = []
            while at < end, out.count < limit { out.append(at); at = at.addingTimeInterval(step) }
            return out
        case "daily_at":
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            let minutes = (task.times ?? "").split(separator: ",").compactMap { TaskSchedule.minutes(String($0)) }.sorted()
            var day = calendar.startOfDay(for: start), out: [Date] = []
            while day < end, out.count < limit {
                for m in minutes {
                    // Adding components (not seconds) keeps 08:00 at 08:00 across daylight-saving changes.
                    guard let at = calendar.date(byAdding: .minute, value: m, to: day) else { continue }
                    if at >= start && at < end { out.append(at) }
                }
                guard let next = calendar.date(byAdding: .day, value: 1, to: day) else { break }
                day = next
            }
            return out
        default:
            return []
        }
    }

    // MARK: Calendars

    public struct CalendarEntry: Sendable, Codable, Equatable {
        /// task or assessment.
        public var kind: String
        public var at: Date
        public var title: String
        public var patientId: String
        public var patientName: String
        public var bed: String
        public var taskId: String?
        public var instrument: String?
        /// done, skipped, overdue, due, upcoming.
        public var status: String
        public var recordedBy: String?
        public var reason: String?

        public init(kind: String, at: Date, title: String, patientId: String, patientName: String, bed: String, taskId: String?,
                    instrument: String?, status: String, recordedBy: String?, reason: String?) {
            self.kind = kind; self.at = at; self.title = title; self.patientId = patientId; self.patientName = patientName; self.bed = bed
            self.taskId = taskId; self.instrument = instrument; self.status = status; self.recordedBy = recordedBy; self.reason = reason
        }
    }

    /// How late a care-plan task may be done before it counts as overdue.
    public static let taskGrace: TimeInterval = 30 * 60

    /// Tasks and reassessments of these stays in [from, to), in time order.
    /// `include` narrows the tasks (a nurse's feed: hers and her role's).
    func entries(for statuses: [BedStatus], from: Date, to: Date, include: ((CareTask) -> Bool)? = nil,
                 on db: any Database) async throws -> [CalendarEntry] {
        let byEncounter = Dictionary(statuses.map { ($0.encounter.id!, $0) }, uniquingKeysWith: { a, _ in a })
        let ids = Array(byEncounter.keys)
        guard !ids.isEmpty else { return [] }
        var tasks = try await CareTask.query(on: db).filter(\.$encounterID ~~ ids).all()
        if let include { tasks = tasks.filter(include) }
        let records = try await CareTaskRecord.query(on: db).filter(\.$taskID ~~ tasks.compactMap(\.id)).filter(\.$dueAt >= from)
            .filter(\.$dueAt < to).all()
        let recorded = Dictionary(records.map { ("\($0.taskID)@\(Int($0.dueAt.timeIntervalSince1970))", $0) }, uniquingKeysWith: { a, _ in a })
        let now = clock.now()
        var out: [CalendarEntry] = []
        for task in tasks {
            guard let stay = byEncounter[task.encounterID] else { continue }
            for at in Self.occurrences(of: task, from: from, to: to, timeZone: timeZone) {
                let record = recorded["\(task.id!)@\(Int(at.timeIntervalSince1970))"]
                // Due from an hour before until half an hour after its time, overdue only then: a
                // task created now is due now, not already late.
                let status = record?.outcome ?? (now.timeIntervalSince(at) > Self.taskGrace ? "overdue"
                                                 : (at.timeIntervalSince(now) <= 3600 ? "due" : "upcoming"))
                out.append(CalendarEntry(kind: "task", at: at, title: task.title, patientId: stay.patient.id!, patientName: stay.patient.name,
                                         bed: stay.bed, taskId: task.id, instrument: nil, status: status, recordedBy: record?.byName, reason: record?.reason))
            }
        }
        for stay in statuses {
            for due in stay.due where due.dueAt < to && (due.dueAt >= from || due.status == "overdue") {
                out.append(CalendarEntry(kind: "assessment", at: due.dueAt, title: "评估：\(due.title)", patientId: stay.patient.id!,
                                         patientName: stay.patient.name, bed: stay.bed, taskId: nil, instrument: due.instrument,
                                         status: due.status == "ok" ? "upcoming" : due.status, recordedBy: nil, reason: due.reason))
            }
        }
        return out.sorted { ($0.at, $0.bed, $0.title) < ($1.at, $1.bed, $1.title) }
    }

    public func wardCalendar(_ wardID: String, from: Date, to: Date, context: RequestContext, on db: any Database) async throws -> [CalendarEntry] {
        guard to > from, to.timeIntervalSince(from) <= 31 * 86_400 else { throw RoundsError.validation("to: after from, at most 31 days") }
        let (_, statuses) = try await ward(wardID, context: context, on: db)
        return try await entries(for: statuses, from: from, to: to, on: db)
    }

    public func patientCalendar(_ patientID: String, from: Date, to: Date, context: RequestContext, on db: any Database) async throws -> [CalendarEntry] {
        guard to > from, to.timeIntervalSince(from) <= 31 * 86_400 else { throw RoundsError.validation("to: after from, at most 31 days") }
        let stay = try await stay(patientID: patientID, encounterID: nil, chart: false, action: "care_plan.calendar", context: context, on: db)
        let statuses = try await bedStatuses([stay.encounter], on: db)
        try await audit.record("care_plan.calendar", entityType: "patient", entityID: patientID, patientID: patientID, context: context, on: db)
        return try await entries(for: statuses, from: from, to: to, on: db)
    }

    // MARK: iCalendar feed

    /// A new secret feed address token for the signed-in nurse (the previous one stops working).
    public func newCalendarFeedToken(context: RequestContext, on db: any Database) async throws -> String {
        guard context.principal.kind == .staff else { throw RoundsError.forbidden("calendar feeds are for people") }
        let token = (0..<4).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 36) }.joined()
        let row = try await CalendarFeed.find(context.principal.id, on: db) ?? { let r = CalendarFeed(); r.id = context.principal.id; return r }()
        row.tokenHash = Self.digest(token)
        row.createdAt = clock.now()
        try await db.transaction { tx in
            try await row.save(on: tx)
            try await audit.record("calendar.feed.create", entityType: "staff", entityID: context.principal.id, context: context, on: tx)
        }
        return token
    }

    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The nurse's next seven days (and the last one) as iCalendar: the tasks of her wards that are
    /// hers or unassigned, and the reassessments due. The token is the only credential.
    public func calendarFeed(token: String, clientAddress: String?, on db: any Database) async throws -> String {
        guard let feed = try await CalendarFeed.query(on: db).filter(\.$tokenHash == Self.digest(token)).first(),
              let staff = try await Staff.find(feed.id, on: db), staff.isActive else { throw RoundsError.notFound("calendar feed", id: "…") }
        let roles = try await StaffRole.query(on: db).filter(\.$staffID == staff.id!).all().filter { $0.role == .nurse || $0.role == .headNurse }
        let rolesOnWard = Dictionary(grouping: roles, by: \.departmentID).mapValues { Set($0.map(\.role.rawValue)) }
        let wardIDs = Array(rolesOnWard.keys)
        let encounters = wardIDs.isEmpty ? [] : try await Encounter.query(on: db).filter(\.$wardID ~~ wardIDs).filter(\.$status == .active).all()
        let now = clock.now()
        let entries = try await entries(for: try await bedStatuses(encounters, on: db), from: now.addingTimeInterval(-86_400),
                                        to: now.addingTimeInterval(7 * 86_400), include: { task in
            task.assigneeID == staff.id
                || (task.assigneeID == nil && (task.assigneeRole.map { rolesOnWard[task.wardID]?.contains($0) ?? false } ?? true))
        }, on: db)
        try await audit.record("calendar.feed.read", entityType: "staff", entityID: staff.id, detail: "\(entries.count) entries",
                               actorKind: "staff", actorID: staff.id, actorName: staff.displayName, clientAddress: clientAddress, on: db)
        return Self.ics(entries, name: "Rounds · \(staff.displayName)", now: now)
    }

    static func ics(_ entries: [CalendarEntry], name: String, now: Date) -> String {
        let f = DateFormatter()
        f.locale = Foundation.Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        func text(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ";", with: "\\;")
                .replacingOccurrences(of: ",", with: "\\,").replacingOccurrences(of: "\n", with: "\\n")
        }
        var lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Rounds//Nursing calendar//ZH", "CALSCALE:GREGORIAN",
                     "X-WR-CALNAME:\(text(name))"]
        for e in entries {
            let uid = "\(e.kind)-\(e.taskId ?? e.instrument ?? "")-\(e.patientId)-\(Int(e.at.timeIntervalSince1970))@rounds"
            lines += ["BEGIN:VEVENT", "UID:\(uid)", "DTSTAMP:\(f.string(from: now))", "DTSTART:\(f.string(from: e.at))",
                      "DTEND:\(f.string(from: e.at.addingTimeInterval(15 * 60)))",
                      "SUMMARY:\(text("\(e.bed)床 \(e.patientName)：\(e.title)"))",
                      "DESCRIPTION:\(text(e.status + (e.recordedBy.map { " · \($0)" } ?? "")))", "END:VEVENT"]
        }
        lines.append("END:VCALENDAR")
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}
