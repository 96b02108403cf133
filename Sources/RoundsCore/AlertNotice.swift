import Foundation

/// What an outbound connector (Feishu, WeCom, SMS, e-mail, HL7 back to the LIS) is told about a
/// critical value: everything it needs to write its message, so it looks nothing up itself.
public struct AlertNotice: Sendable, Codable, Equatable {
    public enum Event: String, Sendable, Codable, CaseIterable {
        /// The alert went to the responsible doctor and nurse.
        case raised
        /// Unacknowledged: a rung of the escalation ladder was reached.
        case escalated
        /// Someone of the care team acknowledged it (with the read-back).
        case acknowledged
        /// The clinical action was recorded: the loop is closed.
        case closed
    }

    /// How much of the patient leaves Rounds in a notice to people (chat, SMS, e-mail). Minimal
    /// by default: where (ward, bed) and that a critical value waits, not who or what; those
    /// are read in Rounds behind a sign-in. HL7 back to the source system always carries it all.
    public enum Disclosure: String, Sendable, Codable, CaseIterable {
        case minimal
        case full
    }

    public struct Recipient: Sendable, Codable, Equatable {
        public var name: String
        public var mobile: String?
        public var email: String?
        public init(name: String, mobile: String? = nil, email: String? = nil) {
            self.name = name
            self.mobile = mobile
            self.email = email
        }
    }

    public var event: Event
    /// 0 for the responsible doctor and nurse, n for the ladder's n-th rung.
    public var level: Int
    public var alertID: String
    public var hospitalName: String
    public var wardName: String?
    public var bed: String?
    public var patientName: String
    public var mrn: String
    public var testCode: String
    public var testName: String
    public var value: String
    public var unit: String?
    public var flag: String?
    public var raisedAt: Date
    /// The people this step reaches (with their contact details where known).
    public var recipients: [Recipient]
    public var acknowledgedBy: String?
    public var acknowledgedAt: Date?
    public var readBack: String?
    public var actionKind: String?
    public var actionText: String?
    public var actionAt: Date?
    /// The stored HL7 message the value came in with, for feedback to the sending system.
    public var sourceMessageID: String?
    /// An absolute link to the alert in Rounds, when the public address is configured.
    public var link: String?
    public var disclosure: Disclosure = .full

    public init(event: Event, level: Int, alertID: String, hospitalName: String, wardName: String?, bed: String?,
                patientName: String, mrn: String, testCode: String, testName: String, value: String, unit: String?,
                flag: String?, raisedAt: Date, recipients: [Recipient]) {
        self.event = event
        self.level = level
        self.alertID = alertID
        self.hospitalName = hospitalName
        self.wardName = wardName
        self.bed = bed
        self.patientName = patientName
        self.mrn = mrn
        self.testCode = testCode
        self.testName = testName
        self.value = value
        self.unit = unit
        self.flag = flag
        self.raisedAt = raisedAt
        self.recipients = recipients
    }

    /// This notice with only what `disclosure` lets out.
    public func disclosing(_ disclosure: Disclosure) -> AlertNotice {
        guard disclosure == .minimal else { return self }
        var notice = self
        notice.disclosure = .minimal
        notice.patientName = ""
        notice.mrn = ""
        notice.testCode = ""
        notice.testName = ""
        notice.value = ""
        notice.unit = nil
        notice.flag = nil
        notice.readBack = nil
        notice.actionText = nil
        return notice
    }

    /// One line: what, for whom, where. "【危急值】肺癌中心 12床 王建国（MRN10001）血钾 6.9 mmol/L [HH]"
    public var headline: String {
        let tag: String
        switch event {
        case .raised: tag = "【危急值】"
        case .escalated: tag = "【危急值未确认·第\(level)级升级】"
        case .acknowledged: tag = "【危急值已确认】"
        case .closed: tag = "【危急值已闭环】"
        }
        let place = [wardName, bed.map { "\($0)床" }].compactMap { $0 }.joined(separator: " ")
        if disclosure == .minimal {
            return "\(tag)\(place.isEmpty ? "" : place + " ")患者有危急值，请登录 Rounds 查看并确认"
        }
        let result = [testName, value, unit, flag.map { "[\($0)]" }].compactMap { $0 }.joined(separator: " ")
        return "\(tag)\(place.isEmpty ? "" : place + " ")\(patientName)（\(mrn)）\(result)"
    }

    /// The message body for a person: the headline and the facts of this step.
    public func text(timeZone: TimeZone) -> String {
        var lines = [headline, "医院：\(hospitalName)", "发出：\(Self.format(raisedAt, timeZone))"]
        if !recipients.isEmpty, event == .raised || event == .escalated {
            lines.append("通知：" + recipients.map(\.name).joined(separator: "、"))
        }
        if let acknowledgedBy, let acknowledgedAt {
            lines.append("确认：\(acknowledgedBy) \(Self.format(acknowledgedAt, timeZone))" + (readBack.map { "（复述：\($0)）" } ?? ""))
        }
        if let actionKind, let actionAt {
            lines.append("处置：\(actionKind) \(actionText ?? "") \(Self.format(actionAt, timeZone))")
        }
        if event == .raised || event == .escalated { lines.append("请立即确认并处置。") }
        if let link { lines.append(link) }
        return lines.joined(separator: "\n")
    }

    static func format(_ date: Date, _ timeZone: TimeZone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Foundation.Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: date)
    }
}

/// Delivers critical-value notices to one kind of outside system. Implementations are real
/// adapters for documented protocols (see docs/CONNECTORS.md); tests run them against local fakes.
public protocol AlertConnector: Sendable {
    /// Sends one notice with this connector's settings (webhook address, secret, …). Throws
    /// `ConnectorError`; a permanent one is not retried.
    func deliver(_ notice: AlertNotice, settings: [String: String]) async throws
}

/// Why a delivery failed, and whether trying again could help.
public struct ConnectorError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// The peer refused the request as such (bad secret, bad address): retrying will not help.
    public var permanent: Bool
    public init(_ message: String, permanent: Bool = false) {
        self.message = message
        self.permanent = permanent
    }
    public var description: String { message }
}

/// The outside systems a critical value can be delivered to, and what each needs.
public enum ConnectorKind: String, Sendable, Codable, CaseIterable {
    /// Feishu / Lark custom group bot webhook.
    case feishu
    /// WeCom (企业微信) group robot webhook.
    case wecom
    /// SMS through the hospital's HTTP SMS gateway.
    case sms
    /// E-mail over SMTP.
    case email
    /// HL7 v2 back to the system the value came from (LIS/HIS): acknowledgement and action.
    case hl7

    /// Settings without which a connector of this kind cannot work.
    public var requiredSettings: [String] {
        switch self {
        case .feishu, .wecom: ["webhook"]
        case .sms: ["url"]
        case .email: ["host", "from"]
        case .hl7: ["host", "port"]
        }
    }

    /// Every setting this kind understands.
    public var knownSettings: Set<String> {
        switch self {
        case .feishu: ["webhook", "secret", Self.disclosureSetting]
        case .wecom: ["webhook", Self.disclosureSetting]
        case .sms: ["url", "token", "to", Self.disclosureSetting]
        case .email: ["host", "port", "security", "username", "password", "from", "to", Self.disclosureSetting]
        case .hl7: ["host", "port", "sender"]
        }
    }

    /// How much of the patient a notice to people carries: `minimal` (default) or `full`.
    public static let disclosureSetting = "patientData"

    /// The destination this kind sends to, from its settings: a URL or a host and port.
    public func destination(_ settings: [String: String]) -> (url: String?, host: String?, port: Int) {
        switch self {
        case .feishu, .wecom: (settings["webhook"], nil, 0)
        case .sms: (settings["url"], nil, 0)
        case .email:
            (nil, settings["host"], settings["port"].flatMap(Int.init)
                ?? (settings["security"] == "tls" ? 465 : settings["security"] == "starttls" ? 587 : 25))
        case .hl7: (nil, settings["host"], settings["port"].flatMap(Int.init) ?? 0)
        }
    }

    /// Settings that are secrets (webhook addresses carry their key): stored, never shown or logged.
    public static let secretSettings: Set<String> = ["webhook", "secret", "token", "password"]

    /// Which steps of an alert's life this kind hears about: people are told while it is open;
    /// the source system is told when it is acknowledged and when the loop closes.
    public var events: Set<AlertNotice.Event> {
        self == .hl7 ? [.acknowledged, .closed] : [.raised, .escalated]
    }
}
