import Foundation
import RoundsCore
import RoundsIntegration
import RoundsStore
import Vapor

/// The message store for IT: find messages, read one raw and as a tree, replay it.
struct IntegrationPages {
    struct Row: Encodable {
        var id: String; var receivedAt: String; var direction: String; var sender: String; var type: String; var controlID: String
        var mrn: String; var status: String; var failed: Bool; var error: String
    }
    struct ListData: Encodable {
        var rows: [Row]; var filters: [String: String]; var query: String; var olderQuery: String?; var outbound: [OutboundDTO]
    }
    struct DetailData: Encodable {
        var message: HL7MessageDTO; var receivedAt: String; var text: String; var segments: [MessageStore.TreeSegment]
        var parseError: String?; var failed: Bool
    }

    func register(_ routes: any RoutesBuilder) {
        routes.get("integration", use: list)
        routes.get("integration", "messages", ":id", use: detail)
        routes.post("integration", "messages", ":id", "replay", use: replay)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let filter = try IntegrationRoutes.filter(req)
        let records = try await req.rounds.messages.search(filter, context: req.context(), on: req.db)
        var filters: [String: String] = [:]
        for key in IntegrationRoutes.filterQuery { filters[key] = req.query[String.self, at: key] ?? "" }
        let query = req.url.query ?? ""
        let older: String? = records.count == filter.limit ? {
            var items = URLComponents(string: "?" + query)?.queryItems?.filter { $0.name != "before" } ?? []
            items.append(URLQueryItem(name: "before", value: records.last?.id))
            var c = URLComponents(); c.queryItems = items
            return c.percentEncodedQuery
        }() : nil
        let rows = records.map {
            Row(id: $0.id!, receivedAt: Formatting.dateTime($0.receivedAt), direction: $0.direction, sender: $0.sender, type: $0.messageType,
                controlID: $0.controlID ?? "", mrn: $0.patientMRN ?? "", status: $0.status + ($0.duplicateCount > 0 ? " (+\($0.duplicateCount))" : ""),
                failed: $0.status == "error" || $0.status == "rejected", error: $0.error ?? "")
        }
        let outbound = try await OutboundMessage.recent(limit: 20, on: req.db).map(OutboundDTO.init)
        return try await req.page("integration", title: "integration_title",
                                  data: ListData(rows: rows, filters: filters, query: query, olderQuery: older, outbound: outbound),
                                  flash: req.query[String.self, at: "ok"], error: req.query[String.self, at: "error"])
    }

    @Sendable func detail(req: Request) async throws -> Response {
        let record = try await req.rounds.messages.message(id: req.parameters.require("id"), context: req.context(), on: req.db)
        let tree = MessageStore.tree(of: record)
        let data = DetailData(message: HL7MessageDTO(record), receivedAt: Formatting.dateTime(record.receivedAt),
                              text: tree.text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n"),
                              segments: tree.segments, parseError: tree.error, failed: record.status == "error" || record.status == "rejected")
        return try await req.page("integration_message", title: "integration_message", data: data)
    }

    @Sendable func replay(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        do {
            let receipt = try await req.rounds.messages.replay(id: id, pipeline: req.rounds.hl7, context: req.context(), on: req.db)
            let message = "\(receipt.outcome.rawValue)" + (receipt.detail.map { ": \($0)" } ?? "")
            let target = receipt.messageID ?? id
            return req.redirect(to: "/integration/messages/\(target)?ok=" + (message.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        } catch let error as RoundsError {
            let message = error.message(locale: req.locale) + (error.detail.map { ": \($0)" } ?? "")
            return req.redirect(to: "/integration/messages/\(id)?error=" + (message.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        }
    }
}
