import RoundsCore
import Testing

/// The permission rules, without HTTP or a database.
@Suite struct PrincipalTests {
    let lung = Principal.WardRef(id: "lung", parentDepartmentID: "onc", hospitalID: "h1")
    let icu = Principal.WardRef(id: "icu", parentDepartmentID: nil, hospitalID: "h1")
    let cardio = Principal.WardRef(id: "card", parentDepartmentID: nil, hospitalID: "h2")

    func staff(_ assignments: [(Role, String, String)], superuser: Bool = false) -> Principal {
        Principal(kind: .staff, id: "s", displayName: "s", isSuperuser: superuser,
                  assignments: assignments.map { .init(role: $0.0, departmentID: $0.1, hospitalID: $0.2) })
    }

    @Test func nurseSeesOnlyHerWard() {
        let nurse = staff([(.nurse, "lung", "h1")])
        #expect(nurse.canViewPatients(in: lung))
        #expect(!nurse.canViewPatients(in: icu))
        #expect(!nurse.canViewPatients(in: cardio))
        #expect(!nurse.canManageOrganisation(hospitalID: "h1"))
        #expect(!nurse.canReadAudit(hospitalID: "h1"))
    }

    @Test func departmentRoleCoversItsWards() {
        let consultant = staff([(.consultant, "onc", "h1")])
        #expect(consultant.canViewPatients(in: lung))
        #expect(!consultant.canViewPatients(in: icu))
    }

    @Test func qualityControlSeesWholeHospitalOnly() {
        let qc = staff([(.qualityControl, "zkb", "h1")])
        #expect(qc.canViewPatients(in: icu))
        #expect(!qc.canViewPatients(in: cardio))
        #expect(qc.canReadAudit(hospitalID: "h1"))
        #expect(!qc.canReadAudit(hospitalID: "h2"))
        #expect(!qc.canWritePatients(in: icu))
    }

    @Test func itManagesOrganisationButSeesNoPatients() {
        let it = staff([(.it, "xxk", "h1")])
        #expect(it.canManageOrganisation(hospitalID: "h1"))
        #expect(!it.canViewPatients(in: lung))
        #expect(!it.canManageTokens(hospitalID: "h1"))
    }

    @Test func tokenScopesAndHospitalLimit() {
        let token = Principal(kind: .token, id: "t", displayName: "token:his", scopes: [.patientsRead], tokenHospitalID: "h1")
        #expect(token.canViewPatients(in: lung))
        #expect(!token.canViewPatients(in: cardio))
        #expect(!token.canWritePatients(in: lung))
        #expect(!token.canManageOrganisation(hospitalID: "h1"))
        #expect(!token.canManageTokens(hospitalID: "h1"))
    }

    @Test func groupAdministratorMayDoEverything() {
        let admin = staff([], superuser: true)
        #expect(admin.canViewPatients(in: cardio))
        #expect(admin.canManageGroup)
        #expect(admin.auditHospitalIDs == nil)
    }

    @Test func uuidV7IdsSortByTime() {
        let clock = TestClock()
        let ids = IDGenerator.uuidV7(clock: clock)
        let first = ids.next()
        clock.advance(by: 1)
        let second = ids.next()
        #expect(first < second)
        #expect(first.count == 36)
        #expect(Array(first)[14] == "7")
        // Within one millisecond (a frozen clock) they still only grow, and keep the RFC variant.
        var previous = second
        for _ in 0..<5000 {
            let id = ids.next()
            #expect(id > previous)
            #expect("89ab".contains(Array(id)[19]))
            previous = id
        }
        // A clock that steps back does not make ids go back.
        clock.advance(by: -10)
        #expect(ids.next() > previous)
    }
}
