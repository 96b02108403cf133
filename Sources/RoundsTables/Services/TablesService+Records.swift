import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

/// One record as the API and the grid read it.
public struct TableRecord: Sendable, Equatable, Codable {
    public var id: String
    public var number: Int
    public var version: Int
    public var createdAt: Date
    public var createdBy: String
    public var modifiedAt: Date
    public var modifiedBy: String
    public var deleted: Bool
    /// By field id.
    public var fields: [String: CellValue]

    public init(id: String, number: Int, version: Int, createdAt: Date, createdBy: String, modifiedAt: Date, modifiedBy: String,
                deleted: Bool, fields: [String: CellValue]) {
        self.id = id; self.number = number; self.version = version; self.createdAt = createdAt; self.createdBy = createdBy
        self.modifiedAt = modifiedAt; self.modifiedBy = modifiedBy; self.deleted = deleted; self.fields = fields
    }
}

/// A change to one record: the version it was read at, and the new values by field id or name.
public struct RecordPatch: Sendable {
    public var id: String
    public var version: Int
    public var fields: [String: CellValue]

    public init(id: String, version: Int, fields: [String: CellValue]) {
        self.id = id; self.version = version; self.fields = fields
    }
}

/// What a record write works with: the table, its fields and their codecs, its formulas.
struct TableContext {
    let table: UserTable
    let base: TableBase
    var role: BaseRole
    let fields: [TableField]
    let codecs: [String: FieldCodec]
    let plan: FormulaPlan
    /// What the rules leave the reader (everything for owners).
    var access: TableAccess = .all
    /// Whose view this is: the caller, or the person an owner previews the table as.
    var reader: Principal

    /// A field the reader may see, by id or name (a hidden one is not there for them).
    func field(_ key: String) -> TableField? {
        guard let f = anyField(key), !access.hidden.contains(f.id!) else { return nil }
        return f
    }
    func anyField(_ key: String) -> TableField? { fields.first { $0.id == key } ?? fields.first { $0.name == key } }
    var visible: [TableField] { fields.filter { !access.hidden.contains($0.id!) } }
    var stored: [TableField] { fields.filter { $0.columnName != nil } }
    func isEditable(_ field: TableField) -> Bool {
        role.canEditRecords && !field.fieldKind.isComputed && !access.readOnly.contains(field.id!) && !access.hidden.contains(field.id!)
    }
}

extension TablesService {
    /// The table as the caller may work with it: their role checked, their rules applied. With
    /// `previewAs`, an owner reads the table as that person would (their role, rules and "me").
    func context(_ needed: BaseRole, table tableID: String, action: String, request: RequestContext, previewAs: String? = nil,
                 on db: any Database) async throws -> TableContext {
        var (table, base, role) = try await require(previewAs == nil ? needed : .owner, table: tableID, action: action, context: request, on: db)
        var reader = request.principal
        if let previewAs, previewAs != request.principal.id {
            guard let staff = try await Staff.find(previewAs, on: db) else { throw RoundsError.validation("as: no such staff member") }
            reader = try await Principal.of(staff, on: db)
            guard let theirs = try await self.role(on: base, reader, on: db) else {
                throw RoundsError.validation("as: \(staff.displayName) has no role on this base, so would see nothing")
            }
            role = theirs
            try await audit.record("table.preview", entityType: "table", entityID: tableID, hospitalID: base.hospitalID,
                                   detail: "as \(staff.displayName) (\(theirs.rawValue))", context: request, on: db)
        }
        let fields = try await fields(of: tableID, on: db)
        let plan = try FormulaPlan(fields: fields, timeZone: timeZone)
        return TableContext(table: table, base: base, role: role, fields: fields,
                            codecs: Dictionary(fields.map { ($0.id!, FieldCodec($0, timeZone: timeZone)) }, uniquingKeysWith: { a, _ in a }),
                            plan: plan, access: try await access(for: role, table: table, fields: fields, plan: plan, on: db), reader: reader)
    }

    // MARK: Reading rows

    struct Row {
        var id: String
        var number: Int
        var version: Int
        var createdAt: Date
        var createdBy: String
        var modifiedAt: Date
        var modifiedBy: String
        var deletedAt: Date?
        /// By field id, for the fields with a column.
        var values: [String: StoredValue]
    }

    func selectColumns(_ ctx: TableContext) -> [any SQLExpression] {
        TableSchema.System.allCases.map { SQLIdentifier($0.rawValue) } + ctx.stored.map { SQLIdentifier($0.columnName!) }
    }

    func decode(_ row: any SQLRow, _ ctx: TableContext) throws -> Row {
        var values: [String: StoredValue] = [:]
        for field in ctx.stored {
            values[field.id!] = try RecordRow.value(row, column: field.columnName!, storage: ctx.codecs[field.id!]!.storage)
        }
        return Row(id: try row.decode(column: "id", as: String.self),
                   number: try row.decode(column: "auto_number", as: Int.self),
                   version: try row.decode(column: "version", as: Int.self),
                   createdAt: Date(timeIntervalSince1970: try row.decode(column: "created_at", as: Double.self)),
                   createdBy: try row.decode(column: "created_by", as: String.self),
                   modifiedAt: Date(timeIntervalSince1970: try row.decode(column: "modified_at", as: Double.self)),
                   modifiedBy: try row.decode(column: "modified_by", as: String.self),
                   deletedAt: try row.decode(column: "deleted_at", as: Double?.self).map { Date(timeIntervalSince1970: $0) },
                   values: values)
    }

    /// Rows by id; those outside the reader's row rule are not there for them.
    /// `links: false` leaves the rows' own links out (a record linked from a million others would
    /// read them all): for reading through a link, or only checking a record is there.
    func rows(ids: [String], _ ctx: TableContext, lock: Bool, links: Bool = true, on db: any Database) async throws -> [String: Row] {
        guard !ids.isEmpty else { return [:] }
        let sql = db as! any SQLDatabase
        var query = sqlText("SELECT \(SQLList(selectColumns(ctx))) FROM \(ident: ctx.table.sqlName) WHERE id IN (\(binds: ids))")
        if let scope = try recordSQL(ctx, sql).scope() { query += " AND \(scope)" }
        // PostgreSQL: the rows stay ours until the commit (SQLite: the write gate does this).
        if lock, TableDialect(sql) == .postgres { query += " FOR UPDATE" }
        var found = try await sql.raw(query).all().map { try decode($0, ctx) }
        if links { try await attachLinks(&found, ctx, on: db) }
        return Dictionary(found.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The API's record, patient ids shown as MRNs.
    func record(_ row: Row, _ ctx: TableContext, mrns: [String: String], linked: Linked = .none) -> TableRecord {
        var fields: [String: CellValue] = [:]
        for field in ctx.visible {
            let codec = ctx.codecs[field.id!]!
            switch field.fieldKind {
            case .link, .lookup, .rollup: fields[field.id!] = linkCell(field, row: row, ctx, linked: linked)
            case .autoNumber: fields[field.id!] = .number(Double(row.number))
            case .createdTime: fields[field.id!] = .text(FieldCodec.isoText(row.createdAt, timeZone))
            case .modifiedTime: fields[field.id!] = .text(FieldCodec.isoText(row.modifiedAt, timeZone))
            case .createdBy: fields[field.id!] = .text(row.createdBy)
            case .modifiedBy: fields[field.id!] = .text(row.modifiedBy)
            case .patient:
                if case .text(let id)? = row.values[field.id!] { fields[field.id!] = .text(mrns[id] ?? id) } else { fields[field.id!] = .null }
            default: fields[field.id!] = codec.cell(row.values[field.id!] ?? .null)
            }
        }
        return TableRecord(id: row.id, number: row.number, version: row.version, createdAt: row.createdAt, createdBy: row.createdBy,
                           modifiedAt: row.modifiedAt, modifiedBy: row.modifiedBy, deleted: row.deletedAt != nil, fields: fields)
    }

    func mrns(of rows: [Row], _ ctx: TableContext, on db: any Database) async throws -> [String: String] {
        let ids = Set(rows.flatMap { row in ctx.fields.filter { $0.fieldKind == .patient }.compactMap { f -> String? in
            if case .text(let id)? = row.values[f.id!] { return id }; return nil } })
        guard !ids.isEmpty else { return [:] }
        return Dictionary(try await Patient.query(on: db).filter(\.$id ~~ ids).all().map { ($0.id!, $0.mrn) }, uniquingKeysWith: { a, _ in a })
    }

    func patientIDs(of row: Row, _ ctx: TableContext) -> [String] {
        ctx.fields.filter { $0.fieldKind == .patient }.compactMap { f in
            if case .text(let id)? = row.values[f.id!] { return id }; return nil
        }
    }

    /// A table with a patient field is patient data: one audit row per patient shown or changed.
    func auditPatients(_ action: String, rows: [Row], _ ctx: TableContext, context: RequestContext, on db: any Database) async throws {
        guard ctx.table.hasPatients else { return }
        for row in rows {
            for patient in patientIDs(of: row, ctx) {
                try await audit.record(action, entityType: "table_record", entityID: row.id, patientID: patient,
                                       hospitalID: ctx.base.hospitalID, detail: ctx.table.name, context: context, on: db)
            }
        }
    }

    // MARK: Checking input

    /// What one batch has already looked up (a thousand records naming the same nurse and ward
    /// ask once), so a bulk write or an import runs a few queries, not a few per record.
    final class Lookups: @unchecked Sendable {
        var staff = Set<String>()
        var departments = Set<String>()
        var patients: [String: String] = [:]
        var links: [String: [String]] = [:]
        init() {}
    }

    /// Each given value checked and converted; ids of people, departments and patients looked up
    /// (patients by MRN in the base's hospital). Problems are collected, not thrown one by one.
    func stored(_ input: [String: CellValue], _ ctx: TableContext, path: String, problems: inout [RoundsError.Item],
                lookups: Lookups = Lookups(), on db: any Database) async throws -> [String: StoredValue] {
        var out: [String: StoredValue] = [:]
        for (key, value) in input {
            guard let field = ctx.field(key) else {
                problems.append(.init(path: "\(path).\(key)", reason: "there is no such field in this table"))
                continue
            }
            guard !ctx.access.readOnly.contains(field.id!) else {
                problems.append(.init(path: "\(path).\(field.name)", reason: "this field is read-only for your role"))
                continue
            }
            do {
                var stored = try ctx.codecs[field.id!]!.store(value)
                if case .text(let raw) = stored {
                    switch field.fieldKind {
                    case .person:
                        let ids = Set(field.fieldOptions.many == true ? FieldCodec.jsonList(raw) : [raw])
                        let unknown = ids.subtracting(lookups.staff)
                        if !unknown.isEmpty {
                            let found = try await Staff.query(on: db).filter(\.$id ~~ Array(unknown)).all(\.$id)
                            lookups.staff.formUnion(found)
                            if found.count != unknown.count { throw CellProblem(field: field.name, reason: "names someone who is not on the staff") }
                        }
                    case .department:
                        if !lookups.departments.contains(raw) {
                            guard let d = try await Department.find(raw, on: db), d.hospitalID == ctx.base.hospitalID else {
                                throw CellProblem(field: field.name, reason: "is not a department of this hospital")
                            }
                            lookups.departments.insert(raw)
                        }
                    case .patient:
                        // By MRN (what people type), or by id (what the API gave back before).
                        if let known = lookups.patients[raw] {
                            stored = .text(known)
                        } else {
                            var patient = try await Patient.query(on: db).filter(\.$mrn == raw).filter(\.$hospitalID == ctx.base.hospitalID).first()
                            if patient == nil, let byID = try await Patient.find(raw, on: db), byID.hospitalID == ctx.base.hospitalID { patient = byID }
                            guard let patient else { throw CellProblem(field: field.name, reason: "no patient with MRN “\(raw)” in this hospital") }
                            lookups.patients[raw] = patient.id!
                            stored = .text(patient.id!)
                        }
                    case .link:
                        let keys = FieldCodec.jsonList(raw)
                        let cacheKey = field.id! + "\u{1}" + keys.joined(separator: "\u{1}")
                        let found: [String]
                        if let known = lookups.links[cacheKey] { found = known } else {
                            found = try await resolveLinks(keys, link: field, ctx, on: db)
                            lookups.links[cacheKey] = found
                        }
                        stored = .text(FieldCodec.json(found))
                    default: break
                    }
                }
                out[field.id!] = stored
            } catch let p as CellProblem {
                problems.append(.init(path: "\(path).\(field.name)", reason: p.reason))
            }
        }
        return out
    }

    static func refused(_ problems: [RoundsError.Item]) -> RoundsError {
        RoundsError.validation(problems.prefix(5).map { "\($0.path): \($0.reason)" }.joined(separator: "; ")
                               + (problems.count > 5 ? " (and \(problems.count - 5) more)" : "")).with(items: problems)
    }

    /// The formulas' values for a row, in order, after `changed` fields (nil: all).
    func computeFormulas(_ values: inout [String: StoredValue], row: Row?, changed: Set<String>?, _ ctx: TableContext, now: Date) {
        let steps = ctx.plan.steps(after: changed)
        guard !steps.isEmpty else { return }
        let env = FormulaEnvironment(now: now, timeZone: timeZone, workCalendar: workCalendar)
        for step in steps {
            var inputs: [String: FormulaValue] = [:]
            for name in step.formula.dependencies {
                guard let field = ctx.fields.first(where: { $0.name == name }) else { continue }
                inputs[name] = formulaInput(field, values: values, row: row, ctx, now: now)
            }
            let result = step.formula.evaluate(inputs, in: env)
            values[step.field.id!] = FieldCodec.stored(result, type: step.formula.type, timeZone: timeZone)
        }
    }

    func formulaInput(_ field: TableField, values: [String: StoredValue], row: Row?, _ ctx: TableContext, now: Date) -> FormulaValue {
        switch field.fieldKind {
        case .autoNumber: return row.map { .number(Double($0.number)) } ?? .blank
        case .createdTime: return .dateTime(row?.createdAt ?? now)
        case .modifiedTime: return .dateTime(now)
        case .createdBy, .modifiedBy: return row.map { .text(field.fieldKind == .createdBy ? $0.createdBy : $0.modifiedBy) } ?? .blank
        default: return ctx.codecs[field.id!]!.formulaValue(values[field.id!] ?? .null)
        }
    }

    // MARK: Writing

    /// Creates up to 1,000 records, all or nothing: a bad value anywhere refuses the whole batch,
    /// each problem named by record and field.
    public func createRecords(table tableID: String, _ inputs: [[String: CellValue]], context: RequestContext,
                              on db: any Database) async throws -> [TableRecord] {
        guard !inputs.isEmpty else { return [] }
        guard inputs.count <= Self.maximumBatch else { throw RoundsError.validation("records: at most \(Self.maximumBatch) at a time") }
        let ctx = try await self.context(.editor, table: tableID, action: "table.record.create", request: context, on: db)
        try await requireWritable(inputs.flatMap { $0.keys.compactMap { ctx.field($0)?.id } }, ctx, action: "table.record.create", context: context, on: db)
        var problems: [RoundsError.Item] = []
        var values: [[String: StoredValue]] = []
        let lookups = Lookups()
        for (i, input) in inputs.enumerated() {
            values.append(try await stored(input, ctx, path: "records[\(i)]", problems: &problems, lookups: lookups, on: db))
        }
        guard problems.isEmpty else { throw Self.refused(problems) }
        let checked = values
        let created: [Row] = try await withinRows(ctx, action: "table.record.create", context: context, on: db) { tx in
            try await self.insert(checked, ctx, context: context, on: tx)
        }
        let mrns = try await mrns(of: created, ctx, on: db)
        let linked = try await linked(created, ctx, context: context, on: db)
        return created.map { record($0, ctx, mrns: mrns, linked: linked) }
    }

    /// Inserts checked records (their formulas computed here), with their history, audit rows and event.
    func insert(_ checked: [[String: StoredValue]], _ ctx: TableContext, context: RequestContext, on tx: any Database) async throws -> [Row] {
        let sql = tx as! any SQLDatabase
        let now = clock.now(), actor = context.principal.id
        let first = try await takeNumbers(ctx.table.id!, count: checked.count, on: tx)
        var rows: [Row] = []
        var changes: [CellChange] = []
        var links: [String: [(record: String, to: [String])]] = [:]
        for (i, var v) in checked.enumerated() {
            var row = Row(id: ids.next(), number: first + i, version: 1, createdAt: now, createdBy: actor,
                          modifiedAt: now, modifiedBy: actor, deletedAt: nil, values: [:])
            computeFormulas(&v, row: row, changed: nil, ctx, now: now)
            row.values = v
            for link in ctx.fields where link.fieldKind == .link {
                if case .text(let list)? = v[link.id!] { links[link.id!, default: []].append((row.id, FieldCodec.jsonList(list))) }
            }
            changes.append(change(ctx, record: row.id, field: nil, action: "created", old: nil, new: nil, version: 1, context: context))
            rows.append(row)
        }
        // Many rows a statement (within both databases' limits on parameters): a bulk write of a
        // thousand records is a handful of statements, not thousands.
        let columns = TableSchema.System.allCases.filter { $0 != .deletedAt }.map(\.rawValue) + ctx.stored.map { $0.columnName! }
        let perStatement = max(1, min(500, 30_000 / columns.count))
        for start in stride(from: 0, to: rows.count, by: perStatement) {
            var statement = sqlText("INSERT INTO \(ident: ctx.table.sqlName) (\(idents: columns, joinedBy: ", ")) VALUES ")
            for (k, row) in rows[start..<min(start + perStatement, rows.count)].enumerated() {
                var binds: [any Encodable & Sendable] = [row.id, row.number, now.timeIntervalSince1970, actor, now.timeIntervalSince1970, actor, 1]
                for field in ctx.stored {
                    binds.append((row.values[field.id!] ?? (field.fieldKind == .checkbox ? .boolean(false) : .null)).bind(as: ctx.codecs[field.id!]!.storage))
                }
                statement += k == 0 ? "(\(binds: binds))" : ", (\(binds: binds))"
            }
            try await sql.raw(statement).run()
        }
        for link in ctx.fields where link.fieldKind == .link {
            if let pairs = links[link.id!] { try await insertLinks(link, pairs, on: tx) }
        }
        for start in stride(from: 0, to: changes.count, by: 500) {
            try await Array(changes[start..<min(start + 500, changes.count)]).create(on: tx)
        }
        try await requireWithinRows(rows.map(\.id), ctx, on: tx)
        try await recordWritten(.tableRecordCreated, rows: rows, fieldIDs: [], ctx, context: context, on: tx)
        return rows
    }

    /// The next `count` auto-numbers of a table (the row update serialises concurrent creates).
    func takeNumbers(_ tableID: String, count: Int, on tx: any Database) async throws -> Int {
        let sql = tx as! any SQLDatabase
        try await sql.raw("UPDATE \(ident: UserTable.schema) SET last_number = last_number + \(literal: count) WHERE id = \(bind: tableID)").run()
        let last = try await sql.raw("SELECT last_number FROM \(ident: UserTable.schema) WHERE id = \(bind: tableID)").first()!
            .decode(column: "last_number", as: Int.self)
        return last - count + 1
    }

    func history(_ ctx: TableContext, record: String, field: String?, action: String, old: CellValue?, new: CellValue?,
                 version: Int, context: RequestContext, on db: any Database) async throws {
        try await change(ctx, record: record, field: field, action: action, old: old, new: new, version: version, context: context).create(on: db)
    }

    func change(_ ctx: TableContext, record: String, field: String?, action: String, old: CellValue?, new: CellValue?,
                version: Int, context: RequestContext) -> CellChange {
        let change = CellChange()
        change.id = ids.next(); change.tableID = ctx.table.id!; change.recordID = record; change.fieldID = field
        change.action = action; change.oldValue = old.map(Self.json); change.newValue = new.map(Self.json)
        change.version = version; change.actorID = context.principal.id; change.actorName = context.principal.displayName
        change.at = clock.now()
        return change
    }

    static func json(_ value: CellValue) -> String { String(decoding: try! JSONEncoder().encode(value), as: UTF8.self) }

    /// The audit row(s) and the outbox event of a write.
    func recordWritten(_ kind: EventKind, rows: [Row], fieldIDs: [String], _ ctx: TableContext, context: RequestContext,
                       on tx: any Database) async throws {
        let action = kind.rawValue.replacingOccurrences(of: "table.record_", with: "table.record.")
        if ctx.table.hasPatients {
            try await auditPatients(action, rows: rows, ctx, context: context, on: tx)
        }
        try await audit.record(action, entityType: "table", entityID: ctx.table.id, hospitalID: ctx.base.hospitalID,
                               detail: "\(ctx.table.name): \(rows.count) record(s)", context: context, on: tx)
        let payload = TableEvent.RecordChanged(baseID: ctx.base.id!, tableID: ctx.table.id!, recordIDs: rows.map(\.id), fieldIDs: fieldIDs,
                                               actorID: context.principal.id)
        try await events.emit(try PendingEvent(kind, patientID: nil, encounterID: nil, hospitalID: ctx.base.hospitalID, payload: payload), in: tx)
        try await events.notifier.signal(.tableChanged(ctx.table.id!), on: tx)
    }

    /// Changes records, each from the version its writer read. Another person's change since
    /// then to a different field is kept (the two merge); to the same field, the write is a 409
    /// with that field's current value — never a silent overwrite.
    public func updateRecords(table tableID: String, _ patches: [RecordPatch], context: RequestContext,
                              on db: any Database) async throws -> [TableRecord] {
        guard !patches.isEmpty else { return [] }
        guard patches.count <= Self.maximumBatch else { throw RoundsError.validation("records: at most \(Self.maximumBatch) at a time") }
        guard Set(patches.map(\.id)).count == patches.count else { throw RoundsError.validation("records: a record is there twice") }
        let ctx = try await self.context(.editor, table: tableID, action: "table.record.update", request: context, on: db)
        try await requireWritable(patches.flatMap { $0.fields.keys.compactMap { ctx.field($0)?.id } }, ctx, action: "table.record.update", context: context, on: db)
        var problems: [RoundsError.Item] = []
        var given: [[String: StoredValue]] = []
        let lookups = Lookups()
        for (i, patch) in patches.enumerated() {
            given.append(try await stored(patch.fields, ctx, path: "records[\(i)]", problems: &problems, lookups: lookups, on: db))
        }
        guard problems.isEmpty else { throw Self.refused(problems) }
        let now = clock.now(), actor = context.principal.id, checked = given
        let updated: [Row] = try await withinRows(ctx, action: "table.record.update", context: context, on: db) { tx in
            let sql = tx as! any SQLDatabase
            let current = try await self.rows(ids: patches.map(\.id), ctx, lock: true, on: tx)
            var conflicts: [RoundsError.Item] = []
            var out: [Row] = []
            var touched = Set<String>()
            for (i, patch) in patches.enumerated() {
                guard var row = current[patch.id], row.deletedAt == nil else { throw RoundsError.notFound("record", id: patch.id) }
                if patch.version != row.version {
                    let since = try await CellChange.query(on: tx).filter(\.$recordID == patch.id).filter(\.$version > patch.version).all()
                    let changedSince = Set(since.compactMap(\.fieldID))
                    for fieldID in checked[i].keys where changedSince.contains(fieldID) {
                        let field = ctx.fields.first { $0.id == fieldID }!
                        let value = ctx.codecs[fieldID]!.cell(row.values[fieldID] ?? .null)
                        conflicts.append(.init(path: "records[\(i)].\(field.name)",
                                               reason: "changed by someone else since version \(patch.version)", current: Self.json(value)))
                    }
                }
                var values = row.values
                var changed: [(String, StoredValue, StoredValue)] = []
                for (fieldID, value) in checked[i] where (values[fieldID] ?? .null) != value {
                    changed.append((fieldID, values[fieldID] ?? .null, value))
                    values[fieldID] = value
                }
                guard !changed.isEmpty else { out.append(row); continue }
                let names = Set(changed.map { id in ctx.fields.first { $0.id == id.0 }!.name })
                self.computeFormulas(&values, row: row, changed: names, ctx, now: now)
                let newVersion = row.version + 1
                var assignments: [SQLQueryString] = ["version = \(bind: newVersion)", "modified_at = \(bind: now.timeIntervalSince1970)",
                                                     "modified_by = \(bind: actor)"]
                for field in ctx.stored where (values[field.id!] ?? .null) != (row.values[field.id!] ?? .null) {
                    assignments.append("\(ident: field.columnName!) = \(bind: (values[field.id!] ?? .null).bind(as: ctx.codecs[field.id!]!.storage))")
                }
                try await sql.raw("UPDATE \(ident: ctx.table.sqlName) SET \(SQLList(assignments)) WHERE id = \(bind: row.id)").run()
                for (fieldID, _, new) in changed {
                    guard let link = ctx.fields.first(where: { $0.id == fieldID }), link.fieldKind == .link else { continue }
                    var list: [String] = []
                    if case .text(let t) = new { list = FieldCodec.jsonList(t) }
                    try await self.writeLinks(link, record: row.id, to: list, replacing: true, on: tx)
                }
                for (fieldID, old, new) in changed {
                    let codec = ctx.codecs[fieldID]!
                    try await self.history(ctx, record: row.id, field: fieldID, action: "set", old: codec.cell(old), new: codec.cell(new),
                                           version: newVersion, context: context, on: tx)
                    touched.insert(fieldID)
                }
                row.values = values; row.version = newVersion; row.modifiedAt = now; row.modifiedBy = actor
                out.append(row)
            }
            guard conflicts.isEmpty else {
                throw RoundsError.conflict(conflicts.map { "\($0.path): \($0.reason)" }.joined(separator: "; ")).with(items: conflicts)
            }
            let written = out.filter { r in current[r.id]?.version != r.version }
            try await self.requireWithinRows(written.map(\.id), ctx, on: tx)
            if !written.isEmpty {
                try await self.recordWritten(.tableRecordUpdated, rows: written, fieldIDs: Array(touched).sorted(), ctx, context: context, on: tx)
            }
            return out
        }
        let mrns = try await mrns(of: updated, ctx, on: db)
        let linked = try await linked(updated, ctx, context: context, on: db)
        return updated.map { record($0, ctx, mrns: mrns, linked: linked) }
    }

    /// Deletes records softly (they can be restored), or restores them.
    public func deleteRecords(table tableID: String, ids recordIDs: [String], restore: Bool = false, context: RequestContext,
                              on db: any Database) async throws {
        guard !recordIDs.isEmpty else { return }
        guard recordIDs.count <= Self.maximumBatch else { throw RoundsError.validation("records: at most \(Self.maximumBatch) at a time") }
        let ctx = try await self.context(.editor, table: tableID, action: restore ? "table.record.restore" : "table.record.delete",
                                         request: context, on: db)
        let now = clock.now()
        try await events.transaction(on: db) { tx in
            let sql = tx as! any SQLDatabase
            let current = try await self.rows(ids: recordIDs, ctx, lock: true, on: tx)
            var rows: [Row] = []
            for id in recordIDs {
                guard var row = current[id] else { throw RoundsError.notFound("record", id: id) }
                guard (row.deletedAt == nil) != restore else { continue }
                row.version += 1
                try await sql.raw("""
                    UPDATE \(ident: ctx.table.sqlName) SET deleted_at = \(bind: restore ? nil : now.timeIntervalSince1970),
                      version = \(bind: row.version), modified_at = \(bind: now.timeIntervalSince1970), modified_by = \(bind: context.principal.id)
                    WHERE id = \(bind: id)
                    """).run()
                try await self.history(ctx, record: id, field: nil, action: restore ? "restored" : "deleted", old: nil, new: nil,
                                       version: row.version, context: context, on: tx)
                rows.append(row)
            }
            if !rows.isEmpty {
                try await self.recordWritten(restore ? .tableRecordRestored : .tableRecordDeleted, rows: rows, fieldIDs: [], ctx,
                                             context: context, on: tx)
            }
        }
    }

    /// One record (a deleted one too: its page offers the restore).
    public func record(table tableID: String, id: String, context: RequestContext, on db: any Database) async throws -> TableRecord {
        let ctx = try await self.context(.viewer, table: tableID, action: "table.record.read", request: context, on: db)
        guard let row = try await rows(ids: [id], ctx, lock: false, on: db)[id] else { throw RoundsError.notFound("record", id: id) }
        try await auditPatients("table.record.read", rows: [row], ctx, context: context, on: db)
        return record(row, ctx, mrns: try await mrns(of: [row], ctx, on: db), linked: try await linked([row], ctx, context: context, on: db))
    }

    public struct HistoryEntry: Sendable, Codable, Equatable {
        public var fieldID: String?
        public var fieldName: String?
        public var action: String
        public var old: CellValue?
        public var new: CellValue?
        public var version: Int
        public var actorID: String
        public var actorName: String
        public var at: Date

        public init(fieldID: String?, fieldName: String?, action: String, old: CellValue?, new: CellValue?, version: Int,
                    actorID: String, actorName: String, at: Date) {
            self.fieldID = fieldID; self.fieldName = fieldName; self.action = action; self.old = old; self.new = new
            self.version = version; self.actorID = actorID; self.actorName = actorName; self.at = at
        }
    }

    /// Every change of a record, oldest first: who, when, old → new.
    public func history(table tableID: String, record recordID: String, context: RequestContext, on db: any Database) async throws -> [HistoryEntry] {
        let ctx = try await self.context(.viewer, table: tableID, action: "table.record.history", request: context, on: db)
        guard let row = try await rows(ids: [recordID], ctx, lock: false, on: db)[recordID] else { throw RoundsError.notFound("record", id: recordID) }
        try await auditPatients("table.record.history", rows: [row], ctx, context: context, on: db)
        let decoder = JSONDecoder()
        return try await CellChange.query(on: db).filter(\.$recordID == recordID).sort(\.$version).sort(\.$id).all()
            .filter { c in c.fieldID.map { !ctx.access.hidden.contains($0) } ?? true }.map { c in
            HistoryEntry(fieldID: c.fieldID, fieldName: c.fieldID.flatMap { id in ctx.fields.first { $0.id == id }?.name },
                         action: c.action, old: c.oldValue.flatMap { try? decoder.decode(CellValue.self, from: Data($0.utf8)) },
                         new: c.newValue.flatMap { try? decoder.decode(CellValue.self, from: Data($0.utf8)) },
                         version: c.version, actorID: c.actorID, actorName: c.actorName, at: c.at)
        }
    }

    /// Computes formula fields for every record (a formula added or changed), in batches.
    func recompute(table: UserTable, fields: [TableField], only: Set<String>, on tx: any Database) async throws {
        let base = try await TableBase.find(table.baseID, on: tx)!
        let ctx = TableContext(table: table, base: base, role: .owner, fields: fields,
                               codecs: Dictionary(fields.map { ($0.id!, FieldCodec($0, timeZone: timeZone)) }, uniquingKeysWith: { a, _ in a }),
                               plan: try FormulaPlan(fields: fields, timeZone: timeZone),
                               reader: Principal(kind: .staff, id: "system", displayName: "Rounds", isSuperuser: true))
        let sql = tx as! any SQLDatabase
        let now = clock.now()
        let targets = ctx.plan.steps.filter { only.contains($0.field.id!) }.map(\.field)
        guard !targets.isEmpty else { return }
        var cursor = ""
        while true {
            let page = try await sql.raw("SELECT \(SQLList(selectColumns(ctx))) FROM \(ident: table.sqlName) WHERE id > \(bind: cursor) ORDER BY id LIMIT 500").all()
                .map { try decode($0, ctx) }
            guard let last = page.last else { break }
            for row in page {
                var values = row.values
                computeFormulas(&values, row: row, changed: nil, ctx, now: now)
                let assignments: [SQLQueryString] = targets.map { "\(ident: $0.columnName!) = \(bind: (values[$0.id!] ?? .null).bind(as: ctx.codecs[$0.id!]!.storage))" }
                try await sql.raw("UPDATE \(ident: table.sqlName) SET \(SQLList(assignments)) WHERE id = \(bind: row.id)").run()
            }
            cursor = last.id
        }
    }
}
