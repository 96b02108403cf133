import FluentKit
import Foundation
import RoundsCore
import RoundsStore

/// Patients and their stays. Every read and write of patient data is audited, including the
/// attempts that were refused.
public struct PatientService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let audit: AuditLog
    /// Admissions and discharges through the API are the same clinical events as over HL7
    /// (the patient group opens and closes with them).
    public let outbox: OutboxWriter

    public init(clock: any RoundsClock, ids: IDGenerator, audit: AuditLog, outbox: OutboxWriter) {
        self.clock = clock
        self.ids = ids
        self.audit = audit
        self.outbox = outbox
    }

    private func moved(_ event: String, patient: Patient, encounter: Encounter, ward: Department, on db: any Database) async throws -> ClinicalEvent.PatientMoved {
        var bed: Bed?
        if let bedID = encounter.bedID { bed = try await Bed.find(bedID, on: db) }
        return ClinicalEvent.PatientMoved(event: event, mrn: patient.mrn, name: patient.name, wardCode: ward.code, bed: bed?.label,
                                          fromWardCode: nil, fromBed: nil, attendingID: encounter.attendingID, nurseID: encounter.nurseID,
                                          visitNumber: encounter.visitNumber, at: clock.now())
    }

    /// A patient in a bed, as a ward list shows them.
    public struct BedOccupant: Sendable {
        public var patient: Patient
        public var encounter: Encounter
        public var bed: Bed?
    }

    public struct PatientRecord: Sendable {
        public var patient: Patient
        public var encounters: [Encounter]
        public var wards: [String: Department]
        public var beds: [String: Bed]
        public var staff: [String: Staff]
    }

    /// Wards whose patients the principal sees: their own wards first, for the home page.
    public func myWards(context: RequestContext, on db: any Database) async throws -> [Department] {
        let wards = try await Department.query(on: db).filter(\.$kind == .ward).sort(\.$hospitalID).sort(\.$code).all()
        return wards.filter { context.principal.canViewPatients(in: $0.wardRef) }
    }

    public func ward(id: String, on db: any Database) async throws -> Department {
        guard let ward = try await Department.find(id, on: db), ward.kind == .ward else { throw RoundsError.notFound("ward", id: id) }
        return ward
    }

    /// A ward as its board shows it: the hospital's name, the admitted patients by bed, and the
    /// names of their doctors and nurses.
    public struct WardBoard: Sendable {
        public var ward: Department
        public var hospitalName: String
        public var occupants: [BedOccupant]
        public var staffNames: [String: String]
    }

    /// The boards of the home page: the wards where the person works, or, for oversight roles
    /// who work on none, every ward they may see (the others are reachable by ward page).
    public func homeBoards(context: RequestContext, on db: any Database) async throws -> [WardBoard] {
        let wards = try await myWards(context: context, on: db)
        let own = wards.filter { context.principal.worksOn(wardID: $0.id!, parentDepartmentID: $0.parentID) }
        let hospitals = try await hospitalNames(on: db)
        var boards: [WardBoard] = []
        for ward in own.isEmpty ? wards : own {
            boards.append(try await board(ward, hospitalName: hospitals[ward.hospitalID] ?? "", context: context, on: db))
        }
        return boards
    }

    public func wardBoard(id: String, context: RequestContext, on db: any Database) async throws -> WardBoard {
        let ward = try await ward(id: id, on: db)
        return try await board(ward, hospitalName: try await Hospital.find(ward.hospitalID, on: db)?.name ?? "", context: context, on: db)
    }

    private func board(_ ward: Department, hospitalName: String, context: RequestContext, on db: any Database) async throws -> WardBoard {
        let occupants = try await occupants(wardID: ward.id!, context: context, on: db)
        let staffIDs = Set(occupants.flatMap { [$0.encounter.attendingID, $0.encounter.nurseID].compactMap { $0 } })
        let staff = staffIDs.isEmpty ? [] : try await Staff.query(on: db).filter(\.$id ~~ Array(staffIDs)).all()
        return WardBoard(ward: ward, hospitalName: hospitalName, occupants: occupants,
                         staffNames: Dictionary(staff.map { ($0.id!, $0.displayName) }, uniquingKeysWith: { a, _ in a }))
    }

    private func hospitalNames(on db: any Database) async throws -> [String: String] {
        Dictionary(try await Hospital.query(on: db).all().map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    /// Admitted patients of a ward, by bed.
    public func occupants(wardID: String, context: RequestContext, on db: any Database) async throws -> [BedOccupant] {
        let ward = try await ward(id: wardID, on: db)
        guard context.principal.canViewPatients(in: ward.wardRef) else {
            try await audit.record("patient.list", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("patients of ward \(ward.name)")
        }
        let encounters = try await Encounter.query(on: db).filter(\.$wardID == wardID).filter(\.$status == .active).all()
        let patients = try await Patient.query(on: db).filter(\.$id ~~ encounters.map(\.patientID)).all()
        let beds = try await Bed.query(on: db).filter(\.$wardID == wardID).all()
        let patientsByID = Dictionary(patients.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        let bedsByID = Dictionary(beds.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        let result = encounters.compactMap { e -> BedOccupant? in
            guard let p = patientsByID[e.patientID] else { return nil }
            return BedOccupant(patient: p, encounter: e, bed: e.bedID.flatMap { bedsByID[$0] })
        }.sorted { ($0.bed?.sortOrder ?? Int.max, $0.patient.name) < ($1.bed?.sortOrder ?? Int.max, $1.patient.name) }
        try await audit.record("patient.list", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                               detail: "\(result.count) patients", context: context, on: db)
        return result
    }

    /// Admitted patients of the wards I may see, found by name, MRN or bed ("12", "12床"),
    /// by ward and bed. Audited with what was searched.
    public func search(_ text: String, context: RequestContext, on db: any Database) async throws -> [(BedOccupant, Department)] {
        let q = text.trimmingCharacters(in: .whitespaces)
        guard !q.isEmpty else { return [] }
        let wards = try await myWards(context: context, on: db)
        guard !wards.isEmpty else { return [] }
        let byWard = Dictionary(wards.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        let encounters = try await Encounter.query(on: db).filter(\.$wardID ~~ Array(byWard.keys)).filter(\.$status == .active).all()
        let patients = Dictionary(try await Patient.query(on: db).filter(\.$id ~~ encounters.map(\.patientID)).all().map { ($0.id!, $0) },
                                  uniquingKeysWith: { a, _ in a })
        let bedIDs = encounters.compactMap(\.bedID)
        let beds = bedIDs.isEmpty ? [:] : Dictionary(try await Bed.query(on: db).filter(\.$id ~~ bedIDs).all().map { ($0.id!, $0) },
                                                     uniquingKeysWith: { a, _ in a })
        let bedQuery = q.hasSuffix("床") ? String(q.dropLast()) : q
        let found = encounters.compactMap { e -> (BedOccupant, Department)? in
            guard let p = patients[e.patientID], let ward = byWard[e.wardID] else { return nil }
            let bed = e.bedID.flatMap { beds[$0] }
            let hit = p.name.contains(q) || p.mrn.localizedCaseInsensitiveContains(q) || bed?.label == bedQuery
            return hit ? (BedOccupant(patient: p, encounter: e, bed: bed), ward) : nil
        }.sorted { ($0.1.name, $0.0.bed?.sortOrder ?? Int.max) < ($1.1.name, $1.0.bed?.sortOrder ?? Int.max) }
        try await audit.record("patient.search", entityType: "patient", entityID: nil, detail: "\(q.prefix(40)): \(found.count)",
                               context: context, on: db)
        return Array(found.prefix(50))
    }

    /// One patient with all stays. Allowed if any stay is on a ward the principal may see.
    public func record(patientID: String, context: RequestContext, on db: any Database) async throws -> PatientRecord {
        guard let patient = try await Patient.find(patientID, on: db) else { throw RoundsError.notFound("patient", id: patientID) }
        let encounters = try await Encounter.query(on: db).filter(\.$patientID == patientID).sort(\.$admittedAt, .descending).all()
        let wards = try await Department.query(on: db).filter(\.$id ~~ encounters.map(\.wardID)).all()
        let allowed = context.principal.seesAllPatients(ofHospital: patient.hospitalID)
            || wards.contains { context.principal.canViewPatients(in: $0.wardRef) }
        guard allowed else {
            try await audit.record("patient.read", entityType: "patient", entityID: patientID, patientID: patientID,
                                   hospitalID: patient.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("patient \(patientID)")
        }
        let beds = try await Bed.query(on: db).filter(\.$id ~~ encounters.compactMap(\.bedID)).all()
        let staffIDs = Set(encounters.flatMap { [$0.attendingID, $0.nurseID].compactMap { $0 } })
        let staff = try await Staff.query(on: db).filter(\.$id ~~ Array(staffIDs)).all()
        try await audit.record("patient.read", entityType: "patient", entityID: patientID, patientID: patientID,
                               hospitalID: patient.hospitalID, context: context, on: db)
        return PatientRecord(
            patient: patient, encounters: encounters,
            wards: Dictionary(wards.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a }),
            beds: Dictionary(beds.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a }),
            staff: Dictionary(staff.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a }))
    }

    /// A patient's chart: the record (permission checked and audited by `record`) with the
    /// clinical data the HIS, LIS and pathology feeds brought in, newest first.
    public struct Admission: Sendable {
        public var mrn: String
        public var name: String
        public var gender: Gender
        public var birthDate: String?
        public var allergies: String?
        public var wardID: String
        public var bedID: String?
        public var attendingID: String?
        public var nurseID: String?
        public var visitNumber: String?

        public init(mrn: String, name: String, gender: Gender, birthDate: String?, allergies: String? = nil, wardID: String,
                    bedID: String? = nil, attendingID: String? = nil, nurseID: String? = nil, visitNumber: String? = nil) {
            self.mrn = mrn; self.name = name; self.gender = gender; self.birthDate = birthDate; self.allergies = allergies
            self.wardID = wardID; self.bedID = bedID; self.attendingID = attendingID; self.nurseID = nurseID
            self.visitNumber = visitNumber
        }
    }

    /// Registers (or finds, by MRN) a patient and opens a stay on a ward. The HL7 engine and the
    /// API both come through here.
    public func admit(_ admission: Admission, context: RequestContext, on db: any Database) async throws -> (Patient, Encounter) {
        let ward = try await ward(id: admission.wardID, on: db)
        guard context.principal.canWritePatients(in: ward.wardRef) else {
            try await audit.record("patient.admit", entityType: "ward", entityID: ward.id, hospitalID: ward.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("admitting to ward \(ward.name)")
        }
        let mrn = try Validate.text(admission.mrn, field: "mrn", max: 40)
        let name = try Validate.text(admission.name, field: "name", max: 60)
        let birthDate = try Validate.isoDate(admission.birthDate, field: "birthDate")
        if let bedID = admission.bedID {
            guard let bed = try await Bed.find(bedID, on: db), bed.wardID == ward.id else {
                throw RoundsError.validation("bedId: not a bed of ward \(ward.name)")
            }
            if try await Encounter.query(on: db).filter(\.$bedID == bedID).filter(\.$status == .active).first() != nil {
                throw RoundsError.conflict("bed \(bed.label) is occupied")
            }
        }
        for (field, id) in [("attendingId", admission.attendingID), ("nurseId", admission.nurseID)] {
            if let id, try await Staff.find(id, on: db) == nil { throw RoundsError.validation("\(field): no such staff member") }
        }
        let now = clock.now()
        let admitted = try await outbox.transaction(on: db) { tx in
            let patient: Patient
            if let existing = try await Patient.query(on: tx).filter(\.$hospitalID == ward.hospitalID).filter(\.$mrn == mrn).first() {
                patient = existing
                if try await Encounter.query(on: tx).filter(\.$patientID == existing.requireID()).filter(\.$status == .active).first() != nil {
                    throw RoundsError.conflict("patient \(mrn) is already admitted")
                }
            } else {
                patient = Patient(id: ids.next(), hospitalID: ward.hospitalID, mrn: mrn, name: name, gender: admission.gender,
                                  birthDate: birthDate, allergies: admission.allergies, createdAt: now)
                try await patient.create(on: tx)
            }
            let encounter = Encounter(id: ids.next(), patientID: try patient.requireID(), hospitalID: ward.hospitalID,
                                      visitNumber: admission.visitNumber, wardID: ward.id!, bedID: admission.bedID,
                                      attendingID: admission.attendingID, nurseID: admission.nurseID, admittedAt: now)
            try await encounter.create(on: tx)
            try await audit.record("patient.admit", entityType: "encounter", entityID: encounter.id, patientID: patient.id,
                                   hospitalID: ward.hospitalID, detail: ward.name, context: context, on: tx)
            try await outbox.emit(PendingEvent(.patientAdmitted, patientID: patient.id, encounterID: encounter.id, hospitalID: ward.hospitalID,
                                               payload: try await moved("admitted", patient: patient, encounter: encounter, ward: ward, on: tx)), in: tx)
            return (patient, encounter)
        }
        return admitted
    }

    public func discharge(encounterID: String, context: RequestContext, on db: any Database) async throws -> Encounter {
        guard let encounter = try await Encounter.find(encounterID, on: db) else { throw RoundsError.notFound("encounter", id: encounterID) }
        let ward = try await ward(id: encounter.wardID, on: db)
        guard context.principal.canWritePatients(in: ward.wardRef) else {
            try await audit.record("patient.discharge", entityType: "encounter", entityID: encounterID, patientID: encounter.patientID,
                                   hospitalID: ward.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("discharging from ward \(ward.name)")
        }
        guard encounter.status == .active else { throw RoundsError.conflict("encounter \(encounterID) is already discharged") }
        encounter.status = .discharged
        encounter.dischargedAt = clock.now()
        guard let patient = try await Patient.find(encounter.patientID, on: db) else { throw RoundsError.notFound("patient", id: encounter.patientID) }
        try await outbox.transaction(on: db) { tx in
            try await encounter.save(on: tx)
            try await audit.record("patient.discharge", entityType: "encounter", entityID: encounterID, patientID: encounter.patientID,
                                   hospitalID: ward.hospitalID, context: context, on: tx)
            try await outbox.emit(PendingEvent(.patientDischarged, patientID: patient.id, encounterID: encounterID, hospitalID: ward.hospitalID,
                                               payload: try await moved("discharged", patient: patient, encounter: encounter, ward: ward, on: tx)), in: tx)
        }
        return encounter
    }
}
