import FluentKit
import RoundsCore

/// One loop of background work a capability owns (escalation timers, outside deliveries, bot
/// callbacks, the outbound HL7 queue…): the runtime runs `round` every `every`, and at once when
/// `wakesOn` matches a wake-up. A round claims its rows in the database, so any number of
/// processes may run the same work and each item is done once.
public struct BackgroundWork: Sendable {
    public var name: String
    public var every: Duration
    public var wakesOn: (@Sendable (Wake) -> Bool)?
    public var round: @Sendable (_ db: any Database) async throws -> Void

    public init(_ name: String, every: Duration, wakesOn: (@Sendable (Wake) -> Bool)? = nil,
                round: @escaping @Sendable (_ db: any Database) async throws -> Void) {
        self.name = name; self.every = every; self.wakesOn = wakesOn; self.round = round
    }
}

/// Something that listens for outside traffic (the MLLP listener): bound before the process
/// reports started, so a port in use fails the start, and drained on a stop.
public protocol BackgroundListener: Sendable {
    var isStarted: Bool { get }
    /// Binds and starts; returns the bound port.
    func start() async throws -> Int
    /// Stops accepting, lets what is in hand finish, closes the connections.
    func stop() async
}
