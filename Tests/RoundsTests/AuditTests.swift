import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
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
            // The download from the page is for people: headers and actions in Chinese, hospital time.
            #expect(text.hasPrefix("\u{FEFF}编号,时间,身份"))
            #expect(text.contains("查看患者") && !text.contains(",patient.read,"))
            #expect(!text.contains("T0") || !text.contains("Z,"))
            #expect(text.contains("王芳"))
            #expect(!text.contains("林晓"))
            #expect(text.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count == 2)

            let page = try await qc.page("/audit")
            #expect(page.status == .ok)
            #expect(page.body.string.contains("查看患者") && !page.body.string.contains(">patient.read<"))
            // The API's CSV stays for programs: column keys and ISO times.
            let machine = try await qc.request(.GET, "/api/v1/audit.csv?action=patient.read").body.string
            #expect(machine.hasPrefix("\u{FEFF}id,at,actor_kind") && machine.contains(",patient.read,"))

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


@Suite struct AuditPageTests {
    /// Quality control finds a person by name and a patient by name or MRN, picks an action in
    /// words; a run of page views of one patient by one person is one row with a count.
    @Test(arguments: Backend.all)
    func theAuditLogReadsInWordsAndFoldsPageViews(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            for _ in 0..<4 {
                #expect(try await nurse.page("/patients/\(patient.id!)").status == .ok)
                clock.advance(by: 30)
            }
            let qc = Client(app)
            try await qc.login("zhu.lin")
            let byName = try await qc.page("/audit?person=%E7%8E%8B%E8%8A%B3&action=patient.read").body.string  // 王芳
            #expect(byName.contains("王芳") && byName.contains("查看患者") && byName.contains("4×"))
            #expect(byName.contains("\(patient.name) · \(patient.mrn)"))
            #expect(byName.components(separatedBy: "<tr").count - 2 == 1)  // one folded row (minus the header)
            let byMRN = try await qc.page("/audit?patient=\(patient.mrn)").body.string
            #expect(byMRN.contains("<td>王芳</td><td>查看患者"))
            let nobody = try await qc.page("/audit?person=%E6%B2%A1%E6%9C%89%E8%BF%99%E4%B8%AA%E4%BA%BA").body.string  // 没有这个人
            #expect(nobody.components(separatedBy: "<tr").count - 2 == 0)  // nothing but the header
            // The action list is in words, and chosen actions stay chosen.
            #expect(byName.contains("<option value=\"patient.read\" selected>查看患者</option>"))
        }
    }
}
