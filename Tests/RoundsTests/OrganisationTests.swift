import FluentKit
import Foundation
import RoundsCore
import RoundsDemo
@testable import RoundsDirectory
@testable import RoundsStore
@testable import RoundsWeb
import Testing
import Vapor
import VaporTesting

@Suite struct OrganisationTests {
    @Test(arguments: Backend.all)
    func demoSeedHasTheDescribedOrganisation(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            #expect(try await Hospital.query(on: app.db).count() == 2)
            #expect(try await Department.query(on: app.db).filter(\.$kind == .ward).count() >= 4)
            #expect(try await Bed.query(on: app.db).count() >= 40)
            #expect(try await Staff.query(on: app.db).count() >= 20)
            for code in ["LUNG", "BREAST", "GI", "ICU"] { _ = try await Demo.department(code, app) }
            // Seeding again changes nothing.
            let seeded = try await DemoSeed(clock: TestClock(), ids: .uuidV7(), hasher: PasswordHasher(cost: 4)).run(on: app.db)
            #expect(!seeded)
            #expect(try await Hospital.query(on: app.db).count() == 2)
        }
    }

    @Test(arguments: Backend.all)
    func administratorBuildsAWardAndStaffsIt(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let admin = Client(app)
            try await admin.login("admin")
            let created = try await admin.json(.POST, "/api/v1/hospitals", CreateHospitalBody(code: "hk03", name: "华康医院西院"))
            #expect(created.status == .created)
            let hospital = try created.decode(HospitalDTO.self)
            #expect(hospital.code == "HK03")
            let ward = try await admin.json(.POST, "/api/v1/hospitals/\(hospital.id)/departments",
                                            CreateDepartmentBody(code: "RESP", name: "呼吸内科病区", kind: .ward, parentId: nil)).decode(DepartmentDTO.self)
            for label in ["1", "2", "3"] {
                #expect(try await admin.json(.POST, "/api/v1/wards/\(ward.id)/beds", CreateBedBody(label: label)).status == .created)
            }
            #expect(try await admin.json(.POST, "/api/v1/wards/\(ward.id)/beds", CreateBedBody(label: "3")).status == .conflict)
            let beds = try await admin.get("/api/v1/wards/\(ward.id)/beds").decode([BedDTO].self)
            #expect(beds.map(\.label) == ["1", "2", "3"])

            let staff = try await admin.json(.POST, "/api/v1/staff", CreateStaffBody(
                username: "qian.yu", displayName: "钱玉", password: "long-enough-1", employeeNo: "N0100", locale: "en",
                isGroupAdministrator: false)).decode(StaffDTO.self)
            let short = try await admin.json(.POST, "/api/v1/staff", CreateStaffBody(
                username: "short.pw", displayName: "短", password: "123", employeeNo: nil, locale: nil, isGroupAdministrator: nil))
            #expect(short.status == .unprocessableEntity)
            let role = try await admin.json(.POST, "/api/v1/staff/\(staff.id)/roles", AssignRoleBody(departmentId: ward.id, role: .nurse))
            #expect(role.status == .created)
            let member = try await admin.get("/api/v1/staff/\(staff.id)").decode(StaffDTO.self)
            #expect(member.roles?.map(\.role) == ["nurse"])

            // The new nurse signs in, in English, and sees her (empty) ward.
            let nurse = Client(app)
            #expect(try await nurse.login("qian.yu", password: "long-enough-1").status == .seeOther)
            let home = try await nurse.page("/")
            #expect(home.body.string.contains("呼吸内科病区"))
            #expect(home.body.string.contains("No patients on this ward."))
            #expect(try await Demo.audit("staff.role.assign", app).count == 1)

            // Taking the role away takes the ward away.
            let roleID = try #require(member.roles?.first?.id)
            #expect(try await admin.raw(.DELETE, "/api/v1/staff/\(staff.id)/roles/\(roleID)", "").status == .noContent)
            #expect(try await nurse.get("/api/v1/wards/\(ward.id)/patients").status == .forbidden)
        }
    }

    @Test(arguments: Backend.all)
    func adminPagesRenderAndFormsWork(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let admin = Client(app)
            try await admin.login("admin")
            let main = try await Demo.hospital("HK01", app)
            for path in ["/admin/hospitals", "/admin/hospitals/\(main.id!)", "/admin/staff", "/admin/roles", "/admin/tokens", "/audit"] {
                let page = try await admin.page(path)
                #expect(page.status == .ok, "\(path)")
                #expect(page.headers.first(name: .cacheControl) == "no-store")
            }
            let form = try await admin.form("/admin/hospitals/\(main.id!)/departments", ["code": "PAIN", "name": "疼痛科病区", "kind": "ward", "parentId": ""])
            #expect(form.status == .seeOther)
            #expect(try await Department.query(on: app.db).filter(\.$code == "PAIN").count() == 1)
            // A refused form comes back with the reason.
            let dup = try await admin.form("/admin/hospitals/\(main.id!)/departments", ["code": "PAIN", "name": "again", "kind": "ward"])
            let location = try #require(dup.headers.first(name: .location))
            #expect(location.contains("error="))
            let shown = try await admin.page(location)
            #expect(shown.body.string.contains("page-error"))
            // Token created from the page shows its secret once.
            let tokenPage = try await admin.form("/admin/tokens", ["name": "LIS", "scopes[]": "patients:read", "hospitalId": main.id!])
            #expect(tokenPage.status == .ok)
            #expect(tokenPage.body.string.contains("new-token-secret"))
            let again = try await admin.page("/admin/tokens")
            #expect(!again.body.string.contains("new-token-secret"))
            // It expires in 90 days unless chosen otherwise; scopes are in words.
            let token = try #require(try await APIToken.query(on: app.db).filter(\.$name == "LIS").first())
            let expires = try #require(token.expiresAt)
            #expect(abs(expires.timeIntervalSince(token.createdAt) - 90 * 86_400) < 5)
            #expect(again.body.string.contains("读取患者") && again.body.string.contains(Formatting.day(expires)))
            let forever = try await admin.form("/admin/tokens", ["name": "PACS", "scopes[]": "patients:read", "hospitalId": main.id!, "lifetimeDays": "0"])
            #expect(forever.status == .ok)
            #expect(try await APIToken.query(on: app.db).filter(\.$name == "PACS").first()?.expiresAt == nil)
            #expect(try await admin.form("/admin/tokens", ["name": "X", "scopes[]": "patients:read", "lifetimeDays": "7"]).headers
                .first(name: .location)?.contains("error=") == true)
            // Revoking asks first, naming the token; a POST without the confirmation only asks.
            let ask = try await admin.page("/admin/tokens/\(token.id!)/revoke")
            #expect(ask.status == .ok && ask.body.string.contains("LIS") && ask.body.string.contains("立即无法访问"))
            let stray = try await admin.form("/admin/tokens/\(token.id!)/revoke", [:])
            #expect(stray.headers.first(name: .location) == "/admin/tokens/\(token.id!)/revoke")
            #expect(try await APIToken.find(token.id, on: app.db)?.revokedAt == nil)
            _ = try await admin.form("/admin/tokens/\(token.id!)/revoke", ["confirm": "yes"])
            #expect(try await APIToken.find(token.id, on: app.db)?.revokedAt != nil)
        }
    }
}

@Suite struct LanguageTests {
    @Test func catalogsHaveTheSameKeys() throws {
        let catalogue = try Catalogue.load()
        let zh = Set(catalogue.table(.zhCN).keys), en = Set(catalogue.table(.en).keys)
        #expect(zh == en)
        #expect(zh.count > 50)
        #expect(catalogue.text("login_title", .zhCN) == "登录")
        #expect(catalogue.text("login_title", .en) == "Sign in")
    }

    @Test func everyKeyUsedInTemplatesExists() throws {
        let catalogue = try Catalogue.load()
        let keys = Set(catalogue.table(.zhCN).keys)
        let views = WebResources.root.appendingPathComponent("Views")
        for file in try FileManager.default.contentsOfDirectory(atPath: views.path) where file.hasSuffix(".leaf") {
            let text = try String(contentsOf: views.appendingPathComponent(file), encoding: .utf8)
            let regex = try Regex("#\\(t\\.([a-z_A-Z]+)\\)")
            for match in text.matches(of: regex) {
                let key = String(text[match.output[1].range!])
                #expect(keys.contains(key), "\(file) uses missing key \(key)")
            }
        }
    }

    @Test(arguments: Backend.all)
    func chineseByDefaultEnglishWhenChosen(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            #expect(try await client.page("/login").body.string.contains("<html lang=\"zh-CN\">"))
            try await client.login("wang.fang")
            #expect(try await client.page("/").body.string.contains("我的病区与患者"))
            let switched = try await client.form("/locale", ["locale": "en", "back": "/"])
            #expect(switched.status == .seeOther)
            #expect(try await Demo.staff("wang.fang", app).locale == "en")
            let home = try await client.page("/")
            #expect(home.body.string.contains("My wards and patients"))
            // API problems follow the person's language too.
            let problem = try await client.get("/api/v1/patients/nope")
            #expect(problem.body.string.contains("No such patient"))
            #expect(try await client.form("/locale", ["locale": "fr"]).status == .unprocessableEntity)
        }
    }
}

@Suite struct OpenAPITests {
    @Test(arguments: Backend.all)
    func documentDescribesExactlyTheRoutesThatExist(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let response = try await Client(app).get("/api/v1/openapi.json")
            #expect(response.status == .ok)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any])
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var documented = Set<String>()
            for (path, operations) in paths { for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") } }
            var registered = Set<String>()
            for route in app.routes.all {
                let parts = route.path.map { c -> String in
                    if case .parameter(let name) = c { return "{\(name)}" }
                    return c.description
                }
                let path = "/" + parts.joined(separator: "/")
                guard path.hasPrefix("/api/v1/"), path != "/api/v1/openapi.json" else { continue }
                registered.insert("\(route.method.rawValue) \(path)")
            }
            #expect(documented == registered)
            #expect(registered.count >= 20)
            let schemas = try #require((document["components"] as? [String: Any])?["schemas"] as? [String: Any])
            let patient = try #require(schemas["PatientDTO"] as? [String: Any])
            let required = try #require(patient["required"] as? [String])
            #expect(required.contains("mrn"))
            #expect(!required.contains("allergies"))
        }
    }
}
