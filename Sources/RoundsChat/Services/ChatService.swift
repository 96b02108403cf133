import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore
import SQLKit

/// Patient groups and their messages. Clinical events from the outbox open, extend and archive
/// groups and post cards; people read, write and leave read receipts. Every read and write is
/// audited, and refused attempts too.
public struct ChatService: Sendable {
    public let clock: any RoundsClock
    public let ids: IDGenerator
    public let audit: AuditLog
    /// Wakes the realtime feeds of every process when a message or receipt is committed.
    public let notifier: ChangeNotifier
    /// Card buttons other capabilities own (run inside the press's transaction).
    public var cardActions = CardActionHandlers()
    /// Longest text message, in characters.
    public static let maximumTextLength = 4000

    public init(clock: any RoundsClock, ids: IDGenerator, audit: AuditLog, notifier: ChangeNotifier) {
        self.clock = clock
        self.ids = ids
        self.audit = audit
        self.notifier = notifier
    }

    // MARK: Clinical events → groups and cards

    /// The kinds the patient groups act on.
    public static let handledKinds = Set<EventKind>([.patientAdmitted, .patientTransferred, .patientDischarged, .admissionCancelled,
                                                     .observationResult, .reportReceived, .assessmentHighRisk, .roundNoteSigned, .mdtReportSigned]).union(EventKind.orderKinds)

    /// Acts on one outbox event (inside the dispatcher's transaction). Unknown kinds are ignored.
    public func handle(_ event: OutboxEvent, on db: any Database) async throws {
        guard let kind = event.eventKind else { return }
        switch kind {
        case .patientAdmitted:
            try await openGroup(for: event, on: db)
        case .patientTransferred:
            try await transfer(event, try event.decode(ClinicalEvent.PatientMoved.self), on: db)
        case .patientDischarged, .admissionCancelled:
            try await archive(event, on: db)
        case .orderCreated, .orderChanged, .orderCancelled, .orderDiscontinued:
            let order = try event.decode(ClinicalEvent.OrderChanged.self)
            try await postCard(Self.orderCard(kind, order, patientID: event.patientID), for: event, on: db)
        case .observationResult:
            let results = try event.decode(ClinicalEvent.ResultsReported.self)
            try await postCard(Self.resultCard(results, patientID: event.patientID), for: event, on: db)
        case .reportReceived:
            let report = try event.decode(ClinicalEvent.ReportReceived.self)
            try await postCard(Self.reportCard(report, patientID: event.patientID), for: event, on: db)
        case .assessmentHighRisk:
            let assessment = try event.decode(ClinicalEvent.AssessmentRecorded.self)
            try await postCard(Self.assessmentCard(assessment, patientID: event.patientID), for: event, on: db)
        case .roundNoteSigned, .mdtReportSigned:
            try await postCard(Self.roundNoteCard(try event.decode(ClinicalEvent.DocumentSigned.self)), for: event, on: db)
        default:
            return
        }
        try await notifier.signal(.chat, on: db)
    }

    /// Opens a group for every active stay that has none (a new installation, the demo seed).
    @discardableResult
    public func openGroupsForActiveStays(on db: any Database) async throws -> Int {
        let stays = try await Encounter.query(on: db).filter(\.$status == .active).all()
        let existing = Set(try await ChatGroup.query(on: db).all(\.$encounterID).compactMap { $0 })
        var opened = 0
        for stay in stays where !existing.contains(stay.id!) {
            try await db.transaction { tx in try await openGroup(encounterID: stay.id!, on: tx) }
            opened += 1
        }
        return opened
    }

    func openGroup(for event: OutboxEvent, on db: any Database) async throws {
        guard let encounterID = event.encounterID else { return }
        try await openGroup(encounterID: encounterID, on: db)
    }

    /// Creates the group of a new stay with its care team (idempotent per stay).
    func openGroup(encounterID: String, on db: any Database) async throws {
        guard let encounter = try await Encounter.find(encounterID, on: db),
              let patient = try await Patient.find(encounter.patientID, on: db) else { return }
        if try await ChatGroup.query(on: db).filter(\.$encounterID == encounterID).first() != nil { return }
        let previous = try await ChatGroup.query(on: db).filter(\.$patientID == patient.id!).sort(\.$id, .descending).first()
        let group = ChatGroup()
        group.id = ids.next()
        group.kind = "patient"
        group.hospitalID = encounter.hospitalID
        group.wardID = encounter.wardID
        group.patientID = patient.id
        group.encounterID = encounterID
        group.name = try await Self.groupName(patient: patient, encounter: encounter, on: db)
        group.status = "active"
        group.previousGroupID = previous?.id
        group.createdAt = clock.now()
        try await group.create(on: db)
        try await addCareTeam(of: encounter, to: group, on: db)
        let ward = try await Department.find(encounter.wardID, on: db)
        try await postSystem("\(patient.name) 入院 \(ward?.name ?? "")" + (previous == nil ? "" : "（再次入院，可查看上次住院的群）"),
                             to: group, on: db)
    }

    func transfer(_ event: OutboxEvent, _ moved: ClinicalEvent.PatientMoved, on db: any Database) async throws {
        guard let encounterID = event.encounterID, let encounter = try await Encounter.find(encounterID, on: db),
              let patient = try await Patient.find(encounter.patientID, on: db),
              let group = try await ChatGroup.query(on: db).filter(\.$encounterID == encounterID).first() else { return }
        group.wardID = encounter.wardID
        group.name = try await Self.groupName(patient: patient, encounter: encounter, on: db)
        try await group.save(on: db)
        // The new ward's team joins; the previous team stays, so the history keeps its readers.
        try await addCareTeam(of: encounter, to: group, on: db)
        let ward = try await Department.find(encounter.wardID, on: db)
        try await postSystem("转科：\(moved.fromWardCode ?? "?") \(moved.fromBed ?? "") → \(ward?.name ?? "") \(moved.bed ?? "")",
                             to: group, on: db)
    }

    func archive(_ event: OutboxEvent, on db: any Database) async throws {
        guard let encounterID = event.encounterID,
              let group = try await ChatGroup.query(on: db).filter(\.$encounterID == encounterID).first(), !group.isArchived else { return }
        try await postSystem(event.eventKind == .patientDischarged ? "出院，群已归档（只读）" : "入院已取消，群已归档（只读）",
                             to: group, on: db)
        group.status = "archived"
        group.archivedAt = clock.now()
        try await group.save(on: db)
    }

    /// Attending doctor, responsible nurse, and whom the ward's rule adds (by default its head
    /// nurses and nurses).
    func addCareTeam(of encounter: Encounter, to group: ChatGroup, on db: any Database) async throws {
        var wanted: [(String, String)] = []
        if let attending = encounter.attendingID { wanted.append((attending, "attending")) }
        if let nurse = encounter.nurseID { wanted.append((nurse, "responsible_nurse")) }
        let rule = try await Self.rule(forWard: encounter.wardID, on: db)
        let roles = try await StaffRole.query(on: db).filter(\.$departmentID == encounter.wardID).all()
        if rule.headNurses { for role in roles where role.role == .headNurse { wanted.append((role.staffID, "head_nurse")) } }
        if rule.wardNurses { for role in roles where role.role == .nurse { wanted.append((role.staffID, "ward_nurse")) } }
        if rule.wardDoctors { for role in roles where role.role == .doctor { wanted.append((role.staffID, "ward_doctor")) } }
        for extra in rule.extraStaffIds { wanted.append((extra, "added")) }
        let existing = Set(try await ChatMember.query(on: db).filter(\.$groupID == group.id!).all(\.$staffID))
        var added = existing
        for (staffID, reason) in wanted where !added.contains(staffID) {
            guard let staff = try await Staff.find(staffID, on: db), staff.isActive else { continue }
            try await insertMember(staffID, reason: reason, into: group, on: db)
            added.insert(staffID)
        }
        for botID in rule.botIds {
            // A bot revoked since the rule was saved joins no more groups.
            guard let token = try? await requireBot(botID, forHospital: group.hospitalID, field: "botIds", on: db) else { continue }
            try await insertBot(token, into: group, addedBy: "rule", context: nil, on: db)
        }
    }

    static func groupName(patient: Patient, encounter: Encounter, on db: any Database) async throws -> String {
        var bed: Bed?
        if let bedID = encounter.bedID { bed = try await Bed.find(bedID, on: db) }
        return [bed.map { "\($0.label)床" }, patient.name, patient.mrn].compactMap { $0 }.joined(separator: " · ")
    }

    func postSystem(_ text: String, to group: ChatGroup, on db: any Database) async throws {
        let message = ChatMessage()
        message.id = ids.next()
        message.groupID = group.id!
        message.kind = "system"
        message.senderName = "Rounds"
        message.text = text
        message.createdAt = clock.now()
        // System notes do not claim the event: the card or state change is what the event is for.
        try await message.create(on: db)
    }

    /// Posts a card to the patient's current group (the active one; else the latest).
    func postCard(_ card: Card, for event: OutboxEvent, on db: any Database) async throws {
        guard let patientID = event.patientID else { return }
        let groups = try await ChatGroup.query(on: db).filter(\.$patientID == patientID).sort(\.$id, .descending).all()
        guard let group = groups.first(where: { $0.encounterID == event.encounterID && event.encounterID != nil })
            ?? groups.first(where: { !$0.isArchived }) ?? groups.first else { return }
        if try await ChatMessage.query(on: db).filter(\.$sourceEventID == event.id).first() != nil { return }
        let message = ChatMessage()
        message.id = ids.next()
        message.groupID = group.id!
        message.kind = "card"
        message.senderName = "Rounds"
        message.text = card.title
        message.card = String(decoding: try JSONEncoder().encode(card), as: UTF8.self)
        message.sourceEventID = event.id
        message.createdAt = clock.now()
        try await message.create(on: db)
    }

    static let orderTitles: [EventKind: String] = [.orderCreated: "新医嘱", .orderChanged: "医嘱变更", .orderCancelled: "医嘱取消", .orderDiscontinued: "医嘱停止"]
    static let fieldNames = ["dose": "剂量", "unit": "单位", "frequency": "频次", "route": "途径", "note": "备注", "status": "状态",
                             "description": "名称", "priority": "优先级"]

    static func orderCard(_ kind: EventKind, _ order: ClinicalEvent.OrderChanged, patientID: String?) -> Card {
        var fields = [Card.Field("医嘱", "\(order.description) (\(order.placerNumber))")]
        if order.changes.isEmpty {
            for key in order.details.keys.sorted() { fields.append(.init(fieldNames[key] ?? key, order.details[key]!)) }
        } else {
            for key in order.changes.keys.sorted() {
                let change = order.changes[key]!
                fields.append(.init(fieldNames[key] ?? key, "\(change.first ?? "") → \(change.last ?? "")"))
            }
        }
        if let by = order.orderedBy { fields.append(.init("医生", by)) }
        if let by = order.enteredBy { fields.append(.init("录入", by)) }
        fields.append(.init("时间", Self.format(order.at)))
        let severity: Card.Severity = kind == .orderCreated ? .info : .warning
        return Card(title: "\(orderTitles[kind] ?? "医嘱") · \(order.description)", severity: severity, fields: fields,
                    buttons: patientID.map { [Card.Button(label: "查看医嘱", url: "/patients/\($0)#orders")] } ?? [])
    }

    static func resultCard(_ results: ClinicalEvent.ResultsReported, patientID: String?) -> Card {
        let fields = results.observations.flatMap { o in
            [Card.Field(o.name, [o.shownValue, o.unit].compactMap { $0 }.joined(separator: " ") + (AbnormalFlag.inWords(o.flag) ?? ""))]
                + (o.comment.map { [Card.Field("备注", String($0.prefix(200)), verbatim: true)] } ?? [])
        }
        let critical = results.observations.contains(where: \.critical)
        let abnormal = results.observations.contains { ($0.flag ?? "N") != "N" && !($0.flag ?? "").isEmpty }
        return Card(title: "检验结果 · \(results.panel ?? results.observations.first?.name ?? "")",
                    severity: critical ? .critical : (abnormal ? .warning : .info), fields: fields,
                    buttons: patientID.map { [Card.Button(label: "查看结果", url: "/patients/\($0)#results")] } ?? [])
    }

    static func reportCard(_ report: ClinicalEvent.ReportReceived, patientID: String?) -> Card {
        var buttons: [Card.Button] = []
        let attachments = report.allAttachmentIDs
        for (n, attachment) in attachments.enumerated() {
            buttons.append(.init(label: attachments.count > 1 ? "查看附件 \(n + 1)" : "查看附件", url: "/attachments/\(attachment)"))
        }
        if let patientID { buttons.append(.init(label: "查看报告", url: "/patients/\(patientID)#reports")) }
        return Card(title: "报告 · \(report.title)", severity: .info,
                    fields: [.init("报告号", report.documentNumber), .init("内容", String(report.text.prefix(300)))]
                        + (report.comment.map { [Card.Field("备注", String($0.prefix(300)), verbatim: true)] } ?? [])
                        + (report.author.map { [Card.Field("报告医生", $0)] } ?? []),
                    buttons: buttons)
    }

    static func assessmentCard(_ a: ClinicalEvent.AssessmentRecorded, patientID: String?) -> Card {
        Card(title: "护理评估高风险 · \(a.instrument) \(a.total)分 \(a.band)", severity: .warning,
             fields: [.init("评估人", a.assessor), .init("时间", format(a.at))]
                + (a.interventions.isEmpty ? [] : [Card.Field("护理措施", a.interventions.joined(separator: "；"))]),
             buttons: patientID.map { [Card.Button(label: "查看评估", url: "/patients/\($0)/nursing")] } ?? [])
    }

    /// A signed ward-round note or MDT report: who, which version, and the diagnosis and plan (or
    /// the MDT's recommendation) the team acts on.
    static func roundNoteCard(_ note: ClinicalEvent.DocumentSigned) -> Card {
        func excerpt(_ code: String) -> String? {
            guard let text = note.sections.first(where: { $0.code == code })?.text, !text.isEmpty else { return nil }
            return text.count > 200 ? String(text.prefix(200)) + "…" : text
        }
        let title = note.version == 1 ? "\(note.title)已签名" : "\(note.title)已更正（第 \(note.version) 版）"
        return Card(title: title, severity: .info,
                    fields: [.init("医生", note.authorName), .init("签名时间", format(note.signedAt))]
                        + (excerpt("diagnosis").map { [Card.Field("诊断", $0)] } ?? [])
                        + (excerpt("plan").map { [Card.Field("诊疗计划", $0)] } ?? [])
                        + (excerpt("recommendation").map { [Card.Field("MDT 意见", $0)] } ?? []),
                    buttons: [Card.Button(label: "查看" + (note.title.first?.isASCII == true ? " " : "") + note.title, url: note.path)])
    }

    static func format(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: ProcessInfo.processInfo.environment["ROUNDS_TIME_ZONE"] ?? "Asia/Shanghai")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: date)
    }

    // MARK: People reading and writing

    /// A group with my unread count.
    public struct GroupSummary: Sendable {
        public var group: ChatGroup
        public var unread: Int
        public var lastMessage: ChatMessage?
        /// An unread message @mentions me.
        public var mentioned: Bool = false
    }

    /// My groups, active first, newest activity first.
    /// `search` matches the group name (bed, patient name, MRN) or any message text, archived
    /// groups included.
    public func myGroups(context: RequestContext, includeArchived: Bool = true, search: String? = nil,
                         on db: any Database) async throws -> [GroupSummary] {
        let memberships = try await ChatMember.query(on: db).filter(\.$staffID == context.principal.id).all()
        guard !memberships.isEmpty else { return [] }
        var groups = try await ChatGroup.query(on: db).filter(\.$id ~~ memberships.map(\.groupID)).all()
        if !includeArchived { groups = groups.filter { !$0.isArchived } }
        if let search = search?.trimmingCharacters(in: .whitespaces), !search.isEmpty {
            let pattern = "%" + search.replacingOccurrences(of: "%", with: "").replacingOccurrences(of: "_", with: "") + "%"
            let hits = Set(try await ChatMessage.query(on: db).filter(\.$groupID ~~ groups.compactMap(\.id))
                .filter(\.$text, .custom("LIKE"), pattern).filter(\.$recalledAt == nil).all(\.$groupID))
            groups = groups.filter { $0.name.localizedCaseInsensitiveContains(search) || hits.contains($0.id!) }
        }
        var summaries: [GroupSummary] = []
        for group in groups {
            let member = memberships.first { $0.groupID == group.id }
            let unreadMessages = try await Self.waiting(in: group.id!, after: member?.lastReadMessageID, for: context.principal.id, on: db).all()
            let unread = unreadMessages.count
            let mentioned = unreadMessages.contains { Self.names($0, context.principal.id) }
            let last = try await ChatMessage.query(on: db).filter(\.$groupID == group.id!).sort(\.$id, .descending).first()
            summaries.append(GroupSummary(group: group, unread: unread, lastMessage: last, mentioned: mentioned))
        }
        try await audit.record("chat.group.list", entityType: "chat_group", entityID: nil, detail: "\(summaries.count) groups",
                               context: context, on: db)
        return summaries.sorted {
            ($0.group.isArchived ? 1 : 0, $1.lastMessage?.id ?? "") < ($1.group.isArchived ? 1 : 0, $0.lastMessage?.id ?? "")
        }
    }

    /// The group if the principal may read it: its members, and those who may see the
    /// patients of its ward. Refusals are audited.
    public func readableGroup(_ id: String, action: String, context: RequestContext, on db: any Database) async throws -> ChatGroup {
        guard let group = try await ChatGroup.find(id, on: db) else { throw RoundsError.notFound("group", id: id) }
        if try await isMember(group, context, on: db) { return group }
        if let wardID = group.wardID, let ward = try await Department.find(wardID, on: db),
           context.principal.canViewPatients(in: ward.wardRef) {
            return group
        }
        try await audit.record(action, entityType: "chat_group", entityID: id, patientID: group.patientID, hospitalID: group.hospitalID,
                               outcome: .denied, context: context, on: db)
        throw RoundsError.forbidden("this patient group is for its care team")
    }

    /// A group's page or record (patient name, bed, MRN, members): read, and audited as read.
    /// How many messages wait for me across my groups, and whether one of them names me: the
    /// navigation's badges. Counts only (no patient data), so not audited.
    public func unreadSummary(context: RequestContext, on db: any Database) async throws -> (unread: Int, mentioned: Bool) {
        guard context.principal.kind == .staff else { return (0, false) }
        let me = context.principal.id
        var unread = 0, mentioned = false
        for membership in try await ChatMember.query(on: db).filter(\.$staffID == me).all() {
            let waiting = try await Self.waiting(in: membership.groupID, after: membership.lastReadMessageID, for: me, on: db).limit(1000).all()
            unread += waiting.count
            mentioned = mentioned || waiting.contains { Self.names($0, me) }
        }
        return (unread, mentioned)
    }

    /// The messages of a group that wait for a member: after the last one read, not the
    /// member's own (cards from Rounds have no sender: they count as waiting too).
    static func waiting(in groupID: String, after lastRead: String?, for staffID: String, on db: any Database) -> QueryBuilder<ChatMessage> {
        let query = ChatMessage.query(on: db).filter(\.$groupID == groupID)
            .group(.or) { $0.filter(\.$senderID == nil).filter(\.$senderID != staffID) }
        if let lastRead { query.filter(\.$id > lastRead) }
        return query
    }

    /// Whether a message @mentions this person.
    static func names(_ message: ChatMessage, _ staffID: String) -> Bool {
        message.mentions?.split(separator: " ").contains(Substring(staffID)) == true
    }

    public func readGroup(_ id: String, context: RequestContext, on db: any Database) async throws -> ChatGroup {
        let group = try await readableGroup(id, action: "chat.group.read", context: context, on: db)
        try await audit.record("chat.group.read", entityType: "chat_group", entityID: id, patientID: group.patientID,
                               hospitalID: group.hospitalID, context: context, on: db)
        return group
    }

    func isMember(_ group: ChatGroup, _ context: RequestContext, on db: any Database) async throws -> Bool {
        guard context.principal.kind == .staff else { return false }
        return try await ChatMember.query(on: db).filter(\.$groupID == group.id!).filter(\.$staffID == context.principal.id).first() != nil
    }

    public func members(of group: ChatGroup, on db: any Database) async throws -> [(ChatMember, Staff)] {
        let members = try await ChatMember.query(on: db).filter(\.$groupID == group.id!).sort(\.$addedAt).all()
        let staff = try await Staff.query(on: db).filter(\.$id ~~ members.map(\.staffID)).all()
        let byID = Dictionary(staff.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        return members.compactMap { m in byID[m.staffID].map { (m, $0) } }
    }

    /// Messages after `after` (exclusive), oldest first: a client that reconnects asks for
    /// everything after the last id it saw, so nothing is missed and nothing repeats.
    public func messages(groupID: String, after: String?, limit: Int = 100, context: RequestContext, on db: any Database) async throws -> [ChatMessage] {
        let group = try await readableGroup(groupID, action: "chat.message.list", context: context, on: db)
        let query = ChatMessage.query(on: db).filter(\.$groupID == groupID)
        if let after { query.filter(\.$id > after) }
        let rows = try await query.sort(\.$id).limit(max(1, min(limit, 500))).all()
        try await audit.record("chat.message.list", entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                               hospitalID: group.hospitalID, detail: "\(rows.count) messages", context: context, on: db)
        return rows
    }

    /// A member writes to an active group.
    public func post(groupID: String, text: String, replyTo: String?, context: RequestContext, on db: any Database) async throws -> ChatMessage {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw RoundsError.validation("text: a message needs some text") }
        guard trimmed.count <= Self.maximumTextLength else {
            throw RoundsError.payloadTooLarge("text: at most \(Self.maximumTextLength) characters (this one has \(trimmed.count))")
        }
        guard let group = try await ChatGroup.find(groupID, on: db) else { throw RoundsError.notFound("group", id: groupID) }
        guard try await isMember(group, context, on: db) else {
            try await audit.record("chat.message.create", entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("only members of the group write in it")
        }
        guard !group.isArchived else { throw RoundsError.conflict("the group is archived (the patient was discharged); it is read-only") }
        if let replyTo {
            guard let original = try await ChatMessage.find(replyTo, on: db), original.groupID == groupID else {
                throw RoundsError.validation("replyTo: no message \(replyTo) in this group")
            }
        }
        let mentioned = try await mentions(in: trimmed, groupID: groupID, on: db)
        let created: ChatMessage = try await notifier.transaction(on: db) { tx in
            let message = ChatMessage()
            message.id = ids.next()
            message.groupID = groupID
            message.kind = "text"
            message.senderID = context.principal.id
            message.senderName = context.principal.displayName
            message.text = trimmed
            message.replyToID = replyTo
            message.createdAt = clock.now()
            message.mentions = mentioned.isEmpty ? nil : mentioned.joined(separator: " ")
            try await message.create(on: tx)
            // Writing means having read everything before.
            try await markRead(group: group, upTo: message.id!, staffID: context.principal.id, on: tx)
            try await audit.record("chat.message.create", entityType: "chat_message", entityID: message.id, patientID: group.patientID,
                                   hospitalID: group.hospitalID, context: context, on: tx)
            try await notifier.signal(.chat, on: tx)
            return message
        }
        return created
    }

    /// Records that the member has read the group up to `messageID` (inclusive).
    public func read(groupID: String, upTo messageID: String, context: RequestContext, on db: any Database) async throws -> Int {
        guard let group = try await ChatGroup.find(groupID, on: db) else { throw RoundsError.notFound("group", id: groupID) }
        guard try await isMember(group, context, on: db) else {
            try await audit.record("chat.message.read", entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("only members of the group leave read receipts")
        }
        guard let upTo = try await ChatMessage.find(messageID, on: db), upTo.groupID == groupID else {
            throw RoundsError.validation("upTo: no message \(messageID) in this group")
        }
        let count: Int = try await notifier.transaction(on: db) { tx in
            let count = try await markRead(group: group, upTo: upTo.id!, staffID: context.principal.id, on: tx)
            try await audit.record("chat.message.read", entityType: "chat_group", entityID: groupID, patientID: group.patientID,
                                   hospitalID: group.hospitalID, detail: "\(count) messages", context: context, on: tx)
            if count > 0 { try await notifier.signal(.chat, on: tx) }
            return count
        }
        return count
    }

    @discardableResult
    private func markRead(group: ChatGroup, upTo: String, staffID: String, on db: any Database) async throws -> Int {
        guard let member = try await ChatMember.query(on: db).filter(\.$groupID == group.id!).filter(\.$staffID == staffID).first() else { return 0 }
        let from = member.lastReadMessageID
        if let from, from >= upTo { return 0 }
        let query = ChatMessage.query(on: db).filter(\.$groupID == group.id!).filter(\.$id <= upTo)
        if let from { query.filter(\.$id > from) }
        let unread = try await query.all().filter { $0.senderID != staffID }
        // The same person may read from two devices at once: a receipt that exists is kept, and
        // the read mark only moves forward.
        guard let sql = db as? any SQLDatabase else { return 0 }
        for message in unread {
            try await sql.insert(into: ChatReceipt.schema)
                .columns("id", "message_id", "group_id", "staff_id", "read_at")
                .values(SQLBind(ids.next()), SQLBind(message.id!), SQLBind(group.id!), SQLBind(staffID), SQLBind(clock.now()))
                .ignoringConflicts(with: ["message_id", "staff_id"])
                .run()
        }
        try await sql.raw("""
            UPDATE chat_members SET last_read_message_id = \(bind: upTo)
            WHERE id = \(bind: member.id!) AND (last_read_message_id IS NULL OR last_read_message_id < \(bind: upTo))
            """).run()
        return unread.count
    }

    /// Who has read a message (for its sender, and for members of the group).
    public func receipts(messageID: String, context: RequestContext, on db: any Database) async throws -> [(ChatReceipt, Staff)] {
        guard let message = try await ChatMessage.find(messageID, on: db) else { throw RoundsError.notFound("message", id: messageID) }
        let group = try await readableGroup(message.groupID, action: "chat.receipt.list", context: context, on: db)
        let receipts = try await ChatReceipt.query(on: db).filter(\.$messageID == messageID).sort(\.$readAt).all()
        let staff = try await Staff.query(on: db).filter(\.$id ~~ receipts.map(\.staffID)).all()
        let byID = Dictionary(staff.map { ($0.id!, $0) }, uniquingKeysWith: { a, _ in a })
        try await audit.record("chat.receipt.list", entityType: "chat_message", entityID: messageID, patientID: group.patientID,
                               hospitalID: group.hospitalID, context: context, on: db)
        return receipts.compactMap { r in byID[r.staffID].map { (r, $0) } }
    }
}

extension ChatService {
    /// A member is typing in a group: passed on to the other members' clients, not stored.
    public func typing(groupID: String, context: RequestContext, on db: any Database) async throws {
        guard let group = try await ChatGroup.find(groupID, on: db), try await isMember(group, context, on: db), !group.isArchived else { return }
        let name = context.principal.displayName.replacingOccurrences(of: ":", with: " ")
        let wake = Wake.typing(groupID: groupID, staffID: context.principal.id, name: name)
        if let sql = db as? any SQLDatabase, sql.dialect.name == "postgresql" {
            try await notifier.notify(wake, on: db)  // every process, this one included
        } else {
            notifier.broadcastLocally(wake)
        }
    }
}

// MARK: Read models for pages

extension ChatService {
    /// Everything the group page shows, read (and audited) through the group's own checks: the
    /// group, its last 500 messages, its members, who read my messages, and the patient's header.
    public struct Conversation: Sendable {
        public var group: ChatGroup
        public var messages: [ChatMessage]
        public var members: [(ChatMember, Staff)]
        /// Names of the readers of each of my messages.
        public var readers: [String: [String]]
        public var patientName = "", mrn = "", wardName = "", bedLabel = "", doctor = ""
        public var allergies: String?
    }

    public func conversation(_ groupID: String, context: RequestContext, on db: any Database) async throws -> Conversation {
        let group = try await readGroup(groupID, context: context, on: db)
        let messages = try await self.messages(groupID: groupID, after: nil, limit: 500, context: context, on: db)
        let members = try await self.members(of: group, on: db)
        let mine = messages.filter { $0.senderID == context.principal.id }.compactMap(\.id)
        let receipts = mine.isEmpty ? [] : try await ChatReceipt.query(on: db).filter(\.$messageID ~~ mine).all()
        let names = Dictionary(members.map { ($0.1.id!, $0.1.displayName) }, uniquingKeysWith: { a, _ in a })
        var readers: [String: [String]] = [:]
        for r in receipts { readers[r.messageID, default: []].append(names[r.staffID] ?? "?") }
        var view = Conversation(group: group, messages: messages, members: members, readers: readers)
        if let patientID = group.patientID, let patient = try await Patient.find(patientID, on: db) {
            view.patientName = patient.name; view.mrn = patient.mrn; view.allergies = patient.allergies
        }
        if let encounterID = group.encounterID, let encounter = try await Encounter.find(encounterID, on: db) {
            view.wardName = try await Department.find(encounter.wardID, on: db)?.name ?? ""
            if let bedID = encounter.bedID { view.bedLabel = try await Bed.find(bedID, on: db)?.label ?? "" }
            if let attending = encounter.attendingID { view.doctor = try await Staff.find(attending, on: db)?.displayName ?? "" }
        }
        return view
    }
}

// MARK: For other modules (alerts): cards and members without an outbox event.

/// The patient groups behind the seam other capabilities use (`PatientGroupCards`).
public struct ChatGroupCards: PatientGroupCards {
    let chat: ChatService
    public init(_ chat: ChatService) { self.chat = chat }

    public func groupID(forPatient patientID: String, encounterID: String?, on db: any Database) async throws -> String? {
        try await chat.group(forPatient: patientID, encounterID: encounterID, on: db)?.id
    }

    public func postCard(_ card: Card, toGroup groupID: String, on db: any Database) async throws -> String {
        guard let group = try await ChatGroup.find(groupID, on: db) else { throw RoundsError.notFound("group", id: groupID) }
        return try await chat.postSystemCard(card, to: group, on: db).id!
    }

    public func replaceCard(messageID: String, with card: Card, on db: any Database) async throws {
        try await chat.replaceSystemCard(messageID: messageID, with: card, on: db)
    }

    public func addMembers(_ staffIDs: [String], reason: String, toGroup groupID: String, on db: any Database) async throws {
        guard let group = try await ChatGroup.find(groupID, on: db) else { return }  // the group is gone: nobody to add
        try await chat.addMembers(staffIDs, reason: reason, to: group, on: db)
    }

    public func isMember(staffID: String, ofGroup groupID: String, on db: any Database) async throws -> Bool {
        try await ChatMember.query(on: db).filter(\.$groupID == groupID).filter(\.$staffID == staffID).first() != nil
    }

    public func groupIDs(ofMember staffID: String, on db: any Database) async throws -> [String] {
        try await ChatMember.query(on: db).filter(\.$staffID == staffID).all(\.$groupID)
    }
}

extension ChatService {
    /// The outbox handler of the patient groups.
    public var eventHandler: some EventHandler {
        EventHandlerFunction("chat.groups", kinds: Self.handledKinds) { event, tx in try await handle(event, on: tx) }
    }


    /// The active group of a stay (or the patient's latest group).
    public func group(forPatient patientID: String, encounterID: String?, on db: any Database) async throws -> ChatGroup? {
        let groups = try await ChatGroup.query(on: db).filter(\.$patientID == patientID).sort(\.$id, .descending).all()
        return groups.first(where: { $0.encounterID == encounterID && encounterID != nil }) ?? groups.first(where: { !$0.isArchived }) ?? groups.first
    }

    /// Posts a card from Rounds itself (inside the caller's transaction; notifies on commit).
    public func postSystemCard(_ card: Card, to group: ChatGroup, on db: any Database) async throws -> ChatMessage {
        let message = ChatMessage()
        message.id = ids.next()
        message.groupID = group.id!
        message.kind = "card"
        message.senderName = "Rounds"
        message.text = card.title
        message.card = String(decoding: try JSONEncoder().encode(card), as: UTF8.self)
        message.createdAt = clock.now()
        try await message.create(on: db)
        try await notifier.signal(.chat, on: db)
        return message
    }

    /// Replaces a Rounds card (an alert turning green), redrawn on every open client.
    public func replaceSystemCard(messageID: String, with card: Card, on db: any Database) async throws {
        guard let message = try await ChatMessage.find(messageID, on: db) else { return }
        message.card = String(decoding: try JSONEncoder().encode(card), as: UTF8.self)
        message.text = card.title
        message.updatedAt = clock.now()
        try await message.save(on: db)
        try await notifier.signal(.messageUpdated(messageID), on: db)
    }

    /// Adds people to a group (escalation brings more of the hospital in).
    public func addMembers(_ staffIDs: [String], reason: String, to group: ChatGroup, on db: any Database) async throws {
        let existing = Set(try await ChatMember.query(on: db).filter(\.$groupID == group.id!).all(\.$staffID))
        for staffID in Set(staffIDs) where !existing.contains(staffID) {
            try await insertMember(staffID, reason: reason, into: group, on: db)
        }
    }

    /// One new member. Membership opens the patient's record to them: every one is audited.
    private func insertMember(_ staffID: String, reason: String, into group: ChatGroup, on db: any Database) async throws {
        let member = ChatMember()
        member.id = ids.next()
        member.groupID = group.id!
        member.staffID = staffID
        member.reason = reason
        member.addedAt = clock.now()
        try await member.create(on: db)
        try await audit.record("chat.member.add", entityType: "chat_group", entityID: group.id, patientID: group.patientID,
                               hospitalID: group.hospitalID, detail: "\(staffID) (\(reason))", actorKind: "system",
                               actorID: nil, actorName: "patient group", clientAddress: nil, on: db)
    }
}
