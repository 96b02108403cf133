import Foundation

extension FormulaFunctions {
    /// Rounds half away from zero at `digits` decimals (negative: to tens, hundreds…), as
    /// spreadsheets do; a small nudge keeps 2.675 from becoming 2.67 through binary fractions.
    static func roundHalfAway(_ n: Double, _ digits: Int) -> Double {
        let scale = pow(10, Double(digits))
        let scaled = n * scale
        let nudged = scaled + (scaled >= 0 ? 1 : -1) * abs(scaled) * 1e-12
        return (nudged).rounded(.toNearestOrAwayFromZero) / scale
    }

    static func rounding(_ n: Double, _ digits: Int, _ rule: FloatingPointRoundingRule) -> Double {
        let scale = pow(10, Double(digits))
        let scaled = (n * scale * (1 - 1e-15 * (rule == .awayFromZero ? 1 : -1)))
        return scaled.rounded(rule) / scale
    }

    static func digits(_ a: FormulaArgs, _ i: Int) throws -> Int {
        let d = try a.int(i, or: 0)
        guard (-15...15).contains(d) else { throw FormulaError(.value, "the number of decimals must be between -15 and 15") }
        return d
    }

    static func average(_ numbers: [Double]) throws -> Double {
        guard !numbers.isEmpty else { throw FormulaError(.divideByZero, "no numbers to average") }
        return numbers.reduce(0, +) / Double(numbers.count)
    }

    static let numberFunctions: [FormulaFunction] = [
        def("ABS", .number, [.number], returns: .number, example: "ABS({差值})", zh: "绝对值", en: "Absolute value") { a in .number(abs(try a.number(0))) },
        def("ROUND", .number, [.number, .number], optional: 1, returns: .number, example: "ROUND({BMI}, 1)",
            zh: "四舍五入到若干位小数（默认取整）", en: "Rounds half away from zero to so many decimals (0 by default)") { a in
            .number(roundHalfAway(try a.number(0), try digits(a, 1)))
        },
        def("ROUNDUP", .number, [.number, .number], optional: 1, returns: .number, example: "ROUNDUP({天数} / 7, 0)",
            zh: "向远离零的方向进位", en: "Rounds away from zero") { a in
            .number(rounding(try a.number(0), try digits(a, 1), .awayFromZero))
        },
        def("ROUNDDOWN", .number, [.number, .number], optional: 1, returns: .number, example: "ROUNDDOWN({年龄（精确）}, 0)",
            zh: "向零的方向舍去", en: "Rounds toward zero") { a in
            .number(rounding(try a.number(0), try digits(a, 1), .towardZero))
        },
        def("CEILING", .number, [.number, .number], optional: 1, returns: .number, example: "CEILING({用量}, 0.5)",
            zh: "向上取到某数的整数倍（默认 1）", en: "Up to the next multiple (1 by default)") { a in
            let m = try a.number(1, or: 1)
            guard m != 0 else { return .number(0) }
            return .number((try a.number(0) / m).rounded(.up) * m)
        },
        def("FLOOR", .number, [.number, .number], optional: 1, returns: .number, example: "FLOOR({用量}, 0.5)",
            zh: "向下取到某数的整数倍（默认 1）", en: "Down to the multiple below (1 by default)") { a in
            let m = try a.number(1, or: 1)
            guard m != 0 else { return .number(0) }
            return .number((try a.number(0) / m).rounded(.down) * m)
        },
        def("INT", .number, [.number], returns: .number, example: "INT({住院天数})", zh: "向下取整", en: "Rounds down to a whole number") { a in
            .number((try a.number(0)).rounded(.down))
        },
        def("TRUNC", .number, [.number, .number], optional: 1, returns: .number, example: "TRUNC({剂量}, 1)",
            zh: "截去小数部分（可保留若干位）", en: "Cuts off decimals (keeping so many)") { a in
            .number(rounding(try a.number(0), try digits(a, 1), .towardZero))
        },
        def("MOD", .number, [.number, .number], returns: .number, example: "MOD({床号}, 2)",
            zh: "余数（符号与除数相同）", en: "Remainder (with the divisor's sign)") { a in
            let n = try a.number(0), d = try a.number(1)
            guard d != 0 else { throw FormulaError(.divideByZero, "MOD by zero") }
            return .number(n - d * (n / d).rounded(.down))
        },
        def("QUOTIENT", .number, [.number, .number], returns: .number, example: "QUOTIENT({分钟}, 60)",
            zh: "整数商（舍去余数）", en: "Whole quotient (remainder dropped)") { a in
            let d = try a.number(1)
            guard d != 0 else { throw FormulaError(.divideByZero, "QUOTIENT by zero") }
            return .number((try a.number(0) / d).rounded(.towardZero))
        },
        def("POWER", .number, [.number, .number], returns: .number, example: "POWER({身高米}, 2)", zh: "乘方", en: "A number raised to a power") { a in
            .number(pow(try a.number(0), try a.number(1)))
        },
        def("SQRT", .number, [.number], returns: .number, example: "SQRT({身高} * {体重} / 3600)", zh: "平方根", en: "Square root") { a in
            let n = try a.number(0)
            guard n >= 0 else { throw FormulaError(.number, "SQRT of a negative number") }
            return .number(n.squareRoot())
        },
        def("EXP", .number, [.number], returns: .number, example: "EXP(1)", zh: "e 的乘方", en: "e raised to a power") { a in .number(Foundation.exp(try a.number(0))) },
        def("LN", .number, [.number], returns: .number, example: "LN({值})", zh: "自然对数", en: "Natural logarithm") { a in
            let n = try a.number(0)
            guard n > 0 else { throw FormulaError(.number, "LN of zero or a negative number") }
            return .number(Foundation.log(n))
        },
        def("LOG", .number, [.number, .number], optional: 1, returns: .number, example: "LOG({值}, 2)",
            zh: "对数（默认以 10 为底）", en: "Logarithm (base 10 by default)") { a in
            let n = try a.number(0), base = try a.number(1, or: 10)
            guard n > 0, base > 0, base != 1 else { throw FormulaError(.number, "LOG needs a positive number and a positive base other than 1") }
            return .number(Foundation.log(n) / Foundation.log(base))
        },
        def("LOG10", .number, [.number], returns: .number, example: "LOG10({病毒载量})", zh: "以 10 为底的对数", en: "Base-10 logarithm") { a in
            let n = try a.number(0)
            guard n > 0 else { throw FormulaError(.number, "LOG10 of zero or a negative number") }
            return .number(Foundation.log10(n))
        },
        def("SIGN", .number, [.number], returns: .number, example: "SIGN({变化})", zh: "正数为 1，负数为 -1，零为 0", en: "1, -1 or 0 by sign") { a in
            let n = try a.number(0)
            return .number(n > 0 ? 1 : (n < 0 ? -1 : 0))
        },
        def("EVEN", .number, [.number], returns: .number, example: "EVEN(3)", zh: "远离零取到最近的偶数", en: "Away from zero to the nearest even number") { a in
            let n = try a.number(0), up = (abs(n) / 2).rounded(.up) * 2
            return .number(n < 0 ? -up : up)
        },
        def("ODD", .number, [.number], returns: .number, example: "ODD(2)", zh: "远离零取到最近的奇数", en: "Away from zero to the nearest odd number") { a in
            let n = try a.number(0)
            var up = abs(n).rounded(.up)
            if up.truncatingRemainder(dividingBy: 2) == 0 { up += 1 }
            return .number(n < 0 ? -up : up)
        },
        def("PI", .number, [], returns: .number, example: "PI() * POWER({半径}, 2)", zh: "圆周率", en: "π") { _ in .number(Double.pi) },
        def("MAX", .number, [.list], variadic: true, returns: .number, example: "MAX({收缩压1}, {收缩压2})",
            zh: "最大值（空值和文字不计；没有数字时为 0）", en: "The largest number (blanks and text ignored; 0 when none)") { a in
            .number(a.numbers.max() ?? 0)
        },
        def("MIN", .number, [.list], variadic: true, returns: .number, example: "MIN({血氧})",
            zh: "最小值（空值和文字不计；没有数字时为 0）", en: "The smallest number (blanks and text ignored; 0 when none)") { a in
            .number(a.numbers.min() ?? 0)
        },
        def("SUM", .number, [.list], variadic: true, returns: .number, example: "SUM({各项费用})",
            zh: "求和（也可对关联记录的查找值求和）", en: "The sum (also of the values looked up through a link)") { a in
            .number(a.numbers.reduce(0, +))
        },
        def("AVERAGE", .number, [.list], variadic: true, returns: .number, example: "AVERAGE({评分})",
            zh: "平均值（空值不计；没有数字时报错）", en: "The mean (blanks ignored; an error when there are no numbers)") { a in
            .number(try average(a.numbers))
        },
        def("MEDIAN", .number, [.list], variadic: true, returns: .number, example: "MEDIAN({等待天数})",
            zh: "中位数", en: "The median") { a in
            let sorted = a.numbers.sorted()
            guard !sorted.isEmpty else { throw FormulaError(.divideByZero, "MEDIAN: no numbers") }
            let mid = sorted.count / 2
            return .number(sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2)
        },
        def("PRODUCT", .number, [.list], variadic: true, returns: .number, example: "PRODUCT({单价}, {数量})",
            zh: "乘积", en: "The product") { a in
            let numbers = a.numbers
            return .number(numbers.isEmpty ? 0 : numbers.reduce(1, *))
        },
        def("STDEV", .number, [.list], variadic: true, returns: .number, example: "STDEV({血糖})",
            zh: "样本标准差（至少两个数字）", en: "Sample standard deviation (at least two numbers)") { a in
            let numbers = a.numbers
            guard numbers.count >= 2 else { throw FormulaError(.divideByZero, "STDEV needs at least two numbers") }
            let mean = numbers.reduce(0, +) / Double(numbers.count)
            return .number((numbers.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(numbers.count - 1)).squareRoot())
        },
        def("COUNT", .number, [.list], variadic: true, returns: .number, example: "COUNT({检验结果})",
            zh: "数字的个数", en: "How many numbers") { a in .number(Double(a.numbers.count)) },
        def("COUNTA", .number, [.list], variadic: true, returns: .number, example: "COUNTA({随访记录})",
            zh: "非空值的个数", en: "How many values are not blank") { a in
            .number(Double(a.flattened.filter { !$0.isBlank }.count))
        },
        def("COUNTBLANK", .number, [.list], variadic: true, returns: .number, example: "COUNTBLANK({签字1}, {签字2}, {签字3})",
            zh: "空值的个数", en: "How many values are blank") { a in
            .number(Double(a.values.flatMap { $0.isBlank ? [FormulaValue.blank] : Coerce.list($0) }.filter(\.isBlank).count))
        },
        def("COUNTALL", .number, [.list], variadic: true, returns: .number, example: "COUNTALL({关联记录})",
            zh: "全部值的个数（含空值）", en: "How many values, blanks included") { a in
            .number(Double(a.values.reduce(0) { n, v in if case .list(let items) = v { return n + items.count } else { return n + 1 } }))
        },
    ]
}
