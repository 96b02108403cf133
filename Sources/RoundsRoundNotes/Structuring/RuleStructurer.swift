import Foundation

/// A vital sign or laboratory value the structurer recognised, with its unit (for the editor's
/// "recognised values" line and the tests).
public struct Finding: Codable, Sendable, Equatable {
    public var name: String
    public var value: String
    public var unit: String
    public var section: NoteSection
    public init(name: String, value: String, unit: String, section: NoteSection) {
        self.name = name; self.value = value; self.unit = unit; self.section = section
    }
}

/// Fills a note's sections from a dictated transcript without a language model: section cue
/// words ("查体", "诊断", "计划"…, and their English words), the order doctors dictate in, and
/// vital signs and laboratory values rewritten with digits and units ("体温三十八度五" →
/// "体温 38.5℃"). What it cannot place stays where the doctor was speaking; she edits every field.
public struct RuleStructurer: Sendable {
    public struct Result: Sendable, Equatable {
        public var sections: NoteSections
        public var findings: [Finding]
    }

    public init() {}

    /// Cue words that open a section when a clause starts with them (longest first when matching).
    static let headers: [(String, NoteSection)] = {
        let table: [NoteSection: [String]] = [
            .complaint: ["主诉", "病情变化", "病情", "患者诉", "患者自诉", "患者自述", "自诉", "今日情况", "一般情况", "现病史",
                         "chief complaint", "complaint", "complains of", "history", "subjective"],
            .examination: ["查体", "体格检查", "专科查体", "专科检查", "体检", "生命体征",
                           "on examination", "examination", "exam", "physical exam", "vital signs", "objective"],
            .investigations: ["辅助检查", "检查结果", "检验结果", "化验结果", "实验室检查", "影像学检查", "化验示", "化验提示",
                              "investigations", "investigation", "labs", "lab results", "results"],
            .diagnosis: ["诊断", "初步诊断", "目前诊断", "修正诊断", "诊断考虑", "考虑诊断", "印象",
                         "diagnosis", "impression", "assessment"],
            .plan: ["诊疗计划", "治疗计划", "计划", "处理意见", "处理", "医嘱建议", "医嘱", "建议", "下一步", "治疗方案",
                    "plan", "treatment plan", "orders"],
        ]
        return table.flatMap { section, words in words.map { ($0, section) } }.sorted { $0.0.count > $1.0.count }
    }()

    /// Words that open a section only with a colon after them: "一般情况：" is a header,
    /// "一般情况可" is the complaint's text.
    static let colonHeaders: Set<String> = ["病情", "一般情况", "今日情况", "处理", "检查", "history", "results"]
    /// Complaint cues that are part of the sentence ("患者诉乏力"): they open the section and stay in its text.
    static let keptCues: Set<String> = ["患者诉", "患者自诉", "患者自述", "自诉"]

    /// Words that, without a header, say which section a clause belongs to. A clause starting
    /// with a plan verb is the plan; words of the examination or results move the note forward.
    static let planStarts = ["继续", "予以", "给予", "予", "加用", "停用", "停", "调整", "改为", "复查", "明日", "明天", "拟", "请", "监测",
                             "密切观察", "观察", "出院", "择期", "完善", "continue", "start", "stop", "give", "repeat", "recheck"]
    static let diagnosisStarts = ["考虑", "诊断为", "consider"]
    /// A clause that starts with one of these is the examination, or holds one of `examinationSigns`.
    static let examinationWords = ["体温", "脉搏", "心率", "呼吸", "血压", "血氧", "神志", "双肺", "心律", "心音", "腹软", "腹部", "压痛",
                                   "反跳痛", "水肿", "啰音", "呼吸音", "瞳孔", "切口", "伤口", "temperature", "pulse", "heart rate",
                                   "blood pressure", "respiratory rate", "saturation", "lungs", "abdomen"]
    static let examinationSigns = ["啰音", "压痛", "反跳痛", "呼吸音", "心律", "肌力", "crackles"]
    /// Imaging and tests named anywhere, or a laboratory value in the clause, make it the results.
    static let imagingWords = ["CT", "核磁", "MRI", "胸片", "B超", "彩超", "心电图", "病理", "培养", "x-ray", "scan"]
    static let investigationWords = ["血常规", "白细胞", "血红蛋白", "血小板", "血钾", "血钠", "肌酐", "尿素氮", "血糖", "C反应蛋白", "CRP",
                                     "降钙素原", "PCT", "CT", "胸片", "B超", "彩超", "核磁", "MRI", "心电图", "病理", "培养", "potassium",
                                     "sodium", "creatinine", "hemoglobin", "haemoglobin", "white cell", "x-ray", "scan"]

    public func structure(_ transcript: String) -> Result {
        var sections = NoteSections(), findings: [Finding] = []
        var current = NoteSection.complaint
        for clause in Self.clauses(transcript) {
            var text = clause.text
            if let (header, section) = Self.header(of: text) {
                current = section
                text = Self.stripHeader(header, from: text)
            }
            let (rewritten, found) = Measurements.rewrite(text, latin: Self.isLatin(transcript))
            if Self.header(of: clause.text) == nil, let implicit = Self.implicitSection(of: text, labValues: found.contains { $0.isLaboratory }),
               implicit.order > current.order {
                current = implicit
            }
            findings += found.map { Finding(name: $0.name, value: $0.value, unit: $0.unit, section: current) }
            let body = rewritten.trimmingCharacters(in: .whitespaces)
            guard !body.isEmpty, !body.allSatisfy({ Self.delimiters.contains($0) }) else { continue }
            sections[current] += body + clause.delimiter
        }
        for section in NoteSection.allCases {
            var text = sections[section].trimmingCharacters(in: .whitespacesAndNewlines)
            // A section ends as a sentence: "…湿啰音，" becomes "…湿啰音。"
            if let last = text.last, "，,、".contains(last) { text.removeLast(); text += Self.isLatin(text) ? "." : "。" }
            sections[section] = text
        }
        return Result(sections: sections, findings: findings)
    }

    /// The values in edited sections, each in its section.
    public func findings(in sections: NoteSections) -> [Finding] {
        NoteSection.allCases.flatMap { section in
            Measurements.rewrite(sections[section], latin: Self.isLatin(sections[section])).1
                .map { Finding(name: $0.name, value: $0.value, unit: $0.unit, section: section) }
        }
    }

    static let delimiters: Set<Character> = ["。", "！", "？", "；", ";", "，", ",", "\n", "!", "?", "、"]

    struct Clause { var text: String; var delimiter: String }

    /// Clauses of the transcript, each with the punctuation that ended it. A full stop in
    /// "38.5" is a decimal point, not the end of a sentence.
    static func clauses(_ transcript: String) -> [Clause] {
        var out: [Clause] = [], buffer = ""
        let chars = Array(transcript.replacingOccurrences(of: "\r", with: "\n"))
        for (i, c) in chars.enumerated() {
            let next = i + 1 < chars.count ? chars[i + 1] : " "
            let endsSentence = delimiters.contains(c) || (c == "." && (next == " " || next == "\n" || i + 1 == chars.count))
            if endsSentence {
                let delimiter: String = switch c {
                case "\n": "\n"
                case ",", "，", "、": isLatin(buffer) ? ", " : "，"
                case ".": ". "
                case ";", "；": isLatin(buffer) ? "; " : "；"
                default: String(c)
                }
                if !buffer.trimmingCharacters(in: .whitespaces).isEmpty { out.append(Clause(text: buffer, delimiter: delimiter)) }
                buffer = ""
            } else {
                buffer.append(c)
            }
        }
        if !buffer.trimmingCharacters(in: .whitespaces).isEmpty { out.append(Clause(text: buffer, delimiter: isLatin(buffer) ? "." : "。")) }
        return out.map { Clause(text: $0.text.trimmingCharacters(in: .whitespaces), delimiter: $0.delimiter) }
    }

    static func isLatin(_ text: String) -> Bool {
        !text.unicodeScalars.contains { (0x4E00...0x9FFF).contains($0.value) }
    }

    /// The header a clause starts with ("患者" before it allowed: "患者病情变化…").
    static func header(of text: String) -> (String, NoteSection)? {
        var lowered = text.lowercased()
        if lowered.hasPrefix("患者") && !lowered.hasPrefix("患者诉") && !lowered.hasPrefix("患者自") { lowered = String(lowered.dropFirst(2)) }
        for (word, section) in headers where lowered.hasPrefix(word) {
            if colonHeaders.contains(word), let after = lowered.dropFirst(word.count).first, after != "：", after != ":" { continue }
            // "Plan" opens a section; "planned" is an ordinary word.
            if isLatin(word), let after = lowered.dropFirst(word.count).first, after.isLetter { continue }
            // "处理" opens the plan, "处理后好转" is the course.
            return (word, section)
        }
        return nil
    }

    static func stripHeader(_ header: String, from text: String) -> String {
        if keptCues.contains(header) { return text }
        var rest = Substring(text)
        if rest.hasPrefix("患者"), !header.hasPrefix("患者") { rest = rest.dropFirst(2) }
        rest = rest.dropFirst(header.count)
        // Keep "诉" out of the complaint's text only when it was the header itself.
        while let c = rest.first, "：:，, 为是示".contains(c) { rest = rest.dropFirst() }
        if isLatin(header) { return rest.prefix(1).uppercased() + rest.dropFirst() }
        return String(rest)
    }

    static func implicitSection(of text: String, labValues: Bool) -> NoteSection? {
        let lowered = text.lowercased()
        if planStarts.contains(where: { lowered.hasPrefix($0) }) { return .plan }
        if diagnosisStarts.contains(where: { lowered.hasPrefix($0) }) { return .diagnosis }
        if labValues || imagingWords.contains(where: { mentions($0, in: lowered) })
            || investigationWords.contains(where: { lowered.hasPrefix($0.lowercased()) }) { return .investigations }
        // "最高体温38.5℃" in the history is not the examination: an examination clause starts with what was examined.
        if examinationWords.contains(where: { lowered.hasPrefix($0) }) || examinationSigns.contains(where: { mentions($0, in: lowered) }) {
            return .examination
        }
        return nil
    }

    /// A Chinese word anywhere; a Latin one as a whole word ("CT", not the "ct" of "doctor").
    static func mentions(_ word: String, in lowered: String) -> Bool {
        let word = word.lowercased()
        guard isLatin(word) else { return lowered.contains(word) }
        var start = lowered.startIndex
        while let range = lowered.range(of: word, range: start..<lowered.endIndex) {
            let before = range.lowerBound == lowered.startIndex ? nil : lowered[lowered.index(before: range.lowerBound)]
            let after = range.upperBound == lowered.endIndex ? nil : lowered[range.upperBound]
            if !(before?.isASCIILetter ?? false) && !(after?.isASCIILetter ?? false) { return true }
            start = range.upperBound
        }
        return false
    }
}

extension Character {
    var isASCIILetter: Bool { isASCII && isLetter }
}

extension NoteSection {
    var order: Int { NoteSection.allCases.firstIndex(of: self)! }
}
