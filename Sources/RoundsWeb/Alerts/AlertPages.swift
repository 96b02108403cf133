import Fluent
import Foundation
import RoundsAlerts
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// Critical values in the browser: the list, one alert with its whole record and the forms that
/// close its loop (acknowledge with read-back, record the action), manual entry for laboratory
/// staff, the quality dashboard with CSV, and each ward's escalation ladder.
struct AlertPages {
    struct Row: Encodable {
        var id: String; var raised: String; var patient: String; var ward: String; var result: String; var status: String
        var statusLabel: String; var level: Int
    }
    struct ListData: Encodable {
        var rows: [Row]; var status: String; var canReport: Bool; var canReview: Bool; var empty: Bool
    }
    struct Step: Encodable { var at: String; var label: String; var staff: String; var detail: String }
    struct Delivery: Encodable { var connector: String; var event: String; var status: String; var attempts: Int; var error: String }
    struct Option: Encodable { var value: String; var label: String }
    struct DetailData: Encodable {
        var id: String; var patientId: String; var patient: String; var mrn: String; var ward: String; var result: String
        var reason: String; var raised: String; var status: String; var statusLabel: String; var isOpen: Bool; var isAcknowledged: Bool
        var groupId: String?; var acknowledged: String?; var action: String?; var canAct: Bool
        var bed: String; var range: String; var flag: String; var ago: String
        var steps: [Step]; var pending: [Step]; var deliveries: [Delivery]; var actionKinds: [Option]
    }
    struct NewData: Encodable { var hospitals: [Option]; var singleHospital: Bool; var flags: [String] }

    func register(_ routes: any RoutesBuilder) {
        routes.get("alerts", use: list)
        routes.get("alerts", "new", use: newForm)
        routes.post("alerts", use: create)
        routes.get("alerts", "dashboard", use: dashboard)
        routes.get("alerts", "export.csv", use: csv)
        routes.get("alerts", "urgent", use: urgent)
        routes.get("alerts", ":id", use: show)
        routes.post("alerts", ":id", "acknowledge", use: acknowledge)
        routes.post("alerts", ":id", "action", use: action)
        routes.get("wards", ":wardId", "escalation", use: ladder)
        routes.post("wards", ":wardId", "escalation", use: saveLadder)
    }

    static func statusLabel(_ status: String, _ t: [String: String]) -> String { t["alert_status_\(status)"] ?? status }

    static func result(_ a: CriticalAlert, _ t: [String: String]) -> String {
        [a.testName, a.value, a.unit, a.flag.map { "（\(Formatting.flag($0, t))）" }].compactMap { $0 }.joined(separator: " ")
    }

    @Sendable func list(req: Request) async throws -> Response {
        let context = try req.context()
        let t = req.rounds.catalogue.table(req.locale)
        let status = req.query[String.self, at: "status"].flatMap { ["open", "acknowledged", "closed"].contains($0) ? $0 : nil }
        let rows = try await req.rounds.alerts.listing(status: status, limit: 200, context: context, on: req.db).map { line in
            let a = line.alert
            return Row(id: a.id!, raised: Formatting.dateTime(a.raisedAt), patient: line.patient, ward: line.ward ?? "—",
                       result: Self.result(a, t), status: a.status, statusLabel: Self.statusLabel(a.status, t), level: a.level)
        }
        return try await req.page("alerts", title: "alerts_title", data: ListData(
            rows: rows, status: status ?? "", canReport: context.principal.reportsCriticalValues,
            canReview: context.principal.reviewsCriticalValues, empty: rows.isEmpty))
    }

    /// The urgent panel alone, for the page's script to swap in when something changes.
    @Sendable func urgent(req: Request) async throws -> Response {
        struct Fragment: Encodable { var t: [String: String]; var urgent: [UrgentPatient]; var urgentCount: Int; var urgentSignature: String }
        _ = try req.context()
        let t = req.rounds.catalogue.table(req.locale)
        let urgent = try await req.urgentPanel(t)
        let view = try await req.view.render("urgent_fragment", Fragment(t: t, urgent: urgent, urgentCount: UrgentPatient.count(urgent),
                                                                         urgentSignature: UrgentPatient.signature(urgent)))
        let response = try await view.encodeResponse(for: req)
        response.headers.replaceOrAdd(name: .contentType, value: "text/html; charset=utf-8")
        response.headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        return response
    }

    @Sendable func show(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let record = try await req.rounds.alerts.record(alertID: req.parameters.require("id"), context: req.context(), on: req.db)
        let a = record.alert
        func names(_ ids: String?) -> String {
            (ids ?? "").split(separator: " ").map { record.names[String($0)] ?? String($0) }.joined(separator: "、")
        }
        let steps = record.steps.map {
            Step(at: Formatting.dateTime($0.at), label: (t["alert_step_\($0.kind)"] ?? $0.kind) + ($0.kind == "escalated" ? " \($0.level)" : ""),
                 staff: names($0.staff), detail: $0.detail ?? "")
        }
        let pending = record.escalations.filter { $0.status == "pending" }.map {
            Step(at: Formatting.dateTime($0.dueAt), label: "\(t["alert_step_escalated"] ?? "") \($0.level)", staff: "",
                 detail: $0.targets.split(separator: ",").map { t["ladder_target_\($0)"] ?? String($0) }.joined(separator: "、"))
        }
        let deliveries = record.deliveries.map { d, c in
            Delivery(connector: c.map { "\($0.name) (\($0.kind))" } ?? "—", event: (t["alert_step_\(d.event)"] ?? d.event) + (d.level > 0 ? " \(d.level)" : ""),
                     status: t["delivery_\(d.status)"] ?? d.status, attempts: d.attempts, error: d.lastError ?? "")
        }
        let data = DetailData(
            id: a.id!, patientId: a.patientID, patient: record.patient.name, mrn: record.patient.mrn, ward: record.wardName ?? "—",
            result: [a.testName, a.value, a.unit].compactMap { $0 }.joined(separator: " "), reason: Formatting.reason(a.reason, t),
            raised: Formatting.dateTime(a.raisedAt), status: a.status,
            statusLabel: Self.statusLabel(a.status, t), isOpen: a.status == "open", isAcknowledged: a.status == "acknowledged",
            groupId: a.groupID,
            acknowledged: a.acknowledgedAt.map { "\(a.acknowledgedByName ?? "") \(Formatting.dateTime($0))" + (a.readBack.map { "（\(t["alert_read_back"] ?? "")：\($0)）" } ?? "") },
            action: a.actionAt.map { "\(t["alert_action_\(a.actionKind ?? "")"] ?? a.actionKind ?? "") \(a.actionText ?? "") · \(a.actionByName ?? "") \(Formatting.dateTime($0))" },
            canAct: record.canAct, bed: record.bed ?? "", range: a.referenceRange ?? "", flag: Formatting.flag(a.flag, t),
            ago: Formatting.ago(a.raisedAt, now: req.rounds.configuration.clock.now(), t), steps: steps, pending: pending, deliveries: deliveries,
            actionKinds: AlertService.actionKinds.map { Option(value: $0, label: t["alert_action_\($0)"] ?? $0) })
        return try await req.page("alert", title: "alert_title", data: data, flash: req.query[String.self, at: "done"].map { _ in t["saved"] ?? "" },
                                  error: req.query[String.self, at: "error"])
    }


    @Sendable func acknowledge(req: Request) async throws -> Response {
        struct Form: Content { var readBack: String? }
        let id = try req.parameters.require("id")
        let form = try req.content.decode(Form.self)
        return try await req.formResult(back: "/alerts/\(id)") {
            _ = try await req.rounds.alerts.acknowledge(alertID: id, readBack: form.readBack, context: req.context(), on: req.db)
        }
    }

    @Sendable func action(req: Request) async throws -> Response {
        struct Form: Content { var kind: String; var text: String? }
        let id = try req.parameters.require("id")
        let form = try req.content.decode(Form.self)
        return try await req.formResult(back: "/alerts/\(id)") {
            _ = try await req.rounds.alerts.recordAction(alertID: id, kind: form.kind, text: form.text, context: req.context(), on: req.db)
        }
    }

    private func hospitals(_ req: Request) async throws -> [Option] {
        try await req.rounds.alerts.reportingHospitals(context: req.context(), on: req.db).map { Option(value: $0.id!, label: $0.name) }
    }

    @Sendable func newForm(req: Request) async throws -> Response {
        let hospitals = try await hospitals(req)
        return try await req.page("alert_new", title: "alert_new_title",
                                  data: NewData(hospitals: hospitals, singleHospital: hospitals.count == 1,
                                                flags: ["HH", "LL", "AA", "H", "L", "A"]),
                                  error: req.query[String.self, at: "error"])
    }

    @Sendable func create(req: Request) async throws -> Response {
        struct Form: Content {
            var hospitalId: String?; var mrn: String; var testCode: String?; var testName: String; var value: String
            var unit: String?; var flag: String?; var note: String?
        }
        let form = try req.content.decode(Form.self)
        let report = AlertService.Report(hospitalID: form.hospitalId, mrn: form.mrn, testCode: form.testCode, testName: form.testName,
                                         value: form.value, unit: form.unit, flag: form.flag, note: form.note)
        do {
            let (alert, _) = try await req.rounds.alerts.report(report, source: "manual", context: req.context(), on: req.db)
            return req.redirect(to: "/alerts/\(alert.id!)")
        } catch let error as RoundsError where [404, 409, 422].contains(error.status) {
            return req.redirect(to: "/alerts/new", error: error)
        }
    }

    // MARK: Quality dashboard

    struct Bar: Encodable { var label: String; var y: Int; var medianWidth: Int; var p90Width: Int; var text: String }
    struct DashboardData: Encodable {
        var stats: AlertStatistics; var from: String; var to: String; var query: String
        var wards: [WardView]; var overdue: [OverdueView]; var chart: [Bar]; var chartHeight: Int; var hasChart: Bool
        var ack: String; var act: String
        var acknowledgements: [AckView]
    }
    struct AckView: Encodable { var id: String; var patient: String; var result: String; var by: String; var at: String; var readBack: String; var minutes: String }
    struct WardView: Encodable {
        var name: String; var alerts: Int; var open: Int; var closed: Int; var escalated: Int; var ack: String; var act: String
    }
    struct OverdueView: Encodable {
        var id: String; var patient: String; var ward: String; var result: String; var raised: String; var minutes: Int; var waitingFor: String
    }

    static func minutes(_ d: AlertStatistics.Durations) -> String {
        guard let median = d.medianMinutes, let p90 = d.p90Minutes else { return "—" }
        return String(format: "%.1f / %.1f", median, p90)
    }

    @Sendable func dashboard(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let (from, to) = try AlertRoutes.period(req)
        let stats = try await req.rounds.alerts.statistics(from: from, to: to, hospitalID: req.query[String.self, at: "hospitalId"],
                                                           context: req.context(), on: req.db)
        let day = DateFormatter()
        day.locale = Foundation.Locale(identifier: "en_US_POSIX")
        day.timeZone = Formatting.hospitalTimeZone
        day.dateFormat = "yyyy-MM-dd"
        // Bars of the median and p90 minutes to acknowledge per ward, drawn as SVG on the server.
        let scale = max(1, stats.wards.compactMap { $0.timeToAcknowledge.p90Minutes }.max() ?? 1)
        let chart = stats.wards.filter { $0.timeToAcknowledge.count > 0 }.enumerated().map { index, w in
            Bar(label: w.wardName, y: 10 + index * 34, medianWidth: Int(360 * (w.timeToAcknowledge.medianMinutes ?? 0) / scale),
                p90Width: Int(360 * (w.timeToAcknowledge.p90Minutes ?? 0) / scale), text: Self.minutes(w.timeToAcknowledge))
        }
        let data = DashboardData(
            stats: stats, from: day.string(from: from), to: day.string(from: to.addingTimeInterval(-1)), query: req.url.query ?? "",
            wards: stats.wards.map { WardView(name: $0.wardName, alerts: $0.alerts, open: $0.open, closed: $0.closed, escalated: $0.escalated,
                                              ack: Self.minutes($0.timeToAcknowledge), act: Self.minutes($0.timeToAction)) },
            overdue: stats.overdue.map { OverdueView(id: $0.alertId, patient: "\($0.patientName)（\($0.mrn)）", ward: $0.wardName,
                                                     result: "\($0.testName) \($0.value) \($0.unit ?? "")", raised: Formatting.dateTime($0.raisedAt),
                                                     minutes: $0.minutesOpen, waitingFor: t["alert_waiting_\($0.waitingFor)"] ?? $0.waitingFor) },
            chart: chart, chartHeight: 20 + chart.count * 34, hasChart: !chart.isEmpty,
            ack: Self.minutes(stats.timeToAcknowledge), act: Self.minutes(stats.timeToAction),
            acknowledgements: stats.acknowledgements.map {
                AckView(id: $0.alertId, patient: "\($0.patientName)（\($0.mrn)）", result: "\($0.testName) \($0.value) \($0.unit ?? "")",
                        by: $0.acknowledgedBy, at: Formatting.dateTime($0.acknowledgedAt), readBack: $0.readBack ?? "—",
                        minutes: String(format: "%.1f", $0.minutes))
            })
        return try await req.page("alerts_dashboard", title: "alerts_dashboard_title", data: data)
    }

    @Sendable func csv(req: Request) async throws -> Response {
        let (from, to) = try AlertRoutes.period(req)
        let text = try await req.rounds.alerts.csv(from: from, to: to, hospitalID: req.query[String.self, at: "hospitalId"],
                                                   style: .people(labels: req.rounds.catalogue.table(req.locale), timeZone: Formatting.hospitalTimeZone),
                                                   context: req.context(), on: req.db)
        return AuditFilterQuery.csv(text, filename: "rounds-critical-values.csv")
    }

    // MARK: Escalation ladder

    struct Check: Encodable { var value: String; var label: String; var checked: Bool }
    struct LadderRow: Encodable { var index: Int; var minutes: String; var targets: [Check] }
    struct LadderData: Encodable { var wardId: String; var wardName: String; var isStandard: Bool; var rows: [LadderRow] }

    @Sendable func ladder(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let wardID = try req.parameters.require("wardId")
        let (steps, standard, wardName) = try await req.rounds.alerts.ladderView(wardID: wardID, context: req.context(), on: req.db)
        // The ladder's rungs plus empty ones, up to six.
        let rows = (0..<6).map { i in
            let chosen = i < steps.count ? steps[i].targets : []
            return LadderRow(index: i, minutes: i < steps.count ? String(steps[i].afterMinutes) : "",
                             targets: AlertService.ladderTargets.map { Check(value: $0, label: t["ladder_target_\($0)"] ?? $0, checked: chosen.contains($0)) })
        }
        return try await req.page("ward_escalation", title: "ladder_title",
                                  data: LadderData(wardId: wardID, wardName: wardName, isStandard: standard, rows: rows),
                                  flash: req.query[String.self, at: "done"].map { _ in t["saved"] ?? "" }, error: req.query[String.self, at: "error"])
    }

    @Sendable func saveLadder(req: Request) async throws -> Response {
        let wardID = try req.parameters.require("wardId")
        // Rung i: minutes_i and targets_i (checkboxes); rungs without minutes are left out.
        var steps: [AlertService.LadderStep] = []
        for i in 0..<6 {
            guard let raw = try? req.content.get(String.self, at: "minutes_\(i)"), !raw.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let targets = (try? req.content.get([String].self, at: "targets_\(i)")) ?? []
            steps.append(.init(afterMinutes: Int(raw.trimmingCharacters(in: .whitespaces)) ?? -1, targets: targets))
        }
        return try await req.formResult(back: "/wards/\(wardID)/escalation") {
            _ = try await req.rounds.alerts.setLadder(wardID: wardID, steps: steps, context: req.context(), on: req.db)
        }
    }
}
