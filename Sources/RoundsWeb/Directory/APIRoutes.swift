import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// `/api/v1`: the same resources as the web pages, as JSON, for integrations and scripts.
/// Handlers decode, call a service (which checks permission and audits) and map to a DTO.
struct APIRoutes {
    let api: APIBuilder

    func register() {
        registerMe()
        registerOrganisation()
        registerStaff()
        registerPatients()
        registerAudit()
        registerTokens()
    }

    private func registerMe() {
        api.on(.GET, "me", summary: "Who am I: roles or token scopes", tag: "auth", returns: MeDTO.self) { req in
            let principal = try req.context().principal
            return MeDTO(id: principal.id, kind: principal.actorKind, displayName: principal.displayName,
                         locale: principal.locale.rawValue,
                         roles: principal.assignments.map { RoleAssignmentDTO(id: "", role: $0.role.rawValue, departmentId: $0.departmentID, hospitalId: $0.hospitalID) },
                         scopes: principal.scopes.map { $0.map(\.rawValue).sorted() })
        }
        api.on(.GET, "me", "notices", summary: "My unread notices (e.g. a new administrator), newest first", tag: "auth",
               returns: NoticeDTO.self, array: true) { req in
            let locale = req.locale
            return try await req.rounds.organisation.notices(context: req.context(), on: req.db).map { NoticeDTO($0, locale: locale) }
        }
        api.on(.POST, "me", "notices", ":noticeId", "read", summary: "Mark one of my notices read", tag: "auth",
               returns: NoticeDTO.self) { req in
            let context = try req.context()
            let id = try req.parameters.require("noticeId")
            let notice = try await req.rounds.organisation.markNoticeRead(id, context: context, on: req.db)
            return NoticeDTO(notice, locale: req.locale)
        }
        api.on(.PUT, "me", "locale", summary: "Choose my UI language (zh-CN or en)", tag: "auth", body: SetLocaleBody.self, returns: MeDTO.self) { req in
            let body = try req.content.decode(SetLocaleBody.self)
            guard let locale = RoundsCore.Locale(rawValue: body.locale) else { throw RoundsError.validation("locale: zh-CN or en") }
            let context = try req.context()
            try await req.rounds.organisation.setLocale(locale, context: context, on: req.db)
            return MeDTO(id: context.principal.id, kind: "staff", displayName: context.principal.displayName, locale: locale.rawValue,
                         roles: [], scopes: nil)
        }
    }

    private func registerOrganisation() {
        let org = { @Sendable (req: Request) in req.rounds.organisation }
        api.on(.GET, "hospitals", summary: "Hospitals I may see", tag: "organisation", returns: HospitalDTO.self, array: true) { req in
            try await org(req).hospitals(context: req.context(), on: req.db).map(HospitalDTO.init)
        }
        api.on(.POST, "hospitals", summary: "Create a hospital (group administrators)", tag: "organisation",
               body: CreateHospitalBody.self, returns: HospitalDTO.self, status: 201) { req in
            let body = try req.content.decode(CreateHospitalBody.self)
            let hospital = try await org(req).createHospital(code: body.code, name: body.name, context: req.context(), on: req.db)
            return try await HospitalDTO(hospital).encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "hospitals", ":hospitalId", summary: "One hospital", tag: "organisation", returns: HospitalDTO.self) { req in
            HospitalDTO(try await org(req).hospital(id: req.parameters.require("hospitalId"), context: req.context(), on: req.db))
        }
        api.on(.GET, "hospitals", ":hospitalId", "departments", summary: "Departments and wards of a hospital", tag: "organisation",
               returns: DepartmentDTO.self, array: true) { req in
            try await org(req).departments(hospitalID: req.parameters.require("hospitalId"), context: req.context(), on: req.db)
                .map(DepartmentDTO.init)
        }
        api.on(.POST, "hospitals", ":hospitalId", "departments", summary: "Create a department or ward", tag: "organisation",
               body: CreateDepartmentBody.self, returns: DepartmentDTO.self, status: 201) { req in
            let body = try req.content.decode(CreateDepartmentBody.self)
            let d = try await org(req).createDepartment(hospitalID: req.parameters.require("hospitalId"), code: body.code, name: body.name,
                                                        kind: body.kind, parentID: body.parentId, context: req.context(), on: req.db)
            return try await DepartmentDTO(d).encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "departments", ":departmentId", summary: "One department or ward", tag: "organisation", returns: DepartmentDTO.self) { req in
            DepartmentDTO(try await org(req).department(id: req.parameters.require("departmentId"), context: req.context(), on: req.db))
        }
        api.on(.GET, "wards", ":wardId", "beds", summary: "Beds of a ward", tag: "organisation", returns: BedDTO.self, array: true) { req in
            try await org(req).beds(wardID: req.parameters.require("wardId"), context: req.context(), on: req.db).map(BedDTO.init)
        }
        api.on(.POST, "wards", ":wardId", "beds", summary: "Add a bed to a ward", tag: "organisation",
               body: CreateBedBody.self, returns: BedDTO.self, status: 201) { req in
            let body = try req.content.decode(CreateBedBody.self)
            let bed = try await org(req).createBed(wardID: req.parameters.require("wardId"), label: body.label, context: req.context(), on: req.db)
            return try await BedDTO(bed).encodeResponse(status: .created, for: req)
        }
    }

    private func registerStaff() {
        let org = { @Sendable (req: Request) in req.rounds.organisation }
        api.on(.GET, "staff", summary: "Staff of the hospitals I administer", tag: "staff", returns: StaffDTO.self, array: true) { req in
            try await org(req).staff(context: req.context(), on: req.db).map { StaffDTO($0) }
        }
        api.on(.POST, "staff", summary: "Create a staff account", tag: "staff", body: CreateStaffBody.self, returns: StaffDTO.self, status: 201) { req in
            let body = try req.content.decode(CreateStaffBody.self)
            let locale = try body.locale.map { tag in
                guard let l = RoundsCore.Locale(rawValue: tag) else { throw RoundsError.validation("locale: zh-CN or en") }
                return l
            } ?? .default
            let staff = try await org(req).createStaff(username: body.username, displayName: body.displayName, password: body.password,
                                                       employeeNo: body.employeeNo, locale: locale, superuser: body.isGroupAdministrator ?? false,
                                                       context: req.context(), on: req.db)
            return try await StaffDTO(staff, roles: []).encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "staff", ":staffId", summary: "One staff member with roles", tag: "staff", returns: StaffDTO.self) { req in
            let (staff, roles) = try await org(req).staffMember(id: req.parameters.require("staffId"), context: req.context(), on: req.db)
            return StaffDTO(staff, roles: roles)
        }
        api.on(.PUT, "staff", ":staffId", "contact", summary: "Set the mobile number and e-mail for outside notices",
               tag: "staff", body: StaffContactBody.self, returns: StaffDTO.self) { req in
            let body = try req.content.decode(StaffContactBody.self)
            return StaffDTO(try await org(req).setContact(staffID: req.parameters.require("staffId"), mobile: body.mobile, email: body.email,
                                                          context: req.context(), on: req.db))
        }
        api.on(.POST, "staff", ":staffId", "roles", summary: "Give a role in a department or ward", tag: "staff",
               body: AssignRoleBody.self, returns: RoleAssignmentDTO.self, status: 201) { req in
            let body = try req.content.decode(AssignRoleBody.self)
            let role = try await org(req).assignRole(staffID: req.parameters.require("staffId"), departmentID: body.departmentId,
                                                     role: body.role, context: req.context(), on: req.db)
            return try await RoleAssignmentDTO(role).encodeResponse(status: .created, for: req)
        }
        api.on(.DELETE, "staff", ":staffId", "roles", ":roleId", summary: "Take a role away", tag: "staff", status: 204) { req in
            try await org(req).removeRole(assignmentID: req.parameters.require("roleId"), context: req.context(), on: req.db)
            return HTTPStatus.noContent
        }
    }

    private func registerPatients() {
        let patients = { @Sendable (req: Request) in req.rounds.patients }
        api.on(.GET, "wards", ":wardId", "patients", summary: "Admitted patients of a ward, by bed", tag: "patients",
               returns: WardPatientDTO.self, array: true) { req in
            let occupants = try await patients(req).occupants(wardID: req.parameters.require("wardId"), context: req.context(), on: req.db)
            return occupants.map { o in
                WardPatientDTO(patient: PatientDTO(o.patient), encounter: EncounterDTO(o.encounter, bed: o.bed))
            }
        }
        api.on(.GET, "patients", ":patientId", summary: "One patient with every stay", tag: "patients", returns: PatientDTO.self) { req in
            let r = try await patients(req).record(patientID: req.parameters.require("patientId"), context: req.context(), on: req.db)
            return PatientDTO(r.patient, encounters: r.encounters.map {
                EncounterDTO($0, ward: r.wards[$0.wardID], bed: $0.bedID.flatMap { r.beds[$0] }, staff: r.staff)
            })
        }
        api.on(.POST, "admissions", summary: "Admit a patient (registers the patient by MRN if new)", tag: "patients",
               body: AdmitBody.self, returns: PatientDTO.self, status: 201) { req in
            let b = try req.content.decode(AdmitBody.self)
            let (patient, encounter) = try await patients(req).admit(
                .init(mrn: b.mrn, name: b.name, gender: b.gender, birthDate: b.birthDate, allergies: b.allergies, wardID: b.wardId,
                      bedID: b.bedId, attendingID: b.attendingId, nurseID: b.nurseId, visitNumber: b.visitNumber),
                context: req.context(), on: req.db)
            return try await PatientDTO(patient, encounters: [EncounterDTO(encounter)]).encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "encounters", ":encounterId", "discharge", summary: "Discharge a patient", tag: "patients", returns: EncounterDTO.self) { req in
            EncounterDTO(try await patients(req).discharge(encounterID: req.parameters.require("encounterId"), context: req.context(), on: req.db))
        }
    }

    private func registerAudit() {
        let query = ["actorId", "action", "entityType", "entityId", "patientId", "outcome", "from", "to", "limit", "before"]
        api.on(.GET, "audit", summary: "Browse the audit log (newest first)", tag: "audit", returns: AuditEventDTO.self, array: true, query: query) { req in
            try await req.rounds.audit.search(AuditFilterQuery.parse(req), context: req.context(), on: req.db).map(AuditEventDTO.init)
        }
        api.on(.GET, "audit.csv", summary: "Export the audit log as CSV", tag: "audit", query: query, contentType: "text/csv") { req in
            var filter = try AuditFilterQuery.parse(req)
            filter.limit = min(req.query[Int.self, at: "limit"] ?? 10_000, 10_000)
            let rows = try await req.rounds.audit.search(filter, context: req.context(), on: req.db)
            return AuditFilterQuery.csvResponse(rows)
        }
    }

    private func registerTokens() {
        let auth = { @Sendable (req: Request) in req.rounds.auth }
        api.on(.GET, "tokens", summary: "API tokens (administrators)", tag: "tokens", returns: TokenDTO.self, array: true) { req in
            try await auth(req).listTokens(context: req.context(), on: req.db).map { TokenDTO($0) }
        }
        api.on(.POST, "tokens", summary: "Create an API token; the secret is in this answer only", tag: "tokens",
               body: CreateTokenBody.self, returns: TokenDTO.self, status: 201) { req in
            let b = try req.content.decode(CreateTokenBody.self)
            let issued = try await auth(req).createToken(name: b.name, scopes: b.scopes, hospitalID: b.hospitalId, expiresAt: b.expiresAt,
                                                         context: req.context(), on: req.db)
            return try await TokenDTO(issued.token, secret: issued.secret).encodeResponse(status: .created, for: req)
        }
        api.on(.DELETE, "tokens", ":tokenId", summary: "Revoke an API token", tag: "tokens", returns: TokenDTO.self) { req in
            TokenDTO(try await auth(req).revokeToken(id: req.parameters.require("tokenId"), context: req.context(), on: req.db))
        }
    }
}

/// Audit filters from the query string, shared by the API and the audit page.
enum AuditFilterQuery {
    static func parse(_ req: Request) throws -> AuditLog.Filter {
        func text(_ key: String) -> String? {
            guard let v = req.query[String.self, at: key]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        func date(_ key: String) throws -> Date? { try Self.date(req, key) }
        var limit = 100
        if let raw = text("limit") {
            guard let n = Int(raw), n > 0 else { throw RoundsError.badRequest("limit: a positive whole number") }
            limit = min(n, 1000)
        }
        return AuditLog.Filter(actorID: text("actorId"), action: text("action"), entityType: text("entityType"),
                               entityID: text("entityId"), patientID: text("patientId"), outcome: text("outcome"),
                               from: try date("from"), to: try date("to"), limit: limit, beforeID: text("before"))
    }

    /// A date from the query string: ISO 8601, or a plain day from a date picker (midnight in
    /// the hospital's time zone; for `to`, the end of that day).
    static func date(_ req: Request, _ key: String) throws -> Date? {
        guard let v = req.query[String.self, at: key]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
        if let d = ISO8601DateFormatter().date(from: v) { return d }
        let f = DateFormatter()
        f.locale = Foundation.Locale(identifier: "en_US_POSIX")
        f.timeZone = Formatting.hospitalTimeZone
        f.dateFormat = "yyyy-MM-dd"
        guard let d = f.date(from: v) else { throw RoundsError.badRequest("\(key): an ISO 8601 date or YYYY-MM-DD") }
        return key == "to" ? d.addingTimeInterval(86_400) : d
    }

    static func csvResponse(_ rows: [AuditEvent], style: CSVStyle = .machine) -> Response {
        csv(AuditLog.csv(rows, style: style), filename: "rounds-audit.csv")
    }

    /// A CSV download that no cache keeps.
    static func csv(_ text: String, filename: String) -> Response {
        let response = Response(status: .ok, body: .init(string: text))
        response.headers.contentType = HTTPMediaType(type: "text", subType: "csv", parameters: ["charset": "utf-8"])
        response.headers.replaceOrAdd(name: .contentDisposition, value: "attachment; filename=\"\(filename)\"")
        response.headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        return response
    }
}

struct NoticeDTO: APISchema {
    var id: String
    /// administrator_granted or administrator_removed.
    var kind: String
    var text: String
    var subjectId: String?
    var createdAt: Date
    var readAt: Date?
    static let sample = NoticeDTO(id: "…", kind: "administrator_granted", text: "系统管理员 授予 罗杰 华康医院（东院） 管理员角色",
                                  subjectId: "…", createdAt: Date(timeIntervalSince1970: 0), readAt: nil)
}

extension NoticeDTO {
    init(_ n: StaffNotice, locale: RoundsCore.Locale) {
        self.init(id: n.id ?? "", kind: n.kind, text: locale == .en ? n.textEN : n.textZH, subjectId: n.subjectID,
                  createdAt: n.createdAt, readAt: n.readAt)
    }
}
