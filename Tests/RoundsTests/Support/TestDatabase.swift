import Fluent
import Foundation
import RoundsHL7
import RoundsCore
import RoundsDemo
import RoundsDirectory
import RoundsStore
import RoundsWeb
import SQLKit
import Testing
import Vapor

/// The database backends a store-level test runs on. SQLite always; PostgreSQL when
/// `ROUNDS_TEST_POSTGRES_URL` names a server (`.ci/run` starts one and sets it).
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["ROUNDS_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        return url
    }

    /// Test arguments: every backend that is available here.
    static var all: [Backend] {
        postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]
    }
}

/// Hands each test its own database, copied from a template that was migrated and seeded
/// with the demo organisation once per test process: cheap per test, and tests never share rows.
actor TestDatabases {
    static let shared = TestDatabases()

    // Tasks, not values: tests ask concurrently, and all must wait for the one migration.
    private var sqliteTemplate: Task<String, any Error>?
    private var postgresTemplate: Task<String, any Error>?
    private var adminApp: Task<Application, any Error>?
    private let runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    /// A fresh database location for one test, and how to throw it away afterwards.
    func make(_ backend: Backend) async throws -> (DatabaseLocation, @Sendable () async -> Void) {
        switch backend {
        case .sqlite:
            let template = try await sqliteTemplatePath()
            let path = NSTemporaryDirectory() + "rounds-test-\(UUID().uuidString).sqlite"
            try FileManager.default.copyItem(atPath: template, toPath: path)
            return (.sqlite(path: path), { try? FileManager.default.removeItem(atPath: path) })
        case .postgres:
            guard let base = Backend.postgresURL else { throw TestSetupError("ROUNDS_TEST_POSTGRES_URL is not set") }
            let template = try await postgresTemplateName(base: base)
            let name = "rounds_t_\(runID)_\(UUID().uuidString.prefix(8).lowercased())"
            let admin = try await adminDatabase(base: base)
            // Tests run in parallel; PostgreSQL refuses to copy a template while another copy of
            // it is starting, so try again briefly.
            var attempt = 0
            while true {
                do {
                    try await admin.raw("CREATE DATABASE \(unsafeRaw: name) TEMPLATE \(unsafeRaw: template)").run()
                    break
                } catch where attempt < 50 {
                    attempt += 1
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            let url = Self.url(base, database: name)
            return (.postgres(url: url), {
                try? await admin.raw("DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)").run()
            })
        }
    }

    private func sqliteTemplatePath() async throws -> String {
        if let sqliteTemplate { return try await sqliteTemplate.value }
        let path = NSTemporaryDirectory() + "rounds-template-\(runID).sqlite"
        let task = Task {
            try await Self.migrateAndSeed(.sqlite(path: path))
            return path
        }
        sqliteTemplate = task
        return try await task.value
    }

    private func postgresTemplateName(base: String) async throws -> String {
        if let postgresTemplate { return try await postgresTemplate.value }
        let name = "rounds_template_\(runID)"
        let task = Task {
            let admin = try await self.adminDatabase(base: base)
            try await admin.raw("DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)").run()
            try await admin.raw("CREATE DATABASE \(unsafeRaw: name)").run()
            try await Self.migrateAndSeed(.postgres(url: Self.url(base, database: name)))
            return name
        }
        postgresTemplate = task
        return try await task.value
    }

    /// A connection to the server's maintenance database, for CREATE/DROP DATABASE.
    private func adminDatabase(base: String) async throws -> any SQLDatabase {
        if adminApp == nil {
            adminApp = Task {
                let app = try await Application.make(.testing)
                app.databases.use(try .postgres(url: base, maxConnectionsPerEventLoop: 2), as: .psql)
                return app
            }
        }
        return try await adminApp!.value.db as! any SQLDatabase
    }

    private static func migrateAndSeed(_ location: DatabaseLocation) async throws {
        let app = try await Application.make(.testing)
        app.logger.logLevel = .warning
        do {
            try await configure(app, TestApp.configuration(location, clock: TestClock()))
            try await DemoSeed(clock: TestClock(), ids: .uuidV7(), hasher: PasswordHasher(cost: 4)).run(on: app.db)
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }

    static func url(_ base: String, database: String) -> String {
        guard var parts = URLComponents(string: base) else { return base }
        parts.path = "/" + database
        return parts.string ?? base
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum TestApp {
    static func configuration(_ location: DatabaseLocation, clock: TestClock) -> RoundsConfiguration {
        var configuration = RoundsConfiguration(database: location, clock: clock, ids: .uuidV7(clock: clock), bcryptCost: 4)
        // The tests' fake peers listen on loopback.
        configuration.allowedDestinations = try! DestinationAllowList.standard.adding(["127.0.0.1"])
        // Tests drive the dispatcher and timers themselves (serving tests turn it on).
        configuration.backgroundWork = false
        return configuration
    }

    /// Runs `body` with a configured app on a fresh copy of the demo database.
    static func with(_ backend: Backend, clock: TestClock = TestClock(), trustProxy: Bool = false,
                     adjust: (inout RoundsConfiguration) -> Void = { _ in },
                     _ body: (Application, TestClock) async throws -> Void) async throws {
        let (location, dispose) = try await TestDatabases.shared.make(backend)
        let app = try await Application.make(.testing)
        app.logger.logLevel = .warning
        do {
            var configuration = configuration(location, clock: clock)
            configuration.trustProxyHeaders = trustProxy
            adjust(&configuration)
            try await configure(app, configuration)
            try await body(app, clock)
        } catch {
            try? await app.asyncShutdown()
            await dispose()
            throw error
        }
        try await app.asyncShutdown()
        await dispose()
    }
}

extension TestApp {
    /// Runs `body` with a server listening on loopback ports (HTTP and MLLP) on a fresh copy of
    /// the demo database: the whole path as a hospital runs it.
    static func serving(_ backend: Backend, adjust: (inout RoundsConfiguration) -> Void = { _ in },
                        _ body: (Application, _ httpPort: Int, _ mllpPort: Int) async throws -> Void) async throws {
        let (location, dispose) = try await TestDatabases.shared.make(backend)
        let app = try await Application.make(.testing)
        app.logger.logLevel = .warning
        do {
            var configuration = TestApp.configuration(location, clock: TestClock())
            configuration.integration = .init(host: "127.0.0.1", port: 0)
            configuration.runOutboundQueue = false
            configuration.backgroundWork = true
            adjust(&configuration)
            try await configure(app, configuration)
            let port = try await RealtimeTests.serve(app)
            guard let mllp = app.mllpPort else { throw TestSetupError("the MLLP listener did not start") }
            try await body(app, port, mllp)
        } catch {
            await app.server.shutdown()
            try? await app.asyncShutdown()
            await dispose()
            throw error
        }
        await app.server.shutdown()
        try await app.asyncShutdown()
        await dispose()
    }

    /// Sends a fixture over MLLP (with optional edits) and expects an AA.
    static func sendOverMLLP(_ name: String, port: Int, controlID: String? = nil, _ edits: [String: String] = [:]) async throws {
        let message = try PatientGroupTests.fixture(name, controlID: controlID, edits)
        let ack = try await MLLPClient.withConnection(host: "127.0.0.1", port: port) { session in
            try await session.send(Array(message.encode().utf8))
        }
        #expect(try HL7Message.parse(bytes: ack).0["MSA-1"] == "AA")
    }
}

@Suite struct BackendCoverageTests {
    /// CI must run the store tests on PostgreSQL as well; a missing URL there is a failure,
    /// not a silent SQLite-only run.
    @Test func continuousIntegrationRunsBothBackends() {
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            #expect(Backend.all == [.sqlite, .postgres], "CI=true but ROUNDS_TEST_POSTGRES_URL is not set")
        } else {
            #expect(Backend.all.first == .sqlite)
        }
    }
}
