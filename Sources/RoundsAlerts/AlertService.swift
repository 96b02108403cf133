import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

/// Critical values with a closed loop: the alert goes to the responsible doctor and nurse as a
/// red card in the patient group; unacknowledged, it climbs the ward's escalation ladder (timer
/// rows fired once each, also across processes); acknowledgement stops the ladder and turns the
/// card green; the recorded clinical action closes the loop. Every step is kept.
public struct AlertService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let audit: AuditLog
    /// The patient groups, through the seam (cards, members, the care team).
    public let groups: any PatientGroupCards
    public let notifier: ChangeNotifier
    /// Rounds' address as people reach it (e.g. https://rounds.hospital.cn), for links in
    /// messages sent outside; nil leaves the link out.
    public var publicURL: String?
    /// Where connectors may send (the installation's allow-list).
    public var destinations: DestinationAllowList = .standard
    /// The system an HL7 message came from (its MSH-3), answered by the integration engine, so a
    /// value goes back over HL7 only to the system that sent it. Without it no value goes to a
    /// connector that names its system.
    public var senderOfMessage: @Sendable (_ messageID: String, _ db: any Database) async throws -> String? = { _, _ in nil }

    public init(clock: any RoundsClock, ids: IDGenerator, audit: AuditLog, groups: any PatientGroupCards, notifier: ChangeNotifier) {
        self.clock = clock
        self.ids = ids
        self.audit = audit
        self.groups = groups
        self.notifier = notifier
    }

    /// The outbox handler: `observation.critical` raises an alert.
    public var eventHandler: some EventHandler {
        EventHandlerFunction("alerts.raise", kinds: [.observationCritical]) { event, tx in try await handle(event, on: tx) }
    }

    /// Card buttons of the alerts: an old card's "acknowledge" button is refused (acknowledging
    /// takes a read-back on the alert's page, the one way to acknowledge).
    public var cardActionHandler: some CardActionHandler { LegacyAcknowledgeButton() }

    struct LegacyAcknowledgeButton: CardActionHandler {
        var actions: Set<String> { [AlertService.legacyCardAction] }
        func handle(_ press: CardActionPress, on tx: any Database) async throws {
            throw RoundsError(code: "read_back_required", status: 422, zh: "请打开危急值页面，复述结果后确认",
                              en: "Open the critical value and acknowledge it there with a read-back", detail: "/alerts")
        }
    }

    public struct LadderStep: Codable, Sendable, Equatable {
        public var afterMinutes: Int
        /// ward_doctors, head_nurse, director (consultants of the ward's department), medical_affairs.
        public var targets: [String]
        public init(afterMinutes: Int, targets: [String]) { self.afterMinutes = afterMinutes; self.targets = targets }
    }

    public static let standardLadder = [
        LadderStep(afterMinutes: 5, targets: ["ward_doctors", "head_nurse"]),
        LadderStep(afterMinutes: 10, targets: ["director"]),
        LadderStep(afterMinutes: 15, targets: ["medical_affairs"]),
    ]
    public static let actionKinds = ["retest", "medication", "transfer", "notify_patient", "other"]

    // MARK: Raising

    /// Raises alerts from `observation.critical` outbox events (inside the dispatcher's transaction).
    public func handle(_ event: OutboxEvent, on db: any Database) async throws {
        guard event.eventKind == .observationCritical, let patientID = event.patientID else { return }
        let result = try event.decode(ClinicalEvent.ObservationResult.self)
        // The result's own identity (order, test, value) when the mapper knows it: a replayed or
        // resent message raises nothing new for a result already alerted.
        let key = result.resultKey.map { "hl7:\(patientID):\($0)" } ?? "event:\(event.id ?? "")"
        _ = try await raise(patientID: patientID, encounterID: event.encounterID, result: result, source: "hl7",
                            sourceKey: key, sourceMessageID: event.sourceMessageID, actor: "hl7", on: db)
    }

    public func raise(patientID: String, encounterID: String?, result: ClinicalEvent.ObservationResult, source: String,
                      sourceKey: String, sourceMessageID: String? = nil, actor: String, reportedBy: String? = nil,
                      on db: any Database) async throws -> CriticalAlert {
        if let existing = try await CriticalAlert.query(on: db).filter(\.$sourceKey == sourceKey).first() { return existing }
        guard let patient = try await Patient.find(patientID, on: db) else { throw RoundsError.notFound("patient", id: patientID) }
        var encounter: Encounter?
        if let encounterID { encounter = try await Encounter.find(encounterID, on: db) }
        if encounter == nil {
            encounter = try await Encounter.query(on: db).filter(\.$patientID == patientID).filter(\.$status == .active).first()
        }
        let now = clock.now()
        let alert = CriticalAlert()
        alert.id = ids.next()
        alert.patientID = patientID
        alert.encounterID = encounter?.id
        alert.hospitalID = encounter?.hospitalID ?? patient.hospitalID
        alert.wardID = encounter?.wardID
        alert.source = source
        alert.sourceKey = sourceKey
        alert.sourceMessageID = sourceMessageID
        alert.reportedBy = reportedBy
        alert.testCode = result.code
        alert.testName = result.name
        // A coded critical result is read back by its words ("阳性"), not the lab's code.
        alert.value = result.valueText.flatMap { $0.isEmpty ? nil : $0 } ?? result.value
        alert.unit = result.unit
        alert.flag = result.flag
        alert.referenceRange = result.referenceRange
        alert.reason = result.criticalReason
        alert.raisedAt = now
        alert.status = "open"
        alert.level = 0
        if let groupID = try await groups.groupID(forPatient: patientID, encounterID: encounter?.id, on: db) {
            alert.groupID = groupID
            let card = Self.card(for: alert, patientName: "\(patient.name) · \(patient.mrn)", state: nil)
            alert.cardMessageID = try await groups.postCard(card, toGroup: groupID, on: db)
        }
        try await alert.create(on: db)
        let responsible = [encounter?.attendingID, encounter?.nurseID].compactMap { $0 }
        try await step(alert, "raised", level: 0, staff: responsible, detail: "\(result.name) \(result.value) \(result.unit ?? "")", on: db)
        try await enqueueDeliveries(alert, event: .raised, level: 0, recipients: responsible, on: db)
        for (index, rung) in try await ladder(forWard: alert.wardID, on: db).enumerated() {
            let timer = AlertEscalation()
            timer.id = ids.next()
            timer.alertID = alert.id!
            timer.level = index + 1
            timer.targets = rung.targets.joined(separator: ",")
            timer.dueAt = now.addingTimeInterval(TimeInterval(rung.afterMinutes * 60))
            timer.status = "pending"
            try await timer.create(on: db)
        }
        try await audit.record("alert.raise", entityType: "critical_alert", entityID: alert.id, patientID: patientID,
                               hospitalID: alert.hospitalID, detail: "\(result.name) \(result.value)", actorKind: "system",
                               actorID: nil, actorName: actor, clientAddress: nil, on: db)
        return alert
    }

    func ladder(forWard wardID: String?, on db: any Database) async throws -> [LadderStep] {
        guard let wardID, let row = try await EscalationLadderRow.find(wardID, on: db),
              let steps = try? JSONDecoder().decode([LadderStep].self, from: Data(row.steps.utf8)) else { return Self.standardLadder }
        return steps
    }

    // MARK: Escalating

    /// Fires the escalation timers that are due, each exactly once; returns how many fired.
    /// On PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED`, so two processes never
    /// fire the same one.
    @discardableResult
    public func escalateDue(on db: any Database) async throws -> Int {
        let now = clock.now()
        let dueIDs = try await AlertEscalation.query(on: db).filter(\.$status == "pending").filter(\.$dueAt <= now)
            .sort(\.$dueAt).limit(50).all(\.$id)
        var fired = 0
        for id in dueIDs {
            let didFire: Bool = try await SQLiteWriteGate.serialised(db, writer: "escalation") { try await notifier.transaction(on: db) { tx in
                guard let timer = try await Self.claim(id, on: tx) else { return false }
                guard let alert = try await CriticalAlert.find(timer.alertID, on: tx), alert.status == "open" else {
                    timer.status = "cancelled"
                    try await timer.save(on: tx)
                    return false
                }
                let targets = try await resolve(timer.targets.split(separator: ",").map(String.init), for: alert, on: tx)
                if let groupID = alert.groupID {
                    try await groups.addMembers(targets.map(\.id!), reason: "escalation", toGroup: groupID, on: tx)
                    let names = targets.map(\.displayName).joined(separator: "、")
                    let patient = try await Patient.find(alert.patientID, on: tx)
                    let card = Card(title: "危急值未确认，已升级（第 \(timer.level) 级）· \(alert.testName) \(alert.value)", severity: .critical,
                                    fields: [.init("患者", [patient?.name, patient?.mrn].compactMap { $0 }.joined(separator: " · ")),
                                             .init("结果", "\(alert.testName) \(alert.value) \(alert.unit ?? "")"),
                                             .init("通知", names.isEmpty ? "—" : names), .init("发出", Self.format(alert.raisedAt))],
                                    buttons: [.init(label: "查看并复述确认", url: "/alerts/\(alert.id ?? "")")])
                    _ = try await groups.postCard(card, toGroup: groupID, on: tx)
                }
                timer.status = "fired"
                timer.firedAt = now
                timer.notified = targets.compactMap(\.id).joined(separator: " ")
                try await timer.save(on: tx)
                alert.level = max(alert.level, timer.level)
                try await alert.save(on: tx)
                try await step(alert, "escalated", level: timer.level, staff: targets.compactMap(\.id), detail: timer.targets, on: tx)
                try await enqueueDeliveries(alert, event: .escalated, level: timer.level, recipients: targets.compactMap(\.id), on: tx)
                try await audit.record("alert.escalate", entityType: "critical_alert", entityID: alert.id, patientID: alert.patientID,
                                       hospitalID: alert.hospitalID, detail: "level \(timer.level): \(timer.targets)", actorKind: "system",
                                       actorID: nil, actorName: "escalation", clientAddress: nil, on: tx)
                return true
            } }
            if didFire { fired += 1 }
        }
        return fired
    }

    private static func claim(_ id: String, on tx: any Database) async throws -> AlertEscalation? {
        if let sql = tx as? any SQLDatabase, sql.dialect.name == "postgresql" {
            let rows = try await sql.raw("""
                SELECT id FROM critical_alert_escalations WHERE id = \(bind: id) AND status = 'pending' FOR UPDATE SKIP LOCKED
                """).all()
            guard !rows.isEmpty else { return nil }
        }
        guard let timer = try await AlertEscalation.find(id, on: tx), timer.status == "pending" else { return nil }
        return timer
    }

    /// The people behind target kinds, for the alert's ward and hospital.
    func resolve(_ kinds: [String], for alert: CriticalAlert, on db: any Database) async throws -> [Staff] {
        var ids: [String] = []
        var ward: Department?
        if let wardID = alert.wardID { ward = try await Department.find(wardID, on: db) }
        for kind in kinds {
            switch kind {
            case "ward_doctors", "head_nurse":
                guard let ward else { continue }
                let role: Role = kind == "head_nurse" ? .headNurse : .doctor
                ids += try await StaffRole.query(on: db).filter(\.$departmentID == ward.id!).filter(\.$role == role).all(\.$staffID)
            case "director":
                guard let ward else { continue }
                let departments = [ward.id!] + (ward.parentID.map { [$0] } ?? [])
                ids += try await StaffRole.query(on: db).filter(\.$departmentID ~~ departments).filter(\.$role == .consultant).all(\.$staffID)
            case "medical_affairs":
                ids += try await StaffRole.query(on: db).filter(\.$hospitalID == alert.hospitalID).filter(\.$role == .medicalAffairs).all(\.$staffID)
            default:
                continue
            }
        }
        let unique = Array(Set(ids))
        guard !unique.isEmpty else { return [] }
        return try await Staff.query(on: db).filter(\.$id ~~ unique).filter(\.$isActive == true).sort(\.$username).all()
    }

    // MARK: Closing the loop

    /// Who may acknowledge and act: the patient's care team — members of the patient's group
    /// (escalation adds the people it reaches) and clinical staff of the ward. Oversight roles
    /// (quality control, medical affairs, administrators) read, but cannot silence the loop.
    func isCareTeam(_ alert: CriticalAlert, _ principal: Principal, on db: any Database) async throws -> Bool {
        guard principal.kind == .staff else { return false }
        if let groupID = alert.groupID, try await groups.isMember(staffID: principal.id, ofGroup: groupID, on: db) {
            return true
        }
        guard let wardID = alert.wardID, let ward = try await Department.find(wardID, on: db) else { return false }
        return principal.caresForPatients(in: ward.wardRef)
    }

    func requireCareTeam(_ alert: CriticalAlert, action: String, context: RequestContext, on db: any Database) async throws {
        if try await isCareTeam(alert, context.principal, on: db) { return }
        try await audit.record(action, entityType: "critical_alert", entityID: alert.id, patientID: alert.patientID,
                               hospitalID: alert.hospitalID, outcome: .denied, context: context, on: db)
        throw RoundsError.forbidden("critical values are acknowledged by the patient's care team")
    }

    public func acknowledge(alertID: String, readBack: String?, context: RequestContext, on db: any Database) async throws -> CriticalAlert {
        guard let alert = try await CriticalAlert.find(alertID, on: db) else { throw RoundsError.notFound("critical value", id: alertID) }
        try await requireCareTeam(alert, action: "alert.acknowledge", context: context, on: db)
        guard alert.status == "open" else { return alert }  // acknowledged already: the first one counts
        let readBack = try Self.checkedReadBack(readBack, for: alert)
        let now = clock.now()
        try await notifier.transaction(on: db) { tx in
            alert.status = "acknowledged"
            alert.acknowledgedAt = now
            alert.acknowledgedBy = context.principal.id
            alert.acknowledgedByName = context.principal.displayName
            alert.acknowledgedFrom = context.clientAddress
            alert.readBack = readBack
            try await alert.save(on: tx)
            for timer in try await AlertEscalation.query(on: tx).filter(\.$alertID == alertID).filter(\.$status == "pending").all() {
                timer.status = "cancelled"
                try await timer.save(on: tx)
            }
            try await step(alert, "acknowledged", level: alert.level, staff: [context.principal.id], detail: alert.readBack, on: tx)
            try await enqueueDeliveries(alert, event: .acknowledged, level: alert.level, recipients: [], on: tx)
            try await updateCard(alert, on: tx)
            try await audit.record("alert.acknowledge", entityType: "critical_alert", entityID: alertID, patientID: alert.patientID,
                                   hospitalID: alert.hospitalID, detail: alert.readBack, context: context, on: tx)
            try await notifier.signal(.chat, on: tx)  // the urgent panels of the care team redraw
        }
        return alert
    }

    public func recordAction(alertID: String, kind: String, text: String?, context: RequestContext, on db: any Database) async throws -> CriticalAlert {
        guard Self.actionKinds.contains(kind) else {
            throw RoundsError.validation("kind: one of \(Self.actionKinds.joined(separator: ", "))")
        }
        guard let alert = try await CriticalAlert.find(alertID, on: db) else { throw RoundsError.notFound("critical value", id: alertID) }
        try await requireCareTeam(alert, action: "alert.action", context: context, on: db)
        guard alert.status == "acknowledged" else {
            throw RoundsError.conflict(alert.status == "closed" ? "the loop is already closed" : "acknowledge the critical value first")
        }
        let note = text?.trimmingCharacters(in: .whitespacesAndNewlines)
        if kind == "other", note?.isEmpty ?? true { throw RoundsError.validation("text: say what was done") }
        try await notifier.transaction(on: db) { tx in
            alert.status = "closed"
            alert.actionAt = clock.now()
            alert.actionByName = context.principal.displayName
            alert.actionKind = kind
            alert.actionText = note.map { String($0.prefix(1000)) }
            try await alert.save(on: tx)
            try await step(alert, "action", level: alert.level, staff: [context.principal.id], detail: "\(kind) \(note ?? "")", on: tx)
            try await step(alert, "closed", level: alert.level, staff: [], detail: nil, on: tx)
            try await enqueueDeliveries(alert, event: .closed, level: alert.level, recipients: [], on: tx)
            try await updateCard(alert, on: tx)
            try await audit.record("alert.action", entityType: "critical_alert", entityID: alertID, patientID: alert.patientID,
                                   hospitalID: alert.hospitalID, detail: "\(kind) \(note ?? "")", context: context, on: tx)
        }
        return alert
    }

    /// A press of a card's "确认收到" button (the alert card, or an escalation card).
    /// The read-back the person typed: required, and it must repeat the value (digits as on the
    /// report; full-width digits and spaces do not matter), so an acknowledgement is never one
    /// careless tap. Stored as typed.
    static func checkedReadBack(_ readBack: String?, for alert: CriticalAlert) throws -> String {
        let typed = (readBack ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !typed.isEmpty else { throw RoundsError.readBackRequired }
        guard normalised(typed).contains(normalised(alert.value)) else { throw RoundsError.readBackMismatch }
        return String(typed.prefix(200))
    }

    static func normalised(_ text: String) -> String {
        // Full-width forms (Ｕ+FF01…FF5E, as Chinese input methods type digits and points) to ASCII.
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            (0xFF01...0xFF5E).contains(scalar.value) ? Unicode.Scalar(scalar.value - 0xFEE0) ?? scalar : scalar
        })).lowercased().filter { !$0.isWhitespace }
    }

    /// Older cards carried an "acknowledge" button that acted without a read-back: refused now,
    /// pointing to the alert's own page.
    public static let legacyCardAction = "acknowledge_alert"

    private func updateCard(_ alert: CriticalAlert, on db: any Database) async throws {
        guard let messageID = alert.cardMessageID, let patient = try await Patient.find(alert.patientID, on: db) else { return }
        try await groups.replaceCard(messageID: messageID, with: Self.card(for: alert, patientName: "\(patient.name) · \(patient.mrn)", state: alert.status), on: db)
    }

    static func card(for alert: CriticalAlert, patientName: String, state: String?) -> Card {
        var fields = [Card.Field("患者", patientName), Card.Field("结果", "\(alert.testName) \(alert.value) \(alert.unit ?? "")" + (AbnormalFlag.inWords(alert.flag) ?? "")),
                      Card.Field("发出", format(alert.raisedAt))]
        if let reason = alert.reason { fields.append(.init("依据", AbnormalFlag.reasonInChinese(reason))) }
        if let by = alert.acknowledgedByName, let at = alert.acknowledgedAt {
            fields.append(.init("已确认", "\(by) \(format(at))" + (alert.readBack.map { "（复述：\($0)）" } ?? "")))
        }
        if let kind = alert.actionKind, let at = alert.actionAt {
            fields.append(.init("处置", "\(kind) \(alert.actionText ?? "") · \(alert.actionByName ?? "") \(format(at))"))
        }
        let open = state == nil || state == "open"
        return Card(title: (state == "closed" ? "危急值已闭环 · " : (open ? "危急值 · " : "危急值已确认 · ")) + "\(alert.testName) \(alert.value)",
                    severity: open ? .critical : .success, fields: fields,
                    buttons: (open ? [Card.Button(label: "查看并复述确认", url: "/alerts/\(alert.id ?? "")")] : [Card.Button(label: "查看", url: "/alerts/\(alert.id ?? "")")])
                        + [Card.Button(label: "患者", url: "/patients/\(alert.patientID)#results")])
    }

    private func step(_ alert: CriticalAlert, _ kind: String, level: Int, staff: [String], detail: String?, on db: any Database) async throws {
        let row = AlertStep()
        row.id = ids.next()
        row.alertID = alert.id!
        row.kind = kind
        row.level = level
        row.staff = staff.isEmpty ? nil : staff.joined(separator: " ")
        row.detail = detail
        row.at = clock.now()
        try await row.create(on: db)
    }

    static func format(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: ProcessInfo.processInfo.environment["ROUNDS_TIME_ZONE"] ?? "Asia/Shanghai")
        f.dateFormat = "MM-dd HH:mm"
        return f.string(from: date)
    }
}
