import FluentKit
import Foundation
import RoundsCore
import RoundsStore
import SQLKit

/// CSV as spreadsheets write it (RFC 4180): quoted fields with doubled quotes and line breaks,
/// CRLF or LF, a UTF-8 byte-order mark, and comma, tab or semicolon as the separator (the one the
/// header line has most of).
enum CSVReader {
    static func rows(_ text: String, limit: Int) throws -> [[String]] {
        var chars = Substring(text)
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
        let header = chars.prefix { $0 != "\n" && $0 != "\r\n" && $0 != "\r" }
        let separator: Character = [",", "\t", ";"].max { a, b in header.filter { $0 == a }.count < header.filter { $0 == b }.count } ?? ","
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var i = chars.startIndex
        while i < chars.endIndex {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    let next = chars.index(after: i)
                    if next < chars.endIndex, chars[next] == "\"" { field.append("\""); i = chars.index(after: next); continue }
                    quoted = false
                } else {
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == separator {
                row.append(field); field = ""
            } else if c == "\n" || c == "\r\n" || c == "\r" {
                row.append(field); field = ""
                if !(row.count == 1 && row[0].isEmpty) { rows.append(row) }
                row = []
                guard rows.count <= limit else { throw RoundsError.payloadTooLarge("at most \(limit - 1) rows in one import") }
            } else {
                field.append(c)
            }
            i = chars.index(after: i)
        }
        guard !quoted else { throw RoundsError.validation("the file ends inside a quoted value") }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }
}

/// An import from CSV: how each column is read, and what to do with rows that do not fit.
public struct ImportPlan: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable {
        /// A bad row refuses the whole file: nothing is imported until every row fits.
        case allOrNothing = "all_or_nothing"
        /// Good rows are imported; each bad one is reported and left out.
        case skipBadRows = "skip_bad_rows"
    }
    public var mode: Mode
    /// Column header → the field it fills (an existing field's name or id); a header not named
    /// here fills the field of the same name, or a new field (owners) of the kind its values suggest;
    /// "" leaves the column out.
    public var mapping: [String: String]
    /// Check and report without writing anything.
    public var preview: Bool

    public init(mode: Mode = .allOrNothing, mapping: [String: String] = [:], preview: Bool = false) {
        self.mode = mode; self.mapping = mapping; self.preview = preview
    }
}

public struct ImportReport: Sendable, Codable, Equatable {
    public struct Column: Sendable, Codable, Equatable {
        public var header: String
        /// The field it fills (its name), nil when left out.
        public var field: String?
        /// The kind of the field; for a new field, the kind its values suggest.
        public var kind: FieldKind?
        public var isNew: Bool

        public init(header: String, field: String?, kind: FieldKind?, isNew: Bool) {
            self.header = header; self.field = field; self.kind = kind; self.isNew = isNew
        }
    }
    public struct Refusal: Sendable, Codable, Equatable {
        /// The line of the file (the header is line 1).
        public var line: Int
        public var field: String
        public var reason: String

        public init(line: Int, field: String, reason: String) { self.line = line; self.field = field; self.reason = reason }
    }
    public var columns: [Column]
    /// The first rows, as read.
    public var preview: [[String]]
    public var rows: Int
    public var imported: Int
    public var refused: [Refusal]
    /// Whether anything was written.
    public var committed: Bool

    public init(columns: [Column], preview: [[String]], rows: Int, imported: Int, refused: [Refusal], committed: Bool) {
        self.columns = columns; self.preview = preview; self.rows = rows; self.imported = imported; self.refused = refused; self.committed = committed
    }
}

extension TablesService {
    public static let maximumImportRows = 1_000_000

    /// What a column's values look like: numbers, dates (with times), yes/no, a few repeated
    /// words (a single select), or text.
    static func guessKind(_ values: [String], timeZone: TimeZone) -> FieldKind {
        let present = values.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.prefix(500)
        guard !present.isEmpty else { return .text }
        let env = FormulaEnvironment(now: Date(), timeZone: timeZone)
        // Mostly numbers (or dates) is numbers: the few that are not are reported as bad rows
        // rather than turning the whole column into text.
        func mostly(_ test: (String) -> Bool) -> Bool {
            let misses = present.filter { !test($0) }.count
            return present.count - misses >= 2 ? misses <= max(1, present.count / 10) : misses == 0
        }
        if mostly({ Double($0.replacingOccurrences(of: ",", with: "")) != nil }) { return .number }
        if mostly({ DateMath.parse($0, env) != nil }) { return present.contains { $0.contains(":") } ? .dateTime : .date }
        let yesNo: Set<String> = ["是", "否", "true", "false", "TRUE", "FALSE", "yes", "no", "√", "×"]
        if present.allSatisfy({ yesNo.contains($0) }) { return .checkbox }
        let distinct = Set(present)
        if distinct.count <= 12, present.count >= distinct.count * 2, distinct.allSatisfy({ $0.count <= 20 }) { return .singleSelect }
        if present.contains(where: { $0.contains("\n") }) { return .longText }
        return .text
    }

    /// Imports a CSV into a table. The report says, per column, which field it filled (and which
    /// fields were created) and, per refused row, the line, the field and why.
    public func importCSV(table tableID: String, _ text: String, plan: ImportPlan, context: RequestContext,
                          on db: any Database) async throws -> ImportReport {
        var ctx = try await self.context(.editor, table: tableID, action: "table.import", request: context, on: db)
        let rows = try CSVReader.rows(text, limit: Self.maximumImportRows + 1)
        guard let headers = rows.first, !headers.isEmpty else { throw RoundsError.validation("the file is empty") }
        guard Set(headers).count == headers.count else { throw RoundsError.validation("two columns have the same header") }
        let data = Array(rows.dropFirst())
        // Which field each column fills.
        var columns: [ImportReport.Column] = []
        var newFields: [(Int, FieldSpec)] = []
        for (i, header) in headers.enumerated() {
            let target = plan.mapping[header] ?? header
            if target.isEmpty { columns.append(.init(header: header, field: nil, kind: nil, isNew: false)); continue }
            if let field = ctx.field(target) {
                guard !field.fieldKind.isComputed else {
                    columns.append(.init(header: header, field: nil, kind: field.fieldKind, isNew: false)); continue
                }
                columns.append(.init(header: header, field: field.name, kind: field.fieldKind, isNew: false))
            } else {
                var kind = Self.guessKind(data.map { i < $0.count ? $0[i] : "" }, timeZone: timeZone)
                var options = FieldOptions()
                if kind == .singleSelect {
                    let names = Array(Set(data.compactMap { i < $0.count ? $0[i].trimmingCharacters(in: .whitespaces) : nil }.filter { !$0.isEmpty })).sorted()
                    options.choices = names.map { SelectOption(id: "", name: $0) }
                }
                if ctx.role < .owner { kind = .text }
                columns.append(.init(header: header, field: target, kind: kind, isNew: true))
                newFields.append((i, FieldSpec(name: target, kind: kind, options: options)))
            }
        }
        if !newFields.isEmpty, !ctx.role.canManage {
            let names = newFields.map { "“\($0.1.name)”" }.joined(separator: "、")
            throw RoundsError.forbidden("the columns \(names) match no field; map them to fields or leave them out (only owners add fields)")
        }
        // Checked first against the fields as they would be (new ones not yet made), so a refused
        // file leaves the table as it was.
        var virtual: [TableField] = []
        for (_, spec) in newFields {
            let f = TableField()
            f.id = "new:" + spec.name; f.tableID = tableID; f.name = spec.name; f.kind = spec.kind.rawValue
            f.options = Self.encode(try normalised(spec)); f.columnName = "new"; f.position = 0; f.isPrimary = false
            virtual.append(f)
        }
        let planned = TableContext(table: ctx.table, base: ctx.base, role: ctx.role, fields: ctx.fields + virtual,
                                   codecs: ctx.codecs.merging(virtual.map { ($0.id!, FieldCodec($0, timeZone: timeZone)) }, uniquingKeysWith: { a, _ in a }),
                                   plan: ctx.plan, access: ctx.access, reader: ctx.reader)
        func check(_ ctx: TableContext) async throws -> (good: [[String: StoredValue]], refused: [ImportReport.Refusal]) {
            var refused: [ImportReport.Refusal] = []
            var good: [[String: StoredValue]] = []
            let lookups = Lookups()
            for (n, row) in data.enumerated() {
                var input: [String: CellValue] = [:]
                for (i, column) in columns.enumerated() where column.field != nil {
                    let raw = i < row.count ? row[i] : ""
                    input[column.field!] = raw.isEmpty ? .null : .text(raw)
                }
                var problems: [RoundsError.Item] = []
                let values = try await stored(input, ctx, path: "line", problems: &problems, lookups: lookups, on: db)
                if problems.isEmpty { good.append(values) } else {
                    refused += problems.map { .init(line: n + 2, field: String($0.path.dropFirst("line.".count)), reason: $0.reason) }
                }
            }
            return (good, refused)
        }
        var (good, refused) = try await check(planned)
        let write = !plan.preview && (refused.isEmpty || plan.mode == .skipBadRows) && !good.isEmpty
        if write {
            if !newFields.isEmpty {
                for (_, spec) in newFields { _ = try await addField(table: tableID, spec, context: context, on: db) }
                ctx = try await self.context(.editor, table: tableID, action: "table.import", request: context, on: db)
                (good, refused) = try await check(ctx)
            }
            let checked = good, final = ctx
            try await withinRows(final, action: "table.import", context: context, on: db) { tx in
                for start in stride(from: 0, to: checked.count, by: Self.maximumBatch) {
                    _ = try await self.insert(Array(checked[start..<min(start + Self.maximumBatch, checked.count)]), final, context: context, on: tx)
                }
            }
        }
        try await audit.record("table.import", entityType: "table", entityID: tableID, hospitalID: ctx.base.hospitalID,
                               detail: "\(data.count) rows, \(write ? good.count : 0) imported, \(refused.count) problems (\(plan.mode.rawValue)\(plan.preview ? ", preview" : ""))",
                               context: context, on: db)
        return ImportReport(columns: columns, preview: Array(data.prefix(10)), rows: data.count, imported: write ? good.count : 0,
                            refused: Array(refused.prefix(1_000)), committed: write)
    }
}
