/// Who is asking: a signed-in person with role assignments, or a system holding an API token.
/// All permission decisions are made here, from data loaded by the store, so the rules can be
/// read in one place and tested without HTTP or a database.
public struct Principal: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case staff
        case token
    }

    /// One role held in one department or ward.
    public struct Assignment: Sendable, Equatable, Hashable {
        public var role: Role
        public var departmentID: String
        public var hospitalID: String
        public init(role: Role, departmentID: String, hospitalID: String) {
            self.role = role
            self.departmentID = departmentID
            self.hospitalID = hospitalID
        }
    }

    /// Where a ward sits, as far as permissions care.
    public struct WardRef: Sendable, Equatable {
        public var id: String
        public var parentDepartmentID: String?
        public var hospitalID: String
        public init(id: String, parentDepartmentID: String?, hospitalID: String) {
            self.id = id
            self.parentDepartmentID = parentDepartmentID
            self.hospitalID = hospitalID
        }
    }

    public var kind: Kind
    public var id: String
    public var displayName: String
    public var isSuperuser: Bool
    public var assignments: [Assignment]
    /// Scopes of an API token; nil for people.
    public var scopes: Set<TokenScope>?
    /// A token may be limited to one hospital; nil means the whole group.
    public var tokenHospitalID: String?
    public var locale: Locale

    public init(kind: Kind, id: String, displayName: String, isSuperuser: Bool = false,
                assignments: [Assignment] = [], scopes: Set<TokenScope>? = nil,
                tokenHospitalID: String? = nil, locale: Locale = .default) {
        self.kind = kind
        self.id = id
        self.displayName = displayName
        self.isSuperuser = isSuperuser
        self.assignments = assignments
        self.scopes = scopes
        self.tokenHospitalID = tokenHospitalID
        self.locale = locale
    }

    /// For audit rows: "staff" or "token", and the id.
    public var actorKind: String { kind == .staff ? "staff" : "token" }

    public func hasScope(_ scope: TokenScope) -> Bool {
        scopes?.contains(scope) ?? false
    }

    /// A bot (token with the `bot` scope) may post to groups of its hospital (or any, if unscoped).
    public func isBot(for hospitalID: String) -> Bool {
        kind == .token && hasScope(.bot) && tokenCovers(hospitalID: hospitalID)
    }

    private func tokenCovers(hospitalID: String) -> Bool {
        tokenHospitalID == nil || tokenHospitalID == hospitalID
    }

    // MARK: Patients

    /// Oversight roles, group administrators and patient-scoped tokens see every patient of a hospital.
    public func seesAllPatients(ofHospital hospitalID: String) -> Bool {
        switch kind {
        case .token:
            return (hasScope(.patientsRead) || hasScope(.patientsWrite)) && tokenCovers(hospitalID: hospitalID)
        case .staff:
            return isSuperuser || assignments.contains { $0.role.seesWholeHospital && $0.hospitalID == hospitalID }
        }
    }

    /// Clinical staff see the patients of the wards (or the wards' departments) they work in.
    public func canViewPatients(in ward: WardRef) -> Bool {
        seesAllPatients(ofHospital: ward.hospitalID) || caresForPatients(in: ward)
    }

    /// Cares for the ward's patients at the bedside: a clinical role on the ward or its
    /// department. Seeing every patient of the hospital (oversight) is not caring for them.
    public func caresForPatients(in ward: WardRef) -> Bool {
        kind == .staff && assignments.contains { a in
            a.role.isClinical && (a.departmentID == ward.id || a.departmentID == ward.parentDepartmentID)
        }
    }

    /// Admitting, updating and discharging patients: clinical roles on the ward, or a token
    /// with patients:write (the HIS).
    public func canWritePatients(in ward: WardRef) -> Bool {
        switch kind {
        case .token:
            return hasScope(.patientsWrite) && tokenCovers(hospitalID: ward.hospitalID)
        case .staff:
            if isSuperuser { return true }
            return assignments.contains { a in
                (a.role == .administrator && a.hospitalID == ward.hospitalID)
                    || (a.role.isClinical && (a.departmentID == ward.id || a.departmentID == ward.parentDepartmentID))
            }
        }
    }

    // MARK: Organisation

    public func canReadOrganisation(hospitalID: String) -> Bool {
        switch kind {
        case .token:
            return (hasScope(.organisationRead) || hasScope(.organisationWrite)) && tokenCovers(hospitalID: hospitalID)
        case .staff:
            // Every member of staff may see the structure of the hospitals they work in.
            return isSuperuser || assignments.contains { $0.hospitalID == hospitalID }
        }
    }

    public func canManageOrganisation(hospitalID: String) -> Bool {
        switch kind {
        case .token:
            return hasScope(.organisationWrite) && tokenCovers(hospitalID: hospitalID)
        case .staff:
            return isSuperuser || assignments.contains { $0.role.managesOrganisation && $0.hospitalID == hospitalID }
        }
    }

    /// Giving (or taking away) `role` in a hospital to the staff member `staffID`. Nobody changes
    /// their own roles; administrators give every role in their hospitals; IT gives at most IT
    /// and laboratory roles (clinical, oversight and administrator roles open patient data);
    /// an `organisation:write` token (the HR system) gives every role but administrator.
    public func canGrant(_ role: Role, hospitalID: String, to staffID: String) -> Bool {
        switch kind {
        case .token:
            return hasScope(.organisationWrite) && tokenCovers(hospitalID: hospitalID) && role != .administrator
        case .staff:
            guard staffID != id else { return false }
            if isSuperuser { return true }
            return assignments.contains { a in
                a.hospitalID == hospitalID && (a.role == .administrator || (a.role == .it && (role == .it || role == .laboratory)))
            }
        }
    }

    /// Alert connectors send patient data out of Rounds (Feishu, WeCom, SMS, e-mail, the LIS):
    /// set up by the hospital's administrators, not IT.
    public func canAdministerConnectors(hospitalID: String) -> Bool {
        kind == .staff && (isSuperuser || assignments.contains { $0.role == .administrator && $0.hospitalID == hospitalID })
    }

    /// Hospitals whose connectors this principal administers; nil means all.
    public var connectorHospitalIDs: Set<String>? {
        if isSuperuser { return nil }
        return Set(assignments.filter { $0.role == .administrator }.map(\.hospitalID))
    }

    /// Editing who joins a ward's patient groups: its head nurse, or an administrator of its
    /// hospital (not IT: a rule puts people into every new patient group of the ward).
    public func canEditGroupRules(in ward: WardRef) -> Bool {
        guard kind == .staff else { return false }
        return isSuperuser || assignments.contains { a in
            (a.role == .headNurse && a.departmentID == ward.id) || (a.role == .administrator && a.hospitalID == ward.hospitalID)
        }
    }

    /// Creating hospitals and group-wide settings is for group administrators only.
    public var canManageGroup: Bool {
        kind == .staff && isSuperuser
    }

    public func canReadAudit(hospitalID: String?) -> Bool {
        switch kind {
        case .token:
            return hasScope(.auditRead) && (hospitalID.map(tokenCovers(hospitalID:)) ?? (tokenHospitalID == nil))
        case .staff:
            if isSuperuser { return true }
            guard let hospitalID else { return false }
            return assignments.contains { $0.role.readsAudit && $0.hospitalID == hospitalID }
        }
    }

    /// Hospitals whose audit rows this principal may browse; nil means all.
    public var auditHospitalIDs: Set<String>? {
        switch kind {
        case .token:
            guard hasScope(.auditRead) else { return [] }
            return tokenHospitalID.map { [$0] }
        case .staff:
            if isSuperuser { return nil }
            return Set(assignments.filter { $0.role.readsAudit }.map(\.hospitalID))
        }
    }

    /// API tokens are handed out by administrators, within their own hospitals.
    public func canManageTokens(hospitalID: String?) -> Bool {
        guard kind == .staff else { return false }
        if isSuperuser { return true }
        guard let hospitalID else { return false }
        return assignments.contains { $0.role == .administrator && $0.hospitalID == hospitalID }
    }

    public var administeredHospitalIDs: Set<String>? {
        if isSuperuser { return nil }
        return Set(assignments.filter { $0.role.managesOrganisation }.map(\.hospitalID))
    }

    /// The HL7 message store and outbound queue: IT and administrators, or an integration token.
    public var canUseIntegration: Bool {
        switch kind {
        case .token: return hasScope(.integration)
        case .staff: return isSuperuser || assignments.contains { $0.role.managesOrganisation }
        }
    }

    /// The outbound HL7 queue serves the whole installation (its rows belong to no one hospital,
    /// and it sends patient data to the hosts it names): group administrators, or an
    /// integration token not limited to one hospital.
    public var managesOutboundHL7: Bool {
        switch kind {
        case .token: return hasScope(.integration) && tokenHospitalID == nil
        case .staff: return isSuperuser
        }
    }

    /// Hospitals whose messages this principal sees in the message store; nil means all.
    public var integrationHospitalIDs: Set<String>? {
        switch kind {
        case .token: return tokenHospitalID.map { [$0] }
        case .staff: return administeredHospitalIDs
        }
    }

    // MARK: Nursing

    /// Charting nursing assessments and care plans: the ward's nurses and head nurses (doctors
    /// see them read-only through `canViewPatients`).
    public func canChartNursing(in ward: WardRef) -> Bool {
        kind == .staff && assignments.contains { a in
            (a.role == .nurse || a.role == .headNurse) && (a.departmentID == ward.id || a.departmentID == ward.parentDepartmentID)
        }
    }

    // MARK: Ward-round notes

    /// Writing and signing ward-round notes: the doctors (and consultants) of the ward or its
    /// department. Nurses and head nurses read them through `canViewPatients`.
    public func canWriteRoundNotes(in ward: WardRef) -> Bool {
        kind == .staff && assignments.contains { a in
            (a.role == .doctor || a.role == .consultant) && (a.departmentID == ward.id || a.departmentID == ward.parentDepartmentID)
        }
    }

    // MARK: Critical values

    /// Reporting a critical value by hand or over the API: laboratory/imaging staff and group
    /// administrators of the hospital, or a token with `integration` or `patients:write` (LIS, PACS).
    public func canReportCriticalValues(hospitalID: String) -> Bool {
        switch kind {
        case .token:
            return (hasScope(.integration) || hasScope(.patientsWrite)) && tokenCovers(hospitalID: hospitalID)
        case .staff:
            return isSuperuser || assignments.contains { $0.role == .laboratory && $0.hospitalID == hospitalID }
        }
    }

    /// Hospitals whose critical values this principal may report; nil means all.
    public var criticalValueReportingHospitalIDs: Set<String>? {
        switch kind {
        case .token:
            guard hasScope(.integration) || hasScope(.patientsWrite) else { return [] }
            return tokenHospitalID.map { [$0] }
        case .staff:
            if isSuperuser { return nil }
            return Set(assignments.filter { $0.role == .laboratory }.map(\.hospitalID))
        }
    }

    /// The quality dashboard of critical values (and its CSV): quality control, medical affairs
    /// and administrators of the hospital.
    public func canReviewCriticalValues(hospitalID: String) -> Bool {
        kind == .staff && seesAllPatients(ofHospital: hospitalID)
    }

    /// Editing a ward's escalation ladder: its head nurse, or medical affairs and administrators
    /// of the hospital.
    public func canEditEscalation(in ward: WardRef) -> Bool {
        guard kind == .staff else { return false }
        return isSuperuser || assignments.contains { a in
            (a.role == .headNurse && a.departmentID == ward.id)
                || ((a.role == .medicalAffairs || a.role == .administrator) && a.hospitalID == ward.hospitalID)
        }
    }

    public var isAdministrator: Bool {
        kind == .staff && (isSuperuser || assignments.contains { $0.role.managesOrganisation })
    }

    /// Sees the critical-value quality dashboard in the navigation.
    public var reviewsCriticalValues: Bool {
        kind == .staff && (isSuperuser || assignments.contains { $0.role.seesWholeHospital })
    }

    /// Enters critical values by hand (laboratory, imaging, pathology).
    public var reportsCriticalValues: Bool {
        kind == .staff && (isSuperuser || assignments.contains { $0.role == .laboratory })
    }

    public var isAuditor: Bool {
        kind == .staff && (isSuperuser || assignments.contains { $0.role.readsAudit })
    }

    /// Where someone without patients of their own starts: their own work, not an empty ward
    /// page. Nil: the home page of wards.
    public enum Landing: Sendable, Equatable { case reportCriticalValue, messageStore, criticalValueDashboard }

    public var landing: Landing? {
        guard kind == .staff, !isSuperuser, !assignments.contains(where: { $0.role.isClinical }) else { return nil }
        let roles = Set(assignments.map(\.role))
        if roles.contains(.laboratory) { return .reportCriticalValue }
        if roles.contains(.it), !roles.contains(.administrator) { return .messageStore }
        if !roles.isDisjoint(with: [.qualityControl, .medicalAffairs]) { return .criticalValueDashboard }
        return nil
    }

    /// The wards a person works on (clinical roles on the ward or its department), for a short
    /// home page; oversight roles see more wards than these.
    public func worksOn(wardID: String, parentDepartmentID: String?) -> Bool {
        !isSuperuser && assignments.contains { $0.role.isClinical && ($0.departmentID == wardID || $0.departmentID == parentDepartmentID) }
    }
}
