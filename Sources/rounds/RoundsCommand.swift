import ArgumentParser
import Foundation
import RoundsCore
import RoundsStore
import RoundsWeb

@main
struct RoundsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rounds",
        abstract: "Rounds: clinical collaboration and integration hub for hospitals.",
        subcommands: [Serve.self, Migrate.self, Admin.self])
}

/// Options every command that touches the database shares.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "SQLite file (ignored when DATABASE_URL is set).")
    var db: String = "rounds.sqlite"

    var location: DatabaseLocation {
        DatabaseLocation.resolve(databaseURL: ProcessInfo.processInfo.environment["DATABASE_URL"], sqlitePath: db)
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the web server (migrates the database first).")

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Seed a demo hospital group (wards, beds, staff, patients) if the database is empty.")
    var demo = false

    @Option(help: "Address to listen on; 0.0.0.0 to reach it from iPads on the ward network.")
    var host = "127.0.0.1"

    @Option(help: "HTTP port.")
    var port = 8080

    @Option(help: "Bcrypt cost for new passwords (4–31).")
    var bcryptCost = 12

    @Flag(help: "Mark cookies Secure (when served over HTTPS, e.g. behind a TLS proxy).")
    var secureCookies = false

    @Flag(help: "Believe X-Forwarded-For for client addresses (only behind your own reverse proxy).")
    var trustProxy = false

    func validate() throws {
        guard (4...31).contains(bcryptCost) else { throw ValidationError("--bcrypt-cost must be between 4 and 31") }
        guard (1...65535).contains(port) else { throw ValidationError("--port must be between 1 and 65535") }
    }

    func run() async throws {
        let configuration = RoundsConfiguration(database: database.location, bcryptCost: bcryptCost,
                                                secureCookies: secureCookies, trustProxyHeaders: trustProxy)
        try await RoundsRunner.serve(configuration, host: host, port: port, demo: demo)
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or update the database schema, then exit.")

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await RoundsRunner.migrate(RoundsConfiguration(database: database.location))
        print("The database is up to date (\(database.location)).")
    }
}

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Administration from the command line.", subcommands: [CreateUser.self])

    struct CreateUser: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-user",
            abstract: "Create a group administrator (the first account of a new installation).")

        @OptionGroup var database: DatabaseOptions

        @Option(help: "Sign-in name (letters, digits, . - _).")
        var username: String

        @Option(help: "Name shown to others.")
        var name: String

        @Flag(help: "Read the password from standard input instead of prompting.")
        var passwordStdin = false

        func run() async throws {
            let password = try readPassword()
            do {
                let (username, id) = try await RoundsRunner.createAdministrator(
                    RoundsConfiguration(database: database.location), username: username, name: name, password: password)
                print("Created group administrator \(username) (\(id)).")
            } catch let error as RoundsError {
                throw ValidationError(error.messageEN + (error.detail.map { ": \($0)" } ?? ""))
            }
        }

        private func readPassword() throws -> String {
            if passwordStdin {
                guard let line = readLine(strippingNewline: true), !line.isEmpty else { throw ValidationError("no password on standard input") }
                return line
            }
            guard let typed = getpass("Password: ") else { throw ValidationError("no password") }
            let password = String(cString: typed)
            guard let again = getpass("Again: "), String(cString: again) == password else { throw ValidationError("the passwords differ") }
            return password
        }
    }
}
