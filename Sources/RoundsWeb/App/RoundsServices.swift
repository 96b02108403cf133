import Fluent
import RoundsAlerts
import RoundsChat
import RoundsClinical
import RoundsConnectors
import RoundsCore
import RoundsIntegration
import RoundsRuntime
import RoundsDirectory
import RoundsStore
import Vapor

/// The services of the app, built once from the configuration and shared by every request.
public struct RoundsServices: Sendable {
    public let configuration: RoundsConfiguration
    public let audit: AuditLog
    public let auth: AuthService
    public let sessions: SessionService
    public let organisation: OrganisationService
    public let patients: PatientService
    public let catalogue: Catalogue
    public let hl7: InboundPipeline
    public let outbound: OutboundQueue
    public let messages: MessageStore
    public private(set) var chat: ChatService
    public let outbox: OutboxDispatcher
    public let notifier: ChangeNotifier
    public let alerts: AlertService
    /// Who consumes which events, in order (see `EventHandlers`).
    public private(set) var eventHandlers: EventHandlers
    /// The adapters that deliver critical values outside Rounds, by connector kind.
    public internal(set) var alertConnectors: [ConnectorKind: any AlertConnector] = [:]
    /// The services capabilities build for themselves, by type (see `service(_:)`).
    private let capabilityServices: [ObjectIdentifier: any Sendable]

    /// The service a capability built (`Capability.makeServices`); each capability's folder
    /// names its own as a property (`services.nursing`).
    public func service<S: Sendable>(_ type: S.Type = S.self) -> S {
        guard let service = capabilityServices[ObjectIdentifier(S.self)] as? S else {
            fatalError("no capability in RoundsCapabilities.all builds \(S.self)")
        }
        return service
    }

    init(_ configuration: RoundsConfiguration, logLevel: Logger.Level = .info) throws {
        self.configuration = configuration
        let clock = configuration.clock, ids = configuration.ids
        let hasher = PasswordHasher(cost: configuration.bcryptCost)
        audit = AuditLog(clock: clock, ids: ids)
        auth = AuthService(clock: clock, ids: ids, hasher: hasher, audit: audit)
        sessions = SessionService(clock: clock)
        organisation = OrganisationService(clock: clock, ids: ids, hasher: hasher, audit: audit)
        catalogue = try Catalogue.load()
        var hl7Logger = Logger(label: "rounds.hl7")
        hl7Logger.logLevel = logLevel
        notifier = ChangeNotifier()
        let events = OutboxWriter(clock: clock, ids: ids, notifier: notifier)
        patients = PatientService(clock: clock, ids: ids, audit: audit, outbox: events)
        hl7 = InboundPipeline(clock: clock, ids: ids, logger: hl7Logger, outbox: events, audit: audit)
        hl7Logger = Logger(label: "rounds.hl7.outbound")
        hl7Logger.logLevel = logLevel
        outbound = OutboundQueue(clock: clock, ids: ids, logger: hl7Logger)
        messages = MessageStore(audit: audit)
        let chat = ChatService(clock: clock, ids: ids, audit: audit, notifier: notifier)
        var alerts = AlertService(clock: clock, ids: ids, audit: audit, groups: ChatGroupCards(chat), notifier: notifier)
        alerts.publicURL = configuration.publicURL
        alerts.destinations = configuration.allowedDestinations
        alerts.senderOfMessage = { id, db in try await HL7MessageRecord.find(id, on: db)?.sender }
        self.alerts = alerts
        var outboxLogger = Logger(label: "rounds.outbox")
        outboxLogger.logLevel = logLevel
        outbox = OutboxDispatcher(clock: clock, logger: outboxLogger, notifier: notifier)

        self.chat = chat
        // Each capability's own services (see `Capability.makeServices`), then what each
        // consumes and the card buttons it owns (see RoundsCapabilities).
        let shared = SharedServices(configuration: configuration, audit: audit, notifier: notifier, events: events, logLevel: logLevel)
        var built: [ObjectIdentifier: any Sendable] = [:]
        for capability in RoundsCapabilities.all {
            for service in try capability.makeServices(shared) { built[ObjectIdentifier(type(of: service))] = service }
        }
        capabilityServices = built
        eventHandlers = EventHandlers()
        for capability in RoundsCapabilities.all {
            for handler in capability.eventHandlers(self) { eventHandlers.register(handler) }
            for action in capability.cardActions(self) { self.chat.cardActions.register(action) }
        }
    }
}

/// What every capability's services are built from: one clock, id source, audit log, notifier
/// and event writer for the whole process.
public struct SharedServices: Sendable {
    public let configuration: RoundsConfiguration
    public let audit: AuditLog
    public let notifier: ChangeNotifier
    public let events: OutboxWriter
    public let logLevel: Logger.Level
    public var clock: any RoundsClock { configuration.clock }
    public var ids: IDGenerator { configuration.ids }
}

extension RoundsServices {
    /// The real adapters: HTTPS webhooks and gateways, SMTP, and HL7 through the outbound queue.
    static func liveConnectors(clock: any RoundsClock, outbound: OutboundQueue,
                               database: @escaping @Sendable () -> any Database) -> [ConnectorKind: any AlertConnector] {
        let http = HTTPPoster.live()
        let zone = Formatting.hospitalTimeZone
        return [
            .feishu: FeishuConnector(http: http, clock: clock, timeZone: zone),
            .wecom: WeComConnector(http: http, timeZone: zone),
            .sms: SMSGatewayConnector(http: http, timeZone: zone),
            .email: SMTPConnector(clock: clock, timeZone: zone),
            .hl7: CriticalValueFeedback(outbound: outbound, timeZone: zone, database: database),
        ]
    }
}

extension Application {
    private struct ServicesKey: StorageKey { typealias Value = RoundsServices }

    public var rounds: RoundsServices {
        get {
            guard let services = storage[ServicesKey.self] else { fatalError("configure(_:_:) has not run") }
            return services
        }
        set { storage[ServicesKey.self] = newValue }
    }
}

extension Request {
    public var rounds: RoundsServices { application.rounds }

    /// The client's address for the audit log. X-Forwarded-For is used only when configured,
    /// because anyone can send that header.
    public var clientAddress: String? {
        if rounds.configuration.trustProxyHeaders,
           let forwarded = headers.first(name: "X-Forwarded-For")?.split(separator: ",").first {
            return forwarded.trimmingCharacters(in: .whitespaces)
        }
        return remoteAddress?.ipAddress
    }
}

extension RoundsServices {
    /// Hands every pending outbox event to the registered handlers now (the runtime does this in
    /// the background; tests and the demo seed call it directly).
    @discardableResult
    public func dispatchOutbox(on db: any Database) async throws -> Int {
        try await outbox.dispatchAll(on: db, to: eventHandlers)
    }

    /// The background loops of this process (see `RoundsRuntime`), over `database`.
    public func runtime(database: @escaping @Sendable () -> any Database, integration: IntegrationService?, logger: Logger) -> RoundsRuntime {
        RoundsRuntime(.init(database: database, dispatcher: outbox, handlers: eventHandlers, notifier: notifier,
                            work: RoundsCapabilities.all.flatMap { $0.backgroundWork(self) }, listener: integration, logger: logger))
    }
}
