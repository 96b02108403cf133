import FluentKit
import RoundsCore
import RoundsStore

/// The directory's answers to the audit log (see `AuditSubjects`).
public struct DirectoryAuditSubjects: AuditSubjects {
    public init() {}

    public func hospital(ofPatient patientID: String, on db: any Database) async throws -> String? {
        try await Patient.find(patientID, on: db)?.hospitalID
    }

    public func patientLabels(_ patientIDs: Set<String>, on db: any Database) async throws -> [String: String] {
        guard !patientIDs.isEmpty else { return [:] }
        return Dictionary(try await Patient.query(on: db).filter(\.$id ~~ patientIDs).all().map { ($0.id!, "\($0.name) · \($0.mrn)") },
                          uniquingKeysWith: { a, _ in a })
    }

    public func staff(named words: String, limit: Int, on db: any Database) async throws -> [String] {
        try await Staff.query(on: db).filter(\.$displayName, .custom("LIKE"), "%\(words)%").limit(limit).all().compactMap(\.id)
    }

    public func patients(matching words: String, limit: Int, on db: any Database) async throws -> [String] {
        try await Patient.query(on: db).group(.or) {
            $0.filter(\.$mrn == words).filter(\.$name, .custom("LIKE"), "%\(words)%")
        }.limit(limit).all().compactMap(\.id)
    }

    public func people(ofHospitals hospitalIDs: [String], on db: any Database) async throws -> (staff: [String], tokens: [String]) {
        let staff = Array(Set(try await StaffRole.query(on: db).filter(\.$hospitalID ~~ hospitalIDs).all(\.$staffID)))
        let tokens = try await APIToken.query(on: db).filter(\.$hospitalID ~~ hospitalIDs).all(\.$id).compactMap { $0 }
        return (staff, tokens)
    }
}

extension AuditLog {
    /// The audit log, answered about people and patients by the directory.
    public init(clock: any RoundsClock, ids: IDGenerator) {
        self.init(clock: clock, ids: ids, subjects: DirectoryAuditSubjects())
    }
}
