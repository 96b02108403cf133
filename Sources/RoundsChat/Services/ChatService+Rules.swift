import FluentKit
import Foundation
import RoundsCore
import RoundsDirectory
import RoundsStore

/// Who joins a ward's patient groups besides the attending doctor and the responsible nurse.
/// The head nurse sets it per ward. Until shift rosters exist, "ward nurses" means every nurse
/// with a role on the ward (the on-duty subset comes with the roster).
public final class WardGroupRule: Model, @unchecked Sendable {
    public static let schema = "chat_ward_rules"
    /// The ward's id.
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "head_nurses") public var headNurses: Bool
    @Field(key: "ward_nurses") public var wardNurses: Bool
    @Field(key: "ward_doctors") public var wardDoctors: Bool
    /// Always added (a pharmacist, a dietitian): staff ids, space-separated.
    @Field(key: "extra_staff") public var extraStaff: String
    /// Bots (API token ids) that join every new group of the ward, space-separated.
    @Field(key: "bots") public var bots: String
    @Field(key: "updated_by") public var updatedBy: String
    @Field(key: "updated_at") public var updatedAt: Date

    public init() {}

    public var extraStaffIDs: [String] { extraStaff.split(separator: " ").map(String.init) }
    public var botIDs: [String] { bots.split(separator: " ").map(String.init) }
}

struct CreateWardGroupRules: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(WardGroupRule.schema)
            .field("id", .string, .identifier(auto: false))
            .field("head_nurses", .bool, .required)
            .field("ward_nurses", .bool, .required)
            .field("ward_doctors", .bool, .required)
            .field("extra_staff", .string, .required)
            .field("updated_by", .string, .required)
            .field("updated_at", .datetime, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(WardGroupRule.schema).delete()
    }
}

extension ChatService {
    public struct GroupRule: Sendable, Codable, Equatable {
        public var headNurses: Bool
        public var wardNurses: Bool
        public var wardDoctors: Bool
        public var extraStaffIds: [String]
        /// Bots (their token ids) that join every new group, e.g. the pathology department's.
        public var botIds: [String]

        public init(headNurses: Bool, wardNurses: Bool, wardDoctors: Bool, extraStaffIds: [String], botIds: [String] = []) {
            self.headNurses = headNurses; self.wardNurses = wardNurses; self.wardDoctors = wardDoctors
            self.extraStaffIds = extraStaffIds; self.botIds = botIds
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(headNurses: try c.decode(Bool.self, forKey: .headNurses), wardNurses: try c.decode(Bool.self, forKey: .wardNurses),
                      wardDoctors: try c.decode(Bool.self, forKey: .wardDoctors), extraStaffIds: try c.decode([String].self, forKey: .extraStaffIds),
                      // Written before bots could join by rule: none.
                      botIds: try c.decodeIfPresent([String].self, forKey: .botIds) ?? [])
        }

        /// Without a saved rule: head nurses and ward nurses join.
        public static let standard = GroupRule(headNurses: true, wardNurses: true, wardDoctors: false, extraStaffIds: [])
    }

    static func rule(forWard wardID: String, on db: any Database) async throws -> GroupRule {
        guard let saved = try await WardGroupRule.find(wardID, on: db) else { return .standard }
        return GroupRule(headNurses: saved.headNurses, wardNurses: saved.wardNurses, wardDoctors: saved.wardDoctors,
                         extraStaffIds: saved.extraStaffIDs, botIds: saved.botIDs)
    }

    public func groupRule(wardID: String, context: RequestContext, on db: any Database) async throws -> GroupRule {
        _ = try await wardForRules(wardID, write: false, context: context, on: db)
        return try await Self.rule(forWard: wardID, on: db)
    }

    /// What the rule page shows: the rule (read permission checked and refusals audited by
    /// `groupRule`), the ward, who may be named (staff with a role in its hospital, its bots), and
    /// whether the reader may change it.
    public struct RuleEditor: Sendable {
        public var rule: GroupRule
        public var ward: Department
        public var staff: [Staff]
        public var bots: [APIToken]
        public var canEdit: Bool
    }

    public func ruleEditor(wardID: String, context: RequestContext, on db: any Database) async throws -> RuleEditor {
        let rule = try await groupRule(wardID: wardID, context: context, on: db)
        guard let ward = try await Department.find(wardID, on: db) else { throw RoundsError.notFound("ward", id: wardID) }
        let staffIDs = Set(try await StaffRole.query(on: db).filter(\.$hospitalID == ward.hospitalID).all(\.$staffID))
        let staff = staffIDs.isEmpty ? [] : try await Staff.query(on: db).filter(\.$id ~~ staffIDs).sort(\.$displayName).all()
        let bots = try await APIToken.query(on: db).filter(\.$revokedAt == nil).all()
            .filter { $0.scopes.contains(TokenScope.bot.rawValue) && ($0.hospitalID == nil || $0.hospitalID == ward.hospitalID) }
        return RuleEditor(rule: rule, ward: ward, staff: staff, bots: bots, canEdit: context.principal.canEditGroupRules(in: ward.wardRef))
    }

    /// The ward's head nurse (or an administrator of its hospital) sets who joins new groups.
    public func setGroupRule(wardID: String, _ rule: GroupRule, context: RequestContext, on db: any Database) async throws -> GroupRule {
        let ward = try await wardForRules(wardID, write: true, context: context, on: db)
        let extras = Array(Set(rule.extraStaffIds)).sorted()
        guard extras.count <= 20 else { throw RoundsError.validation("extraStaffIds: at most 20") }
        if !extras.isEmpty {
            // Only people who work in the ward's hospital join its patients' groups.
            let active = Set(try await Staff.query(on: db).filter(\.$id ~~ extras).filter(\.$isActive == true).all(\.$id))
            let ofHospital = Set(try await StaffRole.query(on: db).filter(\.$staffID ~~ extras).filter(\.$hospitalID == ward.hospitalID).all(\.$staffID))
            guard active.count == extras.count else { throw RoundsError.validation("extraStaffIds: every id must be an active member of staff") }
            guard ofHospital.count == extras.count else {
                throw RoundsError.validation("extraStaffIds: every person must hold a role in the ward's hospital")
            }
        }
        let bots = Array(Set(rule.botIds)).sorted()
        guard bots.count <= 10 else { throw RoundsError.validation("botIds: at most 10") }
        for botID in bots { try await requireBot(botID, forHospital: ward.hospitalID, field: "botIds", on: db) }
        let saved = try await WardGroupRule.find(wardID, on: db) ?? WardGroupRule()
        saved.id = wardID
        saved.headNurses = rule.headNurses
        saved.wardNurses = rule.wardNurses
        saved.wardDoctors = rule.wardDoctors
        saved.extraStaff = extras.joined(separator: " ")
        saved.bots = bots.joined(separator: " ")
        saved.updatedBy = context.principal.id
        saved.updatedAt = clock.now()
        try await db.transaction { tx in
            try await saved.save(on: tx)
            try await audit.record("chat.rule.update", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                                   detail: "head nurses \(rule.headNurses), nurses \(rule.wardNurses), doctors \(rule.wardDoctors), +\(extras.count), bots \(bots.joined(separator: ","))",
                                   context: context, on: tx)
        }
        return GroupRule(headNurses: rule.headNurses, wardNurses: rule.wardNurses, wardDoctors: rule.wardDoctors, extraStaffIds: extras, botIds: bots)
    }

    private func wardForRules(_ wardID: String, write: Bool, context: RequestContext, on db: any Database) async throws -> Department {
        guard let ward = try await Department.find(wardID, on: db), ward.kind == .ward else { throw RoundsError.notFound("ward", id: wardID) }
        let p = context.principal
        let allowed = p.canEditGroupRules(in: ward.wardRef)
            || (!write && (p.canManageOrganisation(hospitalID: ward.hospitalID) || p.canViewPatients(in: ward.wardRef)))
        guard allowed else {
            try await audit.record(write ? "chat.rule.update" : "chat.rule.read", entityType: "ward", entityID: wardID, hospitalID: ward.hospitalID,
                                   outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("the group rules of a ward are set by its head nurse")
        }
        return ward
    }
}
