import FluentKit
import Foundation
import RoundsCore
@testable import RoundsStore
@testable import RoundsWeb
import SQLKit
import Testing
import Vapor
import VaporTesting

@Suite struct AuditTests {
    @Test(arguments: Backend.all)
    func patientReadWritesAnAuditRowWithWhoWhatWhenWhere(backend: Backend) async throws {
        try await TestApp.with(backend, trustProxy: true) { app, clock in
            let client = Client(app)
            client.extraHeaders.add(name: "X-Forwarded-For", value: "10.20.30.40")
            try await client.login("wang.fang")
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let response = try await client.get("/api/v1/patients/\(patient.id!)")
            #expect(response.status == .ok)
            #expect(try response.decode(PatientDTO.self).mrn == patient.mrn)

            let rows = try await Demo.audit("patient.read", app)
            #expect(rows.count == 1)
            let row = try #require(rows.first)
            let nurse = try await Demo.staff("wang.fang", app)
            #expect(row.actorID == nurse.id)
            #expect(row.actorKind == "staff")
            #expect(row.entityType == "patient")
            #expect(row.entityID == patient.id)
            #expect(row.patientID == patient.id)
            #expect(row.hospitalID == patient.hospitalID)
            #expect(row.clientAddress == "10.20.30.40")
            #expect(row.outcome == "success")
            #expect(abs(row.at.timeIntervalSince(clock.now())) < 1)

            // The patient page is audited the same way.
            #expect(try await client.page("/patients/\(patient.id!)").status == .ok)
            #expect(try await Demo.audit("patient.read", app).count == 2)
        }
    }

    @Test(arguments: Backend.all)
    func auditRowsCannotBeChangedOrDeleted(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("wang.fang")
            let sql = try #require(app.db as? any SQLDatabase)
            let before = try await AuditEvent.query(on: app.db).count()
            #expect(before > 0)
            await #expect(throws: (any Error).self) {
                try await sql.raw("UPDATE audit_events SET actor_name = 'someone else'").run()
            }
            await #expect(throws: (any Error).self) {
                try await sql.raw("DELETE FROM audit_events").run()
            }
            // Nor rewritten by replacing a row with the same id (SQLite), nor emptied (PostgreSQL).
            let first = try #require(try await AuditEvent.query(on: app.db).sort(\.$at).first())
            if backend == .sqlite {
                await #expect(throws: (any Error).self) {
                    try await sql.raw("""
                        INSERT OR REPLACE INTO audit_events (id, at, actor_kind, actor_name, action, entity_type, outcome)
                        VALUES (\(bind: first.id!), \(bind: first.at), 'staff', 'someone else', 'nothing', 'none', 'success')
                        """).run()
                }
            } else {
                await #expect(throws: (any Error).self) { try await sql.raw("TRUNCATE audit_events").run() }
                await #expect(throws: (any Error).self) {
                    try await sql.raw("""
                        INSERT INTO audit_events (id, at, actor_kind, actor_name, action, entity_type, outcome)
                        VALUES (\(bind: first.id!), \(bind: first.at), 'staff', 'someone else', 'nothing', 'none', 'success')
                        ON CONFLICT (id) DO UPDATE SET actor_name = 'someone else'
                        """).run()
                }
            }
            #expect(try await AuditEvent.query(on: app.db).count() == before)
            #expect(try await AuditEvent.query(on: app.db).filter(\.$actorName == "someone else").count() == 0)
            // And there is no route to change them.
            #expect(try await client.raw(.DELETE, "/api/v1/audit", "").status == .methodNotAllowed)
        }
    }

    @Test(arguments: Backend.all)
    func auditIsFilteredByHospitalAndExportsCSV(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            // Activity in both hospitals.
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let lungPatient = try await Demo.patient(onWard: "LUNG", app)
            _ = try await nurse.get("/api/v1/patients/\(lungPatient.id!)")
            let eastNurse = Client(app)
            try await eastNurse.login("lin.xiao")
            let cardioPatient = try await Demo.patient(onWard: "CARD", app)
            _ = try await eastNurse.get("/api/v1/patients/\(cardioPatient.id!)")

            let qc = Client(app)
            try await qc.login("zhu.lin")  // quality control of 总院 only
            let main = try await Demo.hospital("HK01", app)
            let rows = try await qc.get("/api/v1/audit?action=patient.read").decode([AuditEventDTO].self)
            #expect(rows.count == 1)
            #expect(rows.allSatisfy { $0.hospitalId == main.id })
            #expect(rows.first?.patientId == lungPatient.id)

            let byPatient = try await qc.get("/api/v1/audit?patientId=\(cardioPatient.id!)").decode([AuditEventDTO].self)
            #expect(byPatient.isEmpty)

            let csv = try await qc.page("/audit.csv?action=patient.read")
            #expect(csv.status == .ok)
            #expect(csv.headers.contentType?.description.hasPrefix("text/csv") == true)
            let text = csv.body.string
            #expect(text.hasPrefix("\u{FEFF}id,at,actor_kind"))
            #expect(text.contains("王芳"))
            #expect(!text.contains("林晓"))
            #expect(text.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 2)

            let page = try await qc.page("/audit")
            #expect(page.status == .ok)
            #expect(page.body.string.contains("patient.read"))

            // Bad filters are explained, not ignored.
            let bad = try await qc.get("/api/v1/audit?from=yesterday")
            #expect(bad.status == .badRequest)
            #expect(bad.problemCode == "bad_request")
        }
    }

    @Test func csvEscapesQuotesNewlinesAndFormulas() {
        #expect(AuditLog.csvField("plain") == "plain")
        #expect(AuditLog.csvField("a,b") == "\"a,b\"")
        #expect(AuditLog.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(AuditLog.csvField("=HYPERLINK(\"x\")") == "\"'=HYPERLINK(\"\"x\"\")\"")
        #expect(AuditLog.csvField("line\nbreak") == "\"line\nbreak\"")
    }
}
