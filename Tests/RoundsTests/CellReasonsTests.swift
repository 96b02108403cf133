import Foundation
import RoundsCore
@testable import RoundsTables
@testable import RoundsWeb
import Testing
import Vapor

/// People read why a cell was refused in their language: every reason the engine gives for a
/// bad value, read in Chinese, is Chinese (the value they typed kept as typed); in English it is
/// unchanged.
@Suite struct CellReasonsTests {
    @Test func everyRefusalOfABadValueReadsInChinese() async throws {
        try await TestApp.with(.sqlite) { app, _ in
            let tables = app.rounds.tables
            let (_, table, owner) = try await TablesTests.table(app)
            let kinds: [(String, FieldKind, FieldOptions)] = [
                ("体重", .number, FieldOptions()), ("日期", .date, FieldOptions()), ("时间", .dateTime, FieldOptions()),
                ("电话", .phone, FieldOptions()), ("邮箱", .email, FieldOptions()), ("网址", .url, FieldOptions()),
                ("已核对", .checkbox, FieldOptions()), ("星级", .rating, FieldOptions()), ("进度", .progress, FieldOptions()),
                ("时长", .duration, FieldOptions()), ("等级", .singleSelect, { var o = FieldOptions(); o.choices = [SelectOption(id: "", name: "高")]; return o }()),
                ("医生", .person, FieldOptions()), ("科室", .department, FieldOptions()), ("患者", .patient, FieldOptions()),
                ("编号", .autoNumber, FieldOptions()),
            ]
            for (name, kind, options) in kinds {
                _ = try await tables.addField(table: table.id!, .init(name: name, kind: kind, options: options), context: owner, on: app.db)
            }
            let bad: [String: CellValue] = [
                "体重": .text("六十"), "日期": .text("2026-13-45"), "时间": .text("昨天"), "电话": .text("无"), "邮箱": .text("a@"),
                "网址": .text("ftp://x"), "已核对": .text("也许"), "星级": .number(9), "进度": .number(5), "时长": .number(-1),
                "等级": .text("极高"), "医生": .text("nobody"), "科室": .text("nowhere"), "患者": .text("MRN-NONE"), "编号": .number(3),
                "名称": .text("第一行\n第二行"), "没有": .text("x"),
            ]
            let error = await #expect(throws: RoundsError.self) {
                try await tables.createRecords(table: table.id!, [bad], context: owner, on: app.db)
            }
            let items = try #require(error?.items)
            #expect(items.count == bad.count)
            for item in items {
                let zh = CellReasons.localized(item.reason, .zhCN)
                // Outside the quoted value, no English word is left.
                let unquoted = zh.replacingOccurrences(of: "“[^”]*”", with: "", options: .regularExpression)
                #expect(unquoted.range(of: "[A-Za-z]{3,}", options: .regularExpression) == nil, "\(item.path): \(zh)")
                #expect(CellReasons.localized(item.reason, .en) == item.reason)
            }
            let number = try #require(items.first { $0.path.hasSuffix("体重") })
            #expect(CellReasons.localized(number.reason, .zhCN) == "“六十”不是数字")
        }
    }
}
