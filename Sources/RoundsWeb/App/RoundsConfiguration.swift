import Foundation
import RoundsCore
import RoundsIntegration
import RoundsDirectory
import RoundsStore

/// Everything `configure` needs to know, decided by the command line or the tests.
public struct RoundsConfiguration: Sendable {
    public var database: DatabaseLocation
    public var clock: any RoundsClock
    public var ids: IDGenerator
    /// Bcrypt cost; 12 in production, lower in tests.
    public var bcryptCost: Int
    /// Mark cookies `Secure` (set when Rounds is served over HTTPS).
    public var secureCookies: Bool
    /// Believe X-Forwarded-For for the client address (only behind a reverse proxy you run).
    public var trustProxyHeaders: Bool
    public var runMigrations: Bool
    /// The MLLP listener; nil runs none (`--no-mllp`, tests, `migrate`).
    public var integration: IntegrationService.Settings?
    /// How often the realtime feed looks for new messages without being woken.
    public var feedSafetyTick: Duration = .seconds(1)
    /// Rounds' address as staff reach it, for links in messages sent outside (Feishu, SMS, e-mail).
    public var publicURL: String?
    /// Where alert connectors and the outbound HL7 queue may send (the public Feishu/WeCom webhook
    /// hosts unless the installation adds its own: SMS gateway, mail server, LIS).
    public var allowedDestinations: DestinationAllowList = .standard
    /// How critical values reach outside systems; nil uses the real adapters (tests may swap them).
    public var alertConnectors: [ConnectorKind: any AlertConnector]?
    /// Run the outbox dispatcher, escalation timers, outside deliveries and bot callbacks in the
    /// background (every server; tests drive them by hand). Independent of the MLLP listener:
    /// a hospital that reports critical values only by hand or over the API still escalates.
    public var backgroundWork: Bool = true
    /// Send queued outbound HL7 (the LIS feedback of critical values) in the background, with
    /// or without the MLLP listener (off in tests that drive the queue by hand).
    public var runOutboundQueue: Bool = true
    /// HTTP limits against slow or abandoned clients (see docs/SECURITY.md).
    public var httpLimits: HTTPLimits = .init()

    public init(database: DatabaseLocation, clock: any RoundsClock = SystemClock(), ids: IDGenerator? = nil,
                bcryptCost: Int = 12, secureCookies: Bool = false, trustProxyHeaders: Bool = false,
                runMigrations: Bool = true, integration: IntegrationService.Settings? = nil) {
        self.database = database
        self.clock = clock
        self.ids = ids ?? .uuidV7(clock: clock)
        self.bcryptCost = bcryptCost
        self.secureCookies = secureCookies
        self.trustProxyHeaders = trustProxyHeaders
        self.runMigrations = runMigrations
        self.integration = integration
    }
}

/// Time limits for HTTP clients: a connection silent this long is closed, and a request body
/// must arrive within `bodyTimeout` (a client trickling bytes cannot hold a connection forever).
public struct HTTPLimits: Sendable {
    public var idleTimeout: Duration
    public var bodyTimeout: Duration

    public init(idleTimeout: Duration = .seconds(60), bodyTimeout: Duration = .seconds(120)) {
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
    }
}
