import Crypto
import Foundation
import RoundsCore

/// Feishu / Lark custom group bot ("自定义机器人"): a text message POSTed to the group's webhook.
/// With a signing secret, the body carries `timestamp` and `sign` = Base64(HMAC-SHA256 with the
/// key "timestamp\nsecret" over an empty message), as Feishu's documentation specifies.
/// Feishu answers HTTP 200 with `{"code":0}` on success and a non-zero code otherwise.
public struct FeishuConnector: AlertConnector {
    let http: HTTPPoster
    let clock: any RoundsClock
    let timeZone: TimeZone

    /// Feishu's codes for "too many requests": wait and retry; any other non-zero code is final.
    static let rateLimited: Set<Int> = [9499, 11232, 11233]

    public init(http: HTTPPoster, clock: any RoundsClock, timeZone: TimeZone) {
        self.http = http
        self.clock = clock
        self.timeZone = timeZone
    }

    public func deliver(_ notice: AlertNotice, settings: [String: String]) async throws {
        let webhook = try require(settings, "webhook")
        var body: [String: Any] = ["msg_type": "text", "content": ["text": notice.text(timeZone: timeZone)]]
        if let secret = settings["secret"], !secret.isEmpty {
            let timestamp = String(Int(clock.now().timeIntervalSince1970))
            body["timestamp"] = timestamp
            body["sign"] = Self.sign(timestamp: timestamp, secret: secret)
        }
        let answer = try await http.postJSON(webhook, body)
        let reply = HTTPPoster.json(answer.body)
        let code = (reply["code"] as? Int) ?? (reply["StatusCode"] as? Int) ?? 0
        guard code == 0 else {
            let message = (reply["msg"] as? String) ?? (reply["StatusMessage"] as? String) ?? ""
            throw ConnectorError("Feishu refused the message: \(code) \(message)", permanent: !Self.rateLimited.contains(code))
        }
    }

    public static func sign(timestamp: String, secret: String) -> String {
        let key = SymmetricKey(data: Data("\(timestamp)\n\(secret)".utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(), using: key)
        return Data(mac).base64EncodedString()
    }
}
