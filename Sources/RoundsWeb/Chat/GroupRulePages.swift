import Fluent
import Foundation
import RoundsChat
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// Who joins a ward's new patient groups, on a page: the head nurse (or an administrator)
/// ticks roles, named colleagues of the hospital and bots; the service checks and audits.
struct GroupRulePages {
    struct Choice: Encodable { var value: String; var label: String; var checked: Bool }
    struct RuleData: Encodable {
        var wardId: String; var wardName: String; var canEdit: Bool
        var roles: [Choice]; var staff: [Choice]; var bots: [Choice]
    }

    func register(_ routes: any RoutesBuilder) {
        routes.get("wards", ":wardId", "group-rules", use: show)
        routes.post("wards", ":wardId", "group-rules", use: save)
    }

    @Sendable func show(req: Request) async throws -> Response {
        let context = try req.context()
        let t = req.rounds.catalogue.table(req.locale)
        let wardID = try req.parameters.require("wardId")
        let editor = try await req.rounds.chat.ruleEditor(wardID: wardID, context: context, on: req.db)
        let rule = editor.rule, ward = editor.ward, staff = editor.staff, bots = editor.bots
        let data = RuleData(
            wardId: wardID, wardName: ward.name, canEdit: editor.canEdit,
            roles: [Choice(value: "headNurses", label: t["rule_head_nurses"] ?? "", checked: rule.headNurses),
                    Choice(value: "wardNurses", label: t["rule_ward_nurses"] ?? "", checked: rule.wardNurses),
                    Choice(value: "wardDoctors", label: t["rule_ward_doctors"] ?? "", checked: rule.wardDoctors)],
            staff: staff.map { Choice(value: $0.id!, label: $0.displayName, checked: rule.extraStaffIds.contains($0.id!)) },
            bots: bots.map { Choice(value: $0.id!, label: $0.name, checked: rule.botIds.contains($0.id!)) })
        return try await req.page("ward_group_rules", title: "rule_title", data: data,
                                  flash: req.query[String.self, at: "done"].map { _ in t["saved"] ?? "" }, error: req.query[String.self, at: "error"])
    }

    @Sendable func save(req: Request) async throws -> Response {
        let wardID = try req.parameters.require("wardId")
        let roles = (try? req.content.get([String].self, at: "roles")) ?? []
        let staff = (try? req.content.get([String].self, at: "staff")) ?? []
        let bots = (try? req.content.get([String].self, at: "bots")) ?? []
        return try await req.formResult(back: "/wards/\(wardID)/group-rules") {
            _ = try await req.rounds.chat.setGroupRule(
                wardID: wardID, .init(headNurses: roles.contains("headNurses"), wardNurses: roles.contains("wardNurses"),
                                      wardDoctors: roles.contains("wardDoctors"), extraStaffIds: staff, botIds: bots),
                context: req.context(), on: req.db)
        }
    }
}
