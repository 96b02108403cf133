import Foundation
import RoundsCore

/// The sections of a Chinese ward-round record (查房记录), in the order the record reads.
public enum NoteSection: String, Codable, Sendable, CaseIterable {
    /// 主诉/病情变化: what the patient reports, how the condition changed since yesterday.
    case complaint
    /// 查体: vital signs and the physical examination.
    case examination
    /// 辅助检查: results and reports (Rounds pulls in the latest ones).
    case investigations
    /// 诊断.
    case diagnosis
    /// 诊疗计划/医嘱建议.
    case plan

    public var titleZH: String {
        switch self {
        case .complaint: "主诉/病情变化"
        case .examination: "查体"
        case .investigations: "辅助检查"
        case .diagnosis: "诊断"
        case .plan: "诊疗计划/医嘱建议"
        }
    }

    public var titleEN: String {
        switch self {
        case .complaint: "Complaint / change in condition"
        case .examination: "Examination"
        case .investigations: "Investigations"
        case .diagnosis: "Diagnosis"
        case .plan: "Plan / suggested orders"
        }
    }

    public func title(_ locale: RoundsCore.Locale) -> String { locale == .en ? titleEN : titleZH }
}

/// A note's text, section by section. Every section is present (empty when nothing was said).
public struct NoteSections: Codable, Sendable, Equatable {
    public var complaint: String
    public var examination: String
    public var investigations: String
    public var diagnosis: String
    public var plan: String

    public init(complaint: String = "", examination: String = "", investigations: String = "", diagnosis: String = "", plan: String = "") {
        self.complaint = complaint; self.examination = examination; self.investigations = investigations
        self.diagnosis = diagnosis; self.plan = plan
    }

    public subscript(_ section: NoteSection) -> String {
        get {
            switch section {
            case .complaint: complaint
            case .examination: examination
            case .investigations: investigations
            case .diagnosis: diagnosis
            case .plan: plan
            }
        }
        set {
            switch section {
            case .complaint: complaint = newValue
            case .examination: examination = newValue
            case .investigations: investigations = newValue
            case .diagnosis: diagnosis = newValue
            case .plan: plan = newValue
            }
        }
    }

    public var isEmpty: Bool { NoteSection.allCases.allSatisfy { self[$0].trimmingCharacters(in: .whitespacesAndNewlines).isEmpty } }

    /// The longest a section may be (a ward-round note, not a discharge summary).
    public static let maximumSectionLength = 8000

    /// Trimmed, and refused (naming the section) when too long.
    public func validated() throws -> NoteSections {
        var copy = self
        for section in NoteSection.allCases {
            let text = self[section].trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.count <= Self.maximumSectionLength else {
                throw RoundsError.validation("\(section.rawValue): at most \(Self.maximumSectionLength) characters")
            }
            copy[section] = text
        }
        return copy
    }
}
