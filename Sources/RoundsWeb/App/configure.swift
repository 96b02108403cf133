import Fluent
import Leaf
import LeafKit
import NIOCore
import RoundsAlerts
import RoundsChat
import RoundsClinical
import RoundsCore
import RoundsIntegration
import RoundsStore
import SQLKit
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
    app.migrations.add(ChatMigrations.all)
    app.migrations.add(AlertMigrations.all)
    app.migrations.add(ClinicalMigrations.all)
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
    var postgresURL: String?
    if case .postgres(let url) = configuration.database { postgresURL = url }
    app.lifecycle.use(RealtimeLifecycle(feed: feed, notifier: app.rounds.notifier, postgresURL: postgresURL))

    if let settings = configuration.integration {
        let services = app.rounds
        let integration = IntegrationService(settings: settings, pipeline: services.hl7, outbound: services.outbound,
                                             logger: app.logger, database: { [unowned app] in app.db })
        app.lifecycle.use(IntegrationLifecycle(service: integration))
    }
    if configuration.backgroundWork {
        app.lifecycle.use(OutboxWorker(services: app.rounds, database: { [unowned app] in app.db }, logger: app.logger))
    }
}

/// Delivers outbox events (patient groups and cards) in the background while the server runs.
final class OutboxWorker: LifecycleHandler, @unchecked Sendable {
    let services: RoundsServices
    let database: @Sendable () -> any Database
    let logger: Logger
    private var task: Task<Void, Never>?
    private var deliveries: Task<Void, Never>?

    init(services: RoundsServices, database: @escaping @Sendable () -> any Database, logger: Logger) {
        self.services = services
        self.database = database
        self.logger = logger
    }

    /// One signed bot callback over HTTP; the status code decides sent or retry.
    static func post(_ url: String, headers: [String: String], body: Data, client: any Client) async throws -> Int {
        var httpHeaders = HTTPHeaders()
        for (name, value) in headers { httpHeaders.add(name: name, value: value) }
        let response = try await client.post(URI(string: url), headers: httpHeaders) { request in
            request.body = ByteBuffer(data: body)
        }
        return Int(response.status.code)
    }

    func didBootAsync(_ application: Application) async throws {
        let services = self.services, database = self.database, logger = self.logger, client = application.client
        // Woken at once when a message with events commits (here or, via NOTIFY, in another
        // process), and every half second regardless (bot callbacks due, a lost wake-up).
        let (kicks, kick) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let (listenerID, wakes) = services.notifier.updates()
        let forwarder = Task {
            for await payload in wakes where payload.hasPrefix("outbox") {
                if payload == "outbox-urgent" { services.outbox.signalUrgent() }
                kick.yield()
            }
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                kick.yield()
            }
        }
        // Critical values to Feishu, WeCom, SMS, e-mail and the LIS: on their own loop, so a slow
        // peer never holds up patient-group cards.
        deliveries = Task {
            while !Task.isCancelled {
                do {
                    while try await services.alerts.deliverDue(using: services.alertConnectors, on: database()) > 0 {}
                } catch {
                    logger.warning("critical-value delivery failed: \(error)")
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        task = Task {
            var next = kicks.makeAsyncIterator()
            while !Task.isCancelled {
                do {
                    while try await services.dispatchOutbox(on: database()) > 0 {}
                    if try await services.alerts.escalateDue(on: database()) > 0 { services.notifier.broadcastLocally("chat") }
                    try await services.chat.deliverCallbacks(on: database()) { url, headers, body in
                        try await Self.post(url, headers: headers, body: body, client: client)
                    }
                } catch {
                    logger.warning("outbox dispatch failed: \(error)")
                }
                guard await next.next() != nil else { break }
            }
            ticker.cancel()
            forwarder.cancel()
            services.notifier.stop(listenerID)
            kick.finish()
        }
    }

    func shutdownAsync(_ application: Application) async {
        task?.cancel()
        deliveries?.cancel()
        _ = await task?.value
        _ = await deliveries?.value
    }
}

/// Starts the MLLP listener and outbound worker with the server, stops them with it.
struct IntegrationLifecycle: LifecycleHandler {
    let service: IntegrationService

    func didBootAsync(_ application: Application) async throws {
        application.mllpPort = try await service.start()
    }

    func shutdownAsync(_ application: Application) async {
        await service.stop()
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
    ClinicalPages().register(signedIn)
    ChatPages().register(signedIn)
    AdminPages().register(signedIn)
    AuditPages().register(signedIn)
    AlertPages().register(signedIn)
    GroupRulePages().register(signedIn)
    NursingPages().register(signedIn)
    NursingPages.registerFeed(app.routes)

    let v1 = app.routes.grouped("api", "v1")
    v1.get("openapi.json") { req -> Response in
        let document = try OpenAPIDocument.build(req.application.openAPI)
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
        let response = Response(status: .ok, body: .init(data: data))
        response.headers.contentType = .json
        return response
    }
    let api = APIBuilder(routes: v1.grouped(RequireSignIn()), registry: app.openAPI, prefix: "/api/v1")
    APIRoutes(api: api).register()
    IntegrationRoutes(api: api).register()
    AlertRoutes(api: api).register()
    NursingRoutes(api: api).register()
    ChatRoutes(api: api, signed: APIBuilder(routes: v1, registry: app.openAPI, prefix: "/api/v1")).register()
    RealtimeRoutes().register(v1.grouped(RequireSignIn()), registry: app.openAPI)
    IntegrationPages().register(signedIn)
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
