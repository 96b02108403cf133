import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

/// A table's rules below the base roles. Field rules hide a field or make it read-only for a
/// role; row rules limit a role to the records a filter over the reader matches ("doctor is me",
/// "ward is one of mine"). Owners are never limited. The rules are applied inside the SQL of
/// every path (grid, API, search, groups, export, import) by `TableContext`.
public struct TableRules: Sendable, Codable, Equatable {
    public enum FieldAccess: String, Sendable, Codable, CaseIterable {
        case editable
        case readOnly = "read_only"
        case hidden
    }

    /// Field id → role → access (a role not named may edit as its role allows).
    public var fields: [String: [String: FieldAccess]]
    /// Role → the records that role may see and change.
    public var rows: [String: FilterGroup]

    public init(fields: [String: [String: FieldAccess]] = [:], rows: [String: FilterGroup] = [:]) {
        self.fields = fields; self.rows = rows
    }

    /// The roles rules can limit (an owner changes the rules, so is above them).
    public static let limitedRoles: [BaseRole] = [.editor, .commenter, .viewer]

    public var isEmpty: Bool { fields.values.allSatisfy { $0.values.allSatisfy { $0 == .editable } } && rows.isEmpty }
}

/// What one reader may do with one table, resolved from the rules for their role.
struct TableAccess: Sendable {
    var hidden: Set<String> = []
    var readOnly: Set<String> = []
    /// The records the reader works with; nil for all of them.
    var rows: FilterGroup?

    static let all = TableAccess()
}

/// A write that would leave a record outside the writer's rows; thrown inside the transaction
/// (which rolls back) and audited after it.
struct OutsideRowRule: Error {}

extension TablesService {
    func loadRules(_ tableID: String, on db: any Database) async throws -> TableRules {
        guard let set = try await TableRuleSet.find(tableID, on: db) else { return TableRules() }
        return (try? JSONDecoder().decode(TableRules.self, from: Data(set.rules.utf8))) ?? TableRules()
    }

    /// The access of a role: its field and row rules, and every formula that reads a hidden field
    /// hidden too (its value would show what the field hides).
    func access(for role: BaseRole, table: UserTable, fields: [TableField], plan: FormulaPlan, throughLinks: Bool = true,
                on db: any Database) async throws -> TableAccess {
        guard role < .owner else { return .all }
        let rules = try await loadRules(table.id!, on: db)
        var access = TableAccess()
        for (fieldID, perRole) in rules.fields {
            switch perRole[role.rawValue] {
            case .hidden?: access.hidden.insert(fieldID)
            case .readOnly?: access.readOnly.insert(fieldID)
            default: break
            }
        }
        // A lookup or rollup of a field the linked table hides from this role is hidden too, and
        // so is one through a hidden link.
        if throughLinks {
            for field in fields where field.fieldKind == .lookup || field.fieldKind == .rollup {
                let o = field.fieldOptions
                if let via = o.via, access.hidden.contains(via) { access.hidden.insert(field.id!); continue }
                guard let target = o.target, let link = fields.first(where: { $0.id == o.via }), let linkedID = link.fieldOptions.linkTable,
                      let linked = try await UserTable.find(linkedID, on: db) else { continue }
                let linkedFields = try await self.fields(of: linkedID, on: db)
                let theirs = try await self.access(for: role, table: linked, fields: linkedFields,
                                                   plan: try FormulaPlan(fields: linkedFields, timeZone: timeZone), throughLinks: false, on: db)
                if theirs.hidden.contains(target) { access.hidden.insert(field.id!) }
            }
        }
        var changed = !access.hidden.isEmpty
        while changed {
            changed = false
            let hiddenNames = Set(fields.filter { access.hidden.contains($0.id!) }.map(\.name))
            for step in plan.steps where !access.hidden.contains(step.field.id!) && !hiddenNames.isDisjoint(with: step.formula.dependencies) {
                access.hidden.insert(step.field.id!)
                changed = true
            }
        }
        access.rows = rules.rows[role.rawValue]
        return access
    }

    /// The rules of a table, for its owners.
    public func rules(table tableID: String, context: RequestContext, on db: any Database) async throws -> TableRules {
        _ = try await require(.owner, table: tableID, action: "table.rules.read", context: context, on: db)
        return try await loadRules(tableID, on: db)
    }

    /// Replaces a table's rules (owners only). Fields may be named by id or name and are kept by
    /// id, so a rename keeps its rules; each row rule is compiled to SQL here, so a broken one is
    /// refused now rather than failing every reader later.
    @discardableResult
    public func setRules(table tableID: String, _ rules: TableRules, context: RequestContext, on db: any Database) async throws -> TableRules {
        let ctx = try await self.context(.owner, table: tableID, action: "table.rules.update", request: context, on: db)
        var problems: [RoundsError.Item] = []
        var out = TableRules()
        let roles = Set(TableRules.limitedRoles.map(\.rawValue))
        for (key, perRole) in rules.fields {
            guard let field = ctx.anyField(key) else { problems.append(.init(path: "fields.\(key)", reason: "there is no such field in this table")); continue }
            for (role, access) in perRole {
                guard roles.contains(role) else { problems.append(.init(path: "fields.\(field.name).\(role)", reason: "rules are for editor, commenter and viewer")); continue }
                if access == .hidden, field.isPrimary {
                    problems.append(.init(path: "fields.\(field.name).\(role)", reason: "the first field names each record and cannot be hidden"))
                    continue
                }
                if access != .editable { out.fields[field.id!, default: [:]][role] = access }
            }
        }
        let sql = db as! any SQLDatabase
        let builder = RecordSQL(ctx: ctx, dialect: TableDialect(sql), principal: context.principal, timeZone: timeZone, now: clock.now(), seesAll: true)
        for (role, group) in rules.rows {
            guard roles.contains(role) else { problems.append(.init(path: "rows.\(role)", reason: "rules are for editor, commenter and viewer")); continue }
            do {
                let normalised = try byID(group, ctx)
                _ = try builder.predicate(normalised)
                if !normalised.conditions.isEmpty || !normalised.groups.isEmpty { out.rows[role] = normalised }
            } catch let error as RoundsError {
                problems.append(.init(path: "rows.\(role)", reason: error.detail ?? error.messageEN))
            }
        }
        guard problems.isEmpty else { throw Self.refused(problems) }
        let now = clock.now(), actor = context.principal.id
        let text = String(decoding: try JSONEncoder().encode(out), as: UTF8.self)
        try await db.transaction { tx in
            if let existing = try await TableRuleSet.find(tableID, on: tx) {
                existing.rules = text; existing.updatedBy = actor; existing.updatedAt = now
                try await existing.save(on: tx)
            } else {
                let set = TableRuleSet()
                set.id = tableID; set.rules = text; set.updatedBy = actor; set.updatedAt = now
                try await set.create(on: tx)
            }
            try await audit.record("table.rules.update", entityType: "table", entityID: tableID, hospitalID: ctx.base.hospitalID,
                                   detail: text, context: context, on: tx)
        }
        return out
    }

    /// The filter with each field named by its id.
    func byID(_ group: FilterGroup, _ ctx: TableContext) throws -> FilterGroup {
        var out = group
        out.conditions = try group.conditions.map { c in
            guard let field = ctx.anyField(c.field) else { throw RoundsError.validation("no field “\(c.field)” in this table") }
            var copy = c
            copy.field = field.id!
            return copy
        }
        out.groups = try group.groups.map { try byID($0, ctx) }
        return out
    }

    /// The row rules that name a field (a field a rule filters on is not deleted under it).
    func rowRulesUse(_ fieldID: String, table tableID: String, on db: any Database) async throws -> [String] {
        let rules = try await loadRules(tableID, on: db)
        func uses(_ g: FilterGroup) -> Bool { g.conditions.contains { $0.field == fieldID } || g.groups.contains(where: uses) }
        return rules.rows.filter { uses($0.value) }.map(\.key).sorted()
    }

    /// Refuses (and audits) a write to a read-only field.
    func requireWritable(_ fieldIDs: some Sequence<String>, _ ctx: TableContext, action: String, context: RequestContext,
                         on db: any Database) async throws {
        let refused = ctx.fields.filter { f in ctx.access.readOnly.contains(f.id!) && fieldIDs.contains(f.id!) }
        guard !refused.isEmpty else { return }
        let names = refused.map(\.name)
        try await audit.record(action, entityType: "table", entityID: ctx.table.id, hospitalID: ctx.base.hospitalID, outcome: .denied,
                               detail: "read-only for \(ctx.role.rawValue): \(names.joined(separator: ", "))", context: context, on: db)
        throw RoundsError.forbidden("read-only for you: \(names.map { "“\($0)”" }.joined(separator: "、"))")
            .with(items: names.map { .init(path: $0, reason: "this field is read-only for your role") })
    }

    /// Inside a write's transaction: every written record still within the writer's rows.
    func requireWithinRows(_ ids: [String], _ ctx: TableContext, on tx: any Database) async throws {
        guard ctx.access.rows != nil, !ids.isEmpty else { return }
        let sql = tx as! any SQLDatabase
        guard let scope = try recordSQL(ctx, sql).scope() else { return }
        let found = try await sql.raw("SELECT COUNT(*) AS n FROM \(ident: ctx.table.sqlName) WHERE id IN (\(binds: ids)) AND \(scope)").first()!
            .decode(column: "n", as: Int.self)
        if found < Set(ids).count { throw OutsideRowRule() }
    }

    /// Runs a write; one that would leave a record outside the writer's rows is audited and refused.
    func withinRows<T: Sendable>(_ ctx: TableContext, action: String, context: RequestContext, on db: any Database,
                                 _ body: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        do {
            return try await events.transaction(on: db, body)
        } catch is OutsideRowRule {
            try await audit.record(action, entityType: "table", entityID: ctx.table.id, hospitalID: ctx.base.hospitalID, outcome: .denied,
                                   detail: "outside the \(ctx.role.rawValue) row rule", context: context, on: db)
            throw RoundsError.forbidden("the record would be outside the records your role may work with")
        }
    }

    func recordSQL(_ ctx: TableContext, _ sql: any SQLDatabase, seesAll: Bool = false) -> RecordSQL {
        RecordSQL(ctx: ctx, dialect: TableDialect(sql), principal: ctx.reader, timeZone: timeZone, now: clock.now(), seesAll: seesAll)
    }
}

extension RecordSQL {
    /// The reader's row rule as SQL (it may filter on fields the reader cannot see).
    func scope() throws -> (any SQLExpression)? {
        guard let rows = ctx.access.rows else { return nil }
        var unrestricted = self
        unrestricted.seesAll = true
        return try unrestricted.predicate(rows)
    }
}
