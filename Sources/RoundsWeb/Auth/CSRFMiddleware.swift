import RoundsCore
import Vapor

/// Cross-site request forgery protection for cookie-authenticated writes. A form carries the
/// session's token in `_csrf`; a script sends it as `X-CSRF-Token`. Requests with a bearer token
/// carry no ambient credentials, so they are exempt.
struct CSRFMiddleware: AsyncMiddleware {
    static let formField = "_csrf"
    static let header = "X-CSRF-Token"

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let safe: [HTTPMethod] = [.GET, .HEAD, .OPTIONS]
        // No route, nothing to protect: the answer is a 404 or 405 whatever the token.
        if !safe.contains(request.method), request.route != nil, let session = request.webSession {
            let sent = request.headers.first(name: Self.header) ?? (try? request.content.get(String.self, at: Self.formField))
            guard let sent, Self.constantTimeEquals(sent, session.csrfToken) else {
                request.logger.notice("CSRF token missing or wrong", metadata: ["path": .string(request.url.path)])
                try await request.rounds.audit.record("auth.csrf", entityType: "route", entityID: nil, outcome: .denied,
                                                      detail: "\(request.method) \(request.url.path.prefix(200))", context: request.context(),
                                                      on: request.db)
                throw RoundsError.csrf
            }
        }
        return try await next.respond(to: request)
    }

    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
