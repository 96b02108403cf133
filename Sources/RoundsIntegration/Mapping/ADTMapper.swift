import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsHL7
import RoundsStore

/// ADT: admissions, transfers, discharges, updates, their cancellations, and merges → Patient
/// and Encounter rows plus outbox events.
enum ADTMapper {

    static func apply(_ ctx: inout MappingContext) async throws {
        let trigger = ctx.message.triggerEvent
        switch trigger {
        case "A01", "A04": try await admit(&ctx)
        case "A02": try await transfer(&ctx, cancelling: false)
        case "A12": try await transfer(&ctx, cancelling: true)
        case "A03": try await discharge(&ctx)
        case "A08": try await update(&ctx)
        case "A11": try await cancelAdmission(&ctx)
        case "A13": try await cancelDischarge(&ctx)
        case "A40": try await merge(&ctx)
        default: throw UnsupportedMessage(text: "ADT^\(trigger) is not mapped", code: "201")
        }
    }

    // MARK: Shared steps

    /// Registers the patient from PID, or refreshes the demographics of a known one. Only ADT
    /// refreshes: the HIS owns demographics, and a lab or order feed may carry an older spelling.
    /// The patient an order or result is about, who must be known already: a result for an MRN
    /// Rounds has never seen is held for review (and applied when the admission arrives), not
    /// turned into a patient with no stay whom no ward would ever see.
    static func knownPatient(_ ctx: inout MappingContext, hospital: Hospital) async throws -> Patient {
        let mrn = try ctx.medicalRecordNumber()
        ctx.patientMRN = mrn
        try await ctx.waitBehindHeld(hospitalID: hospital.id!, mrn: mrn)
        guard let known = try await Patient.query(on: ctx.db).filter(\.$hospitalID == hospital.id!).filter(\.$mrn == mrn).first() else {
            switch ctx.channel.settings.unknownPatient {
            case .create: return try await upsertPatient(&ctx, hospital: hospital, refresh: false)
            case .refuse: throw MappingError("no patient with MRN \(mrn) in \(hospital.code): send the admission first", code: "204")
            case .queue:
                throw HeldForReview(text: "no patient with MRN \(mrn) in \(hospital.code): held for review; applied when the patient's admission arrives",
                                    code: "204", key: "patient|\(hospital.id!)|\(mrn)", mrn: mrn, hospitalID: hospital.id)
            }
        }
        ctx.patientID = known.id
        return known
    }

    static func upsertPatient(_ ctx: inout MappingContext, hospital: Hospital, refresh: Bool = true) async throws -> Patient {
        let mrn = try ctx.medicalRecordNumber()
        ctx.patientMRN = mrn
        try await ctx.waitBehindHeld(hospitalID: hospital.id!, mrn: mrn)
        if !refresh, let known = try await Patient.query(on: ctx.db).filter(\.$hospitalID == hospital.id!).filter(\.$mrn == mrn).first() {
            ctx.patientMRN = mrn
            ctx.patientID = known.id
            return known
        }
        let name = MappingContext.personName(family: ctx.value("PID-5-1"), given: ctx.value("PID-5-2"))
        guard !name.isEmpty else { throw MappingError("PID-5 (patient name) is required", code: "101") }
        let gender: Gender = switch ctx.value("PID-8") {
        case "M": .male
        case "F": .female
        case "O", "A": .other
        default: .unknown
        }
        var allergies: [String] = []
        for al1 in ctx.message.segments(named: "AL1").indices {
            if let a = ctx.value("AL1(\(al1 + 1))-3-2") ?? ctx.value("AL1(\(al1 + 1))-3-1") { allergies.append(a) }
        }
        ctx.patientMRN = mrn
        let patient: Patient
        if let existing = try await Patient.query(on: ctx.db).filter(\.$hospitalID == hospital.id!).filter(\.$mrn == mrn).first() {
            patient = existing
            patient.name = name
            patient.gender = gender
            if let birth = MappingContext.isoDate(ctx.value("PID-7")) { patient.birthDate = birth }
            if !allergies.isEmpty { patient.allergies = allergies.joined(separator: "、") }
            try await patient.save(on: ctx.db)
        } else {
            patient = Patient(id: ctx.ids.next(), hospitalID: hospital.id!, mrn: mrn, name: name, gender: gender,
                              birthDate: MappingContext.isoDate(ctx.value("PID-7")),
                              allergies: allergies.isEmpty ? nil : allergies.joined(separator: "、"), createdAt: ctx.now)
            try await patient.create(on: ctx.db)
            try await ctx.audit("patient.create", entityType: "patient", entityID: patient.id, patientID: patient.id, detail: mrn)
        }
        ctx.patientID = patient.id
        return patient
    }

    struct Location {
        var ward: Department
        var bed: Bed?
        var bedText: String?
    }

    /// PV1-3 (or another PL field): ward code, then the bed. Chinese HIS feeds commonly put the
    /// bed number in PL-2 ("LUNG^12"), so PL-2 is tried first, then PL-3.
    /// The channel says which PL component holds the ward (PL-1 by default; some feeds send it
    /// in PL-4) and how the sender's ward codes map to Rounds'.
    static func location(_ ctx: MappingContext, field: String, hospital: Hospital, required: Bool = true) async throws -> Location? {
        let settings = ctx.channel.settings
        let wardPath = "\(field)-\(settings.wardComponent)"
        guard let sent = ctx.value(wardPath) else {
            if required { throw MappingError("\(wardPath) (assigned location: ward) is required", code: "101") }
            return nil
        }
        let code = settings.wardCode(sent)
        guard let ward = try await Department.query(on: ctx.db).filter(\.$hospitalID == hospital.id!)
            .filter(\.$code == code).filter(\.$kind == .ward).first() else {
            if settings.unknownWard == .queue {
                throw HeldForReview(text: "unknown ward code '\(sent)' in \(hospital.name): waiting in the mapping queue", code: "103",
                                    key: "ward|\(ctx.sender)|\(hospital.id!)|\(sent.uppercased())", mrn: ctx.patientMRN, hospitalID: hospital.id)
            }
            throw MappingError("unknown ward '\(sent)' in \(hospital.name): add it (with this code) under Organisation", code: "103")
        }
        let candidates = settings.bedComponents.compactMap { ctx.value("\(field)-\($0)") }
        for candidate in candidates {
            if let bed = try await Bed.query(on: ctx.db).filter(\.$wardID == ward.id!).filter(\.$label == candidate).first() {
                return Location(ward: ward, bed: bed, bedText: candidate)
            }
        }
        return Location(ward: ward, bed: nil, bedText: candidates.first)
    }

    /// The attending doctor: PV1-7, or (as the channel says) the ROL segment with an attending role.
    static func attending(_ ctx: MappingContext) async throws -> Staff? {
        guard ctx.channel.settings.attendingSource == .rol else { return try await ctx.staff(xcn: "PV1-7") }
        let codes = Set(ctx.channel.settings.attendingRoleCodes.map { $0.uppercased() })
        for index in ctx.message.segments(named: "ROL").indices {
            let rol = "ROL(\(index + 1))"
            if codes.contains((ctx.value("\(rol)-3-1") ?? "").uppercased()) { return try await ctx.staff(xcn: "\(rol)-4") }
        }
        return nil
    }

    /// The responsible nurse: a ROL segment whose role is RT/RN/NUR or says "nurse" / 护士.
    static func responsibleNurse(_ ctx: MappingContext) async throws -> Staff? {
        for index in ctx.message.segments(named: "ROL").indices {
            let rol = "ROL(\(index + 1))"
            let code = (ctx.value("\(rol)-3-1") ?? "").uppercased()
            let text = (ctx.value("\(rol)-3-2") ?? "").lowercased()
            if ctx.channel.settings.nurseRoleCodes.contains(where: { $0.uppercased() == code }) || text.contains("nurse") || text.contains("护士") {
                return try await ctx.staff(xcn: "\(rol)-4")
            }
        }
        return nil
    }

    /// The stay a message is about: by visit number (PV1-19), else the patient's active stay.
    static func activeEncounter(_ ctx: MappingContext, patient: Patient, status: EncounterStatus = .active) async throws -> Encounter? {
        if let visit = ctx.value("PV1-19"),
           let byVisit = try await Encounter.query(on: ctx.db).filter(\.$patientID == patient.id!).filter(\.$visitNumber == visit)
            .sort(\.$admittedAt, .descending).first(), byVisit.status == status {
            return byVisit
        }
        return try await Encounter.query(on: ctx.db).filter(\.$patientID == patient.id!).filter(\.$status == status)
            .sort(\.$admittedAt, .descending).first()
    }

    /// A bed can hold one patient: an HL7 message that puts someone in an occupied bed wins (the
    /// HIS is the source of truth), and the previous occupant keeps the stay without a bed.
    static func claim(_ bed: Bed?, for encounter: Encounter, _ ctx: MappingContext) async throws {
        guard let bed, let bedID = bed.id else { return }
        let others = try await Encounter.query(on: ctx.db).filter(\.$bedID == bedID).filter(\.$status == .active).all()
        for other in others where other.id != encounter.id {
            other.bedID = nil
            try await other.save(on: ctx.db)
        }
    }

    static func event(_ ctx: MappingContext, _ name: String, patient: Patient, encounter: Encounter?, location: Location?,
                      from: Location? = nil) -> ClinicalEvent.PatientMoved {
        ClinicalEvent.PatientMoved(event: name, mrn: patient.mrn, name: patient.name, wardCode: location?.ward.code, bed: location?.bed?.label ?? location?.bedText,
                     fromWardCode: from?.ward.code, fromBed: from?.bed?.label ?? from?.bedText,
                     attendingID: encounter?.attendingID, nurseID: encounter?.nurseID, visitNumber: encounter?.visitNumber,
                     at: MappingContext.date(ctx.value("EVN-2")) ?? ctx.now)
    }

    // MARK: Events

    static func admit(_ ctx: inout MappingContext) async throws {
        let hospital = try await ctx.resolveHospital()
        let patient = try await upsertPatient(&ctx, hospital: hospital)
        guard let location = try await location(ctx, field: "PV1-3", hospital: hospital) else { return }
        let attending = try await ADTMapper.attending(ctx)
        let nurse = try await responsibleNurse(ctx)
        let admittedAt = MappingContext.date(ctx.value("PV1-44")) ?? MappingContext.date(ctx.value("EVN-2")) ?? ctx.now
        let encounter: Encounter
        if let existing = try await activeEncounter(ctx, patient: patient) {
            // A repeated admission (new control id) refreshes the stay instead of opening a second one.
            encounter = existing
            encounter.wardID = location.ward.id!
            encounter.bedID = location.bed?.id
            encounter.attendingID = attending?.id ?? encounter.attendingID
            encounter.nurseID = nurse?.id ?? encounter.nurseID
            encounter.visitNumber = ctx.value("PV1-19") ?? encounter.visitNumber
            try await encounter.save(on: ctx.db)
        } else {
            encounter = Encounter(id: ctx.ids.next(), patientID: patient.id!, hospitalID: hospital.id!, visitNumber: ctx.value("PV1-19"),
                                  wardID: location.ward.id!, bedID: location.bed?.id, attendingID: attending?.id, nurseID: nurse?.id,
                                  admittedAt: admittedAt)
            try await encounter.create(on: ctx.db)
        }
        try await claim(location.bed, for: encounter, ctx)
        try await ctx.audit("patient.admit", entityType: "encounter", entityID: encounter.id, patientID: patient.id,
                            detail: "\(location.ward.name) \(location.bed?.label ?? "")")
        let payload = event(ctx, "admitted", patient: patient, encounter: encounter, location: location)
        try ctx.emit(.patientAdmitted, patientID: patient.id, encounterID: encounter.id, payload: payload)
    }

    static func transfer(_ ctx: inout MappingContext, cancelling: Bool) async throws {
        let hospital = try await ctx.resolveHospital()
        let patient = try await upsertPatient(&ctx, hospital: hospital)
        guard let encounter = try await activeEncounter(ctx, patient: patient) else {
            throw MappingError("patient \(patient.mrn) has no active stay to transfer", code: "204")
        }
        guard let to = try await location(ctx, field: "PV1-3", hospital: hospital) else { return }
        let fromWard = try await Department.find(encounter.wardID, on: ctx.db)
        var fromBed: Bed?
        if let bedID = encounter.bedID { fromBed = try await Bed.find(bedID, on: ctx.db) }
        let from = fromWard.map { Location(ward: $0, bed: fromBed, bedText: nil) }
        encounter.wardID = to.ward.id!
        encounter.bedID = to.bed?.id
        if let attending = try await ADTMapper.attending(ctx) { encounter.attendingID = attending.id }
        if let nurse = try await responsibleNurse(ctx) { encounter.nurseID = nurse.id }
        try await encounter.save(on: ctx.db)
        try await claim(to.bed, for: encounter, ctx)
        let name = cancelling ? EventKind.transferCancelled : EventKind.patientTransferred
        try await ctx.audit(cancelling ? "patient.transfer.cancel" : "patient.transfer", entityType: "encounter", entityID: encounter.id,
                            patientID: patient.id, detail: "\(from?.ward.name ?? "?") → \(to.ward.name) \(to.bed?.label ?? "")")
        try ctx.emit(name, patientID: patient.id, encounterID: encounter.id,
                     payload: event(ctx, cancelling ? "transfer cancelled" : "transferred", patient: patient, encounter: encounter, location: to, from: from))
    }

    static func discharge(_ ctx: inout MappingContext) async throws {
        let hospital = try await ctx.resolveHospital()
        let patient = try await upsertPatient(&ctx, hospital: hospital)
        guard let encounter = try await activeEncounter(ctx, patient: patient) else {
            // Already discharged (e.g. a resend with a new control id): nothing left to do.
            if try await activeEncounter(ctx, patient: patient, status: .discharged) != nil { return }
            throw MappingError("patient \(patient.mrn) has no stay to discharge", code: "204")
        }
        encounter.status = .discharged
        encounter.dischargedAt = MappingContext.date(ctx.value("PV1-45")) ?? MappingContext.date(ctx.value("EVN-2")) ?? ctx.now
        let ward = try await Department.find(encounter.wardID, on: ctx.db)
        try await encounter.save(on: ctx.db)
        try await ctx.audit("patient.discharge", entityType: "encounter", entityID: encounter.id, patientID: patient.id, detail: ward?.name)
        try ctx.emit(.patientDischarged, patientID: patient.id, encounterID: encounter.id,
                     payload: event(ctx, "discharged", patient: patient, encounter: encounter, location: ward.map { Location(ward: $0) }))
    }

    static func update(_ ctx: inout MappingContext) async throws {
        let hospital = try await ctx.resolveHospital()
        let patient = try await upsertPatient(&ctx, hospital: hospital)
        var location: Location?
        let encounter = try await activeEncounter(ctx, patient: patient)
        if let encounter {
            if let attending = try await ADTMapper.attending(ctx) { encounter.attendingID = attending.id }
            if let nurse = try await responsibleNurse(ctx) { encounter.nurseID = nurse.id }
            if let newLocation = try await self.location(ctx, field: "PV1-3", hospital: hospital, required: false) {
                location = newLocation
                encounter.wardID = newLocation.ward.id!
                encounter.bedID = newLocation.bed?.id ?? encounter.bedID
                try await claim(newLocation.bed, for: encounter, ctx)
            }
            try await encounter.save(on: ctx.db)
        }
        try await ctx.audit("patient.update", entityType: "patient", entityID: patient.id, patientID: patient.id)
        try ctx.emit(.patientUpdated, patientID: patient.id, encounterID: encounter?.id,
                     payload: event(ctx, "updated", patient: patient, encounter: encounter, location: location))
    }

    static func cancelAdmission(_ ctx: inout MappingContext) async throws {
        let hospital = try await ctx.resolveHospital()
        let patient = try await upsertPatient(&ctx, hospital: hospital)
        guard let encounter = try await activeEncounter(ctx, patient: patient) else {
            throw MappingError("patient \(patient.mrn) has no active stay to cancel", code: "204")
        }
        encounter.status = .cancelled
        encounter.dischargedAt = ctx.now
        encounter.bedID = nil
        try await encounter.save(on: ctx.db)
        try await ctx.audit("patient.admit.cancel", entityType: "encounter", entityID: encounter.id, patientID: patient.id)
        try ctx.emit(.admissionCancelled, patientID: patient.id, encounterID: encounter.id,
                     payload: event(ctx, "admission cancelled", patient: patient, encounter: encounter, location: nil))
    }

    static func cancelDischarge(_ ctx: inout MappingContext) async throws {
        let hospital = try await ctx.resolveHospital()
        let patient = try await upsertPatient(&ctx, hospital: hospital)
        guard let encounter = try await activeEncounter(ctx, patient: patient, status: .discharged) else {
            throw MappingError("patient \(patient.mrn) has no discharge to cancel", code: "204")
        }
        encounter.status = .active
        encounter.dischargedAt = nil
        try await encounter.save(on: ctx.db)
        try await ctx.audit("patient.discharge.cancel", entityType: "encounter", entityID: encounter.id, patientID: patient.id)
        try ctx.emit(.dischargeCancelled, patientID: patient.id, encounterID: encounter.id,
                     payload: event(ctx, "discharge cancelled", patient: patient, encounter: encounter, location: nil))
    }

    /// A40: MRG-1 is the record that goes away; PID-3 the one that survives. Everything that
    /// belonged to the old record moves over.
    static func merge(_ ctx: inout MappingContext) async throws {
        let hospital = try await ctx.resolveHospital()
        let survivor = try await upsertPatient(&ctx, hospital: hospital)
        let priorMRN = try ctx.require("MRG-1-1", "prior patient identifier")
        guard priorMRN != survivor.mrn else { throw MappingError("MRG-1 names the surviving patient itself", code: "207") }
        guard let prior = try await Patient.query(on: ctx.db).filter(\.$hospitalID == hospital.id!).filter(\.$mrn == priorMRN).first() else {
            throw MappingError("no patient with MRN \(priorMRN) to merge", code: "204")
        }
        let survivorID = survivor.id!, priorID = prior.id!
        try await Encounter.query(on: ctx.db).filter(\.$patientID == priorID).set(\.$patientID, to: survivorID).update()
        try await ClinicalOrder.query(on: ctx.db).filter(\.$patientID == priorID).set(\.$patientID, to: survivorID).update()
        try await Observation.query(on: ctx.db).filter(\.$patientID == priorID).set(\.$patientID, to: survivorID).update()
        try await ClinicalReport.query(on: ctx.db).filter(\.$patientID == priorID).set(\.$patientID, to: survivorID).update()
        prior.mergedInto = survivorID
        prior.mrn = "\(prior.mrn)~merged~\(ctx.messageID.suffix(8))"  // frees the MRN, keeps the trail
        try await prior.save(on: ctx.db)
        try await ctx.audit("patient.merge", entityType: "patient", entityID: survivorID, patientID: survivorID,
                            detail: "\(priorMRN) merged into \(survivor.mrn)")
        struct Merge: Encodable { var survivorMRN: String; var priorMRN: String; var priorPatientID: String }
        try ctx.emit(.patientMerged, patientID: survivorID, encounterID: nil,
                     payload: Merge(survivorMRN: survivor.mrn, priorMRN: priorMRN, priorPatientID: priorID))
    }
}

/// A message type or event Rounds does not map: stored and answered with AR (HL7 0357 200/201).
struct UnsupportedMessage: Error {
    var text: String
    var code: String
}
