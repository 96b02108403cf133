import FluentKit
import SQLKit
import Foundation

/// A sending system as IT describes it: matched on MSH-3 (application) and MSH-4 (facility),
/// feeding one hospital, read with its `ChannelSettings`. Each save is a new version; the old
/// ones are kept in `HL7ChannelVersion`.
public final class HL7Channel: Model, @unchecked Sendable {
    public static let schema = "hl7_channels"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "name") public var name: String
    /// MSH-3 to match ("" matches any), compared without case.
    @Field(key: "application") public var application: String
    /// MSH-4 to match ("" matches any).
    @Field(key: "facility") public var facility: String
    /// The hospital the messages are for; nil: told by the message's facility, as without a channel.
    @OptionalField(key: "hospital_id") public var hospitalID: String?
    @Field(key: "enabled") public var enabled: Bool
    /// `ChannelSettings` as JSON.
    @Field(key: "settings") public var settingsJSON: String
    @Field(key: "version") public var version: Int
    @Field(key: "updated_at") public var updatedAt: Date
    @OptionalField(key: "updated_by") public var updatedBy: String?

    public init() {}

    public var settings: ChannelSettings {
        get { SettingsColumn.read(settingsJSON) }
        set { settingsJSON = SettingsColumn.write(newValue) }
    }
}

/// A channel as it was saved: who changed it, when, and to what.
public final class HL7ChannelVersion: Model, @unchecked Sendable {
    public static let schema = "hl7_channel_versions"
    @ID(custom: "id", generatedBy: .user) public var id: String?
    @Field(key: "channel_id") public var channelID: String
    @Field(key: "version") public var version: Int
    @Field(key: "name") public var name: String
    @Field(key: "application") public var application: String
    @Field(key: "facility") public var facility: String
    @OptionalField(key: "hospital_id") public var hospitalID: String?
    @Field(key: "enabled") public var enabled: Bool
    @Field(key: "settings") public var settingsJSON: String
    @Field(key: "saved_at") public var savedAt: Date
    @OptionalField(key: "saved_by") public var savedBy: String?

    public init() {}

    public var settings: ChannelSettings {
        get { SettingsColumn.read(settingsJSON) }
        set { settingsJSON = SettingsColumn.write(newValue) }
    }
}

/// A channel's settings as their column holds them: JSON with sorted keys (a stable text to
/// compare versions by); a text that does not read gives the defaults.
enum SettingsColumn {
    static func read<T: Decodable & DefaultConstructible>(_ json: String) -> T {
        (try? JSONDecoder().decode(T.self, from: Data(json.utf8))) ?? T()
    }

    static func write(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// Settings with defaults for every field.
protocol DefaultConstructible { init() }
extension ChannelSettings: DefaultConstructible {}
extension OutboundSettings: DefaultConstructible {}

struct CreateHL7Channels: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(HL7Channel.schema)
            .field("id", .string, .identifier(auto: false))
            .field("name", .string, .required)
            .field("application", .string, .required)
            .field("facility", .string, .required)
            .field("hospital_id", .string)
            .field("enabled", .bool, .required)
            .field("settings", .string, .required)
            .field("version", .int, .required)
            .field("updated_at", .datetime, .required)
            .field("updated_by", .string)
            .unique(on: "application", "facility")
            .create()
        try await database.schema(HL7ChannelVersion.schema)
            .field("id", .string, .identifier(auto: false))
            .field("channel_id", .string, .required)
            .field("version", .int, .required)
            .field("name", .string, .required)
            .field("application", .string, .required)
            .field("facility", .string, .required)
            .field("hospital_id", .string)
            .field("enabled", .bool, .required)
            .field("settings", .string, .required)
            .field("saved_at", .datetime, .required)
            .field("saved_by", .string)
            .unique(on: "channel_id", "version")
            .create()
        // The mapping queue reads waiting messages by what they wait for.
        try await database.schema(HL7MessageRecord.schema).field("waiting_for", .string).update()
        if let sql = database as? any SQLDatabase {
            try await sql.create(index: "hl7_messages_waiting_for").on(HL7MessageRecord.schema).column("waiting_for").run()
        }
    }

    func revert(on database: any Database) async throws {
        try await database.schema(HL7ChannelVersion.schema).delete()
        try await database.schema(HL7Channel.schema).delete()
        try await database.schema(HL7MessageRecord.schema).deleteField("waiting_for").update()
    }
}
