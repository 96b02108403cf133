import Foundation
@testable import RoundsTables
import Testing

/// The formula language: every function with expected values and errors, the operators, the
/// type checks that refuse a formula when it is saved, and the reference page's completeness.
@Suite struct FormulaTests {
    static let zone = TimeZone(identifier: "Asia/Shanghai")!

    static func day(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.date(from: DateComponents(year: y, month: m, day: d, hour: h, minute: mi))!
    }

    /// Friday 4 December 2026, 10:00 in Shanghai (02:00 UTC); the National Day week of 2026 as the
    /// holiday calendar, with Saturday 10 October a make-up working day.
    static let env = FormulaEnvironment(
        now: day(2026, 12, 4, 10), timeZone: zone,
        workCalendar: WorkCalendar(holidays: Set((1...7).map { 20261000 + $0 }), workingWeekendDays: [20261010]))

    static let fieldTypes: [String: FormulaType] = [
        "姓名": .text, "出生日期": .date, "体重": .number, "身高": .number, "肌酐": .number, "性别": .text,
        "列表": .list(.number), "空": .any, "到期": .date, "入院": .dateTime,
    ]
    static let record: [String: FormulaValue] = [
        "姓名": .text("王芳"), "出生日期": .date(day(1980, 5, 20)), "体重": .number(70), "身高": .number(175),
        "肌酐": .number(88.4), "性别": .text("男"), "列表": .list([.number(3), .number(1), .number(2), .blank]),
        "空": .blank, "到期": .date(day(2026, 12, 31)), "入院": .dateTime(day(2026, 12, 1, 8, 30)),
    ]

    static func run(_ source: String) throws -> FormulaValue {
        try Formula(source, fields: fieldTypes).evaluate(record, in: env)
    }

    enum Expect {
        case value(FormulaValue)
        case number(Double)
        case error(FormulaError.Code)
    }

    /// Formula → what it must give. Every function of the library appears at least once
    /// (`everyFunctionIsTested` checks).
    static let cases: [(String, Expect)] = [
        // Text
        (#"CONCATENATE({姓名}, "（", 123, "）")"#, .value(.text("王芳（123）"))),
        (#"LEFT("320102198005201234", 6)"#, .value(.text("320102"))),
        (#"LEFT("王芳")"#, .value(.text("王"))),
        (#"LEFT("abc", -1)"#, .error(.value)),
        (#"RIGHT("ZY0012345", 4)"#, .value(.text("2345"))),
        (#"MID("320102198005201234", 7, 8)"#, .value(.text("19800520"))),
        (#"MID("abc", 0, 1)"#, .error(.value)),
        (#"LEN("王芳ab")"#, .number(4)),
        (#"LOWER("ICU")"#, .value(.text("icu"))),
        (#"UPPER("icu")"#, .value(.text("ICU"))),
        ("TRIM(\"  王  芳\u{3000}\")", .value(.text("王 芳"))),
        (#"SUBSTITUTE("010-1234-5678", "-", "")"#, .value(.text("01012345678"))),
        (#"SUBSTITUTE("a-b-c", "-", "+", 2)"#, .value(.text("a-b+c"))),
        (#"REPLACE("13812345678", 4, 4, "****")"#, .value(.text("138****5678"))),
        (#"FIND("癌", "肺腺癌")"#, .number(3)),
        (#"FIND("x", "abc")"#, .number(0)),
        (#"SEARCH("icu", "Surgical ICU")"#, .number(10)),
        (#"REPT("★", 3)"#, .value(.text("★★★"))),
        (#"REPT("ab", 100000)"#, .error(.value)),
        (#"VALUE("1,234.5")"#, .number(1234.5)),
        (#"VALUE("12%")"#, .number(0.12)),
        (#"VALUE("abc")"#, .error(.value)),
        ("T(5)", .value(.text(""))),
        (#"T("x")"#, .value(.text("x"))),
        (#"EXACT("A1", "a1")"#, .value(.boolean(false))),
        (#"STARTSWITH("ZY001", "ZY")"#, .value(.boolean(true))),
        (#"ENDSWITH("report.pdf", ".pdf")"#, .value(.boolean(true))),
        (#"CONTAINS("2型糖尿病", "糖尿病")"#, .value(.boolean(true))),
        ("CHAR(65)", .value(.text("A"))),
        ("CHAR(0)", .error(.value)),
        (#"UNICODE("A")"#, .number(65)),
        (#"TEXTJOIN("、", "张三", "", "李四")"#, .value(.text("张三、李四"))),
        (#"SPLIT("青霉素、头孢", "、")"#, .value(.list([.text("青霉素"), .text("头孢")]))),
        (#"ENCODE_URL_COMPONENT("王 芳")"#, .value(.text("%E7%8E%8B%20%E8%8A%B3"))),
        (#"REGEX_MATCH("13812345678", "^1[3-9]\\d{9}$")"#, .value(.boolean(true))),
        (#"REGEX_MATCH("1381234567", "^1[3-9]\\d{9}$")"#, .value(.boolean(false))),
        (#"REGEX_MATCH("a", "(")"#, .error(.value)),
        (#"REGEX_EXTRACT("Ki-67：30%，ER+", "Ki-67[：:]\\s*(\\d+%)")"#, .value(.text("30%"))),
        (#"REGEX_EXTRACT("无", "\\d+")"#, .value(.blank)),
        (#"REGEX_REPLACE("010-1234", "\\D", "")"#, .value(.text("0101234"))),
        (#"PROPER("wang fang")"#, .value(.text("Wang Fang"))),
        ("FIXED(36.55, 1)", .value(.text("36.6"))),
        ("FIXED(2.675)", .value(.text("2.68"))),
        // Numbers
        ("ABS(-3)", .number(3)),
        ("ROUND(2.5)", .number(3)),
        ("ROUND(-2.5)", .number(-3)),
        ("ROUND(1.2345, 2)", .number(1.23)),
        ("ROUND(1234, -2)", .number(1200)),
        ("ROUNDUP(2.1)", .number(3)),
        ("ROUNDUP(-2.1)", .number(-3)),
        ("ROUNDUP(2)", .number(2)),
        ("ROUNDDOWN(2.9)", .number(2)),
        ("CEILING(2.1, 0.5)", .number(2.5)),
        ("FLOOR(2.9, 0.5)", .number(2.5)),
        ("INT(-2.5)", .number(-3)),
        ("TRUNC(-2.56, 1)", .number(-2.5)),
        ("MOD(-3, 2)", .number(1)),
        ("MOD(5, 0)", .error(.divideByZero)),
        ("QUOTIENT(7, 2)", .number(3)),
        ("POWER(2, 10)", .number(1024)),
        ("SQRT(16)", .number(4)),
        ("SQRT(-1)", .error(.number)),
        ("EXP(0)", .number(1)),
        ("LN(1)", .number(0)),
        ("LN(0)", .error(.number)),
        ("LOG(8, 2)", .number(3)),
        ("LOG10(1000)", .number(3)),
        ("SIGN(-5)", .number(-1)),
        ("EVEN(3)", .number(4)),
        ("ODD(2)", .number(3)),
        ("PI()", .number(Double.pi)),
        ("MAX(3, {列表})", .number(3)),
        ("MIN({列表})", .number(1)),
        ("SUM({列表}, 4)", .number(10)),
        ("AVERAGE({列表})", .number(2)),
        ("AVERAGE({空})", .error(.divideByZero)),
        ("MEDIAN(1, 5, 3, 2)", .number(2.5)),
        ("PRODUCT(2, 3, 4)", .number(24)),
        ("STDEV(2, 4, 4, 4, 5, 5, 7, 9)", .number(2.138089935299395)),
        ("STDEV(1)", .error(.divideByZero)),
        ("COUNT({列表})", .number(3)),
        ("COUNTA({列表})", .number(3)),
        (#"COUNTBLANK({空}, "x", "")"#, .number(2)),
        ("COUNTALL({列表})", .number(4)),
        ("POWER(10, 400)", .error(.number)),
        // Logic
        (#"IF({体重} > 60, "重", "轻")"#, .value(.text("重"))),
        ("IF(FALSE, 1)", .value(.blank)),
        ("IF(TRUE, 1, 1 / 0)", .number(1)),
        ("IF(FALSE, 1, 1 / 0)", .error(.divideByZero)),
        ("IF(1 / 0, 1, 2)", .error(.divideByZero)),
        (#"IFS(5 >= 7, "重度", 5 >= 4, "中度", TRUE, "无")"#, .value(.text("中度"))),
        ("IFS(FALSE, 1)", .error(.value)),
        (#"SWITCH("已通过", "待审核", 1, "已通过", 2, 0)"#, .number(2)),
        (#"SWITCH("x", "a", 1, 0)"#, .number(0)),
        (#"SWITCH("x", "a", 1)"#, .error(.value)),
        (#"AND(TRUE, 1, "x")"#, .value(.boolean(true))),
        ("OR(FALSE, 0)", .value(.boolean(false))),
        ("XOR(TRUE, TRUE, TRUE)", .value(.boolean(true))),
        ("NOT(0)", .value(.boolean(true))),
        ("TRUE()", .value(.boolean(true))),
        ("FALSE()", .value(.boolean(false))),
        ("BLANK()", .value(.blank)),
        ("ISBLANK({空})", .value(.boolean(true))),
        (#"ISBLANK(" ")"#, .value(.boolean(false))),
        ("ISERROR(1 / 0)", .value(.boolean(true))),
        ("IFERROR(1 / 0, -1)", .number(-1)),
        ("ISNUMBER(3)", .value(.boolean(true))),
        (#"ISTEXT("3")"#, .value(.boolean(true))),
        (#"ERROR("超过极量")"#, .error(.custom)),
        // Dates (hospital time, Asia/Shanghai)
        ("TODAY()", .value(.date(day(2026, 12, 4)))),
        ("NOW()", .value(.dateTime(day(2026, 12, 4, 10)))),
        ("DATE(2026, 13, 1)", .value(.date(day(2027, 1, 1)))),
        ("DATE(2026, 2, 30)", .value(.date(day(2026, 3, 2)))),
        (#"DATEVALUE("2026年12月4日")"#, .value(.date(day(2026, 12, 4)))),
        (#"DATEVALUE("2026/2/30")"#, .error(.value)),
        (#"DATETIME_PARSE("202612041430", "yyyyMMddHHmm")"#, .value(.dateTime(day(2026, 12, 4, 14, 30)))),
        (#"DATETIME_PARSE("yesterday", "yyyyMMdd")"#, .error(.value)),
        (#"DATETIME_FORMAT({入院}, "M月d日 HH:mm")"#, .value(.text("12月1日 08:30"))),
        ("YEAR({出生日期})", .number(1980)),
        ("MONTH({出生日期})", .number(5)),
        ("DAY({出生日期})", .number(20)),
        ("HOUR({入院})", .number(8)),
        ("MINUTE({入院})", .number(30)),
        ("SECOND({入院})", .number(0)),
        ("YEAR({空})", .value(.blank)),
        ("WEEKDAY(TODAY())", .number(6)),
        ("WEEKDAY(TODAY(), 2)", .number(5)),
        ("WEEKDAY(TODAY(), 3)", .number(4)),
        ("WEEKDAY(TODAY(), 9)", .error(.value)),
        ("WEEKNUM(DATE(2026, 1, 1))", .number(1)),
        ("WEEKNUM(TODAY(), 2)", .number(49)),
        ("ISOWEEKNUM(TODAY())", .number(49)),
        ("QUARTER(TODAY())", .number(4)),
        (#"DATEADD(DATE(2026, 1, 31), 1, "月")"#, .value(.date(day(2026, 2, 28)))),
        (#"DATEADD({入院}, 2, "小时")"#, .value(.dateTime(day(2026, 12, 1, 10, 30)))),
        (#"DATEADD(TODAY(), 1, "fortnight")"#, .error(.value)),
        (#"DATEDIF({出生日期}, TODAY(), "Y")"#, .number(46)),
        (#"DATEDIF(TODAY(), {到期}, "D")"#, .number(27)),
        ("DATEDIF({到期}, TODAY())", .number(-27)),
        (#"DATEDIF(DATE(2026, 1, 15), DATE(2026, 3, 14), "M")"#, .number(1)),
        (#"DATEDIF(DATE(2026, 1, 15), DATE(2026, 3, 14), "MD")"#, .number(27)),
        (#"DATEDIF(DATE(2024, 1, 15), DATE(2026, 3, 20), "YM")"#, .number(2)),
        (#"DATEDIF(DATE(2024, 1, 15), DATE(2026, 3, 20), "YD")"#, .number(64)),
        (#"DATEDIF(TODAY(), {空}, "D")"#, .value(.blank)),
        (#"DATETIME_DIFF(DATE(2026, 12, 4), DATE(2026, 12, 1), "天")"#, .number(3)),
        (#"DATETIME_DIFF(NOW(), {入院}, "hours")"#, .number(73)),
        ("DAYS(DATE(2026, 12, 31), DATE(2026, 12, 1))", .number(30)),
        ("EDATE(DATE(2026, 1, 31), 1)", .value(.date(day(2026, 2, 28)))),
        ("EOMONTH(DATE(2026, 2, 10), 0)", .value(.date(day(2026, 2, 28)))),
        ("EOMONTH(DATE(2026, 2, 10), 1)", .value(.date(day(2026, 3, 31)))),
        ("WORKDAY(DATE(2026, 9, 30), 1)", .value(.date(day(2026, 10, 8)))),
        ("WORKDAY(DATE(2026, 10, 8), 2)", .value(.date(day(2026, 10, 10)))),
        ("WORKDAY(TODAY(), 1, LIST(DATE(2026, 12, 7)))", .value(.date(day(2026, 12, 8)))),
        ("WORKDAY(DATE(2026, 10, 8), -1)", .value(.date(day(2026, 9, 30)))),
        ("NETWORKDAYS(DATE(2026, 9, 28), DATE(2026, 10, 11))", .number(6)),
        ("NETWORKDAYS(DATE(2026, 10, 11), DATE(2026, 9, 28))", .number(-6)),
        ("IS_BEFORE({到期}, TODAY())", .value(.boolean(false))),
        ("IS_AFTER({到期}, TODAY())", .value(.boolean(true))),
        ("IS_SAME(NOW(), TODAY())", .value(.boolean(true))),
        (#"IS_SAME(DATE(2026, 1, 5), DATE(2026, 3, 1), "季度")"#, .value(.boolean(true))),
        (#"IS_SAME(DATE(2026, 1, 5), DATE(2026, 4, 1), "季度")"#, .value(.boolean(false))),
        // Lists
        ("LIST(1, 2, 3)", .value(.list([.number(1), .number(2), .number(3)]))),
        (#"ARRAYJOIN(SPLIT("a,b", ","), "|")"#, .value(.text("a|b"))),
        ("ARRAYUNIQUE(LIST(1, 2, 1))", .value(.list([.number(1), .number(2)]))),
        ("ARRAYCOMPACT({列表})", .value(.list([.number(3), .number(1), .number(2)]))),
        ("ARRAYFLATTEN(LIST(1), LIST(2, 3))", .value(.list([.number(1), .number(2), .number(3)]))),
        ("ARRAYSLICE(LIST(1, 2, 3, 4), 2, 3)", .value(.list([.number(2), .number(3)]))),
        ("ARRAYSLICE(LIST(1, 2, 3, 4), -2)", .value(.list([.number(3), .number(4)]))),
        (#"ARRAYSORT(LIST(3, 1, 2), "desc")"#, .value(.list([.number(3), .number(2), .number(1)]))),
        ("ARRAYFIRST(LIST(5, 6))", .number(5)),
        ("ARRAYLAST(LIST(5, 6))", .number(6)),
        (#"ARRAYINCLUDES(LIST("VIP", "普通"), "VIP")"#, .value(.boolean(true))),
        // Clinical
        ("AGE({出生日期})", .number(46)),
        ("AGE(DATE(2000, 12, 5), DATE(2026, 12, 4))", .number(25)),
        ("AGE(DATE(2030, 1, 1))", .error(.value)),
        ("ROUND(BMI({体重}, {身高}), 1)", .number(22.9)),
        ("BMI(70, 1.75)", .error(.value)),
        ("ROUND(BSA({体重}, {身高}), 2)", .number(1.84)),
        ("EGFR({肌酐}, 50, {性别})", .number(91.6914786098333)),
        (#"EGFR(1.0, 50, "M", "mg/dL")"#, .number(91.6914786098333)),
        (#"EGFR(61.88, 50, "女")"#, .number(105.29760114914401)),
        ("EGFR(1.0, 50, {性别})", .error(.value)),
        (#"EGFR({肌酐}, 12, "男")"#, .error(.value)),
        (#"EGFR({肌酐}, 50, "X")"#, .error(.value)),
        (#"CRCL({肌酐}, 50, {体重}, "男")"#, .number(87.5)),
        (#"CRCL({肌酐}, 50, {体重}, "女")"#, .number(74.375)),
        // Operators and syntax
        ("1 + 2 * 3", .number(7)),
        ("2 ^ 3 ^ 2", .number(512)),
        ("-2 ^ 2", .number(-4)),
        ("(1 + 2) * 3", .number(9)),
        (#""a" & 1 & TRUE"#, .value(.text("a1TRUE"))),
        ("TODAY() + 1", .value(.date(day(2026, 12, 5)))),
        ("{到期} - TODAY()", .number(27)),
        ("1 / 0", .error(.divideByZero)),
        ("{空} + 1", .number(1)),
        ("3 > 2 && 1 = 1", .value(.boolean(true))),
        ("2 <> 3", .value(.boolean(true))),
        (#""b" > "a""#, .value(.boolean(true))),
        ("{到期} > TODAY()", .value(.boolean(true))),
        ("IF（{体重}＞60，“重”，“轻”）", .value(.text("重"))),
        ("[体重] * 2", .number(140)),
        (#""他说""好""""#, .value(.text("他说\"好\""))),
        ("1.5e3", .number(1500)),
        (#""他说“好”""#, .value(.text("他说“好”"))),
        ("“重”", .value(.text("重"))),
    ]

    @Test(arguments: FormulaTests.cases.indices)
    func functionGivesItsExpectedValue(_ i: Int) throws {
        let (source, expected) = Self.cases[i]
        let value = try Self.run(source)
        switch expected {
        case .value(let v): #expect(value == v, "\(source) → \(value)")
        case .number(let n):
            guard case .number(let got) = value else { Issue.record("\(source) → \(value), expected \(n)"); return }
            #expect(abs(got - n) <= 1e-9 * max(1, abs(n)), "\(source) → \(got), expected \(n)")
        case .error(let code):
            #expect(value.error?.code == code, "\(source) → \(value), expected #\(code.rawValue)")
            #expect(value.error.map { !$0.reason.isEmpty } ?? false, "an error says why")
        }
    }

    @Test func everyFunctionIsTested() throws {
        var used = Set<String>()
        func walk(_ node: FormulaNode) {
            switch node {
            case .call(let name, let args): used.insert(name); args.forEach(walk)
            case .negate(let inner): walk(inner)
            case .binary(_, let l, let r): walk(l); walk(r)
            default: break
            }
        }
        for (source, _) in Self.cases { walk(try FormulaParser.parse(source)) }
        let all = Set(FormulaFunctions.named.keys)
        #expect(all.count >= 100, "the library has \(all.count) functions")
        #expect(all.subtracting(used).isEmpty, "untested: \(all.subtracting(used).sorted())")
    }

    /// The reference page: every function documented in both languages, with an example that parses.
    @Test func everyFunctionIsDocumentedWithAnExampleThatParses() throws {
        for f in FormulaFunctions.reference {
            #expect(!f.summaryZH.isEmpty && !f.summaryEN.isEmpty, "\(f.name)")
            #expect(f.example.uppercased().contains(f.name), "\(f.name)'s example uses it")
            #expect(throws: Never.self, "\(f.name): \(f.example)") { try FormulaParser.parse(f.example) }
        }
    }

    /// Mistakes are refused when the formula is saved, each with its kind and a reason.
    @Test(arguments: [
        ("{不存在} + 1", FormulaProblem.Kind.unknownField),
        ("FOO(1)", .unknownFunction),
        ("LEFT()", .arguments),
        ("ROUND(1, 2, 3)", .arguments),
        (#""a" + 1"#, .type),
        (#"IF(TRUE, 1, "a")"#, .type),
        (#"DATEADD(1, 2, "天")"#, .type),
        (#"{姓名} * 2"#, .type),
        (#"IFS(TRUE)"#, .arguments),
        (#"IFS(TRUE, 1, FALSE)"#, .type),
        ("SUM(1", .syntax),
        ("1 +", .syntax),
        (#""abc"#, .syntax),
        ("{体重", .syntax),
        ("体重 * 2", .syntax),
        ("1 | 2", .syntax),
        ("{}", .syntax),
        (String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100), .syntax),
        (String(repeating: "1+", count: 6000) + "1", .syntax),
    ])
    func aMistakeIsRefusedWhenSaved(_ source: String, _ kind: FormulaProblem.Kind) {
        do {
            _ = try Formula(source, fields: Self.fieldTypes)
            Issue.record("\(source.prefix(40)) was accepted")
        } catch let problem as FormulaProblem {
            #expect(problem.kind == kind, "\(source.prefix(40)): \(problem)")
            #expect(!problem.message.isEmpty)
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func theResultTypeAndTheFieldsReadAreKnownWhenSaved() throws {
        #expect(try Formula(#"DATEDIF(TODAY(), {到期}, "D")"#, fields: Self.fieldTypes).type == .number)
        #expect(try Formula("IF(TRUE, TODAY(), NOW())", fields: Self.fieldTypes).type == .dateTime)
        #expect(try Formula(#"DATEADD({到期}, 1, "月")"#, fields: Self.fieldTypes).type == .date)
        #expect(try Formula(#"DATEADD({入院}, 1, "天")"#, fields: Self.fieldTypes).type == .dateTime)
        #expect(try Formula(#"SPLIT({姓名}, "")"#, fields: Self.fieldTypes).type == .list(.text))
        #expect(try Formula(#"{姓名} & {体重}"#, fields: Self.fieldTypes).type == .text)
        #expect(try Formula("{体重} / ({身高} / 100) ^ 2 + {体重}", fields: Self.fieldTypes).dependencies == ["体重", "身高"])
        let unknown = #expect(throws: FormulaProblem.self) { try Formula("{体重KG}", fields: Self.fieldTypes) }
        #expect(unknown?.message.contains("{体重}") == true, "suggests the near name")
    }

    /// A field's blank reads as nothing where a date is needed: "days to expiry" of a record with
    /// no expiry date is blank, not a number that looks like a deadline.
    @Test func aBlankDateGivesABlankNotANumber() throws {
        #expect(try Self.run("DAYS({空}, TODAY())") == .blank)
        #expect(try Self.run(#"DATEADD({空}, 3, "天")"#) == .blank)
        #expect(try Self.run("{空} - TODAY()") == .blank)
    }
}
