import Foundation
import RoundsCore

/// WeCom (企业微信) group robot: a text message POSTed to the robot's webhook
/// (`…/cgi-bin/webhook/send?key=…`), @-mentioning the people reached by their mobile numbers.
/// WeCom answers `{"errcode":0,"errmsg":"ok"}`; 45009 means "too often" and is retried.
public struct WeComConnector: AlertConnector {
    let http: HTTPPoster
    let timeZone: TimeZone

    public init(http: HTTPPoster, timeZone: TimeZone) {
        self.http = http
        self.timeZone = timeZone
    }

    public func deliver(_ notice: AlertNotice, settings: [String: String]) async throws {
        let webhook = try require(settings, "webhook")
        let mobiles = notice.recipients.compactMap(\.mobile).filter { !$0.isEmpty }
        var text: [String: Any] = ["content": notice.text(timeZone: timeZone)]
        if !mobiles.isEmpty { text["mentioned_mobile_list"] = mobiles }
        let answer = try await http.postJSON(webhook, ["msgtype": "text", "text": text])
        let reply = HTTPPoster.json(answer.body)
        let code = reply["errcode"] as? Int ?? -1
        guard code == 0 else {
            throw ConnectorError("WeCom refused the message: \(code) \(reply["errmsg"] as? String ?? "")", permanent: code != 45009)
        }
    }
}
