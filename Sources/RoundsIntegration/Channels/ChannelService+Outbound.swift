import FluentKit
import Foundation
import RoundsCore
import RoundsHL7
import RoundsStore

extension ChannelService {
    public struct OutboundDraft: Sendable, Codable {
        public var name: String
        public var host: String
        public var port: Int
        public var hospitalID: String?
        public var enabled: Bool
        public var settings: OutboundSettings
        public var version: Int?

        public init(name: String, host: String, port: Int, hospitalID: String?, enabled: Bool = true,
                    settings: OutboundSettings = OutboundSettings(), version: Int? = nil) {
            self.name = name; self.host = host; self.port = port; self.hospitalID = hospitalID; self.enabled = enabled
            self.settings = settings; self.version = version
        }
    }

    /// Outbound channels send patient data to the hosts they name: the group administrator's
    /// (or an installation-wide integration token's), like the outbound queue.
    func requireOutbound(_ context: RequestContext, action: String, entityID: String?, on db: any Database) async throws {
        guard context.principal.managesOutboundHL7 else {
            try await audit.record(action, entityType: "hl7_outbound_channel", entityID: entityID, outcome: .denied, context: context, on: db)
            throw RoundsError.forbidden("outbound channels are for group administrators and installation-wide integration tokens")
        }
    }

    public func outboundChannels(context: RequestContext, on db: any Database) async throws -> [HL7OutboundChannel] {
        try await requireOutbound(context, action: "hl7.outbound_channel.list", entityID: nil, on: db)
        return try await HL7OutboundChannel.query(on: db).sort(\.$name).all()
    }

    public func saveOutbound(id: String?, _ draft: OutboundDraft, allowed: DestinationAllowList, context: RequestContext,
                             on db: any Database) async throws -> HL7OutboundChannel {
        try await requireOutbound(context, action: id == nil ? "hl7.outbound_channel.create" : "hl7.outbound_channel.update", entityID: id, on: db)
        let name = draft.name.trimmingCharacters(in: .whitespacesAndNewlines)
        let host = draft.host.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 100 else { throw RoundsError.validation("an outbound channel needs a name (at most 100 characters)") }
        guard !host.isEmpty, (1...65535).contains(draft.port) else { throw RoundsError.validation("host and port (1–65535) are required") }
        guard allowed.permits(host: host, port: draft.port) else {
            try await audit.record("hl7.outbound_channel.save", entityType: "hl7_outbound_channel", entityID: id, outcome: .denied,
                                   detail: "\(host):\(draft.port) not allowed", context: context, on: db)
            throw RoundsError.validation("host: \(host):\(draft.port) is not an allowed destination (the installation's allow-list names where messages may go)")
        }
        var settings = draft.settings
        settings.messageTypes = settings.messageTypes.map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty }
        settings.transforms = settings.transforms.map { .init(path: $0.path.trimmingCharacters(in: .whitespaces).uppercased(), value: $0.value) }
        let problems = settings.problems()
        guard problems.isEmpty else { throw RoundsError.validation(problems.joined(separator: "; ")) }
        let channel: HL7OutboundChannel
        if let id {
            guard let found = try await HL7OutboundChannel.find(id, on: db) else { throw RoundsError.notFound("outbound channel", id: id) }
            if let version = draft.version, version != found.version {
                throw RoundsError.conflict("the outbound channel was changed by someone else (now version \(found.version)); reload it")
            }
            channel = found
        } else {
            channel = HL7OutboundChannel()
            channel.id = ids.next()
            channel.version = 0
        }
        channel.name = name
        channel.host = host
        channel.port = draft.port
        channel.hospitalID = draft.hospitalID
        channel.enabled = draft.enabled
        channel.settings = settings
        channel.version += 1
        channel.updatedAt = clock.now()
        channel.updatedBy = context.principal.displayName
        try await db.transaction { tx in
            try await channel.save(on: tx)
            try await audit.record(id == nil ? "hl7.outbound_channel.create" : "hl7.outbound_channel.update", entityType: "hl7_outbound_channel",
                                   entityID: channel.id, hospitalID: channel.hospitalID,
                                   detail: "\(channel.name) v\(channel.version) → \(host):\(draft.port)", context: context, on: tx)
        }
        return channel
    }
}
