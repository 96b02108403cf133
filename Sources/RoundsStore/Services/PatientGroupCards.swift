import FluentKit
import RoundsCore

/// The patient groups as other capabilities see them (critical values, later tables and
/// automations): post or replace a card in a patient's group, bring people in, ask who is on
/// the care team. The patient groups implement it; nobody else touches their tables. Every
/// call runs inside the caller's transaction and wakes readers once it commits.
public protocol PatientGroupCards: Sendable {
    /// The group of a stay (or the patient's open, else latest, group); nil when there is none.
    func groupID(forPatient patientID: String, encounterID: String?, on db: any Database) async throws -> String?
    /// Posts a card from Rounds itself; returns the message id (to replace the card later).
    func postCard(_ card: Card, toGroup groupID: String, on db: any Database) async throws -> String
    /// Redraws a card posted earlier (an alert turning green) on every open client.
    func replaceCard(messageID: String, with card: Card, on db: any Database) async throws
    /// Adds people to a group (each addition audited), with why.
    func addMembers(_ staffIDs: [String], reason: String, toGroup groupID: String, on db: any Database) async throws
    /// Is this person a member of the group (the care team as the group knows it)?
    func isMember(staffID: String, ofGroup groupID: String, on db: any Database) async throws -> Bool
    /// The groups a person belongs to.
    func groupIDs(ofMember staffID: String, on db: any Database) async throws -> [String]
}

/// A press of an action button on a card, handed to the capability that owns the action. It
/// runs inside the transaction that records the press: throwing refuses the press and nothing
/// of it is kept.
public struct CardActionPress: Sendable {
    public var messageID: String
    public var groupID: String
    public var patientID: String?
    public var action: String
    public var context: RequestContext

    public init(messageID: String, groupID: String, patientID: String?, action: String, context: RequestContext) {
        self.messageID = messageID; self.groupID = groupID; self.patientID = patientID; self.action = action; self.context = context
    }
}

public protocol CardActionHandler: Sendable {
    /// The action names it owns ("acknowledge_alert").
    var actions: Set<String> { get }
    func handle(_ press: CardActionPress, on tx: any Database) async throws
}

/// The card actions capabilities registered. An action nobody registered is a bot's: recorded
/// and called back to the bot that posted the card.
public struct CardActionHandlers: Sendable {
    public private(set) var all: [any CardActionHandler] = []
    public init() {}

    public mutating func register(_ handler: any CardActionHandler) {
        precondition(all.allSatisfy { $0.actions.isDisjoint(with: handler.actions) }, "card action registered twice")
        all.append(handler)
    }

    public func handler(for action: String) -> (any CardActionHandler)? {
        all.first { $0.actions.contains(action) }
    }
}
