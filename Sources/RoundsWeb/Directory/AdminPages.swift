import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// Organisation administration: hospitals, departments and wards, beds, staff and roles,
/// API tokens. Services check every permission; these handlers only shape pages and forms.
struct AdminPages {
    struct Option: Encodable { var value: String; var label: String }

    struct HospitalsData: Encodable { var hospitals: [HospitalDTO]; var canCreate: Bool }

    struct DepartmentRow: Encodable {
        var id: String; var code: String; var name: String; var kind: String; var isWard: Bool; var parent: String; var beds: Int
    }
    struct HospitalData: Encodable {
        var hospital: HospitalDTO; var departments: [DepartmentRow]; var parents: [Option]; var canManage: Bool
        /// Sets where ward-round dictation goes (administrators of this hospital).
        var canSetDictation: Bool
    }
    struct WardData: Encodable { var ward: DepartmentDTO; var hospital: HospitalDTO; var beds: [BedDTO]; var canManage: Bool }

    struct StaffRow: Encodable { var id: String; var username: String; var name: String; var roles: String; var groupAdmin: Bool }
    struct StaffListData: Encodable { var staff: [StaffRow] }

    struct RoleRow: Encodable { var id: String; var role: String; var department: String; var hospital: String; var canRemove: Bool }
    struct StaffMemberData: Encodable {
        var staff: StaffDTO; var roles: [RoleRow]; var departments: [Option]; var roleOptions: [Option]
    }

    struct RoleInfo: Encodable {
        var key: String; var label: String; var clinical: Bool; var wholeHospital: Bool; var organisation: Bool; var audit: Bool
    }
    struct RolesData: Encodable { var roles: [RoleInfo] }

    struct TokenRow: Encodable {
        var id: String; var name: String; var prefix: String; var scopes: String; var hospital: String
        var createdAt: String; var lastUsedAt: String; var revoked: Bool; var expires: String; var expired: Bool
    }
    struct TokensData: Encodable {
        var tokens: [TokenRow]; var hospitals: [Option]; var scopes: [Option]; var lifetimes: [Option]; var newSecret: String?
    }
    struct RevokeData: Encodable { var id: String; var name: String; var prefix: String; var scopes: String; var lastUsedAt: String }

    func register(_ routes: any RoutesBuilder) {
        let admin = routes.grouped("admin")
        admin.get { req in req.redirect(to: "/admin/hospitals") }
        admin.get("hospitals", use: hospitals)
        admin.post("hospitals", use: createHospital)
        admin.get("hospitals", ":id", use: hospital)
        admin.post("hospitals", ":id", "departments", use: createDepartment)
        admin.get("wards", ":id", use: ward)
        admin.post("wards", ":id", "beds", use: createBed)
        admin.get("staff", use: staffList)
        admin.post("staff", use: createStaff)
        admin.get("staff", ":id", use: staffMember)
        admin.post("staff", ":id", "roles", use: assignRole)
        admin.post("staff", ":id", "roles", ":roleId", "delete", use: removeRole)
        admin.get("roles", use: roles)
        admin.get("tokens", use: tokens)
        admin.post("tokens", use: createToken)
        admin.get("tokens", ":id", "revoke", use: confirmRevoke)
        admin.post("tokens", ":id", "revoke", use: revokeToken)
        admin.get("alert-connectors", use: connectors)
        admin.post("alert-connectors", use: createConnector)
        admin.post("alert-connectors", ":id", "enabled", use: toggleConnector)
        admin.post("alert-connectors", ":id", "test", use: testConnector)
        admin.post("alert-connectors", ":id", "delete", use: deleteConnector)
    }

    // MARK: Helpers

    /// Runs a form's action; a refused or invalid form comes back to `back` with the reason shown.
    func form(_ req: Request, back: String, _ action: () async throws -> String) async throws -> Response {
        do {
            return req.redirect(to: try await action())
        } catch let error as RoundsError {
            return req.redirect(to: back, error: error)
        }
    }

    func field(_ req: Request, _ name: String) -> String {
        (try? req.content.get(String.self, at: name)) ?? ""
    }

    func errorParam(_ req: Request) -> String? { req.query[String.self, at: "error"] }
    func okParam(_ req: Request) -> String? {
        req.query[String.self, at: "ok"].map { req.rounds.catalogue.text("saved", req.locale) + ($0.isEmpty || $0 == "1" ? "" : " \($0)") }
    }

    /// Administration pages are for administrators; a refusal is audited like an API refusal.
    func requireAdmin(_ req: Request) async throws -> RequestContext {
        let context = try req.context()
        guard context.principal.isAdministrator else {
            try await req.rounds.audit.record("admin.page", entityType: "page", entityID: req.url.path, outcome: .denied, context: context, on: req.db)
            throw RoundsError.forbidden("administration")
        }
        return context
    }

    // MARK: Hospitals and departments

    @Sendable func hospitals(req: Request) async throws -> Response {
        let context = try await requireAdmin(req)
        let list = try await req.rounds.organisation.hospitals(context: context, on: req.db)
        return try await req.page("admin_hospitals", title: "admin_hospitals",
                                  data: HospitalsData(hospitals: list.map(HospitalDTO.init), canCreate: context.principal.canManageGroup),
                                  flash: okParam(req), error: errorParam(req))
    }

    @Sendable func createHospital(req: Request) async throws -> Response {
        try await form(req, back: "/admin/hospitals") {
            let h = try await req.rounds.organisation.createHospital(code: field(req, "code"), name: field(req, "name"),
                                                                     context: req.context(), on: req.db)
            return "/admin/hospitals/\(h.id!)?ok=1"
        }
    }

    @Sendable func hospital(req: Request) async throws -> Response {
        let context = try await requireAdmin(req)
        let id = try req.parameters.require("id")
        let detail = try await req.rounds.organisation.hospitalDetail(id: id, context: context, on: req.db)
        let hospital = detail.hospital, departments = detail.departments, bedCounts = detail.bedCounts
        let names = Dictionary(departments.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
        let t = req.rounds.catalogue.table(req.locale)
        let rows = departments.map {
            DepartmentRow(id: $0.id!, code: $0.code, name: $0.name, kind: t["kind_\($0.kind.rawValue)"] ?? $0.kind.rawValue,
                          isWard: $0.kind == .ward, parent: $0.parentID.flatMap { names[$0] } ?? "", beds: bedCounts[$0.id!] ?? 0)
        }
        let parents = departments.filter { $0.kind == .department }.map { Option(value: $0.id!, label: $0.name) }
        return try await req.page("admin_hospital", title: "admin_hospital",
                                  data: HospitalData(hospital: HospitalDTO(hospital), departments: rows, parents: parents,
                                                     canManage: context.principal.canManageOrganisation(hospitalID: id),
                                                     canSetDictation: context.principal.canAdministerConnectors(hospitalID: id)),
                                  flash: okParam(req), error: errorParam(req))
    }

    @Sendable func createDepartment(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        return try await form(req, back: "/admin/hospitals/\(id)") {
            guard let kind = DepartmentKind(rawValue: field(req, "kind")) else { throw RoundsError.validation("kind") }
            let parent = field(req, "parentId")
            _ = try await req.rounds.organisation.createDepartment(hospitalID: id, code: field(req, "code"), name: field(req, "name"),
                                                                   kind: kind, parentID: parent.isEmpty ? nil : parent,
                                                                   context: req.context(), on: req.db)
            return "/admin/hospitals/\(id)?ok=1"
        }
    }

    @Sendable func ward(req: Request) async throws -> Response {
        let context = try await requireAdmin(req)
        let id = try req.parameters.require("id")
        let org = req.rounds.organisation
        let ward = try await org.department(id: id, context: context, on: req.db)
        let beds = try await org.beds(wardID: id, context: context, on: req.db)
        let hospital = try await org.hospital(id: ward.hospitalID, context: context, on: req.db)
        return try await req.page("admin_ward", title: "admin_ward",
                                  data: WardData(ward: DepartmentDTO(ward), hospital: HospitalDTO(hospital), beds: beds.map(BedDTO.init),
                                                 canManage: context.principal.canManageOrganisation(hospitalID: ward.hospitalID)),
                                  flash: okParam(req), error: errorParam(req))
    }

    @Sendable func createBed(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        return try await form(req, back: "/admin/wards/\(id)") {
            _ = try await req.rounds.organisation.createBed(wardID: id, label: field(req, "label"), context: req.context(), on: req.db)
            return "/admin/wards/\(id)?ok=1"
        }
    }

    // MARK: Staff and roles

    @Sendable func staffList(req: Request) async throws -> Response {
        let context = try await requireAdmin(req)
        let directory = try await req.rounds.organisation.staffDirectory(context: context, on: req.db)
        let names = directory.departmentNames
        let locale = req.locale
        let rows = directory.staff.map { s in
            StaffRow(id: s.id!, username: s.username, name: s.displayName,
                     roles: (directory.roles[s.id!] ?? []).map { "\($0.role.label(locale)) · \(names[$0.departmentID] ?? "")" }.joined(separator: "，"),
                     groupAdmin: s.isSuperuser)
        }
        return try await req.page("admin_staff", title: "admin_staff", data: StaffListData(staff: rows),
                                  flash: okParam(req), error: errorParam(req))
    }

    @Sendable func createStaff(req: Request) async throws -> Response {
        try await form(req, back: "/admin/staff") {
            let employeeNo = field(req, "employeeNo")
            let s = try await req.rounds.organisation.createStaff(
                username: field(req, "username"), displayName: field(req, "displayName"), password: field(req, "password"),
                employeeNo: employeeNo.isEmpty ? nil : employeeNo, locale: RoundsCore.Locale(rawValue: field(req, "locale")) ?? .default,
                context: req.context(), on: req.db)
            return "/admin/staff/\(s.id!)?ok=1"
        }
    }

    @Sendable func staffMember(req: Request) async throws -> Response {
        let context = try await requireAdmin(req)
        let detail = try await req.rounds.organisation.staffMemberDetail(id: req.parameters.require("id"), context: context, on: req.db)
        let staff = detail.staff, roles = detail.roles, hospitalNames = detail.hospitalNames, deptNames = detail.departmentNames
        let locale = req.locale
        let manageable = detail.assignable
        let data = StaffMemberData(
            staff: StaffDTO(staff),
            roles: roles.map { RoleRow(id: $0.id!, role: $0.role.label(locale), department: deptNames[$0.departmentID] ?? "",
                                       hospital: hospitalNames[$0.hospitalID] ?? "",
                                       canRemove: context.principal.canManageOrganisation(hospitalID: $0.hospitalID)) },
            departments: manageable.map { Option(value: $0.id!, label: "\(hospitalNames[$0.hospitalID] ?? "") · \($0.name)") },
            roleOptions: Role.allCases.map { Option(value: $0.rawValue, label: $0.label(locale)) })
        return try await req.page("admin_staff_member", title: "admin_staff_member", data: data,
                                  flash: okParam(req), error: errorParam(req))
    }

    @Sendable func assignRole(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        return try await form(req, back: "/admin/staff/\(id)") {
            guard let role = Role(rawValue: field(req, "role")) else { throw RoundsError.validation("role") }
            _ = try await req.rounds.organisation.assignRole(staffID: id, departmentID: field(req, "departmentId"), role: role,
                                                             context: req.context(), on: req.db)
            return "/admin/staff/\(id)?ok=1"
        }
    }

    @Sendable func removeRole(req: Request) async throws -> Response {
        let id = try req.parameters.require("id")
        return try await form(req, back: "/admin/staff/\(id)") {
            try await req.rounds.organisation.removeRole(assignmentID: req.parameters.require("roleId"), context: req.context(), on: req.db)
            return "/admin/staff/\(id)?ok=1"
        }
    }

    @Sendable func roles(req: Request) async throws -> Response {
        _ = try await requireAdmin(req)
        let locale = req.locale
        let roles = Role.allCases.map {
            RoleInfo(key: $0.rawValue, label: $0.label(locale), clinical: $0.isClinical, wholeHospital: $0.seesWholeHospital,
                     organisation: $0.managesOrganisation, audit: $0.readsAudit)
        }
        return try await req.page("admin_roles", title: "admin_roles", data: RolesData(roles: roles))
    }

    // MARK: API tokens

    @Sendable func tokens(req: Request) async throws -> Response {
        try await tokensPage(req, newSecret: nil)
    }

    private func tokensPage(_ req: Request, newSecret: String?) async throws -> Response {
        let context = try await requireAdmin(req)
        let tokens = try await req.rounds.auth.listTokens(context: context, on: req.db)
        let hospitals = try await req.rounds.organisation.hospitals(context: context, on: req.db)
            .filter { context.principal.canManageTokens(hospitalID: $0.id) }
        let names = Dictionary(hospitals.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
        let t = req.rounds.catalogue.table(req.locale)
        let now = req.rounds.configuration.clock.now()
        let rows = tokens.map {
            TokenRow(id: $0.id!, name: $0.name, prefix: $0.prefix, scopes: Self.scopeWords($0.scopes, t),
                     hospital: $0.hospitalID.flatMap { names[$0] } ?? (t["all_hospitals"] ?? "*"),
                     createdAt: Formatting.dateTime($0.createdAt), lastUsedAt: Formatting.dateTime($0.lastUsedAt), revoked: $0.revokedAt != nil,
                     expires: $0.expiresAt.map { Formatting.day($0) } ?? (t["token_never_expires"] ?? ""),
                     expired: $0.expiresAt.map { $0 <= now } ?? false)
        }
        var options = hospitals.map { Option(value: $0.id!, label: $0.name) }
        if context.principal.isSuperuser { options.insert(Option(value: "", label: t["all_hospitals"] ?? "*"), at: 0) }
        let lifetimes = Self.tokenLifetimes.map { days in
            Option(value: String(days), label: days == 0 ? (t["token_never_expires"] ?? "") : (t["token_days"] ?? "%d").replacingOccurrences(of: "%d", with: String(days)))
        }
        return try await req.page("admin_tokens", title: "admin_tokens",
                                  data: TokensData(tokens: rows, hospitals: options,
                                                   scopes: TokenScope.allCases.map { Option(value: $0.rawValue, label: t["scope_\($0.rawValue)"] ?? $0.rawValue) },
                                                   lifetimes: lifetimes, newSecret: newSecret),
                                  flash: okParam(req), error: errorParam(req))
    }

    @Sendable func createToken(req: Request) async throws -> Response {
        do {
            let scopes = ((try? req.content.get([String].self, at: "scopes")) ?? [field(req, "scopes")]).compactMap(TokenScope.init(rawValue:))
            let hospital = field(req, "hospitalId")
            // A token lives 90 days unless the administrator chooses otherwise (0: never expires).
            let days = Int(field(req, "lifetimeDays")) ?? 90
            guard Self.tokenLifetimes.contains(days) else { throw RoundsError.validation("lifetimeDays: one of the offered lifetimes") }
            let expiresAt = days == 0 ? nil : req.rounds.configuration.clock.now().addingTimeInterval(TimeInterval(days) * 86_400)
            let issued = try await req.rounds.auth.createToken(name: field(req, "name"), scopes: scopes,
                                                               hospitalID: hospital.isEmpty ? nil : hospital, expiresAt: expiresAt,
                                                               context: req.context(), on: req.db)
            // The secret is shown on this answer only; it is not in the URL or any log.
            return try await tokensPage(req, newSecret: issued.secret)
        } catch let error as RoundsError {
            return req.redirect(to: "/admin/tokens", error: error)
        }
    }

    static let tokenLifetimes = [30, 90, 180, 365, 0]

    static func scopeWords(_ scopes: String, _ t: [String: String]) -> String {
        scopes.split(whereSeparator: { $0 == " " || $0 == "," }).map { t["scope_\($0)"] ?? String($0) }.joined(separator: "、")
    }

    /// Revoking cuts a system off at once: say which, and ask.
    @Sendable func confirmRevoke(req: Request) async throws -> Response {
        let context = try await requireAdmin(req)
        let id = try req.parameters.require("id")
        guard let token = try await req.rounds.auth.listTokens(context: context, on: req.db).first(where: { $0.id == id }) else {
            throw RoundsError.notFound("token", id: id)
        }
        let t = req.rounds.catalogue.table(req.locale)
        return try await req.page("admin_token_revoke", title: "token_revoke_title", data: RevokeData(
            id: id, name: token.name, prefix: token.prefix, scopes: Self.scopeWords(token.scopes, t), lastUsedAt: Formatting.dateTime(token.lastUsedAt)))
    }

    @Sendable func revokeToken(req: Request) async throws -> Response {
        guard field(req, "confirm") == "yes" else {
            return req.redirect(to: "/admin/tokens/\(try req.parameters.require("id"))/revoke")
        }
        return try await form(req, back: "/admin/tokens") {
            _ = try await req.rounds.auth.revokeToken(id: req.parameters.require("id"), context: req.context(), on: req.db)
            return "/admin/tokens?ok=1"
        }
    }
}
