import Fluent
import Foundation
import RoundsAlerts
import RoundsCore
import RoundsIntegration
import RoundsDirectory
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
        var parseError: String?; var failed: Bool; var statusLabel: String
    }

    func register(_ routes: any RoutesBuilder) {
        routes.get("integration", use: list)
        routes.get("integration", "messages", ":id", use: detail)
        routes.get("integration", "messages", ":id", "replay", use: confirmReplay)
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
        let t = req.rounds.catalogue.table(req.locale)
        let rows = records.map {
            Row(id: $0.id!, receivedAt: Formatting.dateTime($0.receivedAt), direction: t["hl7_direction_\($0.direction)"] ?? $0.direction,
                sender: $0.sender, type: $0.messageType,
                controlID: $0.controlID ?? "", mrn: $0.patientMRN ?? "",
                status: (t["hl7_status_\($0.status)"] ?? $0.status) + ($0.duplicateCount > 0 ? "（+\($0.duplicateCount)）" : ""),
                failed: ["error", "rejected", "held"].contains($0.status) || $0.notice != nil,
                error: [$0.error, $0.notice.map { "\(t["hl7_notice"] ?? "")：\($0)" }].compactMap { $0 }.joined(separator: "；"))
        }
        let outbound = try await req.rounds.messages.outboundSection(limit: 20, context: req.context(), on: req.db).map(OutboundDTO.init)
        return try await req.page("integration", title: "integration_title",
                                  data: ListData(rows: rows, filters: filters, query: query, olderQuery: older, outbound: outbound),
                                  flash: req.query[String.self, at: "ok"], error: req.query[String.self, at: "error"])
    }

    @Sendable func detail(req: Request) async throws -> Response {
        let record = try await req.rounds.messages.message(id: req.parameters.require("id"), context: req.context(), on: req.db)
        let tree = MessageStore.tree(of: record)
        let data = DetailData(message: HL7MessageDTO(record), receivedAt: Formatting.dateTime(record.receivedAt),
                              text: tree.text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n"),
                              segments: tree.segments, parseError: tree.error, failed: ["error", "rejected", "held"].contains(record.status),
                              statusLabel: req.rounds.catalogue.table(req.locale)["hl7_status_\(record.status)"] ?? record.status)
        return try await req.page("integration_message", title: "integration_message", data: data,
                                  flash: req.query[String.self, at: "ok"], error: req.query[String.self, at: "error"])
    }

    struct ReplayData: Encodable {
        var id: String; var type: String; var controlID: String; var sender: String; var receivedAt: String; var mrn: String
        var patient: String; var effects: [String]; var alerted: [String]
    }

    /// Before replaying: what the message is, what processing it again will do, and which
    /// critical values it already raised (those are not raised again).
    @Sendable func confirmReplay(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let context = try req.context()
        let preview = try await req.rounds.messages.replayPreview(id: req.parameters.require("id"), context: context, on: req.db)
        let record = preview.record, patient = preview.patient
        let family = String(record.messageType.prefix(3))
        let effects = (t["replay_effect_\(family)"] ?? t["replay_effect_other"] ?? "").split(separator: "|").map(String.init)
        let alerts = try await req.rounds.alerts.raised(fromMessages: preview.messageIDs, context: context, on: req.db)
        let alerted = alerts.map { "\($0.testName) \($0.value) \($0.unit ?? "")（\(AlertPages.statusLabel($0.status, t))）" }
        return try await req.page("integration_replay", title: "replay_title", data: ReplayData(
            id: record.id!, type: record.messageType, controlID: record.controlID ?? "", sender: record.sender,
            receivedAt: Formatting.dateTime(record.receivedAt), mrn: record.patientMRN ?? "", patient: patient?.name ?? "",
            effects: effects, alerted: alerted))
    }

    @Sendable func replay(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        struct Form: Content { var confirm: String? }
        // Only from the confirmation page: a stray POST (an old form, a double tap) asks first.
        guard (try? req.content.decode(Form.self))?.confirm == "yes" else {
            return req.redirect(to: "/integration/messages/\(id)/replay")
        }
        let t = req.rounds.catalogue.table(req.locale)
        do {
            let receipt = try await req.rounds.messages.replay(id: id, pipeline: req.rounds.hl7, context: req.context(), on: req.db)
            let message = (t["replay_done_\(receipt.outcome.rawValue)"] ?? receipt.outcome.rawValue) + (receipt.detail.map { "（\($0)）" } ?? "")
            let target = receipt.messageID ?? id
            return req.redirect(to: "/integration/messages/\(target)?ok=" + (message.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        } catch let error as RoundsError {
            let message = error.message(locale: req.locale) + (error.detail.map { ": \($0)" } ?? "")
            return req.redirect(to: "/integration/messages/\(id)?error=" + (message.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        }
    }
}
