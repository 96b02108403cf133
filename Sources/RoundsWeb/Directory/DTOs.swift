import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import Vapor

/// Every JSON shape the API answers with. Each has a `sample`, from which the OpenAPI
/// document derives its schema, so the document cannot drift from the types.
protocol APISchema: Content {
    static var sample: Self { get }
    /// The values a plain-string property takes, for the API document (typed enums list themselves).
    static var enums: [String: [String]] { get }
}

extension APISchema {
    static var enums: [String: [String]] { [:] }
}

struct HospitalDTO: APISchema {
    var id: String
    var code: String
    var name: String

    init(_ h: Hospital) { id = h.id ?? ""; code = h.code; name = h.name }
    init(id: String, code: String, name: String) { self.id = id; self.code = code; self.name = name }
    static let sample = HospitalDTO(id: "0190b2c4-...", code: "HK01", name: "华康医院（总院）")
}

struct DepartmentDTO: APISchema {
    var id: String
    var hospitalId: String
    var parentId: String?
    var code: String
    var name: String
    var kind: String

    init(_ d: Department) {
        id = d.id ?? ""; hospitalId = d.hospitalID; parentId = d.parentID; code = d.code; name = d.name; kind = d.kind.rawValue
    }
    init(id: String, hospitalId: String, parentId: String?, code: String, name: String, kind: String) {
        self.id = id; self.hospitalId = hospitalId; self.parentId = parentId; self.code = code; self.name = name; self.kind = kind
    }
    static let enums = ["kind": DepartmentKind.apiValues]
    static let sample = DepartmentDTO(id: "…", hospitalId: "…", parentId: "…", code: "LUNG", name: "肺癌中心", kind: "ward")
}

struct BedDTO: APISchema {
    var id: String
    var wardId: String
    var label: String

    init(_ b: Bed) { id = b.id ?? ""; wardId = b.wardID; label = b.label }
    init(id: String, wardId: String, label: String) { self.id = id; self.wardId = wardId; self.label = label }
    static let sample = BedDTO(id: "…", wardId: "…", label: "12")
}

struct RoleAssignmentDTO: APISchema {
    var id: String
    var role: String
    var departmentId: String
    var hospitalId: String

    init(_ r: StaffRole) { id = r.id ?? ""; role = r.role.rawValue; departmentId = r.departmentID; hospitalId = r.hospitalID }
    init(id: String, role: String, departmentId: String, hospitalId: String) {
        self.id = id; self.role = role; self.departmentId = departmentId; self.hospitalId = hospitalId
    }
    static let sample = RoleAssignmentDTO(id: "…", role: "nurse", departmentId: "…", hospitalId: "…")
}

struct StaffContactBody: APISchema {
    var mobile: String?
    var email: String?
    static let sample = StaffContactBody(mobile: "13800001234", email: "wang.fang@hospital.example")
}

struct StaffDTO: APISchema {
    var id: String
    var username: String
    var displayName: String
    var employeeNo: String?
    var locale: String
    var isGroupAdministrator: Bool
    var roles: [RoleAssignmentDTO]?
    /// For critical-value notices outside Rounds (SMS, WeCom, e-mail).
    var mobile: String?
    var email: String?

    init(_ s: Staff, roles: [StaffRole]? = nil) {
        id = s.id ?? ""; username = s.username; displayName = s.displayName; employeeNo = s.employeeNo
        locale = s.locale; isGroupAdministrator = s.isSuperuser; self.roles = roles?.map(RoleAssignmentDTO.init)
        mobile = s.mobile; email = s.email
    }
    init(id: String, username: String, displayName: String, employeeNo: String?, locale: String,
         isGroupAdministrator: Bool, roles: [RoleAssignmentDTO]?) {
        self.id = id; self.username = username; self.displayName = displayName; self.employeeNo = employeeNo
        self.locale = locale; self.isGroupAdministrator = isGroupAdministrator; self.roles = roles
    }
    static let sample: StaffDTO = {
        var dto = StaffDTO(id: "…", username: "wang.fang", displayName: "王芳", employeeNo: "N0012", locale: "zh-CN",
                           isGroupAdministrator: false, roles: [.sample])
        dto.mobile = "13800001234"
        dto.email = "wang.fang@hospital.example"
        return dto
    }()
}

struct MeDTO: APISchema {
    static let enums = ["kind": ["staff", "token"], "scopes": TokenScope.apiValues, "locale": RoundsCore.Locale.apiValues]
    var id: String
    var kind: String
    var displayName: String
    var locale: String
    var roles: [RoleAssignmentDTO]
    var scopes: [String]?

    static let sample = MeDTO(id: "…", kind: "staff", displayName: "王芳", locale: "zh-CN", roles: [.sample], scopes: ["patients:read"])
}

struct EncounterDTO: APISchema {
    static let enums = ["status": ["active", "discharged", "cancelled"]]
    var id: String
    var patientId: String
    var visitNumber: String?
    var status: String
    var wardId: String
    var wardName: String?
    var bedId: String?
    var bedLabel: String?
    var attendingId: String?
    var attendingName: String?
    var nurseId: String?
    var nurseName: String?
    var admittedAt: Date
    var dischargedAt: Date?

    init(_ e: Encounter, ward: Department? = nil, bed: Bed? = nil, staff: [String: Staff] = [:]) {
        id = e.id ?? ""; patientId = e.patientID; visitNumber = e.visitNumber; status = e.status.rawValue
        wardId = e.wardID; wardName = ward?.name; bedId = e.bedID; bedLabel = bed?.label
        attendingId = e.attendingID; attendingName = e.attendingID.flatMap { staff[$0]?.displayName }
        nurseId = e.nurseID; nurseName = e.nurseID.flatMap { staff[$0]?.displayName }
        admittedAt = e.admittedAt; dischargedAt = e.dischargedAt
    }
    static let sample: EncounterDTO = {
        let e = Encounter(id: "…", patientID: "…", hospitalID: "…", visitNumber: "V20261121001", wardID: "…", bedID: "…",
                          attendingID: "…", nurseID: "…", admittedAt: Date(timeIntervalSince1970: 0))
        e.dischargedAt = Date(timeIntervalSince1970: 0)
        var dto = EncounterDTO(e)
        dto.wardName = "肺癌中心"; dto.bedLabel = "12"; dto.attendingName = "李明"; dto.nurseName = "王芳"
        return dto
    }()
}

struct PatientDTO: APISchema {
    var id: String
    var hospitalId: String
    var mrn: String
    var name: String
    var gender: String
    var birthDate: String?
    var allergies: String?
    var encounters: [EncounterDTO]?

    init(_ p: Patient, encounters: [EncounterDTO]? = nil) {
        id = p.id ?? ""; hospitalId = p.hospitalID; mrn = p.mrn; name = p.name; gender = p.gender.rawValue
        birthDate = p.birthDate; allergies = p.allergies; self.encounters = encounters
    }
    static let sample = PatientDTO(Patient(id: "…", hospitalID: "…", mrn: "MRN10001", name: "王建国", gender: .male,
                                           birthDate: "1965-03-07", allergies: "青霉素", createdAt: Date()), encounters: [.sample])
}

struct WardPatientDTO: APISchema {
    var patient: PatientDTO
    var encounter: EncounterDTO

    static let sample = WardPatientDTO(patient: .sample, encounter: .sample)
}

struct AuditEventDTO: APISchema {
    var id: String
    var at: Date
    var actorKind: String
    var actorId: String?
    var actorName: String
    var action: String
    var entityType: String
    var entityId: String?
    var patientId: String?
    var hospitalId: String?
    var clientAddress: String?
    var outcome: String
    var detail: String?

    init(_ a: AuditEvent) {
        id = a.id ?? ""; at = a.at; actorKind = a.actorKind; actorId = a.actorID; actorName = a.actorName
        action = a.action; entityType = a.entityType; entityId = a.entityID; patientId = a.patientID
        hospitalId = a.hospitalID; clientAddress = a.clientAddress; outcome = a.outcome; detail = a.detail
    }
    static let sample: AuditEventDTO = {
        let a = AuditEvent()
        a.id = "…"; a.at = Date(timeIntervalSince1970: 0); a.actorKind = "staff"; a.actorID = "…"; a.actorName = "王芳"
        a.action = "patient.read"; a.entityType = "patient"; a.entityID = "…"; a.patientID = "…"; a.hospitalID = "…"
        a.clientAddress = "10.0.0.8"; a.outcome = "success"; a.detail = "…"
        return AuditEventDTO(a)
    }()
}

struct TokenDTO: APISchema {
    var id: String
    var name: String
    var prefix: String
    var scopes: [String]
    var hospitalId: String?
    var createdAt: Date
    var expiresAt: Date?
    var revokedAt: Date?
    var lastUsedAt: Date?
    /// Only in the answer to the creation request; never again.
    var secret: String?

    init(_ t: APIToken, secret: String? = nil) {
        id = t.id ?? ""; name = t.name; prefix = t.prefix; scopes = t.scopeSet.map(\.rawValue).sorted()
        hospitalId = t.hospitalID; createdAt = t.createdAt; expiresAt = t.expiresAt; revokedAt = t.revokedAt
        lastUsedAt = t.lastUsedAt; self.secret = secret
    }
    static let sample: TokenDTO = {
        let t = APIToken(id: "…", name: "HIS 接口", tokenHash: "", prefix: "rnd_AbCdEf", scopes: [.patientsRead],
                         hospitalID: "…", createdBy: "…", createdAt: Date(timeIntervalSince1970: 0), expiresAt: Date(timeIntervalSince1970: 0))
        t.revokedAt = Date(timeIntervalSince1970: 0); t.lastUsedAt = Date(timeIntervalSince1970: 0)
        return TokenDTO(t, secret: "rnd_…")
    }()
}

struct ProblemDTO: APISchema {
    var code: String
    var message: String
    var detail: String?
    static let sample = ProblemDTO(code: "not_found", message: "找不到该患者", detail: "patient …")
}

// MARK: Request bodies

struct CreateHospitalBody: APISchema {
    var code: String
    var name: String
    static let sample = CreateHospitalBody(code: "HK03", name: "华康医院西院")
}

struct CreateDepartmentBody: APISchema {
    var code: String
    var name: String
    var kind: DepartmentKind
    var parentId: String?
    static let sample = CreateDepartmentBody(code: "LUNG", name: "肺癌中心", kind: .ward, parentId: "…")
}

struct CreateBedBody: APISchema {
    var label: String
    static let sample = CreateBedBody(label: "13")
}

struct CreateStaffBody: APISchema {
    var username: String
    var displayName: String
    var password: String
    var employeeNo: String?
    var locale: String?
    var isGroupAdministrator: Bool?
    static let sample = CreateStaffBody(username: "qian.yu", displayName: "钱玉", password: "••••••••", employeeNo: "N0100",
                                        locale: "zh-CN", isGroupAdministrator: false)
}

struct AssignRoleBody: APISchema {
    var departmentId: String
    var role: Role
    static let sample = AssignRoleBody(departmentId: "…", role: .nurse)
}

struct AdmitBody: APISchema {
    var mrn: String
    var name: String
    var gender: Gender
    var birthDate: String?
    var allergies: String?
    var wardId: String
    var bedId: String?
    var attendingId: String?
    var nurseId: String?
    var visitNumber: String?
    static let sample = AdmitBody(mrn: "MRN10001", name: "王建国", gender: .male, birthDate: "1965-03-07", allergies: "青霉素",
                                  wardId: "…", bedId: "…", attendingId: "…", nurseId: "…", visitNumber: "V20261121001")
}

struct CreateTokenBody: APISchema {
    var name: String
    var scopes: [TokenScope]
    var hospitalId: String?
    var expiresAt: Date?
    static let sample = CreateTokenBody(name: "HIS 接口", scopes: [.patientsRead, .patientsWrite], hospitalId: "…",
                                        expiresAt: Date(timeIntervalSince1970: 0))
}

struct SetLocaleBody: APISchema {
    var locale: String
    static let sample = SetLocaleBody(locale: "en")
}
