// swift-tools-version: 6.2
import PackageDescription

// Layers, every dependency pointing down (docs/architecture.md has the same layers and
// a "target | depends on" table; ModuleGraphTests checks both against this file):
//   jobd (CLI: parsing, commands, systemd supervisor)
//   JobdBench (`jobd bench`'s engine)
//   JobdAssembly (builds the daemon from configuration: run, bench and tests)
//   JobdCampaigns (OLTP tier; uses the content and notifications tiers)
//   JobdContent, JobdNotifications, JobdAnalytics (tiers: domain, store, handlers, services)
//   JobdQueue (queue runtime, JobHandler, TierDatabase), JobdWeb (console), JobdTestSupport (tests only)
//   JobdPostgres, JobdRedis, JobdNotify, JobdSystemd, JobdMetrics (adapters)
//   JobdCore (pure), JobdThreads (threads, checkout pool), JobdCodec, JobdTestRandom,
//   MigrationEmbedder (build tool run by the EmbedMigrations plugin on JobdPostgres)
//   C system libraries: CLibPQ, CHiredis, CCurl, CSystemd, CZlib
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "jobd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "jobd", targets: ["jobd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.8.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // Tests only: property-based checks of what producers may enqueue.
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // MARK: C libraries named by the product (found with pkg-config)
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // hiredis.pc adds -D_FILE_OFFSET_BITS=64, which SwiftPM rejects with a warning on
        // every build; its header is on the default include path, so no pkg-config here.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // MARK: Pure core: jobs, states, backoff, decisions, configuration. No I/O.
        .target(name: "JobdCore", swiftSettings: strict),

        // MARK: Threads that own blocking C connections (never the cooperative pool).
        .target(name: "JobdThreads", swiftSettings: strict),

        // MARK: Adapters
        .target(
            name: "JobdPostgres",
            dependencies: [
                "CLibPQ", "JobdCore", "JobdThreads",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict,
            plugins: ["EmbedMigrations"]
        ),

        // MARK: Build tool: Migrations/<tier>/*.sql compiled into JobdPostgres as `Migration.embedded`
        .executableTarget(name: "MigrationEmbedder", swiftSettings: strict),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["MigrationEmbedder"]),
        .target(
            name: "JobdRedis",
            dependencies: [
                "CHiredis", "JobdCore", "JobdThreads",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "JobdSystemd",
            dependencies: [
                "CSystemd", "JobdCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // libcurl (HTTP(S) and SMTP) on dedicated threads, and webhook signing.
        .target(
            name: "JobdNotify",
            dependencies: [
                "CCurl", "JobdCore", "JobdThreads",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // The Prometheus endpoint: swift-metrics' Prometheus backend served over NIO HTTP/1.
        .target(
            name: "JobdMetrics",
            dependencies: [
                "JobdCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // MARK: Content tier codecs: zlib (own C library) and SHA-256 (swift-crypto)
        .target(
            name: "JobdCodec",
            dependencies: ["CZlib", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),

        // MARK: The queue tier's runtime: promoter, worker pools, maintenance, scheduler, the
        // JobHandler protocol and registry, tier databases, the shared retention loop.
        .target(
            name: "JobdQueue",
            dependencies: [
                "JobdCore", "JobdPostgres", "JobdRedis",
                "JobdThreads",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // MARK: Tiers: each its domain, store, handlers and services, on top of JobdQueue.
        .target(
            name: "JobdContent",
            dependencies: [
                "JobdCore", "JobdQueue", "JobdPostgres", "JobdCodec",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "JobdNotifications",
            dependencies: [
                "JobdCore", "JobdQueue", "JobdPostgres", "JobdNotify",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "JobdAnalytics",
            dependencies: [
                "JobdCore", "JobdQueue", "JobdPostgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The OLTP tier's campaigns write their messages through the content tier's store and
        // claim recipients with the notification tier's claim tokens.
        .target(
            name: "JobdCampaigns",
            dependencies: [
                "JobdCore", "JobdQueue", "JobdPostgres", "JobdContent", "JobdNotifications", "JobdNotify", "JobdCodec",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // MARK: The one place a daemon is built from configuration: connections, tier
        // migrations, every tier's handlers and services, the JobDaemon. Used by `jobd run`,
        // the bench and the integration tests.
        .target(
            name: "JobdAssembly",
            dependencies: [
                "JobdCore", "JobdPostgres", "JobdRedis", "JobdSystemd", "JobdThreads", "JobdQueue",
                "JobdContent", "JobdNotifications", "JobdAnalytics", "JobdCampaigns",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // MARK: The benchmark (`jobd bench`): runs the assembled daemon in process.
        .target(
            name: "JobdBench",
            dependencies: [
                "JobdCore", "JobdPostgres", "JobdRedis", "JobdQueue", "JobdAssembly",
                "JobdContent", "JobdNotifications", "JobdAnalytics", "JobdCampaigns",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // MARK: The operator's web console (`jobd web`, JOBD_WEB_LISTEN): Hummingbird 2 over NIO,
        // server-rendered HTML and a JSON API; libpq on its own threads, as everywhere.
        .target(
            name: "JobdWeb",
            dependencies: [
                "JobdCore", "JobdPostgres", "JobdRedis", "JobdThreads", "JobdNotifications", "JobdCampaigns",
                "JobdContent",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // MARK: The CLI that wires everything
        .executableTarget(
            name: "jobd",
            dependencies: [
                "JobdCore", "JobdPostgres", "JobdRedis", "JobdQueue", "JobdSystemd", "JobdMetrics", "JobdWeb",
                "JobdContent", "JobdAnalytics", "JobdCampaigns", "JobdAssembly", "JobdBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),

        // MARK: Tests
        .target(name: "JobdTestRandom", swiftSettings: strict),
        .target(
            name: "JobdTestSupport",
            dependencies: [
                "JobdCore", "JobdPostgres", "JobdRedis",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The tier domains' pure parts (content parsing, campaign mail, analytics days) and every
        // tier's settings (read through JobdAssembly's `JobdSettings`) are tested here too.
        .testTarget(
            name: "JobdCoreTests",
            dependencies: [
                "JobdCore", "JobdTestRandom", "JobdQueue", "JobdContent", "JobdNotifications", "JobdAnalytics", "JobdCampaigns",
                "JobdAssembly",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "JobdThreadsTests", dependencies: ["JobdThreads"], swiftSettings: strict),
        .testTarget(name: "JobdQueueTests", dependencies: ["JobdQueue", "JobdCore"], swiftSettings: strict),
        .testTarget(name: "JobdCodecTests", dependencies: ["JobdCodec", "JobdTestRandom"], swiftSettings: strict),
        .testTarget(
            name: "JobdSystemdTests",
            dependencies: [
                "JobdSystemd", "JobdCore", "JobdPostgres", "JobdTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "JobdIntegrationTests",
            dependencies: [
                "JobdCore", "JobdPostgres", "JobdRedis", "JobdQueue", "JobdSystemd", "JobdMetrics", "JobdTestSupport", "JobdTestRandom",
                "JobdNotify", "JobdContent", "JobdNotifications", "JobdAnalytics", "JobdCampaigns", "JobdAssembly",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                "JobdCodec",
                "JobdWeb",
                "JobdThreads",
            ],
            swiftSettings: strict
        ),
    ]
)
