import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsHL7
import RoundsStore
import SQLKit

/// Channels as IT edits them (versioned, audited), a message tried against a channel without
/// writing anything, and the mapping queue: held messages grouped by what they wait for, released
/// in order once it is mapped.
public struct ChannelService: Sendable {
    public let pipeline: InboundPipeline
    public let audit: AuditLog
    public let ids: IDGenerator
    public let clock: any RoundsClock

    public init(pipeline: InboundPipeline, audit: AuditLog, ids: IDGenerator, clock: any RoundsClock) {
        self.pipeline = pipeline; self.audit = audit; self.ids = ids; self.clock = clock
    }

    /// What a person submits for a channel.
    public struct Draft: Sendable, Codable {
        public var name: String
        public var application: String
        public var facility: String
        public var hospitalID: String?
        public var enabled: Bool
        public var settings: ChannelSettings
        /// The version the edit started from: a stale save is refused (409), never merged silently.
        public var version: Int?

        public init(name: String, application: String, facility: String, hospitalID: String?, enabled: Bool = true,
                    settings: ChannelSettings = ChannelSettings(), version: Int? = nil) {
            self.name = name; self.application = application; self.facility = facility; self.hospitalID = hospitalID
            self.enabled = enabled; self.settings = settings; self.version = version
        }
    }

    // MARK: Permissions

    /// IT of a hospital manages that hospital's channels; a channel for no one hospital (told by
    /// each message's facility) is the group administrator's.
    func requireManage(_ hospitalID: String?, _ context: RequestContext, action: String, entityID: String?, on db: any Database) async throws {
        let principal = context.principal
        let allowed: Bool
        if !principal.canUseIntegration {
            allowed = false
        } else if let hospitals = principal.integrationHospitalIDs {
            allowed = hospitalID.map(hospitals.contains) ?? false
        } else {
            allowed = true
        }
        guard allowed else {
            try await audit.record(action, entityType: "hl7_channel", entityID: entityID, hospitalID: hospitalID, outcome: .denied,
                                   context: context, on: db)
            throw RoundsError.forbidden("channels are for the IT staff of the hospital they feed")
        }
    }

    func requireRead(_ context: RequestContext, action: String, on db: any Database) async throws {
        guard context.principal.canUseIntegration else {
            try await audit.record(action, entityType: "hl7_channel", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("channels are for IT, administrators and integration tokens")
        }
    }

    func visible(_ channel: HL7Channel, to principal: Principal) -> Bool {
        guard let hospitals = principal.integrationHospitalIDs else { return true }
        return channel.hospitalID.map(hospitals.contains) ?? false
    }

    // MARK: Channels

    public func list(context: RequestContext, on db: any Database) async throws -> [HL7Channel] {
        try await requireRead(context, action: "hl7.channel.list", on: db)
        return try await HL7Channel.query(on: db).sort(\.$name).all().filter { visible($0, to: context.principal) }
    }

    public func channel(id: String, context: RequestContext, on db: any Database) async throws -> HL7Channel {
        try await requireRead(context, action: "hl7.channel.read", on: db)
        guard let channel = try await HL7Channel.find(id, on: db), visible(channel, to: context.principal) else {
            throw RoundsError.notFound("channel", id: id)
        }
        return channel
    }

    public func versions(id: String, context: RequestContext, on db: any Database) async throws -> [HL7ChannelVersion] {
        let channel = try await channel(id: id, context: context, on: db)
        return try await HL7ChannelVersion.query(on: db).filter(\.$channelID == channel.id!).sort(\.$version, .descending).all()
    }

    func validate(_ draft: Draft, on db: any Database) async throws -> Draft {
        var d = draft
        d.name = d.name.trimmingCharacters(in: .whitespacesAndNewlines)
        d.application = d.application.trimmingCharacters(in: .whitespacesAndNewlines)
        d.facility = d.facility.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !d.name.isEmpty, d.name.count <= 100 else { throw RoundsError.validation("a channel needs a name (at most 100 characters)") }
        guard !d.application.isEmpty || !d.facility.isEmpty else {
            throw RoundsError.validation("a channel matches a sender by MSH-3 (application), MSH-4 (facility) or both: give at least one")
        }
        guard d.application.count <= 180, d.facility.count <= 180 else { throw RoundsError.validation("MSH-3 and MSH-4 are at most 180 characters") }
        if let id = d.hospitalID, try await Hospital.find(id, on: db) == nil { throw RoundsError.validation("no hospital \(id)") }
        var settings = d.settings
        settings.wardCodes = Dictionary(settings.wardCodes.map { ($0.key.trimmingCharacters(in: .whitespaces).uppercased(),
                                                                  $0.value.trimmingCharacters(in: .whitespaces).uppercased()) },
                                        uniquingKeysWith: { _, last in last })
        settings.messageTypes = settings.messageTypes.map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
        settings.criticalFlags = settings.criticalFlags.map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
        settings.nurseRoleCodes = settings.nurseRoleCodes.map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
        settings.attendingRoleCodes = settings.attendingRoleCodes.map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
        let problems = settings.problems()
        guard problems.isEmpty else { throw RoundsError.validation(problems.joined(separator: "; ")) }
        d.settings = settings
        return d
    }

    public func create(_ draft: Draft, context: RequestContext, on db: any Database) async throws -> HL7Channel {
        try await requireManage(draft.hospitalID, context, action: "hl7.channel.create", entityID: nil, on: db)
        let d = try await validate(draft, on: db)
        try await ensureUnique(d, except: nil, on: db)
        let channel = HL7Channel()
        channel.id = ids.next()
        channel.version = 0
        try await save(channel, d, action: "hl7.channel.create", context: context, on: db)
        return channel
    }

    public func update(id: String, _ draft: Draft, context: RequestContext, on db: any Database) async throws -> HL7Channel {
        let channel = try await self.channel(id: id, context: context, on: db)
        try await requireManage(channel.hospitalID, context, action: "hl7.channel.update", entityID: id, on: db)
        // Moving a channel to another hospital needs the right to that one too.
        if draft.hospitalID != channel.hospitalID {
            try await requireManage(draft.hospitalID, context, action: "hl7.channel.update", entityID: id, on: db)
        }
        if let version = draft.version, version != channel.version {
            throw RoundsError.conflict("the channel was changed by someone else (now version \(channel.version)); reload it")
        }
        let d = try await validate(draft, on: db)
        try await ensureUnique(d, except: id, on: db)
        try await save(channel, d, action: "hl7.channel.update", context: context, on: db)
        return channel
    }

    /// The channel whose match is exactly this MSH-3/MSH-4 (without case), other than `id`.
    private func channel(matching application: String, facility: String, except id: String? = nil, on db: any Database) async throws -> HL7Channel? {
        try await HL7Channel.query(on: db).all().first {
            $0.id != id && $0.application.caseInsensitiveCompare(application) == .orderedSame
                && $0.facility.caseInsensitiveCompare(facility) == .orderedSame
        }
    }

    private func ensureUnique(_ d: Draft, except id: String?, on db: any Database) async throws {
        if let same = try await channel(matching: d.application, facility: d.facility, except: id, on: db) { throw RoundsError.conflict("channel '\(same.name)' already matches MSH-3 '\(d.application)' and MSH-4 '\(d.facility)'") }
        if let port = d.settings.listenPort,
           let other = try await HL7Channel.query(on: db).all().first(where: { $0.id != id && $0.settings.listenPort == port }) {
            throw RoundsError.conflict("channel '\(other.name)' already listens on port \(port)")
        }
    }

    private func save(_ channel: HL7Channel, _ d: Draft, action: String, context: RequestContext, on db: any Database) async throws {
        let before = channel.version == 0 ? nil : "\(channel.name) v\(channel.version)"
        channel.name = d.name
        channel.application = d.application
        channel.facility = d.facility
        channel.hospitalID = d.hospitalID
        channel.enabled = d.enabled
        channel.settings = d.settings
        channel.version += 1
        channel.updatedAt = clock.now()
        channel.updatedBy = context.principal.displayName
        let version = HL7ChannelVersion()
        version.id = ids.next()
        version.channelID = channel.id!
        version.version = channel.version
        version.name = channel.name
        version.application = channel.application
        version.facility = channel.facility
        version.hospitalID = channel.hospitalID
        version.enabled = channel.enabled
        version.settingsJSON = channel.settingsJSON
        version.savedAt = channel.updatedAt
        version.savedBy = context.principal.displayName
        try await db.transaction { tx in
            try await channel.save(on: tx)
            try await version.create(on: tx)
            try await audit.record(action, entityType: "hl7_channel", entityID: channel.id, hospitalID: channel.hospitalID,
                                   detail: [before, "\(channel.name) v\(channel.version)"].compactMap { $0 }.joined(separator: " → "),
                                   context: context, on: tx)
        }
        pipeline.channels.invalidate()
    }

    // MARK: Trying a message

    /// What a message would do through a channel (saved, or a draft not saved yet), with nothing
    /// written: every write happens in a transaction that is rolled back.
    public func test(message bytes: [UInt8], draft: Draft?, channelID: String?, context: RequestContext,
                     on db: any Database) async throws -> InboundPipeline.DryRun {
        try await requireRead(context, action: "hl7.channel.test", on: db)
        var channel: ResolvedChannel?
        if let draft {
            let d = try await validate(draft, on: db)
            try await requireManage(d.hospitalID, context, action: "hl7.channel.test", entityID: channelID, on: db)
            channel = ResolvedChannel(id: channelID, name: d.name, hospitalID: d.hospitalID, settings: d.settings)
        } else if let channelID {
            channel = ResolvedChannel(try await self.channel(id: channelID, context: context, on: db))
        }
        let result = await pipeline.dryRun(bytes, channel: channel, on: db)
        try await audit.record("hl7.channel.test", entityType: "hl7_channel", entityID: channelID, hospitalID: channel?.hospitalID,
                               detail: "\(result.messageType) \(result.outcome)", context: context, on: db)
        return result
    }

    // MARK: The mapping queue

    /// One group of held messages: everything waiting for the same ward code, staff id or patient.
    public struct Waiting: Sendable {
        public var key: String
        /// ward | staff | patient
        public var kind: String
        public var sender: String
        public var hospitalID: String?
        /// The missing code, id or MRN.
        public var code: String
        public var count: Int
        public var oldest: Date
        public var newest: Date

        public init(key: String, kind: String, sender: String, hospitalID: String?, code: String, count: Int, oldest: Date, newest: Date) {
            self.key = key; self.kind = kind; self.sender = sender; self.hospitalID = hospitalID; self.code = code
            self.count = count; self.oldest = oldest; self.newest = newest
        }
    }

    public static func parse(key: String) -> (kind: String, sender: String, hospitalID: String?, code: String) {
        let parts = key.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "patient" where parts.count >= 3: return ("patient", "", parts[1].isEmpty ? nil : parts[1], parts[2...].joined(separator: "|"))
        case .some(let kind) where parts.count >= 4:
            return (kind, parts[1], parts[2].isEmpty ? nil : parts[2], parts[3...].joined(separator: "|"))
        default: return ("other", "", nil, key)
        }
    }

    public func queue(context: RequestContext, on db: any Database) async throws -> [Waiting] {
        guard context.principal.canUseIntegration else {
            try await audit.record("hl7.mapping_queue.read", entityType: "hl7_message", entityID: nil, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("the mapping queue is for IT, administrators and integration tokens")
        }
        guard let sql = db as? any SQLDatabase else { return [] }
        struct Row: Decodable { var waiting_for: String; var n: Int; var oldest: Date; var newest: Date }
        let rows = try await sql.select()
            .column("waiting_for").column(SQLAlias(SQLFunction("COUNT", args: SQLLiteral.all), as: SQLIdentifier("n")))
            .column(SQLAlias(SQLFunction("MIN", args: SQLColumn("received_at")), as: SQLIdentifier("oldest")))
            .column(SQLAlias(SQLFunction("MAX", args: SQLColumn("received_at")), as: SQLIdentifier("newest")))
            .from(HL7MessageRecord.schema)
            .where("status", .equal, Receipt.Outcome.held.rawValue)
            .where("waiting_for", .isNot, SQLLiteral.null)
            .groupBy("waiting_for")
            .orderBy("oldest")
            .all(decoding: Row.self)
        let hospitals = context.principal.integrationHospitalIDs
        let groups = rows.map { row -> Waiting in
            let p = Self.parse(key: row.waiting_for)
            return Waiting(key: row.waiting_for, kind: p.kind, sender: p.sender, hospitalID: p.hospitalID, code: p.code,
                           count: row.n, oldest: row.oldest, newest: row.newest)
        }.filter { g in hospitals == nil || g.hospitalID.map { hospitals!.contains($0) } ?? (context.principal.kind == .staff) }
        try await audit.record("hl7.mapping_queue.read", entityType: "hl7_message", entityID: nil, detail: "\(groups.count) groups",
                               context: context, on: db)
        return groups
    }

    /// Maps a sender's unknown ward code to a Rounds ward (in the sender's channel, made for it
    /// when there is none), then applies every message that waited for it, oldest first.
    public func mapWard(key: String, wardID: String, context: RequestContext, on db: any Database) async throws -> [Receipt] {
        let p = Self.parse(key: key)
        guard p.kind == "ward", let hospitalID = p.hospitalID else { throw RoundsError.validation("'\(key)' is not a ward code waiting in the queue") }
        try await requireManage(hospitalID, context, action: "hl7.mapping_queue.map", entityID: nil, on: db)
        guard let ward = try await Department.find(wardID, on: db), ward.kind == .ward, ward.hospitalID == hospitalID else {
            throw RoundsError.validation("choose a ward of the hospital the messages are for")
        }
        let (application, facility) = Self.split(sender: p.sender)
        if let channel = try await channel(matching: application, facility: facility, on: db) {
            var settings = channel.settings
            settings.wardCodes[p.code.uppercased()] = ward.code.uppercased()
            _ = try await update(id: channel.id!, Draft(name: channel.name, application: channel.application, facility: channel.facility,
                                                          hospitalID: channel.hospitalID, enabled: channel.enabled, settings: settings),
                                 context: context, on: db)
        } else {
            var settings = ChannelSettings()
            settings.wardCodes[p.code.uppercased()] = ward.code.uppercased()
            _ = try await create(Draft(name: p.sender, application: application, facility: facility, hospitalID: hospitalID, settings: settings),
                                 context: context, on: db)
        }
        try await audit.record("hl7.mapping_queue.map", entityType: "hl7_channel", entityID: nil, hospitalID: hospitalID,
                               detail: "\(p.sender) ward \(p.code) → \(ward.code)", context: context, on: db)
        return try await release(key: key, context: context, on: db)
    }

    /// Gives a member of staff of the messages' hospital the HIS id the sender used (the id Rounds
    /// did not know), then applies every message that waited for it, oldest first.
    public func mapStaff(key: String, staffID: String, context: RequestContext, on db: any Database) async throws -> [Receipt] {
        let p = Self.parse(key: key)
        guard p.kind == "staff", let hospitalID = p.hospitalID else { throw RoundsError.validation("'\(key)' is not a staff id waiting in the queue") }
        try await requireManage(hospitalID, context, action: "hl7.mapping_queue.map", entityID: nil, on: db)
        guard let staff = try await Staff.find(staffID, on: db),
              try await StaffRole.query(on: db).filter(\.$staffID == staffID).filter(\.$hospitalID == hospitalID).count() > 0 else {
            throw RoundsError.validation("choose a member of staff of the hospital the messages are for")
        }
        if let existing = staff.hl7ID, !existing.isEmpty, existing != p.code {
            throw RoundsError.conflict("\(staff.displayName) already has the HIS id \(existing)")
        }
        if let other = try await Staff.query(on: db).filter(\.$hl7ID == p.code).first(), other.id != staff.id {
            throw RoundsError.conflict("the HIS id \(p.code) already belongs to \(other.displayName)")
        }
        staff.hl7ID = p.code
        try await db.transaction { tx in
            try await staff.save(on: tx)
            try await audit.record("staff.update", entityType: "staff", entityID: staff.id, hospitalID: hospitalID,
                                   detail: "HIS id \(p.code) (mapping queue)", context: context, on: tx)
            try await audit.record("hl7.mapping_queue.map", entityType: "staff", entityID: staff.id, hospitalID: hospitalID,
                                   detail: "\(p.sender) staff \(p.code) → \(staff.displayName)", context: context, on: tx)
        }
        pipeline.lookups.invalidate()
        return try await release(key: key, context: context, on: db)
    }

    /// Applies the messages waiting for `key` again (after the ward, staff member or patient was
    /// added by other means).
    public func release(key: String, context: RequestContext, on db: any Database) async throws -> [Receipt] {
        let p = Self.parse(key: key)
        try await requireManage(p.hospitalID, context, action: "hl7.mapping_queue.release", entityID: nil, on: db)
        let receipts = try await pipeline.release(waitingFor: key, by: "mapping queue: \(context.principal.displayName)",
                                                  submitter: HL7Submitter(context.principal), on: db)
        try await audit.record("hl7.mapping_queue.release", entityType: "hl7_message", entityID: nil, hospitalID: p.hospitalID,
                               detail: "\(key): \(receipts.filter { $0.outcome == .accepted }.count) of \(receipts.count) applied",
                               context: context, on: db)
        return receipts
    }

    /// "HIS@ARION" → ("HIS", "ARION"); the application may itself hold an "@".
    static func split(sender: String) -> (String, String) {
        guard let at = sender.lastIndex(of: "@") else { return (sender, "") }
        return (String(sender[..<at]), String(sender[sender.index(after: at)...]))
    }
}
