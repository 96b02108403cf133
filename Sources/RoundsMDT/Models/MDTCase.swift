import FluentKit
import Foundation
import RoundsCore
import SQLKit

/// What kind of case is discussed.
public enum MDTType: String, Codable, Sendable, CaseIterable {
    /// 初诊恶性肿瘤: every first-diagnosis malignant case.
    case firstDiagnosisTumour = "first_diagnosis_tumour"
    case difficultCase = "difficult_case"
    case treatmentChange = "treatment_change"
    case other

    public var titleZH: String {
        switch self {
        case .firstDiagnosisTumour: "初诊肿瘤"
        case .difficultCase: "疑难病例"
        case .treatmentChange: "治疗方案调整"
        case .other: "其他"
        }
    }
    public var titleEN: String {
        switch self {
        case .firstDiagnosisTumour: "First-diagnosis tumour"
        case .difficultCase: "Difficult case"
        case .treatmentChange: "Change of treatment"
        case .other: "Other"
        }
    }
    public func title(_ locale: RoundsCore.Locale) -> String { locale == .en ? titleEN : titleZH }
}

public enum MDTStatus: String, Codable, Sendable {
    /// Requested; experts are reading and giving opinions.
    case open
    /// The responsible doctor signed the report.
    case reported
    case cancelled
}

/// An MDT consultation of one patient: the question, who is invited, the case summary (made
/// from Rounds' data, editable by the responsible doctor), the opinions, the report.
public final class MDTCase: Model, @unchecked Sendable {
    public static let schema = "mdt_cases"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "patient_id") public var patientID: String
    @OptionalField(key: "encounter_id") public var encounterID: String?
    @Field(key: "hospital_id") public var hospitalID: String
    @Field(key: "ward_id") public var wardID: String
    @Field(key: "requester_id") public var requesterID: String
    @Field(key: "requester_name") public var requesterName: String
    @Field(key: "type") public var type: MDTType
    @Field(key: "question") public var question: String
    @Field(key: "scheduled_at") public var scheduledAt: Date
    @Field(key: "status") public var status: MDTStatus
    /// The case summary, edited by the responsible doctor (plain text, sections by heading).
    @Field(key: "summary") public var summary: String
    /// The reports' attachments (pathology, imaging PDFs) the summary shows, as JSON ids.
    @Field(key: "attachment_ids") public var attachmentIDsJSON: String
    /// Departments invited (department ids, JSON): their doctors are experts of the case.
    @Field(key: "department_ids") public var departmentIDsJSON: String
    @Field(key: "revision") public var revision: Int
    @Field(key: "created_at") public var createdAt: Date
    @OptionalField(key: "reported_at") public var reportedAt: Date?
    public init() {}

    public var attachmentIDs: [String] { (try? JSONDecoder().decode([String].self, from: Data(attachmentIDsJSON.utf8))) ?? [] }
    public var departmentIDs: [String] { (try? JSONDecoder().decode([String].self, from: Data(departmentIDsJSON.utf8))) ?? [] }
}

/// A member of staff invited by name.
public final class MDTExpert: Model, @unchecked Sendable {
    public static let schema = "mdt_experts"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "case_id") public var caseID: String
    @Field(key: "staff_id") public var staffID: String
    @Field(key: "invited_at") public var invitedAt: Date
    public init() {}
}

/// An expert from a partner hospital: an expiring link and a one-time code (both kept as
/// hashes). Redeeming the code opens a guest session that sees this case and nothing else.
public final class MDTGuest: Model, @unchecked Sendable {
    public static let schema = "mdt_guests"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "case_id") public var caseID: String
    @Field(key: "name") public var name: String
    @Field(key: "institution") public var institution: String
    @Field(key: "department") public var department: String
    @Field(key: "link_hash") public var linkHash: String
    @Field(key: "code_hash") public var codeHash: String
    @Field(key: "failed_codes") public var failedCodes: Int
    @OptionalField(key: "code_used_at") public var codeUsedAt: Date?
    @OptionalField(key: "session_hash") public var sessionHash: String?
    @OptionalField(key: "csrf") public var csrf: String?
    @Field(key: "expires_at") public var expiresAt: Date
    @OptionalField(key: "revoked_at") public var revokedAt: Date?
    @Field(key: "invited_by") public var invitedBy: String
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}

/// One expert's opinion, structured.
public final class MDTOpinion: Model, @unchecked Sendable {
    public static let schema = "mdt_opinions"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "case_id") public var caseID: String
    /// A member of staff, or nil for a guest (`guestID`).
    @OptionalField(key: "staff_id") public var staffID: String?
    @OptionalField(key: "guest_id") public var guestID: String?
    @Field(key: "author_name") public var authorName: String
    @Field(key: "department") public var department: String
    @Field(key: "recommendation") public var recommendation: String
    @Field(key: "evidence") public var evidence: String
    @Field(key: "text") public var text: String
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}

/// The case's own discussion, among its experts (guests included).
public final class MDTMessage: Model, @unchecked Sendable {
    public static let schema = "mdt_messages"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "case_id") public var caseID: String
    @Field(key: "author_name") public var authorName: String
    @Field(key: "is_guest") public var isGuest: Bool
    @Field(key: "text") public var text: String
    @Field(key: "created_at") public var createdAt: Date
    public init() {}
}

/// The signed MDT report (a correction would be a later version).
public final class MDTReport: Model, @unchecked Sendable {
    public static let schema = "mdt_reports"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "case_id") public var caseID: String
    @Field(key: "version") public var version: Int
    @Field(key: "conclusion") public var conclusion: String
    @Field(key: "recommendation") public var recommendation: String
    @Field(key: "signed_by_id") public var signedByID: String
    @Field(key: "signed_by_name") public var signedByName: String
    @Field(key: "signed_at") public var signedAt: Date
    @Field(key: "document_number") public var documentNumber: String
    @Field(key: "control_id") public var controlID: String
    public init() {}
}

struct CreateMDT: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(MDTCase.schema)
            .field("id", .string, .identifier(auto: false))
            .field("patient_id", .string, .required).field("encounter_id", .string).field("hospital_id", .string, .required)
            .field("ward_id", .string, .required).field("requester_id", .string, .required).field("requester_name", .string, .required)
            .field("type", .string, .required).field("question", .string, .required).field("scheduled_at", .datetime, .required)
            .field("status", .string, .required).field("summary", .string, .required).field("attachment_ids", .string, .required)
            .field("department_ids", .string, .required).field("revision", .int, .required)
            .field("created_at", .datetime, .required).field("reported_at", .datetime).create()
        try await database.schema(MDTExpert.schema)
            .field("id", .string, .identifier(auto: false))
            .field("case_id", .string, .required).field("staff_id", .string, .required).field("invited_at", .datetime, .required)
            .unique(on: "case_id", "staff_id").create()
        try await database.schema(MDTGuest.schema)
            .field("id", .string, .identifier(auto: false))
            .field("case_id", .string, .required).field("name", .string, .required).field("institution", .string, .required)
            .field("department", .string, .required).field("link_hash", .string, .required).field("code_hash", .string, .required)
            .field("failed_codes", .int, .required).field("code_used_at", .datetime).field("session_hash", .string).field("csrf", .string)
            .field("expires_at", .datetime, .required).field("revoked_at", .datetime).field("invited_by", .string, .required)
            .field("created_at", .datetime, .required)
            .unique(on: "link_hash").create()
        try await database.schema(MDTOpinion.schema)
            .field("id", .string, .identifier(auto: false))
            .field("case_id", .string, .required).field("staff_id", .string).field("guest_id", .string).field("author_name", .string, .required)
            .field("department", .string, .required).field("recommendation", .string, .required).field("evidence", .string, .required)
            .field("text", .string, .required).field("created_at", .datetime, .required).create()
        try await database.schema(MDTMessage.schema)
            .field("id", .string, .identifier(auto: false))
            .field("case_id", .string, .required).field("author_name", .string, .required).field("is_guest", .bool, .required)
            .field("text", .string, .required).field("created_at", .datetime, .required).create()
        try await database.schema(MDTReport.schema)
            .field("id", .string, .identifier(auto: false))
            .field("case_id", .string, .required).field("version", .int, .required).field("conclusion", .string, .required)
            .field("recommendation", .string, .required).field("signed_by_id", .string, .required).field("signed_by_name", .string, .required)
            .field("signed_at", .datetime, .required).field("document_number", .string, .required).field("control_id", .string, .required)
            .unique(on: "case_id", "version").create()
        if let sql = database as? any SQLDatabase {
            try await sql.create(index: "mdt_cases_patient").on(MDTCase.schema).column("patient_id").run()
            try await sql.create(index: "mdt_cases_hospital").on(MDTCase.schema).column("hospital_id").column("created_at").run()
            try await sql.create(index: "mdt_experts_staff").on(MDTExpert.schema).column("staff_id").run()
            try await sql.create(index: "mdt_opinions_case").on(MDTOpinion.schema).column("case_id").run()
            try await sql.create(index: "mdt_messages_case").on(MDTMessage.schema).column("case_id").run()
        }
    }

    func revert(on database: any Database) async throws {
        for schema in [MDTReport.schema, MDTMessage.schema, MDTOpinion.schema, MDTGuest.schema, MDTExpert.schema, MDTCase.schema] {
            try await database.schema(schema).delete()
        }
    }
}

public enum MDTMigrations {
    public static var all: [any Migration] { [CreateMDT()] }
}
