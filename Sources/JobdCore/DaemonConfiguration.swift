/// How many workers, and for which priorities.
///
/// `JOBD_WORKERS=16` is one shared pool of 16 slots serving all three lists, ordered
/// by the priority selector. `JOBD_WORKERS=high:8,normal:4,low:2` gives each
/// priority a pool of its own that serves only its list, so a flood on one lane can
/// never take the slots of another.
///
/// Bounds instead of a number (`1-64`, `high:4-64,normal:2-32,low:1-8`) let the
/// daemon's autoscaler size each pool between them; such a pool starts at its
/// minimum. A lane given one number keeps that fixed size.
public enum WorkerLayout: Sendable, Equatable {
    case shared(Int)
    case perPriority([JobPriority: Int])
    /// One shared pool sized between the bounds.
    case sharedScaling(ClosedRange<Int>)
    /// A pool per priority, each between its bounds (a fixed lane is `n...n`; a lane
    /// without a pool is absent or `0...0`).
    case perPriorityScaling([JobPriority: ClosedRange<Int>])

    /// Slots the pools start with (for scaling pools, their minimum).
    public var total: Int { pools.map(\.slots).reduce(0, +) }

    /// The most slots the pools may grow to together.
    public var maximumTotal: Int { pools.map(\.bounds.upperBound).reduce(0, +) }

    /// Whether some pool may change size on its own.
    public var isScaling: Bool { pools.contains { $0.bounds.lowerBound < $0.bounds.upperBound } }

    /// (lanes served, starting slots, bounds) per pool, high before normal before low.
    public var pools: [(lanes: [JobPriority], slots: Int, bounds: ClosedRange<Int>)] {
        let ranges: [(lanes: [JobPriority], bounds: ClosedRange<Int>)]
        switch self {
        case .shared(let count):
            ranges = [(JobPriority.allCases, count...count)]
        case .sharedScaling(let bounds):
            ranges = [(JobPriority.allCases, bounds)]
        case .perPriority(let counts):
            ranges = JobPriority.allCases.compactMap { lane in
                guard let slots = counts[lane], slots > 0 else { return nil }
                return ([lane], slots...slots)
            }
        case .perPriorityScaling(let bounds):
            ranges = JobPriority.allCases.compactMap { lane in
                guard let range = bounds[lane], range.upperBound > 0 else { return nil }
                return ([lane], range)
            }
        }
        return ranges.map { ($0.lanes, $0.bounds.lowerBound, $0.bounds) }
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
    /// How pools with bounds are sized (`JOBD_MAX_TOTAL_WORKERS`, `JOBD_SCALE_*`).
    public var scaling = ScalingSettings.defaults
    public var priorityMode: PrioritySelector.Mode
    /// Fallback wake-up of the promoter when no NOTIFY arrives.
    public var pollInterval: Duration
    /// How long a claimed attempt is owned without a heartbeat.
    public var lease: Duration
    public var backoff: RetryBackoff
    /// How long a graceful drain waits for in-flight jobs before releasing them.
    public var shutdownTimeout: Duration
    /// Jobs moved per promoter statement, per priority.
    public var promoteBatch: Int
    /// The promoter stops filling a Redis list at this length, so Redis holds only
    /// what workers will take soon and a newly due high job is never buried.
    public var redisHighWater: Int
    /// Rescuer and reconciler period.
    public var maintenanceInterval: Duration
    /// Rescues after which a job that keeps killing its daemon is dead-lettered.
    public var maxRescues: Int
    public var maxPayloadBytes: Int
    /// Deadline of every Postgres statement and Redis command.
    public var commandTimeout: Duration
    public var logLevel: String
    public var logFormat: String
    /// The content tier's compression, retention and indexing (`JOBD_CONTENT_*`).
    public var content = ContentSettings.defaults
    /// Periodic jobs (`JOBD_SCHEDULES`): the built-in ones plus the configured ones.
    public var schedules: [ScheduledJob] = ScheduledJob.defaults
    /// `queue.prune` deletes completed and cancelled jobs finished longer ago than this.
    public var completedRetention: Duration = .seconds(7 * 86_400)
    /// Webhook, email and SMS delivery (`notification.send`).
    public var notifications = NotificationSettings.defaults
    /// Campaign fan-out and delivery (`JOBD_CAMPAIGN_*`).
    public var campaigns = CampaignSettings.defaults
    /// Retention windows of the attempts ledger, dead letters, notifications and
    /// analytics events (`JOBD_*_RETENTION`, `JOBD_NOTIFY_ARCHIVE_AFTER`, `JOBD_RETENTION_BATCH`).
    public var retention = RetentionSettings.defaults
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
        pollInterval: .seconds(1),
        lease: .seconds(60),
        backoff: RetryBackoff(baseSeconds: 1, maximumSeconds: 3_600),
        shutdownTimeout: .seconds(30),
        promoteBatch: 1_000,
        redisHighWater: 2_000,
        maintenanceInterval: .seconds(5),
        maxRescues: 3,
        maxPayloadBytes: 1_048_576,
        commandTimeout: .seconds(10),
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
        case oltpDatabaseURL = "JOBD_OLTP_DATABASE_URL"
        case tierConnections = "JOBD_TIER_CONNECTIONS"
        case metricsListen = "JOBD_METRICS_LISTEN"
        case redisPrefix = "JOBD_REDIS_PREFIX"
        case workers = "JOBD_WORKERS"
        case maxTotalWorkers = "JOBD_MAX_TOTAL_WORKERS"
        case scaleSampleInterval = "JOBD_SCALE_SAMPLE_INTERVAL"
        case scaleQuietPeriod = "JOBD_SCALE_QUIET_PERIOD"
        case scaleDownInterval = "JOBD_SCALE_DOWN_INTERVAL"
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
        case webhookSecret = "JOBD_WEBHOOK_SECRET"
        case webhookSecrets = "JOBD_WEBHOOK_SECRETS"
        case webhookAllowedHosts = "JOBD_WEBHOOK_ALLOWED_HOSTS"
        case notifyAllowedNetworks = "JOBD_NOTIFY_ALLOWED_NETWORKS"
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
        case campaignPageSize = "JOBD_CAMPAIGN_PAGE_SIZE"
        case campaignClaimWindow = "JOBD_CAMPAIGN_CLAIM_WINDOW"
        case campaignMaxTries = "JOBD_CAMPAIGN_MAX_TRIES"
        case campaignDeferBase = "JOBD_CAMPAIGN_DEFER_BASE"
        case campaignDeferMax = "JOBD_CAMPAIGN_DEFER_MAX"
        case campaignPauseRecheck = "JOBD_CAMPAIGN_PAUSE_RECHECK"
        case campaignConcurrency = "JOBD_CAMPAIGN_CONCURRENCY"
        case campaignThrottleWait = "JOBD_CAMPAIGN_THROTTLE_WAIT"
        case campaignSweepInterval = "JOBD_CAMPAIGN_SWEEP_INTERVAL"
        case campaignSendGroup = "JOBD_CAMPAIGN_SEND_GROUP"
        case attemptsRetention = "JOBD_ATTEMPTS_RETENTION"
        case deadLetterRetention = "JOBD_DEAD_LETTER_RETENTION"
        case notifyArchiveAfter = "JOBD_NOTIFY_ARCHIVE_AFTER"
        case notifyRetention = "JOBD_NOTIFY_RETENTION"
        case analyticsRetention = "JOBD_ANALYTICS_RETENTION"
        case retentionBatch = "JOBD_RETENTION_BATCH"
        case webListen = "JOBD_WEB_LISTEN"
        case webUsers = "JOBD_WEB_USERS"
        case webTokens = "JOBD_WEB_TOKENS"
        case webSecret = "JOBD_WEB_SECRET"

        /// The name in a config file.
        public var fileKey: String { String(rawValue.dropFirst("JOBD_".count)).lowercased() }
        /// Values never to be printed.
        public var isSecret: Bool {
            switch self {
            case .databaseURL, .redisURL, .contentDatabaseURL, .notificationsDatabaseURL, .analyticsDatabaseURL,
                 .oltpDatabaseURL: true
            case .webhookSecret, .webhookSecrets, .smtpURL, .smsToken: true
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
            case .oltp: .oltpDatabaseURL
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
        config.scaling = try parseScaling(reader, workers: config.workers)
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
        config.pollInterval = try reader.duration(.pollInterval, default: config.pollInterval, min: 0.01)
        config.lease = try reader.duration(.lease, default: config.lease, min: 1)
        let base = try reader.seconds(.retryBaseDelay, default: config.backoff.base, min: 0.001)
        let maximum = try reader.seconds(.retryMaxDelay, default: max(config.backoff.maximum, base), min: 0.001)
        guard maximum >= base else {
            throw reader.invalid(.retryMaxDelay, reader.text(.retryMaxDelay) ?? "", "must be at least JOBD_RETRY_BASE_DELAY (\(base))")
        }
        config.backoff = RetryBackoff(baseSeconds: base, maximumSeconds: maximum, jitter: config.backoff.jitter)
        config.shutdownTimeout = try reader.duration(.shutdownTimeout, default: config.shutdownTimeout, min: 0)
        config.promoteBatch = try reader.integer(.promoteBatch, default: config.promoteBatch, range: 1...100_000)
        config.redisHighWater = try reader.integer(.redisHighWater, default: config.redisHighWater, range: 1...10_000_000)
        config.maintenanceInterval = try reader.duration(.maintenanceInterval, default: config.maintenanceInterval, min: 0.05)
        config.maxRescues = try reader.integer(.maxRescues, default: config.maxRescues, range: 1...1_000)
        config.maxPayloadBytes = try reader.integer(.maxPayloadBytes, default: config.maxPayloadBytes, range: 2...(256 << 20))
        config.commandTimeout = try reader.duration(.commandTimeout, default: config.commandTimeout, min: 0.1)
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
            config.schedules = try ScheduledJob.resolve(
                reader.text(.schedules), defaults: ScheduledJob.builtIns(contentRetention: config.content.retention != nil))
        } catch {
            throw ConfigurationError(key: Key.schedules.rawValue, reason: error.message)
        }
        config.completedRetention = try reader.duration(.completedRetention, default: config.completedRetention, min: 60)
        config.notifications = try parseNotifications(reader)
        config.campaigns = try parseCampaigns(reader)
        config.retention = try parseRetention(reader)
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

        /// `seconds` as a `Duration`: the same syntax, bound and messages; `min` stays in
        /// seconds so the message reads as before. A value past 292 years (the most a
        /// `Duration` of nanoseconds in `Int64` holds) is clamped there, never trapped on.
        func duration(_ key: Key, default value: Duration, min: Double) throws(ConfigurationError) -> Duration {
            guard text(key) != nil else { return value }
            return TotalConversion.duration(seconds: try seconds(key, default: 0, min: min))
        }

        func integer(_ key: Key, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let text = text(key) else { return value }
            guard let number = Int(text) else { throw invalid(key, text, "not a whole number") }
            guard range.contains(number) else {
                throw invalid(key, text, "must be between \(range.lowerBound) and \(range.upperBound)")
            }
            return number
        }

        /// `16`, `1-64`, `high:8,normal:4,low:2` or `high:4-64,normal:2-32,low:1-8`
        /// (lanes may mix numbers and bounds; a missing lane has no pool).
        func workers(_ text: String) throws(ConfigurationError) -> WorkerLayout {
            let limit = 4_096
            if !text.contains(":") {
                let bounds = try workerBounds(text, whole: text, lane: nil)
                guard bounds.upperBound >= 1 else { throw invalid(.workers, text, "must be between 1 and \(limit)") }
                return bounds.lowerBound == bounds.upperBound ? .shared(bounds.lowerBound) : .sharedScaling(bounds)
            }
            var lanes: [JobPriority: ClosedRange<Int>] = [:]
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                let pair = part.split(separator: ":", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
                guard pair.count == 2, let lane = JobPriority(rawValue: pair[0].lowercased()) else {
                    throw invalid(.workers, text, "expected N, MIN-MAX, or high:N,normal:N,low:N with N a number or MIN-MAX (bad part \"\(part)\")")
                }
                guard lanes[lane] == nil else { throw invalid(.workers, text, "\(lane.rawValue) is given twice") }
                lanes[lane] = try workerBounds(pair[1], whole: text, lane: lane)
            }
            // Each lane is bounded before summing, so absurd input cannot overflow the sum.
            let total = lanes.values.map(\.upperBound).reduce(0, +)
            guard (1...limit).contains(total) else {
                throw invalid(.workers, text, "the total must be between 1 and \(limit)")
            }
            if lanes.values.allSatisfy({ $0.lowerBound == $0.upperBound }) {
                var counts = lanes.mapValues(\.lowerBound)
                for lane in JobPriority.allCases where counts[lane] == nil { counts[lane] = 0 }
                return .perPriority(counts)
            }
            return .perPriorityScaling(lanes.filter { $0.value.upperBound > 0 })
        }

        /// `N` or `MIN-MAX`, each at most 4096; a range needs 1 ≤ MIN ≤ MAX. `N` may be
        /// 0 for a lane (no pool), never for the shared pool (checked by the caller).
        private func workerBounds(_ value: String, whole text: String, lane: JobPriority?) throws(ConfigurationError) -> ClosedRange<Int> {
            let limit = 4_096
            let name = lane.map { "\($0.rawValue): " } ?? ""
            let ends = value.split(separator: "-", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
            guard (1...2).contains(ends.count), let low = Int(ends[0]), let high = Int(ends[ends.count - 1]), low >= 0 else {
                throw invalid(.workers, text, "\(name)\"\(value)\" is not a whole number ≥ 0 or a range MIN-MAX such as 2-32")
            }
            guard low <= limit, high <= limit else {
                throw invalid(.workers, text, "\(name)\"\(value)\": each bound must be between 1 and \(limit)")
            }
            if ends.count == 2 {
                guard low >= 1 else { throw invalid(.workers, text, "\(name)the minimum of \"\(value)\" must be at least 1") }
                guard low <= high else { throw invalid(.workers, text, "\(name)the minimum of \"\(value)\" is above its maximum") }
            }
            return low...high
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

// MARK: - Scaling

extension DaemonConfiguration {
    private static func parseScaling(_ reader: Reader, workers: WorkerLayout) throws(ConfigurationError) -> ScalingSettings {
        var settings = ScalingSettings.defaults
        if let text = reader.text(.maxTotalWorkers) {
            let ceiling = try reader.integer(.maxTotalWorkers, default: 0, range: 1...4_096)
            let minimums = workers.total
            guard ceiling >= minimums else {
                throw reader.invalid(.maxTotalWorkers, text, "must be at least the pools' minimums together (\(minimums), JOBD_WORKERS)")
            }
            settings.maxTotalWorkers = ceiling
        }
        let sample = try reader.duration(.scaleSampleInterval, default: settings.sampleInterval, min: 0.01)
        guard sample <= .seconds(10) else {
            throw reader.invalid(.scaleSampleInterval, reader.text(.scaleSampleInterval) ?? "", "must be at most 10 s")
        }
        settings.sampleInterval = sample
        // Pressure must last two samples before a pool grows.
        settings.growAfter = settings.sampleInterval
        let quiet = try reader.duration(.scaleQuietPeriod, default: settings.quietPeriod, min: 0.1)
        guard quiet <= .seconds(86_400) else {
            throw reader.invalid(.scaleQuietPeriod, reader.text(.scaleQuietPeriod) ?? "", "must be at most 1 day")
        }
        settings.quietPeriod = quiet
        let down = try reader.duration(.scaleDownInterval, default: settings.downInterval, min: 0.05)
        guard down <= .seconds(86_400) else {
            throw reader.invalid(.scaleDownInterval, reader.text(.scaleDownInterval) ?? "", "must be at most 1 day")
        }
        settings.downInterval = down
        return settings
    }
}

// MARK: - Campaigns

extension DaemonConfiguration {
    private static func parseCampaigns(_ reader: Reader) throws(ConfigurationError) -> CampaignSettings {
        var settings = CampaignSettings.defaults
        func atMost(_ key: Key, _ value: Double, _ limit: Double, _ shown: String) throws(ConfigurationError) -> Double {
            guard value <= limit else { throw reader.invalid(key, reader.text(key) ?? "", "must be at most \(shown)") }
            return value
        }
        settings.pageSize = try reader.integer(.campaignPageSize, default: settings.pageSize, range: 1...10_000)
        // A claim must outlast the longest SMTP transaction, or a slow send would be
        // claimed (and sent) again by another batch while still under way.
        let transaction = settings.connectTimeout + settings.timeout
        settings.sendingWindow = try atMost(
            .campaignClaimWindow,
            try reader.seconds(.campaignClaimWindow, default: settings.sendingWindow, min: transaction), 86_400, "1 day")
        settings.maxTries = try reader.integer(.campaignMaxTries, default: settings.maxTries, range: 1...100)
        settings.deferBase = try atMost(
            .campaignDeferBase, try reader.seconds(.campaignDeferBase, default: settings.deferBase, min: 1), 86_400, "1 day")
        let maximum = try atMost(
            .campaignDeferMax,
            try reader.seconds(.campaignDeferMax, default: max(settings.deferMaximum, settings.deferBase), min: 1),
            7 * 86_400, "7 days")
        guard maximum >= settings.deferBase else {
            throw reader.invalid(
                .campaignDeferMax, reader.text(.campaignDeferMax) ?? "", "must be at least JOBD_CAMPAIGN_DEFER_BASE (\(settings.deferBase))")
        }
        settings.deferMaximum = maximum
        settings.pauseRecheck = try atMost(
            .campaignPauseRecheck, try reader.seconds(.campaignPauseRecheck, default: settings.pauseRecheck, min: 0.1),
            3_600, "3600 s")
        settings.concurrency = try reader.integer(.campaignConcurrency, default: settings.concurrency, range: 1...256)
        settings.sendGroup = try reader.integer(.campaignSendGroup, default: settings.sendGroup, range: 1...500)
        settings.throttleWait = try atMost(
            .campaignThrottleWait, try reader.seconds(.campaignThrottleWait, default: settings.throttleWait, min: 0), 60, "60 s")
        settings.sweepInterval = try atMost(
            .campaignSweepInterval, try reader.seconds(.campaignSweepInterval, default: settings.sweepInterval, min: 1),
            3_600, "3600 s")
        return settings
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
        if let text = reader.text(.webhookSecrets) {
            settings.webhookHostSecrets = try parseHostSecrets(text)
        }
        if let text = reader.text(.notifyAllowedNetworks) {
            guard let blocks = OutboundNetworkPolicy.parseNetworks(text) else {
                throw reader.invalid(
                    .notifyAllowedNetworks, text,
                    "expected CIDR blocks separated by commas, e.g. 127.0.0.0/8,::1/128 (network addresses: host bits zero)")
            }
            settings.networkPolicy = OutboundNetworkPolicy(allowed: blocks)
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
            // Credentials over plain SMTP would cross in clear whenever the relay (or
            // whoever strips its STARTTLS offer) does not offer TLS.
            if let relay = settings.smtpRelay, !relay.implicitTLS, relay.username != nil || relay.password != nil, mode != .require {
                throw reader.invalid(
                    .smtpStartTLS, text,
                    "JOBD_SMTP_URL carries credentials, which must not cross in clear: use require (the default with credentials) or smtps://")
            }
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
        settings.connectTimeout = try reader.duration(.notifyConnectTimeout, default: settings.connectTimeout, min: 0.1)
        settings.timeout = try reader.duration(.notifyTimeout, default: settings.timeout, min: 0.1)
        if settings.timeout > .seconds(3_600) {
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

    /// `hooks.example.com=secretA,other.example=secretB`: exact host names (no
    /// wildcards), each key at least 16 characters and without commas. Never echoes a key.
    private static func parseHostSecrets(_ text: String) throws(ConfigurationError) -> [String: SecretText] {
        var secrets: [String: SecretText] = [:]
        for (index, part) in text.split(separator: ",").enumerated() {
            let entry = String(part).trimmingSpaces()
            guard !entry.isEmpty else { continue }
            func bad(_ reason: String) -> ConfigurationError {
                ConfigurationError(key: DaemonConfiguration.Key.webhookSecrets.rawValue, reason: "entry \(index + 1): \(reason)")
            }
            guard let equals = entry.firstIndex(of: "=") else { throw bad("expected host=secret") }
            var host = String(entry[..<equals]).trimmingSpaces().lowercased()
            let secret = String(entry[entry.index(after: equals)...]).trimmingSpaces()
            if host.hasSuffix(".") { host.removeLast() }
            guard !host.isEmpty, host.utf8.count <= 253,
                  host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" || $0 == ":" }) else {
                throw bad("\"\(host)\" is not a host name (exact names only, no wildcards)")
            }
            guard secret.utf8.count >= 16 else { throw bad("the secret for \(host) must have at least 16 characters") }
            guard secrets[host] == nil else { throw bad("\(host) is given twice") }
            secrets[host] = SecretText(secret)
        }
        guard !secrets.isEmpty else {
            throw ConfigurationError(key: DaemonConfiguration.Key.webhookSecrets.rawValue, reason: "expected host=secret entries separated by commas")
        }
        return secrets
    }
}
