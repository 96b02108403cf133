import FluentKit
import RoundsCore
import RoundsDirectory
import RoundsStore

extension PatientService {
    /// A patient's chart: the record (with its permission check and audit row) and what the HIS,
    /// LIS and pathology sent about the patient, newest first.
    public struct Chart: Sendable {
        public var record: PatientRecord
        public var orders: [ClinicalOrder]
        public var results: [Observation]
        public var reports: [ClinicalReport]
    }

    public func chart(patientID: String, context: RequestContext, on db: any Database) async throws -> Chart {
        let record = try await record(patientID: patientID, context: context, on: db)
        return Chart(record: record,
                     orders: try await ClinicalOrder.query(on: db).filter(\.$patientID == patientID).sort(\.$updatedAt, .descending).limit(100).all(),
                     results: try await Observation.query(on: db).filter(\.$patientID == patientID).sort(\.$id, .descending).limit(100).all(),
                     reports: try await ClinicalReport.query(on: db).filter(\.$patientID == patientID).sort(\.$id, .descending).limit(50).all())
    }
}
