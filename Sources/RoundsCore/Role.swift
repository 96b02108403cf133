/// What a person does in a department or ward. A person may hold several roles in several
/// departments and hospitals; permissions follow from the roles, checked on the server.
public enum Role: String, Sendable, CaseIterable, Codable {
    case doctor
    case nurse
    case headNurse = "head_nurse"
    case consultant
    case medicalAffairs = "medical_affairs"
    case qualityControl = "quality_control"
    case it
    case administrator
    /// Laboratory, imaging and pathology staff (医技): report critical values, see no ward.
    case laboratory

    /// Roles that care for the patients of the ward or department they are assigned to.
    public var isClinical: Bool {
        switch self {
        case .doctor, .nurse, .headNurse, .consultant: true
        default: false
        }
    }

    /// Roles whose duties cover every patient of their hospital (oversight, not bedside care).
    public var seesWholeHospital: Bool {
        switch self {
        case .medicalAffairs, .qualityControl, .administrator: true
        default: false
        }
    }

    /// May manage hospitals' departments, wards, beds, staff and API tokens.
    public var managesOrganisation: Bool {
        self == .administrator || self == .it
    }

    /// May browse and export the audit log of their hospital.
    public var readsAudit: Bool {
        self == .administrator || self == .qualityControl
    }

    public var labelZH: String {
        switch self {
        case .doctor: "医生"
        case .nurse: "护士"
        case .headNurse: "护士长"
        case .consultant: "会诊医生"
        case .medicalAffairs: "医务处"
        case .qualityControl: "质控"
        case .it: "信息科"
        case .administrator: "管理员"
        case .laboratory: "医技（检验/影像/病理）"
        }
    }

    public var labelEN: String {
        switch self {
        case .doctor: "Doctor"
        case .nurse: "Nurse"
        case .headNurse: "Head nurse"
        case .consultant: "Consultant"
        case .medicalAffairs: "Medical affairs"
        case .qualityControl: "Quality control"
        case .it: "IT"
        case .administrator: "Administrator"
        case .laboratory: "Laboratory / imaging"
        }
    }

    public func label(_ locale: Locale) -> String { locale == .en ? labelEN : labelZH }
}

/// What an API token may do. Tokens are for systems, not people, so they carry scopes instead
/// of roles, and may be limited to one hospital.
public enum TokenScope: String, Sendable, CaseIterable, Codable {
    case patientsRead = "patients:read"
    case patientsWrite = "patients:write"
    case organisationRead = "organisation:read"
    case organisationWrite = "organisation:write"
    case auditRead = "audit:read"
    case bot = "bot"
    case integration = "integration"
    case tablesRead = "tables:read"
    case tablesWrite = "tables:write"
}

public enum DepartmentKind: String, Sendable, CaseIterable, Codable {
    case department
    case ward
}

public enum Gender: String, Sendable, CaseIterable, Codable {
    case male = "M"
    case female = "F"
    case other = "O"
    case unknown = "U"
}

public enum EncounterStatus: String, Sendable, Codable {
    case active
    case discharged
    /// Admission cancelled by the HIS (ADT^A11): the stay never happened.
    case cancelled
}
