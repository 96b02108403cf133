import FluentKit
import Foundation
import RoundsCore
import RoundsStore

/// Hospitals, departments and wards, beds, staff and their roles. Every change is audited;
/// every call checks the principal's permission first.
public struct OrganisationService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let hasher: any PasswordHashing
    public let audit: AuditLog

    public init(clock: any RoundsClock, ids: IDGenerator, hasher: any PasswordHashing, audit: AuditLog) {
        self.clock = clock
        self.ids = ids
        self.hasher = hasher
        self.audit = audit
    }

    // MARK: Hospitals

    public func hospitals(context: RequestContext, on db: any Database) async throws -> [Hospital] {
        try await Hospital.query(on: db).sort(\.$code).all()
            .filter { context.principal.canReadOrganisation(hospitalID: $0.id ?? "") }
    }

    public func hospital(id: String, context: RequestContext, on db: any Database) async throws -> Hospital {
        guard let hospital = try await Hospital.find(id, on: db) else { throw RoundsError.notFound("hospital", id: id) }
        guard context.principal.canReadOrganisation(hospitalID: id) else { throw RoundsError.forbidden("hospital \(id)") }
        return hospital
    }

    public func createHospital(code: String, name: String, context: RequestContext, on db: any Database) async throws -> Hospital {
        guard context.principal.canManageGroup else {
            try await audit.record("hospital.create", entityType: "hospital", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("only group administrators create hospitals")
        }
        let code = try Validate.code(code, field: "code")
        let name = try Validate.text(name, field: "name", max: 100)
        guard let group = try await HospitalGroup.query(on: db).first() else {
            throw RoundsError.conflict("no hospital group exists yet")
        }
        if try await Hospital.query(on: db).filter(\.$code == code).first() != nil {
            throw RoundsError.conflict("hospital code \(code) is taken")
        }
        let hospital = Hospital(id: ids.next(), groupID: try group.requireID(), code: code, name: name, createdAt: clock.now())
        try await db.transaction { tx in
            try await hospital.create(on: tx)
            try await audit.record("hospital.create", entityType: "hospital", entityID: hospital.id,
                                   hospitalID: hospital.id, detail: name, context: context, on: tx)
        }
        return hospital
    }

    // MARK: Departments and wards

    public func departments(hospitalID: String, context: RequestContext, on db: any Database) async throws -> [Department] {
        _ = try await hospital(id: hospitalID, context: context, on: db)
        return try await Department.query(on: db).filter(\.$hospitalID == hospitalID).sort(\.$code).all()
    }

    public func department(id: String, context: RequestContext, on db: any Database) async throws -> Department {
        guard let department = try await Department.find(id, on: db) else { throw RoundsError.notFound("department", id: id) }
        guard context.principal.canReadOrganisation(hospitalID: department.hospitalID) else {
            throw RoundsError.forbidden("department \(id)")
        }
        return department
    }

    public func createDepartment(hospitalID: String, code: String, name: String, kind: DepartmentKind,
                                 parentID: String?, context: RequestContext, on db: any Database) async throws -> Department {
        guard try await Hospital.find(hospitalID, on: db) != nil else { throw RoundsError.notFound("hospital", id: hospitalID) }
        try await requireManage(hospitalID: hospitalID, action: "department.create", context: context, on: db)
        let code = try Validate.code(code, field: "code")
        let name = try Validate.text(name, field: "name", max: 100)
        if let parentID {
            guard let parent = try await Department.find(parentID, on: db), parent.hospitalID == hospitalID,
                  parent.kind == .department else {
                throw RoundsError.validation("parentId: must be a department of the same hospital")
            }
        }
        if try await Department.query(on: db).filter(\.$hospitalID == hospitalID).filter(\.$code == code).first() != nil {
            throw RoundsError.conflict("department code \(code) is taken in this hospital")
        }
        let department = Department(id: ids.next(), hospitalID: hospitalID, parentID: parentID, code: code,
                                    name: name, kind: kind, createdAt: clock.now())
        try await db.transaction { tx in
            try await department.create(on: tx)
            try await audit.record("department.create", entityType: "department", entityID: department.id,
                                   hospitalID: hospitalID, detail: "\(kind.rawValue) \(name)", context: context, on: tx)
        }
        return department
    }

    // MARK: Beds

    public func beds(wardID: String, context: RequestContext, on db: any Database) async throws -> [Bed] {
        let ward = try await department(id: wardID, context: context, on: db)
        guard ward.kind == .ward else { throw RoundsError.validation("only wards have beds") }
        return try await Bed.query(on: db).filter(\.$wardID == wardID).sort(\.$sortOrder).sort(\.$label).all()
    }

    public func createBed(wardID: String, label: String, context: RequestContext, on db: any Database) async throws -> Bed {
        guard let ward = try await Department.find(wardID, on: db) else { throw RoundsError.notFound("ward", id: wardID) }
        guard ward.kind == .ward else { throw RoundsError.validation("only wards have beds") }
        try await requireManage(hospitalID: ward.hospitalID, action: "bed.create", context: context, on: db)
        let label = try Validate.text(label, field: "label", max: 20)
        if try await Bed.query(on: db).filter(\.$wardID == wardID).filter(\.$label == label).first() != nil {
            throw RoundsError.conflict("bed \(label) already exists on this ward")
        }
        let order = (try await Bed.query(on: db).filter(\.$wardID == wardID).max(\.$sortOrder) ?? 0) + 1
        let bed = Bed(id: ids.next(), wardID: wardID, label: label, sortOrder: order)
        try await db.transaction { tx in
            try await bed.create(on: tx)
            try await audit.record("bed.create", entityType: "bed", entityID: bed.id, hospitalID: ward.hospitalID,
                                   detail: "\(ward.name) \(label)", context: context, on: tx)
        }
        return bed
    }

    // MARK: Staff

    /// Staff who hold a role in a hospital the principal administers (everyone, for group admins).
    public func staff(context: RequestContext, on db: any Database) async throws -> [Staff] {
        let principal = context.principal
        let hospitals: Set<String>?
        switch principal.kind {
        case .staff:
            guard principal.isAdministrator else { throw RoundsError.forbidden("staff list") }
            hospitals = principal.administeredHospitalIDs
        case .token:
            guard principal.hasScope(.organisationRead) || principal.hasScope(.organisationWrite) else {
                throw RoundsError.insufficientScope(.organisationRead)
            }
            hospitals = principal.tokenHospitalID.map { [$0] }
        }
        guard let hospitals else { return try await Staff.query(on: db).sort(\.$username).all() }
        let staffIDs = try await StaffRole.query(on: db).filter(\.$hospitalID ~~ Array(hospitals)).all().map(\.staffID)
        return try await Staff.query(on: db).filter(\.$id ~~ Array(Set(staffIDs))).sort(\.$username).all()
    }

    public func staffMember(id: String, context: RequestContext, on db: any Database) async throws -> (Staff, [StaffRole]) {
        guard let staff = try await Staff.find(id, on: db) else { throw RoundsError.notFound("staff member", id: id) }
        let roles = try await StaffRole.query(on: db).filter(\.$staffID == id).all()
        let principal = context.principal
        let allowed = principal.id == id || Self.administers(staff, roles: roles, principal)
        guard allowed else { throw RoundsError.forbidden("staff member \(id)") }
        return (staff, roles)
    }

    /// Mobile number and e-mail address for critical-value notices outside Rounds: set by the
    /// person themself or an administrator of one of their hospitals. Empty clears.
    public func setContact(staffID: String, mobile: String?, email: String?, context: RequestContext,
                           on db: any Database) async throws -> Staff {
        guard let staff = try await Staff.find(staffID, on: db) else { throw RoundsError.notFound("staff member", id: staffID) }
        let roles = try await StaffRole.query(on: db).filter(\.$staffID == staffID).all()
        let principal = context.principal
        let allowed = principal.kind == .staff && (principal.id == staffID || Self.administers(staff, roles: roles, principal))
        guard allowed else {
            try await audit.record("staff.contact.update", entityType: "staff", entityID: staffID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("staff member \(staffID)")
        }
        let mobile = mobile?.trimmingCharacters(in: .whitespaces) ?? "", email = email?.trimmingCharacters(in: .whitespaces) ?? ""
        if !mobile.isEmpty {
            guard (5...20).contains(mobile.count), mobile.allSatisfy({ $0.isASCII && ($0.isNumber || "+- ".contains($0)) }) else {
                throw RoundsError.validation("mobile: digits, + and - only (5 to 20)")
            }
        }
        if !email.isEmpty {
            let parts = email.split(separator: "@")
            guard email.count <= 200, parts.count == 2, parts[1].contains("."), !email.contains(where: { $0.isWhitespace || "<>,;\"".contains($0) }) else {
                throw RoundsError.validation("email: an e-mail address")
            }
        }
        staff.mobile = mobile.isEmpty ? nil : mobile
        staff.email = email.isEmpty ? nil : email
        try await db.transaction { tx in
            try await staff.save(on: tx)
            try await audit.record("staff.contact.update", entityType: "staff", entityID: staffID, context: context, on: tx)
        }
        return staff
    }

    /// Who looks after a staff member's record: administrators of a hospital they work in; a
    /// group administrator, or someone with no roles yet, only the group's own administrators
    /// (a hospital's administrator or IT must not reach the superuser's contact details).
    static func administers(_ staff: Staff, roles: [StaffRole], _ principal: Principal) -> Bool {
        if principal.canManageGroup { return true }
        if staff.isSuperuser || roles.isEmpty { return false }
        return roles.contains { principal.canManageOrganisation(hospitalID: $0.hospitalID) }
    }

    public func createStaff(username: String, displayName: String, password: String, employeeNo: String?,
                            locale: RoundsCore.Locale, superuser: Bool = false,
                            context: RequestContext, on db: any Database) async throws -> Staff {
        guard context.principal.isAdministrator, superuser == false || context.principal.canManageGroup else {
            try await audit.record("staff.create", entityType: "staff", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("only administrators create staff accounts")
        }
        return try await insertStaff(username: username, displayName: displayName, password: password,
                                     employeeNo: employeeNo, locale: locale, superuser: superuser, on: db) { staff, tx in
            try await audit.record("staff.create", entityType: "staff", entityID: staff.id,
                                   detail: staff.username + (superuser ? " (group administrator)" : ""),
                                   context: context, on: tx)
        }
    }

    /// For `rounds admin create-user`: the first administrator exists before anyone can sign in.
    public func bootstrapAdministrator(username: String, displayName: String, password: String, on db: any Database) async throws -> Staff {
        try await insertStaff(username: username, displayName: displayName, password: password, employeeNo: nil,
                              locale: .default, superuser: true, on: db) { staff, tx in
            try await audit.record("staff.create", entityType: "staff", entityID: staff.id,
                                   detail: "\(staff.username) (group administrator, from the command line)",
                                   actorKind: "system", actorID: nil, actorName: "rounds admin", clientAddress: nil, on: tx)
        }
    }

    private func insertStaff(username: String, displayName: String, password: String, employeeNo: String?,
                             locale: RoundsCore.Locale, superuser: Bool, on db: any Database,
                             audited: @escaping @Sendable (Staff, any Database) async throws -> Void) async throws -> Staff {
        let username = try Validate.username(username)
        let displayName = try Validate.text(displayName, field: "displayName", max: 60)
        guard password.count >= Passwords.minimumLength else {
            throw RoundsError.validation("password: at least \(Passwords.minimumLength) characters")
        }
        if try await Staff.query(on: db).filter(\.$username == username).first() != nil {
            throw RoundsError.conflict("username \(username) is taken")
        }
        let staff = Staff(id: ids.next(), username: username, displayName: displayName, employeeNo: employeeNo,
                          passwordHash: try await hasher.hash(password), locale: locale, isSuperuser: superuser,
                          createdAt: clock.now())
        try await db.transaction { tx in
            try await staff.create(on: tx)
            try await audited(staff, tx)
        }
        return staff
    }

    public func assignRole(staffID: String, departmentID: String, role: Role, context: RequestContext, on db: any Database) async throws -> StaffRole {
        guard try await Staff.find(staffID, on: db) != nil else { throw RoundsError.notFound("staff member", id: staffID) }
        guard let department = try await Department.find(departmentID, on: db) else {
            throw RoundsError.notFound("department", id: departmentID)
        }
        try await requireManage(hospitalID: department.hospitalID, action: "staff.role.assign", context: context, on: db)
        guard context.principal.canGrant(role, hospitalID: department.hospitalID, to: staffID) else {
            try await audit.record("staff.role.assign", entityType: "staff", entityID: staffID, hospitalID: department.hospitalID,
                                   outcome: .denied, detail: "\(role.rawValue) @ \(department.name)", context: context, on: db)
            throw RoundsError.forbidden(staffID == context.principal.id ? "nobody gives a role to themselves"
                                        : "giving the \(role.rawValue) role is for administrators")
        }
        if let existing = try await StaffRole.query(on: db).filter(\.$staffID == staffID)
            .filter(\.$departmentID == departmentID).filter(\.$role == role).first() {
            return existing
        }
        let assignment = StaffRole(id: ids.next(), staffID: staffID, departmentID: departmentID,
                                   hospitalID: department.hospitalID, role: role)
        try await db.transaction { tx in
            try await assignment.create(on: tx)
            try await audit.record("staff.role.assign", entityType: "staff", entityID: staffID, hospitalID: department.hospitalID,
                                   detail: "\(role.rawValue) @ \(department.name)", context: context, on: tx)
            if role == .administrator {
                try await tellAdministrators(about: staffID, granted: true, hospitalID: department.hospitalID, context: context, on: tx)
            }
        }
        return assignment
    }

    /// A new administrator can do nearly anything in the hospital: the others hear of it at once
    /// (an account taken over cannot quietly make a second one).
    func tellAdministrators(about subjectID: String, granted: Bool, hospitalID: String, context: RequestContext,
                            on db: any Database) async throws {
        let subject = try await Staff.find(subjectID, on: db)
        let hospital = try await Hospital.find(hospitalID, on: db)
        let holders = try await StaffRole.query(on: db).filter(\.$hospitalID == hospitalID).filter(\.$role == .administrator).all(\.$staffID)
        let superusers = try await Staff.query(on: db).filter(\.$isSuperuser == true).all(\.$id).compactMap { $0 }
        let told = Set(holders + superusers).subtracting([subjectID, context.principal.id])
        let people = try await Staff.query(on: db).filter(\.$id ~~ Array(told)).filter(\.$isActive == true).all()
        let name = subject?.displayName ?? subjectID, by = context.principal.displayName, place = hospital?.name ?? hospitalID
        for person in people {
            let notice = StaffNotice()
            notice.id = ids.next()
            notice.staffID = person.id!
            notice.kind = granted ? "administrator_granted" : "administrator_removed"
            notice.textZH = granted ? "\(by) 授予 \(name) \(place) 管理员角色" : "\(by) 取消了 \(name) 在 \(place) 的管理员角色"
            notice.textEN = granted ? "\(by) made \(name) an administrator of \(place)" : "\(by) removed \(name) as administrator of \(place)"
            notice.subjectID = subjectID
            notice.createdAt = clock.now()
            try await notice.create(on: db)
        }
        try await audit.record("staff.notice.create", entityType: "staff", entityID: subjectID, hospitalID: hospitalID,
                               detail: "\(notice(granted)) told to \(people.count)", context: context, on: db)
    }

    private func notice(_ granted: Bool) -> String { granted ? "administrator granted" : "administrator removed" }

    /// My unread notices, newest first.
    public func notices(context: RequestContext, on db: any Database) async throws -> [StaffNotice] {
        guard context.principal.kind == .staff else { return [] }
        return try await StaffNotice.query(on: db).filter(\.$staffID == context.principal.id).filter(\.$readAt == nil)
            .sort(\.$createdAt, .descending).limit(50).all()
    }

    @discardableResult
    public func markNoticeRead(_ id: String, context: RequestContext, on db: any Database) async throws -> StaffNotice {
        guard let notice = try await StaffNotice.find(id, on: db), notice.staffID == context.principal.id else {
            throw RoundsError.notFound("notice", id: id)
        }
        guard notice.readAt == nil else { return notice }
        notice.readAt = clock.now()
        try await notice.save(on: db)
        return notice
    }

    public func removeRole(assignmentID: String, context: RequestContext, on db: any Database) async throws {
        guard let assignment = try await StaffRole.find(assignmentID, on: db) else {
            throw RoundsError.notFound("role assignment", id: assignmentID)
        }
        try await requireManage(hospitalID: assignment.hospitalID, action: "staff.role.remove", context: context, on: db)
        guard context.principal.canGrant(assignment.role, hospitalID: assignment.hospitalID, to: assignment.staffID) else {
            try await audit.record("staff.role.remove", entityType: "staff", entityID: assignment.staffID, hospitalID: assignment.hospitalID,
                                   outcome: .denied, detail: assignment.role.rawValue, context: context, on: db)
            throw RoundsError.forbidden("taking away the \(assignment.role.rawValue) role is for administrators")
        }
        try await db.transaction { tx in
            try await assignment.delete(on: tx)
            try await audit.record("staff.role.remove", entityType: "staff", entityID: assignment.staffID,
                                   hospitalID: assignment.hospitalID,
                                   detail: "\(assignment.role.rawValue) @ \(assignment.departmentID)", context: context, on: tx)
            if assignment.role == .administrator {
                try await tellAdministrators(about: assignment.staffID, granted: false, hospitalID: assignment.hospitalID,
                                             context: context, on: tx)
            }
        }
    }

    /// Each person picks their own UI language.
    public func setLocale(_ locale: RoundsCore.Locale, context: RequestContext, on db: any Database) async throws {
        guard context.principal.kind == .staff, let staff = try await Staff.find(context.principal.id, on: db) else {
            throw RoundsError.forbidden("only people have a language preference")
        }
        staff.locale = locale.rawValue
        try await staff.save(on: db)
    }

    private func requireManage(hospitalID: String, action: String, context: RequestContext, on db: any Database) async throws {
        guard context.principal.canManageOrganisation(hospitalID: hospitalID) else {
            try await audit.record(action, entityType: "hospital", entityID: hospitalID, hospitalID: hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("organisation of hospital \(hospitalID)")
        }
    }
}
