import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

/// The table engine: bases and their roles, tables and fields (real SQL tables and columns),
/// records with versions and cell history. Every call checks the caller's role on the base on
/// the server and audits refusals; a table with a patient field audits every read and write.
public struct TablesService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let audit: AuditLog
    public let events: OutboxWriter
    /// The hospital's time zone: dates, TODAY() and the working-day calendar are read in it.
    public let timeZone: TimeZone
    public var workCalendar: WorkCalendar = .weekdaysOnly

    /// At most this many records in one bulk write (as Feishu's batch API), all or nothing.
    public static let maximumBatch = 1_000
    public static let maximumFields = 300

    public init(clock: any RoundsClock, ids: IDGenerator, audit: AuditLog, events: OutboxWriter, timeZone: TimeZone) {
        self.clock = clock; self.ids = ids; self.audit = audit; self.events = events; self.timeZone = timeZone
    }

    // MARK: Roles

    /// The caller's role on a base, nil for none. People: their own grant or their departments'
    /// (the highest counts); group administrators own every base. Tokens: tables:read reads,
    /// tables:write edits, within the token's hospital.
    public func role(on base: TableBase, _ principal: Principal, on db: any Database) async throws -> BaseRole? {
        switch principal.kind {
        case .token:
            guard principal.tokenHospitalID == nil || principal.tokenHospitalID == base.hospitalID else { return nil }
            if principal.hasScope(.tablesWrite) { return .editor }
            return principal.hasScope(.tablesRead) ? .viewer : nil
        case .staff:
            if principal.isSuperuser { return .owner }
            let departments = Array(Set(principal.assignments.map(\.departmentID)))
            let grants = try await BaseGrant.query(on: db).filter(\.$baseID == base.id!).group(.or) { or in
                or.group(.and) { $0.filter(\.$granteeKind == "staff").filter(\.$granteeID == principal.id) }
                if !departments.isEmpty {
                    or.group(.and) { $0.filter(\.$granteeKind == "department").filter(\.$granteeID ~~ departments) }
                }
            }.all()
            return grants.compactMap { BaseRole(rawValue: $0.role) }.max()
        }
    }

    /// The base, when the caller holds at least `needed` on it; otherwise the refusal is audited
    /// and thrown (a base the caller may not even see is "not found", so its name does not leak).
    @discardableResult
    func require(_ needed: BaseRole, base baseID: String, action: String, context: RequestContext,
                 on db: any Database) async throws -> (TableBase, BaseRole) {
        guard let base = try await TableBase.find(baseID, on: db), base.deletedAt == nil else { throw RoundsError.notFound("base", id: baseID) }
        let role = try await role(on: base, context.principal, on: db)
        guard let role, role >= needed else {
            try await audit.record(action, entityType: "table_base", entityID: baseID, hospitalID: base.hospitalID,
                                   outcome: .denied, detail: "needs \(needed.rawValue)", context: context, on: db)
            if role == nil { throw RoundsError.notFound("base", id: baseID) }
            if case .token = context.principal.kind { throw RoundsError.insufficientScope(needed >= .editor ? .tablesWrite : .tablesRead) }
            throw RoundsError.forbidden("this needs the \(needed.rawValue) role on the base")
        }
        return (base, role)
    }

    func table(_ tableID: String, on db: any Database) async throws -> UserTable {
        guard let table = try await UserTable.find(tableID, on: db) else { throw RoundsError.notFound("table", id: tableID) }
        return table
    }

    /// The table and the caller's role, checked.
    func require(_ needed: BaseRole, table tableID: String, action: String, context: RequestContext,
                 on db: any Database) async throws -> (UserTable, TableBase, BaseRole) {
        let table = try await table(tableID, on: db)
        let (base, role) = try await require(needed, base: table.baseID, action: action, context: context, on: db)
        return (table, base, role)
    }

    // MARK: Bases

    /// A new base in a hospital (or one of its departments); its creator owns it. Anyone working
    /// in that hospital (or department) may create one.
    public func createBase(name: String, hospitalID: String, departmentID: String?, context: RequestContext,
                           on db: any Database) async throws -> TableBase {
        let principal = context.principal
        let name = try Validate.text(name, field: "name", max: 100)
        guard case .staff = principal.kind else { throw RoundsError.forbidden("bases are created by people") }
        if let departmentID {
            guard let department = try await Department.find(departmentID, on: db), department.hospitalID == hospitalID else {
                throw RoundsError.validation("departmentId: not a department of this hospital")
            }
        } else {
            guard try await Hospital.find(hospitalID, on: db) != nil else { throw RoundsError.validation("hospitalId: no such hospital") }
        }
        let worksThere = principal.assignments.contains { $0.hospitalID == hospitalID && (departmentID == nil || $0.departmentID == departmentID) }
        guard principal.isSuperuser || worksThere else {
            try await audit.record("table.base.create", entityType: "table_base", entityID: nil, hospitalID: hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("bases are created by people who work in that hospital or department")
        }
        let now = clock.now()
        let base = TableBase()
        base.id = ids.next(); base.hospitalID = hospitalID; base.departmentID = departmentID; base.name = name
        base.createdBy = principal.id; base.createdAt = now
        try await db.transaction { tx in
            try await base.create(on: tx)
            try await self.addGrant(base: base.id!, kind: "staff", id: principal.id, role: .owner, by: principal.id, on: tx)
            try await audit.record("table.base.create", entityType: "table_base", entityID: base.id, hospitalID: hospitalID,
                                   detail: name, context: context, on: tx)
        }
        return base
    }

    private func addGrant(base: String, kind: String, id: String, role: BaseRole, by: String, on db: any Database) async throws {
        let grant = BaseGrant()
        grant.id = ids.next(); grant.baseID = base; grant.granteeKind = kind; grant.granteeID = id
        grant.role = role.rawValue; grant.createdBy = by; grant.createdAt = clock.now()
        try await grant.create(on: db)
    }

    public struct BaseSummary: Sendable {
        public var base: TableBase
        public var role: BaseRole
        public var tables: [UserTable]

        public init(base: TableBase, role: BaseRole, tables: [UserTable]) { self.base = base; self.role = role; self.tables = tables }
    }

    /// The bases the caller has a role on, with their tables.
    public func bases(context: RequestContext, on db: any Database) async throws -> [BaseSummary] {
        let principal = context.principal
        var candidates: [TableBase]
        if principal.isSuperuser || principal.kind == .token {
            let query = TableBase.query(on: db).filter(\.$deletedAt == nil)
            if let hospital = principal.tokenHospitalID { query.filter(\.$hospitalID == hospital) }
            candidates = try await query.sort(\.$createdAt).all()
        } else {
            let departments = Array(Set(principal.assignments.map(\.departmentID)))
            let grants = try await BaseGrant.query(on: db).group(.or) { or in
                or.group(.and) { $0.filter(\.$granteeKind == "staff").filter(\.$granteeID == principal.id) }
                if !departments.isEmpty { or.group(.and) { $0.filter(\.$granteeKind == "department").filter(\.$granteeID ~~ departments) } }
            }.all()
            candidates = try await TableBase.query(on: db).filter(\.$id ~~ Array(Set(grants.map(\.baseID)))).filter(\.$deletedAt == nil)
                .sort(\.$createdAt).all()
        }
        var out: [BaseSummary] = []
        for base in candidates {
            guard let role = try await role(on: base, principal, on: db) else { continue }
            let tables = try await UserTable.query(on: db).filter(\.$baseID == base.id!).sort(\.$position).all()
            out.append(BaseSummary(base: base, role: role, tables: tables))
        }
        return out
    }

    public func base(_ baseID: String, context: RequestContext, on db: any Database) async throws -> BaseSummary {
        let (base, role) = try await require(.viewer, base: baseID, action: "table.base.read", context: context, on: db)
        let tables = try await UserTable.query(on: db).filter(\.$baseID == baseID).sort(\.$position).all()
        return BaseSummary(base: base, role: role, tables: tables)
    }

    /// Gives a person or a department a role on the base (owners only); replaces an earlier one.
    public func grant(base baseID: String, granteeKind: String, granteeID: String, role: BaseRole,
                      context: RequestContext, on db: any Database) async throws {
        let (base, _) = try await require(.owner, base: baseID, action: "table.base.grant", context: context, on: db)
        switch granteeKind {
        case "staff": guard try await Staff.find(granteeID, on: db) != nil else { throw RoundsError.validation("granteeId: no such staff member") }
        case "department": guard try await Department.find(granteeID, on: db) != nil else { throw RoundsError.validation("granteeId: no such department") }
        default: throw RoundsError.validation("granteeKind: staff or department")
        }
        try await db.transaction { tx in
            try await BaseGrant.query(on: tx).filter(\.$baseID == baseID).filter(\.$granteeKind == granteeKind)
                .filter(\.$granteeID == granteeID).delete()
            try await self.addGrant(base: baseID, kind: granteeKind, id: granteeID, role: role, by: context.principal.id, on: tx)
            try await audit.record("table.base.grant", entityType: "table_base", entityID: baseID, hospitalID: base.hospitalID,
                                   detail: "\(granteeKind) \(granteeID): \(role.rawValue)", context: context, on: tx)
        }
    }

    // MARK: Tables

    /// A new table with its first field (a text field that names each record).
    public func createTable(base baseID: String, name: String, primaryFieldName: String = "名称", context: RequestContext,
                            on db: any Database) async throws -> UserTable {
        let (base, _) = try await require(.owner, base: baseID, action: "table.create", context: context, on: db)
        let name = try Validate.text(name, field: "name", max: 100)
        let primary = try Validate.text(primaryFieldName, field: "primaryFieldName", max: 100)
        let id = ids.next()
        let table = UserTable()
        table.id = id; table.baseID = baseID; table.name = name
        table.sqlName = "ut_" + id.filter(\.isHexDigit).lowercased()
        table.lastNumber = 0; table.nextColumn = 2; table.hasPatients = false
        table.position = try await UserTable.query(on: db).filter(\.$baseID == baseID).count()
        table.createdBy = context.principal.id; table.createdAt = clock.now()
        try await db.transaction { tx in
            try await table.create(on: tx)
            let schema = TableSchema(tx)
            try await schema.createTable(table.sqlName)
            let field = TableField()
            field.id = self.ids.next(); field.tableID = id; field.name = primary; field.kind = FieldKind.text.rawValue
            field.columnName = "f1"; field.options = "{}"; field.position = 0; field.isPrimary = true; field.createdAt = self.clock.now()
            try await field.create(on: tx)
            try await schema.addColumn(table.sqlName, "f1", .text)
            try await audit.record("table.create", entityType: "table", entityID: id, hospitalID: base.hospitalID,
                                   detail: name, context: context, on: tx)
        }
        return table
    }

    /// 404 unless the table is one of the base's (so a path cannot pair a table with another base).
    public func requireTable(_ tableID: String, inBase baseID: String, on db: any Database) async throws {
        guard let table = try await UserTable.find(tableID, on: db), table.baseID == baseID else { throw RoundsError.notFound("table", id: tableID) }
    }

    /// A table and its fields, for those with a role on its base.
    /// A table and the fields the caller may see, for those with a role on its base.
    public func tableDetail(_ tableID: String, context: RequestContext, on db: any Database) async throws -> (UserTable, [TableField]) {
        let ctx = try await self.context(.viewer, table: tableID, action: "table.read", request: context, on: db)
        return (ctx.table, ctx.visible)
    }

    public struct Member: Sendable {
        public var id: String
        public var name: String
        public var role: BaseRole
    }

    /// The people with a role on a base (their own grant or their department's), for an owner
    /// choosing whom to preview the table as.
    public func members(base baseID: String, context: RequestContext, on db: any Database) async throws -> [Member] {
        let (base, _) = try await require(.owner, base: baseID, action: "table.base.members", context: context, on: db)
        return try await members(of: base, on: db)
    }

    /// Everyone holding a role on the base through a grant (theirs or their department's).
    func members(of base: TableBase, on db: any Database) async throws -> [Member] {
        let baseID = base.id!
        let grants = try await BaseGrant.query(on: db).filter(\.$baseID == baseID).all()
        var ids = Set(grants.filter { $0.granteeKind == "staff" }.map(\.granteeID))
        let departments = grants.filter { $0.granteeKind == "department" }.map(\.granteeID)
        if !departments.isEmpty {
            ids.formUnion(try await StaffRole.query(on: db).filter(\.$departmentID ~~ departments).limit(500).all().map(\.staffID))
        }
        var out: [Member] = []
        for staff in try await Staff.query(on: db).filter(\.$id ~~ Array(ids)).filter(\.$isActive == true).sort(\.$displayName).limit(300).all() {
            let principal = try await Principal.of(staff, on: db)
            if let role = try await role(on: base, principal, on: db) { out.append(Member(id: staff.id!, name: staff.displayName, role: role)) }
        }
        return out
    }

    public func fields(of tableID: String, on db: any Database) async throws -> [TableField] {
        try await TableField.query(on: db).filter(\.$tableID == tableID).sort(\.$position).all()
    }
}

extension TablesService {
    /// Where someone may create a base: each hospital they work in, and each of their departments.
    public struct Space: Sendable {
        public var id: String
        public var name: String
        public var hospitalID: String
        public var departmentID: String?
    }

    public func spaces(context: RequestContext, on db: any Database) async throws -> [Space] {
        let principal = context.principal
        guard case .staff = principal.kind else { return [] }
        let hospitals = principal.isSuperuser ? try await Hospital.query(on: db).sort(\.$code).all()
            : try await Hospital.query(on: db).filter(\.$id ~~ Array(Set(principal.assignments.map(\.hospitalID)))).sort(\.$code).all()
        let departments = principal.isSuperuser ? [] : try await Department.query(on: db)
            .filter(\.$id ~~ Array(Set(principal.assignments.map(\.departmentID)))).sort(\.$code).all()
        var out: [Space] = []
        for h in hospitals {
            out.append(Space(id: h.id!, name: h.name, hospitalID: h.id!, departmentID: nil))
            for d in departments where d.hospitalID == h.id {
                out.append(Space(id: d.id!, name: "\(h.name) · \(d.name)", hospitalID: h.id!, departmentID: d.id))
            }
        }
        return out
    }
}
