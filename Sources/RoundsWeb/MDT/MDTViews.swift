import Fluent
import Foundation
import RoundsClinical
import RoundsCore
import RoundsDirectory
import RoundsMDT
import RoundsRoundNotes
import RoundsStore
import Vapor

/// What the MDT pages and API share: the case summary assembled from Rounds' data, and the
/// case as the page shows it (to staff and to guests alike).
enum MDTViews {
    /// The case summary: demographics, the latest results, pathology and imaging reports (their
    /// PDFs attached), nursing scores and the latest signed round note. The doctor edits it.
    static func summary(patientID: String, req: Request) async throws -> (String, [String]) {
        let context = try req.context()
        let chart = try await req.rounds.patients.chart(patientID: patientID, context: context, on: req.db)
        let p = chart.record.patient
        let t = req.rounds.catalogue.table(.zhCN)
        var lines: [String] = []
        let age = Formatting.age(birthDate: p.birthDate, now: req.rounds.configuration.clock.now()).map { "\($0)岁" } ?? ""
        lines.append("【患者】\(p.name)，\(t["gender_\(p.gender.rawValue)"] ?? "")，\(age)，病案号 \(p.mrn)" + ((p.allergies ?? "").isEmpty ? "" : "，过敏：\(p.allergies!)"))
        var seen = Set<String>(), results: [String] = []
        for r in chart.results.sorted(by: { ($0.observedAt ?? $0.createdAt) > ($1.observedAt ?? $1.createdAt) }) where seen.insert(r.name).inserted && results.count < 10 {
            results.append("\(r.name) \(ClinicalEvent.ObservationResult.shown(value: r.value, text: r.valueText))\(r.unit.map { " \($0)" } ?? "")\(AbnormalFlag.inWords(r.abnormalFlag) ?? "")")
        }
        if !results.isEmpty { lines.append("【近期检验】" + results.joined(separator: "；")) }
        var attachments: [String] = []
        for report in chart.reports.prefix(6) {
            lines.append("【\(report.title)】\(Formatting.dateTime(report.createdAt)) \(report.text)")
            attachments += report.attachmentIDs
        }
        if let assessments = try? await req.rounds.nursing.assessments(patientID: patientID, instrument: nil, context: context, on: req.db) {
            var latest: [String: Assessment] = [:]
            for a in assessments where latest[a.instrumentCode] == nil { latest[a.instrumentCode] = a }
            let instruments = try await req.rounds.nursing.instruments(on: req.db)
            let scores = latest.values.sorted { $0.instrumentCode < $1.instrumentCode }.map { a -> String in
                let i = instruments.first { $0.code == a.instrumentCode }
                return "\(i?.title.zh ?? a.instrumentCode) \(a.total)分（\(i?.bands.first { $0.key == a.band }?.label.zh ?? a.band)）"
            }
            if !scores.isEmpty { lines.append("【护理评分】" + scores.joined(separator: "；")) }
        }
        // The newest signed version only: a correction being written is not yet the record.
        if let signed = try? await req.rounds.roundNotes.latestSigned(patientID: patientID, context: context, on: req.db) {
            let s = signed.sections
            let parts = [("诊断", s.diagnosis), ("病情", s.complaint), ("计划", s.plan)].filter { !$0.1.isEmpty }.map { "\($0.0)：\($0.1)" }
            if !parts.isEmpty { lines.append("【查房记录 \(Formatting.dateTime(signed.signedAt))】" + parts.joined(separator: " ")) }
        }
        return (lines.joined(separator: "\n"), attachments)
    }

    struct Opinion: Encodable { var author: String; var department: String; var recommendation: String; var evidence: String; var text: String; var at: String; var guest: Bool }
    struct Message: Encodable { var author: String; var text: String; var at: String; var guest: Bool }
    struct Guest: Encodable { var id: String; var name: String; var institution: String; var status: String; var expires: String; var active: Bool }
    struct Attachment: Encodable { var url: String; var label: String }
    struct Report: Encodable { var conclusion: String; var recommendation: String; var signedBy: String; var signedAt: String; var documentNumber: String }
    struct CaseData: Encodable {
        var id: String; var patient: String; var mrn: String; var patientId: String; var ward: String
        var type: String; var question: String; var scheduledAt: String; var status: String; var statusCode: String
        var requester: String; var departments: String; var experts: String; var summary: String; var revision: Int
        var attachments: [Attachment]; var opinions: [Opinion]; var messages: [Message]; var guests: [Guest]
        var report: Report?; var draftRecommendation: String
        var canOpine: Bool; var canDiscuss: Bool; var canManage: Bool; var isGuest: Bool
        /// Where the forms post: /mdt/<id> for staff, /mdt-guest/case/<id> for a guest.
        var base: String; var csrf: String
        var guestName: String?
        var newInvitation: NewInvitation?
    }
    struct NewInvitation: Encodable { var link: String; var code: String; var name: String; var expires: String }

    static func caseData(_ d: MDTService.Detail, req: Request, isGuest: Bool, csrf: String, invitation: NewInvitation? = nil) async throws -> CaseData {
        let t = req.rounds.catalogue.table(req.locale)
        let ward = try await Department.find(d.mdt.wardID, on: req.db)
        let base = isGuest ? "/mdt-guest/case/\(d.mdt.id!)" : "/mdt/\(d.mdt.id!)"
        let now = req.rounds.configuration.clock.now()
        return CaseData(
            id: d.mdt.id!, patient: d.patient.name, mrn: d.patient.mrn, patientId: d.patient.id!, ward: ward?.name ?? "",
            type: d.mdt.type.title(req.locale), question: d.mdt.question, scheduledAt: Formatting.dateTime(d.mdt.scheduledAt),
            status: t["mdt_status_\(d.mdt.status.rawValue)"] ?? d.mdt.status.rawValue, statusCode: d.mdt.status.rawValue,
            requester: d.mdt.requesterName, departments: d.departments.map(\.name).joined(separator: "、"),
            experts: d.experts.map(\.displayName).joined(separator: "、"), summary: d.mdt.summary, revision: d.mdt.revision,
            attachments: d.mdt.attachmentIDs.enumerated().map { Attachment(url: "\(base)/attachments/\($1)", label: "\(t["attachment"] ?? "附件") \($0 + 1)") },
            opinions: d.opinions.map { Opinion(author: $0.authorName, department: $0.department, recommendation: $0.recommendation, evidence: $0.evidence,
                                               text: $0.text, at: Formatting.dateTime($0.createdAt), guest: $0.guestID != nil) },
            messages: d.messages.map { Message(author: $0.authorName, text: $0.text, at: Formatting.dateTime($0.createdAt), guest: $0.isGuest) },
            guests: d.guests.map { g in
                let status = g.revokedAt != nil ? "revoked" : g.expiresAt <= now ? "expired" : g.codeUsedAt != nil ? "joined" : "invited"
                return Guest(id: g.id!, name: g.name, institution: g.institution, status: t["mdt_guest_\(status)"] ?? status,
                             expires: Formatting.dateTime(g.expiresAt), active: status == "invited" || status == "joined")
            },
            report: d.report.map { Report(conclusion: $0.conclusion, recommendation: $0.recommendation, signedBy: $0.signedByName,
                                          signedAt: Formatting.dateTime($0.signedAt), documentNumber: $0.documentNumber) },
            draftRecommendation: MDTService.draftRecommendation(d.opinions),
            canOpine: d.canOpine, canDiscuss: d.canDiscuss, canManage: d.canManage && d.mdt.status == .open, isGuest: isGuest,
            base: base, csrf: csrf, guestName: isGuest ? d.opinions.first?.authorName : nil, newInvitation: invitation)
    }

    /// A stored attachment of the case, served as every untrusted file is (`ChatPages.serve`).
    static func attachment(_ mdt: MDTCase, _ attachmentID: String, req: Request) async throws -> Response {
        guard mdt.attachmentIDs.contains(attachmentID), let file = try await RoundsStore.Attachment.find(attachmentID, on: req.db) else {
            throw RoundsError.notFound("attachment", id: attachmentID)
        }
        return ChatPages.serve(file)
    }
}
