import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

@Suite struct APITests {
    @Test(arguments: Backend.all)
    func badJSONGetsAProblemBodyAndStoresNothing(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("admin")
            let before = try await Hospital.query(on: app.db).count()
            let broken = try await client.raw(.POST, "/api/v1/hospitals", "{\"code\": \"HK05\", \"name\": ")
            #expect(broken.status == .badRequest)
            #expect(broken.problemCode == "bad_json")
            #expect(broken.headers.contentType?.description.hasPrefix("application/problem+json") == true)
            struct Problem: Decodable { var code: String; var message: String; var detail: String? }
            let problem = try broken.decode(Problem.self)
            #expect(!problem.message.isEmpty)

            let missing = try await client.raw(.POST, "/api/v1/hospitals", "{\"code\": \"HK05\"}")
            #expect(missing.status == .badRequest)
            #expect(try missing.decode(Problem.self).detail?.contains("name") == true)

            let wrongType = try await client.raw(.POST, "/api/v1/hospitals", "{\"code\": 5, \"name\": \"x\"}")
            #expect(wrongType.status == .badRequest)
            #expect(try await Hospital.query(on: app.db).count() == before)
        }
    }

    @Test(arguments: Backend.all)
    func unknownIdsAndRoutesAre404(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("admin")
            let patient = try await client.get("/api/v1/patients/01234567-0000-7000-8000-000000000000")
            #expect(patient.status == .notFound)
            #expect(patient.problemCode == "not_found")
            #expect(try await client.get("/api/v1/hospitals/nope").status == .notFound)
            #expect(try await client.get("/api/v1/wards/nope/patients").status == .notFound)
            #expect(try await client.get("/api/v1/no-such-thing").problemCode == "not_found")
            #expect(try await client.raw(.DELETE, "/api/v1/tokens/nope", "").status == .notFound)
            // A web page for an unknown patient is a 404 page, not a crash.
            let page = try await client.page("/patients/nope")
            #expect(page.status == .notFound)
            #expect(page.body.string.contains("该页面或记录不存在") && page.body.string.contains("data-code=\"not_found\""))
            #expect(!page.body.string.contains(">not_found<") && !page.body.string.contains("patient nope"))
        }
    }

    @Test(arguments: Backend.all)
    func validationAndConflictsAreExplained(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("admin")
            let bad = try await client.json(.POST, "/api/v1/hospitals", CreateHospitalBody(code: "有空格 x", name: "x"))
            #expect(bad.status == .unprocessableEntity)
            #expect(bad.problemCode == "validation_failed")
            let taken = try await client.json(.POST, "/api/v1/hospitals", CreateHospitalBody(code: "HK01", name: "重复"))
            #expect(taken.status == .conflict)
            let lung = try await Demo.department("LUNG", app)
            let occupiedBed = try #require(try await Encounter.query(on: app.db).filter(\.$wardID == lung.id!).filter(\.$status == .active).first()?.bedID)
            let admit = AdmitBody(mrn: "MRN77777", name: "测试", gender: .male, birthDate: "1970-13-01", allergies: nil, wardId: lung.id!,
                                  bedId: nil, attendingId: nil, nurseId: nil, visitNumber: nil)
            let badDate = try await client.json(.POST, "/api/v1/admissions", admit)
            #expect(badDate.status == .unprocessableEntity)
            var occupied = admit
            occupied.birthDate = "1970-01-01"
            occupied.bedId = occupiedBed
            #expect(try await client.json(.POST, "/api/v1/admissions", occupied).status == .conflict)
            #expect(try await Patient.query(on: app.db).filter(\.$mrn == "MRN77777").count() == 0)
        }
    }

    @Test(arguments: Backend.all)
    func admitAndDischargeThroughTheAPI(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("zhang.li")  // head nurse of 肺癌中心
            let lung = try await Demo.department("LUNG", app)
            let bed = try #require(try await Bed.query(on: app.db).filter(\.$wardID == lung.id!).filter(\.$label == "12").first())
            let doctor = try await Demo.staff("li.ming", app)
            let nurse = try await Demo.staff("wang.fang", app)
            let created = try await client.json(.POST, "/api/v1/admissions", AdmitBody(
                mrn: "MRN10001", name: "王建国", gender: .male, birthDate: "1965-03-07", allergies: "青霉素", wardId: lung.id!,
                bedId: bed.id, attendingId: doctor.id, nurseId: nurse.id, visitNumber: "V20261121001"))
            #expect(created.status == .created)
            let patient = try created.decode(PatientDTO.self)
            let encounterID = try #require(patient.encounters?.first?.id)
            let ward = try await client.get("/api/v1/wards/\(lung.id!)/patients").decode([WardPatientDTO].self)
            #expect(ward.contains { $0.patient.mrn == "MRN10001" && $0.encounter.bedLabel == "12" })

            let again = try await client.json(.POST, "/api/v1/admissions", AdmitBody(
                mrn: "MRN10001", name: "王建国", gender: .male, birthDate: nil, allergies: nil, wardId: lung.id!,
                bedId: nil, attendingId: nil, nurseId: nil, visitNumber: nil))
            #expect(again.status == .conflict)

            let discharged = try await client.raw(.POST, "/api/v1/encounters/\(encounterID)/discharge", "")
            #expect(discharged.status == .ok)
            #expect(try discharged.decode(EncounterDTO.self).status == "discharged")
            #expect(try await client.raw(.POST, "/api/v1/encounters/\(encounterID)/discharge", "").status == .conflict)
            let record = try await client.get("/api/v1/patients/\(patient.id)").decode(PatientDTO.self)
            #expect(record.encounters?.first?.dischargedAt != nil)
            #expect(try await Demo.audit("patient.admit", app).count == 1)
            #expect(try await Demo.audit("patient.discharge", app).count == 1)
        }
    }

    @Test(arguments: Backend.all)
    func healthAndMetrics(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            let health = try await client.get("/healthz")
            #expect(health.status == .ok)
            #expect(health.body.string.contains("\"status\":\"ok\""))
            _ = try await client.get("/api/v1/hospitals")
            let metrics = try await client.get("/metrics")
            #expect(metrics.status == .ok)
            let text = metrics.body.string
            #expect(text.contains("# TYPE http_requests_total counter"))
            #expect(text.contains("http_request_duration_seconds"))
            #expect(text.contains("rounds_db_up 1"))
            #expect(text.contains("rounds_db_pool_max_connections_per_event_loop"))
        }
    }
}
