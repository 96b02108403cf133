import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

@Suite struct TokenTests {
    /// An administrator creates a token through the API; returns its secret and id.
    func issue(_ app: Application, scopes: [TokenScope], hospital: String?) async throws -> TokenDTO {
        let admin = Client(app)
        try await admin.login("admin")
        let response = try await admin.json(.POST, "/api/v1/tokens", CreateTokenBody(name: "HIS 接口", scopes: scopes, hospitalId: hospital, expiresAt: nil))
        #expect(response.status == .created)
        return try response.decode(TokenDTO.self)
    }

    @Test(arguments: Backend.all)
    func tokenScopeAndHospitalAreEnforced(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let main = try await Demo.hospital("HK01", app)
            let token = try await issue(app, scopes: [.patientsRead], hospital: main.id)
            let secret = try #require(token.secret)
            // The secret is stored only as a digest.
            let stored = try #require(try await APIToken.find(token.id, on: app.db))
            #expect(stored.tokenHash != secret)
            #expect(stored.tokenHash == AuthService.digest(secret))

            let system = Client(app)
            system.bearer = secret
            let lung = try await Demo.department("LUNG", app)
            let cardio = try await Demo.department("CARD", app)
            #expect(try await system.get("/api/v1/wards/\(lung.id!)/patients").status == .ok)
            // Other hospital: outside the token's hospital.
            #expect(try await system.get("/api/v1/wards/\(cardio.id!)/patients").status == .forbidden)
            // Write without patients:write.
            let admit = AdmitBody(mrn: "MRN99999", name: "测试", gender: .female, birthDate: nil, allergies: nil, wardId: lung.id!,
                                  bedId: nil, attendingId: nil, nurseId: nil, visitNumber: nil)
            #expect(try await system.json(.POST, "/api/v1/admissions", admit).status == .forbidden)
            #expect(try await Patient.query(on: app.db).filter(\.$mrn == "MRN99999").count() == 0)
            // Not an organisation or audit reader either.
            #expect(try await system.get("/api/v1/audit").status == .forbidden)
            #expect(try await system.get("/api/v1/staff").status == .forbidden)
            // The token's reads are audited under its name.
            let reads = try await Demo.audit("patient.list", app)
            #expect(reads.contains { $0.actorKind == "token" && $0.actorName == "token:HIS 接口" })
        }
    }

    @Test(arguments: Backend.all)
    func writeScopeAdmitsAndRevocationEndsAccess(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let token = try await issue(app, scopes: [.patientsRead, .patientsWrite], hospital: nil)
            let system = Client(app)
            system.bearer = token.secret
            let lung = try await Demo.department("LUNG", app)
            let beds = try await Bed.query(on: app.db).filter(\.$wardID == lung.id!).filter(\.$label == "12").first()
            let admit = AdmitBody(mrn: "MRN10001", name: "王建国", gender: .male, birthDate: "1965-03-07", allergies: "青霉素",
                                  wardId: lung.id!, bedId: beds?.id, attendingId: nil, nurseId: nil, visitNumber: "V20261121001")
            // Bearer requests need no CSRF token: no cookie rides along with them.
            let created = try await system.json(.POST, "/api/v1/admissions", admit)
            #expect(created.status == .created)
            let patient = try created.decode(PatientDTO.self)
            #expect(patient.name == "王建国")

            let admin = Client(app)
            try await admin.login("admin")
            #expect(try await admin.raw(.DELETE, "/api/v1/tokens/\(token.id)", "").status == .ok)
            let after = try await system.get("/api/v1/patients/\(patient.id)")
            #expect(after.status == .unauthorized)
            #expect(after.problemCode == "invalid_token")
        }
    }

    @Test(arguments: Backend.all)
    func onlyAdministratorsIssueTokens(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let response = try await nurse.json(.POST, "/api/v1/tokens", CreateTokenBody(name: "mine", scopes: [.patientsRead], hospitalId: nil, expiresAt: nil))
            #expect(response.status == .forbidden)
            #expect(try await APIToken.query(on: app.db).count() == 0)
            // Garbage bearer tokens are refused outright.
            let stranger = Client(app)
            stranger.bearer = "rnd_not-a-real-token"
            #expect(try await stranger.get("/api/v1/hospitals").status == .unauthorized)
        }
    }

    @Test(arguments: Backend.all)
    func expiredTokensStopWorking(backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let admin = Client(app)
            try await admin.login("admin")
            let response = try await admin.json(.POST, "/api/v1/tokens",
                                                CreateTokenBody(name: "short", scopes: [.organisationRead], hospitalId: nil,
                                                                expiresAt: clock.now().addingTimeInterval(3600)))
            let token = try response.decode(TokenDTO.self)
            let system = Client(app)
            system.bearer = token.secret
            #expect(try await system.get("/api/v1/hospitals").status == .ok)
            clock.advance(by: 3601)
            #expect(try await system.get("/api/v1/hospitals").status == .unauthorized)
        }
    }
}
