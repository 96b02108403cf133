import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// Sign-in, sign-out and the language switch.
struct SignInRoutes {
    struct LoginForm: Content {
        var username: String?
        var password: String?
        var _csrf: String?
        var next: String?
    }

    struct LoginData: Encodable {
        var loginCSRF: String
        var next: String
        var username: String
    }

    func register(_ routes: any RoutesBuilder) {
        routes.get("login", use: showLogin)
        routes.post("login", use: login)
        routes.post("logout", use: logout)
        routes.post("locale", use: switchLocale)
        routes.post("notices", ":id", "read", use: markNoticeRead)
    }

    /// "知道了" on a notice banner.
    @Sendable func markNoticeRead(req: Request) async throws -> Response {
        guard req.principal != nil else { return req.redirect(to: "/login") }
        try await req.rounds.organisation.markNoticeRead(req.parameters.require("id"), context: req.context(), on: req.db)
        return req.redirect(to: Self.safeNext(try? req.content.get(String.self, at: "back")))
    }

    @Sendable func showLogin(req: Request) async throws -> Response {
        if req.principal != nil { return req.redirect(to: "/") }
        return try await loginPage(req, username: "", error: nil, status: .ok)
    }

    private func loginPage(_ req: Request, username: String, error: String?, status: HTTPStatus) async throws -> Response {
        // Login CSRF: a random value in a cookie that the form must echo (double submit).
        let token = SessionService.random(24)
        let next = Self.safeNext(req.query[String.self, at: "next"] ?? (try? req.content.get(String.self, at: "next")))
        let response = try await req.page("login", title: "login_title", data: LoginData(loginCSRF: token, next: next, username: username),
                                          error: error, status: status)
        response.cookies[WebCookies.loginCSRF] = cookie(token, req: req, maxAge: 3600)
        return response
    }

    @Sendable func login(req: Request) async throws -> Response {
        let form = try req.content.decode(LoginForm.self)
        guard let sent = form._csrf, let expected = req.cookies[WebCookies.loginCSRF]?.string,
              CSRFMiddleware.constantTimeEquals(sent, expected) else {
            throw RoundsError.csrf
        }
        let username = (form.username ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        let staff: Staff
        do {
            staff = try await req.rounds.auth.login(username: username, password: form.password ?? "",
                                                    clientAddress: req.clientAddress, on: req.db)
        } catch let error as RoundsError {
            let status = HTTPResponseStatus(statusCode: error.status)
            return try await loginPage(req, username: username, error: error.message(locale: req.locale), status: status)
        }
        let (secret, _) = try await req.rounds.sessions.start(staffID: try staff.requireID(), clientAddress: req.clientAddress, on: req.db)
        let response = req.redirect(to: Self.safeNext(form.next))
        response.cookies[WebCookies.session] = cookie(secret, req: req, maxAge: Int(req.rounds.sessions.lifetime))
        response.cookies[WebCookies.loginCSRF] = .expired
        return response
    }

    @Sendable func logout(req: Request) async throws -> Response {
        if let secret = req.cookies[WebCookies.session]?.string {
            try await req.rounds.sessions.end(secret: secret, on: req.db)
            if let principal = req.principal {
                try await req.rounds.audit.record("auth.logout", entityType: "staff", entityID: principal.id,
                                                  context: try req.context(), on: req.db)
            }
        }
        let response = req.redirect(to: "/login")
        response.cookies[WebCookies.session] = .expired
        return response
    }

    @Sendable func switchLocale(req: Request) async throws -> Response {
        let tag = (try? req.content.get(String.self, at: "locale")) ?? ""
        guard let locale = RoundsCore.Locale(rawValue: tag) else { throw RoundsError.validation("locale: zh-CN or en") }
        if req.principal?.kind == .staff {
            try await req.rounds.organisation.setLocale(locale, context: try req.context(), on: req.db)
        }
        let back = Self.safeNext(try? req.content.get(String.self, at: "back"))
        let response = req.redirect(to: back)
        response.cookies[WebCookies.locale] = cookie(locale.rawValue, req: req, maxAge: 365 * 86_400)
        return response
    }

    private func cookie(_ value: String, req: Request, maxAge: Int) -> HTTPCookies.Value {
        HTTPCookies.Value(string: value, maxAge: maxAge, path: "/", isSecure: req.rounds.configuration.secureCookies,
                          isHTTPOnly: true, sameSite: .lax)
    }

    /// Only local paths, so the sign-in page cannot be used to bounce people to another site.
    static func safeNext(_ next: String?) -> String {
        guard let next, LinkCheck.isLocalPath(next), !next.hasPrefix("/login") else { return "/" }
        return next
    }
}
