import ArgumentParser
import Foundation
import NIOSSL
import RoundsCore
import RoundsHL7
import RoundsIntegration
import RoundsStore
import RoundsWeb

@main
struct RoundsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rounds",
        abstract: "Rounds: clinical collaboration and integration hub for hospitals.",
        subcommands: [Serve.self, Worker.self, Migrate.self, Admin.self, SendHL7.self, Simulate.self, Bench.self])
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

    @Option(help: "Close an HTTP connection after this many silent seconds.")
    var httpIdleTimeout: Int64 = 60

    @Option(help: "Seconds a client has to send a request body once its headers are in (slower ones get a 408).")
    var httpBodyTimeout: Int64 = 120

    @Option(help: "With --demo: messages per second of the simulated HIS/LIS feed (0 = off).")
    var demoFeedRate = 0.1

    @OptionGroup var mllp: MLLPOptions
    @OptionGroup var delivery: DeliveryOptions

    @Flag(help: "Web only: no MLLP listener and no background work (run `rounds worker` beside it, on the same PostgreSQL).")
    var noWorker = false

    func validate() throws {
        guard (4...31).contains(bcryptCost) else { throw ValidationError("--bcrypt-cost must be between 4 and 31") }
        guard (1...65535).contains(port) else { throw ValidationError("--port must be between 1 and 65535") }
        guard httpIdleTimeout >= 1, httpBodyTimeout >= 1 else { throw ValidationError("--http-idle-timeout and --http-body-timeout must be at least 1 second") }
        guard demoFeedRate >= 0, demoFeedRate <= 1000 else { throw ValidationError("--demo-feed-rate must be between 0 and 1000") }
    }

    func run() async throws {
        let integration = noWorker ? nil : try mllp.settings(demoFeedRate: demo ? demoFeedRate : 0)
        var configuration = RoundsConfiguration(database: database.location, bcryptCost: bcryptCost,
                                                secureCookies: secureCookies, trustProxyHeaders: trustProxy, integration: integration)
        try delivery.apply(to: &configuration)
        configuration.backgroundWork = !noWorker
        configuration.httpLimits = .init(idleTimeout: .seconds(httpIdleTimeout), bodyTimeout: .seconds(httpBodyTimeout))
        try await RoundsRunner.serve(configuration, host: host, port: port, demo: demo)
    }
}

/// The runtime without HTTP: outbox dispatch, escalation timers, outside deliveries, bot
/// callbacks, the outbound HL7 queue and the MLLP listener. Several may run on one PostgreSQL.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the background work and the MLLP listener, without the web server.")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var mllp: MLLPOptions
    @OptionGroup var delivery: DeliveryOptions

    func run() async throws {
        var configuration = RoundsConfiguration(database: database.location, integration: try mllp.settings(demoFeedRate: 0))
        try delivery.apply(to: &configuration)
        try await RoundsRunner.work(configuration)
    }
}

/// The MLLP listener's options (`serve` and `worker`).
struct MLLPOptions: ParsableArguments {
    @Option(help: "MLLP (HL7 v2) port.")
    var mllpPort = MLLP.defaultPort

    @Option(help: "Address the MLLP listener binds to.")
    var mllpHost = "0.0.0.0"

    @Flag(help: "Do not start the MLLP listener (the rest of the background work still runs).")
    var noMllp = false

    @Option(help: "Largest HL7 message accepted, in bytes (larger ones are refused with an AR).")
    var mllpMaxSize = MLLP.defaultMaximumSize

    @Option(help: "Close an MLLP connection after this many idle seconds.")
    var mllpIdleTimeout: Int64 = 600

    @Option(help: "MLLP connections served at once; more are closed as they open.")
    var mllpMaxConnections = MLLP.defaultMaximumConnections

    @Option(help: "PEM certificate chain: MLLP over TLS (with --mllp-tls-key).")
    var mllpTlsCert: String?

    @Option(help: "PEM private key for --mllp-tls-cert.")
    var mllpTlsKey: String?

    func validate() throws {
        guard (0...65535).contains(mllpPort) else { throw ValidationError("--mllp-port must be between 0 and 65535") }
        guard mllpMaxSize >= 1024 else { throw ValidationError("--mllp-max-size must be at least 1024 bytes") }
        guard mllpIdleTimeout >= 1 else { throw ValidationError("--mllp-idle-timeout must be at least 1 second") }
        guard mllpMaxConnections >= 1 else { throw ValidationError("--mllp-max-connections must be at least 1") }
        guard (mllpTlsCert == nil) == (mllpTlsKey == nil) else { throw ValidationError("--mllp-tls-cert and --mllp-tls-key go together") }
    }

    /// The listener's settings; nil with --no-mllp.
    func settings(demoFeedRate: Double) throws -> IntegrationService.Settings? {
        guard !noMllp else { return nil }
        var tls: NIOSSLContext?
        if let mllpTlsCert, let mllpTlsKey {
            let chain = try NIOSSLCertificate.fromPEMFile(mllpTlsCert).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: mllpTlsKey, format: .pem)
            tls = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
        }
        return .init(host: mllpHost, port: mllpPort, maximumMessageSize: mllpMaxSize, idleTimeoutSeconds: mllpIdleTimeout,
                     maximumConnections: mllpMaxConnections, tls: tls, demoFeedRate: demoFeedRate)
    }
}

/// Where critical values may go outside, and the address their links point to.
struct DeliveryOptions: ParsableArguments {
    @Option(help: "Rounds' address as staff reach it (e.g. https://rounds.example.cn), for links in critical-value messages sent outside (also ROUNDS_PUBLIC_URL).")
    var publicUrl: String?

    @Option(name: .customLong("allow-destination"),
            help: "A host alert connectors and outbound HL7 may send to: host, host:port, *.domain or a.b.c.d/n; repeat for more (also ROUNDS_ALLOWED_DESTINATIONS, comma-separated). The Feishu and WeCom webhook hosts are always allowed.")
    var allowDestination: [String] = []

    var allowedDestinations: DestinationAllowList {
        get throws {
            let fromEnvironment = (ProcessInfo.processInfo.environment["ROUNDS_ALLOWED_DESTINATIONS"] ?? "")
                .split(separator: ",").map(String.init)
            return try DestinationAllowList.standard.adding(allowDestination + fromEnvironment)
        }
    }

    func validate() throws {
        if let publicUrl, URL(string: publicUrl)?.host == nil { throw ValidationError("--public-url must be an http(s) address") }
        do { _ = try allowedDestinations } catch let error as RoundsError {
            throw ValidationError("--allow-destination: \(error.messageEN)")
        }
    }

    func apply(to configuration: inout RoundsConfiguration) throws {
        configuration.publicURL = publicUrl ?? ProcessInfo.processInfo.environment["ROUNDS_PUBLIC_URL"]
        configuration.allowedDestinations = try allowedDestinations
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

/// Options for talking to an MLLP peer.
struct MLLPPeerOptions: ParsableArguments {
    @Option(help: "Host of the MLLP listener.")
    var host = "127.0.0.1"

    @Option(help: "Its port.")
    var port = MLLP.defaultPort

    @Flag(help: "Use TLS.")
    var tls = false

    @Option(help: "PEM file of the CA (or self-signed certificate) to trust with --tls.")
    var caCert: String?

    @Option(help: "Seconds to wait for each acknowledgement.")
    var timeout: Int64 = 30

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("--port must be between 1 and 65535") }
        guard timeout >= 1 else { throw ValidationError("--timeout must be at least 1 second") }
    }

    func sender() throws -> HL7Sender {
        var sender = HL7Sender(host: host, port: port)
        sender.timeoutSeconds = timeout
        if tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caCert {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caCert))
            }
            sender.tls = try NIOSSLContext(configuration: configuration)
        }
        return sender
    }
}

struct SendHL7: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-hl7",
        abstract: "Send HL7 messages from files over MLLP and print each acknowledgement.",
        discussion: "A file may hold several messages, each starting on a line with MSH; '-' reads standard input. Exits 1 if any message was not accepted (AA).")

    @OptionGroup var peer: MLLPPeerOptions

    @Flag(help: "Print the whole acknowledgement, not just its code and text.")
    var verbose = false

    @Argument(help: "Files with HL7 messages.")
    var files: [String]

    func run() async throws {
        var messages: [(file: String, bytes: [UInt8])] = []
        for file in files {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let read = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                data = read
            }
            let found = HL7Sender.messages(inFile: Array(data))
            guard !found.isEmpty else { throw ValidationError("\(file) holds no HL7 message") }
            messages += found.map { (file, $0) }
        }
        var iterator = messages.makeIterator()
        var refused = 0
        let verbose = self.verbose
        try await peer.sender().run(next: { iterator.next()?.bytes }, done: { result in
            let source = messages[result.index].file
            print("\(source)\t\(result.controlID)\t\(result.ackCode)\(result.text.map { "\t\($0)" } ?? "")")
            if verbose { print(String(decoding: result.acknowledgement, as: UTF8.self).replacingOccurrences(of: "\r", with: "\n")) }
            if result.ackCode != "AA" && result.ackCode != "CA" { refused += 1 }
        })
        if refused > 0 {
            print("\(refused) of \(messages.count) messages were not accepted")
            throw ExitCode(1)
        }
    }
}

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Feed a Rounds MLLP listener like the demo hospital's HIS, LIS and pathology systems would.",
        discussion: "Admissions to free beds, transfers, medication orders and changes, lab results (about 5% with a critical value), pathology reports with a PDF, and discharges, for the demo organisation (facility ARION).")

    @OptionGroup var peer: MLLPPeerOptions

    @Option(help: "Messages per second.")
    var rate = 5.0

    @Option(help: "Stop after this many messages (default: run until interrupted).")
    var count: Int?

    @Option(help: "Random seed (the same seed gives the same feed).")
    var seed: UInt64?

    @Flag(help: "Print one line per message.")
    var verbose = false

    @Option(help: "Write the messages to this file (one per line, segments separated by CR) instead of sending them; needs --count.")
    var output: String?

    func validate() throws {
        guard rate > 0, rate <= 100_000 else { throw ValidationError("--rate must be above 0 (and at most 100000)") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if output != nil, count == nil { throw ValidationError("--output needs --count") }
    }

    func run() async throws {
        var simulator = FeedSimulator(seed: seed ?? UInt64.random(in: 0...UInt64.max),
                                      runTag: String(Int(Date().timeIntervalSince1970) % 100_000))
        if let output, let count {
            var text = ""
            for _ in 0..<count { text += simulator.next(at: Date()) + "\n" }
            try text.write(toFile: output, atomically: true, encoding: .utf8)
            print("wrote \(count) messages to \(output)")
            return
        }
        let interval = 1 / rate
        let start = Date()
        var produced = 0
        var codes: [String: Int] = [:]
        let limit = count, verbose = self.verbose
        try await peer.sender().run(next: {
            if let limit, produced >= limit { return nil }
            // Pace against the start time, so slow ACKs do not lower the rate.
            let due = start.addingTimeInterval(Double(produced) * interval)
            let wait = due.timeIntervalSinceNow
            if wait > 0 { try? await Task.sleep(for: .milliseconds(Int(wait * 1000))) }
            produced += 1
            return Array(simulator.next(at: Date()).utf8)
        }, done: { result in
            codes[result.ackCode, default: 0] += 1
            if verbose || result.ackCode != "AA" {
                print("\(result.controlID)\t\(result.ackCode)\(result.text.map { "\t\($0)" } ?? "")")
            }
        })
        let elapsed = Date().timeIntervalSince(start)
        print("sent \(produced) messages in \(String(format: "%.1f", elapsed)) s: " + codes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measurements for scripts/bench-*.", shouldDisplay: false, subcommands: [ParseHL7.self])

    struct ParseHL7: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "parse-hl7", abstract: "Parse throughput: messages per second.")

        @Option(help: "Times to parse the whole set.")
        var iterations = 2000

        @Argument(help: "Files with HL7 messages.")
        var files: [String]

        func run() throws {
            var messages: [[UInt8]] = []
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                messages += HL7Sender.messages(inFile: Array(data))
            }
            guard !messages.isEmpty else { throw ValidationError("no messages") }
            var fields = 0
            let clock = ContinuousClock()
            let elapsed = try clock.measure {
                for _ in 0..<iterations {
                    for m in messages {
                        let (parsed, _) = try HL7Message.parse(bytes: m)
                        fields &+= parsed.segments.count
                    }
                }
            }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let total = iterations * messages.count
            print("{\"messages\": \(total), \"seconds\": \(seconds), \"per_second\": \(Double(total) / seconds), \"checksum\": \(fields)}")
        }
    }
}
