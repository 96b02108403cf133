import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import RoundsTables
import Vapor

/// The table pages: my bases, a base's tables, and the grid (edit in place, filter, sort,
/// group, add fields and records, import CSV). Handlers decode, call the table service, lay out.
struct TablesPages {
    func register(_ routes: any RoutesBuilder) {
        routes.get("tables", use: home)
        routes.get("tables", "formulas", use: formulas)
        routes.post("tables", "bases", use: createBase)
        routes.get("tables", ":baseId", use: base)
        routes.post("tables", ":baseId", "tables", use: createTable)
        routes.get("tables", ":baseId", ":tableId", use: grid)
        routes.post("tables", ":baseId", ":tableId", "fields", use: addField)
        routes.post("tables", ":baseId", ":tableId", "records", use: addRecord)
        routes.get("tables", ":baseId", ":tableId", "export.csv", use: export)
        routes.get("tables", ":baseId", ":tableId", "rules", use: rules)
        routes.post("tables", ":baseId", ":tableId", "rules", use: saveRules)
    }

    struct Option: Encodable { var value: String; var label: String; var selected: Bool = false }

    func field(_ req: Request, _ name: String) -> String { (try? req.content.get(String.self, at: name)) ?? "" }

    // MARK: Bases

    struct HomeData: Encodable {
        struct BaseRow: Encodable { var id: String; var name: String; var space: String; var role: String; var tables: Int }
        var bases: [BaseRow]
        var spaces: [Option]
        var unreadMentions: Int
    }

    @Sendable func home(req: Request) async throws -> Response {
        let context = try req.context()
        let t = req.rounds.catalogue.table(req.locale)
        let summaries = try await req.rounds.tables.bases(context: context, on: req.db)
        let spaces = try await req.rounds.tables.spaces(context: context, on: req.db)
        let names = Dictionary(spaces.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let data = HomeData(
            bases: summaries.map { s in
                .init(id: s.base.id!, name: s.base.name, space: names[s.base.departmentID ?? s.base.hospitalID] ?? "",
                      role: t["table_role_\(s.role.rawValue)"] ?? s.role.rawValue, tables: s.tables.count)
            },
            spaces: spaces.map { Option(value: $0.id, label: $0.name) },
            unreadMentions: try await req.rounds.tables.unreadMentions(context: context, on: req.db))
        return try await req.page("tables_home", title: "tables_title", data: data, error: req.query[String.self, at: "error"])
    }

    @Sendable func createBase(req: Request) async throws -> Response {
        do {
            let context = try req.context()
            let space = field(req, "space")
            let spaces = try await req.rounds.tables.spaces(context: context, on: req.db)
            guard let chosen = spaces.first(where: { $0.id == space }) else { throw RoundsError.validation("space: choose where the base belongs") }
            let base = try await req.rounds.tables.createBase(name: field(req, "name"), hospitalID: chosen.hospitalID,
                                                              departmentID: chosen.departmentID, context: context, on: req.db)
            return req.redirect(to: "/tables/\(base.id!)")
        } catch let error as RoundsError where [409, 422].contains(error.status) {
            return req.redirect(to: "/tables", error: error)
        }
    }

    // MARK: The formula reference

    struct FormulaData: Encodable {
        struct Function: Encodable { var name: String; var summary: String; var example: String }
        struct Category: Encodable { var id: String; var title: String; var functions: [Function] }
        var count: Int
        var categories: [Category]
    }

    /// Every function of the formula language with what it does and an example, in the
    /// reader's language (the list is the engine's own, so it cannot fall behind it).
    @Sendable func formulas(req: Request) async throws -> Response {
        _ = try req.context()
        let t = req.rounds.catalogue.table(req.locale)
        let all = FormulaFunctions.reference
        let data = FormulaData(count: all.count, categories: FormulaFunction.Category.allCases.map { c in
            .init(id: c.rawValue, title: t["formula_category_\(c.rawValue)"] ?? c.rawValue,
                  functions: all.filter { $0.category == c }.map { f in
                      .init(name: f.name, summary: req.locale == .en ? f.summaryEN : f.summaryZH, example: f.example)
                  })
        })
        return try await req.page("tables_formulas", title: "formula_reference", data: data)
    }

    // MARK: A base

    struct BaseData: Encodable {
        struct TableRow: Encodable { var id: String; var name: String; var patients: Bool }
        var id: String
        var name: String
        var role: String
        var canManage: Bool
        var tables: [TableRow]
    }

    @Sendable func base(req: Request) async throws -> Response {
        let t = req.rounds.catalogue.table(req.locale)
        let s = try await req.rounds.tables.base(req.parameters.require("baseId"), context: req.context(), on: req.db)
        let data = BaseData(id: s.base.id!, name: s.base.name, role: t["table_role_\(s.role.rawValue)"] ?? s.role.rawValue,
                            canManage: s.role.canManage, tables: s.tables.map { .init(id: $0.id!, name: $0.name, patients: $0.hasPatients) })
        return try await req.page("tables_base", title: "tables_title", data: data, error: req.query[String.self, at: "error"])
    }

    @Sendable func createTable(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId")
        do {
            let table = try await req.rounds.tables.createTable(base: baseID, name: field(req, "name"), context: req.context(), on: req.db)
            return req.redirect(to: "/tables/\(baseID)/\(table.id!)")
        } catch let error as RoundsError where [409, 422].contains(error.status) {
            return req.redirect(to: "/tables/\(baseID)", error: error)
        }
    }

    // MARK: The grid

    struct GridData: Encodable {
        struct Column: Encodable {
            var id: String
            var name: String
            var kind: String
            var kindLabel: String
            var editable: Bool
            var primary: Bool
            var choices: [String]
            var inputType: String
        }
        struct Cell: Encodable { var field: String; var text: String; var raw: String; var editable: Bool; var kind: String }
        struct Row: Encodable { var id: String; var number: Int; var version: Int; var cells: [Cell] }
        struct Group: Encodable { var label: String; var count: Int }
        var baseId: String
        var baseName: String
        var tableId: String
        var tableName: String
        var patients: Bool
        var canEdit: Bool
        var canManage: Bool
        var columns: [Column]
        var rows: [Row]
        var next: String?
        var groups: [Group]
        var groupName: String
        var filterFields: [Option]
        var operators: [Option]
        var kinds: [Option]
        var search: String
        var filterValue: String
        var sortFields: [Option]
        var groupFields: [Option]
        var query: String
        var apiPath: String
        /// An owner's preview: whom the grid is shown as (read-only), and whom it could be.
        var previewing: String?
        var previewAs: String
        var members: [Option]
        /// For a new link, lookup or rollup: the base's tables, this table's links, the sums.
        var linkTables: [Option]
        var links: [Option]
        var aggregates: [Option]
    }

    static let operators: [FilterCondition.Operator] = [.is, .isNot, .contains, .notContains, .greater, .less, .isEmpty, .isNotEmpty, .isMe, .isWithin]

    @Sendable func grid(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId"), tableID = try req.parameters.require("tableId")
        let tables = req.rounds.tables
        try await tables.requireTable(tableID, inBase: baseID, on: req.db)
        let t = req.rounds.catalogue.table(req.locale)
        var query = Self.query(req)
        let q = { (key: String) in req.query[String.self, at: key] ?? "" }
        let view: TablesService.GridView
        var error = req.query[String.self, at: "error"]
        do {
            view = try await tables.grid(table: tableID, query, groupBy: q("group"), context: req.context(), on: req.db)
        } catch let e as RoundsError where e.status == 422 {
            // A filter that does not fit its field: the grid unfiltered, with the reason.
            error = e.message(locale: req.locale) + (e.detail.map { ": \($0)" } ?? "")
            query.filter = nil; query.cursor = nil
            view = try await tables.grid(table: tableID, query, groupBy: nil, context: req.context(), on: req.db)
        }
        let columns = view.columns.map { c in
            GridData.Column(id: c.field.id!, name: c.field.name, kind: c.kind.rawValue, kindLabel: t["field_kind_\(c.kind.rawValue)"] ?? c.kind.rawValue,
                            editable: c.editable, primary: c.field.isPrimary, choices: c.choices, inputType: Self.inputType(c.kind))
        }
        let rows = view.rows.map { row in
            GridData.Row(id: row.record.id, number: row.record.number, version: row.record.version, cells: view.columns.map { c in
                let value = row.record.fields[c.field.id!] ?? .null
                // A link is edited by the linked records' names, as it is shown.
                let raw = c.kind == .link ? (row.display[c.field.id!] ?? "") : TablesService.editText(value, c.kind)
                return GridData.Cell(field: c.field.id!, text: row.display[c.field.id!] ?? "", raw: raw, editable: c.editable,
                                     kind: c.kind.rawValue)
            })
        }
        let groups = view.groups.map { g in
            GridData.Group(label: view.groupField.map { tables.display(g.values[0], $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? (t["table_group_blank"] ?? "—"),
                           count: g.count)
        }
        var items = URLComponents(string: "?" + (req.url.query ?? ""))?.queryItems?.filter { $0.name != "cursor" && $0.name != "error" } ?? []
        if let next = view.next { items.append(URLQueryItem(name: "cursor", value: next)) }
        var components = URLComponents(); components.queryItems = items
        let data = GridData(
            baseId: baseID, baseName: view.base.name, tableId: tableID, tableName: view.table.name, patients: view.table.hasPatients,
            canEdit: view.role.canEditRecords && query.previewAs == nil, canManage: view.role.canManage || query.previewAs != nil, columns: columns, rows: rows,
            next: view.next == nil ? nil : components.percentEncodedQuery, groups: groups, groupName: view.groupField?.name ?? "",
            filterFields: view.columns.map { Option(value: $0.field.name, label: $0.field.name, selected: $0.field.name == q("field")) },
            operators: Self.operators.map { Option(value: $0.rawValue, label: t["filter_op_\($0.rawValue)"] ?? $0.rawValue, selected: $0.rawValue == q("op")) },
            kinds: FieldKind.allCases.map { Option(value: $0.rawValue, label: t["field_kind_\($0.rawValue)"] ?? $0.rawValue) },
            search: q("search"), filterValue: q("value"),
            sortFields: view.columns.map { Option(value: $0.field.name, label: $0.field.name, selected: $0.field.name == q("sort")) },
            groupFields: view.columns.filter { [.singleSelect, .person, .department, .checkbox, .text, .date].contains($0.kind) }
                .map { Option(value: $0.field.name, label: $0.field.name, selected: $0.field.name == q("group")) },
            query: req.url.query ?? "", apiPath: "/api/v1/bases/\(baseID)/tables/\(tableID)",
            previewing: query.previewAs == nil ? nil : view.readerName, previewAs: q("as"),
            members: view.role.canManage || query.previewAs != nil
                ? try await tables.members(base: baseID, context: req.context(), on: req.db).map {
                    Option(value: $0.id, label: "\($0.name)（\(t["table_role_\($0.role.rawValue)"] ?? $0.role.rawValue)）", selected: $0.id == q("as"))
                } : [],
            linkTables: view.role.canManage ? try await tables.base(baseID, context: req.context(), on: req.db).tables.map { Option(value: $0.id!, label: $0.name) } : [],
            links: view.columns.filter { $0.kind == .link }.map { Option(value: $0.field.id!, label: $0.field.name) },
            aggregates: RollupAggregate.allCases.map { Option(value: $0.rawValue, label: t["rollup_\($0.rawValue)"] ?? $0.rawValue) })
        return try await req.page("tables_grid", title: "tables_title", data: data, flash: req.query[String.self, at: "done"].map { _ in t["saved"] ?? "" },
                                  error: error)
    }

    /// The grid's query, from the address (so a filtered view can be bookmarked, shared and exported).
    static func query(_ req: Request) -> RecordQuery {
        var query = RecordQuery(limit: 100)
        let q = { (key: String) in req.query[String.self, at: key] ?? "" }
        if !q("search").isEmpty { query.search = q("search") }
        if !q("sort").isEmpty { query.sort = [SortKey(field: q("sort"), descending: q("dir") == "desc")] }
        if !q("field").isEmpty, let op = FilterCondition.Operator(rawValue: q("op")) {
            let value: CellValue? = q("value").isEmpty ? nil : .text(q("value"))
            query.filter = FilterGroup(.and, conditions: [FilterCondition(field: q("field"), op, value)])
        }
        if !q("cursor").isEmpty { query.cursor = q("cursor") }
        if !q("as").isEmpty { query.previewAs = q("as") }
        return query
    }

    /// The grid as it is filtered and sorted now, as CSV.
    @Sendable func export(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId"), tableID = try req.parameters.require("tableId")
        try await req.rounds.tables.requireTable(tableID, inBase: baseID, on: req.db)
        return try await TablesRoutes.export(req, table: tableID, query: Self.query(req))
    }

    // MARK: Rules

    struct RulesData: Encodable {
        struct FieldRow: Encodable { var id: String; var name: String; var primary: Bool; var roles: [RoleCell] }
        struct RoleCell: Encodable { var role: String; var label: String; var options: [Option] }
        struct RowRule: Encodable { var role: String; var label: String; var options: [Option]; var custom: Bool }
        var baseId: String
        var baseName: String
        var tableId: String
        var tableName: String
        var roles: [Option]
        var fields: [FieldRow]
        var rows: [RowRule]
    }

    @Sendable func rules(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId"), tableID = try req.parameters.require("tableId")
        let tables = req.rounds.tables, context = try req.context()
        try await tables.requireTable(tableID, inBase: baseID, on: req.db)
        let t = req.rounds.catalogue.table(req.locale)
        let rules = try await tables.rules(table: tableID, context: context, on: req.db)
        let (table, fields) = try await tables.tableDetail(tableID, context: context, on: req.db)
        let base = try await tables.base(baseID, context: context, on: req.db)
        let roles = TableRules.limitedRoles
        let accessLabel = { (a: TableRules.FieldAccess) in t["rules_access_\(a.rawValue)"] ?? a.rawValue }
        let meFields = fields.filter { [.person, .department, .createdBy].contains($0.fieldKind) }
        let data = RulesData(
            baseId: baseID, baseName: base.base.name, tableId: tableID, tableName: table.name,
            roles: roles.map { Option(value: $0.rawValue, label: t["table_role_\($0.rawValue)"] ?? $0.rawValue) },
            fields: fields.map { f in
                .init(id: f.id!, name: f.name, primary: f.isPrimary, roles: roles.map { role in
                    let current = rules.fields[f.id!]?[role.rawValue] ?? .editable
                    let choices: [TableRules.FieldAccess] = f.isPrimary ? [.editable, .readOnly] : TableRules.FieldAccess.allCases
                    return .init(role: role.rawValue, label: t["table_role_\(role.rawValue)"] ?? role.rawValue,
                                 options: choices.map { Option(value: $0.rawValue, label: accessLabel($0), selected: $0 == current) })
                })
            },
            rows: roles.map { role in
                let rule = rules.rows[role.rawValue]
                // The simple rule this page writes: one field "is me" (or any of several).
                let simple = rule.map { r in r.groups.isEmpty && r.conditions.allSatisfy { $0.op == .isMe } } ?? true
                let chosen = Set(rule?.conditions.map(\.field) ?? [])
                var options = [Option(value: "", label: t["rules_rows_all"] ?? "", selected: rule == nil)]
                options += meFields.map { f in
                    Option(value: f.id!, label: String(format: t["rules_rows_me"] ?? "%@", f.name), selected: simple && chosen.contains(f.id!))
                }
                return .init(role: role.rawValue, label: t["table_role_\(role.rawValue)"] ?? role.rawValue, options: options, custom: !simple)
            })
        return try await req.page("tables_rules", title: "rules_title", data: data, flash: req.query[String.self, at: "done"].map { _ in t["saved"] ?? "" },
                                  error: req.query[String.self, at: "error"])
    }

    @Sendable func saveRules(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId"), tableID = try req.parameters.require("tableId")
        let back = "/tables/\(baseID)/\(tableID)/rules"
        return try await req.formResult(back: back) {
            let tables = req.rounds.tables, context = try req.context()
            try await tables.requireTable(tableID, inBase: baseID, on: req.db)
            let current = try await tables.rules(table: tableID, context: context, on: req.db)
            let (_, fields) = try await tables.tableDetail(tableID, context: context, on: req.db)
            var rules = TableRules()
            for f in fields {
                for role in TableRules.limitedRoles {
                    let value = field(req, "access_\(f.id!)_\(role.rawValue)")
                    guard let access = TableRules.FieldAccess(rawValue: value) else { continue }
                    if access != .editable { rules.fields[f.id!, default: [:]][role.rawValue] = access }
                }
            }
            for role in TableRules.limitedRoles {
                // A rule written through the API (nested, other operators) is kept unless changed here.
                if field(req, "rows_\(role.rawValue)_keep") == "1", let kept = current.rows[role.rawValue] { rules.rows[role.rawValue] = kept; continue }
                let chosen = ((try? req.content.get([String].self, at: "rows_\(role.rawValue)")) ?? []).filter { !$0.isEmpty }
                if !chosen.isEmpty {
                    rules.rows[role.rawValue] = FilterGroup(.or, conditions: chosen.map { FilterCondition(field: $0, .isMe) })
                }
            }
            try await tables.setRules(table: tableID, rules, context: context, on: req.db)
        }
    }

    static func inputType(_ kind: FieldKind) -> String {
        switch kind {
        case .number, .currency, .percent, .rating, .progress: return "number"
        case .date: return "date"
        case .dateTime: return "datetime-local"
        case .email: return "email"
        case .url: return "url"
        case .phone: return "tel"
        case .checkbox: return "checkbox"
        default: return "text"
        }
    }

    /// The value an editor starts from.
    @Sendable func addField(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId"), tableID = try req.parameters.require("tableId")
        let back = "/tables/\(baseID)/\(tableID)"
        return try await req.formResult(back: back) {
            try await req.rounds.tables.requireTable(tableID, inBase: baseID, on: req.db)
            guard let kind = FieldKind(rawValue: field(req, "kind")) else { throw RoundsError.validation("kind: choose a kind of field") }
            var options = FieldOptions()
            let choices = field(req, "choices").split(whereSeparator: { $0 == "," || $0 == "，" || $0 == "、" || $0.isNewline })
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if !choices.isEmpty { options.choices = choices.map { SelectOption(id: "", name: $0) } }
            if !field(req, "formula").isEmpty { options.formula = field(req, "formula") }
            if kind == .person, field(req, "many") == "on" { options.many = true }
            switch kind {
            case .link:
                options.linkTable = field(req, "link_table")
                options.many = field(req, "many") == "on"
            case .lookup, .rollup:
                options.via = field(req, "via")
                options.target = field(req, "target").isEmpty ? nil : field(req, "target")
                options.aggregate = RollupAggregate(rawValue: field(req, "aggregate"))
            default: break
            }
            _ = try await req.rounds.tables.addField(table: tableID, .init(name: field(req, "name"), kind: kind, options: options),
                                                     context: req.context(), on: req.db)
        }
    }

    @Sendable func addRecord(req: Request) async throws -> Response {
        let baseID = try req.parameters.require("baseId"), tableID = try req.parameters.require("tableId")
        let back = "/tables/\(baseID)/\(tableID)"
        return try await req.formResult(back: back) {
            try await req.rounds.tables.requireTable(tableID, inBase: baseID, on: req.db)
            let (_, fields) = try await req.rounds.tables.tableDetail(tableID, context: req.context(), on: req.db)
            var values: [String: CellValue] = [:]
            for f in fields where !f.fieldKind.isComputed {
                let v = field(req, "f_" + f.id!)
                if f.fieldKind == .checkbox { values[f.id!] = .bool(v == "on" || v == "true"); continue }
                if !v.isEmpty { values[f.id!] = .text(v) }
            }
            _ = try await req.rounds.tables.createRecords(table: tableID, [values], context: req.context(), on: req.db)
        }
    }
}
