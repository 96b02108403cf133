import FluentKit

/// What the audit log needs to know of the people and patients its rows are about, answered by
/// the directory (the store does not know those tables).
public protocol AuditSubjects: Sendable {
    /// The hospital a patient belongs to, so a row about a patient is that hospital's to audit.
    func hospital(ofPatient patientID: String, on db: any Database) async throws -> String?
    /// "name · MRN" of each patient.
    func patientLabels(_ patientIDs: Set<String>, on db: any Database) async throws -> [String: String]
    /// Staff whose name contains the words (at most `limit`).
    func staff(named words: String, limit: Int, on db: any Database) async throws -> [String]
    /// Patients with this MRN or whose name contains the words (at most `limit`).
    func patients(matching words: String, limit: Int, on db: any Database) async throws -> [String]
    /// The staff with a role in these hospitals, and the API tokens issued for them.
    func people(ofHospitals hospitalIDs: [String], on db: any Database) async throws -> (staff: [String], tokens: [String])
}
