import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

@Suite struct PermissionTests {
    @Test(arguments: Backend.all)
    func nurseSeesHerWardButNotAnotherHospitalsWard(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("wang.fang")
            let lung = try await Demo.department("LUNG", app)
            let cardio = try await Demo.department("CARD", app)  // 华康医院东院

            let own = try await client.get("/api/v1/wards/\(lung.id!)/patients")
            #expect(own.status == .ok)
            let patients = try own.decode([WardPatientDTO].self)
            #expect(patients.count == 8)
            #expect(patients.allSatisfy { $0.encounter.wardId == lung.id })

            let other = try await client.get("/api/v1/wards/\(cardio.id!)/patients")
            #expect(other.status == .forbidden)
            #expect(other.problemCode == "forbidden")
            // The refused attempt is audited.
            let denied = try await AuditEvent.query(on: app.db).filter(\.$outcome == "denied").filter(\.$entityID == cardio.id!).all()
            #expect(denied.count == 1)
            #expect(denied.first?.actorName == "王芳")

            // The web page refuses too.
            let page = try await client.page("/wards/\(cardio.id!)")
            #expect(page.status == .forbidden)
        }
    }

    @Test(arguments: Backend.all)
    func nurseCannotReadAPatientOfAnotherWard(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("wang.fang")
            let icuPatient = try await Demo.patient(onWard: "ICU", app)
            let response = try await client.get("/api/v1/patients/\(icuPatient.id!)")
            #expect(response.status == .forbidden)
            let rows = try await Demo.audit("patient.read", app)
            #expect(rows.count == 1)
            #expect(rows[0].outcome == "denied")
            #expect(rows[0].patientID == icuPatient.id)
        }
    }

    @Test(arguments: Backend.all)
    func qualityControlSeesEveryWardOfHerHospitalOnly(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("zhu.lin")
            let icu = try await Demo.department("ICU", app)
            let cardio = try await Demo.department("CARD", app)
            #expect(try await client.get("/api/v1/wards/\(icu.id!)/patients").status == .ok)
            #expect(try await client.get("/api/v1/wards/\(cardio.id!)/patients").status == .forbidden)
            #expect(try await client.get("/api/v1/audit").status == .ok)
        }
    }

    @Test(arguments: Backend.all)
    func nurseCannotAdministerOrBrowseTheAuditLog(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("wang.fang")
            #expect(try await client.page("/admin/hospitals").status == .forbidden)
            #expect(try await client.get("/api/v1/audit").status == .forbidden)
            #expect(try await client.page("/audit").status == .forbidden)
            #expect(try await client.get("/api/v1/staff").status == .forbidden)
            let lung = try await Demo.department("LUNG", app)
            let before = try await Bed.query(on: app.db).count()
            let response = try await client.json(.POST, "/api/v1/wards/\(lung.id!)/beds", CreateBedBody(label: "X1"))
            #expect(response.status == .forbidden)
            #expect(try await Bed.query(on: app.db).count() == before)
        }
    }

    @Test(arguments: Backend.all)
    func hospitalAdministratorManagesOnlyHisHospital(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("luo.jie")  // administrator of 华康医院东院
            let east = try await Demo.hospital("HK02", app)
            let main = try await Demo.hospital("HK01", app)
            let created = try await client.json(.POST, "/api/v1/hospitals/\(east.id!)/departments",
                                                CreateDepartmentBody(code: "NEURO", name: "神经内科病区", kind: .ward, parentId: nil))
            #expect(created.status == .created)
            let refused = try await client.json(.POST, "/api/v1/hospitals/\(main.id!)/departments",
                                                CreateDepartmentBody(code: "NEURO", name: "神经内科病区", kind: .ward, parentId: nil))
            #expect(refused.status == .forbidden)
            // Only group administrators create hospitals.
            #expect(try await client.json(.POST, "/api/v1/hospitals", CreateHospitalBody(code: "HK03", name: "西院")).status == .forbidden)
        }
    }

    @Test(arguments: Backend.all)
    func anonymousRequestsAreSentToSignIn(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            let page = try await client.page("/patients/whatever")
            #expect(page.status == .seeOther)
            #expect(page.headers.first(name: .location)?.hasPrefix("/login") == true)
            let api = try await client.get("/api/v1/hospitals")
            #expect(api.status == .unauthorized)
            #expect(api.problemCode == "unauthenticated")
            #expect(api.headers.contentType?.description.hasPrefix("application/problem+json") == true)
        }
    }
}
