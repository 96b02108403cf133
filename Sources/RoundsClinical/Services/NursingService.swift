import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsFHIR
import RoundsStore
import SQLKit

/// Bedside nursing: instruments (versioned data), scored assessments, what is due or overdue,
/// care-plan tasks and their records. Every read and write of patient data is audited; nurses
/// and head nurses of the ward chart, the rest of the care team reads.
public struct NursingService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let audit: AuditLog
    public let timeZone: TimeZone
    /// High-risk assessments become `assessment.high_risk` events (a card in the patient's group).
    public let outbox: OutboxWriter

    public init(clock: any RoundsClock, ids: IDGenerator, audit: AuditLog, timeZone: TimeZone, outbox: OutboxWriter) {
        self.clock = clock
        self.ids = ids
        self.audit = audit
        self.timeZone = timeZone
        self.outbox = outbox
    }

    // MARK: Instruments

    /// The newest version of every instrument, by title order of code.
    public func instruments(on db: any Database) async throws -> [Instrument] {
        let rows = try await InstrumentRecord.query(on: db).sort(\.$code).sort(\.$version, .descending).all()
        var seen = Set<String>()
        return try rows.filter { seen.insert($0.code).inserted }.map(Self.decode)
    }

    /// One instrument: the given version, or the newest.
    public func instrument(_ code: String, version: Int? = nil, on db: any Database) async throws -> Instrument {
        let query = InstrumentRecord.query(on: db).filter(\.$code == code).sort(\.$version, .descending)
        if let version { query.filter(\.$version == version) }
        guard let row = try await query.first() else { throw RoundsError.notFound("instrument", id: code + (version.map { " v\($0)" } ?? "")) }
        return try Self.decode(row)
    }

    static func decode(_ row: InstrumentRecord) throws -> Instrument {
        try JSONDecoder().decode(Instrument.self, from: Data(row.definition.utf8))
    }

    /// Adds an instrument, or a new version of one (its version number is the next one, whatever
    /// the upload says). Administrators only; the definition is validated first.
    public func importInstrument(_ data: Data, context: RequestContext, on db: any Database) async throws -> Instrument {
        guard context.principal.isAdministrator else {
            try await audit.record("instrument.import", entityType: "instrument", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("instruments are added by administrators")
        }
        var instrument: Instrument
        do {
            instrument = try JSONDecoder().decode(Instrument.self, from: data)
        } catch let error as DecodingError {
            throw RoundsError.validation("definition: \(Self.describe(error))")
        }
        let latest = try await InstrumentRecord.query(on: db).filter(\.$code == instrument.code).sort(\.$version, .descending).first()
        instrument.version = (latest?.version ?? 0) + 1
        try instrument.validate()
        let row = InstrumentRecord()
        row.id = ids.next()
        row.code = instrument.code
        row.version = instrument.version
        row.definition = String(decoding: try JSONEncoder().encode(instrument), as: UTF8.self)
        row.createdAt = clock.now()
        row.createdBy = context.principal.displayName
        let label = "\(instrument.code) v\(instrument.version)"
        try await db.transaction { tx in
            try await row.create(on: tx)
            try await audit.record("instrument.import", entityType: "instrument", entityID: row.id, detail: label,
                                   context: context, on: tx)
        }
        return instrument
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let c): return (c.codingPath + [key]).map(\.stringValue).joined(separator: ".") + ": required"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return c.codingPath.map(\.stringValue).joined(separator: ".") + ": wrong type"
        case .dataCorrupted(let c): return "not valid JSON (\(c.debugDescription))"
        @unknown default: return "not readable"
        }
    }

    // MARK: Access

    struct Stay { var patient: Patient; var encounter: Encounter; var ward: Department }

    /// The patient's stay (the given one, or the active one), with the permission check:
    /// `chart` for writes (the ward's nurses), otherwise reading (the care team).
    func stay(patientID: String, encounterID: String?, chart: Bool, action: String, context: RequestContext,
              on db: any Database) async throws -> Stay {
        guard let patient = try await Patient.find(patientID, on: db) else { throw RoundsError.notFound("patient", id: patientID) }
        let encounter: Encounter
        if let encounterID, !encounterID.isEmpty {
            guard let found = try await Encounter.find(encounterID, on: db) else { throw RoundsError.notFound("encounter", id: encounterID) }
            guard found.patientID == patientID else {
                try await audit.record(action, entityType: "encounter", entityID: encounterID, patientID: patientID,
                                       hospitalID: patient.hospitalID, outcome: .denied, detail: "encounter of another patient", context: context, on: db)
                throw RoundsError.forbidden("encounter \(encounterID) is another patient's stay")
            }
            encounter = found
        } else {
            guard let active = try await Encounter.query(on: db).filter(\.$patientID == patientID).filter(\.$status == .active).first() else {
                throw RoundsError.conflict("the patient has no active stay")
            }
            encounter = active
        }
        guard let ward = try await Department.find(encounter.wardID, on: db) else { throw RoundsError.notFound("ward", id: encounter.wardID) }
        let allowed = chart ? context.principal.canChartNursing(in: ward.wardRef) : context.principal.canViewPatients(in: ward.wardRef)
        guard allowed else {
            try await audit.record(action, entityType: "patient", entityID: patientID, patientID: patientID, hospitalID: patient.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden(chart ? "nursing records are charted by the ward's nurses" : nil)
        }
        return Stay(patient: patient, encounter: encounter, ward: ward)
    }

    // MARK: Assessments

    public struct NewAssessment: Sendable {
        public var instrument: String
        public var encounterID: String?
        public var answers: [String: String]
        public var idempotencyKey: String?
        public var reason: String?
        public init(instrument: String, encounterID: String? = nil, answers: [String: String], idempotencyKey: String? = nil, reason: String? = nil) {
            self.instrument = instrument; self.encounterID = encounterID; self.answers = answers
            self.idempotencyKey = idempotencyKey; self.reason = reason
        }
    }

    public static let reasons = ["admission", "routine", "after_fall", "after_transfer", "change_in_condition", "other"]

    /// Scores and stores an assessment; a high-risk band posts a card to the patient group (via
    /// the outbox) and starts the band's care-plan tasks. Returns the assessment and whether it
    /// is new (a known idempotency key returns the first one unchanged).
    public func record(patientID: String, _ input: NewAssessment, context: RequestContext,
                       on db: any Database) async throws -> (Assessment, created: Bool) {
        if let key = input.idempotencyKey {
            guard (8...100).contains(key.count) else { throw RoundsError.validation("idempotencyKey: 8 to 100 characters") }
            if let existing = try await Assessment.query(on: db).filter(\.$idempotencyKey == key).first() {
                guard existing.patientID == patientID else { throw RoundsError.conflict("idempotencyKey was used for another patient") }
                return (existing, false)
            }
        }
        let reason = input.reason ?? "routine"
        guard Self.reasons.contains(reason) else { throw RoundsError.validation("reason: one of \(Self.reasons.joined(separator: ", "))") }
        let stay = try await stay(patientID: patientID, encounterID: input.encounterID, chart: true, action: "assessment.create",
                                  context: context, on: db)
        guard stay.encounter.status == .active else { throw RoundsError.conflict("the stay has ended") }
        let instrument = try await instrument(input.instrument, on: db)
        let now = clock.now()
        let score = try instrument.score(input.answers, age: Self.age(birthDate: stay.patient.birthDate, on: now, timeZone: timeZone))

        let assessment = Assessment()
        assessment.id = ids.next()
        assessment.patientID = patientID
        assessment.encounterID = stay.encounter.id!
        assessment.wardID = stay.ward.id!
        assessment.instrumentCode = instrument.code
        assessment.instrumentVersion = instrument.version
        assessment.answers = String(decoding: try JSONEncoder.sorted.encode(score.answers), as: UTF8.self)
        assessment.total = score.total
        assessment.band = score.band.key
        assessment.severity = score.band.severity
        assessment.assessorID = context.principal.id
        assessment.assessorName = context.principal.displayName
        assessment.assessedAt = now
        assessment.reason = reason
        assessment.idempotencyKey = input.idempotencyKey ?? ids.next()
        try await SQLiteWriteGate.serialised(db, writer: "nursing") {
            try await outbox.transaction(on: db) { tx in
                try await assessment.create(on: tx)
                var started: [String] = []
                for intervention in score.band.interventions ?? [] {
                    let task = CareTask()
                    task.id = ids.next()
                    task.patientID = patientID
                    task.encounterID = stay.encounter.id!
                    task.wardID = stay.ward.id!
                    task.title = intervention.title.zh
                    task.scheduleKind = intervention.schedule.kind
                    task.everyHours = intervention.schedule.everyHours
                    task.times = intervention.schedule.times?.joined(separator: ",")
                    task.startsAt = now
                    task.endsAt = intervention.durationHours.map { now.addingTimeInterval(TimeInterval($0 * 3600)) }
                    task.sourceAssessmentID = assessment.id
                    task.status = "active"
                    task.createdByName = context.principal.displayName
                    task.createdAt = now
                    try await task.create(on: tx)
                    started.append(task.title)
                }
                if score.band.isHighRisk {
                    let payload = ClinicalEvent.AssessmentRecorded(
                        assessmentID: assessment.id!, instrument: instrument.title.zh, total: score.total, band: score.band.label.zh,
                        assessor: context.principal.displayName, interventions: started, at: now)
                    try await outbox.emit(PendingEvent(.assessmentHighRisk, patientID: patientID, encounterID: stay.encounter.id,
                                                       hospitalID: stay.encounter.hospitalID, payload: payload), in: tx)
                }
                try await audit.record("assessment.create", entityType: "assessment", entityID: assessment.id, patientID: patientID,
                                       hospitalID: stay.encounter.hospitalID,
                                       detail: "\(instrument.code) v\(instrument.version) \(score.total) \(score.band.key)", context: context, on: tx)
            }
        }
        return (assessment, true)
    }

    /// Age in whole years on a day, from a birth date "YYYY-MM-DD".
    public static func age(birthDate: String?, on date: Date, timeZone: TimeZone) -> Int? {
        guard let birthDate else { return nil }
        let parts = birthDate.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let today = calendar.dateComponents([.year, .month, .day], from: date)
        guard let y = today.year, let m = today.month, let d = today.day else { return nil }
        return y - parts[0] - ((m, d) < (parts[1], parts[2]) ? 1 : 0)
    }

    /// A patient's assessments, newest first (optionally one instrument); the read is audited.
    public func assessments(patientID: String, instrument: String?, context: RequestContext,
                            on db: any Database) async throws -> [Assessment] {
        _ = try await readablePatient(patientID, action: "assessment.list", context: context, on: db)
        let query = Assessment.query(on: db).filter(\.$patientID == patientID).sort(\.$assessedAt, .descending).sort(\.$id, .descending)
        if let instrument { query.filter(\.$instrumentCode == instrument) }
        let rows = try await query.limit(500).all()
        try await audit.record("assessment.list", entityType: "patient", entityID: patientID, patientID: patientID,
                               detail: "\(rows.count) assessments", context: context, on: db)
        return rows
    }

    /// The assessment as a FHIR R4 QuestionnaireResponse (read and audited like the assessment).
    public func questionnaireResponse(assessmentID: String, context: RequestContext, on db: any Database) async throws -> FHIR.QuestionnaireResponse {
        let assessment = try await assessment(id: assessmentID, context: context, on: db)
        let instrument = try await instrument(assessment.instrumentCode, version: assessment.instrumentVersion, on: db)
        guard let patient = try await Patient.find(assessment.patientID, on: db) else { throw RoundsError.notFound("patient", id: assessment.patientID) }
        return instrument.questionnaireResponse(assessment, patient: patient)
    }

    public func assessment(id: String, context: RequestContext, on db: any Database) async throws -> Assessment {
        guard let row = try await Assessment.find(id, on: db) else { throw RoundsError.notFound("assessment", id: id) }
        _ = try await stay(patientID: row.patientID, encounterID: row.encounterID, chart: false, action: "assessment.read", context: context, on: db)
        try await audit.record("assessment.read", entityType: "assessment", entityID: id, patientID: row.patientID, context: context, on: db)
        return row
    }

    /// May the principal read this patient's nursing record: any stay on a ward they see.
    func readablePatient(_ patientID: String, action: String, context: RequestContext, on db: any Database) async throws -> Patient {
        guard let patient = try await Patient.find(patientID, on: db) else { throw RoundsError.notFound("patient", id: patientID) }
        let wardIDs = try await Encounter.query(on: db).filter(\.$patientID == patientID).all(\.$wardID)
        let wards = wardIDs.isEmpty ? [] : try await Department.query(on: db).filter(\.$id ~~ Set(wardIDs)).all()
        guard context.principal.seesAllPatients(ofHospital: patient.hospitalID) || wards.contains(where: { context.principal.canViewPatients(in: $0.wardRef) }) else {
            try await audit.record(action, entityType: "patient", entityID: patientID, patientID: patientID, hospitalID: patient.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden()
        }
        return patient
    }

    // MARK: Falls

    /// A fall at the bedside: recorded, and the instruments that ask for it fall due again.
    public func recordFall(patientID: String, note: String?, context: RequestContext, on db: any Database) async throws -> NursingEvent {
        let stay = try await stay(patientID: patientID, encounterID: nil, chart: true, action: "nursing.fall", context: context, on: db)
        let event = NursingEvent()
        event.id = ids.next()
        event.patientID = patientID
        event.encounterID = stay.encounter.id!
        event.kind = "fall"
        event.note = note?.trimmingCharacters(in: .whitespacesAndNewlines).prefix(500).description
        event.byName = context.principal.displayName
        event.at = clock.now()
        try await db.transaction { tx in
            try await event.create(on: tx)
            try await audit.record("nursing.fall", entityType: "patient", entityID: patientID, patientID: patientID,
                                   hospitalID: stay.encounter.hospitalID, detail: event.note, context: context, on: tx)
        }
        return event
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}
