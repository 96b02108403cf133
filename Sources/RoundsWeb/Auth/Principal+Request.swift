import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

extension Request {
    private struct PrincipalKey: StorageKey { typealias Value = Principal }
    private struct SessionKey: StorageKey { typealias Value = WebSession }

    /// Who is asking, if anyone; set by `PrincipalMiddleware`.
    public var principal: Principal? {
        get { storage[PrincipalKey.self] }
        set { storage[PrincipalKey.self] = newValue }
    }

    /// The browser session behind `principal`, when signed in with a cookie (not a token).
    public var webSession: WebSession? {
        get { storage[SessionKey.self] }
        set { storage[SessionKey.self] = newValue }
    }

    /// The principal and client address, as services want them. Throws 401 when anonymous.
    public func context() throws -> RequestContext {
        guard let principal else { throw RoundsError.unauthenticated }
        return RequestContext(principal: principal, clientAddress: clientAddress)
    }

    /// The language to answer in: the person's choice, else the language cookie, else zh-CN.
    /// Pages ignore Accept-Language on purpose: ward PCs often run an English OS while their
    /// users expect Chinese; API clients may ask for English with the header.
    public var locale: RoundsCore.Locale {
        if let principal, principal.kind == .staff { return principal.locale }
        if let cookie = cookies[WebCookies.locale]?.string, let locale = RoundsCore.Locale(tag: cookie) { return locale }
        if wantsJSON, let header = headers.first(name: .acceptLanguage)?.split(separator: ",").first,
           let locale = RoundsCore.Locale(tag: String(header)) { return locale }
        return .default
    }

    /// JSON API calls are answered with problem JSON; page requests with pages and redirects.
    public var wantsJSON: Bool {
        url.path.hasPrefix("/api/") || !(headers.first(name: .accept)?.contains("text/html") ?? false)
    }
}

enum WebCookies {
    static let session = "rounds_session"
    static let loginCSRF = "rounds_login_csrf"
    static let locale = "rounds_locale"
}

/// Resolves the bearer token or session cookie into a principal. It does not reject anyone:
/// routes that need a principal say so with `RequireSignIn`.
struct PrincipalMiddleware: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let services = request.rounds
        if let bearer = request.headers.bearerAuthorization {
            let guesses = services.auth.tokenGuesses, now = services.configuration.clock.now()
            if case .slowDown(let seconds) = guesses.verdict(username: "", address: request.clientAddress, now: now) {
                throw RoundsError(code: "too_many_bad_tokens", status: 429, zh: "无效令牌过多，请稍后再试",
                                  en: "Too many invalid tokens from this address; try again later", detail: "try again in \(seconds) s")
            }
            guard let principal = try await services.auth.principal(forBearer: bearer.token, on: request.db) else {
                // Unknown, expired and revoked tokens leave a trace, and guessing is slowed down.
                guesses.recordFailure(username: "", address: request.clientAddress, now: now)
                try await services.audit.record("auth.token", entityType: "api_token", entityID: nil, outcome: .failure,
                                                detail: "\(request.method) \(request.url.path.prefix(200))", actorKind: "anonymous",
                                                actorID: nil, actorName: "unknown token", clientAddress: request.clientAddress, on: request.db)
                throw RoundsError(code: "invalid_token", status: 401, zh: "API 令牌无效、已过期或已吊销",
                                  en: "The API token is invalid, expired or revoked")
            }
            request.principal = principal
        } else if let secret = request.cookies[WebCookies.session]?.string,
                  let session = try await services.sessions.find(secret: secret, on: request.db),
                  let principal = try await services.auth.principal(forStaffID: session.staffID, on: request.db) {
            request.principal = principal
            request.webSession = session
        }
        return try await next.respond(to: request)
    }
}

/// Guards a route group: anonymous page requests go to the sign-in page, API calls get 401.
struct RequireSignIn: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        guard request.principal != nil else {
            if request.wantsJSON {
                try await request.rounds.audit.record("auth.required", entityType: "route", entityID: nil, outcome: .failure,
                                                      detail: "\(request.method) \(request.url.path.prefix(200))", actorKind: "anonymous",
                                                      actorID: nil, actorName: "anonymous", clientAddress: request.clientAddress, on: request.db)
                throw RoundsError.unauthenticated
            }
            let target = request.url.path == "/" ? "" : "?next=" + (request.url.path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? "")
            return request.redirect(to: "/login" + target)
        }
        return try await next.respond(to: request)
    }
}
