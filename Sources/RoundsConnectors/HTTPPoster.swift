import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import RoundsCore

/// One HTTP POST and its answer: the seam between the connectors and the network, so tests can
/// point a connector at a local fake server (or at nothing) without changing the connector.
public struct HTTPPoster: Sendable {
    public struct Answer: Sendable {
        public var status: Int
        public var body: Data
    }

    public var post: @Sendable (_ url: String, _ headers: [(String, String)], _ body: Data) async throws -> Answer

    public init(post: @escaping @Sendable (_ url: String, _ headers: [(String, String)], _ body: Data) async throws -> Answer) {
        self.post = post
    }

    /// The real network, through AsyncHTTPClient (HTTPS with the system's trust roots).
    public static func live(client: HTTPClient = .shared, timeout: TimeAmount = .seconds(10)) -> HTTPPoster {
        HTTPPoster { url, headers, body in
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(data: body))
            let response = try await client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 1 << 20)
            return Answer(status: Int(response.status.code), body: Data(buffer: bytes))
        }
    }
}

extension HTTPPoster {
    /// POSTs a JSON body; network failures and 5xx/429 answers are worth retrying, other
    /// non-2xx answers are not.
    func postJSON(_ url: String, _ object: [String: Any], headers: [(String, String)] = []) async throws -> Answer {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "https" || scheme == "http",
              parsed.host != nil else {
            throw ConnectorError("not an http(s) address", permanent: true)
        }
        let body = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        let answer: Answer
        do {
            answer = try await post(url, [("Content-Type", "application/json; charset=utf-8")] + headers, body)
        } catch let error as ConnectorError {
            throw error
        } catch {
            throw ConnectorError("could not reach the service: \(type(of: error))")
        }
        switch answer.status {
        case 200..<300: return answer
        case 429, 500...: throw ConnectorError("the service answered HTTP \(answer.status)")
        default: throw ConnectorError("the service refused the request: HTTP \(answer.status)", permanent: true)
        }
    }

    static func json(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }
}

/// A required setting, or a permanent error naming it.
func require(_ settings: [String: String], _ key: String) throws -> String {
    guard let value = settings[key]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else {
        throw ConnectorError("setting '\(key)' is missing", permanent: true)
    }
    return value
}
