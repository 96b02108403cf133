import FluentKit
import Foundation
import NIOConcurrencyHelpers
import RoundsHL7

/// The channel a message came through, as the mapping reads it.
public struct ResolvedChannel: Sendable, Equatable {
    /// nil: no channel describes the sender; the defaults apply.
    public var id: String?
    public var name: String
    public var hospitalID: String?
    public var settings: ChannelSettings

    public static let none = ResolvedChannel(id: nil, name: "", hospitalID: nil, settings: ChannelSettings())

    public init(id: String?, name: String, hospitalID: String?, settings: ChannelSettings) {
        self.id = id; self.name = name; self.hospitalID = hospitalID; self.settings = settings
    }

    public init(_ channel: HL7Channel) {
        self.init(id: channel.id, name: channel.name, hospitalID: channel.hospitalID, settings: channel.settings)
    }
}

/// Channels change rarely and every message needs one: read them at most every few seconds
/// (another process's edit shows within that), and at once after an edit in this process.
public final class ChannelDirectory: Sendable {
    private struct Entry: Sendable {
        var application: String
        var facility: String
        var enabled: Bool
        var resolved: ResolvedChannel
    }
    private let box = NIOLockedValueBox<(loaded: ContinuousClock.Instant, entries: [Entry])?>(nil)
    static let lifetime: Duration = .seconds(5)

    public init() {}

    public func invalidate() { box.withLockedValue { $0 = nil } }

    /// `port`: the listening port it arrived on; a channel with that port of its own wins.
    public func channel(for message: HL7Message, port: Int? = nil, on db: any Database) async throws -> ResolvedChannel {
        if let port, let own = try await load(on: db).first(where: { $0.enabled && $0.resolved.settings.listenPort == port }) { return own.resolved }
        return try await channel(application: message.sendingApplication, facility: message.sendingFacility, on: db)
    }

    /// The ports enabled channels listen on, each with its channel's name.
    public func listenPorts(on db: any Database) async throws -> [(port: Int, channel: String)] {
        try await load(on: db).filter(\.enabled).compactMap { e in e.resolved.settings.listenPort.map { ($0, e.resolved.name) } }
    }

    /// The most specific enabled channel for MSH-3/MSH-4 (application beats facility).
    public func channel(application: String, facility: String, on db: any Database) async throws -> ResolvedChannel {
        let entries = try await load(on: db)
        var best: (score: Int, channel: ResolvedChannel)?
        for entry in entries where entry.enabled {
            var score = 0
            if !entry.application.isEmpty {
                guard entry.application.caseInsensitiveCompare(application) == .orderedSame else { continue }
                score += 2
            }
            if !entry.facility.isEmpty {
                guard entry.facility.caseInsensitiveCompare(facility) == .orderedSame else { continue }
                score += 1
            }
            if best == nil || score > best!.score { best = (score, entry.resolved) }
        }
        return best?.channel ?? .none
    }

    private func load(on db: any Database) async throws -> [Entry] {
        let now = ContinuousClock.now
        if let cached = box.withLockedValue({ $0 }), now - cached.loaded < Self.lifetime { return cached.entries }
        let entries = try await HL7Channel.query(on: db).all().map {
            Entry(application: $0.application, facility: $0.facility, enabled: $0.enabled, resolved: ResolvedChannel($0))
        }
        box.withLockedValue { $0 = (now, entries) }
        return entries
    }
}
