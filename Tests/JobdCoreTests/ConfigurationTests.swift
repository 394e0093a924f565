import JobdAssembly
import JobdCore
import Testing

/// Parses a configuration from a dictionary keyed by `Key`.
private func parse(_ values: [DaemonConfiguration.Key: String]) throws(ConfigurationError) -> DaemonConfiguration {
    try DaemonConfiguration.parse { values[$0] }
}

/// The error a configuration is rejected with, or nil when it parses.
private func rejection(_ values: [DaemonConfiguration.Key: String]) -> ConfigurationError? {
    do {
        _ = try parse(values)
        return nil
    } catch {
        return error
    }
}

@Suite("DaemonConfiguration.parse")
struct ConfigurationTests {
    typealias Key = DaemonConfiguration.Key

    // MARK: Defaults

    @Test("an empty lookup gives the defaults")
    func emptyLookupGivesDefaults() throws {
        let config = try DaemonConfiguration.parse { _ in nil }
        #expect(config == DaemonConfiguration.defaults)
        #expect(config.databaseURL == nil)
        #expect(config.redisURL == RedisURL(host: "127.0.0.1", port: 6379, password: nil, username: nil, database: 0))
        #expect(config.redisPrefix == "jobd")
        #expect(config.workers == .shared(16))
        #expect(config.priorityMode == .weighted([.high: 6, .normal: 3, .low: 1]))
        #expect(config.pollInterval == .seconds(1))
        #expect(config.lease == .seconds(60))
        #expect(config.backoff == RetryBackoff(base: .seconds(1), maximum: .seconds(3_600), jitter: 0.5))
        #expect(config.shutdownTimeout == .seconds(30))
        #expect(config.promoteBatch == 1_000)
        #expect(config.redisHighWater == 2_000)
        #expect(config.claimPipelines == 1)
        #expect(config.maintenanceInterval == .seconds(5))
        #expect(config.maxRescues == 3)
        #expect(config.maxPayloadBytes == 1_048_576)
        #expect(config.commandTimeout == .seconds(10))
        #expect(config.logLevel == "info")
        #expect(config.logFormat == "auto")
    }

    @Test("empty and blank values count as unset", arguments: ["", " ", "  \t "])
    func blankValuesAreUnset(blank: String) throws {
        let config = try DaemonConfiguration.parse { _ in blank }
        #expect(config == DaemonConfiguration.defaults)
    }

    @Test("the lookup is asked for every key")
    func everyKeyLookedUp() throws {
        var asked: Set<String> = []
        _ = try DaemonConfiguration.parse { key in
            asked.insert(key.rawValue)
            return nil
        }
        #expect(asked == Set(DaemonConfiguration.keys.map(\.rawValue)))
    }

    // MARK: Each key

    @Test("database URL is kept verbatim, trimmed")
    func databaseURL() throws {
        #expect(try parse([.databaseURL: "postgresql://jobd:pw@db/jobs"]).databaseURL == "postgresql://jobd:pw@db/jobs")
        #expect(try parse([.databaseURL: "  host=db dbname=jobs  "]).databaseURL == "host=db dbname=jobs")
    }

    @Test("redis URL")
    func redisURL() throws {
        let config = try parse([.redisURL: "redis://worker:pw@redis.internal:6380/2"])
        #expect(config.redisURL == RedisURL(host: "redis.internal", port: 6380, password: "pw", username: "worker", database: 2))
    }

    @Test("redis prefix", arguments: ["jobs", "app-1_q.v2:x", "Ünïcödé"])
    func redisPrefix(prefix: String) throws {
        #expect(try parse([.redisPrefix: prefix]).redisPrefix == prefix)
    }

    @Test("workers \"16\" is one shared pool serving every lane")
    func sharedWorkers() throws {
        let workers = try parse([.workers: "16"]).workers
        #expect(workers == .shared(16))
        #expect(workers.total == 16)
        let pools = workers.pools
        #expect(pools.count == 1)
        #expect(pools.first?.lanes == [.high, .normal, .low])
        #expect(pools.first?.slots == 16)
    }

    @Test("workers per priority give each lane its own pool")
    func perPriorityWorkers() throws {
        let workers = try parse([.workers: "high:8,normal:4,low:2"]).workers
        #expect(workers == .perPriority([.high: 8, .normal: 4, .low: 2]))
        #expect(workers.total == 14)
        let pools = workers.pools
        #expect(pools.map(\.lanes) == [[.high], [.normal], [.low]])
        #expect(pools.map(\.slots) == [8, 4, 2])
    }

    @Test("workers per priority: a missing lane is 0 and gets no pool")
    func perPriorityMissingLanes() throws {
        let workers = try parse([.workers: "high:4"]).workers
        #expect(workers == .perPriority([.high: 4, .normal: 0, .low: 0]))
        #expect(workers.total == 4)
        let pools = workers.pools
        #expect(pools.count == 1)
        #expect(pools.first?.lanes == [.high])
        #expect(pools.first?.slots == 4)
    }

    @Test("workers per priority: order, case and spaces do not matter")
    func perPriorityLenient() throws {
        let workers = try parse([.workers: "LOW: 2 , High:8"]).workers
        #expect(workers == .perPriority([.high: 8, .normal: 0, .low: 2]))
        #expect(workers.pools.map(\.lanes) == [[.high], [.low]])
    }

    @Test("workers bounds", arguments: [("1", 1), ("4096", 4_096)])
    func workersBounds(text: String, count: Int) throws {
        #expect(try parse([.workers: text]).workers == .shared(count))
    }

    @Test("priority mode strict")
    func strictMode() throws {
        #expect(try parse([.priorityMode: "strict"]).priorityMode == .strict)
        #expect(try parse([.priorityMode: "STRICT"]).priorityMode == .strict)
    }

    @Test("priority mode weighted keeps the default weights")
    func weightedMode() throws {
        #expect(try parse([.priorityMode: "Weighted"]).priorityMode == .weighted([.high: 6, .normal: 3, .low: 1]))
    }

    @Test("priority weights")
    func weights() throws {
        #expect(try parse([.priorityWeights: "high:10,normal:5,low:2"]).priorityMode == .weighted([.high: 10, .normal: 5, .low: 2]))
        #expect(try parse([.priorityWeights: "high:1"]).priorityMode == .weighted([.high: 1, .normal: 0, .low: 0]))
        let explicit = try parse([.priorityMode: "weighted", .priorityWeights: "low:0,normal:1,high:3"])
        #expect(explicit.priorityMode == .weighted([.high: 3, .normal: 1, .low: 0]))
    }

    @Test(
        "durations",
        arguments: [
            (Key.pollInterval, "250ms", 0.25),
            (.pollInterval, "0.01", 0.01),
            (.lease, "1h30m", 5_400),
            (.lease, "1", 1),
            (.shutdownTimeout, "0", 0),
            (.shutdownTimeout, "2m", 120),
            (.maintenanceInterval, "50ms", 0.05),
            (.commandTimeout, "100ms", 0.1),
            (.commandTimeout, " 2.5 ", 2.5),
        ]
    )
    func durations(key: Key, text: String, seconds: Double) throws {
        let config = try parse([key: text])
        let value: Double = switch key {
        case .pollInterval: config.pollInterval.seconds
        case .lease: config.lease.seconds
        case .shutdownTimeout: config.shutdownTimeout.seconds
        case .maintenanceInterval: config.maintenanceInterval.seconds
        case .commandTimeout: config.commandTimeout.seconds
        default: .nan
        }
        #expect(abs(value - seconds) < 1e-9)
        // Nothing else moved.
        var expected = config
        switch key {
        case .pollInterval: expected.pollInterval = DaemonConfiguration.defaults.pollInterval
        case .lease: expected.lease = DaemonConfiguration.defaults.lease
        case .shutdownTimeout: expected.shutdownTimeout = DaemonConfiguration.defaults.shutdownTimeout
        case .maintenanceInterval: expected.maintenanceInterval = DaemonConfiguration.defaults.maintenanceInterval
        case .commandTimeout: expected.commandTimeout = DaemonConfiguration.defaults.commandTimeout
        default: break
        }
        #expect(expected == DaemonConfiguration.defaults)
    }

    @Test("retry delays")
    func retryDelays() throws {
        let both = try parse([.retryBaseDelay: "500ms", .retryMaxDelay: "10m"]).backoff
        #expect(both.base == .milliseconds(500))
        #expect(both.maximum == .seconds(600))
        #expect(both.jitter == DaemonConfiguration.defaults.backoff.jitter)
        #expect(try parse([.retryMaxDelay: "1"]).backoff.maximum == .seconds(1))
        #expect(try parse([.retryBaseDelay: "3", .retryMaxDelay: "3"]).backoff == RetryBackoff(base: .seconds(3), maximum: .seconds(3)))
    }

    @Test("a base delay above the default maximum raises the maximum with it")
    func baseAboveDefaultMaximum() throws {
        let backoff = try parse([.retryBaseDelay: "2h"]).backoff
        #expect(backoff.base == .seconds(7_200))
        #expect(backoff.maximum == .seconds(7_200))
    }

    @Test(
        "whole numbers",
        arguments: [
            (Key.promoteBatch, "1", 1), (.promoteBatch, "100000", 100_000), (.promoteBatch, "250", 250),
            (.redisHighWater, "1", 1), (.redisHighWater, "10000000", 10_000_000),
            (.claimPipelines, "1", 1), (.claimPipelines, "8", 8), (.claimPipelines, "2", 2),
            (.maxRescues, "1", 1), (.maxRescues, "1000", 1_000),
            (.maxPayloadBytes, "2", 2), (.maxPayloadBytes, "268435456", 268_435_456),
        ]
    )
    func integers(key: Key, text: String, number: Int) throws {
        let config = try parse([key: text])
        let value: Int = switch key {
        case .promoteBatch: config.promoteBatch
        case .redisHighWater: config.redisHighWater
        case .claimPipelines: config.claimPipelines
        case .maxRescues: config.maxRescues
        case .maxPayloadBytes: config.maxPayloadBytes
        default: -1
        }
        #expect(value == number)
    }

    @Test("log level and format are case-insensitive and stored lower-cased")
    func logging() throws {
        for level in ["trace", "debug", "info", "notice", "warning", "error", "critical"] {
            #expect(try parse([.logLevel: level.uppercased()]).logLevel == level)
        }
        for format in ["auto", "journald", "text", "json"] {
            #expect(try parse([.logFormat: format.capitalized(first: true)]).logFormat == format)
        }
    }

    // MARK: Rejections

    @Test(
        "every invalid value throws, naming the key and the value",
        arguments: [
            (Key.redisPrefix, "has space"), (.redisPrefix, "a/b"), (.redisPrefix, "x*"),
            (.workers, "0"), (.workers, "4097"), (.workers, "-3"), (.workers, "many"),
            (.workers, "high:0"), (.workers, "high:0,normal:0,low:0"), (.workers, "high:4000,normal:97"),
            (.workers, "urgent:3"), (.workers, "high:x"), (.workers, "high:-1"), (.workers, "high:2,high:3"),
            (.workers, "high"), (.workers, "high:1:2"), (.workers, ","),
            (.priorityMode, "fair"), (.priorityMode, "round-robin"),
            (.priorityWeights, "high:0,normal:0,low:0"), (.priorityWeights, "high:x"),
            (.priorityWeights, "vip:1"), (.priorityWeights, "low:1,low:2"), (.priorityWeights, "high:-2"),
            (.pollInterval, "0"), (.pollInterval, "5ms"), (.pollInterval, "soon"),
            (.lease, "0.5"), (.lease, "-1"), (.lease, "10x"),
            (.retryBaseDelay, "0"), (.retryBaseDelay, "abc"),
            (.retryMaxDelay, "0"), (.retryMaxDelay, "1..2s"),
            (.shutdownTimeout, "-5"), (.shutdownTimeout, "later"),
            (.promoteBatch, "0"), (.promoteBatch, "100001"), (.promoteBatch, "1.5"), (.promoteBatch, "lots"),
            (.redisHighWater, "0"), (.redisHighWater, "10000001"),
            (.claimPipelines, "0"), (.claimPipelines, "9"), (.claimPipelines, "two"),
            (.maintenanceInterval, "10ms"), (.maintenanceInterval, "m5"),
            (.maxRescues, "0"), (.maxRescues, "1001"), (.maxRescues, "3.0"),
            (.maxPayloadBytes, "1"), (.maxPayloadBytes, "268435457"), (.maxPayloadBytes, "1MB"),
            (.commandTimeout, "50ms"), (.commandTimeout, "5x"),
            (.logLevel, "verbose"), (.logLevel, "warn"),
            (.logFormat, "xml"), (.logFormat, "pretty"),
        ]
    )
    func rejects(key: Key, value: String) throws {
        #expect(!key.isSecret)
        let error = try #require(rejection([key: value]), "\(key.rawValue)=\(value) should be rejected")
        #expect(error.key == key.rawValue)
        #expect(error.description.hasPrefix(key.rawValue + ": "))
        #expect(error.description.contains(key.rawValue))
        #expect(error.description.contains("\"\(value)\""))
        #expect(error.description == "\(error.key): \(error.reason)")
    }

    @Test("a bad value is reported trimmed")
    func rejectionTrimmed() throws {
        let error = try #require(rejection([.lease: "  nope  "]))
        #expect(error.key == "JOBD_LEASE")
        #expect(error.description.contains("\"nope\""))
    }

    @Test("the JOBD_LEASE message names the key")
    func leaseMessage() throws {
        let error = try #require(rejection([.lease: "forever"]))
        #expect(error.key == "JOBD_LEASE")
        #expect(error.description.contains("JOBD_LEASE"))
        #expect(error.description.contains("forever"))
    }

    @Test(
        "a bad redis URL is rejected under JOBD_REDIS_URL and its password never shows",
        arguments: [
            "redis://user:hunter2@ho st/0",
            "redis://user:hunter2@h:99999",
            "redis://user:hunter2@h:port",
            "redis://:hunter2@h?timeout=1",
            "redis://user:hunter2@",
            "redis://user:hunter2@h/db",
            "redis://user:hunter2@[::1",
            "redis://user:hunter2@::1",
            "redis://user:hunter2%zz@h",
            "http://user:hunter2@h",
            "rediss://user:hunter2@h",
            "hunter2@localhost:6379",
        ]
    )
    func redisErrorsHideThePassword(url: String) throws {
        let error = try #require(rejection([.redisURL: url]))
        #expect(error.key == "JOBD_REDIS_URL")
        #expect(error.description.hasPrefix("JOBD_REDIS_URL: "))
        #expect(!error.description.contains("hunter2"))
        #expect(!error.reason.contains("hunter2"))
        #expect(!error.reason.hasPrefix("JOBD_REDIS_URL"), "the key is not repeated in the reason")
    }

    @Test(
        "a password-looking value is never echoed, even without \"@host\"",
        arguments: ["redis://default:hunter2", "redis://default:hunter2/0"]
    )
    func redisErrorsHideAPasswordWithoutHost(url: String) throws {
        let error = try #require(rejection([.redisURL: url]))
        #expect(error.key == "JOBD_REDIS_URL")
        #expect(!error.description.contains("hunter2"))
    }

    @Test("the connection URLs and credentials are marked secret, nothing else is")
    func secrets() {
        #expect(JobdSettings.keys.filter(\.isSecret) == [
            .databaseURL, .redisURL, .contentDatabaseURL, .notificationsDatabaseURL, .analyticsDatabaseURL,
            .oltpDatabaseURL, .webUsers, .webTokens, .webSecret, .webhookSecret, .webhookSecrets, .smtpURL, .smsToken,
        ])
    }

    // MARK: Tiers

    @Test("a tier without its own URL lives in the queue's database")
    func tierDefaultsToQueueDatabase() throws {
        let config = try parse([.databaseURL: "postgresql:///jobs", .analyticsDatabaseURL: "postgresql:///facts"])
        #expect(config.databaseURL(for: .queue) == "postgresql:///jobs")
        #expect(config.databaseURL(for: .content) == "postgresql:///jobs")
        #expect(config.databaseURL(for: .notifications) == "postgresql:///jobs")
        #expect(config.databaseURL(for: .analytics) == "postgresql:///facts")
        let groups = config.tiersByDatabase
        #expect(groups.count == 2)
        #expect(groups[0].url == "postgresql:///jobs")
        #expect(groups[0].tiers == [.queue, .content, .notifications, .oltp])
        #expect(groups[1].url == "postgresql:///facts")
        #expect(groups[1].tiers == [.analytics])
    }

    @Test("JOBD_OLTP_DATABASE_URL gives the OLTP tier a database of its own")
    func oltpDatabase() throws {
        let config = try parse([.databaseURL: "postgresql:///jobs", .oltpDatabaseURL: "postgresql:///app"])
        #expect(config.databaseURL(for: .oltp) == "postgresql:///app")
        #expect(config.tiersByDatabase.map(\.tiers) == [[.queue, .content, .notifications, .analytics], [.oltp]])
        #expect(try parse([.databaseURL: "postgresql:///jobs"]).databaseURL(for: .oltp) == "postgresql:///jobs")
    }

    @Test("with nothing configured every tier shares libpq's defaults")
    func tiersShareDefaults() throws {
        let groups = try parse([:]).tiersByDatabase
        #expect(groups.count == 1)
        #expect(groups[0].url == nil)
        #expect(groups[0].tiers == Set(DataTier.allCases))
    }

    @Test("a tier URL that fails elsewhere is never echoed")
    func tierURLNotEchoed() throws {
        let error = try #require(rejection([.contentDatabaseURL: "postgresql://c:hunter2@db/content", .tierConnections: "0"]))
        #expect(error.key == "JOBD_TIER_CONNECTIONS")
        #expect(!error.description.contains("hunter2"))
    }

    // MARK: Metrics listen address

    @Test("the metrics endpoint is off by default")
    func metricsOffByDefault() throws {
        #expect(try parse([:]).metricsListen == nil)
    }

    @Test("metrics listen addresses parse", arguments: [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        ("localhost:1", "localhost", 1),
        ("[::1]:9464", "::1", 9464),
        ("0.0.0.0:65535", "0.0.0.0", 65535),
    ])
    func metricsListenParses(text: String, host: String, port: Int) throws {
        let address = try #require(try parse([.metricsListen: text]).metricsListen)
        #expect(address == ListenAddress(host: host, port: port))
        #expect(address.description == text)
    }

    @Test("bad metrics listen addresses are rejected naming the key", arguments: [
        "9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":9464", "::1:9464", "[::1]9464", "host:port",
    ])
    func metricsListenRejected(text: String) throws {
        let error = try #require(rejection([.metricsListen: text]))
        #expect(error.key == "JOBD_METRICS_LISTEN")
        #expect(error.description.contains(text))
    }

    @Test("the database URL is never echoed when another key fails")
    func databaseURLNotEchoed() throws {
        let error = try #require(rejection([.databaseURL: "postgresql://jobd:hunter2@db/jobs", .lease: "x"]))
        #expect(error.key == "JOBD_LEASE")
        #expect(!error.description.contains("hunter2"))
    }

    @Test("retry maximum below the base is rejected naming JOBD_RETRY_MAX_DELAY")
    func retryMaxBelowBase() throws {
        let error = try #require(rejection([.retryBaseDelay: "10s", .retryMaxDelay: "5s"]))
        #expect(error.key == "JOBD_RETRY_MAX_DELAY")
        #expect(error.description.contains("JOBD_RETRY_MAX_DELAY"))
        #expect(error.description.contains("\"5s\""))
        #expect(error.description.contains("JOBD_RETRY_BASE_DELAY"))

        let belowDefaultBase = try #require(rejection([.retryMaxDelay: "500ms"]))
        #expect(belowDefaultBase.key == "JOBD_RETRY_MAX_DELAY")
    }

    @Test("weights with strict mode are rejected")
    func weightsWithStrict() throws {
        let error = try #require(rejection([.priorityMode: "strict", .priorityWeights: "high:6,normal:3,low:1"]))
        #expect(error.key == "JOBD_PRIORITY_WEIGHTS")
        #expect(error.description.contains("JOBD_PRIORITY_WEIGHTS"))
        #expect(error.description.contains("JOBD_PRIORITY_MODE"))
    }

    @Test("priority weights are bounded, naming the key")
    func weightsBounded() {
        #expect(rejection([.priorityWeights: "high:9223372036854775807,normal:1"])?.key == "JOBD_PRIORITY_WEIGHTS")
        #expect(rejection([.priorityWeights: "high:1001"])?.key == "JOBD_PRIORITY_WEIGHTS")
    }

    @Test("workers whose sum would overflow are rejected, not a crash")
    func workersSumOverflow() {
        let error = rejection([.workers: "high:9223372036854775807,normal:1"])
        #expect(error?.key == "JOBD_WORKERS")
    }

    // MARK: Keys

    @Test("a config file key is the lower-cased name without JOBD_")
    func fileKeys() {
        #expect(Key.pollInterval.fileKey == "poll_interval")
        #expect(Key.lease.fileKey == "lease")
        #expect(Key.databaseURL.fileKey == "database_url")
        #expect(Key.maxPayloadBytes.fileKey == "max_payload_bytes")
        for key in JobdSettings.keys {
            #expect(key.rawValue.hasPrefix("JOBD_"))
            #expect("JOBD_" + key.fileKey.uppercased() == key.rawValue)
            #expect(key.fileKey == key.fileKey.lowercased())
            #expect(!key.fileKey.contains("jobd"))
        }
        #expect(Set(JobdSettings.keys.map(\.fileKey)).count == JobdSettings.keys.count)
    }

    @Test("ConfigurationError description is key: reason")
    func errorDescription() {
        #expect(ConfigurationError(key: "JOBD_X", reason: "bad").description == "JOBD_X: bad")
    }

    @Test("worker layout totals and pools")
    func workerLayout() {
        #expect(WorkerLayout.shared(3).total == 3)
        let layout = WorkerLayout.perPriority([.low: 5, .high: 1])
        #expect(layout.total == 6)
        #expect(layout.pools.map(\.lanes) == [[.high], [.low]])
        #expect(layout.pools.map(\.slots) == [1, 5])
    }
}

private extension String {
    /// "json" → "Json": a mixed-case spelling for the case-insensitivity tests.
    func capitalized(first: Bool) -> String {
        guard first, let head = self.first else { return self }
        return head.uppercased() + dropFirst()
    }
}
