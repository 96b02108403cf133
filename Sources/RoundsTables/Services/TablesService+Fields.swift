import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

extension TablesService {
    public struct FieldSpec: Sendable {
        public var name: String
        public var kind: FieldKind
        public var options: FieldOptions

        public init(name: String, kind: FieldKind, options: FieldOptions = FieldOptions()) {
            self.name = name; self.kind = kind; self.options = options
        }
    }

    static func fieldName(_ raw: String) throws -> String {
        let name = try Validate.text(raw, field: "name", max: 100)
        // Formulas write fields as {名称} or [名称].
        guard !name.contains(where: { "{}[]".contains($0) }) else { throw RoundsError.validation("name: a field name cannot contain { } [ ]") }
        return name
    }

    /// The options as kept: choices get ids and colours, numbers a sane precision, formulas are
    /// checked against the other fields (their result type is kept with them).
    func normalised(_ spec: FieldSpec, existing: FieldOptions? = nil) throws -> FieldOptions {
        var o = spec.options
        switch spec.kind {
        case .singleSelect, .multiSelect:
            var seen = Set<String>()
            var choices: [SelectOption] = []
            for (i, raw) in (o.choices ?? []).enumerated() {
                let name = raw.name.trimmingCharacters(in: .whitespaces)
                guard !name.isEmpty, name.count <= 100 else { throw RoundsError.validation("choices[\(i)]: a name of 1 to 100 characters") }
                guard seen.insert(name).inserted else { throw RoundsError.validation("choices: “\(name)” is there twice") }
                // An existing choice keeps its id (the records refer to it); a new one gets one.
                let id = raw.id.isEmpty ? ids.next() : raw.id
                choices.append(SelectOption(id: id, name: name, color: SelectOption.colors.contains(raw.color) ? raw.color : SelectOption.colors[i % SelectOption.colors.count]))
            }
            o.choices = choices
        case .number, .currency, .percent:
            if let p = o.precision, !(0...8).contains(p) { throw RoundsError.validation("precision: 0 to 8 decimals") }
            if let u = o.unit, u.count > 20 { throw RoundsError.validation("unit: at most 20 characters") }
        case .rating:
            if let m = o.max, !(1...10).contains(m) { throw RoundsError.validation("max: 1 to 10 stars") }
        case .formula:
            guard let source = o.formula?.trimmingCharacters(in: .whitespacesAndNewlines), !source.isEmpty else {
                throw RoundsError.validation("formula: required")
            }
            o.formula = source
        default: break
        }
        return o
    }

    static func encode(_ options: FieldOptions) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try! encoder.encode(options), as: UTF8.self)
    }

    /// Adds a field (owners); a formula is computed for every record at once.
    public func addField(table tableID: String, _ spec: FieldSpec, context: RequestContext, on db: any Database) async throws -> TableField {
        let (table, base, _) = try await require(.owner, table: tableID, action: "table.field.create", context: context, on: db)
        let name = try Self.fieldName(spec.name)
        var fields = try await fields(of: tableID, on: db)
        guard fields.count < Self.maximumFields else { throw RoundsError.validation("a table has at most \(Self.maximumFields) fields") }
        guard !fields.contains(where: { $0.name == name }) else { throw RoundsError.conflict("a field named “\(name)” exists") }
        let field = TableField()
        field.id = ids.next(); field.tableID = tableID; field.name = name; field.kind = spec.kind.rawValue
        var options = try normalised(spec)
        var linkPlan: LinkPlan?
        switch spec.kind {
        case .link:
            options.many = options.many ?? true
            linkPlan = try await planLink(field, options: &options, table: table, on: db)
        case .lookup, .rollup:
            try await checkLookup(spec.kind, &options, fields: fields, on: db)
        default: break
        }
        field.options = Self.encode(options)
        field.position = (fields.map(\.position).max() ?? -1) + 1
        field.isPrimary = false; field.createdAt = clock.now()
        if spec.kind == .formula {
            let plan = try FormulaPlan(fields: fields + [field], timeZone: timeZone)
            let step = plan.steps.first { $0.field.id == field.id }!
            options.resultType = FieldCodec.code(of: step.formula.type)
            field.options = Self.encode(options)
        }
        if spec.kind.hasOwnColumn {
            field.columnName = "f\(table.nextColumn)"
            table.nextColumn += 1
        }
        fields.append(field)
        let allFields = fields, link = linkPlan
        try await db.transaction { tx in
            try await field.create(on: tx)
            if let link { try await self.createLink(link, on: tx) }
            if spec.kind == .patient { table.hasPatients = true }
            try await table.save(on: tx)
            if let column = field.columnName {
                try await TableSchema(tx).addColumn(table.sqlName, column, FieldCodec(field, timeZone: timeZone).storage)
            }
            if spec.kind == .formula { try await self.recompute(table: table, fields: allFields, only: [field.id!], on: tx) }
            try await audit.record("table.field.create", entityType: "table_field", entityID: field.id, hospitalID: base.hospitalID,
                                   detail: "\(table.name) · \(name) (\(spec.kind.rawValue))", context: context, on: tx)
        }
        return field
    }

    /// Renames a field, changes its options, or changes its kind — converting every value
    /// (one that does not convert is left empty and counted in the answer). Formulas that read
    /// a renamed field follow the new name.
    public struct FieldChange: Sendable {
        public var field: TableField
        /// Values that could not be converted and were left empty.
        public var emptied: Int
    }

    public func updateField(_ fieldID: String, name: String?, kind: FieldKind?, options: FieldOptions?, context: RequestContext,
                            on db: any Database) async throws -> FieldChange {
        guard let field = try await TableField.find(fieldID, on: db) else { throw RoundsError.notFound("field", id: fieldID) }
        let (table, base, _) = try await require(.owner, table: field.tableID, action: "table.field.update", context: context, on: db)
        var fields = try await fields(of: table.id!, on: db)
        let oldName = field.name, oldKind = field.fieldKind
        let before = FieldCodec(field, timeZone: timeZone)
        if let name {
            let name = try Self.fieldName(name)
            guard name == oldName || !fields.contains(where: { $0.name == name }) else { throw RoundsError.conflict("a field named “\(name)” exists") }
            field.name = name
        }
        let newKind = kind ?? oldKind
        if newKind != oldKind {
            guard !field.isPrimary || [.text, .number, .autoNumber, .phone, .email, .url, .formula, .date].contains(newKind) else {
                throw RoundsError.validation("kind: the first field names each record and must stay a simple value")
            }
            guard oldKind.hasOwnColumn || newKind == oldKind else { throw RoundsError.validation("kind: a system field keeps its kind") }
            guard !newKind.readsLinks else { throw RoundsError.validation("kind: add a new field to link, look up or roll up records") }
            let rules = try await rowRulesUse(fieldID, table: table.id!, on: db)
            guard rules.isEmpty else {
                throw RoundsError.conflict("the row rule of \(rules.joined(separator: ", ")) filters on this field; change it first")
            }
            field.kind = newKind.rawValue
        }
        var newOptions = try normalised(FieldSpec(name: field.name, kind: newKind, options: options ?? field.fieldOptions))
        switch newKind {
        case .link:
            // Which table and junction a link uses stays; whether it holds one or many may change.
            var kept = field.fieldOptions
            kept.many = newOptions.many ?? kept.many
            newOptions = kept
        case .lookup, .rollup:
            try await checkLookup(newKind, &newOptions, fields: fields, on: db)
        default: break
        }
        // Formulas reading this field by its old name now read the new one.
        var renamedFormulas: [TableField] = []
        if field.name != oldName {
            for other in fields where other.id != field.id && other.fieldKind == .formula {
                var o = other.fieldOptions
                guard let source = o.formula, let rewritten = Optional(FormulaRename.rename(source, from: oldName, to: field.name)), rewritten != source else { continue }
                o.formula = rewritten
                other.options = Self.encode(o)
                renamedFormulas.append(other)
            }
        }
        field.options = Self.encode(newOptions)
        fields = fields.map { $0.id == field.id ? field : $0 }
        let plan = try FormulaPlan(fields: fields, timeZone: timeZone)
        if newKind == .formula, let step = plan.steps.first(where: { $0.field.id == field.id }) {
            newOptions.resultType = FieldCodec.code(of: step.formula.type)
            field.options = Self.encode(newOptions)
        }
        // A kind a formula reads may not change under it into something it cannot read.
        if newKind != oldKind {
            _ = try FormulaPlan(fields: fields.map { $0.id == field.id ? field : $0 }, timeZone: timeZone)
        }
        let renamed = renamedFormulas, planned = newOptions
        let emptied: Int = try await db.transaction { tx in
            var emptied = 0
            var newOptions = planned
            let schema = TableSchema(tx)
            if newKind != oldKind, let oldColumn = field.columnName {
                // Text becoming a select keeps its values: each distinct one becomes a choice.
                if newKind == .singleSelect || newKind == .multiSelect {
                    var choices = newOptions.choices ?? []
                    var cursor: String?
                    while true {
                        let batch = try await schema.readColumn(table.sqlName, oldColumn, storage: before.storage, after: cursor, limit: 500)
                        guard let last = batch.last else { break }
                        for (_, value) in batch where value != .null {
                            for name in Self.choiceNames(before.cell(value), multi: newKind == .multiSelect)
                            where !choices.contains(where: { $0.name == name }) && choices.count < 500 {
                                choices.append(SelectOption(id: self.ids.next(), name: name, color: SelectOption.colors[choices.count % SelectOption.colors.count]))
                            }
                        }
                        cursor = last.id
                    }
                    newOptions.choices = choices
                    field.options = Self.encode(newOptions)
                }
                let after = FieldCodec(field, timeZone: timeZone)
                // A new column of the new kind, every value converted, the old column dropped.
                let newColumn = "f\(table.nextColumn)"
                table.nextColumn += 1
                try await schema.addColumn(table.sqlName, newColumn, after.storage)
                if newKind != .formula {
                    var cursor: String?
                    while true {
                        let batch = try await schema.readColumn(table.sqlName, oldColumn, storage: before.storage, after: cursor, limit: 500)
                        guard let last = batch.last else { break }
                        for (id, value) in batch where value != .null {
                            if let converted = try? after.store(Self.convertible(before.cell(value), to: newKind)) {
                                try await schema.write(table.sqlName, newColumn, id: id, converted, storage: after.storage)
                            } else {
                                emptied += 1
                            }
                        }
                        cursor = last.id
                    }
                }
                try await schema.dropColumn(table.sqlName, oldColumn)
                field.columnName = newColumn
            }
            try await field.save(on: tx)
            for other in renamed { try await other.save(on: tx) }
            if newKind == .patient { table.hasPatients = true }
            try await table.save(on: tx)
            let allFields = try await self.fields(of: table.id!, on: tx)
            // Formulas reading this field, and the field itself when it is one, are computed anew.
            let affected = plan.steps(after: [field.name, oldName]).map { $0.field.id! } + (newKind == .formula ? [field.id!] : [])
            if !affected.isEmpty { try await self.recompute(table: table, fields: allFields, only: Set(affected), on: tx) }
            try await audit.record("table.field.update", entityType: "table_field", entityID: field.id, hospitalID: base.hospitalID,
                                   detail: "\(table.name) · \(oldName) → \(field.name) (\(oldKind.rawValue) → \(newKind.rawValue)); \(emptied) emptied",
                                   context: context, on: tx)
            return emptied
        }
        return FieldChange(field: field, emptied: emptied)
    }

    static func choiceNames(_ cell: CellValue, multi: Bool) -> [String] {
        switch cell {
        case .list(let items): return items.flatMap { choiceNames($0, multi: multi) }
        case .text(let t):
            let parts = multi ? t.split(whereSeparator: { $0 == "," || $0 == "，" || $0 == "、" }).map(String.init) : [t]
            return parts.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && $0.count <= 100 }
        case .number(let n): return [FormulaText.number(n)]
        case .bool(let b): return [b ? "是" : "否"]
        case .null: return []
        }
    }

    /// A value read in one kind, offered to another: a date-time keeps its day for a date, a
    /// list its items joined for text, text splits into choices.
    static func convertible(_ cell: CellValue, to kind: FieldKind) -> CellValue {
        switch (cell, kind) {
        case (.list(let items), .text), (.list(let items), .longText):
            return .text(items.compactMap { if case .text(let t) = $0 { return t }; return $0.description }.joined(separator: ", "))
        case (.text(let t), .date) where t.count > 10: return .text(String(t.prefix(10)))
        case (.bool(let b), .text): return .text(b ? "是" : "否")
        default: return cell
        }
    }

    /// Deletes a field (owners). The first field stays, and so does a field a formula reads
    /// (the refusal names the formula).
    public func deleteField(_ fieldID: String, context: RequestContext, on db: any Database) async throws {
        guard let field = try await TableField.find(fieldID, on: db) else { throw RoundsError.notFound("field", id: fieldID) }
        let (table, base, _) = try await require(.owner, table: field.tableID, action: "table.field.delete", context: context, on: db)
        guard !field.isPrimary else { throw RoundsError.conflict("the first field names each record and cannot be deleted") }
        let fields = try await fields(of: table.id!, on: db)
        let readers = fields.filter { other in
            other.fieldKind == .formula && (try? FormulaParser.parse(other.fieldOptions.formula ?? "").fieldNames.contains(field.name)) == true
        }
        guard readers.isEmpty else {
            throw RoundsError.conflict("the formula \(readers.map { "{\($0.name)}" }.joined(separator: "、")) reads this field; change it first")
        }
        let rules = try await rowRulesUse(fieldID, table: table.id!, on: db)
        guard rules.isEmpty else {
            throw RoundsError.conflict("the row rule of \(rules.joined(separator: ", ")) filters on this field; change it first")
        }
        let lookups = try await readersThroughLinks(of: field, base: table.baseID, on: db)
        guard lookups.isEmpty else {
            throw RoundsError.conflict("\(lookups.map { "“\($0.name)”" }.joined(separator: "、")) read through this field; delete or change them first")
        }
        // A link goes with its other side and its junction table.
        let inverse = field.fieldKind == .link ? try await TableField.find(field.fieldOptions.inverse ?? "", on: db) : nil
        if let inverse {
            let theirs = try await rowRulesUse(inverse.id!, table: inverse.tableID, on: db)
            guard theirs.isEmpty else { throw RoundsError.conflict("a row rule of the linked table filters on the link back; change it first") }
        }
        try await db.transaction { tx in
            if let column = field.columnName { try await TableSchema(tx).dropColumn(table.sqlName, column) }
            if field.fieldKind == .link, let junction = field.fieldOptions.junction {
                try await TableSchema(tx).dropTable(junction)
                try await inverse?.delete(on: tx)
            }
            try await field.delete(on: tx)
            let remaining = fields.filter { $0.id != fieldID }
            table.hasPatients = remaining.contains { $0.fieldKind == .patient }
            try await table.save(on: tx)
            try await audit.record("table.field.delete", entityType: "table_field", entityID: fieldID, hospitalID: base.hospitalID,
                                   detail: "\(table.name) · \(field.name)", context: context, on: tx)
        }
    }
}
