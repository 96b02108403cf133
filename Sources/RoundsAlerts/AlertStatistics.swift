import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// The quality-control view of critical values over a period: how many, where, for which tests,
/// how fast they were acknowledged and acted on, how often they escalated, and which are overdue now.
public struct AlertStatistics: Sendable, Codable {
    /// Nearest-rank percentiles in minutes over the alerts that reached the step.
    public struct Durations: Sendable, Codable, Equatable {
        public var count: Int
        public var medianMinutes: Double?
        public var p90Minutes: Double?

        init(_ seconds: [TimeInterval]) {
            let sorted = seconds.sorted()
            count = sorted.count
            medianMinutes = Self.percentile(sorted, 0.5)
            p90Minutes = Self.percentile(sorted, 0.9)
        }

        /// The smallest value with at least p of the values at or below it, in minutes (0.1 precision).
        static func percentile(_ sorted: [TimeInterval], _ p: Double) -> Double? {
            guard !sorted.isEmpty else { return nil }
            let rank = max(1, Int((p * Double(sorted.count)).rounded(.up)))
            return (sorted[rank - 1] / 6).rounded() / 10
        }
    }

    public struct WardRow: Sendable, Codable {
        public var wardId: String?
        public var wardName: String
        public var alerts: Int
        public var open: Int
        public var acknowledged: Int
        public var closed: Int
        public var escalated: Int
        public var timeToAcknowledge: Durations
        public var timeToAction: Durations
    }

    public struct TestRow: Sendable, Codable {
        public var testCode: String
        public var testName: String
        public var alerts: Int
        public var escalated: Int
    }

    public struct OverdueRow: Sendable, Codable {
        public var alertId: String
        public var patientName: String
        public var mrn: String
        public var wardName: String
        public var testName: String
        public var value: String
        public var unit: String?
        public var status: String
        public var level: Int
        public var raisedAt: Date
        public var minutesOpen: Int
        /// "acknowledge" (nobody has acknowledged) or "action" (acknowledged, no action recorded).
        public var waitingFor: String
    }

    public var from: Date
    public var to: Date
    public var total: Int
    public var open: Int
    public var acknowledged: Int
    public var closed: Int
    public var escalated: Int
    /// How many alerts reached each rung: [1: n, 2: m, …] as an array of (level, count).
    public var escalationsByLevel: [LevelCount]
    public var timeToAcknowledge: Durations
    public var timeToAction: Durations
    public var wards: [WardRow]
    public var tests: [TestRow]
    public var overdue: [OverdueRow]
    /// The period's acknowledgements, newest first, with who read back what (at most 100).
    public var acknowledgements: [AcknowledgementRow] = []

    public struct AcknowledgementRow: Sendable, Codable {
        public var alertId: String
        public var patientName: String
        public var mrn: String
        public var testName: String
        public var value: String
        public var unit: String?
        public var acknowledgedBy: String
        public var acknowledgedAt: Date
        public var readBack: String?
        public var minutes: Double
    }

    public struct LevelCount: Sendable, Codable, Equatable {
        public var level: Int
        public var alerts: Int
    }

    /// Targets the overdue list is measured against: acknowledged within 5 minutes (the standard
    /// first rung), action recorded within 30 minutes of the alert.
    public static let acknowledgeWithin: TimeInterval = 5 * 60
    public static let actWithin: TimeInterval = 30 * 60
}

extension AlertService {
    /// Hospitals whose critical values the principal may review; nil means all.
    func reviewableHospitals(_ principal: Principal) -> Set<String>? {
        if principal.isSuperuser { return nil }
        return Set(principal.assignments.filter { $0.role.seesWholeHospital }.map(\.hospitalID))
    }

    /// The alerts raised in [from, to) in the hospitals the principal reviews (optionally one).
    public func reviewedAlerts(from: Date, to: Date, hospitalID: String?, context: RequestContext,
                               on db: any Database) async throws -> [CriticalAlert] {
        guard context.principal.reviewsCriticalValues else {
            try await audit.record("alert.statistics", entityType: "critical_alert", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("the critical-value dashboard is for quality control, medical affairs and administrators")
        }
        guard from < to else { throw RoundsError.validation("from: before to") }
        let query = CriticalAlert.query(on: db).filter(\.$raisedAt >= from).filter(\.$raisedAt < to).sort(\.$raisedAt)
        if let hospitalID {
            guard context.principal.canReviewCriticalValues(hospitalID: hospitalID) else { throw RoundsError.forbidden() }
            query.filter(\.$hospitalID == hospitalID)
        } else if let hospitals = reviewableHospitals(context.principal) {
            query.filter(\.$hospitalID ~~ Array(hospitals))
        }
        return try await query.limit(100_000).all()
    }

    public func statistics(from: Date, to: Date, hospitalID: String?, context: RequestContext,
                           on db: any Database) async throws -> AlertStatistics {
        let alerts = try await reviewedAlerts(from: from, to: to, hospitalID: hospitalID, context: context, on: db)
        let wardNames = try await wardNames(on: db)
        func ack(_ list: [CriticalAlert]) -> AlertStatistics.Durations {
            .init(list.compactMap { a in a.acknowledgedAt.map { $0.timeIntervalSince(a.raisedAt) } })
        }
        func act(_ list: [CriticalAlert]) -> AlertStatistics.Durations {
            .init(list.compactMap { a in a.actionAt.map { $0.timeIntervalSince(a.raisedAt) } })
        }
        let wards = Dictionary(grouping: alerts) { $0.wardID ?? "" }.map { wardID, list in
            AlertStatistics.WardRow(wardId: wardID.isEmpty ? nil : wardID, wardName: wardNames[wardID] ?? "—", alerts: list.count,
                                    open: list.filter { $0.status == "open" }.count,
                                    acknowledged: list.filter { $0.acknowledgedAt != nil }.count,
                                    closed: list.filter { $0.status == "closed" }.count, escalated: list.filter { $0.level > 0 }.count,
                                    timeToAcknowledge: ack(list), timeToAction: act(list))
        }.sorted { ($0.alerts, $1.wardName) > ($1.alerts, $0.wardName) }
        let tests = Dictionary(grouping: alerts) { $0.testCode }.map { code, list in
            AlertStatistics.TestRow(testCode: code, testName: list[0].testName, alerts: list.count, escalated: list.filter { $0.level > 0 }.count)
        }.sorted { ($0.alerts, $1.testCode) > ($1.alerts, $0.testCode) }
        let maxLevel = alerts.map(\.level).max() ?? 0
        let levels = maxLevel == 0 ? [] : (1...maxLevel).map { level in
            AlertStatistics.LevelCount(level: level, alerts: alerts.filter { $0.level >= level }.count)
        }
        var stats = AlertStatistics(
            from: from, to: to, total: alerts.count, open: alerts.filter { $0.status == "open" }.count,
            acknowledged: alerts.filter { $0.acknowledgedAt != nil }.count, closed: alerts.filter { $0.status == "closed" }.count,
            escalated: alerts.filter { $0.level > 0 }.count, escalationsByLevel: levels,
            timeToAcknowledge: ack(alerts), timeToAction: act(alerts), wards: wards, tests: tests,
            overdue: try await overdue(hospitalID: hospitalID, principal: context.principal, wardNames: wardNames, on: db))
        let acknowledged = alerts.filter { $0.acknowledgedAt != nil }.sorted { $0.acknowledgedAt! > $1.acknowledgedAt! }.prefix(100)
        let people = Dictionary(try await Patient.query(on: db).filter(\.$id ~~ Set(acknowledged.map(\.patientID))).all().map { ($0.id!, $0) },
                                uniquingKeysWith: { a, _ in a })
        stats.acknowledgements = acknowledged.map { a in
            AlertStatistics.AcknowledgementRow(alertId: a.id!, patientName: people[a.patientID]?.name ?? "", mrn: people[a.patientID]?.mrn ?? "",
                                               testName: a.testName, value: a.value, unit: a.unit, acknowledgedBy: a.acknowledgedByName ?? "",
                                               acknowledgedAt: a.acknowledgedAt!, readBack: a.readBack,
                                               minutes: (a.acknowledgedAt!.timeIntervalSince(a.raisedAt) / 6).rounded() / 10)
        }
        try await audit.record("alert.statistics", entityType: "critical_alert", entityID: nil, hospitalID: hospitalID,
                               detail: "\(alerts.count) alerts", context: context, on: db)
        return stats
    }

    /// Alerts not closed that are past their target now, whenever they were raised (oldest first).
    func overdue(hospitalID: String?, principal: Principal, wardNames: [String: String],
                 on db: any Database) async throws -> [AlertStatistics.OverdueRow] {
        let now = clock.now()
        let query = CriticalAlert.query(on: db).filter(\.$status != "closed").filter(\.$raisedAt <= now.addingTimeInterval(-AlertStatistics.acknowledgeWithin))
            .sort(\.$raisedAt).limit(500)
        if let hospitalID { query.filter(\.$hospitalID == hospitalID) } else if let hospitals = reviewableHospitals(principal) {
            query.filter(\.$hospitalID ~~ Array(hospitals))
        }
        let alerts = try await query.all().filter { a in
            a.status == "open" || now.timeIntervalSince(a.raisedAt) > AlertStatistics.actWithin
        }
        let patients = try await Patient.query(on: db).filter(\.$id ~~ Set(alerts.map(\.patientID))).all()
        let byID = Dictionary(patients.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        return alerts.map { a in
            AlertStatistics.OverdueRow(alertId: a.id!, patientName: byID[a.patientID]?.name ?? "", mrn: byID[a.patientID]?.mrn ?? "",
                                       wardName: a.wardID.flatMap { wardNames[$0] } ?? "—", testName: a.testName, value: a.value,
                                       unit: a.unit, status: a.status, level: a.level, raisedAt: a.raisedAt,
                                       minutesOpen: Int(now.timeIntervalSince(a.raisedAt) / 60),
                                       waitingFor: a.status == "open" ? "acknowledge" : "action")
        }
    }

    private func wardNames(on db: any Database) async throws -> [String: String] {
        Dictionary(try await Department.query(on: db).filter(\.$kind == .ward).all().map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    /// The alerts of the period as CSV (RFC 4180 with a BOM, formulas neutralised), one row each.
    public func csv(from: Date, to: Date, hospitalID: String?, style: CSVStyle = .machine, context: RequestContext,
                    on db: any Database) async throws -> String {
        let alerts = try await reviewedAlerts(from: from, to: to, hospitalID: hospitalID, context: context, on: db)
        let wardNames = try await wardNames(on: db)
        let patients = try await Patient.query(on: db).filter(\.$id ~~ Set(alerts.map(\.patientID))).all()
        let byID = Dictionary(patients.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        func minutes(_ end: Date?, _ start: Date) -> String {
            end.map { String(format: "%.1f", $0.timeIntervalSince(start) / 60) } ?? ""
        }
        let columns = ["alert_id", "raised_at", "ward", "patient", "mrn", "test_code", "test_name", "value", "unit", "flag", "source",
                       "reported_by", "status", "escalation_level", "acknowledged_by", "acknowledged_at", "minutes_to_acknowledge",
                       "read_back", "action_kind", "action_text", "action_at", "minutes_to_action"]
        var out = "\u{FEFF}" + style.header(columns, prefix: "csv_alert_") + "\r\n"
        let time = style.timeFormat()
        for a in alerts {
            let fields: [String?] = [
                a.id, time(a.raisedAt), a.wardID.flatMap { wardNames[$0] }, byID[a.patientID]?.name, byID[a.patientID]?.mrn,
                a.testCode, a.testName, a.value, a.unit, style.word("flag", a.flag), style.word("alert_source", a.source), a.reportedBy,
                style.word("alert_status", a.status), String(a.level),
                a.acknowledgedByName, time(a.acknowledgedAt), minutes(a.acknowledgedAt, a.raisedAt), a.readBack,
                style.word("alert_action", a.actionKind), a.actionText, time(a.actionAt), minutes(a.actionAt, a.raisedAt),
            ]
            out += fields.map { AuditLog.csvField($0 ?? "") }.joined(separator: ",") + "\r\n"
        }
        try await audit.record("alert.export", entityType: "critical_alert", entityID: nil, hospitalID: hospitalID,
                               detail: "\(alerts.count) alerts", context: context, on: db)
        return out
    }
}
