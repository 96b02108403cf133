import FluentKit
import RoundsAlerts
import RoundsChat
import RoundsClinical
import RoundsConnectors
import RoundsDirectory
import RoundsIntegration
import RoundsMDT
import RoundsRoundNotes
import RoundsTables
import RoundsStore
import Vapor

/// One capability's part of the app: its tables, what it consumes from the outbox, the card
/// buttons it owns, its pages and its API. Adding a capability is its module, its folder here,
/// and one line in `RoundsCapabilities.all`; `configure` and `RoundsServices` walk the list.
protocol Capability: Sendable {
    /// Its migrations, in order (they run after the store's, and after those of the capabilities before it).
    var migrations: [any Migration] { get }
    /// Its own services, built once per process; found again with `RoundsServices.service(_:)`.
    func makeServices(_ shared: SharedServices) throws -> [any Sendable]
    /// Its outbox handlers. Capabilities are asked in the order of `all`, which is the order
    /// handlers run for one event.
    func eventHandlers(_ services: RoundsServices) -> [any EventHandler]
    func cardActions(_ services: RoundsServices) -> [any CardActionHandler]
    /// Its background loops (the runtime runs them in `rounds serve` and `rounds worker`).
    func backgroundWork(_ services: RoundsServices) -> [BackgroundWork]
    /// Its pages (signed in), any public routes, and its API (under /api/v1, signed in).
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder)
    func registerAPI(_ api: APIBuilder, app: Application)
}

extension Capability {
    var migrations: [any Migration] { [] }
    func makeServices(_ shared: SharedServices) throws -> [any Sendable] { [] }
    func eventHandlers(_ services: RoundsServices) -> [any EventHandler] { [] }
    func cardActions(_ services: RoundsServices) -> [any CardActionHandler] { [] }
    func backgroundWork(_ services: RoundsServices) -> [BackgroundWork] { [] }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) {}
    func registerAPI(_ api: APIBuilder, app: Application) {}
}

enum RoundsCapabilities {
    /// In dependency order: the directory's tables first (the others refer to them), the
    /// integration engine's next, the patient groups before the critical values (an admission
    /// opens the group the alert card goes to).
    static let all: [any Capability] = [
        DirectoryCapability(), IntegrationCapability(), ChatCapability(), AlertsCapability(), NursingCapability(), RoundNotesCapability(), MDTCapability(),
        TablesCapability(), AuditCapability(),
    ]
}

/// Wards, patients, staff, tokens, the organisation; sign-in itself is part of the app.
struct DirectoryCapability: Capability {
    var migrations: [any Migration] { DirectoryMigrations.all }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) {
        ClinicalPages().register(signedIn)
        AdminPages().register(signedIn)
    }
    func registerAPI(_ api: APIBuilder, app: Application) { APIRoutes(api: api).register() }
}

/// Patient groups, bots and the realtime feed.
struct ChatCapability: Capability {
    var migrations: [any Migration] { ChatMigrations.all }
    func eventHandlers(_ services: RoundsServices) -> [any EventHandler] { [services.chat.eventHandler] }
    /// Signed callbacks to bots when someone presses their card buttons; retried with back-off.
    func backgroundWork(_ services: RoundsServices) -> [BackgroundWork] {
        let chat = services.chat, http = HTTPPoster.live()
        return [BackgroundWork("bot callbacks", every: .seconds(1)) { db in
            _ = try await chat.deliverCallbacks(on: db) { url, headers, body in
                try await http.post(url, headers.map { ($0.key, $0.value) }, body).status
            }
        }]
    }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) {
        ChatPages().register(signedIn)
        GroupRulePages().register(signedIn)
    }
    func registerAPI(_ api: APIBuilder, app: Application) {
        let v1 = app.routes.grouped("api", "v1")
        ChatRoutes(api: api, signed: APIBuilder(routes: v1, registry: app.openAPI, prefix: "/api/v1")).register()
        RealtimeRoutes().register(v1.grouped(RequireSignIn()), registry: app.openAPI)
    }
}

/// Critical values: alerts, escalation, connectors, the dashboard.
struct AlertsCapability: Capability {
    var migrations: [any Migration] { AlertMigrations.all }
    func eventHandlers(_ services: RoundsServices) -> [any EventHandler] { [services.alerts.eventHandler] }
    func cardActions(_ services: RoundsServices) -> [any CardActionHandler] { [services.alerts.cardActionHandler] }
    /// Escalation timers (each fires once, also across processes), and the deliveries to
    /// Feishu, WeCom, SMS, e-mail and the LIS on a loop of their own, so a slow peer never holds
    /// up the patient groups' cards.
    func backgroundWork(_ services: RoundsServices) -> [BackgroundWork] {
        let alerts = services.alerts, connectors = services.alertConnectors
        return [
            BackgroundWork("escalation", every: .seconds(1)) { db in _ = try await alerts.escalateDue(on: db) },
            BackgroundWork("critical-value delivery", every: .seconds(1)) { db in
                while try await alerts.deliverDue(using: connectors, on: db) > 0 {}
            },
        ]
    }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) { AlertPages().register(signedIn) }
    func registerAPI(_ api: APIBuilder, app: Application) { AlertRoutes(api: api).register() }
}

/// Bedside nursing: assessments, care plans, calendars (the calendar feed is public, by token).
struct NursingCapability: Capability {
    var migrations: [any Migration] { ClinicalMigrations.all }
    func makeServices(_ shared: SharedServices) throws -> [any Sendable] {
        [NursingService(clock: shared.clock, ids: shared.ids, audit: shared.audit, timeZone: Formatting.hospitalTimeZone, outbox: shared.events)]
    }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) {
        NursingPages().register(signedIn)
        NursingPages.registerFeed(`public`)
    }
    func registerAPI(_ api: APIBuilder, app: Application) { NursingRoutes(api: api).register() }
}

extension RoundsServices {
    public var nursing: NursingService { service() }
    public var roundNotes: RoundNoteService { service() }
    public var mdt: MDTService { service() }
}

/// MDT consultations: cases, experts and guests, opinions, the report; guests' pages are public
/// routes with their own session (they never reach a staff page).
struct MDTCapability: Capability {
    var migrations: [any Migration] { MDTMigrations.all }
    func makeServices(_ shared: SharedServices) throws -> [any Sendable] {
        [MDTService(clock: shared.clock, ids: shared.ids, audit: shared.audit, events: shared.events)]
    }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) {
        MDTPages().register(signedIn)
        MDTGuestPages().register(`public`)
    }
    func registerAPI(_ api: APIBuilder, app: Application) { MDTRoutes(api: api).register() }
}

/// Ward-round notes by voice or typed: drafts, signed versions, the hospital's recogniser and
/// model; recordings deleted when the hospital's retention period is over.
struct RoundNotesCapability: Capability {
    var migrations: [any Migration] { RoundNotesMigrations.all }
    func makeServices(_ shared: SharedServices) throws -> [any Sendable] {
        [RoundNoteService(clock: shared.clock, ids: shared.ids, audit: shared.audit, events: shared.events)]
    }
    func backgroundWork(_ services: RoundsServices) -> [BackgroundWork] {
        let notes = services.roundNotes
        return [BackgroundWork("round-note recordings retention", every: .seconds(60)) { db in
            while try await notes.deleteExpiredAudio(on: db) > 0 {}
        }]
    }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) { RoundNotePages().register(signedIn) }
    func registerAPI(_ api: APIBuilder, app: Application) { RoundNoteRoutes(api: api).register() }
}

/// The integration engine: its pages and API, and the outbound HL7 queue (messages back to the
/// HIS/LIS, in order per destination). The MLLP listener is the runtime's `listener`.
struct IntegrationCapability: Capability {
    var migrations: [any Migration] { IntegrationMigrations.all }
    /// A signed ward-round note goes to the HIS as MDM through the outbound channels that carry it.
    func eventHandlers(_ services: RoundsServices) -> [any EventHandler] {
        [ClinicalDocument.handler(outbound: services.outbound, timeZone: Formatting.hospitalTimeZone)]
    }
    func backgroundWork(_ services: RoundsServices) -> [BackgroundWork] {
        guard services.configuration.runOutboundQueue else { return [] }
        let outbound = services.outbound
        return [BackgroundWork("outbound HL7", every: .seconds(1)) { db in while try await outbound.runOnce(on: db) > 0 {} }]
    }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) { IntegrationPages().register(signedIn); ChannelPages().register(signedIn) }
    func registerAPI(_ api: APIBuilder, app: Application) { IntegrationRoutes(api: api).register() }
}

/// Tables: bases, tables, fields and records (the engine; views, forms and automations build on it).
struct TablesCapability: Capability {
    var migrations: [any Migration] { TablesMigrations.all }
    func makeServices(_ shared: SharedServices) throws -> [any Sendable] {
        [TablesService(clock: shared.clock, ids: shared.ids, audit: shared.audit, events: shared.events, timeZone: Formatting.hospitalTimeZone)]
    }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) { TablesPages().register(signedIn); TablesRecordPages().register(signedIn) }
    func registerAPI(_ api: APIBuilder, app: Application) { TablesRoutes(api: api).register() }
}

extension RoundsServices {
    public var tables: TablesService { service() }
    /// HL7 channels and the mapping queue (a view over the pipeline, its channel cache shared).
    public var channels: ChannelService { ChannelService(pipeline: hl7, audit: audit, ids: configuration.ids, clock: configuration.clock) }
}

/// The audit log's pages (its API is the directory's).
struct AuditCapability: Capability {
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) { AuditPages().register(signedIn) }
}
