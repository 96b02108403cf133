import Fluent
import Foundation
import RoundsAlerts
import RoundsCore
import RoundsStore
import Vapor

struct AlertDTO: APISchema {
    var id: String
    var patientId: String
    var wardId: String?
    var groupId: String?
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
        id = a.id ?? ""; patientId = a.patientID; wardId = a.wardID; groupId = a.groupID; testCode = a.testCode; testName = a.testName
        value = a.value; unit = a.unit; flag = a.flag; status = a.status; level = a.level; raisedAt = a.raisedAt
        acknowledgedAt = a.acknowledgedAt; acknowledgedBy = a.acknowledgedByName; readBack = a.readBack
        actionKind = a.actionKind; actionText = a.actionText; actionAt = a.actionAt
    }

    static let sample: AlertDTO = {
        let a = CriticalAlert()
        a.id = "…"; a.patientID = "…"; a.wardID = "…"; a.groupID = "…"; a.testCode = "2823-3"; a.testName = "Potassium"; a.value = "6.9"
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
    /// retest, medication, transfer, notify_patient or other (other needs text).
    var kind: String
    var text: String?
    static let sample = AlertActionBody(kind: "medication", text: "葡萄糖酸钙 10ml 静推，胰岛素+葡萄糖")
}

/// `/api/v1/alerts`: critical values and closing their loop.
struct AlertRoutes {
    let api: APIBuilder

    func register() {
        api.on(.GET, "alerts", summary: "Critical values of the wards I may see (newest first)", tag: "alerts",
               returns: AlertDTO.self, array: true, query: ["status"]) { req in
            let context = try req.context()
            let query = CriticalAlert.query(on: req.db).sort(\.$raisedAt, .descending).limit(500)
            if let status = req.query[String.self, at: "status"] { query.filter(\.$status == status) }
            let wards = try await Department.query(on: req.db).filter(\.$kind == .ward).all()
            let visible = Set(wards.filter { context.principal.canViewPatients(in: $0.wardRef) }.compactMap(\.id))
            let rows = try await query.all().filter { $0.wardID.map(visible.contains) ?? context.principal.isSuperuser }
            try await req.rounds.audit.record("alert.list", entityType: "critical_alert", entityID: nil, detail: "\(rows.count) alerts",
                                              context: context, on: req.db)
            return rows.map(AlertDTO.init)
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
    }
}
