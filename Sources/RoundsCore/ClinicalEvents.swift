import Foundation

/// The payloads of clinical events in the outbox (`outbox_events.payload`, JSON). The
/// integration engine writes them; chat, alerts and automations read them. The event kind
/// (`patient.admitted`, `order.changed`, …) is stored beside the payload.
public enum ClinicalEvent {
    /// `patient.admitted`, `patient.transferred`, `patient.discharged`, `patient.updated`,
    /// `admission.cancelled`, `transfer.cancelled`, `discharge.cancelled`, `patient.merged`.
    public struct PatientMoved: Codable, Sendable {
        public var event: String
        public var mrn: String
        public var name: String
        public var wardCode: String?
        public var bed: String?
        public var fromWardCode: String?
        public var fromBed: String?
        public var attendingID: String?
        public var nurseID: String?
        public var visitNumber: String?
        public var at: Date

        public init(event: String, mrn: String, name: String, wardCode: String?, bed: String?, fromWardCode: String?, fromBed: String?,
                    attendingID: String?, nurseID: String?, visitNumber: String?, at: Date) {
            self.event = event; self.mrn = mrn; self.name = name; self.wardCode = wardCode; self.bed = bed
            self.fromWardCode = fromWardCode; self.fromBed = fromBed; self.attendingID = attendingID; self.nurseID = nurseID
            self.visitNumber = visitNumber; self.at = at
        }
    }

    /// `order.created`, `order.changed`, `order.cancelled`, `order.discontinued`.
    public struct OrderChanged: Codable, Sendable {
        public var control: String
        public var placerNumber: String
        public var code: String
        public var description: String
        public var status: String
        public var details: [String: String]
        /// For changes: field → [before, after].
        public var changes: [String: [String]]
        public var orderedBy: String?
        public var enteredBy: String?
        public var at: Date

        public init(control: String, placerNumber: String, code: String, description: String, status: String, details: [String: String],
                    changes: [String: [String]], orderedBy: String?, enteredBy: String?, at: Date) {
            self.control = control; self.placerNumber = placerNumber; self.code = code; self.description = description
            self.status = status; self.details = details; self.changes = changes; self.orderedBy = orderedBy
            self.enteredBy = enteredBy; self.at = at
        }
    }

    /// One result value; the payload of `observation.critical`, and a row of `observation.result`.
    public struct ObservationResult: Codable, Sendable {
        public var observationID: String
        public var code: String
        public var name: String
        public var value: String
        public var unit: String?
        public var referenceRange: String?
        public var flag: String?
        public var critical: Bool
        public var criticalReason: String?
        public var observedAt: Date?
        /// What identifies this result across messages (order number, test, sub-id, value): the
        /// same result sent again carries the same key, a corrected value a new one.
        public var resultKey: String?
        /// A coded result's text ("阳性" for the code POS); nil for numbers and free text.
        public var valueText: String?
        /// The lab's comments (NTE) on this result.
        public var comment: String?

        public init(observationID: String, code: String, name: String, value: String, unit: String?, referenceRange: String?,
                    flag: String?, critical: Bool, criticalReason: String?, observedAt: Date?, resultKey: String? = nil,
                    valueText: String? = nil, comment: String? = nil) {
            self.observationID = observationID; self.code = code; self.name = name; self.value = value; self.unit = unit
            self.referenceRange = referenceRange; self.flag = flag; self.critical = critical; self.criticalReason = criticalReason
            self.observedAt = observedAt; self.resultKey = resultKey; self.valueText = valueText; self.comment = comment
        }

        /// What a person reads: a coded result by its text, with the code beside it.
        public var shownValue: String { Self.shown(value: value, text: valueText) }

        /// "阳性（POS）" for a coded value with its text; the value alone otherwise.
        public static func shown(value: String, text: String?) -> String {
            guard let text, !text.isEmpty, text != value else { return value }
            return "\(text)（\(value)）"
        }
    }

    /// `observation.result`: the results of one report (OBR).
    public struct ResultsReported: Codable, Sendable {
        public var orderNumber: String?
        public var panel: String?
        public var observations: [ObservationResult]

        public init(orderNumber: String?, panel: String?, observations: [ObservationResult]) {
            self.orderNumber = orderNumber; self.panel = panel; self.observations = observations
        }
    }

    /// `report.received`: a pathology, imaging or other document.
    public struct ReportReceived: Codable, Sendable {
        public var reportID: String
        public var documentNumber: String
        public var title: String
        public var text: String
        public var attachmentID: String?
        public var author: String?
        /// Every embedded document in message order (the first is `attachmentID`); nil in events
        /// written before a report could carry more than one.
        public var attachmentIDs: [String]?
        /// The report's NTE comments.
        public var comment: String?

        public init(reportID: String, documentNumber: String, title: String, text: String, attachmentID: String?, author: String?,
                    attachmentIDs: [String]? = nil, comment: String? = nil) {
            self.reportID = reportID; self.documentNumber = documentNumber; self.title = title; self.text = text
            self.attachmentID = attachmentID; self.author = author; self.attachmentIDs = attachmentIDs; self.comment = comment
        }

        public var allAttachmentIDs: [String] { attachmentIDs ?? attachmentID.map { [$0] } ?? [] }
    }

    /// `assessment.high_risk`: a nursing assessment fell in a high-risk band.
    public struct AssessmentRecorded: Codable, Sendable {
        public var assessmentID: String
        public var instrument: String
        public var total: Int
        public var band: String
        public var assessor: String
        public var interventions: [String]
        public var at: Date

        public init(assessmentID: String, instrument: String, total: Int, band: String, assessor: String, interventions: [String], at: Date) {
            self.assessmentID = assessmentID; self.instrument = instrument; self.total = total; self.band = band
            self.assessor = assessor; self.interventions = interventions; self.at = at
        }
    }
}

extension ClinicalEvent {
    /// `round_note.signed` and `mdt.report_signed`: a doctor signed a clinical document (a
    /// ward-round note or an MDT report, or a correction of one). Carries the document as signed,
    /// so the HIS message and the group's card need no read of it.
    public struct DocumentSigned: Codable, Sendable {
        public struct Section: Codable, Sendable, Equatable {
            /// complaint, examination, investigations, diagnosis, plan.
            public var code: String
            public var title: String
            public var text: String
            public init(code: String, title: String, text: String) { self.code = code; self.title = title; self.text = text }
        }
        public var noteID: String
        public var version: Int
        /// The document number the HIS knows this version by (TXA-12), and the one it replaces.
        public var documentNumber: String
        public var replacesDocumentNumber: String?
        /// MSH-10 of the message to the HIS: the note page finds the HIS's answer by it.
        public var controlID: String
        public var title: String
        public var authorName: String
        public var authorHISID: String?
        public var signedAt: Date
        public var sections: [Section]
        /// TXA-2's code: RN (ward-round note), MDT (MDT report). Absent in events written before it: RN.
        public var documentType: String?
        /// Where Rounds shows it ("/round-notes/…").
        public var link: String?

        public var type: String { documentType ?? "RN" }
        public var path: String { link ?? "/round-notes/\(noteID)" }

        public init(noteID: String, version: Int, documentNumber: String, replacesDocumentNumber: String?, controlID: String, title: String,
                    authorName: String, authorHISID: String?, signedAt: Date, sections: [Section], documentType: String? = nil, link: String? = nil) {
            self.noteID = noteID; self.version = version; self.documentNumber = documentNumber; self.replacesDocumentNumber = replacesDocumentNumber
            self.controlID = controlID; self.title = title; self.authorName = authorName; self.authorHISID = authorHISID
            self.signedAt = signedAt; self.sections = sections; self.documentType = documentType; self.link = link
        }
    }
}

/// HL7 abnormal flags (OBX-8) as cards say them: cards are written in Chinese, the working
/// language of the hospital's groups; pages use the locale's catalogue (`flag_*`).
public enum AbnormalFlag {
    public static let chinese = ["N": "正常", "H": "偏高", "HH": "危急偏高", "L": "偏低", "LL": "危急偏低", "A": "异常", "AA": "危急异常",
                                 ">": "高于可测上限", "<": "低于可测下限"]

    /// "（危急偏高）" for HH; nothing for no flag; an unknown flag as sent.
    public static func inWords(_ flag: String?) -> String? {
        guard let flag, !flag.isEmpty else { return nil }
        return "（\(chinese[flag.uppercased()] ?? flag)）"
    }

    /// Why a value is critical, as cards say it.
    public static func reasonInChinese(_ reason: String) -> String {
        guard let parsed = CriticalReason(reason) else { return reason }
        switch parsed.kind {
        case .flag: return "检验标记为" + (chinese[parsed.value] ?? parsed.value)
        case .finding: return "报告标记为" + (chinese[parsed.value] ?? parsed.value)
        case .above: return "高于危急值上限 \(parsed.value)"
        case .below: return "低于危急值下限 \(parsed.value)"
        case .reportedAPI: return "\(parsed.value) 经接口报告"
        case .reported: return "\(parsed.value) 报告"
        }
    }
}

/// Why a value is critical, read back from the fixed English form the mapper and the reports
/// record ("abnormal flag HH", "above 6.2 mmol/L", "reported by 钱丽 (API)"), so cards and pages
/// can say it in their reader's words.
public struct CriticalReason: Sendable, Equatable {
    public enum Kind: String, Sendable { case flag, finding, above, below, reported, reportedAPI = "reported_api" }
    public var kind: Kind
    /// The flag, the limit or the reporter's name.
    public var value: String

    public init?(_ reason: String) {
        if let m = reason.wholeMatch(of: /abnormal flag (.+)/) { kind = .flag; value = String(m.1) }
        else if let m = reason.wholeMatch(of: /critical finding \((.+)\)/) { kind = .finding; value = String(m.1) }
        else if let m = reason.wholeMatch(of: /above (.+)/) { kind = .above; value = String(m.1) }
        else if let m = reason.wholeMatch(of: /below (.+)/) { kind = .below; value = String(m.1) }
        else if let m = reason.wholeMatch(of: /reported by (.+) \(API\)/) { kind = .reportedAPI; value = String(m.1) }
        else if let m = reason.wholeMatch(of: /reported by (.+)/) { kind = .reported; value = String(m.1) }
        else { return nil }
    }
}
