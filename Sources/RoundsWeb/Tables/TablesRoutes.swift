import Foundation
import RoundsCore
import RoundsStore
import RoundsTables
import Vapor

extension FieldKind: APIEnumeration {}
extension BaseRole: APIEnumeration {}

struct TableSummaryDTO: APISchema {
    var id: String
    var name: String
    /// A table with a patient field: patient data, every read and write audited.
    var hasPatients: Bool
    init(_ t: UserTable) { id = t.id ?? ""; name = t.name; hasPatients = t.hasPatients }
    static let sample: TableSummaryDTO = {
        let t = UserTable()
        t.id = "…"; t.name = "随访登记"; t.hasPatients = true
        return TableSummaryDTO(t)
    }()
}

struct BaseDTO: APISchema {
    var id: String
    var name: String
    var hospitalId: String
    var departmentId: String?
    var role: BaseRole
    var tables: [TableSummaryDTO]
    init(_ s: TablesService.BaseSummary) {
        id = s.base.id ?? ""; name = s.base.name; hospitalId = s.base.hospitalID; departmentId = s.base.departmentID
        role = s.role; tables = s.tables.map(TableSummaryDTO.init)
    }
    static let sample: BaseDTO = {
        let b = TableBase()
        b.id = "…"; b.name = "肺癌中心工作台"; b.hospitalID = "…"; b.departmentID = "…"
        let t = UserTable()
        t.id = "…"; t.name = "随访登记"; t.hasPatients = true
        return BaseDTO(.init(base: b, role: .owner, tables: [t]))
    }()
}

struct FieldDTO: APISchema {
    var id: String
    var name: String
    var kind: FieldKind
    var options: FieldOptions
    /// The field that names each record.
    var primary: Bool
    var position: Int
    init(_ f: TableField) { id = f.id ?? ""; name = f.name; kind = f.fieldKind; options = f.fieldOptions; primary = f.isPrimary; position = f.position }
    static let sample: FieldDTO = {
        let f = TableField()
        f.id = "…"; f.name = "体重"; f.kind = FieldKind.number.rawValue; f.options = #"{"precision":1,"unit":"kg"}"#; f.isPrimary = false; f.position = 2
        return FieldDTO(f)
    }()
}

struct TableDTO: APISchema {
    var id: String
    var baseId: String
    var name: String
    var hasPatients: Bool
    var fields: [FieldDTO]
    static let sample = TableDTO(id: "…", baseId: "…", name: "随访登记", hasPatients: true, fields: [FieldDTO.sample])
}

struct FieldChangeDTO: APISchema {
    var field: FieldDTO
    /// Values that did not convert to the new kind and were left empty.
    var emptied: Int
    static let sample = FieldChangeDTO(field: FieldDTO.sample, emptied: 0)
}

extension TableRecord: Content {}
extension TableRecord: APISchema {
    public static var sample: TableRecord {
        TableRecord(id: "…", number: 1, version: 3, createdAt: Date(timeIntervalSince1970: 0), createdBy: "…",
                    modifiedAt: Date(timeIntervalSince1970: 0), modifiedBy: "…", deleted: false,
                    fields: ["field id": .null])
    }
}

extension RecordPage: Content {}
extension RecordPage: APISchema {
    public static var sample: RecordPage { RecordPage(records: [TableRecord.sample], next: "eyJ0Ijpb…") }
}

extension TablesService.HistoryEntry: Content {}
extension TablesService.HistoryEntry: APISchema {
    public static var sample: TablesService.HistoryEntry {
        .init(fieldID: "…", fieldName: "体重", action: "set", old: .null, new: .null, version: 2, actorID: "…", actorName: "王芳",
              at: Date(timeIntervalSince1970: 0))
    }
    static var enums: [String: [String]] { ["action": ["created", "set", "deleted", "restored"]] }
}

extension TablesService.Comment: Content {}
extension TablesService.Comment: APISchema {
    public static var sample: TablesService.Comment {
        .init(id: "…", recordId: "…", authorId: "…", authorName: "张丽", text: "@李明 请复核体重", mentions: ["…"], createdAt: Date(timeIntervalSince1970: 0))
    }
}

extension TablesService.CommentResult: Content {}
extension TablesService.CommentResult: APISchema {
    public static var sample: TablesService.CommentResult { .init(comment: .sample, notified: ["李明"], notNotified: []) }
}

extension TablesService.MentionNotice: Content {}
extension TablesService.MentionNotice: APISchema {
    public static var sample: TablesService.MentionNotice {
        .init(id: "…", baseId: "…", tableId: "…", tableName: "随访登记", recordId: "…", authorName: "张丽", text: "@李明 请复核体重",
              createdAt: Date(timeIntervalSince1970: 0), read: false)
    }
}

extension RecordGroup: Content {}
extension RecordGroup: APISchema {
    public static var sample: RecordGroup { RecordGroup(values: [.text("待随访")], count: 12, sums: ["field id": 30]) }
}

extension TablesService.ViewIndex: Content {}
extension TablesService.ViewIndex: APISchema {
    public static var sample: TablesService.ViewIndex { .init(name: "ix_…", definition: "CREATE INDEX …") }
}

struct IndexBody: APISchema {
    /// The view's sort (its first page is then read from the index).
    var sort: [SortKey]?
    /// Fields the view filters on.
    var filterFields: [String]?
    static let sample = IndexBody(sort: [SortKey(field: "随访日期"), SortKey(field: "床号", descending: true)], filterFields: ["状态"])
}

struct CommentBody: APISchema {
    /// "@姓名" mentions someone with a role on the base who may read the record.
    var text: String
    static let sample = CommentBody(text: "@李明 请复核体重")
}

extension RecordQuery: Content {}
extension RecordQuery: APISchema {
    public static var sample: RecordQuery {
        RecordQuery(filter: FilterGroup(.and, conditions: [FilterCondition(field: "状态", .is, .text("待随访"))]),
                    sort: [SortKey(field: "随访日期", descending: false)], search: "张", limit: 100, cursor: nil, deleted: false)
    }
}

extension ImportReport: Content {}
extension ImportReport: APISchema {
    public static var sample: ImportReport {
        ImportReport(columns: [.init(header: "姓名", field: "名称", kind: .text, isNew: false)], preview: [["张三"]], rows: 2, imported: 1,
                     refused: [.init(line: 3, field: "体重", reason: "“六十” is not a number")], committed: true)
    }
}

extension TableRules: Content {}
extension TableRules: APISchema {
    public static var sample: TableRules {
        TableRules(fields: ["诊断": ["viewer": .hidden, "editor": .readOnly]],
                   rows: ["editor": FilterGroup(.or, conditions: [FilterCondition(field: "主管医生", .isMe), FilterCondition(field: "病区", .isMe)])])
    }
    static var enums: [String: [String]] { ["access": TableRules.FieldAccess.allCases.map(\.rawValue)] }
}

struct CreateBaseBody: APISchema {
    var name: String
    var hospitalId: String
    var departmentId: String?
    static let sample = CreateBaseBody(name: "肺癌中心工作台", hospitalId: "…", departmentId: "…")
}

struct GrantBody: APISchema {
    static let enums = ["granteeKind": ["staff", "department"]]
    var granteeKind: String
    var granteeId: String
    var role: BaseRole
    static let sample = GrantBody(granteeKind: "department", granteeId: "…", role: .editor)
}

struct CreateTableBody: APISchema {
    var name: String
    var primaryFieldName: String?
    static let sample = CreateTableBody(name: "随访登记", primaryFieldName: "名称")
}

struct FieldBody: APISchema {
    var name: String
    var kind: FieldKind
    var options: FieldOptions?
    static let sample = FieldBody(name: "BMI", kind: .formula, options: FieldOptions(formula: "ROUND(BMI({体重}, {身高}), 1)"))
}

struct FieldPatchBody: APISchema {
    var name: String?
    var kind: FieldKind?
    var options: FieldOptions?
    static let sample = FieldPatchBody(name: "体重（kg）", kind: nil, options: nil)
}

struct RecordFieldsBody: Content {
    /// By field id or name.
    var fields: [String: CellValue]
}

struct CreateRecordsBody: APISchema {
    var records: [RecordFieldsBody]
    static let sample = CreateRecordsBody(records: [RecordFieldsBody(fields: ["名称": .null])])
}

struct RecordPatchBody: Content {
    var id: String
    /// The version the change was made from: a stale change to a field changed since is a 409.
    var version: Int
    var fields: [String: CellValue]
}

struct UpdateRecordsBody: APISchema {
    var records: [RecordPatchBody]
    static let sample = UpdateRecordsBody(records: [RecordPatchBody(id: "…", version: 3, fields: ["体重": .null])])
}

struct RecordIDsBody: APISchema {
    var ids: [String]
    static let sample = RecordIDsBody(ids: ["…"])
}

/// `/api/v1/bases/…`: bases, tables, fields and records, on the caller's role (tokens need
/// tables:read or tables:write).
struct TablesRoutes {
    let api: APIBuilder

    func register() {
        let tag = "tables"
        api.on(.GET, "bases", summary: "The bases I have a role on, with their tables", tag: tag, returns: BaseDTO.self, array: true) { req in
            try await req.rounds.tables.bases(context: req.context(), on: req.db).map(BaseDTO.init)
        }
        api.on(.POST, "bases", summary: "Create a base in a hospital or one of its departments (I own it)", tag: tag,
               body: CreateBaseBody.self, returns: BaseDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(CreateBaseBody.self)
            let context = try req.context()
            let base = try await req.rounds.tables.createBase(name: body.name, hospitalID: body.hospitalId, departmentID: body.departmentId,
                                                              context: context, on: req.db)
            return try await BaseDTO(req.rounds.tables.base(base.id!, context: context, on: req.db)).encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "bases", ":baseId", summary: "One base", tag: tag, returns: BaseDTO.self) { req in
            BaseDTO(try await req.rounds.tables.base(req.parameters.require("baseId"), context: req.context(), on: req.db))
        }
        api.on(.PUT, "bases", ":baseId", "grants", summary: "Give a person or a department a role on the base (owners)", tag: tag,
               body: GrantBody.self, status: 204) { req -> HTTPStatus in
            let body = try req.content.decode(GrantBody.self)
            try await req.rounds.tables.grant(base: req.parameters.require("baseId"), granteeKind: body.granteeKind, granteeID: body.granteeId,
                                              role: body.role, context: req.context(), on: req.db)
            return .noContent
        }
        api.on(.POST, "bases", ":baseId", "tables", summary: "Create a table (owners)", tag: tag, body: CreateTableBody.self,
               returns: TableDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(CreateTableBody.self)
            let tables = req.rounds.tables, context = try req.context()
            let table = try await tables.createTable(base: req.parameters.require("baseId"), name: body.name,
                                                     primaryFieldName: body.primaryFieldName ?? "名称", context: context, on: req.db)
            return try await Self.tableDTO(table.id!, req).encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", summary: "A table and its fields", tag: tag, returns: TableDTO.self) { req in
            try await Self.tableDTO(try await Self.tableID(req), req)
        }
        api.on(.POST, "bases", ":baseId", "tables", ":tableId", "fields", summary: "Add a field (owners)", tag: tag, body: FieldBody.self,
               returns: FieldDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(FieldBody.self)
            let field = try await req.rounds.tables.addField(table: try await Self.tableID(req), .init(name: body.name, kind: body.kind, options: body.options ?? FieldOptions()),
                                                             context: req.context(), on: req.db)
            return try await FieldDTO(field).encodeResponse(status: .created, for: req)
        }
        api.on(.PATCH, "bases", ":baseId", "tables", ":tableId", "fields", ":fieldId",
               summary: "Rename a field, change its options, or change its kind (values converted)", tag: tag, body: FieldPatchBody.self,
               returns: FieldChangeDTO.self) { req in
            let body = try req.content.decode(FieldPatchBody.self)
            _ = try await Self.tableID(req)
            let change = try await req.rounds.tables.updateField(req.parameters.require("fieldId"), name: body.name, kind: body.kind,
                                                                 options: body.options, context: req.context(), on: req.db)
            return FieldChangeDTO(field: FieldDTO(change.field), emptied: change.emptied)
        }
        api.on(.DELETE, "bases", ":baseId", "tables", ":tableId", "fields", ":fieldId", summary: "Delete a field (owners)", tag: tag,
               status: 204) { req -> HTTPStatus in
            _ = try await Self.tableID(req)
            try await req.rounds.tables.deleteField(req.parameters.require("fieldId"), context: req.context(), on: req.db)
            return .noContent
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", "records",
               summary: "Records: filter (JSON), sort (field,-field), search, limit, cursor; all in SQL", tag: tag,
               returns: RecordPage.self, query: ["filter", "sort", "search", "limit", "cursor", "deleted", "fields", "as"]) { req in
            try await req.rounds.tables.records(table: try await Self.tableID(req), try Self.query(req), context: req.context(), on: req.db)
        }
        api.on(.POST, "bases", ":baseId", "tables", ":tableId", "records", "query", summary: "Records by a query in the body", tag: tag,
               body: RecordQuery.self, returns: RecordPage.self) { req in
            let query = try req.content.decode(RecordQuery.self)
            return try await req.rounds.tables.records(table: try await Self.tableID(req), query, context: req.context(), on: req.db)
        }
        api.on(.POST, "bases", ":baseId", "tables", ":tableId", "records", summary: "Create up to 1,000 records, all or nothing", tag: tag,
               body: CreateRecordsBody.self, returns: TableRecord.self, array: true, status: 201, maxBody: "16mb") { req -> Response in
            let body = try req.content.decode(CreateRecordsBody.self)
            let created = try await req.rounds.tables.createRecords(table: try await Self.tableID(req), body.records.map(\.fields),
                                                                    context: req.context(), on: req.db)
            return try await created.encodeResponse(status: .created, for: req)
        }
        api.on(.PATCH, "bases", ":baseId", "tables", ":tableId", "records",
               summary: "Change up to 1,000 records, each from the version it was read at (409 on a stale field)", tag: tag,
               body: UpdateRecordsBody.self, returns: TableRecord.self, array: true, maxBody: "16mb") { req in
            let body = try req.content.decode(UpdateRecordsBody.self)
            return try await req.rounds.tables.updateRecords(table: try await Self.tableID(req),
                                                             body.records.map { RecordPatch(id: $0.id, version: $0.version, fields: $0.fields) },
                                                             context: req.context(), on: req.db)
        }
        api.on(.POST, "bases", ":baseId", "tables", ":tableId", "records", "delete", summary: "Delete records (they can be restored)",
               tag: tag, body: RecordIDsBody.self, status: 204) { req -> HTTPStatus in
            let body = try req.content.decode(RecordIDsBody.self)
            try await req.rounds.tables.deleteRecords(table: try await Self.tableID(req), ids: body.ids, context: req.context(), on: req.db)
            return .noContent
        }
        api.on(.POST, "bases", ":baseId", "tables", ":tableId", "records", "restore", summary: "Restore deleted records", tag: tag,
               body: RecordIDsBody.self, status: 204) { req -> HTTPStatus in
            let body = try req.content.decode(RecordIDsBody.self)
            try await req.rounds.tables.deleteRecords(table: try await Self.tableID(req), ids: body.ids, restore: true, context: req.context(), on: req.db)
            return .noContent
        }
        api.on(.POST, "bases", ":baseId", "tables", ":tableId", "import",
               summary: "Import CSV (UTF-8): mode all_or_nothing or skip_bad_rows, preview=true to check only; mapping is JSON {header: field or \"\"}",
               tag: tag, returns: ImportReport.self, query: ["mode", "preview", "mapping"], rawBody: ["text/csv"], maxBody: "50mb") { req in
            guard let body = req.body.data, body.readableBytes > 0 else { throw RoundsError.badRequest("the body must be a CSV file") }
            guard let text = body.getString(at: body.readerIndex, length: body.readableBytes, encoding: .utf8) else {
                throw RoundsError.badRequest("the CSV must be UTF-8 (save it from the spreadsheet as “CSV UTF-8”)")
            }
            var plan = ImportPlan()
            if let mode = req.query[String.self, at: "mode"] {
                guard let m = ImportPlan.Mode(rawValue: mode) else { throw RoundsError.badRequest("mode: all_or_nothing or skip_bad_rows") }
                plan.mode = m
            }
            plan.preview = req.query[String.self, at: "preview"] == "true"
            if let mapping = req.query[String.self, at: "mapping"], !mapping.isEmpty {
                do { plan.mapping = try JSONDecoder().decode([String: String].self, from: Data(mapping.utf8)) } catch {
                    throw RoundsError.badRequest("mapping: a JSON object {\"header\": \"field\"}")
                }
            }
            var report = try await req.rounds.tables.importCSV(table: try await Self.tableID(req), text, plan: plan, context: req.context(), on: req.db)
            // Each refused line's reason in the reader's language (the report is read by people).
            for i in report.refused.indices { report.refused[i].reason = CellReasons.localized(report.refused[i].reason, req.locale) }
            return report
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", "rules",
               summary: "The table's field rules (hidden or read-only per role) and row rules (a filter over the reader per role); owners",
               tag: tag, returns: TableRules.self) { req in
            try await req.rounds.tables.rules(table: try await Self.tableID(req), context: req.context(), on: req.db)
        }
        api.on(.PUT, "bases", ":baseId", "tables", ":tableId", "rules", summary: "Replace the table's rules (owners)", tag: tag,
               body: TableRules.self, returns: TableRules.self) { req in
            let body = try req.content.decode(TableRules.self)
            return try await req.rounds.tables.setRules(table: try await Self.tableID(req), body, context: req.context(), on: req.db)
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", "export.csv",
               summary: "The records a query matches as CSV (UTF-8 with BOM), only the fields and records the caller may see", tag: tag,
               query: ["filter", "sort", "search", "as"], contentType: "text/csv") { req -> Response in
            try await Self.export(req, table: try await Self.tableID(req), query: try Self.query(req))
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", "records", ":recordId", summary: "One record", tag: tag,
               returns: TableRecord.self) { req in
            try await req.rounds.tables.record(table: try await Self.tableID(req), id: req.parameters.require("recordId"), context: req.context(), on: req.db)
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", "records", ":recordId", "history",
               summary: "Every change of a record: who, when, old → new", tag: tag, returns: TablesService.HistoryEntry.self, array: true) { req in
            try await req.rounds.tables.history(table: try await Self.tableID(req), record: req.parameters.require("recordId"),
                                                context: req.context(), on: req.db)
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", "records", ":recordId", "comments",
               summary: "A record's comments, oldest first", tag: tag, returns: TablesService.Comment.self, array: true) { req in
            try await req.rounds.tables.comments(table: try await Self.tableID(req), record: req.parameters.require("recordId"),
                                                 context: req.context(), on: req.db)
        }
        api.on(.POST, "bases", ":baseId", "tables", ":tableId", "records", ":recordId", "comments",
               summary: "Comment on a record (commenters and above); @姓名 notifies that person if they may read the record",
               tag: tag, body: CommentBody.self, returns: TablesService.CommentResult.self, status: 201) { req -> Response in
            let body = try req.content.decode(CommentBody.self)
            return try await req.rounds.tables.addComment(table: try await Self.tableID(req), record: req.parameters.require("recordId"),
                                                          text: body.text, context: req.context(), on: req.db)
                .encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", "groups",
               summary: "Counts (and sums) per group of up to 3 fields (by=a,b), over the records a filter/search matches; in SQL",
               tag: tag, returns: RecordGroup.self, array: true, query: ["by", "sums", "filter", "search", "as"]) { req in
            let by = (req.query[String.self, at: "by"] ?? "").split(separator: ",").map(String.init)
            let sums = (req.query[String.self, at: "sums"] ?? "").split(separator: ",").map(String.init)
            return try await req.rounds.tables.groups(table: try await Self.tableID(req), by: by, sums: sums, try Self.query(req),
                                                      context: req.context(), on: req.db)
        }
        api.on(.GET, "bases", ":baseId", "tables", ":tableId", "indexes", summary: "The table's view indexes (owners)", tag: tag,
               returns: TablesService.ViewIndex.self, array: true) { req in
            try await req.rounds.tables.indexes(table: try await Self.tableID(req), context: req.context(), on: req.db)
        }
        api.on(.PUT, "bases", ":baseId", "tables", ":tableId", "indexes",
               summary: "Index a view's sort and filter fields (owners; idempotent); answers the table's view indexes", tag: tag,
               body: IndexBody.self, returns: TablesService.ViewIndex.self, array: true) { req in
            let body = try req.content.decode(IndexBody.self)
            return try await req.rounds.tables.createIndexes(table: try await Self.tableID(req), sort: body.sort ?? [], filterFields: body.filterFields ?? [],
                                                             context: req.context(), on: req.db)
        }
        api.on(.DELETE, "bases", ":baseId", "tables", ":tableId", "indexes", ":name", summary: "Drop a view index (owners)", tag: tag,
               status: 204) { req -> HTTPStatus in
            try await req.rounds.tables.dropIndex(table: try await Self.tableID(req), name: req.parameters.require("name"), context: req.context(), on: req.db)
            return .noContent
        }
        api.on(.GET, "tables", "mentions", summary: "My notices: comments that @mention me, newest first", tag: tag,
               returns: TablesService.MentionNotice.self, array: true) { req in
            try await req.rounds.tables.mentions(context: req.context(), on: req.db)
        }
        api.on(.POST, "tables", "mentions", "read", summary: "Mark all my notices read", tag: tag, status: 204) { req -> HTTPStatus in
            try await req.rounds.tables.markMentionsRead(context: req.context(), on: req.db)
            return .noContent
        }
    }

    /// The table of the path, when it is one of the path's base (else 404).
    static func tableID(_ req: Request) async throws -> String {
        let table = try req.parameters.require("tableId")
        try await req.rounds.tables.requireTable(table, inBase: req.parameters.require("baseId"), on: req.db)
        return table
    }

    static func tableDTO(_ id: String, _ req: Request) async throws -> TableDTO {
        let (table, fields) = try await req.rounds.tables.tableDetail(id, context: req.context(), on: req.db)
        return TableDTO(id: table.id!, baseId: table.baseID, name: table.name, hasPatients: table.hasPatients, fields: fields.map(FieldDTO.init))
    }

    static func query(_ req: Request) throws -> RecordQuery {
        var query = RecordQuery()
        if let filter = req.query[String.self, at: "filter"], !filter.isEmpty {
            do { query.filter = try JSONDecoder().decode(FilterGroup.self, from: Data(filter.utf8)) } catch {
                throw RoundsError.badRequest("filter: a JSON filter group ({\"conjunction\":\"and\",\"conditions\":[…],\"groups\":[]})")
            }
        }
        if let sort = req.query[String.self, at: "sort"], !sort.isEmpty {
            query.sort = sort.split(separator: ",").map { part in
                part.hasPrefix("-") ? SortKey(field: String(part.dropFirst()), descending: true) : SortKey(field: String(part))
            }
        }
        query.search = req.query[String.self, at: "search"]
        if let limit = req.query[String.self, at: "limit"] {
            guard let n = Int(limit), n >= 1 else { throw RoundsError.badRequest("limit: a whole number from 1") }
            query.limit = n
        }
        query.cursor = req.query[String.self, at: "cursor"]
        query.deleted = req.query[String.self, at: "deleted"] == "true"
        if let fields = req.query[String.self, at: "fields"], !fields.isEmpty {
            query.fields = fields.split(separator: ",").map { String($0) }
        }
        if let reader = req.query[String.self, at: "as"], !reader.isEmpty { query.previewAs = reader }
        return query
    }

    /// Streams a CSV export page by page. The first page is read before the answer starts, so a
    /// refusal is still a problem document rather than a cut-off file.
    static func export(_ req: Request, table: String, query: RecordQuery) async throws -> Response {
        var query = query
        query.limit = RecordQuery.maximumLimit
        query.cursor = nil
        let tables = req.rounds.tables, context = try req.context(), db = req.db
        let first = try await tables.exportPage(table: table, query, context: context, on: db)
        let fixed = query
        let response = Response(status: .ok, body: .init(asyncStream: { writer in
            var page = first
            try await writer.write(.buffer(ByteBuffer(string: "\u{FEFF}" + TablesService.csvLine(page.header))))
            while true {
                try await writer.write(.buffer(ByteBuffer(string: page.rows.map(TablesService.csvLine).joined())))
                guard let next = page.next else { break }
                var q = fixed
                q.cursor = next
                page = try await tables.exportPage(table: table, q, context: context, on: db)
            }
            try await writer.write(.end)
        }))
        response.headers.contentType = HTTPMediaType(type: "text", subType: "csv", parameters: ["charset": "utf-8"])
        let name = (first.tableName.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "export") + ".csv"
        response.headers.replaceOrAdd(name: .contentDisposition, value: "attachment; filename=\"export.csv\"; filename*=UTF-8''\(name)")
        return response
    }
}
