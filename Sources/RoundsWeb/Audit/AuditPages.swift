import Fluent
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// The audit log for quality control and administrators, in their words: find a person by name,
/// a patient by name or MRN, an action from a list; repeated page views of the same thing by
/// the same person fold into one row; export CSV in the reader's language.
struct AuditPages {
    struct Row: Encodable {
        var at: String; var actor: String; var action: String; var patient: String
        var client: String; var outcome: String; var denied: Bool; var detail: String; var times: Int; var folded: Bool
    }
    struct Filters: Encodable {
        var person: String; var patient: String; var action: String; var outcome: String; var from: String; var to: String
    }
    struct Option: Encodable { var value: String; var label: String; var selected: Bool }
    struct Data: Encodable {
        var rows: [Row]; var filters: Filters; var actions: [Option]; var outcomes: [Option]; var query: String; var olderQuery: String?
    }

    func register(_ routes: any RoutesBuilder) {
        routes.get("audit", use: page)
        routes.get("audit.csv", use: csv)
    }

    /// The filter from the page's fields: names and MRNs become the ids the log holds.
    static func filter(_ req: Request) async throws -> AuditLog.Filter {
        var filter = try AuditFilterQuery.parse(req)
        filter.personName = req.query[String.self, at: "person"]
        filter.patientText = req.query[String.self, at: "patient"]
        return filter
    }

    @Sendable func page(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let filter = try await Self.filter(req)
        let events = try await req.rounds.audit.search(filter, context: req.context(), on: req.db)
        let patients = try await req.rounds.audit.patientLabels(of: events, on: req.db)
        let q = { (key: String) in req.query[String.self, at: key] ?? "" }
        let query = req.url.query ?? ""
        let older: String? = events.count == filter.limit ? {
            var items = URLComponents(string: "?" + query)?.queryItems?.filter { $0.name != "before" } ?? []
            items.append(URLQueryItem(name: "before", value: events.last?.id))
            var c = URLComponents(); c.queryItems = items
            return c.percentEncodedQuery
        }() : nil
        let actions = t.keys.filter { $0.hasPrefix("audit_action_") }.map { key in
            Option(value: String(key.dropFirst("audit_action_".count)), label: t[key] ?? key, selected: String(key.dropFirst("audit_action_".count)) == q("action"))
        }.sorted { $0.label < $1.label }
        let outcomes = ["success", "denied", "failure"].map { Option(value: $0, label: t["audit_outcome_\($0)"] ?? $0, selected: $0 == q("outcome")) }
        let data = Data(rows: Self.fold(events).map { group in
            let e = group[0]
            let actor = e.actorKind == "staff" ? e.actorName : "\(e.actorName)（\(t["actor_kind_\(e.actorKind)"] ?? e.actorKind)）"
            let at = group.count > 1 ? "\(Formatting.dateTime(group.last!.at)) – \(Formatting.dateTime(e.at).suffix(5))" : Formatting.dateTime(e.at)
            return Row(at: at, actor: actor, action: t["audit_action_\(e.action)"] ?? e.action,
                       patient: e.patientID.flatMap { patients[$0] } ?? "", client: e.clientAddress ?? "",
                       outcome: t["audit_outcome_\(e.outcome)"] ?? e.outcome, denied: e.outcome != "success", detail: e.detail ?? "",
                       times: group.count, folded: group.count > 1)
        }, filters: Filters(person: q("person"), patient: q("patient"), action: q("action"), outcome: q("outcome"), from: q("from"), to: q("to")),
           actions: actions, outcomes: outcomes, query: query, olderQuery: older)
        return try await req.page("audit", title: "audit_title", data: data)
    }

    /// Runs of the same person reading the same thing (page views, lists) within ten minutes,
    /// as one row: the log keeps every one, the reader sees what happened.
    static func fold(_ events: [AuditEvent]) -> [[AuditEvent]] {
        var groups: [[AuditEvent]] = []
        for e in events {
            if var last = groups.last, let head = last.first, e.action == head.action, e.actorID == head.actorID,
               e.patientID == head.patientID, e.outcome == head.outcome, e.outcome == "success",
               e.action.hasSuffix(".read") || e.action.hasSuffix(".list") || e.action.hasSuffix(".search"),
               let previous = last.last, previous.at.timeIntervalSince(e.at) < 600 {
                last.append(e)
                groups[groups.count - 1] = last
            } else {
                groups.append([e])
            }
        }
        return groups
    }

    @Sendable func csv(req: Request) async throws -> Response {
        var filter = try await Self.filter(req)
        filter.limit = 10_000
        return AuditFilterQuery.csvResponse(try await req.rounds.audit.search(filter, context: req.context(), on: req.db),
                                            style: .people(labels: req.rounds.catalogue.table(req.locale), timeZone: Formatting.hospitalTimeZone))
    }
}
