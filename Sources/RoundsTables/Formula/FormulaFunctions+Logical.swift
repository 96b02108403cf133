import Foundation

extension FormulaFunctions {
    static let logicalFunctions: [FormulaFunction] = [
        def("IF", .logical, [.any, .any, .any], optional: 1, returnsBy: { types in try unified(Array(types.dropFirst())) },
            handlesErrors: true, example: "IF({血钾} > 5.5, \"高钾\", \"\")",
            zh: "条件成立取第二个值，否则取第三个值（省略则为空）", en: "The second value when the condition holds, else the third (blank if left out)") { a in
            if let e = a[0].error { return .error(e) }
            return try a.bool(0) ? a[1] : (a.has(2) ? a[2] : .blank)
        },
        def("IFS", .logical, [.any, .any], variadic: true,
            returnsBy: { types in
                guard types.count % 2 == 0 else { throw FormulaSignatureError("takes pairs of condition and value") }
                return try unified(types.enumerated().filter { $0.offset % 2 == 1 }.map(\.element))
            },
            handlesErrors: true, example: "IFS({NRS} >= 7, \"重度\", {NRS} >= 4, \"中度\", {NRS} >= 1, \"轻度\", TRUE, \"无痛\")",
            zh: "依次检查各条件，取第一个成立的条件后面的值；都不成立时报错（可用 TRUE 作最后一个条件）",
            en: "The value after the first condition that holds; an error when none does (end with TRUE for a default)") { a in
            for i in stride(from: 0, to: a.count - 1, by: 2) {
                if let e = a[i].error { return .error(e) }
                if try a.bool(i) { return a[i + 1] }
            }
            throw FormulaError(.value, "IFS: no condition holds")
        },
        def("SWITCH", .logical, [.any, .any, .any], variadic: true,
            returnsBy: { types in
                let rest = Array(types.dropFirst())
                var results = stride(from: 1, to: rest.count, by: 2).map { rest[$0] }
                if rest.count % 2 == 1 { results.append(rest[rest.count - 1]) }
                return try unified(results)
            },
            handlesErrors: true, example: "SWITCH({状态}, \"待审核\", 1, \"已通过\", 2, 0)",
            zh: "把值依次与各个候选比较，取相等者后面的结果；最后单独一个为默认值，没有默认值又无匹配时报错",
            en: "Compares the value with each case and gives the result after the one that equals it; a last lone value is the default (an error when no case matches and there is none)") { a in
            if let e = a[0].error { return .error(e) }
            var i = 1
            while i + 1 < a.count {
                if Compare.equal(a[0], a[i]) { return a[i + 1] }
                i += 2
            }
            if i < a.count { return a[i] }
            throw FormulaError(.value, "SWITCH: no case matches “\(a.text(0))”")
        },
        def("AND", .logical, [.boolean], variadic: true, returns: .boolean, example: "AND({已签字}, {已复核})",
            zh: "全部成立才为真", en: "True when every value is true") { a in
            .boolean(try a.flattened.allSatisfy { try Coerce.boolean($0) })
        },
        def("OR", .logical, [.boolean], variadic: true, returns: .boolean, example: "OR({跌倒高危}, {压疮高危})",
            zh: "任一成立即为真", en: "True when any value is true") { a in
            .boolean(try a.flattened.contains { try Coerce.boolean($0) })
        },
        def("XOR", .logical, [.boolean], variadic: true, returns: .boolean, example: "XOR({甲}, {乙})",
            zh: "成立的个数为奇数时为真", en: "True when an odd number of values are true") { a in
            .boolean(try a.flattened.filter { try Coerce.boolean($0) }.count % 2 == 1)
        },
        def("NOT", .logical, [.boolean], returns: .boolean, example: "NOT({已出院})", zh: "取反", en: "The opposite") { a in .boolean(!(try a.bool(0))) },
        def("TRUE", .logical, [], returns: .boolean, example: "TRUE()", zh: "真", en: "True") { _ in .boolean(true) },
        def("FALSE", .logical, [], returns: .boolean, example: "FALSE()", zh: "假", en: "False") { _ in .boolean(false) },
        def("BLANK", .logical, [], returns: .any, example: "IF({已完成}, BLANK(), \"待办\")", zh: "空值", en: "A blank value") { _ in .blank },
        def("ISBLANK", .logical, [.any], returns: .boolean, handlesErrors: true, example: "ISBLANK({复核人})",
            zh: "是否为空", en: "Whether the value is blank") { a in
            .boolean(a[0].error == nil && a[0].isBlank)
        },
        def("ISERROR", .logical, [.any], returns: .boolean, handlesErrors: true, example: "ISERROR(VALUE({结果}))",
            zh: "是否为错误", en: "Whether the value is an error") { a in .boolean(a[0].error != nil) },
        def("IFERROR", .logical, [.any, .any], returnsBy: { try unified($0) }, handlesErrors: true,
            example: "IFERROR({总量} / {天数}, 0)", zh: "出错时取第二个值", en: "The second value when the first is an error") { a in
            a[0].error == nil ? a[0] : a[1]
        },
        def("ISNUMBER", .logical, [.any], returns: .boolean, handlesErrors: true, example: "ISNUMBER({结果})",
            zh: "是否为数字", en: "Whether the value is a number") { a in
            if case .number = a[0] { return .boolean(true) }
            return .boolean(false)
        },
        def("ISTEXT", .logical, [.any], returns: .boolean, handlesErrors: true, example: "ISTEXT({结果})",
            zh: "是否为文字", en: "Whether the value is text") { a in
            if case .text = a[0] { return .boolean(true) }
            return .boolean(false)
        },
        def("ERROR", .logical, [.text], optional: 1, returns: .any, example: "IF({剂量} > {极量}, ERROR(\"超过极量\"), {剂量})",
            zh: "给出一个错误（带原因），单元格会显示它", en: "An error with its reason, shown in the cell") { a in
            throw FormulaError(.custom, a.text(0, or: "error"))
        },
    ]
}
