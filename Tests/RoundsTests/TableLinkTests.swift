import FluentKit
import Foundation
import RoundsCore
@testable import RoundsDirectory
import RoundsStore
@testable import RoundsTables
@testable import RoundsWeb
import Testing
import Vapor

/// Links between tables, both ways, with lookups and rollups through them; what a limited
/// reader gets through a link; the fields that cannot go while something reads through them.
@Suite struct TableLinkTests {
    struct Setup {
        var base: TableBase
        var patients: UserTable
        var visits: UserTable
        var owner: RequestContext
        var field: [String: TableField]
        func id(_ name: String) -> String { field[name]!.id! }
    }

    /// 患者 (名称, 年龄, 主管医生) and 随访 (名称, 得分) of one base, 随访 linking one 患者 each,
    /// with the patient's age looked up and the visits' scores rolled up on each patient.
    static func setup(_ app: Application) async throws -> Setup {
        let tables = app.rounds.tables
        let (base, patients, owner) = try await TablesTests.table(app, name: "患者")
        let visits = try await tables.createTable(base: base.id!, name: "随访", context: owner, on: app.db)
        func add(_ table: UserTable, _ name: String, _ kind: FieldKind, _ options: FieldOptions = FieldOptions()) async throws -> TableField {
            try await tables.addField(table: table.id!, .init(name: name, kind: kind, options: options), context: owner, on: app.db)
        }
        var field: [String: TableField] = [:]
        field["年龄"] = try await add(patients, "年龄", .number)
        field["主管医生"] = try await add(patients, "主管医生", .person)
        field["得分"] = try await add(visits, "得分", .number)
        field["患者"] = try await add(visits, "患者", .link, FieldOptions(many: false, linkTable: patients.id))
        field["随访"] = try #require(try await tables.fields(of: patients.id!, on: app.db).first { $0.fieldKind == .link })
        field["患者年龄"] = try await add(visits, "患者年龄", .lookup, FieldOptions(via: "患者", target: "年龄"))
        field["总分"] = try await add(patients, "总分", .rollup, FieldOptions(via: field["随访"]!.id, target: "得分", aggregate: .sum))
        field["次数"] = try await add(patients, "次数", .rollup, FieldOptions(via: field["随访"]!.id, aggregate: .count))
        // 名称: the visits' first field.
        field["名称"] = try #require(try await tables.fields(of: visits.id!, on: app.db).first { $0.isPrimary })
        return Setup(base: base, patients: patients, visits: visits, owner: owner, field: field)
    }

    @Test(arguments: Backend.all)
    func linksGoBothWaysAndLookupsAndRollupsFollowThem(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let s = try await Self.setup(app)
            #expect(s.field["随访"]!.name == "随访" && s.field["随访"]!.fieldOptions.inverse == s.id("患者"))
            let doctor = try await TablesTests.context("li.ming", app)
            let people = try await tables.createRecords(table: s.patients.id!, [
                ["名称": .text("张三"), "年龄": .number(60), "主管医生": .text(doctor.principal.id)],
                ["名称": .text("李四"), "年龄": .number(70)],
            ], context: s.owner, on: app.db)
            let (zhang, li) = (people[0], people[1])
            // By name, by number and by id.
            let visits = try await tables.createRecords(table: s.visits.id!, [
                ["名称": .text("首次"), "得分": .number(5), "患者": .text("张三")],
                ["名称": .text("二次"), "得分": .number(7), "患者": .text("#2")],
                ["名称": .text("三次"), "得分": .number(9), "患者": .list([.text(zhang.id)])],
                ["名称": .text("未关联"), "得分": .number(1)],
            ], context: s.owner, on: app.db)
            #expect(visits[0].fields[s.id("患者")] == .list([.text(zhang.id)]))
            #expect(visits[0].fields[s.id("患者年龄")] == .list([.number(60)]) && visits[1].fields[s.id("患者年龄")] == .list([.number(70)]))
            #expect(visits[3].fields[s.id("患者")] == .list([]))
            // Refused: a name nobody has, two patients in a one-patient link; each named.
            let bad = await #expect(throws: RoundsError.self) {
                try await tables.createRecords(table: s.visits.id!, [["患者": .text("王五")], ["患者": .list([.text(zhang.id), .text(li.id)])]],
                                               context: s.owner, on: app.db)
            }
            #expect(bad?.items?.map(\.path) == ["records[0].患者", "records[1].患者"])
            #expect(bad?.items?.first?.reason.contains("王五") == true)
            // The other side: each patient's visits, their total and their count.
            func patient(_ id: String) async throws -> TableRecord { try await tables.record(table: s.patients.id!, id: id, context: s.owner, on: app.db) }
            var z = try await patient(zhang.id)
            #expect(z.fields[s.id("随访")] == .list([.text(visits[0].id), .text(visits[2].id)]))
            #expect(z.fields[s.id("总分")] == .number(14) && z.fields[s.id("次数")] == .number(2))
            // Moving a visit to the other patient moves it on both sides, and its history says so.
            _ = try await tables.updateRecords(table: s.visits.id!, [RecordPatch(id: visits[2].id, version: 1, fields: ["患者": .text("李四")])],
                                               context: s.owner, on: app.db)
            z = try await patient(zhang.id)
            let l = try await patient(li.id)
            #expect(z.fields[s.id("次数")] == .number(1) && l.fields[s.id("总分")] == .number(16))
            let history = try await tables.history(table: s.visits.id!, record: visits[2].id, context: s.owner, on: app.db)
            #expect(history.last?.fieldName == "患者" && history.last?.old == .list([.text(zhang.id)]) && history.last?.new == .list([.text(li.id)]))
            // Linking from the other side.
            _ = try await tables.updateRecords(table: s.patients.id!, [RecordPatch(id: zhang.id, version: 1, fields: ["随访": .text("首次、未关联")])],
                                               context: s.owner, on: app.db)
            #expect((try await patient(zhang.id)).fields[s.id("总分")] == .number(6))
            // A deleted visit is not linked until it is restored.
            try await tables.deleteRecords(table: s.visits.id!, ids: [visits[0].id], context: s.owner, on: app.db)
            #expect((try await patient(zhang.id)).fields[s.id("次数")] == .number(1))
            try await tables.deleteRecords(table: s.visits.id!, ids: [visits[0].id], restore: true, context: s.owner, on: app.db)
            #expect((try await patient(zhang.id)).fields[s.id("次数")] == .number(2))
            // Filters on a link in SQL: empty, not empty, holding a record.
            func names(_ c: FilterCondition) async throws -> [String] {
                try await tables.records(table: s.visits.id!, RecordQuery(filter: FilterGroup(conditions: [c])), context: s.owner, on: app.db)
                    .records.map { if case .text(let t)? = $0.fields[s.id("名称")] { return t }; return "" }.sorted()
            }
            #expect(try await names(FilterCondition(field: "患者", .isEmpty)) == [])
            #expect(try await names(FilterCondition(field: "患者", .contains, .text(li.id))) == ["三次", "二次"])
            #expect(try await names(FilterCondition(field: "患者", .isNotEmpty)).count == 4)
            // Sorting by what a record links to is refused with the reason.
            await #expect(throws: RoundsError.self) {
                try await tables.records(table: s.visits.id!, RecordQuery(sort: [SortKey(field: "患者年龄")]), context: s.owner, on: app.db)
            }
            // A formula over linked records is refused (it would go stale); a rollup does it.
            await #expect(throws: RoundsError.self) {
                try await tables.addField(table: s.patients.id!, .init(name: "平均", kind: .formula, options: FieldOptions(formula: "{总分} / 2")),
                                          context: s.owner, on: app.db)
            }
            // The grid shows the linked records by name.
            let grid = try await tables.grid(table: s.visits.id!, RecordQuery(), groupBy: nil, context: s.owner, on: app.db)
            #expect(grid.rows.first { $0.record.id == visits[1].id }?.display[s.id("患者")] == "李四")
            // What reads through a link keeps it: the link goes only with them gone, and takes its other side along.
            await #expect(throws: RoundsError.self) { try await tables.deleteField(s.id("患者"), context: s.owner, on: app.db) }
            await #expect(throws: RoundsError.self) { try await tables.deleteField(s.id("年龄"), context: s.owner, on: app.db) }
            await #expect(throws: RoundsError.self) { try await tables.deleteField(s.id("随访"), context: s.owner, on: app.db) }
            try await tables.deleteField(s.id("患者年龄"), context: s.owner, on: app.db)
            try await tables.deleteField(s.id("总分"), context: s.owner, on: app.db)
            try await tables.deleteField(s.id("次数"), context: s.owner, on: app.db)
            try await tables.deleteField(s.id("患者"), context: s.owner, on: app.db)
            #expect(try await tables.fields(of: s.patients.id!, on: app.db).allSatisfy { $0.fieldKind != .link })
        }
    }

    @Test(arguments: Backend.all)
    func aLimitedReaderGetsOnlyWhatTheLinkedTableShowsThem(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let s = try await Self.setup(app)
            let doctor = try await TablesTests.context("li.ming", app)
            let people = try await tables.createRecords(table: s.patients.id!, [
                ["名称": .text("张三"), "年龄": .number(60), "主管医生": .text(doctor.principal.id)],
                ["名称": .text("李四"), "年龄": .number(70)],
            ], context: s.owner, on: app.db)
            _ = try await tables.createRecords(table: s.visits.id!, [
                ["名称": .text("张三随访"), "得分": .number(5), "患者": .text("张三")],
                ["名称": .text("李四随访"), "得分": .number(7), "患者": .text("李四")],
            ], context: s.owner, on: app.db)
            let lung = try await Demo.department("LUNG", app)
            try await tables.grant(base: s.base.id!, granteeKind: "department", granteeID: lung.id!, role: .editor, context: s.owner, on: app.db)
            // Editors see only their own patients, and not their age.
            try await tables.setRules(table: s.patients.id!, TableRules(fields: ["年龄": ["editor": .hidden]],
                                                                      rows: ["editor": FilterGroup(conditions: [FilterCondition(field: "主管医生", .isMe)])]),
                                      context: s.owner, on: app.db)
            let visits = try await tables.records(table: s.visits.id!, RecordQuery(sort: [SortKey(field: "名称")]), context: doctor, on: app.db).records
            // Every visit (the visits table has no rule), but only his patient through the link, and no age looked up.
            #expect(visits.count == 2)
            let zhang = visits.first { $0.fields[s.id("名称")] == .text("张三随访") }!, li = visits.first { $0.fields[s.id("名称")] == .text("李四随访") }!
            #expect(zhang.fields[s.id("患者")] == .list([.text(people[0].id)]) && li.fields[s.id("患者")] == .list([]))
            #expect(zhang.fields[s.id("患者年龄")] == nil)
            // He cannot link a patient he may not see.
            let refused = await #expect(throws: RoundsError.self) {
                try await tables.updateRecords(table: s.visits.id!, [RecordPatch(id: zhang.id, version: zhang.version, fields: ["患者": .text("李四")])],
                                               context: doctor, on: app.db)
            }
            #expect(refused?.items?.first?.reason.contains("no record") == true)
            // The owner still sees it all.
            let all = try await tables.records(table: s.visits.id!, RecordQuery(), context: s.owner, on: app.db).records
            #expect(all.allSatisfy { $0.fields[s.id("患者年龄")] != nil && $0.fields[s.id("患者")] != .list([]) })
        }
    }

    @Test func aLinkNeedsATableOfTheSameBase() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await TablesTests.table(app)
            let (_, elsewhere, _) = try await TablesTests.table(app, name: "别处")
            await #expect(throws: RoundsError.self) {
                try await tables.addField(table: table.id!, .init(name: "关联", kind: .link, options: FieldOptions(linkTable: elsewhere.id)), context: owner, on: app.db)
            }
            await #expect(throws: RoundsError.self) {
                try await tables.addField(table: table.id!, .init(name: "查找", kind: .lookup, options: FieldOptions(via: "名称", target: "名称")), context: owner, on: app.db)
            }
            // A table may link to itself (a record's related records), and the link back is its own field.
            let related = try await tables.addField(table: table.id!, .init(name: "相关", kind: .link, options: FieldOptions(linkTable: table.id)), context: owner, on: app.db)
            let fields = try await tables.fields(of: table.id!, on: app.db)
            #expect(fields.map(\.name).contains("相关（反向）") && related.fieldOptions.inverse != nil)
            let made = try await tables.createRecords(table: table.id!, [["名称": .text("甲")]], context: owner, on: app.db)
                + tables.createRecords(table: table.id!, [["名称": .text("乙"), "相关": .text("甲")]], context: owner, on: app.db)
            let a = try await tables.record(table: table.id!, id: made[0].id, context: owner, on: app.db)
            #expect(a.fields[fields.first { $0.name == "相关（反向）" }!.id!] == .list([.text(made[1].id)]))
        }
    }

    @Test func aLinkAndARollupAreAddedFromTheGridPage() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let tables = app.rounds.tables
            let (base, patients, owner) = try await TablesTests.table(app, name: "患者")
            let visits = try await tables.createTable(base: base.id!, name: "随访", context: owner, on: app.db)
            let head = Client(app)
            try await head.login("zhang.li")
            let grid = "/tables/\(base.id!)/\(visits.id!)"
            #expect(try await head.page(grid).body.string.contains("name=\"link_table\""))
            _ = try await head.form("\(grid)/fields", ["name": "患者", "kind": "link", "link_table": patients.id!])
            let link = try #require(try await tables.fields(of: visits.id!, on: app.db).first { $0.fieldKind == .link })
            _ = try await head.form("/tables/\(base.id!)/\(patients.id!)/fields", ["name": "随访次数", "kind": "rollup", "aggregate": "count",
                                                                                  "via": link.fieldOptions.inverse!])
            #expect(try await tables.fields(of: patients.id!, on: app.db).contains { $0.name == "随访次数" && $0.fieldKind == .rollup })
            _ = try await tables.createRecords(table: patients.id!, [["名称": .text("张三")]], context: owner, on: app.db)
            _ = try await tables.createRecords(table: visits.id!, [["名称": .text("首次随访"), "患者": .text("张三")]], context: owner, on: app.db)
            let page = try await head.page(grid)
            #expect(page.body.string.contains("张三") && page.body.string.contains("data-kind=\"link\""))
            let back = try await head.page("/tables/\(base.id!)/\(patients.id!)")
            #expect(back.body.string.contains("首次随访") && back.body.string.contains("随访次数"))
        }
    }
}
