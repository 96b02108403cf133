import Foundation

/// Date arithmetic in the hospital's time zone: a "day" is a calendar day there, so a date plus
/// one is the next day on the ward's calendar, whatever the server's zone.
enum DateMath {
    enum Unit: Sendable {
        case years, quarters, months, weeks, days, hours, minutes, seconds

        /// English and Chinese unit names, in the forms people write them.
        static func named(_ raw: String) throws -> Unit {
            switch raw.trimmingCharacters(in: .whitespaces).lowercased() {
            case "y", "year", "years", "年": return .years
            case "q", "quarter", "quarters", "季度": return .quarters
            case "m", "month", "months", "月", "个月": return .months
            case "w", "week", "weeks", "周", "星期": return .weeks
            case "d", "day", "days", "天", "日": return .days
            case "h", "hour", "hours", "小时", "时": return .hours
            case "mi", "min", "minute", "minutes", "分钟", "分": return .minutes
            case "s", "second", "seconds", "秒": return .seconds
            default: throw FormulaError(.value, "“\(raw)” is not a unit of time (years, months, weeks, days, hours, minutes, seconds — or 年 月 周 天 小时 分钟 秒)")
            }
        }

        var component: Calendar.Component {
            switch self {
            case .years: return .year
            case .quarters, .months: return .month
            case .weeks, .days: return .day
            case .hours: return .hour
            case .minutes: return .minute
            case .seconds: return .second
            }
        }

        var multiplier: Int {
            switch self {
            case .quarters: return 3
            case .weeks: return 7
            default: return 1
            }
        }

        var isCalendarDay: Bool { self != .hours && self != .minutes && self != .seconds }
    }

    static func addDays(_ date: Date, _ days: Double, to original: FormulaValue, _ env: FormulaEnvironment) throws -> FormulaValue {
        if case .date = original, days == days.rounded() {
            return .date(try add(date, Int(days), .days, env))
        }
        return .dateTime(date.addingTimeInterval(days * 86_400))
    }

    static func add(_ date: Date, _ n: Int, _ unit: Unit, _ env: FormulaEnvironment) throws -> Date {
        guard let result = env.calendar.date(byAdding: unit.component, value: n * unit.multiplier, to: date) else {
            throw FormulaError(.number, "the date is out of range")
        }
        return result
    }

    /// Whole units from `start` to `end` (negative when `end` is earlier).
    static func difference(_ start: Date, _ end: Date, _ unit: Unit, _ env: FormulaEnvironment) -> Double {
        switch unit {
        case .hours, .minutes, .seconds:
            let seconds = end.timeIntervalSince(start)
            let per: Double = unit == .hours ? 3600 : (unit == .minutes ? 60 : 1)
            return (seconds / per).rounded(.towardZero)
        case .days, .weeks:
            let days = env.calendar.dateComponents([.day], from: env.day(start), to: env.day(end)).day ?? 0
            return unit == .weeks ? Double(days / 7) : Double(days)
        case .months, .quarters:
            let months = env.calendar.dateComponents([.month], from: start, to: end).month ?? 0
            return unit == .quarters ? Double(months / 3) : Double(months)
        case .years:
            return Double(env.calendar.dateComponents([.year], from: start, to: end).year ?? 0)
        }
    }

    nonisolated(unsafe) static let localDate = try! NSRegularExpression(
        pattern: #"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$"#)

    /// A date written as text: 2026-12-04, 2026/12/4, 2026年12月4日, optionally with a time
    /// (14:30 or 14:30:05), or ISO 8601 with a zone.
    static func parse(_ text: String, _ env: FormulaEnvironment) -> Date? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.isEmpty { return nil }
        // The local forms first (what people type, and how cells are stored); ISO 8601 with a zone after.
        guard let m = localDate.firstMatch(in: t, range: NSRange(t.startIndex..., in: t)) else {
            let iso = ISO8601DateFormatter()
            if let d = iso.date(from: t) { return d }
            iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return iso.date(from: t)
        }
        func group(_ i: Int) -> Int? { Range(m.range(at: i), in: t).flatMap { Int(t[$0]) } }
        var c = DateComponents()
        c.year = group(1); c.month = group(2); c.day = group(3)
        c.hour = group(4) ?? 0; c.minute = group(5) ?? 0; c.second = group(6) ?? 0
        guard let month = c.month, (1...12).contains(month), let day = c.day, (1...31).contains(day),
              (0...23).contains(c.hour!), (0...59).contains(c.minute!), (0...59).contains(c.second!),
              let date = env.calendar.date(from: c),
              env.calendar.component(.day, from: date) == day else { return nil }
        return date
    }

    static func hasTime(_ text: String) -> Bool { text.contains(":") }

    /// The days of `holidays` (a list of dates) as yyyymmdd keys.
    static func holidayKeys(_ value: FormulaValue?, _ env: FormulaEnvironment) throws -> Set<Int> {
        guard let value else { return [] }
        var keys = Set<Int>()
        for item in Coerce.list(value) {
            guard let d = try Coerce.date(item, env) else { continue }
            keys.insert(WorkCalendar.key(d, env.calendar))
        }
        return keys
    }

    static func isWorkingDay(_ day: Date, extra: Set<Int>, _ env: FormulaEnvironment) -> Bool {
        let key = WorkCalendar.key(day, env.calendar)
        if extra.contains(key) { return false }
        return env.workCalendar.isWorkingDay(key, weekday: env.calendar.component(.weekday, from: day))
    }
}

extension FormulaFunctions {
    /// DATEADD keeps a date a date for whole days or more, and makes it a date and time for hours.
    static func dateOrDateTime(_ types: [FormulaType]) -> FormulaType { types.first == .date ? .date : .dateTime }

    static func dateResult(_ date: Date?, like original: FormulaValue) -> FormulaValue {
        guard let date else { return .blank }
        if case .dateTime = original { return .dateTime(date) }
        return .date(date)
    }

    static func part(_ name: String, _ component: Calendar.Component, zh: String, en: String, example: String) -> FormulaFunction {
        def(name, .date, [.date], returns: .number, example: example, zh: zh, en: en) { a in
            guard let d = try a.date(0) else { return .blank }
            return .number(Double(a.env.calendar.component(component, from: d)))
        }
    }

    static let dateFunctions: [FormulaFunction] = [
        def("TODAY", .date, [], returns: .date, example: "TODAY()", zh: "今天（医院所在时区）", en: "Today (in the hospital's time zone)") { a in
            .date(a.env.day(a.env.now))
        },
        def("NOW", .date, [], returns: .dateTime, example: "NOW()", zh: "此刻", en: "Now") { a in .dateTime(a.env.now) },
        def("DATE", .date, [.number, .number, .number], returns: .date, example: "DATE(2026, 12, 31)",
            zh: "由年、月、日组成日期（月或日超出时顺延）", en: "A date from year, month and day (overflowing months or days carry over)") { a in
            let y = try a.int(0), m = try a.int(1), d = try a.int(2)
            guard (1...9999).contains(y) else { throw FormulaError(.value, "DATE: the year must be 1 to 9999") }
            guard let date = a.env.calendar.date(from: DateComponents(year: y, month: 1, day: 1))
                .flatMap({ a.env.calendar.date(byAdding: .month, value: m - 1, to: $0) })
                .flatMap({ a.env.calendar.date(byAdding: .day, value: d - 1, to: $0) }) else {
                throw FormulaError(.value, "DATE: not a date")
            }
            return .date(date)
        },
        def("DATEVALUE", .date, [.text], returns: .date, example: "DATEVALUE(\"2026年12月4日\")",
            zh: "把文字转成日期（2026-12-04、2026/12/4、2026年12月4日）", en: "The date a text says (2026-12-04, 2026/12/4, 2026年12月4日)") { a in
            if a[0].isBlank { return .blank }
            guard let d = try a.date(0) else { return .blank }
            return .date(a.env.day(d))
        },
        def("DATETIME_PARSE", .date, [.text, .text], optional: 1, returns: .dateTime,
            example: "DATETIME_PARSE({采样时间}, \"yyyyMMddHHmm\")",
            zh: "把文字按格式转成日期时间（格式如 yyyy-MM-dd HH:mm；省略时自动识别）",
            en: "A date and time from text, in a format such as yyyy-MM-dd HH:mm (recognised when left out)") { a in
            if a[0].isBlank { return .blank }
            guard a.has(1) else {
                guard let d = DateMath.parse(a.text(0), a.env) else { throw FormulaError(.value, "“\(a.text(0))” is not a date") }
                return .dateTime(d)
            }
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.calendar = a.env.calendar
            f.timeZone = a.env.timeZone
            f.dateFormat = a.text(1)
            guard let d = f.date(from: a.text(0)) else { throw FormulaError(.value, "“\(a.text(0))” does not match the format \(a.text(1))") }
            return .dateTime(d)
        },
        def("DATETIME_FORMAT", .date, [.date, .text], optional: 1, returns: .text,
            example: "DATETIME_FORMAT({入院时间}, \"M月d日 HH:mm\")",
            zh: "按格式把日期写成文字（默认 yyyy-MM-dd HH:mm，医院时区）", en: "A date written in a format (yyyy-MM-dd HH:mm by default, hospital time)") { a in
            guard let d = try a.date(0) else { return .blank }
            let pattern = a.text(1, or: "yyyy-MM-dd HH:mm")
            guard pattern.count <= 100 else { throw FormulaError(.value, "DATETIME_FORMAT: the format is too long") }
            return .text(FormulaText.format(d, pattern, a.env.timeZone))
        },
        part("YEAR", .year, zh: "年份", en: "The year", example: "YEAR({出生日期})"),
        part("MONTH", .month, zh: "月份（1–12）", en: "The month (1–12)", example: "MONTH({入院日期})"),
        part("DAY", .day, zh: "几号（1–31）", en: "The day of the month (1–31)", example: "DAY({入院日期})"),
        part("HOUR", .hour, zh: "小时（0–23）", en: "The hour (0–23)", example: "HOUR({给药时间})"),
        part("MINUTE", .minute, zh: "分钟（0–59）", en: "The minute (0–59)", example: "MINUTE({给药时间})"),
        part("SECOND", .second, zh: "秒（0–59）", en: "The second (0–59)", example: "SECOND({采样时间})"),
        def("WEEKDAY", .date, [.date, .number], optional: 1, returns: .number, example: "WEEKDAY({手术日期}, 2)",
            zh: "星期几：类型 1（默认）周日为 1…周六为 7；类型 2 周一为 1…周日为 7；类型 3 周一为 0…周日为 6",
            en: "The weekday: type 1 (default) Sunday 1 … Saturday 7; type 2 Monday 1 … Sunday 7; type 3 Monday 0 … Sunday 6") { a in
            guard let d = try a.date(0) else { return .blank }
            let sunday1 = a.env.calendar.component(.weekday, from: d)  // 1 = Sunday
            switch try a.int(1, or: 1) {
            case 1: return .number(Double(sunday1))
            case 2: return .number(Double((sunday1 + 5) % 7 + 1))
            case 3: return .number(Double((sunday1 + 5) % 7))
            default: throw FormulaError(.value, "WEEKDAY: the type must be 1, 2 or 3")
            }
        },
        def("WEEKNUM", .date, [.date, .number], optional: 1, returns: .number, example: "WEEKNUM({值班日期}, 2)",
            zh: "一年中的第几周（1 月 1 日所在周为第 1 周；类型 1 周日开始，类型 2 周一开始）",
            en: "The week of the year (the week of 1 January is week 1; type 1 weeks start on Sunday, type 2 on Monday)") { a in
            guard let d = try a.date(0) else { return .blank }
            let type = try a.int(1, or: 1)
            guard type == 1 || type == 2 else { throw FormulaError(.value, "WEEKNUM: the type must be 1 or 2") }
            let cal = a.env.calendar
            let jan1 = cal.date(from: DateComponents(year: cal.component(.year, from: d), month: 1, day: 1))!
            let offset = type == 1 ? cal.component(.weekday, from: jan1) - 1 : (cal.component(.weekday, from: jan1) + 5) % 7
            let dayOfYear = cal.dateComponents([.day], from: jan1, to: a.env.day(d)).day!
            return .number(Double((dayOfYear + offset) / 7 + 1))
        },
        def("ISOWEEKNUM", .date, [.date], returns: .number, example: "ISOWEEKNUM({值班日期})",
            zh: "ISO 周数（周一开始，含 1 月 4 日的周为第 1 周）", en: "The ISO week number (weeks start on Monday; week 1 holds 4 January)") { a in
            guard let d = try a.date(0) else { return .blank }
            var iso = Calendar(identifier: .iso8601)
            iso.timeZone = a.env.timeZone
            return .number(Double(iso.component(.weekOfYear, from: d)))
        },
        def("QUARTER", .date, [.date], returns: .number, example: "QUARTER({投诉日期})", zh: "季度（1–4）", en: "The quarter (1–4)") { a in
            guard let d = try a.date(0) else { return .blank }
            return .number(Double((a.env.calendar.component(.month, from: d) - 1) / 3 + 1))
        },
        def("DATEADD", .date, [.date, .number, .text], returnsBy: { types in dateOrDateTime(types) },
            example: "DATEADD({发证日期}, 5, \"年\")",
            zh: "日期加上若干单位（年、季度、月、周、天、小时、分钟、秒；月末顺延到月末）",
            en: "A date plus so many units (years, quarters, months, weeks, days, hours, minutes, seconds; month ends stay month ends)") { a in
            guard let d = try a.date(0) else { return .blank }
            let unit = try DateMath.Unit.named(a.text(2))
            let result = try DateMath.add(d, try a.int(1), unit, a.env)
            if case .date = a[0], unit.isCalendarDay { return .date(result) }
            return .dateTime(result)
        },
        def("DATEDIF", .date, [.date, .date, .text], optional: 1, returns: .number,
            example: "DATEDIF(TODAY(), {执业证书到期}, \"D\")",
            zh: "两个日期相差多少（\"Y\" 整年、\"M\" 整月、\"D\" 天，默认天；\"MD\"、\"YM\"、\"YD\" 同 Excel）；结束早于开始时为负数，过期显示为负天数而不是错误",
            en: "How far apart two dates are (\"Y\" whole years, \"M\" whole months, \"D\" days by default; \"MD\", \"YM\", \"YD\" as in Excel); negative when the end is before the start, so an overdue date reads as minus days rather than an error") { a in
            guard let start = try a.date(0), let end = try a.date(1) else { return .blank }
            let cal = a.env.calendar
            switch a.text(2, or: "D").uppercased() {
            case "Y": return .number(DateMath.difference(start, end, .years, a.env))
            case "M": return .number(DateMath.difference(start, end, .months, a.env))
            case "D": return .number(DateMath.difference(start, end, .days, a.env))
            case "MD":
                let c = cal.dateComponents([.month, .day], from: a.env.day(start), to: a.env.day(end))
                return .number(Double(c.day ?? 0))
            case "YM":
                let c = cal.dateComponents([.year, .month], from: start, to: end)
                return .number(Double(c.month ?? 0))
            case "YD":
                let years = cal.dateComponents([.year], from: start, to: end).year ?? 0
                let shifted = cal.date(byAdding: .year, value: years, to: start) ?? start
                return .number(DateMath.difference(shifted, end, .days, a.env))
            default: throw FormulaError(.value, "DATEDIF: the unit must be Y, M, D, MD, YM or YD")
            }
        },
        def("DATETIME_DIFF", .date, [.date, .date, .text], optional: 1, returns: .number,
            example: "DATETIME_DIFF({出院时间}, {入院时间}, \"小时\")",
            zh: "第一个日期减第二个日期，按单位取整（默认天）", en: "The first date minus the second in whole units (days by default)") { a in
            guard let x = try a.date(0), let y = try a.date(1) else { return .blank }
            return .number(DateMath.difference(y, x, try DateMath.Unit.named(a.text(2, or: "days")), a.env))
        },
        def("DAYS", .date, [.date, .date], returns: .number, example: "DAYS({出院日期}, {入院日期})",
            zh: "结束日期减开始日期的天数", en: "Days from the start date (2nd) to the end date (1st)") { a in
            guard let end = try a.date(0), let start = try a.date(1) else { return .blank }
            return .number(DateMath.difference(start, end, .days, a.env))
        },
        def("EDATE", .date, [.date, .number], returns: .date, example: "EDATE({考核日期}, 36)",
            zh: "若干个月之后（或之前）的同一天", en: "The same day so many months later (or earlier)") { a in
            guard let d = try a.date(0) else { return .blank }
            return .date(a.env.day(try DateMath.add(d, try a.int(1), .months, a.env)))
        },
        def("EOMONTH", .date, [.date, .number], optional: 1, returns: .date, example: "EOMONTH({申请日期}, 0)",
            zh: "若干个月之后（或之前）那个月的最后一天", en: "The last day of the month so many months later (or earlier)") { a in
            guard let d = try a.date(0) else { return .blank }
            let cal = a.env.calendar
            let shifted = try DateMath.add(d, try a.int(1, or: 0), .months, a.env)
            let first = cal.date(from: cal.dateComponents([.year, .month], from: shifted))!
            return .date(cal.date(byAdding: DateComponents(month: 1, day: -1), to: first)!)
        },
        def("WORKDAY", .date, [.date, .number, .list], optional: 1, returns: .date,
            example: "WORKDAY({收到申请}, 3)",
            zh: "若干个工作日之后的日期（按医院的节假日与调休日历，可再加一组休息日）",
            en: "The date so many working days later (the hospital's holiday and make-up-day calendar, plus any extra days off given)") { a in
            guard let start = try a.date(0) else { return .blank }
            let n = try a.int(1)
            guard abs(n) <= 10_000 else { throw FormulaError(.value, "WORKDAY: at most 10,000 working days") }
            let extra = try DateMath.holidayKeys(a.has(2) ? a[2] : nil, a.env)
            var day = a.env.day(start)
            var left = abs(n)
            let step = n >= 0 ? 1 : -1
            while left > 0 {
                day = try DateMath.add(day, step, .days, a.env)
                if DateMath.isWorkingDay(day, extra: extra, a.env) { left -= 1 }
            }
            return .date(day)
        },
        def("NETWORKDAYS", .date, [.date, .date, .list], optional: 1, returns: .number,
            example: "NETWORKDAYS({收到申请}, {办结日期})",
            zh: "两日期之间（含首尾）的工作日天数，按医院的节假日与调休日历", en: "Working days between two dates, both counted, on the hospital's holiday and make-up-day calendar") { a in
            guard let s = try a.date(0), let e = try a.date(1) else { return .blank }
            let extra = try DateMath.holidayKeys(a.has(2) ? a[2] : nil, a.env)
            var from = a.env.day(s), to = a.env.day(e)
            let sign: Double = from <= to ? 1 : -1
            if from > to { swap(&from, &to) }
            guard (a.env.calendar.dateComponents([.day], from: from, to: to).day ?? 0) <= 100_000 else {
                throw FormulaError(.value, "NETWORKDAYS: the dates are too far apart")
            }
            var count = 0
            var day = from
            while day <= to {
                if DateMath.isWorkingDay(day, extra: extra, a.env) { count += 1 }
                day = try DateMath.add(day, 1, .days, a.env)
            }
            return .number(sign * Double(count))
        },
        def("IS_BEFORE", .date, [.date, .date], returns: .boolean, example: "IS_BEFORE({到期日}, TODAY())",
            zh: "第一个日期是否早于第二个", en: "Whether the first date is before the second") { a in
            guard let x = try a.date(0), let y = try a.date(1) else { return .boolean(false) }
            return .boolean(x < y)
        },
        def("IS_AFTER", .date, [.date, .date], returns: .boolean, example: "IS_AFTER({复核时间}, {截止时间})",
            zh: "第一个日期是否晚于第二个", en: "Whether the first date is after the second") { a in
            guard let x = try a.date(0), let y = try a.date(1) else { return .boolean(false) }
            return .boolean(x > y)
        },
        def("IS_SAME", .date, [.date, .date, .text], optional: 1, returns: .boolean, example: "IS_SAME({手术日期}, TODAY(), \"天\")",
            zh: "两个日期在某单位上是否相同（默认同一天）", en: "Whether two dates fall in the same unit (the same day by default)") { a in
            guard let x = try a.date(0), let y = try a.date(1) else { return .boolean(false) }
            let unit = try DateMath.Unit.named(a.text(2, or: "day"))
            let granularity: Calendar.Component
            switch unit {
            case .years: granularity = .year
            case .quarters: granularity = .quarter
            case .months: granularity = .month
            case .weeks: granularity = .weekOfYear
            case .days: granularity = .day
            case .hours: granularity = .hour
            case .minutes: granularity = .minute
            case .seconds: granularity = .second
            }
            if unit == .quarters {
                let cal = a.env.calendar
                return .boolean(cal.component(.year, from: x) == cal.component(.year, from: y)
                                && (cal.component(.month, from: x) - 1) / 3 == (cal.component(.month, from: y) - 1) / 3)
            }
            return .boolean(a.env.calendar.isDate(x, equalTo: y, toGranularity: granularity))
        },
    ]
}
