import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
import RoundsStore
@testable import RoundsTables
@testable import RoundsWeb
import SQLKit
import Testing
import Vapor

/// The table engine on both databases: bases and roles, fields of every kind, records with
/// versions, history and soft delete, type changes, formulas, and filters/sorts/pages in SQL.
@Suite struct TablesTests {
    static func context(_ username: String, _ app: Application) async throws -> RequestContext {
        let staff = try await Demo.staff(username, app)
        return RequestContext(principal: try await app.rounds.auth.principal(for: staff, on: app.db), clientAddress: "127.0.0.1")
    }

    /// A base of 肺癌中心 owned by the head nurse, with one table.
    static func table(_ app: Application, name: String = "随访") async throws -> (TableBase, UserTable, RequestContext) {
        let owner = try await context("zhang.li", app)
        let hospital = try await Demo.hospital("HK01", app), lung = try await Demo.department("LUNG", app)
        let base = try await app.rounds.tables.createBase(name: "肺癌中心工作台", hospitalID: hospital.id!, departmentID: lung.id!,
                                                          context: owner, on: app.db)
        let table = try await app.rounds.tables.createTable(base: base.id!, name: name, context: owner, on: app.db)
        return (base, table, owner)
    }

    @Test(arguments: Backend.all)
    func basesBelongToTheirSpaceAndRolesDecideWhoSeesAndEdits(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (base, table, owner) = try await Self.table(app)
            let eastAdmin = try await Self.context("luo.jie", app)
            let nurse = try await Self.context("wang.fang", app)
            let lung = try await Demo.department("LUNG", app)
            // Someone of another hospital cannot create a base in this one, and the refusal is audited.
            await #expect(throws: RoundsError.self) {
                try await tables.createBase(name: "x", hospitalID: base.hospitalID, departmentID: nil, context: eastAdmin, on: app.db)
            }
            #expect(try await Demo.audit("table.base.create", app).contains { $0.outcome == "denied" && $0.actorName == "罗杰" })
            // Without a grant the nurse sees nothing of it: not in her list, "not found" when asked.
            #expect(try await tables.bases(context: nurse, on: app.db).isEmpty)
            await #expect(throws: RoundsError.notFound("base", id: base.id!)) { try await tables.base(base.id!, context: nurse, on: app.db) }
            // Her ward gets the viewer role: she reads, but does not write.
            try await tables.grant(base: base.id!, granteeKind: "department", granteeID: lung.id!, role: .viewer, context: owner, on: app.db)
            #expect(try await tables.bases(context: nurse, on: app.db).map(\.role) == [.viewer])
            _ = try await tables.records(table: table.id!, RecordQuery(), context: nurse, on: app.db)
            let refused = await #expect(throws: RoundsError.self) {
                try await tables.createRecords(table: table.id!, [["名称": .text("x")]], context: nurse, on: app.db)
            }
            #expect(refused?.status == 403)
            #expect(try await Demo.audit("table.record.create", app).contains { $0.outcome == "denied" })
            // Only owners grant roles.
            await #expect(throws: RoundsError.self) {
                try await tables.grant(base: base.id!, granteeKind: "staff", granteeID: nurse.principal.id, role: .owner, context: nurse, on: app.db)
            }
            // A person's own grant counts beside their ward's: the higher one.
            try await tables.grant(base: base.id!, granteeKind: "staff", granteeID: nurse.principal.id, role: .editor, context: owner, on: app.db)
            #expect(try await tables.base(base.id!, context: nurse, on: app.db).role == .editor)
            let created = try await tables.createRecords(table: table.id!, [["名称": .text("张三 随访")]], context: nurse, on: app.db)
            #expect(created.count == 1 && created[0].number == 1 && created[0].version == 1)
        }
    }

    @Test(arguments: Backend.all)
    func everyFieldKindChecksAndKeepsItsValues(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await Self.table(app)
            let id = table.id!
            func add(_ name: String, _ kind: FieldKind, _ options: FieldOptions = FieldOptions()) async throws -> TableField {
                try await tables.addField(table: id, .init(name: name, kind: kind, options: options), context: owner, on: app.db)
            }
            _ = try await add("备注", .longText)
            _ = try await add("体重", .number, FieldOptions(precision: 1, unit: "kg"))
            _ = try await add("费用", .currency, FieldOptions(precision: 2, symbol: "¥"))
            _ = try await add("完成度", .percent)
            _ = try await add("满意度", .rating, FieldOptions(max: 5))
            _ = try await add("进度", .progress)
            _ = try await add("状态", .singleSelect, FieldOptions(choices: [SelectOption(id: "", name: "待随访"), SelectOption(id: "", name: "已随访")]))
            _ = try await add("标签", .multiSelect, FieldOptions(choices: [SelectOption(id: "", name: "术后"), SelectOption(id: "", name: "化疗")]))
            _ = try await add("随访日期", .date)
            _ = try await add("随访时间", .dateTime)
            _ = try await add("通话时长", .duration)
            _ = try await add("已签字", .checkbox)
            _ = try await add("责任护士", .person)
            _ = try await add("科室", .department)
            _ = try await add("患者", .patient)
            _ = try await add("电话", .phone)
            _ = try await add("邮箱", .email)
            _ = try await add("链接", .url)
            _ = try await add("编号", .autoNumber)
            _ = try await add("创建时间", .createdTime)
            _ = try await add("创建人", .createdBy)
            let nurse = try await Demo.staff("wang.fang", app), lung = try await Demo.department("LUNG", app)
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let good: [String: CellValue] = [
                "名称": .text("随访一"), "备注": .text("第一行\n第二行"), "体重": .text("65.25"), "费用": .text("¥1,280.5"),
                "完成度": .text("50%"), "满意度": .number(4), "进度": .number(0.3), "状态": .text("待随访"),
                "标签": .list([.text("术后"), .text("化疗"), .text("术后")]), "随访日期": .text("2026年12月4日"),
                "随访时间": .text("2026-12-04 14:30"), "通话时长": .text("0:05:30"), "已签字": .text("是"),
                "责任护士": .text(nurse.id!), "科室": .text(lung.id!), "患者": .text(patient.mrn), "电话": .text("138-0000-0001"),
                "邮箱": .text("wang.fang@huakang.example"), "链接": .text("https://his.example/emr?mrn=1"),
            ]
            let r = try await tables.createRecords(table: id, [good], context: owner, on: app.db)[0]
            let fields = try await tables.fields(of: id, on: app.db)
            func value(_ name: String) -> CellValue { r.fields[fields.first { $0.name == name }!.id!]! }
            #expect(value("体重") == .number(65.3))
            #expect(value("费用") == .number(1280.5))
            #expect(value("完成度") == .number(0.5))
            #expect(value("状态") == .text("待随访"))
            #expect(value("标签") == .list([.text("术后"), .text("化疗")]))
            #expect(value("随访日期") == .text("2026-12-04"))
            #expect(value("随访时间") == .text("2026-12-04T14:30:00+08:00"))
            #expect(value("通话时长") == .number(330))
            #expect(value("已签字") == .bool(true))
            #expect(value("患者") == .text(patient.mrn))
            #expect(value("备注") == .text("第一行\n第二行"))
            #expect(value("编号") == .number(1))
            #expect(value("创建人") == .text(owner.principal.id))
            // The stored patient is the patient's id (it follows the patient), shown as the MRN.
            let sql = app.db as! any SQLDatabase
            let patientColumn = fields.first { $0.name == "患者" }!.columnName!
            #expect(try await sql.raw("SELECT \(ident: patientColumn) AS p FROM \(ident: table.sqlName)").first()?.decode(column: "p", as: String.self) == patient.id)

            // Bad values: the whole batch is refused, every problem named by record and field.
            let bad: [[String: CellValue]] = [
                ["名称": .text("好的一条")],
                ["体重": .text("六十"), "状态": .text("不存在的选项"), "随访日期": .text("2026-02-30"), "满意度": .number(6)],
                ["链接": .text("javascript:alert(1)"), "邮箱": .text("not-mail"), "电话": .text("call me"), "名称": .text("两行\n文字")],
                ["患者": .text("NO-SUCH-MRN"), "责任护士": .text("nobody"), "编号": .number(5), "没有这个字段": .text("x")],
            ]
            let error = await #expect(throws: RoundsError.self) { try await tables.createRecords(table: id, bad, context: owner, on: app.db) }
            let paths = Set(error?.items?.map(\.path) ?? [])
            #expect(error?.status == 422 || error?.status == 400)
            for path in ["records[1].体重", "records[1].状态", "records[1].随访日期", "records[1].满意度", "records[2].链接", "records[2].邮箱",
                         "records[2].电话", "records[2].名称", "records[3].患者", "records[3].责任护士", "records[3].编号", "records[3].没有这个字段"] {
                #expect(paths.contains(path), "\(path) is named")
            }
            #expect(try await tables.records(table: id, RecordQuery(), context: owner, on: app.db).records.count == 1, "nothing of the batch was kept")
            // More than 1,000 at once is refused before anything is read.
            await #expect(throws: RoundsError.self) {
                try await tables.createRecords(table: id, Array(repeating: ["名称": .text("x")], count: 1_001), context: owner, on: app.db)
            }
        }
    }

    @Test(arguments: Backend.all)
    func formulasFollowTheirInputsRenamesAndRefuseCycles(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await Self.table(app)
            let id = table.id!
            let weight = try await tables.addField(table: id, .init(name: "体重", kind: .number), context: owner, on: app.db)
            let height = try await tables.addField(table: id, .init(name: "身高", kind: .number), context: owner, on: app.db)
            let first = try await tables.createRecords(table: id, [["名称": .text("甲"), "体重": .number(70), "身高": .number(175)]],
                                                       context: owner, on: app.db)[0]
            // Added after the record: computed for it at once.
            let bmi = try await tables.addField(table: id, .init(name: "BMI", kind: .formula, options: FieldOptions(formula: "ROUND(BMI({体重}, {身高}), 1)")),
                                                context: owner, on: app.db)
            let level = try await tables.addField(table: id, .init(name: "分级", kind: .formula,
                                                                   options: FieldOptions(formula: #"IF({BMI} >= 24, "超重", "正常")"#)), context: owner, on: app.db)
            #expect(bmi.fieldOptions.resultType == "number" && level.fieldOptions.resultType == "text")
            var record = try await tables.record(table: id, id: first.id, context: owner, on: app.db)
            #expect(record.fields[bmi.id!] == .number(22.9) && record.fields[level.id!] == .text("正常"))
            // A change recomputes what depends on it, through formulas over formulas.
            record = try await tables.updateRecords(table: id, [RecordPatch(id: first.id, version: record.version, fields: ["体重": .number(80)])],
                                                    context: owner, on: app.db)[0]
            #expect(record.fields[bmi.id!] == .number(26.1) && record.fields[level.id!] == .text("超重"))
            // A bad input is an error in the cell (with its reason), not a refused record.
            record = try await tables.updateRecords(table: id, [RecordPatch(id: first.id, version: record.version, fields: ["身高": .number(1.75)])],
                                                    context: owner, on: app.db)[0]
            #expect(record.fields[bmi.id!] == .null)
            // Renaming a field the formula reads keeps the formula working.
            _ = try await tables.updateField(weight.id!, name: "体重kg", kind: nil, options: nil, context: owner, on: app.db)
            let renamed = try #require(try await TableField.find(bmi.id!, on: app.db))
            #expect(renamed.fieldOptions.formula == "ROUND(BMI({体重kg}, {身高}), 1)")
            // A field a formula reads cannot be deleted; a formula reading itself in a circle is refused.
            let inUse = await #expect(throws: RoundsError.self) { try await tables.deleteField(height.id!, context: owner, on: app.db) }
            #expect(inUse?.detail?.contains("{BMI}") == true)
            let circle = await #expect(throws: RoundsError.self) {
                try await tables.updateField(bmi.id!, name: nil, kind: nil, options: FieldOptions(formula: "{分级} & \"\""), context: owner, on: app.db)
            }
            #expect(circle?.detail?.contains("circle") == true)
            await #expect(throws: RoundsError.self) {
                try await tables.addField(table: id, .init(name: "坏", kind: .formula, options: FieldOptions(formula: "{不存在} + 1")), context: owner, on: app.db)
            }
            #expect(try await TableField.query(on: app.db).filter(\.$name == "坏").count() == 0)
        }
    }

    @Test(arguments: Backend.all)
    func aStaleEditOfTheSameFieldIsAConflictAndOtherFieldsMerge(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await Self.table(app)
            let id = table.id!
            _ = try await tables.addField(table: id, .init(name: "电话", kind: .phone), context: owner, on: app.db)
            let r = try await tables.createRecords(table: id, [["名称": .text("原名")]], context: owner, on: app.db)[0]
            // Two people read version 1. The first renames it.
            _ = try await tables.updateRecords(table: id, [RecordPatch(id: r.id, version: 1, fields: ["名称": .text("甲改的")])], context: owner, on: app.db)
            // The second, from version 1, sets another field: kept, and the first change stays.
            let merged = try await tables.updateRecords(table: id, [RecordPatch(id: r.id, version: 1, fields: ["电话": .text("13800000001")])],
                                                        context: owner, on: app.db)[0]
            #expect(merged.version == 3)
            #expect(merged.fields.values.contains(.text("甲改的")) && merged.fields.values.contains(.text("13800000001")))
            // The second, still from version 1, renames it too: 409, with the current name.
            let conflict = await #expect(throws: RoundsError.self) {
                try await tables.updateRecords(table: id, [RecordPatch(id: r.id, version: 1, fields: ["名称": .text("乙改的")])], context: owner, on: app.db)
            }
            #expect(conflict?.status == 409)
            #expect(conflict?.items?.first?.path == "records[0].名称")
            #expect(conflict?.items?.first?.current == #""甲改的""#)
            let now = try await tables.record(table: id, id: r.id, context: owner, on: app.db)
            #expect(now.version == 3 && now.fields.values.contains(.text("甲改的")), "nothing was overwritten")
            // History: who changed what, old → new, in order.
            let history = try await tables.history(table: id, record: r.id, context: owner, on: app.db)
            #expect(history.map(\.action) == ["created", "set", "set"])
            #expect(history[1].fieldName == "名称" && history[1].old == .text("原名") && history[1].new == .text("甲改的"))
            #expect(history[2].fieldName == "电话" && history[2].old == .null && history[2].actorName == "张丽")
            // Soft delete, then restore: gone from the grid, in the trash, back again.
            try await tables.deleteRecords(table: id, ids: [r.id], context: owner, on: app.db)
            #expect(try await tables.records(table: id, RecordQuery(), context: owner, on: app.db).records.isEmpty)
            #expect(try await tables.records(table: id, RecordQuery(deleted: true), context: owner, on: app.db).records.map(\.id) == [r.id])
            await #expect(throws: RoundsError.self) {
                try await tables.updateRecords(table: id, [RecordPatch(id: r.id, version: 4, fields: ["名称": .text("x")])], context: owner, on: app.db)
            }
            try await tables.deleteRecords(table: id, ids: [r.id], restore: true, context: owner, on: app.db)
            #expect(try await tables.records(table: id, RecordQuery(), context: owner, on: app.db).records.map(\.version) == [5])
            #expect(try await tables.history(table: id, record: r.id, context: owner, on: app.db).map(\.action).suffix(2) == ["deleted", "restored"])
            // Each write is an event on the outbox.
            let kinds = try await OutboxEvent.query(on: app.db).filter(\.$kind ~~ EventKind.allCases.filter { $0.rawValue.hasPrefix("table.") }.map(\.rawValue))
                .all().map(\.kind)
            #expect(kinds.filter { $0 == "table.record_updated" }.count == 2)
            #expect(kinds.contains("table.record_deleted") && kinds.contains("table.record_restored") && kinds.contains("table.record_created"))
        }
    }

    @Test(arguments: Backend.all)
    func changingAFieldsKindConvertsItsValues(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await Self.table(app)
            let id = table.id!
            let score = try await tables.addField(table: id, .init(name: "评分", kind: .text), context: owner, on: app.db)
            let ward = try await tables.addField(table: id, .init(name: "病区", kind: .text), context: owner, on: app.db)
            _ = try await tables.createRecords(table: id, [
                ["名称": .text("a"), "评分": .text("3.5"), "病区": .text("肺癌中心")],
                ["名称": .text("b"), "评分": .text("高"), "病区": .text("ICU")],
                ["名称": .text("c"), "病区": .text("肺癌中心")],
            ], context: owner, on: app.db)
            let toNumber = try await tables.updateField(score.id!, name: nil, kind: .number, options: nil, context: owner, on: app.db)
            #expect(toNumber.emptied == 1, "“高” is not a number")
            let toSelect = try await tables.updateField(ward.id!, name: nil, kind: .singleSelect, options: nil, context: owner, on: app.db)
            #expect(toSelect.field.fieldOptions.choices?.map(\.name).sorted() == ["ICU", "肺癌中心"], "each distinct value became a choice")
            let page = try await tables.records(table: id, RecordQuery(sort: [SortKey(field: "名称")]), context: owner, on: app.db)
            #expect(page.records.map { $0.fields[score.id!]! } == [.number(3.5), .null, .null])
            #expect(page.records.map { $0.fields[ward.id!]! } == [.text("肺癌中心"), .text("ICU"), .text("肺癌中心")])
            // And back to text: numbers read as text.
            _ = try await tables.updateField(score.id!, name: nil, kind: .text, options: nil, context: owner, on: app.db)
            let again = try await tables.records(table: id, RecordQuery(sort: [SortKey(field: "名称")]), context: owner, on: app.db)
            #expect(again.records[0].fields[score.id!] == .text("3.5"))
        }
    }

    @Test(arguments: Backend.all)
    func aTableOfPatientsIsPatientDataEveryReadAudited(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await Self.table(app)
            _ = try await tables.addField(table: table.id!, .init(name: "患者", kind: .patient), context: owner, on: app.db)
            let patient = try await Demo.patient(onWard: "LUNG", app)
            let r = try await tables.createRecords(table: table.id!, [["名称": .text("复诊"), "患者": .text(patient.mrn)]], context: owner, on: app.db)[0]
            _ = try await tables.records(table: table.id!, RecordQuery(), context: owner, on: app.db)
            _ = try await tables.record(table: table.id!, id: r.id, context: owner, on: app.db)
            for action in ["table.record.created", "table.record.list", "table.record.read"] {
                let rows = try await Demo.audit(action, app)
                #expect(rows.contains { $0.patientID == patient.id && $0.entityID == r.id }, "\(action) names the patient")
            }
            // A patient of another hospital cannot be put in this hospital's table.
            let east = try await Demo.patient(onWard: "CARD", app)
            await #expect(throws: RoundsError.self) {
                try await tables.createRecords(table: table.id!, [["患者": .text(east.mrn)]], context: owner, on: app.db)
            }
        }
    }
}

/// Filters, sorts and pages run in SQL: on random data, every random query's pages (walked by
/// cursor) give exactly what a plain evaluation in memory gives, on both databases.
@Suite struct TableQueryPropertyTests {
    struct Rng: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    struct Item {
        var id: String
        var number: Int
        var name: String?
        var n: Double?
        var day: String?
        var tick: Bool
        var pick: String?
        var tags: [String]
    }

    static let words = ["肺癌", "术后", "化疗", "随访", "abc", "ab", "王", "张三", "z"]

    @Test(arguments: Backend.all)
    func randomQueriesMatchAnEvaluationInMemory(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await TablesTests.table(app, name: "随机")
            let id = table.id!
            _ = try await tables.addField(table: id, .init(name: "数", kind: .number), context: owner, on: app.db)
            _ = try await tables.addField(table: id, .init(name: "日", kind: .date), context: owner, on: app.db)
            _ = try await tables.addField(table: id, .init(name: "勾", kind: .checkbox), context: owner, on: app.db)
            _ = try await tables.addField(table: id, .init(name: "选", kind: .singleSelect,
                                                           options: FieldOptions(choices: ["甲", "乙", "丙"].map { SelectOption(id: "", name: $0) })), context: owner, on: app.db)
            _ = try await tables.addField(table: id, .init(name: "标", kind: .multiSelect,
                                                           options: FieldOptions(choices: ["X", "Y"].map { SelectOption(id: "", name: $0) })), context: owner, on: app.db)
            var rng = Rng(state: backend == .sqlite ? 20261204 : 4021621)
            var inputs: [[String: CellValue]] = []
            for _ in 0..<150 {
                var r: [String: CellValue] = [:]
                if Int.random(in: 0..<5, using: &rng) > 0 {
                    r["名称"] = .text(Self.words.randomElement(using: &rng)! + (Bool.random(using: &rng) ? Self.words.randomElement(using: &rng)! : ""))
                }
                if Int.random(in: 0..<4, using: &rng) > 0 { r["数"] = .number(Double(Int.random(in: -5...5, using: &rng)) / 2) }
                if Int.random(in: 0..<4, using: &rng) > 0 { r["日"] = .text(String(format: "2026-%02d-%02d", Int.random(in: 1...3, using: &rng), Int.random(in: 1...28, using: &rng))) }
                if Bool.random(using: &rng) { r["勾"] = .bool(Bool.random(using: &rng)) }
                if Int.random(in: 0..<4, using: &rng) > 0 { r["选"] = .text(["甲", "乙", "丙"].randomElement(using: &rng)!) }
                r["标"] = .list(["X", "Y"].filter { _ in Bool.random(using: &rng) }.map { .text($0) })
                inputs.append(r)
            }
            let created = try await tables.createRecords(table: id, inputs, context: owner, on: app.db)
            let fields = try await tables.fields(of: id, on: app.db)
            func fid(_ name: String) -> String { fields.first { $0.name == name }!.id! }
            let items: [Item] = zip(created, inputs).map { record, input in
                func text(_ k: String) -> String? { if case .text(let t)? = input[k] { return t }; return nil }
                var n: Double?
                if case .number(let x)? = input["数"] { n = x }
                var tick = false
                if case .bool(let b)? = input["勾"] { tick = b }
                var tags: [String] = []
                if case .list(let l)? = input["标"] { tags = l.compactMap { if case .text(let t) = $0 { return t }; return nil } }
                return Item(id: record.id, number: record.number, name: text("名称"), n: n, day: text("日"), tick: tick, pick: text("选"), tags: tags)
            }

            // A random condition, as the API takes it and as a predicate in memory.
            func condition() -> (FilterCondition, (Item) -> Bool) {
                switch Int.random(in: 0..<12, using: &rng) {
                case 0:
                    let w = Self.words.randomElement(using: &rng)!
                    return (FilterCondition(field: "名称", .contains, .text(w)), { $0.name?.contains(w) == true })
                case 1:
                    let w = Self.words.randomElement(using: &rng)!
                    return (FilterCondition(field: "名称", .isNot, .text(w)), { $0.name != w })
                case 2: return (FilterCondition(field: "名称", .isEmpty), { $0.name == nil })
                case 3:
                    let v = Double(Int.random(in: -5...5, using: &rng)) / 2
                    return (FilterCondition(field: "数", .greater, .number(v)), { ($0.n ?? -.infinity) > v && $0.n != nil })
                case 4:
                    let v = Double(Int.random(in: -5...5, using: &rng)) / 2
                    return (FilterCondition(field: "数", .lessOrEqual, .number(v)), { $0.n != nil && $0.n! <= v })
                case 5:
                    let v = Double(Int.random(in: -5...5, using: &rng)) / 2
                    return (FilterCondition(field: "数", .isNot, .number(v)), { $0.n != v })
                case 6:
                    let d = String(format: "2026-%02d-%02d", Int.random(in: 1...3, using: &rng), Int.random(in: 1...28, using: &rng))
                    return (FilterCondition(field: "日", .less, .text(d)), { $0.day != nil && $0.day! < d })
                case 7:
                    let b = Bool.random(using: &rng)
                    return (FilterCondition(field: "勾", .is, .bool(b)), { $0.tick == b })
                case 8:
                    let picks = ["甲", "乙", "丙"].filter { _ in Bool.random(using: &rng) }
                    let chosen = picks.isEmpty ? ["甲"] : picks
                    return (FilterCondition(field: "选", .isAnyOf, .list(chosen.map { .text($0) })), { $0.pick.map(chosen.contains) == true })
                case 9:
                    let p = ["甲", "乙"].randomElement(using: &rng)!
                    return (FilterCondition(field: "选", .isNoneOf, .list([.text(p)])), { $0.pick != p })
                case 10:
                    let t = ["X", "Y"].randomElement(using: &rng)!
                    return (FilterCondition(field: "标", .contains, .text(t)), { $0.tags.contains(t) })
                default: return (FilterCondition(field: "日", .isNotEmpty), { $0.day != nil })
                }
            }
            func group(depth: Int) -> (FilterGroup, (Item) -> Bool) {
                let and = Bool.random(using: &rng)
                var parts: [(Item) -> Bool] = []
                var g = FilterGroup(and ? .and : .or)
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let (c, p) = condition()
                    g.conditions.append(c); parts.append(p)
                }
                if depth < 2, Bool.random(using: &rng) {
                    let (inner, p) = group(depth: depth + 1)
                    g.groups.append(inner); parts.append(p)
                }
                return (g, { item in and ? parts.allSatisfy { $0(item) } : parts.contains { $0(item) } })
            }
            // Orders in memory: blanks last either way, text by its UTF-8 bytes, then the number.
            func compare<T>(_ a: T?, _ b: T?, _ less: (T, T) -> Bool, descending: Bool) -> Bool? {
                switch (a, b) {
                case (nil, nil): return nil
                case (nil, _): return false
                case (_, nil): return true
                case (let x?, let y?):
                    if less(x, y) { return !descending }
                    if less(y, x) { return descending }
                    return nil
                }
            }
            for round in 0..<40 {
                let (filter, keep) = group(depth: 0)
                var keys: [SortKey] = []
                for name in ["名称", "数", "日", "勾"].shuffled(using: &rng).prefix(Int.random(in: 0...2, using: &rng)) {
                    keys.append(SortKey(field: name, descending: Bool.random(using: &rng)))
                }
                let expected = items.filter(keep).sorted { a, b in
                    for key in keys {
                        let d = key.descending
                        let result: Bool?
                        switch key.field {
                        case "名称": result = compare(a.name, b.name, { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }, descending: d)
                        case "数": result = compare(a.n, b.n, <, descending: d)
                        case "日": result = compare(a.day, b.day, <, descending: d)
                        default: result = compare(a.tick ? 1 : 0, b.tick ? 1 : 0, <, descending: d)
                        }
                        if let result { return result }
                    }
                    return a.number < b.number
                }.map(\.id)
                var got: [String] = []
                var cursor: String?
                repeat {
                    let page = try await tables.records(table: id, RecordQuery(filter: filter, sort: keys, limit: 13, cursor: cursor),
                                                        context: owner, on: app.db)
                    got += page.records.map(\.id)
                    cursor = page.next
                } while cursor != nil && got.count <= items.count
                #expect(got == expected, "round \(round): \(filter) sorted by \(keys)")
            }
            // Grouped: counts and sums per choice, as the database's GROUP BY gives them.
            let groups = try await tables.groups(table: id, by: ["选"], sums: ["数"], RecordQuery(), context: owner, on: app.db)
            var expected: [(String?, Int, Double)] = []
            for pick in ["甲", "乙", "丙"].sorted(by: { a, b in
                let choices = fields.first { $0.name == "选" }!.fieldOptions.choices!
                return choices.first { $0.name == a }!.id < choices.first { $0.name == b }!.id
            }) + [nil] {
                let members = items.filter { $0.pick == pick }
                if !members.isEmpty { expected.append((pick, members.count, members.compactMap(\.n).reduce(0, +))) }
            }
            #expect(groups.map { $0.values[0] } == expected.map { $0.0.map(CellValue.text) ?? .null })
            #expect(groups.map(\.count) == expected.map(\.1))
            #expect(groups.map { $0.sums[fid("数")]! } == expected.map(\.2))
        }
    }
}

/// The table API: what a browser session and a system's token may do, the problem bodies of
/// refused writes, and paging by cursor over HTTP.
@Suite struct TablesAPITests {
    struct Made: Decodable { var id: String; var version: Int; var fields: [String: CellValue] }
    struct Page: Decodable { var records: [Made]; var next: String? }
    struct Problem: Decodable {
        struct Item: Decodable { var path: String; var reason: String; var current: String? }
        var code: String
        var errors: [Item]?
    }

    @Test(arguments: Backend.all)
    func theAPIKeepsRolesScopesAndSaysWhatItRefused(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let head = Client(app)
            try await head.login("zhang.li")
            let hospital = try await Demo.hospital("HK01", app), lung = try await Demo.department("LUNG", app)
            let made = try await head.json(.POST, "/api/v1/bases", CreateBaseBody(name: "病区质控", hospitalId: hospital.id!, departmentId: lung.id!))
            #expect(made.status == .created)
            let base = try made.decode(BaseDTO.self)
            #expect(base.role == .owner)
            let t = try await head.json(.POST, "/api/v1/bases/\(base.id)/tables", CreateTableBody(name: "夜查房", primaryFieldName: "检查项"))
            #expect(t.status == .created)
            let table = try t.decode(TableDTO.self)
            let path = "/api/v1/bases/\(base.id)/tables/\(table.id)"
            #expect(try await head.json(.POST, "\(path)/fields", FieldBody(name: "得分", kind: .number, options: nil)).status == .created)
            // Bad records: 422 problem JSON naming each.
            let bad = try await head.json(.POST, "\(path)/records", CreateRecordsBody(records: [
                RecordFieldsBody(fields: ["检查项": .text("床头卡")]), RecordFieldsBody(fields: ["得分": .text("很好")]),
            ]))
            #expect(bad.status.code == 422 || bad.status == .badRequest)
            let problem = try JSONDecoder().decode(Problem.self, from: Data(bad.body.string.utf8))
            #expect(problem.errors?.map(\.path) == ["records[1].得分"])
            // Good ones, 25 of them; read back by pages of 10 over the cursor, sorted by score descending.
            let rows = (1...25).map { RecordFieldsBody(fields: ["检查项": .text("第\($0)项"), "得分": .number(Double($0 % 7))]) }
            #expect(try await head.json(.POST, "\(path)/records", CreateRecordsBody(records: rows)).status == .created)
            var seen: [Made] = []
            var cursor: String?
            repeat {
                let url = "\(path)/records?sort=-得分&limit=10" + (cursor.map { "&cursor=\($0)" } ?? "")
                let response = try await head.get(url.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!)
                #expect(response.status == .ok)
                let page = try JSONDecoder().decode(Page.self, from: Data(response.body.string.utf8))
                seen += page.records
                cursor = page.next
            } while cursor != nil
            let scoreField = table.fields.first { $0.name == "检查项" }!.id
            _ = scoreField
            #expect(seen.count == 25 && Set(seen.map(\.id)).count == 25)
            // A filter as JSON in the query.
            let filter = #"{"conjunction":"and","conditions":[{"field":"得分","op":"gte","value":5}],"groups":[]}"#
            let filtered = try await head.get("\(path)/records?filter=\(filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            #expect(try JSONDecoder().decode(Page.self, from: Data(filtered.body.string.utf8)).records.count == 6)
            #expect(try await head.get("\(path)/records?filter=%7Bnot-json").status == .badRequest)
            // A stale edit of the same field: 409 with the current value.
            let one = seen[0]
            #expect(try await head.json(.PATCH, "\(path)/records", UpdateRecordsBody(records: [RecordPatchBody(id: one.id, version: one.version, fields: ["得分": .number(9)])])).status == .ok)
            let stale = try await head.json(.PATCH, "\(path)/records", UpdateRecordsBody(records: [RecordPatchBody(id: one.id, version: one.version, fields: ["得分": .number(1)])]))
            #expect(stale.status == .conflict)
            #expect(try JSONDecoder().decode(Problem.self, from: Data(stale.body.string.utf8)).errors?.first?.current == "9")

            // Tokens: tables:read reads, cannot write; no table scope, nothing; another hospital's token, not found.
            let admin = Client(app)
            try await admin.login("admin")
            func token(_ scopes: [TokenScope], _ hospital: String?) async throws -> String {
                let r = try await admin.json(.POST, "/api/v1/tokens", CreateTokenBody(name: "质控系统", scopes: scopes, hospitalId: hospital, expiresAt: nil))
                return try #require(try r.decode(TokenDTO.self).secret)
            }
            let reader = Client(app)
            reader.bearer = try await token([.tablesRead], hospital.id)
            #expect(try await reader.get("\(path)/records").status == .ok)
            let write = try await reader.json(.POST, "\(path)/records", CreateRecordsBody(records: [RecordFieldsBody(fields: ["检查项": .text("x")])]))
            #expect(write.status == .forbidden)
            let outsider = Client(app)
            outsider.bearer = try await token([.patientsRead], nil)
            #expect(try await outsider.get("\(path)/records").status == .notFound)
            let east = Client(app)
            east.bearer = try await token([.tablesWrite], try await Demo.hospital("HK02", app).id)
            #expect(try await east.get("\(path)/records").status == .notFound)
            // A table paired with another base in the path is not found.
            let other = try await head.json(.POST, "/api/v1/bases", CreateBaseBody(name: "另一个", hospitalId: hospital.id!, departmentId: nil))
            #expect(try await head.get("/api/v1/bases/\(try other.decode(BaseDTO.self).id)/tables/\(table.id)/records").status == .notFound)
            // The API document lists the table routes.
            let document = try await head.get("/api/v1/openapi.json")
            let paths = (try JSONSerialization.jsonObject(with: Data(document.body.string.utf8)) as? [String: Any])?["paths"] as? [String: Any]
            #expect(paths?.keys.contains { $0.hasSuffix("/bases/{baseId}/tables/{tableId}/records") } == true)
        }
    }
}

/// Importing CSV: columns matched to fields (or new fields of the kind their values suggest),
/// every bad row reported with its line, all-or-nothing and skip-bad-rows both ways.
@Suite struct TableImportTests {
    static let csv = "\u{FEFF}名称,体重,随访日期,状态,备注\r\n张三,65.5,2026-12-01,已随访,\"第一行\n第二行\"\r\n李四,六十,2026-12-02,待随访,\r\n王五,70,2026-02-30,待随访,\"含,逗号\"\r\n赵六,80,2026-12-03,已随访,\"他说\"\"好\"\"\"\r\n"

    @Test(arguments: Backend.all)
    func aFileWithTwoBadRowsIsRefusedWholeOrImportedWithoutThem(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await TablesTests.table(app)
            let id = table.id!
            _ = try await tables.addField(table: id, .init(name: "体重", kind: .number), context: owner, on: app.db)
            // A preview writes nothing and says what each column would fill.
            let preview = try await tables.importCSV(table: id, Self.csv, plan: ImportPlan(preview: true), context: owner, on: app.db)
            #expect(!preview.committed && preview.rows == 4 && preview.imported == 0)
            #expect(preview.columns.map(\.isNew) == [false, false, true, true, true])
            #expect(preview.columns.map(\.kind) == [.text, .number, .date, .singleSelect, .longText])
            #expect(try await TableField.query(on: app.db).filter(\.$tableID == id).count() == 2, "a preview adds no field")
            // All or nothing: two bad rows, nothing imported, each named by its line.
            let whole = try await tables.importCSV(table: id, Self.csv, plan: ImportPlan(mode: .allOrNothing), context: owner, on: app.db)
            #expect(!whole.committed && whole.imported == 0)
            #expect(whole.refused.map(\.line) == [3, 4])
            #expect(whole.refused.map(\.field) == ["体重", "随访日期"])
            #expect(try await tables.records(table: id, RecordQuery(), context: owner, on: app.db).records.isEmpty)
            // Skip bad rows: the two good ones, with their quoted commas, quotes and line breaks.
            let skip = try await tables.importCSV(table: id, Self.csv, plan: ImportPlan(mode: .skipBadRows), context: owner, on: app.db)
            #expect(skip.committed && skip.imported == 2 && skip.refused.count == 2)
            let fields = try await tables.fields(of: id, on: app.db)
            let note = fields.first { $0.name == "备注" }!.id!, state = fields.first { $0.name == "状态" }!
            let records = try await tables.records(table: id, RecordQuery(), context: owner, on: app.db).records
            #expect(records.map { $0.fields[note]! } == [.text("第一行\n第二行"), .text("他说\"好\"")])
            #expect(state.fieldOptions.choices?.map(\.name).sorted() == ["已随访", "待随访"])
            #expect(try await Demo.audit("table.import", app).count == 3)
            // Someone who only edits cannot add fields through an import.
            let lung = try await Demo.department("LUNG", app)
            try await tables.grant(base: table.baseID, granteeKind: "department", granteeID: lung.id!, role: .editor, context: owner, on: app.db)
            let nurse = try await TablesTests.context("wang.fang", app)
            await #expect(throws: RoundsError.self) {
                try await tables.importCSV(table: id, "名称,新列\n甲,1\n", plan: ImportPlan(), context: nurse, on: app.db)
            }
            let mapped = try await tables.importCSV(table: id, "名称,新列\n甲,1\n", plan: ImportPlan(mapping: ["新列": ""]), context: nurse, on: app.db)
            #expect(mapped.imported == 1)
            // Not CSV at all, or a quote never closed: refused with a reason.
            await #expect(throws: RoundsError.self) { try await tables.importCSV(table: id, "", plan: ImportPlan(), context: owner, on: app.db) }
            await #expect(throws: RoundsError.self) { try await tables.importCSV(table: id, "名称\n\"未闭合", plan: ImportPlan(), context: owner, on: app.db) }
        }
    }
}

/// The table pages as a head nurse uses them: a base, a table, fields, a record by form, the
/// grid filtered and grouped, and a refused page audited.
@Suite struct TablesPagesTests {
    @Test func aHeadNurseBuildsATableFromThePages() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let head = Client(app)
            try await head.login("zhang.li")
            #expect(try await head.page("/tables").status == .ok)
            let lung = try await Demo.department("LUNG", app)
            var r = try await head.form("/tables/bases", ["name": "夜查房", "space": lung.id!])
            #expect(r.status == .seeOther || r.status == .found)
            let base = try #require(try await TableBase.query(on: app.db).filter(\.$name == "夜查房").first())
            #expect(base.departmentID == lung.id)
            r = try await head.form("/tables/\(base.id!)/tables", ["name": "检查记录"])
            let table = try #require(try await UserTable.query(on: app.db).filter(\.$name == "检查记录").first())
            let grid = "/tables/\(base.id!)/\(table.id!)"
            _ = try await head.form("\(grid)/fields", ["name": "得分", "kind": "number"])
            _ = try await head.form("\(grid)/fields", ["name": "结论", "kind": "single_select", "choices": "合格，不合格"])
            _ = try await head.form("\(grid)/fields", ["name": "加倍", "kind": "formula", "formula": "{得分} * 2"])
            let fields = try await app.rounds.tables.fields(of: table.id!, on: app.db)
            #expect(fields.map(\.name) == ["名称", "得分", "结论", "加倍"])
            func f(_ name: String) -> String { "f_" + fields.first { $0.name == name }!.id! }
            _ = try await head.form("\(grid)/records", [f("名称"): "3床床头卡", f("得分"): "9", f("结论"): "合格"])
            _ = try await head.form("\(grid)/records", [f("名称"): "5床护栏", f("得分"): "4", f("结论"): "不合格"])
            let bad = try await head.form("\(grid)/records", [f("得分"): "很多"])
            #expect(bad.headers.first(name: .location)?.contains("error=") == true)
            var page = try await head.page(grid)
            #expect(page.body.string.contains("3床床头卡") && page.body.string.contains("18") && page.body.string.contains("合格"))
            page = try await head.page("\(grid)?field=%E7%BB%93%E8%AE%BA&op=is&value=%E4%B8%8D%E5%90%88%E6%A0%BC&group=%E7%BB%93%E8%AE%BA")
            #expect(page.body.string.contains("5床护栏") && !page.body.string.contains("3床床头卡"))
            #expect(page.body.string.contains("id=\"groups\""))
            // Someone without a role gets "not found", and the refusal is audited.
            let other = Client(app)
            try await other.login("zhou.ting")
            #expect(try await other.page(grid).status == .notFound)
            #expect(try await Demo.audit("table.record.list", app).contains { $0.outcome == "denied" })
        }
    }

    @Test func theFormulaReferenceListsEveryFunctionWithAnExample() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let nurse = Client(app)
            try await nurse.login("wang.fang")
            let page = try await nurse.page("/tables/formulas")
            #expect(page.status == .ok)
            let html = page.body.string
            #expect(FormulaFunctions.reference.count >= 100)
            for f in FormulaFunctions.reference {
                #expect(html.contains("id=\"fn-\(f.name)\""), "\(f.name) is missing from the reference")
            }
            #expect(html.contains("NETWORKDAYS") && html.contains("href=\"#clinical\"") && html.contains("临床"))
            #expect(try await Client(app).page("/tables/formulas").status != .ok)
        }
    }
}
