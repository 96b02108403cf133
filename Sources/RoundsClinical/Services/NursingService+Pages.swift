import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// Read models for the bedside pages: what each page shows besides the records themselves,
/// with the same permission checks (and audited refusals) as the records.
extension NursingService {
    /// A patient at the bedside: the current stay's ward and bed, and what the reader may do.
    public struct Bedside: Sendable {
        public var patient: Patient
        public var encounter: Encounter?
        public var ward: Department?
        public var bed: String
        /// The ward's nurses chart; the care team reads.
        public var canChart: Bool
        public var canViewWard: Bool
    }

    /// For reading pages (history, calendar): the reader must see one of the patient's stays.
    public func bedside(patientID: String, context: RequestContext, on db: any Database) async throws -> Bedside {
        let patient = try await readablePatient(patientID, action: "assessment.list", context: context, on: db)
        let encounter = try await Encounter.query(on: db).filter(\.$patientID == patientID).filter(\.$status == .active).first()
        var ward: Department?
        if let encounter { ward = try await Department.find(encounter.wardID, on: db) }
        return Bedside(patient: patient, encounter: encounter, ward: ward, bed: try await bedLabel(of: encounter, on: db),
                       canChart: ward.map { context.principal.canChartNursing(in: $0.wardRef) } ?? false,
                       canViewWard: ward.map { context.principal.canViewPatients(in: $0.wardRef) } ?? false)
    }

    /// For the assessment form: the same check as recording one (the ward's nurses, an active stay).
    public func chartingBedside(patientID: String, context: RequestContext, on db: any Database) async throws -> Bedside {
        let stay = try await stay(patientID: patientID, encounterID: nil, chart: true, action: "assessment.create", context: context, on: db)
        return Bedside(patient: stay.patient, encounter: stay.encounter, ward: stay.ward, bed: try await bedLabel(of: stay.encounter, on: db),
                       canChart: true, canViewWard: true)
    }

    private func bedLabel(of encounter: Encounter?, on db: any Database) async throws -> String {
        guard let bedID = encounter?.bedID else { return "" }
        return try await Bed.find(bedID, on: db)?.label ?? ""
    }

    /// A ward's header for its pages (name; may the reader chart there).
    public func wardHeader(_ wardID: String, context: RequestContext, on db: any Database) async throws -> (ward: Department, canChart: Bool, canEditRules: Bool) {
        guard let ward = try await Department.find(wardID, on: db), ward.kind == .ward else { throw RoundsError.notFound("ward", id: wardID) }
        return (ward, context.principal.canChartNursing(in: ward.wardRef), context.principal.canEditGroupRules(in: ward.wardRef))
    }

    /// The instruments page of administration; refused (and audited) for everyone else.
    public func instrumentsForAdministration(context: RequestContext, on db: any Database) async throws -> [Instrument] {
        guard context.principal.isAdministrator else {
            try await audit.record("instrument.list", entityType: "instrument", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("administration")
        }
        return try await instruments(on: db)
    }
}
