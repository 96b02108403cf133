import Foundation

extension FormulaFunctions {
    /// Longest text a function may build (REPT, SUBSTITUTE…): a cell, not a document.
    static let maximumTextLength = 100_000

    static func checked(_ s: String) throws -> FormulaValue {
        guard s.count <= maximumTextLength else { throw FormulaError(.value, "the text would be longer than \(maximumTextLength) characters") }
        return .text(s)
    }

    static func regex(_ pattern: String) throws -> NSRegularExpression {
        do { return try NSRegularExpression(pattern: pattern) } catch {
            throw FormulaError(.value, "“\(pattern)” is not a valid regular expression")
        }
    }

    static let textFunctions: [FormulaFunction] = [
        def("CONCATENATE", .text, [.any], variadic: true, returns: .text, example: "CONCATENATE({姓名}, \"（\", {工号}, \"）\")",
            zh: "把各个值依次连接成一段文字", en: "Joins the values into one text") { a in
            try checked(a.values.indices.map { a.text($0) }.joined())
        },
        def("LEFT", .text, [.text, .number], optional: 1, returns: .text, example: "LEFT({身份证号}, 6)",
            zh: "取文字开头的若干个字符（默认 1 个）", en: "The first characters of a text (1 by default)") { a in
            let n = try a.int(1, or: 1)
            guard n >= 0 else { throw FormulaError(.value, "LEFT: the count cannot be negative") }
            return .text(String(a.text(0).prefix(n)))
        },
        def("RIGHT", .text, [.text, .number], optional: 1, returns: .text, example: "RIGHT({住院号}, 4)",
            zh: "取文字末尾的若干个字符（默认 1 个）", en: "The last characters of a text (1 by default)") { a in
            let n = try a.int(1, or: 1)
            guard n >= 0 else { throw FormulaError(.value, "RIGHT: the count cannot be negative") }
            return .text(String(a.text(0).suffix(n)))
        },
        def("MID", .text, [.text, .number, .number], returns: .text, example: "MID({身份证号}, 7, 8)",
            zh: "从第几个字符起取若干个字符", en: "Characters from a position (1 = first), so many of them") { a in
            let start = try a.int(1), n = try a.int(2)
            guard start >= 1, n >= 0 else { throw FormulaError(.value, "MID: the start must be 1 or more and the count not negative") }
            return .text(String(a.text(0).dropFirst(start - 1).prefix(n)))
        },
        def("LEN", .text, [.text], returns: .number, example: "LEN({诊断})",
            zh: "文字的字符数（一个汉字算一个）", en: "The number of characters (a Chinese character counts as one)") { a in
            .number(Double(a.text(0).count))
        },
        def("LOWER", .text, [.text], returns: .text, example: "LOWER({邮箱})", zh: "英文字母变小写", en: "Lower-case letters") { a in
            .text(a.text(0).lowercased())
        },
        def("UPPER", .text, [.text], returns: .text, example: "UPPER({科室代码})", zh: "英文字母变大写", en: "Upper-case letters") { a in
            .text(a.text(0).uppercased())
        },
        def("TRIM", .text, [.text], returns: .text, example: "TRIM({姓名})",
            zh: "去掉首尾空格（含全角空格），中间连续空格只留一个", en: "Removes spaces at both ends (full-width too) and repeated spaces inside") { a in
            let words = a.text(0).split(whereSeparator: { $0 == " " || $0 == "\u{3000}" || $0 == "\t" })
            return .text(words.joined(separator: " "))
        },
        def("SUBSTITUTE", .text, [.text, .text, .text, .number], optional: 1, returns: .text,
            example: "SUBSTITUTE({电话}, \"-\", \"\")",
            zh: "把文字中的某段替换成另一段；给出第 4 个参数时只替换第几次出现的那一处",
            en: "Replaces a part of the text with another; with a 4th argument only that occurrence") { a in
            let text = a.text(0), old = a.text(1), new = a.text(2)
            guard !old.isEmpty else { return .text(text) }
            guard a.has(3) else { return try checked(text.replacingOccurrences(of: old, with: new)) }
            let which = try a.int(3)
            guard which >= 1 else { throw FormulaError(.value, "SUBSTITUTE: the occurrence must be 1 or more") }
            var search = text.startIndex..<text.endIndex
            var seen = 0
            while let found = text.range(of: old, range: search) {
                seen += 1
                if seen == which { return try checked(text.replacingCharacters(in: found, with: new)) }
                search = found.upperBound..<text.endIndex
            }
            return .text(text)
        },
        def("REPLACE", .text, [.text, .number, .number, .text], returns: .text, example: "REPLACE({手机号}, 4, 4, \"****\")",
            zh: "从第几个字符起，把若干个字符换成新文字", en: "Replaces so many characters from a position with new text") { a in
            let chars = Array(a.text(0)), start = try a.int(1), n = try a.int(2)
            guard start >= 1, n >= 0 else { throw FormulaError(.value, "REPLACE: the start must be 1 or more and the count not negative") }
            let from = min(start - 1, chars.count), to = min(from + n, chars.count)
            return try checked(String(chars[..<from]) + a.text(3) + String(chars[to...]))
        },
        def("FIND", .text, [.text, .text, .number], optional: 1, returns: .number, example: "FIND(\"癌\", {病理诊断})",
            zh: "某段文字在另一段中第一次出现的位置（区分大小写），找不到为 0", en: "Where a text first appears in another (case-sensitive), 0 if nowhere") { a in
            .number(Double(try position(of: a.text(0), in: a.text(1), from: a.int(2, or: 1), caseInsensitive: false)))
        },
        def("SEARCH", .text, [.text, .text, .number], optional: 1, returns: .number, example: "SEARCH(\"icu\", {科室})",
            zh: "同 FIND，但不区分大小写", en: "Like FIND, ignoring case") { a in
            .number(Double(try position(of: a.text(0), in: a.text(1), from: a.int(2, or: 1), caseInsensitive: true)))
        },
        def("REPT", .text, [.text, .number], returns: .text, example: "REPT(\"★\", {评分})",
            zh: "把文字重复若干次", en: "The text repeated so many times") { a in
            let n = try a.int(1)
            guard n >= 0 else { throw FormulaError(.value, "REPT: the count cannot be negative") }
            let text = a.text(0)
            guard text.count * n <= maximumTextLength else { throw FormulaError(.value, "REPT: the text would be too long") }
            return .text(String(repeating: text, count: n))
        },
        def("VALUE", .text, [.text], returns: .number, example: "VALUE({体重（文字）})",
            zh: "把文字转成数字（可带千分位逗号或 %）", en: "The number a text says (thousands commas and % allowed)") { a in
            var t = a.text(0).trimmingCharacters(in: .whitespaces)
            var scale = 1.0
            if t.hasSuffix("%") { t.removeLast(); scale = 0.01 }
            guard let n = Double(t.replacingOccurrences(of: ",", with: "")) else { throw FormulaError(.value, "“\(a.text(0))” is not a number") }
            return .number(n * scale)
        },
        def("T", .text, [.any], returns: .text, example: "T({备注})", zh: "是文字则返回它，否则返回空", en: "The value if it is text, else empty") { a in
            if case .text(let t) = a[0] { return .text(t) }
            return .text("")
        },
        def("EXACT", .text, [.text, .text], returns: .boolean, example: "EXACT({工号}, \"A0123\")",
            zh: "两段文字是否完全相同（区分大小写）", en: "Whether two texts are exactly the same (case-sensitive)") { a in
            .boolean(a.text(0) == a.text(1))
        },
        def("STARTSWITH", .text, [.text, .text], returns: .boolean, example: "STARTSWITH({住院号}, \"ZY\")",
            zh: "文字是否以某段开头", en: "Whether the text starts with another") { a in .boolean(a.text(0).hasPrefix(a.text(1))) },
        def("ENDSWITH", .text, [.text, .text], returns: .boolean, example: "ENDSWITH({文件名}, \".pdf\")",
            zh: "文字是否以某段结尾", en: "Whether the text ends with another") { a in .boolean(a.text(0).hasSuffix(a.text(1))) },
        def("CONTAINS", .text, [.text, .text], returns: .boolean, example: "CONTAINS({诊断}, \"糖尿病\")",
            zh: "文字中是否含有某段", en: "Whether the text contains another") { a in
            let part = a.text(1)
            return .boolean(part.isEmpty || a.text(0).contains(part))
        },
        def("CHAR", .text, [.number], returns: .text, example: "CHAR(10)", zh: "编码对应的字符（如 10 是换行）", en: "The character of a code (10 is a line break)") { a in
            let code = try a.int(0)
            guard code > 0, let scalar = Unicode.Scalar(UInt32(code)) else {
                throw FormulaError(.value, "CHAR: \(a.text(0)) is not a character code")
            }
            return .text(String(Character(scalar)))
        },
        def("UNICODE", .text, [.text], returns: .number, example: "UNICODE(\"王\")", zh: "第一个字符的编码", en: "The code of the first character") { a in
            guard let first = a.text(0).unicodeScalars.first else { throw FormulaError(.value, "UNICODE: the text is empty") }
            return .number(Double(first.value))
        },
        def("TEXTJOIN", .text, [.text, .any], variadic: true, returns: .text, example: "TEXTJOIN(\"、\", {主管医生}, {责任护士})",
            zh: "用分隔符连接各个值，空值跳过", en: "Joins the values with a separator, skipping blanks") { a in
            let parts = a.values.dropFirst().flatMap(Coerce.list).filter { !$0.isBlank }.map { Coerce.text($0, a.env) }
            return try checked(parts.joined(separator: a.text(0)))
        },
        def("SPLIT", .text, [.text, .text], returns: .list(.text), example: "SPLIT({过敏史}, \"、\")",
            zh: "按分隔符把文字拆成列表", en: "Splits the text into a list at a separator") { a in
            let separator = a.text(1)
            guard !separator.isEmpty else { return .list(a.text(0).map { .text(String($0)) }) }
            return .list(a.text(0).components(separatedBy: separator).map { .text($0) })
        },
        def("ENCODE_URL_COMPONENT", .text, [.text], returns: .text, example: "\"https://his.example/q?mrn=\" & ENCODE_URL_COMPONENT({病案号})",
            zh: "把文字编码后放进网址", en: "The text encoded for use in a URL") { a in
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            return .text(a.text(0).addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
        },
        def("REGEX_MATCH", .text, [.text, .text], returns: .boolean, example: "REGEX_MATCH({手机号}, \"^1[3-9]\\\\d{9}$\")",
            zh: "文字是否符合正则表达式", en: "Whether the text matches a regular expression") { a in
            let text = a.text(0)
            return .boolean(try regex(a.text(1)).firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil)
        },
        def("REGEX_EXTRACT", .text, [.text, .text], returns: .text, example: "REGEX_EXTRACT({报告}, \"Ki-67[：:]\\\\s*(\\\\d+%)\")",
            zh: "取出第一处符合正则表达式的文字（有括号分组时取第一组），没有则为空",
            en: "The first part matching a regular expression (its first group if it has one), else blank") { a in
            let text = a.text(0)
            guard let m = try regex(a.text(1)).firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) else { return .blank }
            let range = m.numberOfRanges > 1 && m.range(at: 1).location != NSNotFound ? m.range(at: 1) : m.range
            return Range(range, in: text).map { .text(String(text[$0])) } ?? .blank
        },
        def("REGEX_REPLACE", .text, [.text, .text, .text], returns: .text, example: "REGEX_REPLACE({电话}, \"\\\\D\", \"\")",
            zh: "把符合正则表达式的各处替换成新文字（$1 表示第一组）", en: "Replaces every match of a regular expression ($1 is the first group)") { a in
            let text = a.text(0)
            return try checked(try regex(a.text(1)).stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: a.text(2)))
        },
        def("PROPER", .text, [.text], returns: .text, example: "PROPER({英文名})", zh: "英文单词首字母大写", en: "Capitalises each word") { a in
            .text(a.text(0).capitalized)
        },
        def("FIXED", .text, [.number, .number], optional: 1, returns: .text, example: "FIXED({体温}, 1) & \"℃\"",
            zh: "把数字写成保留若干位小数的文字（默认 2 位，四舍五入）", en: "The number as text with so many decimals (2 by default, rounded half away from zero)") { a in
            let digits = try a.int(1, or: 2)
            guard (0...10).contains(digits) else { throw FormulaError(.value, "FIXED: decimals must be 0 to 10") }
            let rounded = roundHalfAway(try a.number(0), digits)
            return .text(String(format: "%.\(digits)f", rounded))
        },
    ]

    /// 1-based position of `needle` in `haystack` from `start`, 0 when absent.
    static func position(of needle: String, in haystack: String, from start: Int, caseInsensitive: Bool) throws -> Int {
        guard start >= 1 else { throw FormulaError(.value, "the start position must be 1 or more") }
        let chars = Array(haystack)
        guard start - 1 <= chars.count else { return 0 }
        let tail = String(chars[(start - 1)...])
        guard let found = tail.range(of: needle, options: caseInsensitive ? [.caseInsensitive] : []) else { return 0 }
        return start + tail.distance(from: tail.startIndex, to: found.lowerBound)
    }
}
