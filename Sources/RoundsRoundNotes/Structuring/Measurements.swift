import Foundation

/// Vital signs and laboratory values in dictated text, rewritten as a record writes them:
/// digits, the canonical unit, no filler ("体温是三十八度五" → "体温38.5℃", "血钾六点九毫摩尔每升" →
/// "血钾6.9mmol/L", "potassium 6.9" → "potassium 6.9 mmol/L"); and spoken numbers before a
/// dose or time unit as digits ("五百毫克" → "500毫克").
enum Measurements {
    struct Found: Equatable {
        var name: String; var value: String; var unit: String
        /// A laboratory value (not a vital sign): it places its clause among the results.
        var isLaboratory = false
    }

    /// A number as spoken or written.
    static let number = "(?:[0-9]+(?:[.．][0-9]+)?|[零〇一二两三四五六七八九十百千点幺]+)"
    static let chineseNumber = "[零〇一二两三四五六七八九十百千点幺]+?"
    static let filler = "\\s*(?:是|为|：|:|约|大概|在|is|was|of|at)?\\s*"

    struct Kind {
        var names: String
        var laboratory: Bool { !["℃", "次/分", "%"].contains(unit) || names.hasPrefix("中性") }
        /// The unit written when none was said.
        var unit: String
        /// Units as said, each with the canonical unit it means.
        var spoken: [(String, String)]
        /// Values outside it are not this measurement ("T2" is a tumour stage, not 2 ℃).
        var plausible: ClosedRange<Double>? = nil
    }

    static let perMinute = [("次每分钟", "次/分"), ("次每分", "次/分"), ("次/分钟", "次/分"), ("次/分", "次/分"), ("次/min", "次/分"),
                            ("bpm", "/min"), ("beats per minute", "/min"), ("per minute", "/min"), ("/min", "/min"), ("次", "次/分")]
    static let mmol = [("毫摩尔每升", "mmol/L"), ("毫摩尔/升", "mmol/L"), ("毫摩", "mmol/L"), ("mmol/l", "mmol/L"), ("mmol/L", "mmol/L"),
                       ("millimoles per liter", "mmol/L"), ("millimoles per litre", "mmol/L"), ("millimole per liter", "mmol/L"), ("mmol", "mmol/L")]
    static let kinds: [Kind] = [
                // One capital letter (T, P, R) only as written, and only with a value a body can have.
        Kind(names: "体温|temperature|(?-i:T)", unit: "℃", spoken: [("摄氏度", "℃"), ("℃", "℃"), ("°C", "℃"), ("degrees celsius", "℃"), ("degrees", "℃"), ("度", "℃")],
             plausible: 30...45),
        Kind(names: "脉搏|心率|heart rate|pulse|(?-i:HR)|(?-i:P)", unit: "次/分", spoken: perMinute, plausible: 20...250),
        Kind(names: "呼吸频率|呼吸(?!音|困难|急促|道|科|机)|respiratory rate|(?-i:RR)|(?-i:R)", unit: "次/分", spoken: perMinute, plausible: 4...80),
        Kind(names: "血氧饱和度|氧饱和度|血氧|指脉氧|oxygen saturation|saturation|SpO2", unit: "%", spoken: [("%", "%"), ("percent", "%")], plausible: 40...100),
        Kind(names: "血钾|钾离子|(?<![补化])钾|potassium", unit: "mmol/L", spoken: mmol, plausible: 1...12),
        Kind(names: "血钠|钠离子|sodium", unit: "mmol/L", spoken: mmol, plausible: 90...200),
        Kind(names: "空腹血糖|随机血糖|血糖|glucose", unit: "mmol/L", spoken: mmol),
        Kind(names: "尿素氮|BUN", unit: "mmol/L", spoken: mmol),
        Kind(names: "乳酸|lactate", unit: "mmol/L", spoken: mmol),
        Kind(names: "肌酐|creatinine", unit: "μmol/L", spoken: [("微摩尔每升", "μmol/L"), ("微摩尔/升", "μmol/L"), ("umol/l", "μmol/L"),
                                                              ("μmol/L", "μmol/L"), ("micromoles per liter", "μmol/L")]),
        Kind(names: "血红蛋白|hemoglobin|haemoglobin|Hb", unit: "g/L", spoken: [("克每升", "g/L"), ("g/l", "g/L"), ("grams per liter", "g/L")]),
        Kind(names: "白蛋白|albumin", unit: "g/L", spoken: [("克每升", "g/L"), ("g/l", "g/L")]),
        Kind(names: "白细胞计数|白细胞|WBC|white cell count|white cells", unit: "×10⁹/L",
             spoken: [("乘以十的九次方每升", "×10⁹/L"), ("乘十的九次方", "×10⁹/L"), ("×10^9/L", "×10⁹/L"), ("x10^9/l", "×10⁹/L")]),
        Kind(names: "血小板|PLT|platelets", unit: "×10⁹/L", spoken: [("乘以十的九次方每升", "×10⁹/L"), ("×10^9/L", "×10⁹/L")]),
        Kind(names: "C反应蛋白|CRP", unit: "mg/L", spoken: [("毫克每升", "mg/L"), ("mg/l", "mg/L")]),
        Kind(names: "降钙素原|PCT", unit: "ng/mL", spoken: [("纳克每毫升", "ng/mL"), ("ng/ml", "ng/mL")]),
        Kind(names: "肌钙蛋白|troponin", unit: "ng/mL", spoken: [("纳克每毫升", "ng/mL"), ("ng/ml", "ng/mL")]),
        Kind(names: "INR", unit: "", spoken: []),
    ]

    static let doseUnits = ["毫克", "千克", "公斤", "微克", "克", "毫升", "单位", "片", "粒", "支", "袋", "天", "日", "周", "小时", "分钟",
                            "次(?!性)", "岁", "期", "型", "厘米", "毫米", "mg", "ml", "mL", "g"]

    /// `latin`: the transcript is in English (units after a space, "/min").
    static func rewrite(_ input: String, latin: Bool = false) -> (String, [Found]) {
        var text = input, found: [Found] = []
        // Blood pressure first: two numbers.
        text = replace("(血压|blood pressure|BP)\(filler)(\(number))\\s*(?:/|／|比|over)\\s*(\(number))\\s*(?:毫米汞柱|mmHg|mm ?Hg|millimeters of mercury)?",
                       in: text) { groups in
            guard let high = ChineseNumerals.value(groups[2]), let low = ChineseNumerals.value(groups[3]), (30...300).contains(high), (10...200).contains(low)
            else { return nil }
            let value = "\(ChineseNumerals.format(high))/\(ChineseNumerals.format(low))"
            found.append(Found(name: groups[1], value: value, unit: "mmHg"))
            return groups[1] + (latin ? " " : "") + value + (latin ? " mmHg" : "mmHg")
        }
        // "百分之九十五" is 95%.
        text = replace("百分之(\(number))", in: text) { groups in ChineseNumerals.value(groups[1]).map { ChineseNumerals.format($0) + "%" } }
        for kind in kinds {
            let units = kind.spoken.map { NSRegularExpression.escapedPattern(for: $0.0) }.joined(separator: "|")
            let unitPart = units.isEmpty ? "()" : "\\s*(\(units))?"
            // "三十八度五": the digit after 度 is the tenth.
            let tenth = kind.unit == "℃" ? "([零一二三四五六七八九0-9])?" : "()"
            let pattern = "(?<![A-Za-z])(\(kind.names))(?![A-Za-z])\(filler)(\(number))(?![0-9])\(unitPart)\(tenth)(?![A-Za-z])"
            text = replace(pattern, in: text, caseInsensitive: true) { groups in
                guard var value = ChineseNumerals.value(groups[2]) else { return nil }
                if !groups[4].isEmpty, !groups[2].contains("点"), !groups[2].contains("."), let d = ChineseNumerals.value(groups[4]) { value += d / 10 }
                if let range = kind.plausible, !range.contains(value) { return nil }
                let spokenUnit = kind.spoken.first { $0.0.lowercased() == groups[3].lowercased() }?.1
                var unit = spokenUnit ?? kind.unit
                if latin && unit == "次/分" { unit = "/min" }
                let shown = ChineseNumerals.format(value)
                found.append(Found(name: groups[1], value: shown, unit: unit, isLaboratory: kind.laboratory))
                return groups[1] + (latin ? " " : "") + shown + (latin && !unit.isEmpty && !["%", "/min"].contains(unit) ? " " : "") + unit
            }
        }
        // Spoken numbers before a dose or time unit: "五百毫克" → "500毫克", "三天" → "3天".
        text = replace("(\(chineseNumber))(\(doseUnits.joined(separator: "|")))", in: text) { groups in
            ChineseNumerals.value(groups[1]).map { ChineseNumerals.format($0) + groups[2] }
        }
        return (text, found)
    }

    /// Replaces every match, right to left, by what `make` returns (nil keeps the match).
    static func replace(_ pattern: String, in text: String, caseInsensitive: Bool = false, _ make: ([String]) -> String?) -> String {
        guard let regex = try? NSRegularExpression(pattern: pattern, options: caseInsensitive ? [.caseInsensitive] : []) else {
            assertionFailure("bad pattern \(pattern)")
            return text
        }
        let ns = text as NSString
        var result = text as NSString
        for match in regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).reversed() {
            let groups = (0..<match.numberOfRanges).map { i -> String in
                let r = match.range(at: i)
                return r.location == NSNotFound ? "" : ns.substring(with: r)
            }
            if let replacement = make(groups) {
                result = result.replacingCharacters(in: match.range, with: replacement) as NSString
            }
        }
        return result as String
    }
}
