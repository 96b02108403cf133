import FluentKit
import Foundation
import RoundsCore
@testable import RoundsTables
@testable import RoundsWeb
import SQLKit
import Testing
import Vapor

/// A view's sort and filter fields get indexes: the database then reads the first page of a
/// sorted, filtered view from the index instead of sorting every record; the answers do not
/// change; a field's indexes go with it; only owners make them.
@Suite struct TableIndexTests {
    @Test(arguments: Backend.all)
    func aSortedFilteredViewIsReadFromItsIndex(_ backend: Backend) async throws {
        try await TestApp.with(backend) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await TablesTests.table(app)
            let t = table.id!
            var select = FieldOptions()
            select.choices = ["待随访", "已随访", "失访"].map { SelectOption(id: "", name: $0) }
            for (name, kind, options) in [("床号", FieldKind.number, FieldOptions()), ("随访日期", .date, FieldOptions()), ("状态", .singleSelect, select)] {
                _ = try await tables.addField(table: t, .init(name: name, kind: kind, options: options), context: owner, on: app.db)
            }
            // Seeded: the planner's choice depends on the statistics of the data, so the data is the same every run.
            var generator = SplitMix64(seed: 20261204)
            let rows: [[String: CellValue]] = (0..<300).map { i in
                var r: [String: CellValue] = ["名称": .text("患者\(i)"), "状态": .text(["待随访", "已随访", "失访"][i % 3])]
                if i % 7 != 0 { r["床号"] = .number(Double(Int.random(in: 1...40, using: &generator))) }
                if i % 5 != 0 { r["随访日期"] = .text("2026-12-\(String(format: "%02d", Int.random(in: 1...28, using: &generator)))") }
                return r
            }
            _ = try await tables.createRecords(table: t, rows, context: owner, on: app.db)
            let sort = [SortKey(field: "随访日期"), SortKey(field: "床号", descending: true)]
            let query = RecordQuery(filter: FilterGroup(conditions: [FilterCondition(field: "状态", .is, .text("待随访"))]), sort: sort, limit: 50)
            let before = try await tables.records(table: t, query, context: owner, on: app.db)

            let made = try await tables.createIndexes(table: t, sort: sort, filterFields: ["状态"], context: owner, on: app.db)
            #expect(made.count == 2)
            // Asking again changes nothing.
            #expect(try await tables.createIndexes(table: t, sort: sort, filterFields: ["状态"], context: owner, on: app.db) == made)
            let after = try await tables.records(table: t, query, context: owner, on: app.db)
            #expect(after.records.map(\.id) == before.records.map(\.id))
            var second = query, secondBefore = query
            second.cursor = after.next; secondBefore.cursor = before.next
            #expect(try await tables.records(table: t, second, context: owner, on: app.db).records.map(\.id)
                    == tables.records(table: t, secondBefore, context: owner, on: app.db).records.map(\.id))

            // The plan of the view's first page walks the sort's index.
            let ctx = try await tables.context(.owner, table: t, action: "test", request: owner, on: app.db)
            let sql = app.db as! any SQLDatabase
            let builder = tables.recordSQL(ctx, sql)
            let order = builder.orderBy(try builder.keys(sort))
            let sortIndex = try #require(made.first { $0.definition.contains("CASE") })
            let select1 = sqlText("SELECT id FROM \(ident: table.sqlName) WHERE deleted_at IS NULL ORDER BY \(order) LIMIT 51")
            let plan: String
            if TableDialect(sql) == .postgres {
                plan = try await app.db.transaction { tx in
                    let s = tx as! any SQLDatabase
                    try await s.raw("SET LOCAL enable_seqscan = off").run()
                    try await s.raw("SET LOCAL enable_sort = off").run()
                    return try await s.raw("EXPLAIN " + select1).all().map { try $0.decode(column: "QUERY PLAN", as: String.self) }.joined(separator: "\n")
                }
            } else {
                plan = try await sql.raw("EXPLAIN QUERY PLAN " + select1).all().map { try $0.decode(column: "detail", as: String.self) }.joined(separator: "\n")
                #expect(!plan.contains("TEMP B-TREE"), "\(plan)")
            }
            #expect(plan.contains(sortIndex.name), "\(plan)")

            // Only owners index; a link is not a sort.
            let nurse = try await TablesTests.context("wang.fang", app)
            await #expect(throws: RoundsError.self) {
                try await tables.createIndexes(table: t, sort: sort, filterFields: [], context: nurse, on: app.db)
            }
            await #expect(throws: RoundsError.self) {
                try await tables.createIndexes(table: t, sort: [], filterFields: ["没有这个字段"], context: owner, on: app.db)
            }
            // Deleting a field takes its indexes with it (SQLite would refuse to drop an indexed column).
            let bed = try #require(try await tables.fields(of: t, on: app.db).first { $0.name == "床号" })
            try await tables.deleteField(bed.id!, context: owner, on: app.db)
            #expect(try await tables.indexes(table: t, context: owner, on: app.db).map(\.name) == made.filter { $0.name != sortIndex.name }.map(\.name))
            try await tables.dropIndex(table: t, name: made.first { $0.name != sortIndex.name }!.name, context: owner, on: app.db)
            #expect(try await tables.indexes(table: t, context: owner, on: app.db).isEmpty)
        }
    }
}

/// A small seeded generator (SplitMix64), so a test's "random" data is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
