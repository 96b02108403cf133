import Foundation
import RoundsCore

/// Text messages through the hospital's SMS gateway, by the small HTTP protocol in
/// docs/CONNECTORS.md: `POST {url}` with `Authorization: Bearer {token}` and
/// `{"to": ["138…"], "text": "…", "reference": "alert:event:level"}`; any 2xx means accepted.
/// Carriers' own APIs differ per province and vendor, so sites put their vendor behind this.
public struct SMSGatewayConnector: AlertConnector {
    let http: HTTPPoster
    let timeZone: TimeZone

    public init(http: HTTPPoster, timeZone: TimeZone) {
        self.http = http
        self.timeZone = timeZone
    }

    public func deliver(_ notice: AlertNotice, settings: [String: String]) async throws {
        let url = try require(settings, "url")
        let fixed = (settings["to"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let numbers = Array(Set(notice.recipients.compactMap(\.mobile).filter { !$0.isEmpty } + fixed)).sorted()
        guard !numbers.isEmpty else { throw ConnectorError("no mobile number for the people reached", permanent: true) }
        var headers: [(String, String)] = []
        if let token = settings["token"], !token.isEmpty { headers.append(("Authorization", "Bearer \(token)")) }
        let body: [String: Any] = ["to": numbers, "text": notice.text(timeZone: timeZone),
                                   "reference": "\(notice.alertID):\(notice.event.rawValue):\(notice.level)"]
        _ = try await http.postJSON(url, body, headers: headers)
    }
}
