import Foundation

extension FormulaFunctions {
    static func elementType(_ types: [FormulaType]) -> FormulaType {
        guard let first = types.first else { return .list(.any) }
        if case .list = first { return first }
        return .list(first)
    }

    static func sortKey(_ a: FormulaValue, _ b: FormulaValue) -> Bool {
        (try? Compare.order(a, b)) == .orderedAscending
    }

    static let listFunctions: [FormulaFunction] = [
        def("LIST", .list, [.any], variadic: true, returnsBy: { types in .list((try? unified(types)) ?? .any) },
            example: "WORKDAY({收到日期}, 5, LIST(DATE(2026, 12, 31)))", zh: "把几个值组成列表", en: "A list of the values") { a in
            .list(a.flattened)
        },
        def("ARRAYJOIN", .list, [.list, .text], optional: 1, returns: .text, example: "ARRAYJOIN({参会医生}, \"、\")",
            zh: "把列表连接成文字（默认用逗号）", en: "The list joined into text (with commas by default)") { a in
            try checked(Coerce.list(a[0]).filter { !$0.isBlank }.map { Coerce.text($0, a.env) }.joined(separator: a.text(1, or: ", ")))
        },
        def("ARRAYUNIQUE", .list, [.list], returnsBy: { elementType($0) }, example: "ARRAYUNIQUE({涉及科室})",
            zh: "去掉列表中的重复项", en: "The list without repeats") { a in
            var seen: [FormulaValue] = []
            for v in Coerce.list(a[0]) where !seen.contains(where: { Compare.equal($0, v) && !$0.isBlank }) { seen.append(v) }
            return .list(seen)
        },
        def("ARRAYCOMPACT", .list, [.list], returnsBy: { elementType($0) }, example: "ARRAYCOMPACT({签名})",
            zh: "去掉列表中的空值", en: "The list without blanks") { a in .list(Coerce.list(a[0]).filter { !$0.isBlank }) },
        def("ARRAYFLATTEN", .list, [.list], variadic: true, returnsBy: { elementType($0) }, example: "ARRAYFLATTEN({甲组}, {乙组})",
            zh: "把几个列表合成一个", en: "Several lists as one") { a in .list(a.flattened) },
        def("ARRAYSLICE", .list, [.list, .number, .number], optional: 1, returnsBy: { elementType($0) },
            example: "ARRAYSLICE({随访记录}, 1, 3)",
            zh: "列表中第几项到第几项（从 1 数起，负数从末尾数）", en: "Items from one position to another (from 1; negative counts from the end)") { a in
            let items = Coerce.list(a[0])
            func index(_ n: Int) -> Int { n < 0 ? items.count + n + 1 : n }
            let from = max(1, index(try a.int(1))), to = min(items.count, index(try a.int(2, or: -1)))
            return .list(from <= to ? Array(items[(from - 1)...(to - 1)]) : [])
        },
        def("ARRAYSORT", .list, [.list, .text], optional: 1, returnsBy: { elementType($0) }, example: "ARRAYSORT({检查日期}, \"desc\")",
            zh: "把列表排序（\"asc\" 升序为默认，\"desc\" 降序）", en: "The list sorted (\"asc\" by default, or \"desc\")") { a in
            let order = a.text(1, or: "asc").lowercased()
            guard order == "asc" || order == "desc" else { throw FormulaError(.value, "ARRAYSORT: the order is \"asc\" or \"desc\"") }
            let sorted = Coerce.list(a[0]).sorted(by: sortKey)
            return .list(order == "asc" ? sorted : sorted.reversed())
        },
        def("ARRAYFIRST", .list, [.list], returnsBy: { types in
                if case .list(let e) = types[0] { return e }
                return types[0]
            }, example: "ARRAYFIRST({检验日期})", zh: "列表的第一项", en: "The first item") { a in Coerce.list(a[0]).first ?? .blank },
        def("ARRAYLAST", .list, [.list], returnsBy: { types in
                if case .list(let e) = types[0] { return e }
                return types[0]
            }, example: "ARRAYLAST({检验日期})", zh: "列表的最后一项", en: "The last item") { a in Coerce.list(a[0]).last ?? .blank },
        def("ARRAYINCLUDES", .list, [.list, .any], returns: .boolean, example: "ARRAYINCLUDES({标签}, \"VIP\")",
            zh: "列表中是否有某个值", en: "Whether the list holds a value") { a in
            .boolean(Coerce.list(a[0]).contains { Compare.equal($0, a[1]) })
        },
    ]
}
