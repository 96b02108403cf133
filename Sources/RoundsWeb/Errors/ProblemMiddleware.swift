import RoundsCore
import Vapor

/// Turns every error into a clear answer: problem JSON `{"code","message","detail"}` for the
/// API, an error page for the browser. Unexpected errors are logged and never leak internals.
struct ProblemMiddleware: AsyncMiddleware {
    struct Problem: Content {
        var code: String
        var message: String
        var detail: String?
    }

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        do {
            return try await next.respond(to: request)
        } catch {
            let problem = Self.roundsError(for: error, request: request)
            if problem.status >= 500 {
                request.logger.error("request failed", metadata: ["error": .string(String(reflecting: error)), "path": .string(request.url.path)])
            }
            if !request.wantsJSON {
                if problem.status == 401 { return request.redirect(to: "/login") }
                return try await ErrorPage.render(problem, request: request)
            }
            let body = Problem(code: problem.code, message: problem.message(locale: request.locale), detail: problem.detail)
            let response = Response(status: HTTPResponseStatus(statusCode: problem.status))
            try response.content.encode(body, as: .json)
            response.headers.contentType = HTTPMediaType(type: "application", subType: "problem+json", parameters: ["charset": "utf-8"])
            return response
        }
    }

    static func roundsError(for error: any Error, request: Request) -> RoundsError {
        switch error {
        case let error as RoundsError:
            return error
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
