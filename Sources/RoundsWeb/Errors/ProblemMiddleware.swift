import NIOCore
import NIOHTTP1
import RoundsCore
import Vapor

/// Turns every error into a clear answer: problem JSON `{"code","message","detail"}` for the
/// API, an error page for the browser. Unexpected errors are logged and never leak internals.
struct ProblemMiddleware: AsyncMiddleware {
    struct Problem: Content {
        var code: String
        var message: String
        var detail: String?
        var errors: [RoundsError.Item]?
    }

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        do {
            return try await next.respond(to: request)
        } catch let error as any AbortError where error.status == .notFound {
            // A path that exists, asked with a method it does not have, is a 405 that says which
            // methods it has (TRACE, a DELETE on a read-only resource…), not a 404.
            let allowed = Self.methods(for: request.url.path, in: request.application.routes)
            guard !allowed.isEmpty, !allowed.contains(request.method.rawValue) else {
                return try await Self.problemResponse(Self.roundsError(for: error, request: request), for: request)
            }
            let response = try await Self.problemResponse(.methodNotAllowed(request.method.rawValue), for: request)
            response.headers.replaceOrAdd(name: .allow, value: allowed.sorted().joined(separator: ", "))
            return response
        } catch {
            let problem = Self.roundsError(for: error, request: request)
            if problem.status >= 500 {
                request.logger.error("request failed", metadata: ["error": .string(String(reflecting: error)), "path": .string(request.url.path)])
            } else if problem.code == RoundsError.clientClosed.code {
                request.logger.info("client closed the connection before its request arrived", metadata: ["path": .string(request.url.path)])
            }
            return try await Self.problemResponse(problem, for: request)
        }
    }

    /// The answer for a refusal: problem JSON for the API, an error page (or sign-in) for the browser.
    static func problemResponse(_ problem: RoundsError, for request: Request) async throws -> Response {
        if !request.wantsJSON {
            if problem.status == 401 { return request.redirect(to: "/login") }
            return try await ErrorPage.render(problem, request: request)
        }
        let body = Problem(code: problem.code, message: problem.message(locale: request.locale), detail: problem.detail, errors: CellReasons.localized(problem.items, request.locale))
        let response = Response(status: HTTPResponseStatus(statusCode: problem.status))
        try response.content.encode(body, as: .json)
        response.headers.contentType = HTTPMediaType(type: "application", subType: "problem+json", parameters: ["charset": "utf-8"])
        return response
    }

    static func roundsError(for error: any Error, request: Request) -> RoundsError {
        switch error {
        case let error as RoundsError:
            return error
        case is HTTPParserError, is ChannelError, is NIOCore.IOError:
            // The client hung up or sent something that is not HTTP mid-request: its fault, not
            // ours, so not a 500 (and nobody is left to read the answer).
            return .clientClosed
        case let error as DecodingError:
            return .badJSON(describe(error))
        case let error as ValidationsError:
            return .validation(error.description)
        case let error as any AbortError:
            switch error.status {
            case .notFound:
                return RoundsError(code: "not_found", status: 404, zh: "找不到该页面或资源", en: "No such page or resource", detail: request.url.path)
            case .payloadTooLarge:
                return .payloadTooLarge(error.reason)
            case .unsupportedMediaType:
                return RoundsError(code: "unsupported_media_type", status: 415, zh: "不支持的内容类型", en: "Unsupported content type", detail: error.reason)
            case .badRequest:
                // Vapor reports malformed bodies as 400 aborts.
                return .badJSON(error.reason)
            default:
                if error.status.code >= 500 { return internalError }
                return RoundsError(code: "http_\(error.status.code)", status: Int(error.status.code), zh: error.reason, en: error.reason)
            }
        default:
            return internalError
        }
    }

    /// The methods registered for a path (matching parameters and catch-alls as the router does).
    static func methods(for path: String, in routes: Routes) -> Set<String> {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        func matches(_ pattern: [PathComponent]) -> Bool {
            for (index, component) in pattern.enumerated() {
                switch component {
                case .catchall: return index < segments.count || index == segments.count
                case .anything, .parameter: guard index < segments.count else { return false }
                case .constant(let constant): guard index < segments.count, segments[index] == constant else { return false }
                }
            }
            return pattern.count == segments.count
        }
        var methods = Set(routes.all.filter { matches($0.path) }.map(\.method.rawValue))
        if methods.contains("GET") { methods.insert("HEAD") }
        return methods
    }

    static let internalError = RoundsError(code: "internal_error", status: 500, zh: "服务器内部错误，已记录", en: "Internal error; it has been logged")

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let p = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "body" : p
        }
        switch error {
        case .dataCorrupted(let c): return "\(path(c)): \(c.debugDescription)"
        case .keyNotFound(let key, let c): return "\(path(c).replacingOccurrences(of: "body", with: "")): missing \(key.stringValue)".trimmingCharacters(in: .init(charactersIn: ": "))
        case .typeMismatch(let type, let c): return "\(path(c)): expected \(type)"
        case .valueNotFound(let type, let c): return "\(path(c)): expected \(type), got null"
        @unknown default: return "malformed body"
        }
    }
}
