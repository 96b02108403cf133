import Fluent
import Leaf
import LeafKit
import NIOCore
import RoundsAlerts
import RoundsChat
import RoundsClinical
import RoundsCore
import RoundsIntegration
import RoundsDirectory
import RoundsStore
import RoundsRuntime
import SQLKit
import ServiceLifecycle
import RoundsTables
import Vapor

/// Wires the app: database and migrations, services, middleware, templates, routes.
public func configure(_ app: Application, _ configuration: RoundsConfiguration) async throws {
    RoundsMetrics.bootstrapOnce()
    if !configuration.database.isPostgres {
        // Every SQLite call blocks a thread of the app's pool. Vapor's default is the process-wide
        // pool (one thread per core), which two databases in one process — or the file server and
        // password hashing — would queue on together: this database gets threads of its own.
        app.threadPool = NIOThreadPool(numberOfThreads: 4)
    }
    try app.useRoundsDatabase(configuration.database)
    for capability in RoundsCapabilities.all { app.migrations.add(capability.migrations) }
    RoundsMetrics.dbPool.set(to: 4)
    if !configuration.database.isPostgres, let sql = app.db as? any SQLDatabase {
        // Write-ahead log: readers (web pages) no longer block the HL7 writer, and commits stay
        // durable (synchronous stays FULL: an ACK is only sent for what is on disk).
        try await sql.raw("PRAGMA journal_mode=WAL").run()
    }
    if configuration.runMigrations {
        try await app.autoMigrate()
    }
    app.rounds = try RoundsServices(configuration, logLevel: app.logger.logLevel)
    app.rounds.alertConnectors = configuration.alertConnectors
        ?? RoundsServices.liveConnectors(clock: configuration.clock, outbound: app.rounds.outbound, database: { [unowned app] in app.db })

    ContentConfiguration.global.use(encoder: JSONEncoder.custom(dates: .iso8601, format: [.sortedKeys]), for: .json)
    ContentConfiguration.global.use(decoder: JSONDecoder.custom(dates: .iso8601), for: .json)
    app.routes.defaultMaxBodySize = "1mb"
    app.http.server.configuration.idleTimeout = TimeAmount(configuration.httpLimits.idleTimeout)

    let views = WebResources.root.appendingPathComponent("Views").path + "/"
    app.views.use(.leaf)
    app.leaf.sources = .singleSource(NIOLeafFiles(fileio: app.fileio, limits: [.toSandbox, .onlyLeafExtensions], sandboxDirectory: views, viewDirectory: views))

    // Order matters: errors wrap everything; the principal is known before CSRF is checked.
    app.middleware = Middlewares()
    app.middleware.use(SecurityHeadersMiddleware())
    app.middleware.use(ProblemMiddleware())
    app.middleware.use(BodyDeadlineMiddleware(timeout: configuration.httpLimits.bodyTimeout))
    app.middleware.use(FileMiddleware(publicDirectory: WebResources.root.appendingPathComponent("Public").path + "/"))
    app.middleware.use(PrincipalMiddleware())
    app.middleware.use(CSRFMiddleware())

    try registerRoutes(app)

    let feed = ChatFeed(clock: configuration.clock, notifier: app.rounds.notifier, logger: app.logger,
                        safetyTick: configuration.feedSafetyTick, database: { [unowned app] in app.db })
    app.chatFeed = feed
    let tableFeed = TableFeed(tables: app.rounds.tables, notifier: app.rounds.notifier, logger: app.logger,
                              safetyTick: configuration.feedSafetyTick, database: { [unowned app] in app.db })
    app.tableFeed = tableFeed
    var postgresURL: String?
    if case .postgres(let url) = configuration.database { postgresURL = url }
    app.lifecycle.use(RealtimeLifecycle(feed: feed, tableFeed: tableFeed, notifier: app.rounds.notifier, postgresURL: postgresURL))

    if configuration.backgroundWork {
        app.lifecycle.use(RuntimeLifecycle(runtime: app.roundsRuntime()))
    }
}

extension Application {
    /// This process's background loops over its database, with the MLLP listener when configured.
    public func roundsRuntime() -> RoundsRuntime {
        var integration: IntegrationService?
        if let settings = rounds.configuration.integration {
            integration = IntegrationService(settings: settings, pipeline: rounds.hl7, outbound: rounds.outbound,
                                             logger: logger, database: { [unowned self] in self.db })
        }
        return rounds.runtime(database: { [unowned self] in self.db }, integration: integration, logger: logger)
    }
}

/// Runs the runtime's services (a ServiceGroup) while the server runs: the MLLP listener is
/// bound before the server reports booted (a port in use fails the start), and a stop drains
/// them (messages in hand finish, the batch in hand commits).
final class RuntimeLifecycle: LifecycleHandler, @unchecked Sendable {
    let runtime: RoundsRuntime
    private var group: ServiceGroup?
    private var task: Task<Void, Never>?

    init(runtime: RoundsRuntime) { self.runtime = runtime }

    func didBootAsync(_ application: Application) async throws {
        application.mllpPort = try await runtime.bindListener()
        let group = runtime.serviceGroup(signals: [], logger: application.logger)
        self.group = group
        let logger = application.logger
        task = Task {
            do { try await group.run() } catch { logger.error("background services stopped: \(error)") }
        }
    }

    func shutdownAsync(_ application: Application) async {
        await group?.triggerGracefulShutdown()
        _ = await task?.value
    }
}

extension Application {
    private struct MLLPPortKey: StorageKey { typealias Value = Int }

    /// The port the MLLP listener bound (useful with port 0), once the app has booted.
    public var mllpPort: Int? {
        get { storage[MLLPPortKey.self] }
        set { storage[MLLPPortKey.self] = newValue }
    }
}

func registerRoutes(_ app: Application) throws {
    OperationsRoutes().register(app.routes)
    SignInRoutes().register(app.routes)

    let signedIn = app.routes.grouped(RequireSignIn())
    for capability in RoundsCapabilities.all { capability.registerPages(signedIn, public: app.routes) }

    let v1 = app.routes.grouped("api", "v1")
    v1.get("openapi.json") { req -> Response in
        let document = try OpenAPIDocument.build(req.application.openAPI)
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
        let response = Response(status: .ok, body: .init(data: data))
        response.headers.contentType = .json
        return response
    }
    let api = APIBuilder(routes: v1.grouped(RequireSignIn()), registry: app.openAPI, prefix: "/api/v1")
    for capability in RoundsCapabilities.all { capability.registerAPI(api, app: app) }
}

/// Conservative browser headers: no framing, no sniffing, scripts only from Rounds itself.
struct SecurityHeadersMiddleware: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let response = try await next.respond(to: request)
        response.headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        response.headers.replaceOrAdd(name: "X-Frame-Options", value: "DENY")
        response.headers.replaceOrAdd(name: "Referrer-Policy", value: "same-origin")
        // A route that serves untrusted bytes sets a stricter policy of its own (a sandbox): keep it.
        if !response.headers.contains(name: "Content-Security-Policy") {
            response.headers.replaceOrAdd(name: "Content-Security-Policy",
                                          value: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        }
        return response
    }
}
