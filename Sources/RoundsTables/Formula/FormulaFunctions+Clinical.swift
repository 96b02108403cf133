import Foundation

/// Clinical helpers with their units written into their names' documentation. Each refuses a
/// value outside what a patient can have, with the likely mistake (metres for centimetres,
/// mg/dL for µmol/L), instead of computing a plausible-looking wrong number.
extension FormulaFunctions {
    static func weight(_ a: FormulaArgs, _ i: Int) throws -> Double {
        let kg = try a.number(i)
        guard (0.2...700).contains(kg) else { throw FormulaError(.value, "the weight \(FormulaText.number(kg)) kg is not plausible (0.2–700 kg)") }
        return kg
    }

    static func height(_ a: FormulaArgs, _ i: Int) throws -> Double {
        let cm = try a.number(i)
        if (0.2...3).contains(cm) { throw FormulaError(.value, "the height \(FormulaText.number(cm)) looks like metres; give it in centimetres") }
        guard (20...300).contains(cm) else { throw FormulaError(.value, "the height \(FormulaText.number(cm)) cm is not plausible (20–300 cm)") }
        return cm
    }

    enum Sex { case female, male }

    static func sex(_ a: FormulaArgs, _ i: Int) throws -> Sex {
        switch a.text(i).trimmingCharacters(in: .whitespaces).lowercased() {
        case "f", "female", "女", "woman": return .female
        case "m", "male", "男", "man": return .male
        default: throw FormulaError(.value, "the sex “\(a.text(i))” must be 男/女 or M/F")
        }
    }

    /// Serum creatinine in mg/dL, from µmol/L (Chinese laboratories' unit, the default) or mg/dL.
    static func creatinine(_ a: FormulaArgs, _ i: Int, unitAt u: Int) throws -> Double {
        let value = try a.number(i)
        let unit = a.text(u, or: "umol/L").lowercased().replacingOccurrences(of: "µ", with: "u").replacingOccurrences(of: "μ", with: "u")
        switch unit {
        case "umol/l":
            if (0.1...20).contains(value) { throw FormulaError(.value, "creatinine \(FormulaText.number(value)) µmol/L is not plausible; is it mg/dL? (give \"mg/dL\" as the unit)") }
            guard (10...3000).contains(value) else { throw FormulaError(.value, "creatinine \(FormulaText.number(value)) µmol/L is not plausible (10–3000)") }
            return value / 88.4
        case "mg/dl":
            guard (0.1...35).contains(value) else { throw FormulaError(.value, "creatinine \(FormulaText.number(value)) mg/dL is not plausible (0.1–35)") }
            return value
        default: throw FormulaError(.value, "the creatinine unit must be \"umol/L\" or \"mg/dL\"")
        }
    }

    static func adultAge(_ a: FormulaArgs, _ i: Int, _ name: String) throws -> Double {
        let age = try a.number(i)
        guard (18...120).contains(age) else { throw FormulaError(.value, "\(name) is for adults (18–120 years), not \(FormulaText.number(age))") }
        return age
    }

    static let clinicalFunctions: [FormulaFunction] = [
        def("AGE", .clinical, [.date, .date], optional: 1, returns: .number, example: "AGE({出生日期})",
            zh: "周岁（到第二个日期，默认今天；医院时区）", en: "Age in whole years (at the second date, today by default; hospital time)") { a in
            guard let birth = try a.date(0) else { return .blank }
            let at = a.has(1) ? try a.date(1) : a.env.now
            guard let at else { return .blank }
            guard birth <= at else { throw FormulaError(.value, "AGE: the birth date is after the date of the age") }
            return .number(DateMath.difference(a.env.day(birth), a.env.day(at), .years, a.env))
        },
        def("BMI", .clinical, [.number, .number], returns: .number, example: "ROUND(BMI({体重kg}, {身高cm}), 1)",
            zh: "体重指数：体重（kg）÷ 身高（m）²；参数为体重 kg、身高 cm", en: "Body-mass index: weight (kg) ÷ height (m)²; arguments weight in kg, height in cm") { a in
            let m = try height(a, 1) / 100
            return .number(try weight(a, 0) / (m * m))
        },
        def("BSA", .clinical, [.number, .number], returns: .number, example: "ROUND(BSA({体重kg}, {身高cm}), 2)",
            zh: "体表面积（m²，Mosteller 公式）；参数为体重 kg、身高 cm", en: "Body surface area in m² (Mosteller); arguments weight in kg, height in cm") { a in
            .number((try weight(a, 0) * height(a, 1) / 3600).squareRoot())
        },
        def("EGFR", .clinical, [.number, .number, .text, .text], optional: 1, returns: .number,
            example: "ROUND(EGFR({肌酐}, {年龄}, {性别}), 0)",
            zh: "估算肾小球滤过率（mL/min/1.73m²，CKD-EPI 2021 公式，不含种族系数）；参数为血肌酐（默认 µmol/L，可写 \"mg/dL\"）、年龄（成人）、性别",
            en: "Estimated GFR in mL/min/1.73 m² (CKD-EPI 2021, race-free); arguments serum creatinine (µmol/L by default, or \"mg/dL\"), age (adults), sex") { a in
            let scr = try creatinine(a, 0, unitAt: 3), age = try adultAge(a, 1, "EGFR"), s = try sex(a, 2)
            let kappa = s == .female ? 0.7 : 0.9, alpha = s == .female ? -0.241 : -0.302
            let ratio = scr / kappa
            var gfr = 142 * pow(min(ratio, 1), alpha) * pow(max(ratio, 1), -1.200) * pow(0.9938, age)
            if s == .female { gfr *= 1.012 }
            return .number(gfr)
        },
        def("CRCL", .clinical, [.number, .number, .number, .text, .text], optional: 1, returns: .number,
            example: "ROUND(CRCL({肌酐}, {年龄}, {体重kg}, {性别}), 0)",
            zh: "肌酐清除率（mL/min，Cockcroft-Gault 公式）；参数为血肌酐（默认 µmol/L）、年龄、体重 kg、性别",
            en: "Creatinine clearance in mL/min (Cockcroft-Gault); arguments serum creatinine (µmol/L by default), age, weight in kg, sex") { a in
            let scr = try creatinine(a, 0, unitAt: 4), age = try adultAge(a, 1, "CRCL"), kg = try weight(a, 2), s = try sex(a, 3)
            var clearance = (140 - age) * kg / (72 * scr)
            if s == .female { clearance *= 0.85 }
            return .number(clearance)
        },
    ]
}
