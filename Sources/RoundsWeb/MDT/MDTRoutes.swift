import Fluent
import Foundation
import RoundsCore
import RoundsMDT
import RoundsStore
import Vapor

struct MDTCaseDTO: APISchema {
    static let enums = ["status": ["open", "reported", "cancelled"], "type": MDTType.allCases.map(\.rawValue)]
    struct Opinion: Codable, Sendable { var author: String; var department: String; var recommendation: String; var evidence: String; var text: String; var guest: Bool; var at: Date }
    struct Report: Codable, Sendable { var conclusion: String; var recommendation: String; var signedBy: String; var signedAt: Date; var documentNumber: String }
    var id: String
    var patientId: String
    var type: String
    var question: String
    var scheduledAt: Date
    var status: String
    var requester: String
    var summary: String
    var revision: Int
    var departmentIds: [String]
    var experts: [String]
    var opinions: [Opinion]?
    var report: Report?

    init(_ c: MDTCase, detail: MDTService.Detail? = nil) {
        id = c.id ?? ""; patientId = c.patientID; type = c.type.rawValue; question = c.question; scheduledAt = c.scheduledAt; status = c.status.rawValue
        requester = c.requesterName; summary = c.summary; revision = c.revision; departmentIds = c.departmentIDs
        experts = detail?.experts.map(\.displayName) ?? []
        opinions = detail?.opinions.map { Opinion(author: $0.authorName, department: $0.department, recommendation: $0.recommendation, evidence: $0.evidence,
                                                  text: $0.text, guest: $0.guestID != nil, at: $0.createdAt) }
        report = detail?.report.map { Report(conclusion: $0.conclusion, recommendation: $0.recommendation, signedBy: $0.signedByName, signedAt: $0.signedAt,
                                             documentNumber: $0.documentNumber) }
    }
    static var sample: MDTCaseDTO {
        let c = MDTCase()
        c.id = "…"; c.patientID = "…"; c.type = .firstDiagnosisTumour; c.question = "右肺上叶腺癌 T2aN1M0，手术还是新辅助治疗？"
        c.scheduledAt = Date(timeIntervalSince1970: 0); c.status = .open; c.requesterName = "李明"; c.summary = "【患者】…"; c.revision = 1
        c.departmentIDsJSON = "[]"
        return MDTCaseDTO(c)
    }
}

struct NewMDTBody: APISchema {
    var type: String
    var question: String
    var scheduledAt: Date
    var departmentIds: [String]?
    var expertIds: [String]?
    /// Omitted: Rounds assembles it from the patient's data.
    var summary: String?
    static let sample = NewMDTBody(type: "first_diagnosis_tumour", question: "手术还是新辅助治疗？", scheduledAt: Date(timeIntervalSince1970: 0),
                                   departmentIds: ["…"], expertIds: ["…"], summary: nil)
}

struct MDTOpinionBody: APISchema {
    var department: String?
    var recommendation: String
    var evidence: String?
    var text: String?
    static let sample = MDTOpinionBody(department: "胸外科", recommendation: "建议先行新辅助化疗联合免疫治疗，2周期后评估手术", evidence: "NCCN 2026 NSCLC; CheckMate 816", text: nil)
}

struct MDTMessageBody: APISchema {
    var text: String
    static let sample = MDTMessageBody(text: "PET-CT 是否已做？")
}

struct MDTGuestBody: APISchema {
    var name: String
    var institution: String
    var department: String?
    /// How long the link is good for (1–336 hours; 72 by default).
    var hours: Int?
    static let sample = MDTGuestBody(name: "陈教授", institution: "省肿瘤医院", department: "放疗科", hours: 48)
}

struct MDTInvitationDTO: APISchema {
    var guestId: String
    /// The link and the one-time code, shown this once: give the code by phone.
    var link: String
    var code: String
    var expiresAt: Date
    static let sample = MDTInvitationDTO(guestId: "…", link: "/mdt-guest/…", code: "042917", expiresAt: Date(timeIntervalSince1970: 0))
}

struct MDTSignBody: APISchema {
    var conclusion: String?
    var recommendation: String
    static let sample = MDTSignBody(conclusion: "T2aN1M0 IIB 期", recommendation: "新辅助化疗联合免疫治疗 2 周期后评估手术")
}

struct MDTStatisticsDTO: APISchema {
    struct Count: Codable, Sendable { var label: String; var count: Int }
    var total: Int
    var reported: Int
    var byType: [Count]
    var byDepartment: [Count]
    var averageHoursToReport: Double?
    var medianHoursToReport: Double?
    var opinionsPerCase: Double?
    static let sample = MDTStatisticsDTO(total: 12, reported: 10, byType: [.init(label: "first_diagnosis_tumour", count: 9)],
                                         byDepartment: [.init(label: "胸外科", count: 8)], averageHoursToReport: 30.5, medianHoursToReport: 26, opinionsPerCase: 3.2)
}

struct MDTRoutes {
    let api: APIBuilder

    func register() {
        api.on(.POST, "patients", ":patientId", "mdt", summary: "Request an MDT for a patient (the responsible doctor)", tag: "mdt",
               body: NewMDTBody.self, returns: MDTCaseDTO.self, status: 201) { req -> Response in
            let body = try req.content.decode(NewMDTBody.self)
            guard let type = MDTType(rawValue: body.type) else { throw RoundsError.validation("type: one of \(MDTType.allCases.map(\.rawValue).joined(separator: ", "))") }
            let patientID = try req.parameters.require("patientId")
            let (assembled, attachments) = try await MDTViews.summary(patientID: patientID, req: req)
            let mdt = try await req.rounds.mdt.request(.init(patientID: patientID, type: type, question: body.question, scheduledAt: body.scheduledAt,
                                                             departmentIDs: body.departmentIds ?? [], expertIDs: body.expertIds ?? [],
                                                             summary: body.summary ?? assembled, attachmentIDs: attachments), context: req.context(), on: req.db)
            return try await MDTCaseDTO(mdt).encodeResponse(status: .created, for: req)
        }
        api.on(.GET, "mdt", summary: "My MDT cases: invited (by name or department) and requested", tag: "mdt", returns: MDTCaseDTO.self, array: true) { req in
            try await req.rounds.mdt.inbox(context: req.context(), on: req.db).map { MDTCaseDTO($0.mdt) }
        }
        api.on(.GET, "mdt", ":caseId", summary: "One case with its opinions and report", tag: "mdt", returns: MDTCaseDTO.self) { req in
            let d = try await req.rounds.mdt.detail(req.parameters.require("caseId"), viewer: .staff(req.context()), on: req.db)
            return MDTCaseDTO(d.mdt, detail: d)
        }
        api.on(.POST, "mdt", ":caseId", "opinions", summary: "Give an opinion (invited experts)", tag: "mdt", body: MDTOpinionBody.self,
               returns: MDTCaseDTO.self, status: 201) { req -> Response in
            let b = try req.content.decode(MDTOpinionBody.self)
            let id = try req.parameters.require("caseId")
            _ = try await req.rounds.mdt.addOpinion(id, .init(department: b.department ?? "", recommendation: b.recommendation, evidence: b.evidence ?? "",
                                                              text: b.text ?? ""), viewer: .staff(req.context()), on: req.db)
            let d = try await req.rounds.mdt.detail(id, viewer: .staff(req.context()), on: req.db)
            return try await MDTCaseDTO(d.mdt, detail: d).encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "mdt", ":caseId", "messages", summary: "Write in the case's discussion", tag: "mdt", body: MDTMessageBody.self, status: 204) { req -> HTTPStatus in
            _ = try await req.rounds.mdt.post(req.parameters.require("caseId"), text: try req.content.decode(MDTMessageBody.self).text,
                                              viewer: .staff(req.context()), on: req.db)
            return .noContent
        }
        api.on(.POST, "mdt", ":caseId", "guests", summary: "Invite an expert of a partner hospital (expiring link, one-time code)", tag: "mdt",
               body: MDTGuestBody.self, returns: MDTInvitationDTO.self, status: 201) { req -> Response in
            let b = try req.content.decode(MDTGuestBody.self)
            let i = try await req.rounds.mdt.inviteGuest(req.parameters.require("caseId"), name: b.name, institution: b.institution, department: b.department ?? "",
                                                         hours: b.hours, context: req.context(), on: req.db)
            return try await MDTInvitationDTO(guestId: i.guest.id!, link: "/mdt-guest/\(i.linkToken)", code: i.code, expiresAt: i.guest.expiresAt)
                .encodeResponse(status: .created, for: req)
        }
        api.on(.POST, "mdt", ":caseId", "sign", summary: "Sign the MDT report (the responsible doctor): to the HIS (MDM^T02) and the patient's group",
               tag: "mdt", body: MDTSignBody.self, returns: MDTCaseDTO.self) { req in
            let b = try req.content.decode(MDTSignBody.self)
            let id = try req.parameters.require("caseId")
            _ = try await req.rounds.mdt.sign(id, conclusion: b.conclusion ?? "", recommendation: b.recommendation, context: req.context(), on: req.db)
            let d = try await req.rounds.mdt.detail(id, viewer: .staff(req.context()), on: req.db)
            return MDTCaseDTO(d.mdt, detail: d)
        }
        api.on(.GET, "mdt-statistics", summary: "Cases by type and department, time from request to report, opinions per case (?from=&to=)",
               tag: "mdt", returns: MDTStatisticsDTO.self, query: ["from", "to"]) { req in
            let (from, to) = try MDTPages.range(req)
            let s = try await req.rounds.mdt.statistics(from: from, to: to, export: false, context: req.context(), on: req.db)
            return MDTStatisticsDTO(total: s.rows.count, reported: s.rows.filter { $0.mdt.status == .reported }.count,
                                    byType: s.byType.map { .init(label: $0.0.rawValue, count: $0.1) }, byDepartment: s.byDepartment.map { .init(label: $0.0, count: $0.1) },
                                    averageHoursToReport: s.averageHoursToReport, medianHoursToReport: s.medianHoursToReport, opinionsPerCase: s.opinionsPerCase)
        }
    }
}
