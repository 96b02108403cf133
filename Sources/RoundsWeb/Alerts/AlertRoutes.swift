import Fluent
import Foundation
import RoundsAlerts
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

struct AlertDTO: APISchema {
    static let enums = ["status": ["open", "acknowledged", "closed"]]
    var id: String
    var patientId: String
    var wardId: String?
    var groupId: String?
    /// The alert's card in the patient group (its "确认收到" button acknowledges).
    var cardMessageId: String?
    var testCode: String
    var testName: String
    var value: String
    var unit: String?
    var flag: String?
    var status: String
    var level: Int
    var raisedAt: Date
    var acknowledgedAt: Date?
    var acknowledgedBy: String?
    var readBack: String?
    var actionKind: String?
    var actionText: String?
    var actionAt: Date?

    init(_ a: CriticalAlert) {
        id = a.id ?? ""; patientId = a.patientID; wardId = a.wardID; groupId = a.groupID; cardMessageId = a.cardMessageID; testCode = a.testCode; testName = a.testName
        value = a.value; unit = a.unit; flag = a.flag; status = a.status; level = a.level; raisedAt = a.raisedAt
        acknowledgedAt = a.acknowledgedAt; acknowledgedBy = a.acknowledgedByName; readBack = a.readBack
        actionKind = a.actionKind; actionText = a.actionText; actionAt = a.actionAt
    }

    static let sample: AlertDTO = {
        let a = CriticalAlert()
        a.id = "…"; a.patientID = "…"; a.wardID = "…"; a.groupID = "…"; a.cardMessageID = "…"; a.testCode = "2823-3"; a.testName = "Potassium"; a.value = "6.9"
        a.unit = "mmol/L"; a.flag = "HH"; a.status = "acknowledged"; a.level = 1; a.raisedAt = Date(timeIntervalSince1970: 0)
        a.acknowledgedAt = Date(timeIntervalSince1970: 0); a.acknowledgedByName = "王芳"; a.readBack = "血钾 6.9"
        a.actionKind = "medication"; a.actionText = "…"; a.actionAt = Date(timeIntervalSince1970: 0)
        return AlertDTO(a)
    }()
}

struct AcknowledgeBody: APISchema {
    /// What the acknowledging person read back (e.g. "血钾 6.9").
    var readBack: String?
    static let sample = AcknowledgeBody(readBack: "血钾 6.9")
}

struct AlertActionBody: APISchema {
    static let enums = ["kind": AlertService.actionKinds]
    /// retest, medication, transfer, notify_patient or other (other needs text).
    var kind: String
    var text: String?
    static let sample = AlertActionBody(kind: "medication", text: "葡萄糖酸钙 10ml 静推，胰岛素+葡萄糖")
}

struct CriticalValueBody: APISchema {
    /// The patient: `patientId`, or `mrn` (with `hospitalId` when the MRN is not unique).
    var patientId: String?
    var mrn: String?
    var hospitalId: String?
    var testCode: String?
    var testName: String
    var value: String
    var unit: String?
    /// HH, LL, AA, H, L, A, > or <.
    var flag: String?
    /// Why it is critical, or the finding in words (PACS, pathology).
    var note: String?
    /// The reporting system's id for this value: sending it again returns the same alert.
    var externalId: String?
    var observedAt: Date?
    static let sample = CriticalValueBody(patientId: nil, mrn: "MRN10001", hospitalId: nil, testCode: "2823-3", testName: "血钾",
                                          value: "6.9", unit: "mmol/L", flag: "HH", note: nil, externalId: "LIS-20261123-0042",
                                          observedAt: Date(timeIntervalSince1970: 0))

    var report: AlertService.Report {
        .init(hospitalID: hospitalId, mrn: mrn, patientID: patientId, testCode: testCode, testName: testName, value: value, unit: unit,
              flag: flag, note: note, externalID: externalId, observedAt: observedAt)
    }
}

struct AlertStepDTO: APISchema {
    static let enums = ["kind": ["raised", "escalated", "acknowledged", "action", "closed"]]
    var kind: String
    var level: Int
    var staff: [String]
    var detail: String?
    var at: Date
    static let sample = AlertStepDTO(kind: "escalated", level: 1, staff: ["陈静", "张丽"], detail: "ward_doctors,head_nurse",
                                     at: Date(timeIntervalSince1970: 0))
}

struct AlertDeliveryDTO: APISchema {
    static let enums = ["status": ["pending", "sent", "dead"], "kind": ConnectorKind.apiValues, "event": AlertNotice.Event.apiValues]
    var id: String
    var connector: String
    var kind: String
    var event: String
    var level: Int
    var status: String
    var attempts: Int
    var lastError: String?
    var sentAt: Date?
    static let sample = AlertDeliveryDTO(id: "…", connector: "医务处飞书群", kind: "feishu", event: "escalated", level: 1, status: "sent",
                                         attempts: 1, lastError: nil, sentAt: Date(timeIntervalSince1970: 0))
}

struct AlertRecordDTO: APISchema {
    var alert: AlertDTO
    var patientName: String
    var mrn: String
    var wardName: String?
    var steps: [AlertStepDTO]
    var deliveries: [AlertDeliveryDTO]

    init(_ r: AlertService.Record) {
        alert = AlertDTO(r.alert); patientName = r.patient.name; mrn = r.patient.mrn; wardName = r.wardName
        steps = r.steps.map { s in
            AlertStepDTO(kind: s.kind, level: s.level, staff: (s.staff ?? "").split(separator: " ").map { r.names[String($0)] ?? String($0) },
                         detail: s.detail, at: s.at)
        }
        deliveries = r.deliveries.map { d, c in
            AlertDeliveryDTO(id: d.id ?? "", connector: c?.name ?? "—", kind: c?.kind ?? "", event: d.event, level: d.level, status: d.status,
                             attempts: d.attempts, lastError: d.lastError, sentAt: d.sentAt)
        }
    }
    init(alert: AlertDTO, patientName: String, mrn: String, wardName: String?, steps: [AlertStepDTO], deliveries: [AlertDeliveryDTO]) {
        self.alert = alert; self.patientName = patientName; self.mrn = mrn; self.wardName = wardName; self.steps = steps; self.deliveries = deliveries
    }
    static let sample = AlertRecordDTO(alert: .sample, patientName: "王建国", mrn: "MRN10001", wardName: "肺癌中心",
                                       steps: [.sample], deliveries: [.sample])
}

struct LadderDTO: APISchema {
    var wardId: String
    /// True while the ward uses the standard ladder.
    var isStandard: Bool
    var steps: [AlertService.LadderStep]
    static let sample = LadderDTO(wardId: "…", isStandard: false, steps: AlertService.standardLadder)
}

struct LadderBody: APISchema {
    /// Rungs in order: minutes after the alert, and whom to reach (ward_doctors, head_nurse, director, medical_affairs).
    var steps: [AlertService.LadderStep]
    static let sample = LadderBody(steps: AlertService.standardLadder)
}

extension AlertService.LadderStep: Content {}
extension AlertStatistics: Content {}
extension AlertStatistics: APISchema {
    // The service's types have no public memberwise initialisers; the sample is decoded instead.
    static var sample: AlertStatistics {
        let d = #"{"count":1,"medianMinutes":2.5,"p90Minutes":4}"#
        let json = #"""
            {"from":"2026-11-01T00:00:00Z","to":"2026-12-01T00:00:00Z","total":1,"open":0,"acknowledged":1,"closed":1,"escalated":0,
             "escalationsByLevel":[{"level":1,"alerts":0}],"timeToAcknowledge":\#(d),"timeToAction":\#(d),
             "wards":[{"wardId":"…","wardName":"肺癌中心","alerts":1,"open":0,"acknowledged":1,"closed":1,"escalated":0,
                       "timeToAcknowledge":\#(d),"timeToAction":\#(d)}],
             "tests":[{"testCode":"2823-3","testName":"Potassium","alerts":1,"escalated":0}],
             "overdue":[{"alertId":"…","patientName":"王建国","mrn":"MRN10001","wardName":"肺癌中心","testName":"Potassium","value":"6.9",
                         "unit":"mmol/L","status":"open","level":1,"raisedAt":"2026-11-23T02:00:00Z","minutesOpen":7,"waitingFor":"acknowledge"}],
             "acknowledgements":[{"alertId":"…","patientName":"王建国","mrn":"MRN10001","testName":"血钾","value":"6.9","unit":"mmol/L",
                                  "acknowledgedBy":"王芳","acknowledgedAt":"2026-11-23T02:03:00Z","readBack":"血钾 6.9","minutes":3.5}]}
            """#
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try! decoder.decode(AlertStatistics.self, from: Data(json.utf8))
    }
}

extension AlertService.ConnectorView: Content {}
extension AlertService.ConnectorView: APISchema {
    static var sample: AlertService.ConnectorView {
        let json = #"""
            {"id":"…","hospitalId":"…","kind":"feishu","name":"医务处飞书群","settings":{},"secretsSet":["secret","webhook"],
             "minLevel":1,"enabled":true,"pending":0,"sent":3,"dead":0}
            """#
        return try! JSONDecoder().decode(AlertService.ConnectorView.self, from: Data(json.utf8))
    }
}

struct ConnectorBody: APISchema {
    var hospitalId: String?
    /// feishu, wecom, sms, email or hl7.
    var kind: String?
    var name: String?
    /// feishu: webhook, secret · wecom: webhook · sms: url, token, to · email: host, port, security
    /// (none|starttls|tls), username, password, from, to · hl7: host, port, sender. Messaging kinds also patientData:
    /// minimal (default: ward, bed and that a value waits) or full (name, MRN, value). Settings left out keep their value.
    /// Destinations must be on the installation's allow-list.
    var settings: [String: String]?
    /// Messaging connectors: 0 = from the first alert, 1 = from the first escalation, …
    var minLevel: Int?
    var enabled: Bool?
    static let sample = ConnectorBody(hospitalId: "…", kind: "feishu", name: "医务处飞书群",
                                      settings: ["webhook": "https://open.feishu.cn/open-apis/bot/v2/hook/…", "secret": "…"], minLevel: 1, enabled: true)
    var input: AlertService.ConnectorInput {
        .init(hospitalID: hospitalId, kind: kind, name: name, settings: settings, minLevel: minLevel, enabled: enabled)
    }
}

struct ConnectorTestDTO: APISchema {
    var delivered: Bool
    var error: String?
    static let sample = ConnectorTestDTO(delivered: false, error: "the test notice was not delivered (reference 0193… in the server log)")
}

/// `/api/v1/alerts`: critical values and closing their loop.
struct AlertRoutes {
    let api: APIBuilder

    func register() {
        api.on(.GET, "alerts", summary: "Critical values I may see (newest first)", tag: "alerts",
               returns: AlertDTO.self, array: true, query: ["status"]) { req in
            try await req.rounds.alerts.visibleAlerts(status: req.query[String.self, at: "status"], context: req.context(), on: req.db)
                .map(AlertDTO.init)
        }
        api.on(.POST, "critical-values", summary: "Report a critical value (LIS/PACS without HL7, or lab staff)", tag: "alerts",
               body: CriticalValueBody.self, returns: AlertDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(CriticalValueBody.self)
            let (alert, created) = try await req.rounds.alerts.report(body.report, source: "api", context: req.context(), on: req.db)
            return try await AlertDTO(alert).encodeResponse(status: created ? .created : .ok, for: req)
        }
        api.on(.GET, "alerts", "statistics", summary: "Quality dashboard: counts, time to acknowledge and act, escalations, overdue",
               tag: "alerts", returns: AlertStatistics.self, query: ["from", "to", "hospitalId"]) { req in
            let (from, to) = try Self.period(req)
            return try await req.rounds.alerts.statistics(from: from, to: to, hospitalID: req.query[String.self, at: "hospitalId"],
                                                          context: req.context(), on: req.db)
        }
        api.on(.GET, "alerts", "export.csv", summary: "The period's critical values as CSV", tag: "alerts",
               query: ["from", "to", "hospitalId"], contentType: "text/csv") { req -> Response in
            let (from, to) = try Self.period(req)
            let text = try await req.rounds.alerts.csv(from: from, to: to, hospitalID: req.query[String.self, at: "hospitalId"],
                                                       context: req.context(), on: req.db)
            return AuditFilterQuery.csv(text, filename: "rounds-critical-values.csv")
        }
        api.on(.GET, "alerts", ":alertId", summary: "One critical value with every step and delivery", tag: "alerts",
               returns: AlertRecordDTO.self) { req in
            AlertRecordDTO(try await req.rounds.alerts.record(alertID: req.parameters.require("alertId"), context: req.context(), on: req.db))
        }
        api.on(.POST, "alerts", ":alertId", "acknowledge", summary: "Acknowledge a critical value (stops the escalation ladder)",
               tag: "alerts", body: AcknowledgeBody.self, returns: AlertDTO.self) { req in
            let body = try req.content.decode(AcknowledgeBody.self)
            return AlertDTO(try await req.rounds.alerts.acknowledge(alertID: req.parameters.require("alertId"), readBack: body.readBack,
                                                                    context: req.context(), on: req.db))
        }
        api.on(.POST, "alerts", ":alertId", "action", summary: "Record the clinical action taken (closes the loop)", tag: "alerts",
               body: AlertActionBody.self, returns: AlertDTO.self) { req in
            let body = try req.content.decode(AlertActionBody.self)
            return AlertDTO(try await req.rounds.alerts.recordAction(alertID: req.parameters.require("alertId"), kind: body.kind,
                                                                     text: body.text, context: req.context(), on: req.db))
        }
        api.on(.GET, "wards", ":wardId", "escalation-ladder", summary: "The ward's escalation ladder for critical values", tag: "alerts",
               returns: LadderDTO.self) { req in
            let wardID = try req.parameters.require("wardId")
            let (steps, standard) = try await req.rounds.alerts.ladder(wardID: wardID, context: req.context(), on: req.db)
            return LadderDTO(wardId: wardID, isStandard: standard, steps: steps)
        }
        api.on(.PUT, "wards", ":wardId", "escalation-ladder", summary: "Set the ward's escalation ladder (head nurse, medical affairs)",
               tag: "alerts", body: LadderBody.self, returns: LadderDTO.self) { req in
            let wardID = try req.parameters.require("wardId")
            let body = try req.content.decode(LadderBody.self)
            let steps = try await req.rounds.alerts.setLadder(wardID: wardID, steps: body.steps, context: req.context(), on: req.db)
            return LadderDTO(wardId: wardID, isStandard: false, steps: steps)
        }
        registerConnectors()
    }

    private func registerConnectors() {
        api.on(.GET, "alert-connectors", summary: "Outside delivery of critical values (Feishu, WeCom, SMS, e-mail, HL7)",
               tag: "alerts", returns: AlertService.ConnectorView.self, array: true) { req in
            try await req.rounds.alerts.connectors(context: req.context(), on: req.db)
        }
        api.on(.POST, "alert-connectors", summary: "Add a connector (administrators of the hospital)", tag: "alerts", body: ConnectorBody.self,
               returns: AlertService.ConnectorView.self, status: 201) { req -> Response in
            let body = try req.content.decode(ConnectorBody.self)
            let view = try await req.rounds.alerts.createConnector(body.input, context: req.context(), on: req.db)
            return try await view.encodeResponse(status: .created, for: req)
        }
        api.on(.PUT, "alert-connectors", ":connectorId", summary: "Change a connector (settings left out keep their value)",
               tag: "alerts", body: ConnectorBody.self, returns: AlertService.ConnectorView.self) { req in
            let body = try req.content.decode(ConnectorBody.self)
            return try await req.rounds.alerts.updateConnector(id: req.parameters.require("connectorId"), body.input,
                                                               context: req.context(), on: req.db)
        }
        api.on(.DELETE, "alert-connectors", ":connectorId", summary: "Remove a connector", tag: "alerts", status: 204) { req -> HTTPStatus in
            try await req.rounds.alerts.deleteConnector(id: req.parameters.require("connectorId"), context: req.context(), on: req.db)
            return .noContent
        }
        api.on(.POST, "alert-connectors", ":connectorId", "test", summary: "Send a test message through a connector now",
               tag: "alerts", returns: ConnectorTestDTO.self) { req in
            let test = try await req.rounds.alerts.testConnector(id: req.parameters.require("connectorId"), using: req.rounds.alertConnectors,
                                                                 context: req.context(), on: req.db)
            test.log(req.logger)
            return ConnectorTestDTO(delivered: test.delivered, error: test.error)
        }
    }

    /// `from`/`to` from the query; the last 30 days by default.
    static func period(_ req: Request) throws -> (Date, Date) {
        let to = try AuditFilterQuery.date(req, "to") ?? req.rounds.configuration.clock.now()
        let from = try AuditFilterQuery.date(req, "from") ?? to.addingTimeInterval(-30 * 86_400)
        return (from, to)
    }
}

extension AlertService.ConnectorTest {
    /// Why a test failed goes to the server log (for IT), not to the page.
    func log(_ logger: Logger) {
        guard let reference, let reason else { return }
        logger.warning("connector test failed", metadata: ["reference": .string(reference), "reason": .string(reason)])
    }
}
