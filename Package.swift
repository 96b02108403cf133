// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "rounds",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rounds", targets: ["rounds"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.0"),
        .package(url: "https://github.com/vapor/fluent.git", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-kit.git", from: "1.57.0"),
        .package(url: "https://github.com/vapor/fluent-sqlite-driver.git", from: "4.9.0"),
        .package(url: "https://github.com/vapor/fluent-postgres-driver.git", from: "2.14.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/vapor/leaf.git", from: "4.5.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.34.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // Domain vocabulary: ids, clock, errors, roles. Imports nothing of ours.
        .target(name: "RoundsCore"),
        // HL7 v2: parser, encoder, escaping, character sets, ACKs, MLLP framing, listener and client.
        .target(
            name: "RoundsHL7",
            dependencies: [
                "RoundsCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Persistence: database set-up (no web framework), the migration registry, audit log, the
        // outbox (writer, dispatcher, handler registry), change notifier, write gate, the file store,
        // and the seams capabilities meet through (patient-group cards, background work).
        .target(
            name: "RoundsStore",
            dependencies: [
                "RoundsCore",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "FluentSQL", package: "fluent-kit"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The directory: organisation, staff, roles, tokens, sessions, sign-in, patients and stays
        // (models, migrations and services).
        .target(
            name: "RoundsDirectory",
            dependencies: [
                "RoundsCore", "RoundsStore",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The demo hospital group (`rounds serve --demo`, the tests' template database).
        .target(
            name: "RoundsDemo",
            dependencies: ["RoundsCore", "RoundsStore", "RoundsDirectory", .product(name: "FluentKit", package: "fluent-kit")]
        ),
        // Integration engine: its models and migrations (HL7 messages, orders, results, reports,
        // critical-value rules, outbound queue), inbound pipeline (store → map → outbox → ACK),
        // outbound queue, simulator.
        .target(
            name: "RoundsIntegration",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsDirectory", "RoundsHL7", "RoundsDemo",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Patient groups: members from the care team, messages, bot cards, read receipts.
        .target(
            name: "RoundsChat",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsDirectory",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Critical values: alerts, acknowledgement, escalation ladder (timer rows), closing the loop.
        // Reaches the patient groups only through `PatientGroupCards` (in the store).
        .target(
            name: "RoundsAlerts",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsDirectory",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "SQLKit", package: "sql-kit"),
            ]
        ),
        // FHIR R4 resources Rounds writes (Questionnaire, QuestionnaireResponse), as Codable values.
        .target(name: "RoundsFHIR", dependencies: ["RoundsCore"]),
        // Bedside nursing: assessment instruments as data, scoring, due/overdue, care plans, calendars.
        .target(
            name: "RoundsClinical",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsDirectory", "RoundsFHIR",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Instruments/Shipped")]
        ),
        // Ward-round notes: dictation → transcript (the hospital's recogniser) → sections (its
        // model, or Rounds' rules) → signed versions; the HIS message and the card follow from the event.
        .target(
            name: "RoundsRoundNotes",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsDirectory", "RoundsConnectors",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "SQLKit", package: "sql-kit"),
            ]
        ),
        // MDT consultations: cases, experts (staff and guests by link and one-time code), opinions,
        // the case's discussion, the signed report (to the HIS and the group through its event), statistics.
        .target(
            name: "RoundsMDT",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsDirectory",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Tables: bases, tables as real SQL tables, fields, records with versions and cell history,
        // filters/sorts/pages in SQL, and the formula language (parser, checker, evaluator, library).
        .target(
            name: "RoundsTables",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsDirectory",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "SQLKit", package: "sql-kit"),
            ]
        ),
        // Outside delivery of critical values: Feishu/Lark and WeCom webhooks, SMS gateway, SMTP.
        .target(
            name: "RoundsConnectors",
            dependencies: [
                "RoundsCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Every background loop as a ServiceLifecycle service: the outbox dispatcher, the loops the
        // capabilities register (`BackgroundWork`) and the MLLP listener. Knows no capability.
        .target(
            name: "RoundsRuntime",
            dependencies: [
                "RoundsCore", "RoundsStore",
                .product(name: "FluentKit", package: "fluent-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // HTTP: routes, auth, permissions, templates, i18n, metrics.
        .target(
            name: "RoundsWeb",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsHL7", "RoundsIntegration", "RoundsChat", "RoundsAlerts", "RoundsConnectors",
                "RoundsClinical", "RoundsFHIR", "RoundsRuntime", "RoundsDemo", "RoundsDirectory", "RoundsTables", "RoundsRoundNotes", "RoundsMDT",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
                .product(name: "FluentPostgresDriver", package: "fluent-postgres-driver"),
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Leaf", package: "leaf"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.copy("Resources")]
        ),
        .executableTarget(
            name: "rounds",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsWeb", "RoundsHL7", "RoundsIntegration", "RoundsRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Vapor", package: "vapor"),
            ]
        ),
        .testTarget(
            name: "RoundsTests",
            dependencies: [
                "RoundsCore", "RoundsStore", "RoundsWeb", "RoundsHL7", "RoundsIntegration", "RoundsChat", "RoundsAlerts",
                "RoundsConnectors", "RoundsClinical", "RoundsFHIR", "RoundsRuntime", "RoundsDemo", "RoundsDirectory", "RoundsTables", "RoundsRoundNotes", "RoundsMDT",
                .product(name: "VaporTesting", package: "vapor"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
