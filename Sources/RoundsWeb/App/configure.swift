import Fluent
import Leaf
import LeafKit
import RoundsCore
import RoundsStore
import Vapor

/// Wires the app: database and migrations, services, middleware, templates, routes.
public func configure(_ app: Application, _ configuration: RoundsConfiguration) async throws {
    RoundsMetrics.bootstrapOnce()
    try app.useRoundsDatabase(configuration.database)
    RoundsMetrics.dbPool.set(to: 4)
    if configuration.runMigrations {
        try await app.autoMigrate()
    }
    app.rounds = try RoundsServices(configuration)

    ContentConfiguration.global.use(encoder: JSONEncoder.custom(dates: .iso8601, format: [.sortedKeys]), for: .json)
    ContentConfiguration.global.use(decoder: JSONDecoder.custom(dates: .iso8601), for: .json)
    app.routes.defaultMaxBodySize = "1mb"

    let views = WebResources.root.appendingPathComponent("Views").path + "/"
    app.views.use(.leaf)
    app.leaf.sources = .singleSource(NIOLeafFiles(fileio: app.fileio, limits: [.toSandbox, .onlyLeafExtensions], sandboxDirectory: views, viewDirectory: views))

    // Order matters: errors wrap everything; the principal is known before CSRF is checked.
    app.middleware = Middlewares()
    app.middleware.use(SecurityHeadersMiddleware())
    app.middleware.use(ProblemMiddleware())
    app.middleware.use(FileMiddleware(publicDirectory: WebResources.root.appendingPathComponent("Public").path + "/"))
    app.middleware.use(PrincipalMiddleware())
    app.middleware.use(CSRFMiddleware())

    try registerRoutes(app)
}

func registerRoutes(_ app: Application) throws {
    OperationsRoutes().register(app.routes)
    SignInRoutes().register(app.routes)

    let signedIn = app.routes.grouped(RequireSignIn())
    ClinicalPages().register(signedIn)
    AdminPages().register(signedIn)
    AuditPages().register(signedIn)

    let v1 = app.routes.grouped("api", "v1")
    v1.get("openapi.json") { req -> Response in
        let document = try OpenAPIDocument.build(req.application.openAPI)
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
        let response = Response(status: .ok, body: .init(data: data))
        response.headers.contentType = .json
        return response
    }
    APIRoutes(api: APIBuilder(routes: v1.grouped(RequireSignIn()), registry: app.openAPI, prefix: "/api/v1")).register()
}

/// Conservative browser headers: no framing, no sniffing, scripts only from Rounds itself.
struct SecurityHeadersMiddleware: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let response = try await next.respond(to: request)
        response.headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        response.headers.replaceOrAdd(name: "X-Frame-Options", value: "DENY")
        response.headers.replaceOrAdd(name: "Referrer-Policy", value: "same-origin")
        response.headers.replaceOrAdd(name: "Content-Security-Policy",
                                      value: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
        return response
    }
}
