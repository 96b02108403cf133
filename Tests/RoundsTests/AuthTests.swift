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

@Suite struct AuthTests {
    @Test(arguments: Backend.all)
    func loginSucceedsAndIsAudited(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            let response = try await client.login("wang.fang")
            #expect(response.status == .seeOther)
            #expect(response.headers.first(name: .location) == "/")
            let cookie = try #require(client.cookies["rounds_session"])
            #expect(response.headers[.setCookie].contains { $0.contains("HttpOnly") && $0.contains("SameSite=Lax") })
            // Only the digest of the cookie is stored.
            let sessions = try await WebSession.query(on: app.db).all()
            #expect(sessions.count == 1)
            #expect(sessions[0].id == SessionService.digest(cookie))
            #expect(sessions[0].id != cookie)
            let rows = try await Demo.audit("auth.login", app)
            #expect(rows.last?.outcome == "success")
            #expect(rows.last?.actorName == "王芳")
            let home = try await client.page("/")
            #expect(home.status == .ok)
            #expect(home.body.string.contains("王芳"))
        }
    }

    @Test(arguments: Backend.all)
    func wrongPasswordIsRefusedAndAudited(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            let response = try await client.login("wang.fang", password: "wrong-password")
            #expect(response.status == .unauthorized)
            #expect(response.body.string.contains("用户名或密码错误"))
            #expect(client.cookies["rounds_session"] == nil)
            let staff = try await Demo.staff("wang.fang", app)
            #expect(staff.failedLogins == 1)
            let rows = try await Demo.audit("auth.login", app)
            #expect(rows.last?.outcome == "failure")
            #expect(try await WebSession.query(on: app.db).count() == 0)
            // Unknown users get the same answer.
            let unknown = try await Client(app).login("nobody", password: "whatever1")
            #expect(unknown.status == .unauthorized)
        }
    }

    /// Five failures lock a username at the address they came from, for 15 minutes: a known and
    /// an unknown username answer alike (nothing tells which exist), and the nurse at another
    /// PC still signs in. Twenty failures from one address, any usernames, make it wait.
    @Test(arguments: Backend.all)
    func repeatedFailuresLockAUsernameAtThatAddressOnly(backend: Backend) async throws {
        try await TestApp.with(backend, trustProxy: true) { app, clock in
            func client(_ address: String) -> Client {
                let c = Client(app)
                c.extraHeaders.replaceOrAdd(name: "X-Forwarded-For", value: address)
                return c
            }
            let attacker = client("10.9.9.9")
            var known: [UInt] = [], unknown: [UInt] = []
            for _ in 1...6 {
                known.append(try await attacker.login("li.ming", password: "nope-nope").status.code)
                unknown.append(try await attacker.login("no.such.user", password: "nope-nope").status.code)
            }
            #expect(known == [401, 401, 401, 401, 423, 423])
            #expect(unknown == known)
            // Even the right password is refused from there while locked.
            let locked = try await attacker.login("li.ming", password: DemoSeed.password)
            #expect(locked.status.code == 423 && attacker.cookies["rounds_session"] == nil)
            #expect(try await Demo.audit("auth.login", app).last?.outcome == "denied")
            // The doctor at the ward PC is not locked out by someone else's guesses.
            #expect(try await client("10.1.2.3").login("li.ming").status == .seeOther)
            clock.advance(by: 15 * 60 + 1)
            #expect(try await attacker.login("li.ming", password: DemoSeed.password).status == .seeOther)
            #expect(try await Demo.staff("li.ming", app).failedLogins == 0)

            // A spray over many usernames from one address: after 20 failures it must wait (429).
            let sprayer = client("10.8.8.8")
            var codes: [UInt] = []
            for n in 0..<21 { codes.append(try await sprayer.login("user\(n)", password: "nope-nope").status.code) }
            #expect(codes.prefix(20).allSatisfy { $0 == 401 } && codes.last == 429)
        }
    }

    @Test(arguments: Backend.all)
    func logoutEndsTheSessionAndLoginRotatesIt(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            // A cookie planted before sign-in is not adopted.
            client.cookies["rounds_session"] = "planted-by-an-attacker-000000000"
            try await client.login("wang.fang")
            #expect(client.cookies["rounds_session"] != "planted-by-an-attacker-000000000")
            let out = try await client.form("/logout", [:])
            #expect(out.status == .seeOther)
            #expect(try await WebSession.query(on: app.db).count() == 0)
            let home = try await client.page("/")
            #expect(home.status == .seeOther)
            #expect(home.headers.first(name: .location) == "/login")
            #expect(try await client.get("/api/v1/me").status == .unauthorized)
        }
    }

    @Test(arguments: Backend.all)
    func expiredSessionsAreRejected(backend: Backend) async throws {
        try await TestApp.with(backend) { app, clock in
            let client = Client(app)
            try await client.login("wang.fang")
            #expect(try await client.get("/api/v1/me").status == .ok)
            clock.advance(by: 12 * 3600 + 1)
            #expect(try await client.get("/api/v1/me").status == .unauthorized)
        }
    }

    @Test(arguments: Backend.all)
    func openRedirectsAreNotFollowed(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            #expect(SignInRoutes.safeNext("https://evil.example/") == "/")
            #expect(SignInRoutes.safeNext("//evil.example/") == "/")
            #expect(SignInRoutes.safeNext("/patients/1") == "/patients/1")
            let client = Client(app)
            let loginPage = try await client.page("/login")
            let token = Client.hiddenField("_csrf", in: loginPage.body.string) ?? ""
            let response = try await client.form("/login", ["username": "wang.fang", "password": DemoSeed.password,
                                                            "_csrf": token, "next": "//evil.example"], includeCSRF: false)
            #expect(response.headers.first(name: .location) == "/")
        }
    }
}

@Suite struct CSRFTests {
    @Test(arguments: Backend.all)
    func formPostWithoutTokenIsRejected(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("admin")
            let before = try await Bed.query(on: app.db).count()
            let ward = try await Demo.department("LUNG", app)
            let missing = try await client.form("/admin/wards/\(ward.id!)/beds", ["label": "99"], includeCSRF: false)
            #expect(missing.status == .forbidden)
            #expect(missing.body.string.contains("csrf_rejected"))
            let wrong = try await client.form("/admin/wards/\(ward.id!)/beds", ["label": "99", "_csrf": "forged"])
            #expect(wrong.status == .forbidden)
            #expect(try await Bed.query(on: app.db).count() == before)
            // With the session's token it goes through.
            let ok = try await client.form("/admin/wards/\(ward.id!)/beds", ["label": "99"])
            #expect(ok.status == .seeOther)
            #expect(try await Bed.query(on: app.db).count() == before + 1)
        }
    }

    @Test(arguments: Backend.all)
    func jsonWriteWithCookieNeedsTheHeader(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            try await client.login("admin")
            let token = client.csrf
            client.csrf = nil
            let refused = try await client.json(.POST, "/api/v1/hospitals", CreateHospitalBody(code: "HK09", name: "测试医院"))
            #expect(refused.status == .forbidden)
            #expect(refused.problemCode == "csrf_rejected")
            client.csrf = token
            let created = try await client.json(.POST, "/api/v1/hospitals", CreateHospitalBody(code: "HK09", name: "测试医院"))
            #expect(created.status == .created)
        }
    }

    @Test(arguments: Backend.all)
    func loginFormNeedsItsCookieToken(backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let client = Client(app)
            let response = try await client.form("/login", ["username": "wang.fang", "password": DemoSeed.password, "_csrf": "guess"],
                                                 includeCSRF: false)
            #expect(response.status == .forbidden)
            #expect(client.cookies["rounds_session"] == nil)
        }
    }
}
