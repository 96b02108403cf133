import Fluent
import Metrics
import Prometheus
import SQLKit
import Vapor

/// `/healthz` for load balancers and `/metrics` for Prometheus.
struct OperationsRoutes {
    func register(_ routes: any RoutesBuilder) {
        routes.get("healthz", use: health)
        routes.get("metrics", use: metrics)
    }

    struct Health: Content {
        var status: String
        var database: String
    }

    @Sendable func health(req: Request) async throws -> Response {
        let ok = await RoundsMetrics.pingDatabase(req.db)
        let response = try await Health(status: ok ? "ok" : "degraded", database: ok ? "ok" : "unreachable")
            .encodeResponse(status: ok ? .ok : .serviceUnavailable, for: req)
        return response
    }

    @Sendable func metrics(req: Request) async throws -> Response {
        _ = await RoundsMetrics.pingDatabase(req.db)
        var buffer = [UInt8]()
        RoundsMetrics.registry.emit(into: &buffer)
        let response = Response(status: .ok, body: .init(data: Data(buffer)))
        response.headers.contentType = HTTPMediaType(type: "text", subType: "plain", parameters: ["version": "0.0.4", "charset": "utf-8"])
        return response
    }
}

/// One Prometheus registry per process. Vapor itself reports `http_requests_total` and
/// `http_request_duration_seconds` through swift-metrics; we add the database's view.
public enum RoundsMetrics {
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrap: Void = {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }()

    static func bootstrapOnce() { _ = bootstrap }

    static let dbUp = registry.makeGauge(descriptor: .init(
        namespace: "rounds", subsystem: "db", metricName: "up", unitName: "", helpText: "1 when the database answered the last ping"))
    static let dbPing = registry.makeDurationHistogram(
        descriptor: .init(namespace: "rounds", subsystem: "db", metricName: "ping", unitName: "seconds",
                          helpText: "Round trip of a trivial query"),
        buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100), .milliseconds(500), .seconds(2)])
    static let dbPool = registry.makeGauge(descriptor: .init(
        namespace: "rounds", subsystem: "db_pool", metricName: "max_connections_per_event_loop", unitName: "",
        helpText: "Connections the database pool may open per event loop"))

    static func pingDatabase(_ db: any Database) async -> Bool {
        let start = ContinuousClock.now
        do {
            guard let sql = db as? any SQLDatabase else { return false }
            try await sql.raw("SELECT 1").run()
            dbPing.record(ContinuousClock.now - start)
            dbUp.set(to: 1)
            return true
        } catch {
            dbUp.set(to: 0)
            return false
        }
    }
}
