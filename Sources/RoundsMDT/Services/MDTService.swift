import Crypto
import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

/// Multidisciplinary team consultations: the responsible doctor requests one for a patient
/// (question, type, departments and experts, time) with a case summary from Rounds' data;
/// experts (staff, and guests from partner hospitals through an expiring link and a one-time
/// code) read the case, give structured opinions and discuss it; the doctor signs the report,
/// which goes to the HIS and the patient's group. Every read and write is audited, a guest's too.
public struct MDTService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let audit: AuditLog
    public let events: OutboxWriter
    /// How long a guest's link is good for, by default and at most.
    public var guestHours = 72
    public static let maximumGuestHours = 14 * 24
    /// Wrong codes before a link is closed.
    public static let maximumFailedCodes = 5

    public init(clock: any RoundsClock, ids: IDGenerator, audit: AuditLog, events: OutboxWriter) {
        self.clock = clock; self.ids = ids; self.audit = audit; self.events = events
    }

    /// Who is looking: a member of staff (through the session or a token), or a guest of one case.
    public enum Viewer: Sendable {
        case staff(RequestContext)
        case guest(MDTGuest, clientAddress: String?)

        var name: String {
            switch self {
            case .staff(let c): c.principal.displayName
            case .guest(let g, _): "\(g.name)（\(g.institution)）"
            }
        }
    }

    func record(_ action: String, _ mdt: MDTCase?, entityID: String? = nil, outcome: AuditOutcome = .success, detail: String? = nil,
                viewer: Viewer, on db: any Database) async throws {
        switch viewer {
        case .staff(let context):
            try await audit.record(action, entityType: "mdt_case", entityID: entityID ?? mdt?.id, patientID: mdt?.patientID, hospitalID: mdt?.hospitalID,
                                   outcome: outcome, detail: detail, context: context, on: db)
        case .guest(let guest, let address):
            try await audit.record(action, entityType: "mdt_case", entityID: entityID ?? mdt?.id, patientID: mdt?.patientID, hospitalID: mdt?.hospitalID,
                                   outcome: outcome, detail: detail, actorKind: "guest", actorID: guest.id, actorName: viewer.name,
                                   clientAddress: address, on: db)
        }
    }

    // MARK: Request

    public struct NewCase: Sendable {
        public var patientID: String
        public var type: MDTType
        public var question: String
        public var scheduledAt: Date
        public var departmentIDs: [String]
        public var expertIDs: [String]
        public var summary: String
        public var attachmentIDs: [String]
        public init(patientID: String, type: MDTType, question: String, scheduledAt: Date, departmentIDs: [String], expertIDs: [String],
                    summary: String, attachmentIDs: [String] = []) {
            self.patientID = patientID; self.type = type; self.question = question; self.scheduledAt = scheduledAt
            self.departmentIDs = departmentIDs; self.expertIDs = expertIDs; self.summary = summary; self.attachmentIDs = attachmentIDs
        }
    }

    /// The responsible doctor (a doctor of the patient's ward) requests an MDT.
    public func request(_ input: NewCase, context: RequestContext, on db: any Database) async throws -> MDTCase {
        guard let patient = try await Patient.find(input.patientID, on: db) else { throw RoundsError.notFound("patient", id: input.patientID) }
        let stays = try await Encounter.query(on: db).filter(\.$patientID == input.patientID).sort(\.$admittedAt, .descending).all()
        guard let stay = stays.first(where: { $0.status == .active }) ?? stays.first,
              let ward = try await Department.find(stay.wardID, on: db) else { throw RoundsError.conflict("the patient has no stay") }
        guard context.principal.canWriteRoundNotes(in: ward.wardRef) else {
            try await audit.record("mdt.request", entityType: "patient", entityID: patient.id, patientID: patient.id, hospitalID: patient.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("an MDT is requested by the patient's responsible doctors")
        }
        let question = input.question.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !question.isEmpty, question.count <= 2000 else { throw RoundsError.validation("question: 1–2000 characters") }
        guard input.summary.count <= 20_000 else { throw RoundsError.validation("summary: at most 20000 characters") }
        let experts = Array(Set(input.expertIDs.filter { !$0.isEmpty && $0 != context.principal.id }))
        let departments = Array(Set(input.departmentIDs.filter { !$0.isEmpty }))
        guard !experts.isEmpty || !departments.isEmpty else { throw RoundsError.validation("invite at least one department or expert") }
        let hospital = try await Hospital.find(patient.hospitalID, on: db)
        let groupHospitals = Set(try await Hospital.query(on: db).filter(\.$groupID == (hospital?.groupID ?? "")).all().compactMap(\.id))
        // An expert is a doctor (or consultant) of the hospital group, active.
        let foundStaff = try await Staff.query(on: db).filter(\.$id ~~ experts).filter(\.$isActive == true).all()
        let expertRoles = experts.isEmpty ? [] : try await StaffRole.query(on: db).filter(\.$staffID ~~ experts).filter(\.$role ~~ [Role.doctor, Role.consultant]).all()
        for id in experts {
            guard foundStaff.contains(where: { $0.id == id }), expertRoles.contains(where: { $0.staffID == id && groupHospitals.contains($0.hospitalID) }) else {
                throw RoundsError.validation("expertIds: \(id) is not an active doctor of the hospital group")
            }
        }
        let foundDepartments = try await Department.query(on: db).filter(\.$id ~~ departments).all()
        for id in departments {
            guard let d = foundDepartments.first(where: { $0.id == id }), groupHospitals.contains(d.hospitalID) else {
                throw RoundsError.validation("departmentIds: no department \(id) in the hospital group")
            }
        }
        let row = MDTCase()
        row.id = ids.next()
        row.patientID = patient.id!
        row.encounterID = stay.id
        row.hospitalID = patient.hospitalID
        row.wardID = ward.id!
        row.requesterID = context.principal.id
        row.requesterName = context.principal.displayName
        row.type = input.type
        row.question = question
        row.scheduledAt = input.scheduledAt
        row.status = .open
        row.summary = input.summary
        row.attachmentIDsJSON = String(decoding: try JSONEncoder().encode(input.attachmentIDs), as: UTF8.self)
        row.departmentIDsJSON = String(decoding: try JSONEncoder().encode(departments.sorted()), as: UTF8.self)
        row.revision = 1
        row.createdAt = clock.now()
        try await db.transaction { tx in
            try await row.create(on: tx)
            for staffID in experts {
                let e = MDTExpert()
                e.id = ids.next(); e.caseID = row.id!; e.staffID = staffID; e.invitedAt = clock.now()
                try await e.create(on: tx)
            }
            // The experts are told (without the patient's name: a notice is not a patient record);
            // the case waits in their MDT inbox.
            let departmentDoctors = departments.isEmpty ? [] : try await StaffRole.query(on: tx).filter(\.$departmentID ~~ departments)
                .filter(\.$role ~~ [Role.doctor, Role.consultant]).all().map(\.staffID)
            let when = Self.shortTime(input.scheduledAt)
            for staffID in Set(experts + departmentDoctors) where staffID != context.principal.id {
                let notice = StaffNotice()
                notice.id = ids.next(); notice.staffID = staffID; notice.kind = "mdt_invited"; notice.subjectID = row.id
                notice.textZH = "\(context.principal.displayName) 邀请您参加 MDT 会诊（\(input.type.titleZH)，\(when)），请在“MDT”中查看病例并发表意见"
                notice.textEN = "\(context.principal.displayName) invites you to an MDT (\(input.type.titleEN), \(when)); open MDT to read the case and give your opinion"
                notice.createdAt = clock.now()
                try await notice.create(on: tx)
            }
            try await audit.record("mdt.request", entityType: "mdt_case", entityID: row.id, patientID: patient.id, hospitalID: patient.hospitalID,
                                   detail: "\(input.type.rawValue) experts=\(experts.count) departments=\(departments.count)", context: context, on: tx)
        }
        return row
    }

    static func shortTime(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: ProcessInfo.processInfo.environment["ROUNDS_TIME_ZONE"] ?? "Asia/Shanghai")
        f.dateFormat = "MM-dd HH:mm"
        return f.string(from: date)
    }

    // MARK: Access

    public enum Standing: String, Sendable { case requester, expert, careTeam, oversight, guest }

    /// How the viewer stands to the case, or a refusal (audited).
    func standing(_ mdt: MDTCase, _ viewer: Viewer, action: String, on db: any Database) async throws -> Standing {
        switch viewer {
        case .guest(let guest, _):
            guard guest.caseID == mdt.id else {
                try await record(action, mdt, outcome: .denied, detail: "a guest of another case", viewer: viewer, on: db)
                throw RoundsError.forbidden("this invitation is for another case")
            }
            return .guest
        case .staff(let context):
            let p = context.principal
            if p.kind == .staff && p.id == mdt.requesterID { return .requester }
            if try await isExpert(p, of: mdt, on: db) { return .expert }
            if let ward = try await Department.find(mdt.wardID, on: db) {
                if p.canWriteRoundNotes(in: ward.wardRef) { return .requester }  // the patient's other responsible doctors
                if p.caresForPatients(in: ward.wardRef) { return .careTeam }
            }
            if p.seesAllPatients(ofHospital: mdt.hospitalID) { return .oversight }
            try await record(action, mdt, outcome: .denied, viewer: viewer, on: db)
            throw RoundsError.forbidden("only the case's doctors, its invited experts and the care team open an MDT case")
        }
    }

    /// The case and the viewer's standing, checked before any transaction (so a refusal's audit
    /// row is kept); `allowed` empty: any standing may.
    func access(_ caseID: String, _ viewer: Viewer, action: String, allowed: Set<Standing> = [], refusal: String, on db: any Database) async throws -> (MDTCase, Standing) {
        let mdt = try await find(caseID, on: db)
        let standing = try await standing(mdt, viewer, action: action, on: db)
        guard allowed.isEmpty || allowed.contains(standing) else {
            try await record(action, mdt, outcome: .denied, detail: standing.rawValue, viewer: viewer, on: db)
            throw RoundsError.forbidden(refusal)
        }
        return (mdt, standing)
    }

    func isExpert(_ p: Principal, of mdt: MDTCase, on db: any Database) async throws -> Bool {
        guard p.kind == .staff else { return false }
        if try await MDTExpert.query(on: db).filter(\.$caseID == mdt.id!).filter(\.$staffID == p.id).first() != nil { return true }
        let invited = Set(mdt.departmentIDs)
        return p.assignments.contains { ($0.role == .doctor || $0.role == .consultant) && invited.contains($0.departmentID) }
    }

    public func find(_ caseID: String, on db: any Database) async throws -> MDTCase {
        guard let mdt = try await MDTCase.find(caseID, on: db) else { throw RoundsError.notFound("MDT case", id: caseID) }
        return mdt
    }

    // MARK: Reading

    public struct Detail: Sendable {
        public var mdt: MDTCase
        public var patient: Patient
        public var standing: Standing
        public var experts: [Staff]
        public var departments: [Department]
        public var opinions: [MDTOpinion]
        public var messages: [MDTMessage]
        public var report: MDTReport?
        public var guests: [MDTGuest]
        public var canOpine: Bool { mdt.status == .open && (standing == .expert || standing == .guest || standing == .requester) }
        public var canDiscuss: Bool { mdt.status != .cancelled && standing != .oversight }
        public var canManage: Bool { standing == .requester }
    }

    public func detail(_ caseID: String, viewer: Viewer, on db: any Database) async throws -> Detail {
        let mdt = try await find(caseID, on: db)
        let standing = try await standing(mdt, viewer, action: "mdt.read", on: db)
        guard let patient = try await Patient.find(mdt.patientID, on: db) else { throw RoundsError.notFound("patient", id: mdt.patientID) }
        let expertIDs = try await MDTExpert.query(on: db).filter(\.$caseID == caseID).all().map(\.staffID)
        let experts = expertIDs.isEmpty ? [] : try await Staff.query(on: db).filter(\.$id ~~ expertIDs).sort(\.$displayName).all()
        let departments = mdt.departmentIDs.isEmpty ? [] : try await Department.query(on: db).filter(\.$id ~~ mdt.departmentIDs).sort(\.$name).all()
        let opinions = try await MDTOpinion.query(on: db).filter(\.$caseID == caseID).sort(\.$createdAt).all()
        let messages = try await MDTMessage.query(on: db).filter(\.$caseID == caseID).sort(\.$createdAt).all()
        let report = try await MDTReport.query(on: db).filter(\.$caseID == caseID).sort(\.$version, .descending).first()
        let guests = standing == .requester ? try await MDTGuest.query(on: db).filter(\.$caseID == caseID).sort(\.$createdAt).all() : []
        try await record("mdt.read", mdt, viewer: viewer, on: db)
        return Detail(mdt: mdt, patient: patient, standing: standing, experts: experts, departments: departments, opinions: opinions,
                      messages: messages, report: report, guests: guests)
    }

    public struct InboxItem: Sendable {
        public var mdt: MDTCase
        public var patient: Patient?
        public var standing: Standing
        public var opinions: Int
        public var mineGiven: Bool
    }

    /// My cases: those I am invited to (by name or through my department) and those I requested; open ones first.
    public func inbox(context: RequestContext, on db: any Database) async throws -> [InboxItem] {
        let p = context.principal
        guard p.kind == .staff else { throw RoundsError.forbidden() }
        let direct = try await MDTExpert.query(on: db).filter(\.$staffID == p.id).all().map(\.caseID)
        let mine = try await MDTCase.query(on: db).group(.or) { $0.filter(\.$requesterID == p.id).filter(\.$id ~~ direct) }.all()
        let departments = Set(p.assignments.filter { $0.role == .doctor || $0.role == .consultant }.map(\.departmentID))
        var cases = mine
        if !departments.isEmpty {
            let open = try await MDTCase.query(on: db).filter(\.$status == .open).all()
            for c in open where !cases.contains(where: { $0.id == c.id }) && !departments.isDisjoint(with: c.departmentIDs) { cases.append(c) }
        }
        let caseIDs = cases.compactMap(\.id)
        let opinions = caseIDs.isEmpty ? [] : try await MDTOpinion.query(on: db).filter(\.$caseID ~~ caseIDs).all()
        let patients = Dictionary(uniqueKeysWithValues: try await Patient.query(on: db).filter(\.$id ~~ cases.map(\.patientID)).all().map { ($0.id!, $0) })
        // The inbox names each case's patient: a read of each.
        for c in cases {
            try await audit.record("mdt.inbox", entityType: "mdt_case", entityID: c.id, patientID: c.patientID, hospitalID: c.hospitalID, context: context, on: db)
        }
        return cases.map { c in
            InboxItem(mdt: c, patient: patients[c.patientID], standing: c.requesterID == p.id ? .requester : .expert,
                      opinions: opinions.filter { $0.caseID == c.id }.count,
                      mineGiven: opinions.contains { $0.caseID == c.id && $0.staffID == p.id })
        }.sorted { ($0.mdt.status == .open ? 0 : 1, $0.mdt.scheduledAt) < ($1.mdt.status == .open ? 0 : 1, $1.mdt.scheduledAt) }
    }

    // MARK: Writing

    /// The responsible doctor edits the case summary (a save from an older revision is a 409).
    public func updateSummary(_ caseID: String, summary: String, revision: Int, context: RequestContext, on db: any Database) async throws -> MDTCase {
        guard summary.count <= 20_000 else { throw RoundsError.validation("summary: at most 20000 characters") }
        _ = try await access(caseID, .staff(context), action: "mdt.summary", allowed: [.requester], refusal: "the summary is the responsible doctor's", on: db)
        return try await db.transaction { tx in
            try await Self.claim(caseID, revision: revision, on: tx)
            let mdt = try await find(caseID, on: tx)
            guard mdt.status == .open else { throw RoundsError.conflict("the case is \(mdt.status.rawValue)") }
            mdt.summary = summary
            mdt.revision = revision + 1
            try await mdt.save(on: tx)
            try await record("mdt.summary", mdt, detail: "revision \(mdt.revision)", viewer: .staff(context), on: tx)
            return mdt
        }
    }

    /// One conditional UPDATE moves the case on from `revision`: two saves at once cannot both pass.
    static func claim(_ caseID: String, revision: Int, on db: any Database) async throws {
        guard let sql = db as? any SQLDatabase else { throw RoundsError.conflict("no SQL database") }
        let rows = try await sql.raw("UPDATE mdt_cases SET revision = revision + 1 WHERE id = \(bind: caseID) AND revision = \(bind: revision) RETURNING id").all()
        guard rows.isEmpty else { return }
        throw RoundsError.conflict("the summary was changed; reload it before saving")
    }

    public struct OpinionInput: Sendable {
        public var department: String
        public var recommendation: String
        public var evidence: String
        public var text: String
        public init(department: String, recommendation: String, evidence: String = "", text: String = "") {
            self.department = department; self.recommendation = recommendation; self.evidence = evidence; self.text = text
        }
    }

    /// An expert's opinion (a guest's too). One expert may write more than one (after discussion).
    public func addOpinion(_ caseID: String, _ input: OpinionInput, viewer: Viewer, on db: any Database) async throws -> MDTOpinion {
        let recommendation = input.recommendation.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !recommendation.isEmpty, recommendation.count <= 4000 else { throw RoundsError.validation("recommendation: 1–4000 characters") }
        guard input.department.count <= 100, input.evidence.count <= 4000, input.text.count <= 8000 else {
            throw RoundsError.validation("department ≤ 100, evidence ≤ 4000, text ≤ 8000 characters")
        }
        _ = try await access(caseID, viewer, action: "mdt.opinion", allowed: [.expert, .guest, .requester],
                             refusal: "opinions are given by the case's invited experts", on: db)
        return try await db.transaction { tx in
            let mdt = try await find(caseID, on: tx)
            guard mdt.status == .open else { throw RoundsError.conflict("the report is signed; the case takes no more opinions") }
            let opinion = MDTOpinion()
            opinion.id = ids.next(); opinion.caseID = caseID
            switch viewer {
            case .staff(let c): opinion.staffID = c.principal.id
            case .guest(let g, _): opinion.guestID = g.id
            }
            var department = input.department.trimmingCharacters(in: .whitespaces)
            if department.isEmpty, case .guest(let g, _) = viewer { department = g.department }
            opinion.authorName = viewer.name; opinion.department = department; opinion.recommendation = recommendation
            opinion.evidence = input.evidence.trimmingCharacters(in: .whitespacesAndNewlines); opinion.text = input.text.trimmingCharacters(in: .whitespacesAndNewlines)
            opinion.createdAt = clock.now()
            try await opinion.create(on: tx)
            try await record("mdt.opinion", mdt, entityID: caseID, detail: department, viewer: viewer, on: tx)
            return opinion
        }
    }

    /// A message in the case's own discussion.
    public func post(_ caseID: String, text: String, viewer: Viewer, on db: any Database) async throws -> MDTMessage {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty, text.count <= 4000 else { throw RoundsError.validation("text: 1–4000 characters") }
        _ = try await access(caseID, viewer, action: "mdt.message", allowed: [.requester, .expert, .careTeam, .guest],
                             refusal: "oversight reads the discussion", on: db)
        return try await db.transaction { tx in
            let mdt = try await find(caseID, on: tx)
            let message = MDTMessage()
            message.id = ids.next(); message.caseID = caseID; message.authorName = viewer.name
            if case .guest = viewer { message.isGuest = true } else { message.isGuest = false }
            message.text = text; message.createdAt = clock.now()
            try await message.create(on: tx)
            try await record("mdt.message", mdt, viewer: viewer, on: tx)
            return message
        }
    }

    // MARK: Guests

    public struct Invitation: Sendable {
        public var guest: MDTGuest
        /// The secret part of the link (shown once) and the one-time code (shown once, given by phone).
        public var linkToken: String
        public var code: String
    }

    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func secret() -> String {
        var bytes = [UInt8](repeating: 0, count: 24)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The responsible doctor invites an expert from a partner hospital.
    public func inviteGuest(_ caseID: String, name: String, institution: String, department: String, hours: Int?, context: RequestContext,
                            on db: any Database) async throws -> Invitation {
        let name = name.trimmingCharacters(in: .whitespaces), institution = institution.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 50, !institution.isEmpty, institution.count <= 100, department.count <= 100 else {
            throw RoundsError.validation("name (≤ 50) and institution (≤ 100) are required")
        }
        let lifetime = hours ?? guestHours
        guard (1...Self.maximumGuestHours).contains(lifetime) else { throw RoundsError.validation("hours: 1–\(Self.maximumGuestHours)") }
        _ = try await access(caseID, .staff(context), action: "mdt.invite_guest", allowed: [.requester], refusal: "guests are invited by the responsible doctor", on: db)
        return try await db.transaction { tx in
            let mdt = try await find(caseID, on: tx)
            guard mdt.status == .open else { throw RoundsError.conflict("the case is \(mdt.status.rawValue)") }
            let token = Self.secret(), code = String(format: "%06d", Int.random(in: 0...999_999))
            let guest = MDTGuest()
            guest.id = ids.next(); guest.caseID = caseID; guest.name = name; guest.institution = institution
            guest.department = department.trimmingCharacters(in: .whitespaces)
            guest.linkHash = Self.hash(token); guest.codeHash = Self.hash(guest.id! + code); guest.failedCodes = 0
            guest.expiresAt = clock.now().addingTimeInterval(TimeInterval(lifetime) * 3600)
            guest.invitedBy = context.principal.displayName; guest.createdAt = clock.now()
            try await guest.create(on: tx)
            try await record("mdt.invite_guest", mdt, detail: "\(name)（\(institution)） \(lifetime)h", viewer: .staff(context), on: tx)
            return Invitation(guest: guest, linkToken: token, code: code)
        }
    }

    public func revokeGuest(_ caseID: String, guestID: String, context: RequestContext, on db: any Database) async throws {
        let (mdt, _) = try await access(caseID, .staff(context), action: "mdt.revoke_guest", allowed: [.requester], refusal: "guests are withdrawn by the responsible doctor", on: db)
        try await db.transaction { tx in
            guard let guest = try await MDTGuest.find(guestID, on: tx), guest.caseID == caseID else { throw RoundsError.notFound("guest", id: guestID) }
            guest.revokedAt = clock.now(); guest.sessionHash = nil
            try await guest.save(on: tx)
            try await record("mdt.revoke_guest", mdt, detail: guest.name, viewer: .staff(context), on: tx)
        }
    }

    /// The invitation a link opens, while it can still be used.
    public func invitation(linkToken: String, on db: any Database) async throws -> MDTGuest {
        guard let guest = try await MDTGuest.query(on: db).filter(\.$linkHash == Self.hash(linkToken)).first() else {
            throw RoundsError.notFound("invitation", id: "link")
        }
        guard guest.revokedAt == nil else { throw RoundsError(code: "invitation_revoked", status: 410, zh: "邀请已被撤销", en: "The invitation was withdrawn", detail: nil) }
        guard guest.expiresAt > clock.now() else { throw RoundsError(code: "invitation_expired", status: 410, zh: "邀请已过期", en: "The invitation has expired", detail: nil) }
        return guest
    }

    /// The guest types the one-time code: a guest session for this case (its secret returned
    /// once, for the cookie). A used code, too many wrong ones, or an expired link: refused.
    public func redeem(linkToken: String, code: String, clientAddress: String?, on db: any Database) async throws -> (MDTGuest, String) {
        let guest = try await invitation(linkToken: linkToken, on: db)
        let mdt = try await MDTCase.find(guest.caseID, on: db)
        let viewer = Viewer.guest(guest, clientAddress: clientAddress)
        guard guest.codeUsedAt == nil else {
            try await record("mdt.guest_sign_in", mdt, outcome: .denied, detail: "code already used", viewer: viewer, on: db)
            throw RoundsError(code: "code_used", status: 409, zh: "验证码已使用，请向邀请医生索取新的邀请", en: "The code was already used; ask for a new invitation", detail: nil)
        }
        // Every attempt is counted before the code is compared, in one conditional UPDATE, so
        // attempts sent at once cannot get past the limit together.
        guard let sql = db as? any SQLDatabase else { throw RoundsError.conflict("no SQL database") }
        let counted = try await sql.raw("""
            UPDATE mdt_guests SET failed_codes = failed_codes + 1
            WHERE id = \(bind: guest.id!) AND failed_codes < \(bind: Self.maximumFailedCodes) AND code_used_at IS NULL RETURNING id
            """).all()
        guard !counted.isEmpty else {
            try await record("mdt.guest_sign_in", mdt, outcome: .denied, detail: "locked: too many wrong codes", viewer: viewer, on: db)
            throw RoundsError.forbidden("too many wrong codes; ask for a new invitation")
        }
        guard Self.hash(guest.id! + code.trimmingCharacters(in: .whitespaces)) == guest.codeHash else {
            try await record("mdt.guest_sign_in", mdt, outcome: .denied, detail: "wrong code", viewer: viewer, on: db)
            throw RoundsError.validation("the code is not right")
        }
        let session = Self.secret(), csrf = Self.secret(), now = clock.now()
        try await db.transaction { tx in
            // Only one redemption wins, even when two arrive at once.
            let claimed = try await MDTGuest.query(on: tx).filter(\.$id == guest.id!).filter(\.$codeUsedAt == nil).count()
            guard claimed == 1 else { throw RoundsError.conflict("the code was already used") }
            // The right code's attempt is not a failure.
            try await MDTGuest.query(on: tx).filter(\.$id == guest.id!).set(\.$codeUsedAt, to: now).set(\.$sessionHash, to: Self.hash(session))
                .set(\.$csrf, to: csrf).set(\.$failedCodes, to: max(0, guest.failedCodes)).update()
            try await record("mdt.guest_sign_in", mdt, viewer: viewer, on: tx)
        }
        guest.codeUsedAt = now; guest.sessionHash = Self.hash(session); guest.csrf = csrf
        return (guest, session)
    }

    /// The guest behind a session cookie (nil: none, expired or withdrawn).
    public func guest(session: String?, on db: any Database) async throws -> MDTGuest? {
        guard let session, !session.isEmpty,
              let guest = try await MDTGuest.query(on: db).filter(\.$sessionHash == Self.hash(session)).first(),
              guest.revokedAt == nil, guest.expiresAt > clock.now() else { return nil }
        return guest
    }

    // MARK: Report

    /// Opinions written into a first draft of the report's recommendation.
    public static func draftRecommendation(_ opinions: [MDTOpinion]) -> String {
        opinions.map { "\($0.department.isEmpty ? "" : $0.department + " ")\($0.authorName)：\($0.recommendation)" }.joined(separator: "\n")
    }

    /// The responsible doctor signs the report: kept, sent to the HIS and the patient's group.
    public func sign(_ caseID: String, conclusion: String, recommendation: String, context: RequestContext, on db: any Database) async throws -> MDTReport {
        let conclusion = conclusion.trimmingCharacters(in: .whitespacesAndNewlines), recommendation = recommendation.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !recommendation.isEmpty, recommendation.count <= 8000, conclusion.count <= 8000 else { throw RoundsError.validation("recommendation: 1–8000 characters") }
        _ = try await access(caseID, .staff(context), action: "mdt.sign", allowed: [.requester], refusal: "the report is signed by the responsible doctor", on: db)
        return try await db.transaction { tx in
            // Only one signing wins, even two at once.
            guard let sql = tx as? any SQLDatabase,
                  try await !sql.raw("UPDATE mdt_cases SET status = 'reported' WHERE id = \(bind: caseID) AND status = 'open' RETURNING id").all().isEmpty else {
                throw RoundsError.conflict("the report is already signed")
            }
            let mdt = try await find(caseID, on: tx)
            let opinions = try await MDTOpinion.query(on: tx).filter(\.$caseID == caseID).count()
            guard opinions > 0 else { throw RoundsError.conflict("no expert has given an opinion yet") }
            let report = MDTReport()
            report.id = ids.next(); report.caseID = caseID; report.version = 1; report.conclusion = conclusion; report.recommendation = recommendation
            report.signedByID = context.principal.id; report.signedByName = context.principal.displayName; report.signedAt = clock.now()
            report.documentNumber = "MDT\(caseID.replacingOccurrences(of: "-", with: "").prefix(20))-1"
            report.controlID = "MD" + report.id!.replacingOccurrences(of: "-", with: "").suffix(18)
            try await report.create(on: tx)
            mdt.status = .reported; mdt.reportedAt = report.signedAt
            try await mdt.save(on: tx)
            let signer = try await Staff.find(context.principal.id, on: tx)
            var sections: [ClinicalEvent.DocumentSigned.Section] = [.init(code: "question", title: "讨论目的", text: mdt.question)]
            if !conclusion.isEmpty { sections.append(.init(code: "conclusion", title: "讨论结论", text: conclusion)) }
            sections.append(.init(code: "recommendation", title: "MDT 诊疗建议", text: recommendation))
            let payload = ClinicalEvent.DocumentSigned(
                noteID: caseID, version: 1, documentNumber: report.documentNumber, replacesDocumentNumber: nil, controlID: report.controlID,
                title: "MDT 报告", authorName: report.signedByName, authorHISID: signer?.hl7ID, signedAt: report.signedAt, sections: sections,
                documentType: "MDT", link: "/mdt/\(caseID)")
            try await events.emit(PendingEvent(.mdtReportSigned, patientID: mdt.patientID, encounterID: mdt.encounterID, hospitalID: mdt.hospitalID,
                                               payload: payload), in: tx)
            try await record("mdt.sign", mdt, detail: "\(opinions) opinions", viewer: .staff(context), on: tx)
            return report
        }
    }

    // MARK: Statistics

    public struct Statistics: Sendable {
        public struct Row: Sendable {
            public var mdt: MDTCase; public var departments: [String]; public var opinions: Int; public var hoursToReport: Double?
        }
        public var rows: [Row]
        public var byType: [(MDTType, Int)]
        public var byDepartment: [(String, Int)]
        public var averageHoursToReport: Double?
        public var medianHoursToReport: Double?
        public var opinionsPerCase: Double?
    }

    /// Cases requested in [from, to) in the hospitals the viewer oversees (medical affairs,
    /// quality control, administrators).
    /// `export`: the rows leave Rounds as CSV (said in the audit row, with each patient).
    public func statistics(from: Date, to: Date, export: Bool, context: RequestContext, on db: any Database) async throws -> Statistics {
        let hospitals = try await Hospital.query(on: db).all().compactMap(\.id).filter { context.principal.seesAllPatients(ofHospital: $0) }
        guard !hospitals.isEmpty, context.principal.kind == .staff else {
            try await audit.record("mdt.statistics", entityType: "mdt_case", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("MDT statistics are for medical affairs, quality control and administrators")
        }
        let cases = try await MDTCase.query(on: db).filter(\.$hospitalID ~~ hospitals).filter(\.$createdAt >= from).filter(\.$createdAt < to)
            .sort(\.$createdAt).all()
        let ids = cases.compactMap(\.id)
        let opinions = ids.isEmpty ? [] : try await MDTOpinion.query(on: db).filter(\.$caseID ~~ ids).all()
        let departmentIDs = Set(cases.flatMap(\.departmentIDs))
        let names = departmentIDs.isEmpty ? [:] : Dictionary(uniqueKeysWithValues: try await Department.query(on: db).filter(\.$id ~~ Array(departmentIDs)).all().map { ($0.id!, $0.name) })
        let rows = cases.map { c in
            Statistics.Row(mdt: c, departments: c.departmentIDs.compactMap { names[$0] }.sorted(), opinions: opinions.filter { $0.caseID == c.id }.count,
                           hoursToReport: c.reportedAt.map { $0.timeIntervalSince(c.createdAt) / 3600 })
        }
        let hours = rows.compactMap(\.hoursToReport).sorted()
        var byDepartment: [String: Int] = [:]
        for row in rows { for d in row.departments { byDepartment[d, default: 0] += 1 } }
        try await audit.record(export ? "mdt.statistics.export" : "mdt.statistics", entityType: "mdt_case", entityID: nil,
                               detail: "\(cases.count) cases" + (export ? " csv" : ""), context: context, on: db)
        if export {
            for c in cases {
                try await audit.record("mdt.statistics.export", entityType: "mdt_case", entityID: c.id, patientID: c.patientID, hospitalID: c.hospitalID,
                                       detail: "csv row", context: context, on: db)
            }
        }
        return Statistics(
            rows: rows,
            byType: MDTType.allCases.map { t in (t, cases.filter { $0.type == t }.count) }.filter { $0.1 > 0 },
            byDepartment: byDepartment.sorted { ($1.value, $0.key) < ($0.value, $1.key) },
            averageHoursToReport: hours.isEmpty ? nil : hours.reduce(0, +) / Double(hours.count),
            medianHoursToReport: hours.isEmpty ? nil : (hours.count % 2 == 1 ? hours[hours.count / 2] : (hours[hours.count / 2 - 1] + hours[hours.count / 2]) / 2),
            opinionsPerCase: cases.isEmpty ? nil : Double(opinions.count) / Double(cases.count))
    }
}
