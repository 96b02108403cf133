import Foundation
import NIOCore
import RoundsDemo
import RoundsDirectory
import RoundsStore
import Testing
import Vapor
import VaporTesting

/// A test user agent: keeps cookies like a browser, knows the CSRF token of its session, and
/// can speak either HTML forms or JSON.
final class Client: @unchecked Sendable {
    let app: Application
    var cookies: [String: String] = [:]
    var csrf: String?
    var bearer: String?
    var extraHeaders: HTTPHeaders = [:]

    init(_ app: Application) {
        self.app = app
    }

    @discardableResult
    func request(_ method: HTTPMethod, _ path: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) async throws -> TestingHTTPResponse {
        var all = extraHeaders
        all.add(contentsOf: headers)
        if !cookies.isEmpty {
            all.replaceOrAdd(name: .cookie, value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))
        }
        if let bearer { all.bearerAuthorization = .init(token: bearer) }
        let response = try await app.testing().sendRequest(method, path, headers: all, body: body)
        for cookie in response.headers[.setCookie] {
            let pair = cookie.split(separator: ";", maxSplits: 1)[0].split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let name = String(pair[0]), value = String(pair[1])
            if cookie.lowercased().contains("max-age=0") || cookie.contains("1970") || value.isEmpty {
                cookies.removeValue(forKey: name)
            } else {
                cookies[name] = value
            }
        }
        return response
    }

    func page(_ path: String) async throws -> TestingHTTPResponse {
        try await request(.GET, path, headers: ["Accept": "text/html"])
    }

    func form(_ path: String, _ fields: [String: String], includeCSRF: Bool = true) async throws -> TestingHTTPResponse {
        var fields = fields
        if includeCSRF, let csrf, fields["_csrf"] == nil { fields["_csrf"] = csrf }
        let body = fields.map { "\(Self.encode($0.key))=\(Self.encode($0.value))" }.joined(separator: "&")
        return try await request(.POST, path, headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"],
                                 body: ByteBuffer(string: body))
    }

    func json(_ method: HTTPMethod, _ path: String, _ body: some Encodable) async throws -> TestingHTTPResponse {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(body)
        return try await raw(method, path, String(decoding: data, as: UTF8.self))
    }

    func raw(_ method: HTTPMethod, _ path: String, _ body: String) async throws -> TestingHTTPResponse {
        var headers: HTTPHeaders = ["Content-Type": "application/json", "Accept": "application/json"]
        if let csrf, bearer == nil { headers.add(name: "X-CSRF-Token", value: csrf) }
        return try await request(method, path, headers: headers, body: ByteBuffer(string: body))
    }

    func get(_ path: String) async throws -> TestingHTTPResponse {
        try await request(.GET, path, headers: ["Accept": "application/json"])
    }

    /// Signs in through the login form, as a browser does, and picks up the session's CSRF token.
    @discardableResult
    /// Signs in; without a password, as a demo user who is expected to get in.
    func login(_ username: String, password: String? = nil) async throws -> TestingHTTPResponse {
        let loginPage = try await page("/login")
        let token = Self.hiddenField("_csrf", in: loginPage.body.string)
        let response = try await form("/login", ["username": username, "password": password ?? DemoSeed.password, "_csrf": token ?? ""], includeCSRF: false)
        if response.status == .seeOther {
            var home = try await page("/")
            // Some roles land elsewhere (IT on the message store, laboratory on reporting).
            if home.status == .seeOther || home.status == .found, let next = home.headers.first(name: .location) {
                home = try await page(next)
            }
            csrf = Self.meta("csrf-token", in: home.body.string)
        } else if password == nil {
            // A demo login that fails makes every later request fail for the wrong reason: say so.
            Issue.record("signing in as \(username) answered \(response.status.code): \(response.body.string.prefix(200))")
        }
        return response
    }

    static func hiddenField(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    static func meta(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: "<meta name=\"\(name)\" content=\"") else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}

extension TestingHTTPResponse {
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: Data(buffer: body))
    }

    var problemCode: String? {
        struct Problem: Decodable { var code: String }
        return try? decode(Problem.self).code
    }
}
