import Foundation
import RoundsCore
import RoundsDemo
import RoundsDirectory
import RoundsStore
import ServiceLifecycle
import Vapor

/// What the `rounds` commands do, kept here so the executable stays a thin argument parser.
public enum RoundsRunner {
    /// Starts the server and returns when it is stopped (SIGINT / SIGTERM).
    public static func serve(_ configuration: RoundsConfiguration, host: String, port: Int, demo: Bool) async throws {
        try await withApplication(arguments: ["rounds", "serve", "--hostname", host, "--port", String(port)]) { app in
            try await configure(app, configuration)
            app.logger.notice("database: \(configuration.database)")
            if demo {
                let seeded = try await DemoSeed(clock: configuration.clock, ids: configuration.ids,
                                                hasher: PasswordHasher(cost: configuration.bcryptCost)).run(on: app.db)
                // The seeded patients were not admitted over HL7: open their groups directly.
                try await app.rounds.chat.openGroupsForActiveStays(on: app.db)
                print(seeded ? "Demo hospital group created: 华康医疗集团, 2 hospitals, 6 wards, 52 beds, 23 staff, 28 patients."
                             : "The database already has an organisation; the demo seed was skipped.")
                print("Demo logins (password: \(DemoSeed.password)):")
                for login in DemoSeed.logins {
                    print("  \(login.username.padding(toLength: 11, withPad: " ", startingAt: 0)) \(login.displayName)  \(login.what)")
                }
            }
            print("Rounds is listening on http://\(host == "0.0.0.0" ? "localhost" : host):\(port)/")
            fflush(nil)
            try await app.execute()
        }
    }

    /// The runtime without HTTP (`rounds worker`), until SIGTERM or SIGINT, which drain it.
    public static func work(_ configuration: RoundsConfiguration) async throws {
        var configuration = configuration
        configuration.backgroundWork = false  // run below, under this process's signals
        try await withApplication { app in
            try await configure(app, configuration)
            try await app.asyncBoot()  // LISTEN on PostgreSQL: the web processes' events wake us
            let runtime = app.roundsRuntime()
            if let port = try await runtime.bindListener() { print("Rounds worker: MLLP listener on port \(port).") }
            print("Rounds worker is running (database: \(configuration.database)).")
            fflush(nil)
            try await runtime.serviceGroup(signals: [.sigterm, .sigint], logger: app.logger).run()
            app.logger.notice("Rounds worker stopped")
        }
    }

    public static func migrate(_ configuration: RoundsConfiguration) async throws {
        try await withApplication { app in try await configure(app, configuration) }
    }

    /// Creates a group administrator; returns (username, id).
    public static func createAdministrator(_ configuration: RoundsConfiguration, username: String, name: String,
                                           password: String) async throws -> (String, String) {
        try await withApplication { app in
            try await configure(app, configuration)
            let staff = try await app.rounds.organisation.bootstrapAdministrator(username: username, displayName: name,
                                                                                 password: password, on: app.db)
            return (staff.username, staff.id ?? "")
        }
    }

    private static func withApplication<T>(arguments: [String] = ["rounds"], _ body: (Application) async throws -> T) async throws -> T {
        // Vapor must not read our command line as its own, so it gets arguments of our making.
        var env = Environment(name: ProcessInfo.processInfo.environment["ROUNDS_ENV"] ?? "production", arguments: arguments)
        try LoggingSystem.bootstrap(from: &env)
        let app = try await Application.make(env)
        do {
            let result = try await body(app)
            try await app.asyncShutdown()
            return result
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
    }
}
