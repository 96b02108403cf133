import Foundation
import RoundsAlerts
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// Critical-value connectors (Feishu, WeCom, SMS, e-mail, HL7 to the LIS) for administrators:
/// list with delivery counts, add, switch on and off, send a test, remove. Secrets entered here
/// are never shown again.
extension AdminPages {
    struct ConnectorRow: Encodable {
        var id: String; var name: String; var kind: String; var hospital: String; var settings: String; var secrets: String
        var minLevel: Int; var enabled: Bool; var sent: Int; var pending: Int; var dead: Int
    }
    struct ConnectorsData: Encodable { var connectors: [ConnectorRow]; var hospitals: [Option]; var kinds: [Option] }

    @Sendable func connectors(req: Request) async throws -> Response {
        let context = try await requireAdmin(req)
        let hospitals = try await req.rounds.organisation.hospitals(context: context, on: req.db)
            .filter { context.principal.canManageOrganisation(hospitalID: $0.id!) }
        let names = Dictionary(hospitals.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
        let rows = try await req.rounds.alerts.connectors(context: context, on: req.db).map {
            ConnectorRow(id: $0.id, name: $0.name, kind: $0.kind, hospital: names[$0.hospitalId] ?? $0.hospitalId,
                         settings: $0.settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                         secrets: $0.secretsSet.joined(separator: ", "), minLevel: $0.minLevel, enabled: $0.enabled,
                         sent: $0.sent, pending: $0.pending, dead: $0.dead)
        }
        let kinds = ConnectorKind.allCases.map { kind in
            Option(value: kind.rawValue, label: "\(kind.rawValue): " + kind.knownSettings.sorted().joined(separator: ", "))
        }
        return try await req.page("admin_connectors", title: "admin_connectors",
                                  data: ConnectorsData(connectors: rows, hospitals: hospitals.map { Option(value: $0.id!, label: $0.name) }, kinds: kinds),
                                  flash: okParam(req), error: errorParam(req))
    }

    /// Settings arrive as `key=value` lines, so one form serves every kind.
    @Sendable func createConnector(req: Request) async throws -> Response {
        try await form(req, back: "/admin/alert-connectors") {
            var settings: [String: String] = [:]
            for line in field(req, "settings").split(whereSeparator: \.isNewline) {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].isEmpty else { throw RoundsError.validation("settings: one key=value a line") }
                settings[parts[0]] = parts[1]
            }
            let input = AlertService.ConnectorInput(hospitalID: field(req, "hospitalId"), kind: field(req, "kind"), name: field(req, "name"),
                                                    settings: settings, minLevel: Int(field(req, "minLevel")) ?? 0, enabled: true)
            _ = try await req.rounds.alerts.createConnector(input, context: req.context(), on: req.db)
            return "/admin/alert-connectors?ok=1"
        }
    }

    @Sendable func toggleConnector(req: Request) async throws -> Response {
        try await form(req, back: "/admin/alert-connectors") {
            _ = try await req.rounds.alerts.updateConnector(id: req.parameters.require("id"), .init(enabled: field(req, "enabled") == "true"),
                                                            context: req.context(), on: req.db)
            return "/admin/alert-connectors?ok=1"
        }
    }

    @Sendable func testConnector(req: Request) async throws -> Response {
        try await form(req, back: "/admin/alert-connectors") {
            let test = try await req.rounds.alerts.testConnector(id: req.parameters.require("id"), using: req.rounds.alertConnectors,
                                                                 context: req.context(), on: req.db)
            test.log(req.logger)
            if let error = test.error { throw RoundsError.conflict(error) }
            return "/admin/alert-connectors?ok=" + (req.rounds.catalogue.text("connector_test_sent", req.locale)
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        }
    }

    @Sendable func deleteConnector(req: Request) async throws -> Response {
        try await form(req, back: "/admin/alert-connectors") {
            try await req.rounds.alerts.deleteConnector(id: req.parameters.require("id"), context: req.context(), on: req.db)
            return "/admin/alert-connectors?ok=1"
        }
    }
}
