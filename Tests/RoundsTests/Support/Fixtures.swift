import FluentKit
import RoundsCore
@testable import RoundsDirectory
@testable import RoundsStore
import Vapor

/// Finds demo records by their human keys (username, ward code), since ids are generated.
enum Demo {
    static func staff(_ username: String, _ app: Application) async throws -> Staff {
        guard let s = try await Staff.query(on: app.db).filter(\.$username == username).first() else {
            throw TestSetupError("no demo staff \(username)")
        }
        return s
    }

    static func department(_ code: String, _ app: Application) async throws -> Department {
        guard let d = try await Department.query(on: app.db).filter(\.$code == code).first() else {
            throw TestSetupError("no demo department \(code)")
        }
        return d
    }

    static func hospital(_ code: String, _ app: Application) async throws -> Hospital {
        guard let h = try await Hospital.query(on: app.db).filter(\.$code == code).first() else {
            throw TestSetupError("no demo hospital \(code)")
        }
        return h
    }

    /// The first admitted patient of a ward.
    static func patient(onWard code: String, _ app: Application) async throws -> Patient {
        let ward = try await department(code, app)
        guard let e = try await Encounter.query(on: app.db).filter(\.$wardID == ward.id!).filter(\.$status == .active).first(),
              let p = try await Patient.find(e.patientID, on: app.db) else {
            throw TestSetupError("no patient on \(code)")
        }
        return p
    }

    static func audit(_ action: String, _ app: Application) async throws -> [AuditEvent] {
        try await AuditEvent.query(on: app.db).filter(\.$action == action).sort(\.$at).all()
    }
}
