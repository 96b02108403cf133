import FluentKit
import Foundation
import RoundsCore
import RoundsHL7
import RoundsStore
import SQLKit

/// Where Rounds sends HL7 and how: the destination, which message types go there, the changes
/// the receiver needs (its own MSH-5/MSH-6, a fixed processing id…), and how hard to retry.
public struct OutboundSettings: Codable, Sendable, Equatable {
    /// Sets a field before sending (`MSH-5` = `HIS`); an empty value clears it.
    public struct Transform: Codable, Sendable, Equatable {
        public var path: String
        public var value: String
        public init(path: String, value: String) { self.path = path; self.value = value }
    }

    /// "MDM^T02", "ORR" …; empty: every type routed to this channel.
    public var messageTypes: [String] = []
    public var transforms: [Transform] = []
    public var maximumAttempts: Int = 8
    /// Pause before the second attempt; it doubles each time, up to `maximumBackoffSeconds`.
    public var backoffSeconds: Int = 2
    public var maximumBackoffSeconds: Int = 300

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = OutboundSettings()
        messageTypes = try c.decodeIfPresent([String].self, forKey: .messageTypes) ?? d.messageTypes
        transforms = try c.decodeIfPresent([Transform].self, forKey: .transforms) ?? d.transforms
        maximumAttempts = try c.decodeIfPresent(Int.self, forKey: .maximumAttempts) ?? d.maximumAttempts
        backoffSeconds = try c.decodeIfPresent(Int.self, forKey: .backoffSeconds) ?? d.backoffSeconds
        maximumBackoffSeconds = try c.decodeIfPresent(Int.self, forKey: .maximumBackoffSeconds) ?? d.maximumBackoffSeconds
    }

    public func problems() -> [String] {
        var out: [String] = []
        if !(1...100).contains(maximumAttempts) { out.append("maximumAttempts must be 1–100") }
        if !(1...3600).contains(backoffSeconds) { out.append("backoffSeconds must be 1–3600") }
        if maximumBackoffSeconds < backoffSeconds || maximumBackoffSeconds > 86_400 {
            out.append("maximumBackoffSeconds must be between backoffSeconds and 86400")
        }
        for t in transforms {
            if !HL7Message.isValidPath(t.path) { out.append("transform path '\(t.path)' is not a field path like MSH-5 or PID-3-1") }
            if ["MSH-1", "MSH-2"].contains(t.path.uppercased()) { out.append("MSH-1 and MSH-2 (the delimiters) cannot be changed") }
            if t.path.uppercased().hasPrefix("MSH-10") { out.append("MSH-10 (the control id) cannot be changed: the ACK is matched on it") }
        }
        return out
    }

    public func carries(_ type: String) -> Bool {
        guard !messageTypes.isEmpty else { return true }
        let upper = type.uppercased()
        return messageTypes.contains { $0.uppercased() == upper || upper.hasPrefix($0.uppercased() + "^") }
    }

    /// Pause before attempt n+1.
    public func backoff(afterAttempts attempts: Int) -> TimeInterval {
        min(Double(maximumBackoffSeconds), Double(backoffSeconds) * pow(2, Double(max(0, attempts - 1))))
    }

    /// The message as this destination wants it.
    public func transformed(_ message: HL7Message) throws -> HL7Message {
        var m = message
        for t in transforms { try m.set(t.path, t.value) }
        return m
    }
}

/// A destination system, versioned like inbound channels.
public final class HL7OutboundChannel: Model, @unchecked Sendable {
    public static let schema = "hl7_outbound_channels"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "name") public var name: String
    @Field(key: "host") public var host: String
    @Field(key: "port") public var port: Int
    /// The hospital whose messages go there; nil: any.
    @OptionalField(key: "hospital_id") public var hospitalID: String?
    @Field(key: "enabled") public var enabled: Bool
    @Field(key: "settings") public var settingsJSON: String
    @Field(key: "version") public var version: Int
    @Field(key: "updated_at") public var updatedAt: Date
    @OptionalField(key: "updated_by") public var updatedBy: String?

    public init() {}

    public var settings: OutboundSettings {
        get { SettingsColumn.read(settingsJSON) }
        set { settingsJSON = SettingsColumn.write(newValue) }
    }
}

struct CreateHL7OutboundChannels: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(HL7OutboundChannel.schema)
            .field("id", .string, .identifier(auto: false))
            .field("name", .string, .required)
            .field("host", .string, .required)
            .field("port", .int, .required)
            .field("hospital_id", .string)
            .field("enabled", .bool, .required)
            .field("settings", .string, .required)
            .field("version", .int, .required)
            .field("updated_at", .datetime, .required)
            .field("updated_by", .string)
            .create()
        try await database.schema(OutboundMessage.schema).field("channel_id", .string).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(OutboundMessage.schema).deleteField("channel_id").update()
        try await database.schema(HL7OutboundChannel.schema).delete()
    }
}
