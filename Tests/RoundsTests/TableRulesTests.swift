import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
import RoundsStore
@testable import RoundsTables
@testable import RoundsWeb
import Testing
import Vapor

/// Field rules and row rules through every path, both ways: what a limited role is given and
/// refused (each refusal audited), what the owner still sees, and the owner's preview.
@Suite struct TableRulesTests {
    struct Setup {
        var base: TableBase
        var table: UserTable
        var owner: RequestContext
        var doctor: RequestContext
        var nurse: RequestContext
        var ids: [String: String]
        var mine: TableRecord
        var theirs: TableRecord
        func fid(_ name: String) -> String { ids[name]! }
    }

    /// A follow-up table of 肺癌中心: the department edits, the diagnosis hidden from editors, the
    /// remark read-only, and each editor only with the records where they are the doctor.
    static func setup(_ app: Application) async throws -> Setup {
        let tables = app.rounds.tables
        let (base, table, owner) = try await TablesTests.table(app)
        let doctor = try await TablesTests.context("li.ming", app), nurse = try await TablesTests.context("wang.fang", app)
        for (name, kind, options) in [("主管医生", FieldKind.person, FieldOptions()), ("诊断", .text, FieldOptions()),
                                      ("诊断字数", .formula, FieldOptions(formula: "LEN({诊断})")), ("备注", .text, FieldOptions())] {
            _ = try await tables.addField(table: table.id!, .init(name: name, kind: kind, options: options), context: owner, on: app.db)
        }
        let fields = try await tables.fields(of: table.id!, on: app.db)
        let ids = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.id!) })
        let made = try await tables.createRecords(table: table.id!, [
            ["名称": .text("李明的病人"), "主管医生": .text(doctor.principal.id), "诊断": .text("肺腺癌"), "备注": .text("=HYPERLINK(\"x\")")],
            ["名称": .text("王芳的病人"), "主管医生": .text(nurse.principal.id), "诊断": .text("肺鳞癌")],
            ["名称": .text("无人负责"), "诊断": .text("肺腺癌")],
        ], context: owner, on: app.db)
        let lung = try await Demo.department("LUNG", app)
        try await tables.grant(base: base.id!, granteeKind: "department", granteeID: lung.id!, role: .editor, context: owner, on: app.db)
        try await tables.setRules(table: table.id!, TableRules(
            fields: ["诊断": ["editor": .hidden, "viewer": .hidden], "备注": ["editor": .readOnly]],
            rows: ["editor": FilterGroup(.and, conditions: [FilterCondition(field: "主管医生", .isMe)])]), context: owner, on: app.db)
        return Setup(base: base, table: table, owner: owner, doctor: doctor, nurse: nurse, ids: ids, mine: made[0], theirs: made[1])
    }

    @Test(arguments: Backend.all)
    func aLimitedRoleGetsOnlyItsFieldsAndRowsOnEveryPath(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let s = try await Self.setup(app)
            let t = s.table.id!
            // The owner: every record and field.
            let all = try await tables.records(table: t, RecordQuery(), context: s.owner, on: app.db)
            #expect(all.records.count == 3 && all.records[0].fields[s.fid("诊断")] == .text("肺腺癌"))
            // The doctor: his record only, without the diagnosis or the formula that reads it.
            let his = try await tables.records(table: t, RecordQuery(), context: s.doctor, on: app.db)
            #expect(his.records.map(\.id) == [s.mine.id])
            #expect(his.records[0].fields[s.fid("诊断")] == nil && his.records[0].fields[s.fid("诊断字数")] == nil)
            #expect(his.records[0].fields[s.fid("备注")] != nil)
            #expect(try await tables.tableDetail(t, context: s.doctor, on: app.db).1.map(\.name) == ["名称", "主管医生", "备注"])
            // Search, filter, sort and groups do not reach the hidden field or the other rows.
            #expect(try await tables.records(table: t, RecordQuery(search: "肺腺癌"), context: s.doctor, on: app.db).records.isEmpty)
            #expect(try await tables.records(table: t, RecordQuery(search: "病人"), context: s.doctor, on: app.db).records.count == 1)
            await #expect(throws: RoundsError.self) {
                try await tables.records(table: t, RecordQuery(filter: FilterGroup(conditions: [FilterCondition(field: "诊断", .contains, .text("腺"))])),
                                         context: s.doctor, on: app.db)
            }
            await #expect(throws: RoundsError.self) {
                try await tables.records(table: t, RecordQuery(sort: [SortKey(field: "诊断字数")]), context: s.doctor, on: app.db)
            }
            let groups = try await tables.groups(table: t, by: ["名称"], RecordQuery(), context: s.doctor, on: app.db)
            #expect(groups.map(\.count) == [1])
            #expect(try await tables.groups(table: t, by: ["名称"], RecordQuery(), context: s.owner, on: app.db).count == 3)
            // Another's record is not there for him: read, history, change and delete.
            await #expect(throws: RoundsError.notFound("record", id: s.theirs.id)) {
                try await tables.record(table: t, id: s.theirs.id, context: s.doctor, on: app.db)
            }
            await #expect(throws: RoundsError.notFound("record", id: s.theirs.id)) {
                try await tables.history(table: t, record: s.theirs.id, context: s.doctor, on: app.db)
            }
            await #expect(throws: RoundsError.notFound("record", id: s.theirs.id)) {
                try await tables.updateRecords(table: t, [RecordPatch(id: s.theirs.id, version: 1, fields: ["名称": .text("x")])], context: s.doctor, on: app.db)
            }
            await #expect(throws: RoundsError.notFound("record", id: s.theirs.id)) {
                try await tables.deleteRecords(table: t, ids: [s.theirs.id], context: s.doctor, on: app.db)
            }
            // A read-only field is refused (403, audited); a hidden one is not a field for him.
            let readOnly = await #expect(throws: RoundsError.self) {
                try await tables.updateRecords(table: t, [RecordPatch(id: s.mine.id, version: 1, fields: ["备注": .text("改")])], context: s.doctor, on: app.db)
            }
            #expect(readOnly?.status == 403)
            #expect(try await Demo.audit("table.record.update", app).contains { $0.outcome == "denied" && $0.detail?.contains("备注") == true })
            let hidden = await #expect(throws: RoundsError.self) {
                try await tables.updateRecords(table: t, [RecordPatch(id: s.mine.id, version: 1, fields: ["诊断": .text("改")])], context: s.doctor, on: app.db)
            }
            #expect(hidden?.status == 422 && hidden?.items?.first?.reason.contains("no such field") == true)
            // A change that would hand the record to someone else is refused and changes nothing.
            let away = await #expect(throws: RoundsError.self) {
                try await tables.updateRecords(table: t, [RecordPatch(id: s.mine.id, version: 1, fields: ["主管医生": .text(s.nurse.principal.id)])],
                                               context: s.doctor, on: app.db)
            }
            #expect(away?.status == 403)
            #expect(try await tables.record(table: t, id: s.mine.id, context: s.owner, on: app.db).fields[s.fid("主管医生")] == .text(s.doctor.principal.id))
            #expect(try await Demo.audit("table.record.update", app).contains { $0.outcome == "denied" && $0.detail?.contains("row rule") == true })
            // He creates records of his own, not someone else's.
            #expect(try await tables.createRecords(table: t, [["名称": .text("新病人"), "主管医生": .text(s.doctor.principal.id)]], context: s.doctor, on: app.db).count == 1)
            let foreign = await #expect(throws: RoundsError.self) {
                try await tables.createRecords(table: t, [["名称": .text("别人的"), "主管医生": .text(s.nurse.principal.id)]], context: s.doctor, on: app.db)
            }
            #expect(foreign?.status == 403)
            #expect(try await tables.records(table: t, RecordQuery(search: "别人的"), context: s.owner, on: app.db).records.isEmpty)
            // His own record's allowed change goes through; its history shows no hidden field.
            _ = try await tables.updateRecords(table: t, [RecordPatch(id: s.mine.id, version: 1, fields: ["名称": .text("李明的病人（复诊）")])], context: s.doctor, on: app.db)
            _ = try await tables.updateRecords(table: t, [RecordPatch(id: s.mine.id, version: 2, fields: ["诊断": .text("肺腺癌 IV期")])], context: s.owner, on: app.db)
            let history = try await tables.history(table: t, record: s.mine.id, context: s.doctor, on: app.db)
            #expect(history.contains { $0.fieldName == "名称" } && !history.contains { $0.fieldName == "诊断" || $0.fieldName == "诊断字数" })
            #expect(try await tables.history(table: t, record: s.mine.id, context: s.owner, on: app.db).contains { $0.fieldName == "诊断" })
            // The export holds his columns and rows only.
            let page = try await tables.exportPage(table: t, RecordQuery(), context: s.doctor, on: app.db)
            #expect(page.header == ["名称", "主管医生", "备注"])
            #expect(page.rows.map { $0[0] }.sorted() == ["新病人", "李明的病人（复诊）"])
            #expect(page.rows.contains { $0[1] == "李明" })
            // The nurse is an editor too: the same rule gives her her own record.
            #expect(try await tables.records(table: t, RecordQuery(), context: s.nurse, on: app.db).records.map(\.id) == [s.theirs.id])
        }
    }

    @Test(arguments: Backend.all)
    func anOwnerPreviewsTheTableAsSomeoneElseAndOnlyAnOwner(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let s = try await Self.setup(app)
            let t = s.table.id!
            let preview = try await tables.records(table: t, RecordQuery(previewAs: s.doctor.principal.id), context: s.owner, on: app.db)
            #expect(preview.records.map(\.id) == [s.mine.id] && preview.records[0].fields[s.fid("诊断")] == nil)
            let grid = try await tables.grid(table: t, RecordQuery(previewAs: s.doctor.principal.id), groupBy: nil, context: s.owner, on: app.db)
            #expect(grid.readerName == "李明" && grid.columns.allSatisfy { !$0.editable } && grid.rows.count == 1)
            #expect(try await Demo.audit("table.preview", app).contains { $0.detail?.contains("李明") == true && $0.actorName == "张丽" })
            // Not for an editor, and not as someone with no role on the base.
            let refused = await #expect(throws: RoundsError.self) {
                try await tables.records(table: t, RecordQuery(previewAs: s.nurse.principal.id), context: s.doctor, on: app.db)
            }
            #expect(refused?.status == 403)
            let outsider = try await Demo.staff("zhou.ting", app)
            let noRole = await #expect(throws: RoundsError.self) {
                try await tables.records(table: t, RecordQuery(previewAs: outsider.id!), context: s.owner, on: app.db)
            }
            #expect(noRole?.status == 422)
        }
    }

    @Test(arguments: Backend.all)
    func rulesAreCheckedWhenSavedAndKeepTheirFields(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let s = try await Self.setup(app)
            let t = s.table.id!
            // Kept by field id: the names come back as ids.
            let saved = try await tables.rules(table: t, context: s.owner, on: app.db)
            #expect(saved.fields[s.fid("诊断")]?["editor"] == .hidden && saved.rows["editor"]?.conditions.first?.field == s.fid("主管医生"))
            // A rename keeps the rule working.
            _ = try await tables.updateField(s.fid("主管医生"), name: "医生", kind: nil, options: nil, context: s.owner, on: app.db)
            #expect(try await tables.records(table: t, RecordQuery(), context: s.doctor, on: app.db).records.count == 1)
            // The field a row rule filters on is not deleted or retyped under it.
            await #expect(throws: RoundsError.self) { try await tables.deleteField(s.fid("主管医生"), context: s.owner, on: app.db) }
            await #expect(throws: RoundsError.self) {
                try await tables.updateField(s.fid("主管医生"), name: nil, kind: .text, options: nil, context: s.owner, on: app.db)
            }
            // Refused rules, each named.
            let bad = await #expect(throws: RoundsError.self) {
                try await tables.setRules(table: t, TableRules(
                    fields: ["没有这个": ["viewer": .hidden], "名称": ["viewer": .hidden], "备注": ["owner": .readOnly]],
                    rows: ["viewer": FilterGroup(conditions: [FilterCondition(field: "备注", .isMe)])]), context: s.owner, on: app.db)
            }
            #expect(bad?.status == 422)
            #expect(Set(bad?.items?.map(\.path) ?? []) == ["fields.没有这个", "fields.名称.viewer", "fields.备注.owner", "rows.viewer"])
            #expect(try await tables.rules(table: t, context: s.owner, on: app.db) == saved)
            // Only owners read or change them, and the refusal is audited.
            let notOwner = await #expect(throws: RoundsError.self) { try await tables.setRules(table: t, TableRules(), context: s.doctor, on: app.db) }
            #expect(notOwner?.status == 403)
            #expect(try await Demo.audit("table.rules.update", app).contains { $0.outcome == "denied" })
            // Cleared: the doctor sees every record and field again.
            try await tables.setRules(table: t, TableRules(), context: s.owner, on: app.db)
            #expect(try await tables.records(table: t, RecordQuery(), context: s.doctor, on: app.db).records.count == 3)
        }
    }

    @Test func theRulesAPIAndTheExportAnswerAsThePagesDo() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let s = try await Self.setup(app)
            let path = "/api/v1/bases/\(s.base.id!)/tables/\(s.table.id!)"
            let head = Client(app), doctor = Client(app)
            try await head.login("zhang.li")
            try await doctor.login("li.ming")
            #expect(try await head.get("\(path)/rules").status == .ok)
            #expect(try await doctor.get("\(path)/rules").status == .forbidden)
            let bad = try await head.json(.PUT, "\(path)/rules", TableRules(fields: ["名称": ["viewer": .hidden]]))
            #expect(bad.status == .unprocessableEntity && bad.body.string.contains("fields.名称.viewer"))
            // The export: a BOM, his columns, his record, and a cell that would run in a spreadsheet made inert.
            let csv = try await doctor.get("\(path)/export.csv")
            #expect(csv.status == .ok && csv.headers.contentType?.subType == "csv")
            let text = csv.body.string
            #expect(text.hasPrefix("\u{FEFF}名称,主管医生,备注\r\n"))
            #expect(text.contains("李明的病人,李明,\"'=HYPERLINK(\"\"x\"\")\"") && !text.contains("王芳的病人") && !text.contains("肺腺癌"))
            // Field selection in the API.
            let page = try await head.get("\(path)/records?fields=%E5%90%8D%E7%A7%B0")
            let records = try JSONDecoder().decode(TablesAPITests.Page.self, from: Data(page.body.string.utf8)).records
            #expect(records.count == 3 && records.allSatisfy { $0.fields.keys.sorted() == [s.fid("名称")] })
            // The rules page: the owner sets the viewer's rows to "doctor is me" by the form.
            #expect(try await head.page("/tables/\(s.base.id!)/\(s.table.id!)/rules").body.string.contains("rows_viewer[]"))
            _ = try await head.form("/tables/\(s.base.id!)/\(s.table.id!)/rules", ["rows_viewer[]": s.fid("主管医生"), "rows_editor[]": s.fid("主管医生"),
                                                                              "access_\(s.fid("备注"))_viewer": "hidden"])
            let rules = try await app.rounds.tables.rules(table: s.table.id!, context: s.owner, on: app.db)
            #expect(rules.rows["viewer"]?.conditions.map(\.field) == [s.fid("主管医生")] && rules.fields[s.fid("备注")]?["viewer"] == .hidden)
            #expect(rules.rows["editor"]?.conditions.map(\.op) == [.isMe] && rules.fields[s.fid("诊断")] == nil)
            // The grid previewed as the doctor, and its CSV.
            let preview = try await head.page("/tables/\(s.base.id!)/\(s.table.id!)?as=\(s.doctor.principal.id)")
            #expect(preview.body.string.contains("preview-banner") && preview.body.string.contains("李明的病人"))
            #expect(!preview.body.string.contains("王芳的病人"))
        }
    }

    @Test func csvCellsAreQuotedAndCannotRunAsFormulas() {
        #expect(TablesService.csvLine(["a", "b,c", "say \"hi\"", "two\nlines", "=1+1", "-3", "-x", "@SUM", "+86 139"]) ==
                "a,\"b,c\",\"say \"\"hi\"\"\",\"two\nlines\",'=1+1,-3,'-x,'@SUM,'+86 139\r\n")
    }
}
