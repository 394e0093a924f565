/// How many workers, and for which priorities.
///
/// `JOBD_WORKERS=16` is one shared pool of 16 slots serving all three lists, ordered
/// by the priority selector. `JOBD_WORKERS=high:8,normal:4,low:2` gives each
/// priority a pool of its own that serves only its list, so a flood on one lane can
/// never take the slots of another.
public enum WorkerLayout: Sendable, Equatable {
    case shared(Int)
    case perPriority([JobPriority: Int])

    public var total: Int {
        switch self {
        case .shared(let count): count
        case .perPriority(let counts): counts.values.reduce(0, +)
        }
    }

    /// (lanes served, slots) per pool.
    public var pools: [(lanes: [JobPriority], slots: Int)] {
        switch self {
        case .shared(let count):
            return [(JobPriority.allCases, count)]
        case .perPriority(let counts):
            return JobPriority.allCases.compactMap { lane in
                guard let slots = counts[lane], slots > 0 else { return nil }
                return ([lane], slots)
            }
        }
    }
}

/// Every setting of the daemon, validated. Built from a key lookup so it is tested
/// without files or environment; the CLI feeds it from swift-configuration.
public struct DaemonConfiguration: Sendable, Equatable {
    /// libpq conninfo or URI; nil lets libpq use its own `PG*` defaults. Secret.
    public var databaseURL: String?
    /// Databases of the tiers that live apart from the queue; a tier not listed
    /// uses `databaseURL`. Secret.
    public var tierDatabaseURLs: [DataTier: String]
    /// Connections each tier's handlers share (per tier, per process).
    public var tierConnections: Int
    /// `host:port` of the Prometheus endpoint; nil (the default) serves none.
    public var metricsListen: ListenAddress?
    public var redisURL: RedisURL
    /// Prefix of every Redis key, so several queues can share one Redis.
    public var redisPrefix: String
    public var workers: WorkerLayout
    public var priorityMode: PrioritySelector.Mode
    /// Fallback wake-up of the promoter when no NOTIFY arrives.
    public var pollInterval: Double
    /// How long a claimed attempt is owned without a heartbeat.
    public var lease: Double
    public var backoff: RetryBackoff
    /// How long a graceful drain waits for in-flight jobs before releasing them.
    public var shutdownTimeout: Double
    /// Jobs moved per promoter statement, per priority.
    public var promoteBatch: Int
    /// The promoter stops filling a Redis list at this length, so Redis holds only
    /// what workers will take soon and a newly due high job is never buried.
    public var redisHighWater: Int
    /// Rescuer and reconciler period.
    public var maintenanceInterval: Double
    /// A job `promoted` for longer than this without a claim is assumed lost by Redis.
    public var promotedTimeout: Double
    /// Rescues after which a job that keeps killing its daemon is dead-lettered.
    public var maxRescues: Int
    public var maxPayloadBytes: Int
    /// Deadline of every Postgres statement and Redis command.
    public var commandTimeout: Double
    public var logLevel: String
    public var logFormat: String
    /// The content tier's compression, retention and indexing (`JOBD_CONTENT_*`).
    public var content = ContentSettings.defaults
    /// Periodic jobs (`JOBD_SCHEDULES`): the built-in ones plus the configured ones.
    public var schedules: [ScheduledJob] = ScheduledJob.defaults
    /// `queue.prune` deletes completed and cancelled jobs finished longer ago than this.
    public var completedRetention: Double = 7 * 86_400
    /// Attempt facts held in memory while the analytics tier (and the queue-side
    /// spool) cannot take them; beyond this the oldest are dropped and counted.
    /// 0 records no facts.
    public var factsBuffer: Int = 100_000
    /// Webhook, email and SMS delivery (`notification.send`).
    public var notifications = NotificationSettings.defaults
    /// The web console inside `jobd run` (`JOBD_WEB_LISTEN`); nil: not served.
    public var webListen: ListenAddress?
    /// Console credentials as written (`NAME:ROLE:HASH,…`), checked by the console
    /// itself when it starts (the hashes need swift-crypto, outside this pure core).
    public var webUsers: String?
    public var webTokens: String?
    /// Key of the console's CSRF tokens; nil: random per process.
    public var webSecret: String?

    public static let defaults = DaemonConfiguration(
        databaseURL: nil,
        tierDatabaseURLs: [:],
        tierConnections: 4,
        metricsListen: nil,
        redisURL: RedisURL(host: "127.0.0.1"),
        redisPrefix: "jobd",
        workers: .shared(16),
        priorityMode: .weighted([.high: 6, .normal: 3, .low: 1]),
        pollInterval: 1,
        lease: 60,
        backoff: RetryBackoff(baseSeconds: 1, maximumSeconds: 3_600),
        shutdownTimeout: 30,
        promoteBatch: 1_000,
        redisHighWater: 2_000,
        maintenanceInterval: 5,
        promotedTimeout: 60,
        maxRescues: 3,
        maxPayloadBytes: 1_048_576,
        commandTimeout: 10,
        logLevel: "info",
        logFormat: "auto"
    )
}

extension DaemonConfiguration {
    /// The database a tier lives in: its own if configured, else the queue's.
    public func databaseURL(for tier: DataTier) -> String? {
        tierDatabaseURLs[tier] ?? databaseURL
    }

    /// Tiers grouped by the database they live in, so each database is migrated once
    /// with exactly the tiers it holds. Sorted, so the order is stable.
    public var tiersByDatabase: [(url: String?, tiers: Set<DataTier>)] {
        var groups: [String: Set<DataTier>] = [:]
        for tier in DataTier.allCases { groups[databaseURL(for: tier) ?? "", default: []].insert(tier) }
        return groups
            .map { (url: $0.key.isEmpty ? nil : $0.key, tiers: $0.value) }
            .sorted { $0.tiers.min()! < $1.tiers.min()! }
    }
}

/// A TCP listen address, `host:port`; IPv6 hosts in brackets.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(parsing text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, !hostPart.contains(where: { $0.isWhitespace || $0 == "/" }),
              let port = Int(portPart), (1...65_535).contains(port) else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A configuration value that could not be used; the message names the key.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var key: String
    public var reason: String
    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }
    public var description: String { "\(key): \(reason)" }
}

extension DaemonConfiguration {
    /// The keys the daemon reads, by their environment name. A config file uses the
    /// same names in lower case without `JOBD_` (`JOBD_LEASE` → `lease`).
    public enum Key: String, CaseIterable, Sendable {
        case databaseURL = "JOBD_DATABASE_URL"
        case redisURL = "JOBD_REDIS_URL"
        case contentDatabaseURL = "JOBD_CONTENT_DATABASE_URL"
        case notificationsDatabaseURL = "JOBD_NOTIFICATIONS_DATABASE_URL"
        case analyticsDatabaseURL = "JOBD_ANALYTICS_DATABASE_URL"
        case tierConnections = "JOBD_TIER_CONNECTIONS"
        case metricsListen = "JOBD_METRICS_LISTEN"
        case redisPrefix = "JOBD_REDIS_PREFIX"
        case workers = "JOBD_WORKERS"
        case priorityMode = "JOBD_PRIORITY_MODE"
        case priorityWeights = "JOBD_PRIORITY_WEIGHTS"
        case pollInterval = "JOBD_POLL_INTERVAL"
        case lease = "JOBD_LEASE"
        case retryBaseDelay = "JOBD_RETRY_BASE_DELAY"
        case retryMaxDelay = "JOBD_RETRY_MAX_DELAY"
        case shutdownTimeout = "JOBD_SHUTDOWN_TIMEOUT"
        case promoteBatch = "JOBD_PROMOTE_BATCH"
        case redisHighWater = "JOBD_REDIS_HIGH_WATER"
        case maintenanceInterval = "JOBD_MAINTENANCE_INTERVAL"
        case promotedTimeout = "JOBD_PROMOTED_TIMEOUT"
        case maxRescues = "JOBD_MAX_RESCUES"
        case maxPayloadBytes = "JOBD_MAX_PAYLOAD_BYTES"
        case commandTimeout = "JOBD_COMMAND_TIMEOUT"
        case logLevel = "JOBD_LOG_LEVEL"
        case logFormat = "JOBD_LOG_FORMAT"
        case contentCompressionLevel = "JOBD_CONTENT_COMPRESSION_LEVEL"
        case contentRetention = "JOBD_CONTENT_RETENTION"
        case contentRetentionAction = "JOBD_CONTENT_RETENTION_ACTION"
        case contentPurgeBatch = "JOBD_CONTENT_PURGE_BATCH"
        case contentIndexBatch = "JOBD_CONTENT_INDEX_BATCH"
        case contentIndexInterval = "JOBD_CONTENT_INDEX_INTERVAL"
        case schedules = "JOBD_SCHEDULES"
        case completedRetention = "JOBD_COMPLETED_RETENTION"
        case factsBuffer = "JOBD_FACTS_BUFFER"
        case webhookSecret = "JOBD_WEBHOOK_SECRET"
        case webhookAllowedHosts = "JOBD_WEBHOOK_ALLOWED_HOSTS"
        case smtpURL = "JOBD_SMTP_URL"
        case smtpFrom = "JOBD_SMTP_FROM"
        case smtpStartTLS = "JOBD_SMTP_STARTTLS"
        case smsURL = "JOBD_SMS_URL"
        case smsToken = "JOBD_SMS_TOKEN"
        case notifyConnectTimeout = "JOBD_NOTIFY_CONNECT_TIMEOUT"
        case notifyTimeout = "JOBD_NOTIFY_TIMEOUT"
        case notifyRate = "JOBD_NOTIFY_RATE"
        case notifyBurst = "JOBD_NOTIFY_BURST"
        case notifyBreakerFailures = "JOBD_NOTIFY_BREAKER_FAILURES"
        case notifyBreakerCooldown = "JOBD_NOTIFY_BREAKER_COOLDOWN"
        case notifyConcurrency = "JOBD_NOTIFY_CONCURRENCY"
        case webListen = "JOBD_WEB_LISTEN"
        case webUsers = "JOBD_WEB_USERS"
        case webTokens = "JOBD_WEB_TOKENS"
        case webSecret = "JOBD_WEB_SECRET"

        /// The name in a config file.
        public var fileKey: String { String(rawValue.dropFirst("JOBD_".count)).lowercased() }
        /// Values never to be printed.
        public var isSecret: Bool {
            switch self {
            case .databaseURL, .redisURL, .contentDatabaseURL, .notificationsDatabaseURL, .analyticsDatabaseURL: true
            case .webhookSecret, .smtpURL, .smsToken: true
            case .webUsers, .webTokens, .webSecret: true
            default: false
            }
        }

        /// The key naming a tier's own database; nil for the queue (always `JOBD_DATABASE_URL`).
        public static func databaseURL(of tier: DataTier) -> Key? {
            switch tier {
            case .queue: nil
            case .content: .contentDatabaseURL
            case .notifications: .notificationsDatabaseURL
            case .analytics: .analyticsDatabaseURL
            }
        }
    }

    /// Validates every key; the first bad one throws, naming the key and the value
    /// (or `***` for secrets).
    public static func parse(_ lookup: @escaping (Key) -> String?) throws(ConfigurationError) -> DaemonConfiguration {
        var config = DaemonConfiguration.defaults
        let reader = Reader(lookup: lookup)

        if let url = reader.text(.databaseURL), !url.isEmpty { config.databaseURL = url }
        for tier in DataTier.allCases {
            if let key = Key.databaseURL(of: tier), let url = reader.text(key) { config.tierDatabaseURLs[tier] = url }
        }
        config.tierConnections = try reader.integer(.tierConnections, default: config.tierConnections, range: 1...64)
        if let text = reader.text(.metricsListen) {
            guard let address = ListenAddress(parsing: text) else {
                throw reader.invalid(.metricsListen, text, "expected host:port, e.g. 127.0.0.1:9464 or [::1]:9464")
            }
            config.metricsListen = address
        }
        if let url = reader.text(.redisURL) {
            do {
                config.redisURL = try RedisURL(parsing: url, key: Key.redisURL.rawValue)
            } catch {
                let prefix = Key.redisURL.rawValue + ": "
                let reason = error.message.hasPrefix(prefix) ? String(error.message.dropFirst(prefix.count)) : error.message
                throw ConfigurationError(key: Key.redisURL.rawValue, reason: reason)
            }
        }
        if let prefix = reader.text(.redisPrefix) {
            guard !prefix.isEmpty, prefix.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }) else {
                throw reader.invalid(.redisPrefix, prefix, "use letters, digits and - _ . : only")
            }
            config.redisPrefix = prefix
        }
        if let text = reader.text(.workers) { config.workers = try reader.workers(text) }
        if let text = reader.text(.priorityMode) {
            switch text.lowercased() {
            case "strict": config.priorityMode = .strict
            case "weighted": break
            default: throw reader.invalid(.priorityMode, text, "expected weighted or strict")
            }
        }
        if let text = reader.text(.priorityWeights) {
            guard case .weighted = config.priorityMode else {
                throw reader.invalid(.priorityWeights, text, "weights need JOBD_PRIORITY_MODE=weighted")
            }
            let weights = try reader.perPriority(.priorityWeights, text, allowZero: true)
            guard weights.values.allSatisfy({ $0 <= 1_000 }) else {
                throw reader.invalid(.priorityWeights, text, "each weight must be between 0 and 1000")
            }
            guard weights.values.contains(where: { $0 > 0 }) else {
                throw reader.invalid(.priorityWeights, text, "at least one weight must be positive")
            }
            config.priorityMode = .weighted(weights)
        }
        config.pollInterval = try reader.seconds(.pollInterval, default: config.pollInterval, min: 0.01)
        config.lease = try reader.seconds(.lease, default: config.lease, min: 1)
        let base = try reader.seconds(.retryBaseDelay, default: config.backoff.base, min: 0.001)
        let maximum = try reader.seconds(.retryMaxDelay, default: max(config.backoff.maximum, base), min: 0.001)
        guard maximum >= base else {
            throw reader.invalid(.retryMaxDelay, reader.text(.retryMaxDelay) ?? "", "must be at least JOBD_RETRY_BASE_DELAY (\(base))")
        }
        config.backoff = RetryBackoff(baseSeconds: base, maximumSeconds: maximum, jitter: config.backoff.jitter)
        config.shutdownTimeout = try reader.seconds(.shutdownTimeout, default: config.shutdownTimeout, min: 0)
        config.promoteBatch = try reader.integer(.promoteBatch, default: config.promoteBatch, range: 1...100_000)
        config.redisHighWater = try reader.integer(.redisHighWater, default: config.redisHighWater, range: 1...10_000_000)
        config.maintenanceInterval = try reader.seconds(.maintenanceInterval, default: config.maintenanceInterval, min: 0.05)
        config.promotedTimeout = try reader.seconds(.promotedTimeout, default: config.promotedTimeout, min: 1)
        config.maxRescues = try reader.integer(.maxRescues, default: config.maxRescues, range: 1...1_000)
        config.maxPayloadBytes = try reader.integer(.maxPayloadBytes, default: config.maxPayloadBytes, range: 2...(256 << 20))
        config.commandTimeout = try reader.seconds(.commandTimeout, default: config.commandTimeout, min: 0.1)
        if let level = reader.text(.logLevel) {
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            guard levels.contains(level.lowercased()) else {
                throw reader.invalid(.logLevel, level, "expected one of \(levels.joined(separator: ", "))")
            }
            config.logLevel = level.lowercased()
        }
        if let format = reader.text(.logFormat) {
            guard ["auto", "journald", "text", "json"].contains(format.lowercased()) else {
                throw reader.invalid(.logFormat, format, "expected auto, journald, text or json")
            }
            config.logFormat = format.lowercased()
        }
        config.content = try parseContent(reader)
        do {
            config.schedules = try ScheduledJob.resolve(reader.text(.schedules))
        } catch {
            throw ConfigurationError(key: Key.schedules.rawValue, reason: error.message)
        }
        config.completedRetention = try reader.seconds(.completedRetention, default: config.completedRetention, min: 60)
        config.factsBuffer = try reader.integer(.factsBuffer, default: config.factsBuffer, range: 0...10_000_000)
        config.notifications = try parseNotifications(reader)
        if let text = reader.text(.webListen) {
            guard let address = ListenAddress(parsing: text) else {
                throw reader.invalid(.webListen, text, "expected host:port, e.g. 127.0.0.1:8080")
            }
            config.webListen = address
        }
        config.webUsers = reader.text(.webUsers)
        config.webTokens = reader.text(.webTokens)
        if let secret = reader.text(.webSecret) {
            guard secret.utf8.count >= 16 else {
                throw ConfigurationError(key: Key.webSecret.rawValue, reason: "must be at least 16 characters")
            }
            config.webSecret = secret
        }
        return config
    }

    struct Reader {
        let lookup: (Key) -> String?

        func text(_ key: Key) -> String? {
            guard let raw = lookup(key) else { return nil }
            let value = raw.trimmingSpaces()
            return value.isEmpty ? nil : value
        }

        func invalid(_ key: Key, _ value: String, _ reason: String) -> ConfigurationError {
            let shown = key.isSecret ? "***" : value
            return ConfigurationError(key: key.rawValue, reason: "\"\(shown)\" is invalid: \(reason)")
        }

        func seconds(_ key: Key, default value: Double, min: Double) throws(ConfigurationError) -> Double {
            guard let text = text(key) else { return value }
            guard let seconds = DurationText.seconds(text) else {
                throw invalid(key, text, "not a duration (seconds such as 30 or 1.5, or 250ms, 5m, 2h)")
            }
            guard seconds >= min else { throw invalid(key, text, "must be at least \(min) s") }
            return seconds
        }

        func integer(_ key: Key, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let text = text(key) else { return value }
            guard let number = Int(text) else { throw invalid(key, text, "not a whole number") }
            guard range.contains(number) else {
                throw invalid(key, text, "must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return number
        }

        func workers(_ text: String) throws(ConfigurationError) -> WorkerLayout {
            if let count = Int(text) {
                guard (1...4_096).contains(count) else { throw invalid(.workers, text, "must be between 1 and 4096") }
                return .shared(count)
            }
            let counts = try perPriority(.workers, text, allowZero: true)
            // Bound each lane before summing, so absurd input cannot overflow the sum.
            guard counts.values.allSatisfy({ $0 <= 4_096 }) else {
                throw invalid(.workers, text, "the total must be between 1 and 4096")
            }
            let total = counts.values.reduce(0, +)
            guard (1...4_096).contains(total) else {
                throw invalid(.workers, text, "the total must be between 1 and 4096")
            }
            return .perPriority(counts)
        }

        /// `high:8,normal:4,low:2`; missing lanes are 0.
        func perPriority(_ key: Key, _ text: String, allowZero: Bool) throws(ConfigurationError) -> [JobPriority: Int] {
            var result: [JobPriority: Int] = [:]
            for part in text.split(separator: ",") {
                let pair = part.split(separator: ":", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
                guard pair.count == 2, let lane = JobPriority(rawValue: pair[0].lowercased()) else {
                    throw invalid(key, text, "expected a number or high:N,normal:N,low:N (bad part \"\(part)\")")
                }
                guard let count = Int(pair[1]), count >= (allowZero ? 0 : 1) else {
                    throw invalid(key, text, "\"\(pair[1])\" for \(lane.rawValue) is not a whole number ≥ 0")
                }
                guard result[lane] == nil else { throw invalid(key, text, "\(lane.rawValue) is given twice") }
                result[lane] = count
            }
            for lane in JobPriority.allCases where result[lane] == nil { result[lane] = 0 }
            return result
        }
    }
}

// MARK: - Notifications

extension DaemonConfiguration {
    private static func parseNotifications(_ reader: Reader) throws(ConfigurationError) -> NotificationSettings {
        var settings = NotificationSettings.defaults
        if let secret = reader.text(.webhookSecret) {
            // HMAC keys shorter than this are guessable; the value itself is never shown.
            guard secret.utf8.count >= 16 else { throw reader.invalid(.webhookSecret, secret, "use at least 16 characters") }
            settings.webhookSecret = SecretText(secret)
        }
        if let text = reader.text(.webhookAllowedHosts) {
            guard let list = HostAllowList(parsing: text) else {
                throw reader.invalid(.webhookAllowedHosts, text, "expected host names or *.domain patterns separated by commas")
            }
            settings.webhookAllowedHosts = list
        }
        if let text = reader.text(.smtpURL) {
            guard let relay = SMTPRelay(parsing: text) else {
                throw reader.invalid(.smtpURL, text, "expected smtp://[user[:password]@]host[:port] or smtps://…")
            }
            settings.smtpRelay = relay
        }
        if let text = reader.text(.smtpFrom) {
            guard EmailAddress.isValid(text) else { throw reader.invalid(.smtpFrom, text, "expected an address such as jobd@example.com") }
            settings.smtpFrom = text
        }
        if let text = reader.text(.smtpStartTLS) {
            guard let mode = NotificationSettings.StartTLS(rawValue: text.lowercased()) else {
                throw reader.invalid(.smtpStartTLS, text, "expected off, try or require")
            }
            settings.smtpStartTLS = mode
        }
        if let text = reader.text(.smsURL) {
            guard let url = EndpointURL(parsing: text) else {
                throw reader.invalid(.smsURL, text, "expected an http:// or https:// URL without user info")
            }
            settings.smsURL = url
        }
        if let token = reader.text(.smsToken) {
            guard !token.contains(where: { $0.isNewline }) else { throw reader.invalid(.smsToken, token, "must be one line") }
            settings.smsToken = SecretText(token)
        }
        settings.connectTimeout = try reader.seconds(.notifyConnectTimeout, default: settings.connectTimeout, min: 0.1)
        settings.timeout = try reader.seconds(.notifyTimeout, default: settings.timeout, min: 0.1)
        if settings.timeout > 3_600 {
            throw reader.invalid(.notifyTimeout, reader.text(.notifyTimeout) ?? "", "must be at most 3600 s")
        }
        if let text = reader.text(.notifyRate) {
            if text == "0" || text.lowercased() == "off" {
                settings.rateLimit = nil
            } else {
                guard let rate = Double(text), rate.isFinite, rate > 0, rate <= 1_000_000 else {
                    throw reader.invalid(.notifyRate, text, "expected sends per second per destination (e.g. 50 or 0.5), or off")
                }
                settings.rateLimit = TokenBucket.Settings(rate: rate, burst: max(1, rate))
            }
        }
        if let text = reader.text(.notifyBurst) {
            guard let burst = Int(text), (1...1_000_000).contains(burst) else {
                throw reader.invalid(.notifyBurst, text, "must be a whole number between 1 and 1000000")
            }
            guard let rate = settings.rateLimit else {
                throw reader.invalid(.notifyBurst, text, "a burst needs a rate (JOBD_NOTIFY_RATE is off)")
            }
            settings.rateLimit = TokenBucket.Settings(rate: rate.rate, burst: Double(burst))
        }
        let failures = try reader.integer(.notifyBreakerFailures, default: settings.breaker.failureThreshold, range: 1...10_000)
        let cooldown = try reader.seconds(.notifyBreakerCooldown, default: settings.breaker.cooldown, min: 0.1)
        settings.breaker = CircuitBreaker.Settings(failureThreshold: failures, cooldown: cooldown)
        settings.concurrency = try reader.integer(.notifyConcurrency, default: settings.concurrency, range: 1...256)
        return settings
    }
}
