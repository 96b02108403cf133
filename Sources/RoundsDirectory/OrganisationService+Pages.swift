import FluentKit
import RoundsCore
import RoundsStore

/// What the administration pages show, each with the permission checks of the calls it is
/// made of, so a page handler only lays it out.
extension OrganisationService {
    public struct HospitalDetail: Sendable {
        public var hospital: Hospital
        public var departments: [Department]
        /// Beds by ward id.
        public var bedCounts: [String: Int]
    }

    public func hospitalDetail(id: String, context: RequestContext, on db: any Database) async throws -> HospitalDetail {
        let hospital = try await hospital(id: id, context: context, on: db)
        let departments = try await departments(hospitalID: id, context: context, on: db)
        let beds = try await Bed.query(on: db).filter(\.$wardID ~~ departments.compactMap(\.id)).all()
        return HospitalDetail(hospital: hospital, departments: departments,
                              bedCounts: beds.reduce(into: [:]) { $0[$1.wardID, default: 0] += 1 })
    }

    public struct StaffDirectory: Sendable {
        public var staff: [Staff]
        /// Roles by staff id.
        public var roles: [String: [StaffRole]]
        /// Department names by id, for the roles.
        public var departmentNames: [String: String]
    }

    public func staffDirectory(context: RequestContext, on db: any Database) async throws -> StaffDirectory {
        let staff = try await staff(context: context, on: db)
        let roles = try await StaffRole.query(on: db).filter(\.$staffID ~~ staff.compactMap(\.id)).all()
        let departments = try await Department.query(on: db).filter(\.$id ~~ Array(Set(roles.map(\.departmentID)))).all()
        return StaffDirectory(staff: staff, roles: Dictionary(grouping: roles, by: \.staffID),
                              departmentNames: Dictionary(departments.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a }))
    }

    public struct StaffMemberDetail: Sendable {
        public var staff: Staff
        public var roles: [StaffRole]
        public var departmentNames: [String: String]
        public var hospitalNames: [String: String]
        /// The departments the reader may give this person a role in (those of hospitals the
        /// reader administers), by hospital and code.
        public var assignable: [Department]
    }

    public func staffMemberDetail(id: String, context: RequestContext, on db: any Database) async throws -> StaffMemberDetail {
        let (staff, roles) = try await staffMember(id: id, context: context, on: db)
        let departments = try await Department.query(on: db).sort(\.$hospitalID).sort(\.$code).all()
        let hospitals = try await Hospital.query(on: db).all()
        return StaffMemberDetail(
            staff: staff, roles: roles,
            departmentNames: Dictionary(departments.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a }),
            hospitalNames: Dictionary(hospitals.map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a }),
            assignable: departments.filter { context.principal.canManageOrganisation(hospitalID: $0.hospitalID) })
    }
}
