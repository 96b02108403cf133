import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// The grid as a page shows it: each cell's words (names for people, departments and choices, a
/// patient's name with ward and bed where they are now, units and symbols), never raw ids.
extension TablesService {
    public struct GridView: Sendable {
        public struct Column: Sendable {
            public var field: TableField
            public var kind: FieldKind
            public var editable: Bool
            /// Single and multi select: the choices, for the editor.
            public var choices: [String]
        }
        public struct Row: Sendable {
            public var record: TableRecord
            /// By field id: the words shown.
            public var display: [String: String]
        }
        public var base: TableBase
        public var table: UserTable
        public var role: BaseRole
        /// Whose view it is (differs from the caller in an owner's preview).
        public var readerName: String
        public var columns: [Column]
        public var rows: [Row]
        public var next: String?
        public var groups: [RecordGroup]
        /// The group-by field's column (for the group labels).
        public var groupField: TableField?
    }

    public func grid(table tableID: String, _ query: RecordQuery, groupBy: String?, context: RequestContext,
                     on db: any Database) async throws -> GridView {
        let ctx = try await self.context(.viewer, table: tableID, action: "table.record.list", request: context, previewAs: query.previewAs, on: db)
        let page = try await records(table: tableID, query, context: context, on: db)
        var groups: [RecordGroup] = []
        var groupField: TableField?
        if let groupBy, !groupBy.isEmpty {
            groupField = ctx.field(groupBy)
            groups = try await self.groups(table: tableID, by: [groupBy], query, context: context, on: db)
        }
        let rows = try await gridRows(page.records, ctx, on: db)
        // A preview is read-only: the owner sees, and does not write, as someone else.
        let columns = ctx.visible.map { f in
            GridView.Column(field: f, kind: f.fieldKind, editable: query.previewAs == nil && ctx.isEditable(f),
                            choices: (f.fieldOptions.choices ?? []).map(\.name))
        }
        return GridView(base: ctx.base, table: ctx.table, role: ctx.role, readerName: ctx.reader.displayName, columns: columns, rows: rows, next: page.next,
                        groups: groups, groupField: groupField)
    }

    /// Each record's cells in words, as the grid shows them to the context's reader.
    func gridRows(_ records: [TableRecord], _ ctx: TableContext, on db: any Database) async throws -> [GridView.Row] {
        // A lookup is shown as the field it reads; a link by the linked records' names.
        var shownAs: [String: TableField] = [:]
        var linkNames: [String: [String: String]] = [:]
        for field in ctx.visible where field.fieldKind.readsLinks {
            let via = field.fieldKind == .link ? field : ctx.fields.first { $0.id == field.fieldOptions.via }
            guard let via, let target = try await linkedContext(via, ctx, on: db) else { continue }
            if field.fieldKind == .lookup, let t = target.fields.first(where: { $0.id == field.fieldOptions.target }) { shownAs[field.id!] = t }
            if field.fieldKind == .link {
                let ids = Array(Set(records.flatMap { r -> [String] in
                    if case .list(let l)? = r.fields[field.id!] { return l.compactMap { if case .text(let t) = $0 { return t }; return nil } }; return []
                }))
                let primary = target.fields.first { $0.isPrimary }!
                var names: [String: String] = [:]
                for row in try await rows(ids: ids, target, lock: false, links: false, on: db).values {
                    let name = Self.plain(target.codecs[primary.id!]!.cell(row.values[primary.id!] ?? .null))
                    names[row.id] = name.isEmpty ? "#\(row.number)" : name
                }
                linkNames[field.id!] = names
            }
        }
        // Names for the ids on this page, looked up once.
        var staffIDs = Set<String>(), departmentIDs = Set<String>(), mrns = Set<String>()
        for record in records {
            for field in ctx.visible {
                guard let value = record.fields[field.id!] else { continue }
                let texts: [String]
                switch value {
                case .text(let t): texts = [t]
                case .list(let l): texts = l.compactMap { if case .text(let t) = $0 { return t }; return nil }
                default: texts = []
                }
                switch (shownAs[field.id!] ?? field).fieldKind {
                case .person, .createdBy, .modifiedBy: staffIDs.formUnion(texts)
                case .department: departmentIDs.formUnion(texts)
                case .patient: mrns.formUnion(texts)
                default: break
                }
            }
        }
        let staff = staffIDs.isEmpty ? [:] : Dictionary(try await Staff.query(on: db).filter(\.$id ~~ Array(staffIDs)).all().map { ($0.id!, $0.displayName) },
                                                        uniquingKeysWith: { a, _ in a })
        let departments = departmentIDs.isEmpty ? [:] : Dictionary(try await Department.query(on: db).filter(\.$id ~~ Array(departmentIDs)).all().map { ($0.id!, $0.name) },
                                                                  uniquingKeysWith: { a, _ in a })
        var patients: [String: String] = [:]
        if !mrns.isEmpty {
            let found = try await Patient.query(on: db).filter(\.$mrn ~~ Array(mrns)).filter(\.$hospitalID == ctx.base.hospitalID).all()
            let stays = try await Encounter.query(on: db).filter(\.$patientID ~~ found.compactMap(\.id)).filter(\.$status == .active).all()
            let wards = Dictionary(try await Department.query(on: db).filter(\.$id ~~ stays.map(\.wardID)).all().map { ($0.id!, $0.name) }, uniquingKeysWith: { a, _ in a })
            let beds = Dictionary(try await Bed.query(on: db).filter(\.$id ~~ stays.compactMap(\.bedID)).all().map { ($0.id!, $0.label) }, uniquingKeysWith: { a, _ in a })
            for p in found {
                // Where the patient is now (the stay follows transfers), not where they were when entered.
                if let stay = stays.first(where: { $0.patientID == p.id }) {
                    let bed = stay.bedID.flatMap { beds[$0] }.map { " \($0)床" } ?? ""
                    patients[p.mrn] = "\(p.name) · \(wards[stay.wardID] ?? "")\(bed)"
                } else {
                    patients[p.mrn] = "\(p.name) · \(p.mrn)"
                }
            }
        }
        return records.map { record in
            GridView.Row(record: record, display: Dictionary(ctx.visible.map { f in
                if let names = linkNames[f.id!], case .list(let l)? = record.fields[f.id!] {
                    return (f.id!, l.compactMap { if case .text(let t) = $0 { return names[t] }; return nil }.joined(separator: "、"))
                }
                return (f.id!, display(record.fields[f.id!] ?? .null, shownAs[f.id!] ?? f, staff: staff, departments: departments, patients: patients))
            }, uniquingKeysWith: { a, _ in a }))
        }
    }

    /// The words of one cell.
    public func display(_ value: CellValue, _ field: TableField, staff: [String: String] = [:], departments: [String: String] = [:],
                        patients: [String: String] = [:]) -> String {
        let o = field.fieldOptions
        func number(_ n: Double, precision: Int?) -> String {
            guard let p = precision else { return FormulaText.number(n) }
            return String(format: "%.\(p)f", n)
        }
        switch (value, field.fieldKind) {
        case (.null, _): return ""
        case (.bool(let b), _): return b ? "✓" : ""
        case (.number(let n), .currency): return (o.symbol ?? "¥") + number(n, precision: o.precision ?? 2)
        case (.number(let n), .percent), (.number(let n), .progress): return number(n * 100, precision: o.precision ?? 0) + "%"
        case (.number(let n), .rating): return String(repeating: "★", count: max(0, min(10, Int(n))))
        case (.number(let n), .duration):
            let s = Int(n)
            return String(format: "%d:%02d:%02d", s / 3600, s % 3600 / 60, s % 60)
        case (.number(let n), _): return number(n, precision: o.precision) + (o.unit.map { " \($0)" } ?? "")
        case (.text(let t), .person), (.text(let t), .createdBy), (.text(let t), .modifiedBy): return staff[t] ?? t
        case (.text(let t), .department): return departments[t] ?? t
        case (.text(let t), .patient): return patients[t] ?? t
        case (.text(let t), .dateTime), (.text(let t), .createdTime), (.text(let t), .modifiedTime):
            return DateMath.parse(t, FormulaEnvironment(now: Date(), timeZone: timeZone)).map { FormulaText.format($0, "yyyy-MM-dd HH:mm", timeZone) } ?? t
        case (.text(let t), .formula) where field.fieldOptions.resultType == "date_time":
            return DateMath.parse(t, FormulaEnvironment(now: Date(), timeZone: timeZone)).map { FormulaText.format($0, "yyyy-MM-dd HH:mm", timeZone) } ?? t
        case (.text(let t), _): return t
        case (.list(let items), _):
            return items.map { display($0, field, staff: staff, departments: departments, patients: patients) }.joined(separator: "、")
        }
    }
}

extension TablesService {
    /// One page of an export: the visible fields' names and each record's words, as the grid
    /// shows them (names, not ids), within the reader's rules.
    public struct ExportPage: Sendable {
        public var tableName: String
        public var header: [String]
        public var rows: [[String]]
        public var next: String?
    }

    public func exportPage(table tableID: String, _ query: RecordQuery, context: RequestContext, on db: any Database) async throws -> ExportPage {
        let grid = try await grid(table: tableID, query, groupBy: nil, context: context, on: db)
        if query.cursor == nil {
            try await audit.record("table.export", entityType: "table", entityID: tableID, hospitalID: grid.base.hospitalID,
                                   detail: grid.table.name + (query.previewAs.map { ", as \($0)" } ?? ""), context: context, on: db)
        }
        return ExportPage(tableName: grid.table.name, header: grid.columns.map(\.field.name),
                          rows: grid.rows.map { row in grid.columns.map { row.display[$0.field.id!] ?? "" } }, next: grid.next)
    }

    /// One CSV line (RFC 4180). A cell a spreadsheet would run as a formula (=, +, -, @ first)
    /// gets a leading apostrophe, so an exported value cannot run in the reader's spreadsheet.
    public static func csvLine(_ cells: [String]) -> String {
        cells.map { cell -> String in
            var c = cell
            if let first = c.unicodeScalars.first, "=+@\t\r".unicodeScalars.contains(first) || (first == "-" && Double(c) == nil) {
                c = "'" + c
            }
            guard c.unicodeScalars.contains(where: { ",\"\n\r".unicodeScalars.contains($0) }) else { return c }
            return "\"" + c.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }.joined(separator: ",") + "\r\n"
    }
}
