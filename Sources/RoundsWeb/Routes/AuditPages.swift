import Foundation
import RoundsCore
import RoundsStore
import Vapor

/// The audit log for administrators and quality control: filter, page back, export CSV.
struct AuditPages {
    struct Row: Encodable {
        var at: String; var actor: String; var action: String; var entity: String; var patientId: String
        var client: String; var outcome: String; var denied: Bool; var detail: String
    }
    struct Filters: Encodable {
        var actorId: String; var action: String; var entityType: String; var patientId: String; var outcome: String; var from: String; var to: String
    }
    struct Data: Encodable { var rows: [Row]; var filters: Filters; var query: String; var olderQuery: String? }

    func register(_ routes: any RoutesBuilder) {
        routes.get("audit", use: page)
        routes.get("audit.csv", use: csv)
    }

    @Sendable func page(req: Request) async throws -> Response {
        let filter = try AuditFilterQuery.parse(req)
        let rows = try await req.rounds.audit.search(filter, context: req.context(), on: req.db)
        let q = { (key: String) in req.query[String.self, at: key] ?? "" }
        let filters = Filters(actorId: q("actorId"), action: q("action"), entityType: q("entityType"), patientId: q("patientId"),
                              outcome: q("outcome"), from: q("from"), to: q("to"))
        let query = req.url.query ?? ""
        let older: String? = rows.count == filter.limit ? {
            var items = URLComponents(string: "?" + query)?.queryItems?.filter { $0.name != "before" } ?? []
            items.append(URLQueryItem(name: "before", value: rows.last?.id))
            var c = URLComponents(); c.queryItems = items
            return c.percentEncodedQuery
        }() : nil
        let data = Data(rows: rows.map {
            Row(at: Formatting.dateTime($0.at), actor: $0.actorName, action: $0.action,
                entity: $0.entityType + ($0.entityID.map { " " + $0 } ?? ""), patientId: $0.patientID ?? "",
                client: $0.clientAddress ?? "", outcome: $0.outcome, denied: $0.outcome != "success", detail: $0.detail ?? "")
        }, filters: filters, query: query, olderQuery: older)
        return try await req.page("audit", title: "audit_title", data: data)
    }

    @Sendable func csv(req: Request) async throws -> Response {
        var filter = try AuditFilterQuery.parse(req)
        filter.limit = 10_000
        return AuditFilterQuery.csvResponse(try await req.rounds.audit.search(filter, context: req.context(), on: req.db))
    }
}
