import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// Critical values from systems without HL7 (`POST /api/v1/critical-values`) and from laboratory
/// staff entering them by hand; and each ward's escalation ladder.
extension AlertService {
    /// A critical value reported by a person or a system.
    public struct Report: Sendable {
        public var hospitalID: String?
        public var mrn: String?
        public var patientID: String?
        public var testCode: String?
        public var testName: String
        public var value: String
        public var unit: String?
        public var flag: String?
        public var note: String?
        /// The reporting system's own id for the value: reporting it again changes nothing.
        public var externalID: String?
        public var observedAt: Date?

        public init(hospitalID: String? = nil, mrn: String? = nil, patientID: String? = nil, testCode: String? = nil,
                    testName: String, value: String, unit: String? = nil, flag: String? = nil, note: String? = nil,
                    externalID: String? = nil, observedAt: Date? = nil) {
            self.hospitalID = hospitalID; self.mrn = mrn; self.patientID = patientID; self.testCode = testCode
            self.testName = testName; self.value = value; self.unit = unit; self.flag = flag; self.note = note
            self.externalID = externalID; self.observedAt = observedAt
        }
    }

    public static let reportFlags: Set<String> = ["HH", "LL", "AA", "H", "L", "A", ">", "<"]

    /// Raises an alert for a reported value; returns it and whether it is new (an `externalID`
    /// seen before returns the first alert). `source` is "api" or "manual".
    public func report(_ report: Report, source: String, context: RequestContext,
                       on db: any Database) async throws -> (alert: CriticalAlert, created: Bool) {
        func text(_ value: String?, _ field: String, max: Int, required: Bool = false) throws -> String? {
            let trimmed = value?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if trimmed.isEmpty {
                if required { throw RoundsError.validation("\(field): required") }
                return nil
            }
            guard trimmed.count <= max else { throw RoundsError.validation("\(field): at most \(max) characters") }
            return trimmed
        }
        let testName = try text(report.testName, "testName", max: 100, required: true)!
        let value = try text(report.value, "value", max: 100, required: true)!
        let testCode = try text(report.testCode, "testCode", max: 50) ?? testName
        let unit = try text(report.unit, "unit", max: 30)
        let note = try text(report.note, "note", max: 500)
        let externalID = try text(report.externalID, "externalId", max: 100)
        let flag = try text(report.flag, "flag", max: 2)?.uppercased()
        if let flag, !Self.reportFlags.contains(flag) {
            throw RoundsError.validation("flag: one of \(Self.reportFlags.sorted().joined(separator: ", "))")
        }

        if context.principal.criticalValueReportingHospitalIDs?.isEmpty == true {
            try await audit.record("alert.report", entityType: "critical_alert", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("critical values are reported by laboratory, imaging and pathology staff or their systems")
        }
        let patient = try await reportedPatient(report, context: context, on: db)
        guard context.principal.canReportCriticalValues(hospitalID: patient.hospitalID) else {
            try await audit.record("alert.report", entityType: "patient", entityID: patient.id, patientID: patient.id,
                                   hospitalID: patient.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("critical values are reported by laboratory, imaging and pathology staff or their systems")
        }
        let sourceKey = "\(source):\(context.principal.id):\(externalID ?? ids.next())"
        if let existing = try await CriticalAlert.query(on: db).filter(\.$sourceKey == sourceKey).first() {
            guard existing.patientID == patient.id else { throw RoundsError.conflict("externalId \(externalID ?? "") was reported for another patient") }
            return (existing, false)
        }
        let result = ClinicalEvent.ObservationResult(
            observationID: "", code: testCode, name: testName, value: value, unit: unit, referenceRange: nil, flag: flag,
            critical: true, criticalReason: note ?? (source == "manual" ? "reported by \(context.principal.displayName)" : "reported by \(context.principal.displayName) (API)"),
            observedAt: report.observedAt)
        let alert = try await SQLiteWriteGate.serialised(db, urgent: true, writer: "critical-value-report") {
            try await notifier.transaction(on: db) { tx in
                let alert = try await raise(patientID: patient.id!, encounterID: nil, result: result, source: source, sourceKey: sourceKey,
                                            actor: context.principal.displayName, reportedBy: context.principal.displayName, on: tx)
                try await audit.record("alert.report", entityType: "critical_alert", entityID: alert.id, patientID: patient.id,
                                       hospitalID: patient.hospitalID, detail: "\(testName) \(value) \(unit ?? "")", context: context, on: tx)
                return alert
            }
        }
        return (alert, true)
    }

    private func reportedPatient(_ report: Report, context: RequestContext, on db: any Database) async throws -> Patient {
        if let patientID = report.patientID, !patientID.isEmpty {
            guard let patient = try await Patient.find(patientID, on: db) else { throw RoundsError.notFound("patient", id: patientID) }
            return patient
        }
        guard let mrn = report.mrn?.trimmingCharacters(in: .whitespaces), !mrn.isEmpty else {
            throw RoundsError.validation("patientId or mrn: one is required")
        }
        let query = Patient.query(on: db).filter(\.$mrn == mrn)
        if let hospitalID = report.hospitalID, !hospitalID.isEmpty {
            query.filter(\.$hospitalID == hospitalID)
        } else if let hospitals = context.principal.criticalValueReportingHospitalIDs {
            query.filter(\.$hospitalID ~~ Array(hospitals))
        }
        let found = try await query.limit(2).all()
        guard let patient = found.first else { throw RoundsError.notFound("patient", id: mrn) }
        guard found.count == 1 else { throw RoundsError.validation("hospitalId: MRN \(mrn) exists in several hospitals; name the hospital") }
        return patient
    }

    // MARK: The ward's ladder

    public static let ladderTargets = ["ward_doctors", "head_nurse", "director", "medical_affairs"]

    /// The ward's ladder (the standard one unless the ward has its own), for its care team and
    /// whoever may edit it.
    public func ladder(wardID: String, context: RequestContext, on db: any Database) async throws -> (steps: [LadderStep], isStandard: Bool) {
        let view = try await ladderView(wardID: wardID, context: context, on: db)
        return (view.steps, view.isStandard)
    }

    /// The ladder page: the ward's rungs (read as `ladder` reads them) and the ward's name.
    public func ladderView(wardID: String, context: RequestContext, on db: any Database) async throws -> (steps: [LadderStep], isStandard: Bool, wardName: String) {
        let ward = try await ladderWard(wardID, on: db)
        guard context.principal.canViewPatients(in: ward.wardRef) || context.principal.canEditEscalation(in: ward.wardRef) else {
            try await audit.record("alert.ladder.read", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden()
        }
        let own = try await EscalationLadderRow.find(wardID, on: db)
        return (try await ladder(forWard: wardID, on: db), own == nil, ward.name)
    }

    /// The hospitals the reader may report critical values for (the report form); refused and
    /// audited for someone who reports none.
    public func reportingHospitals(context: RequestContext, on db: any Database) async throws -> [Hospital] {
        guard context.principal.reportsCriticalValues else {
            try await audit.record("alert.report", entityType: "critical_alert", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden()
        }
        let query = Hospital.query(on: db).sort(\.$code)
        if let ids = context.principal.criticalValueReportingHospitalIDs { query.filter(\.$id ~~ Array(ids)) }
        return try await query.all()
    }

    /// A line of the alert list: the alert with its patient ("name（MRN）") and ward in words.
    public struct Listing: Sendable {
        public var alert: CriticalAlert
        public var patient: String
        public var ward: String?
    }

    public func listing(status: String?, limit: Int = 200, context: RequestContext, on db: any Database) async throws -> [Listing] {
        let alerts = try await visibleAlerts(status: status, limit: limit, context: context, on: db)
        guard !alerts.isEmpty else { return [] }
        let patients = try await Patient.query(on: db).filter(\.$id ~~ Set(alerts.map(\.patientID))).all()
        let names = Dictionary(patients.map { ($0.id!, "\($0.name)（\($0.mrn)）") }, uniquingKeysWith: { a, _ in a })
        let wardIDs = Set(alerts.compactMap(\.wardID))
        let wards = wardIDs.isEmpty ? [:] : Dictionary(try await Department.query(on: db).filter(\.$id ~~ wardIDs).all().map { ($0.id!, $0.name) },
                                                      uniquingKeysWith: { a, _ in a })
        return alerts.map { Listing(alert: $0, patient: names[$0.patientID] ?? "", ward: $0.wardID.flatMap { wards[$0] }) }
    }

    /// Replaces the ward's ladder (head nurse, medical affairs, administrators). Alerts already
    /// raised keep the ladder they were raised with.
    public func setLadder(wardID: String, steps: [LadderStep], context: RequestContext, on db: any Database) async throws -> [LadderStep] {
        let ward = try await ladderWard(wardID, on: db)
        guard context.principal.canEditEscalation(in: ward.wardRef) else {
            try await audit.record("alert.ladder.update", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("the ward's head nurse, medical affairs or an administrator edits the escalation ladder")
        }
        guard (1...6).contains(steps.count) else { throw RoundsError.validation("steps: between 1 and 6") }
        var previous = 0
        for (index, step) in steps.enumerated() {
            guard (1...1440).contains(step.afterMinutes), step.afterMinutes > previous else {
                throw RoundsError.validation("steps[\(index)].afterMinutes: 1 to 1440, each later than the one before")
            }
            guard !step.targets.isEmpty, step.targets.allSatisfy(Self.ladderTargets.contains) else {
                throw RoundsError.validation("steps[\(index)].targets: one or more of \(Self.ladderTargets.joined(separator: ", "))")
            }
            previous = step.afterMinutes
        }
        let json = String(decoding: try JSONEncoder().encode(steps), as: UTF8.self)
        try await db.transaction { tx in
            let row = try await EscalationLadderRow.find(wardID, on: tx) ?? {
                let row = EscalationLadderRow()
                row.id = wardID
                return row
            }()
            row.steps = json
            row.updatedAt = clock.now()
            try await row.save(on: tx)
            try await audit.record("alert.ladder.update", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                                   detail: steps.map { "\($0.afterMinutes)m:\($0.targets.joined(separator: "+"))" }.joined(separator: " "),
                                   context: context, on: tx)
        }
        return steps
    }

    private func ladderWard(_ wardID: String, on db: any Database) async throws -> Department {
        guard let ward = try await Department.find(wardID, on: db), ward.kind == .ward else { throw RoundsError.notFound("ward", id: wardID) }
        return ward
    }
}

// MARK: Reading one alert

extension AlertService {
    /// An alert with its whole record: every step, every escalation timer, every delivery.
    public struct Record: Sendable {
        public var alert: CriticalAlert
        public var patient: Patient
        public var wardName: String?
        public var steps: [AlertStep]
        public var escalations: [AlertEscalation]
        public var deliveries: [(AlertDelivery, AlertConnectorRow?)]
        /// Names of the staff the steps name, by id.
        public var names: [String: String]
        public var canAct: Bool
        /// The bed the patient lies in now (label), if any.
        public var bed: String?
    }

    /// An open critical value the person must act on, with everything needed to know whose it
    /// is without opening anything: patient, bed, ward, MRN.
    public struct Urgent: Sendable {
        public var alert: CriticalAlert
        public var patient: Patient
        public var bed: String?
        public var wardName: String?
    }

    /// The open critical values of patients whose care team I am in (group member, or clinical
    /// staff of the ward), newest first: what the urgent panel on every page shows. Oversight
    /// roles, who read but do not acknowledge, get none.
    public func urgentAlerts(context: RequestContext, on db: any Database) async throws -> [Urgent] {
        let principal = context.principal
        guard principal.kind == .staff else { return [] }
        let groups = try await self.groups.groupIDs(ofMember: principal.id, on: db)
        let wards = try await Department.query(on: db).filter(\.$kind == .ward).all()
        let caredFor = wards.filter { principal.caresForPatients(in: $0.wardRef) }.compactMap(\.id)
        guard !groups.isEmpty || !caredFor.isEmpty else { return [] }
        let alerts = try await CriticalAlert.query(on: db).filter(\.$status == "open").group(.or) { or in
            if !groups.isEmpty { or.filter(\.$groupID ~~ groups) }
            if !caredFor.isEmpty { or.filter(\.$wardID ~~ caredFor) }
        }.sort(\.$raisedAt, .descending).sort(\.$id, .descending).limit(100).all()
        guard !alerts.isEmpty else { return [] }
        let patients = Dictionary(try await Patient.query(on: db).filter(\.$id ~~ Set(alerts.map(\.patientID))).all().map { ($0.id!, $0) },
                                  uniquingKeysWith: { a, _ in a })
        let beds = try await bedLabels(Set(alerts.compactMap(\.encounterID)), on: db)
        let wardNames = Dictionary(wards.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
        try await audit.record("alert.urgent.list", entityType: "critical_alert", entityID: nil,
                               detail: "\(alerts.count)", context: context, on: db)
        return alerts.compactMap { alert in
            patients[alert.patientID].map {
                Urgent(alert: alert, patient: $0, bed: alert.encounterID.flatMap { beds[$0] }, wardName: alert.wardID.flatMap { wardNames[$0] })
            }
        }
    }

    /// The critical values raised from these inbound messages that the reader may see.
    public func raised(fromMessages messageIDs: [String], context: RequestContext, on db: any Database) async throws -> [CriticalAlert] {
        guard !messageIDs.isEmpty else { return [] }
        var visible: [CriticalAlert] = []
        for alert in try await CriticalAlert.query(on: db).filter(\.$sourceMessageID ~~ messageIDs).sort(\.$raisedAt).all()
        where try await mayRead(alert, context: context, on: db) {
            visible.append(alert)
        }
        return visible
    }

    /// Bed labels by encounter id.
    func bedLabels(_ encounterIDs: Set<String>, on db: any Database) async throws -> [String: String] {
        guard !encounterIDs.isEmpty else { return [:] }
        let encounters = try await Encounter.query(on: db).filter(\.$id ~~ encounterIDs).all()
        let bedIDs = Set(encounters.compactMap(\.bedID))
        let beds = bedIDs.isEmpty ? [] : try await Bed.query(on: db).filter(\.$id ~~ bedIDs).all()
        let labels = Dictionary(beds.map { ($0.id!, $0.label) }, uniquingKeysWith: { a, _ in a })
        return Dictionary(encounters.compactMap { e in e.bedID.flatMap { labels[$0] }.map { (e.id!, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    /// Who may read an alert: whoever sees the ward's patients, the patient group's members,
    /// reviewers of the hospital, and whoever reported it.
    func mayRead(_ alert: CriticalAlert, context: RequestContext, on db: any Database) async throws -> Bool {
        let principal = context.principal
        if principal.canReviewCriticalValues(hospitalID: alert.hospitalID) || principal.isSuperuser { return true }
        if alert.sourceKey.hasPrefix("manual:\(principal.id):") || alert.sourceKey.hasPrefix("api:\(principal.id):") { return true }
        if let wardID = alert.wardID, let ward = try await Department.find(wardID, on: db), principal.canViewPatients(in: ward.wardRef) {
            return true
        }
        if let groupID = alert.groupID {
            return try await groups.isMember(staffID: principal.id, ofGroup: groupID, on: db)
        }
        return false
    }

    public func record(alertID: String, context: RequestContext, on db: any Database) async throws -> Record {
        guard let alert = try await CriticalAlert.find(alertID, on: db) else { throw RoundsError.notFound("critical value", id: alertID) }
        guard try await mayRead(alert, context: context, on: db) else {
            try await audit.record("alert.read", entityType: "critical_alert", entityID: alertID, patientID: alert.patientID,
                                   hospitalID: alert.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden()
        }
        guard let patient = try await Patient.find(alert.patientID, on: db) else { throw RoundsError.notFound("patient", id: alert.patientID) }
        let steps = try await AlertStep.query(on: db).filter(\.$alertID == alertID).sort(\.$at).sort(\.$id).all()
        let escalations = try await AlertEscalation.query(on: db).filter(\.$alertID == alertID).sort(\.$level).all()
        let staffIDs = Set(steps.flatMap { ($0.staff ?? "").split(separator: " ").map(String.init) })
        let staff = staffIDs.isEmpty ? [] : try await Staff.query(on: db).filter(\.$id ~~ staffIDs).all()
        let canAct = try await isCareTeam(alert, context.principal, on: db)
        try await audit.record("alert.read", entityType: "critical_alert", entityID: alertID, patientID: alert.patientID,
                               hospitalID: alert.hospitalID, context: context, on: db)
        return Record(alert: alert, patient: patient, wardName: try await alert.wardID.asyncFlatMap { try await Department.find($0, on: db)?.name },
                      steps: steps, escalations: escalations, deliveries: try await deliveries(alertID: alertID, on: db),
                      names: Dictionary(staff.map { ($0.id!, $0.displayName) }, uniquingKeysWith: { a, _ in a }), canAct: canAct,
                      bed: try await alert.encounterID.asyncFlatMap { try await bedLabels([$0], on: db)[$0] })
    }

    /// The alerts a principal may see, newest first (optionally only one status).
    public func visibleAlerts(status: String?, limit: Int = 500, context: RequestContext, on db: any Database) async throws -> [CriticalAlert] {
        let principal = context.principal
        let query = CriticalAlert.query(on: db)
        if let status { query.filter(\.$status == status) }
        // Who may see what is part of the query, before the limit: an open alert of my wards is
        // never pushed out by newer alerts I may not see.
        if !principal.isSuperuser {
            let wards = try await Department.query(on: db).filter(\.$kind == .ward).all()
            let visibleWards = wards.filter { principal.canViewPatients(in: $0.wardRef) }.compactMap(\.id)
            let reviewed = principal.kind == .staff ? Array(reviewableHospitals(principal) ?? []) : []
            query.group(.or) { or in
                if !visibleWards.isEmpty { or.filter(\.$wardID ~~ visibleWards) }
                if !reviewed.isEmpty { or.filter(\.$hospitalID ~~ reviewed) }
                // What this person or system reported itself.
                or.filter(\.$sourceKey, .custom("LIKE"), "manual:\(principal.id):%")
                or.filter(\.$sourceKey, .custom("LIKE"), "api:\(principal.id):%")
            }
        }
        let rows = try await query.sort(\.$raisedAt, .descending).sort(\.$id, .descending).limit(limit).all()
        try await audit.record("alert.list", entityType: "critical_alert", entityID: nil, detail: "\(rows.count) alerts", context: context, on: db)
        return rows
    }
}

extension Optional {
    func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
