import FluentKit
import RoundsAlerts
import RoundsChat
import RoundsClinical
import RoundsStore
import Vapor

/// One capability's part of the app: its tables, what it consumes from the outbox, the card
/// buttons it owns, its pages and its API. Adding a capability is its module, its folder here,
/// and one line in `RoundsCapabilities.all`; `configure` and `RoundsServices` walk the list.
protocol Capability: Sendable {
    /// Its migrations, in order (they run after the store's).
    var migrations: [any Migration] { get }
    /// Its outbox handlers. Capabilities are asked in the order of `all`, which is the order
    /// handlers run for one event.
    func eventHandlers(_ services: RoundsServices) -> [any EventHandler]
    func cardActions(_ services: RoundsServices) -> [any CardActionHandler]
    /// Its pages (signed in), any public routes, and its API (under /api/v1, signed in).
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder)
    func registerAPI(_ api: APIBuilder, app: Application)
}

extension Capability {
    var migrations: [any Migration] { [] }
    func eventHandlers(_ services: RoundsServices) -> [any EventHandler] { [] }
    func cardActions(_ services: RoundsServices) -> [any CardActionHandler] { [] }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) {}
    func registerAPI(_ api: APIBuilder, app: Application) {}
}

enum RoundsCapabilities {
    /// In dependency order: the patient groups before the critical values (an admission opens
    /// the group the alert card goes to).
    static let all: [any Capability] = [
        DirectoryCapability(), ChatCapability(), AlertsCapability(), NursingCapability(), IntegrationCapability(), AuditCapability(),
    ]
}

/// Wards, patients, staff, tokens, the organisation; sign-in itself is part of the app.
struct DirectoryCapability: Capability {
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
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) { AlertPages().register(signedIn) }
    func registerAPI(_ api: APIBuilder, app: Application) { AlertRoutes(api: api).register() }
}

/// Bedside nursing: assessments, care plans, calendars (the calendar feed is public, by token).
struct NursingCapability: Capability {
    var migrations: [any Migration] { ClinicalMigrations.all }
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) {
        NursingPages().register(signedIn)
        NursingPages.registerFeed(`public`)
    }
    func registerAPI(_ api: APIBuilder, app: Application) { NursingRoutes(api: api).register() }
}

/// The integration engine's pages and API (its tables are the store's).
struct IntegrationCapability: Capability {
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) { IntegrationPages().register(signedIn) }
    func registerAPI(_ api: APIBuilder, app: Application) { IntegrationRoutes(api: api).register() }
}

/// The audit log's pages (its API is the directory's).
struct AuditCapability: Capability {
    func registerPages(_ signedIn: any RoutesBuilder, public: any RoutesBuilder) { AuditPages().register(signedIn) }
}
