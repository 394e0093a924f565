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

/// The daemon-wide settings, validated: connections, workers, the queue runtime's timing
/// and bounds, logging, metrics and the console. Each tier's settings live in its own
/// module (`ContentSettings`, `NotificationSettings`, …) and JobdAssembly's `JobdSettings`
/// reads them all from one source. Built from a key lookup so it is tested without files
/// or environment; the CLI feeds it from swift-configuration.
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
    /// Claim pipelines per worker pool (`JOBD_CLAIM_PIPELINES`): each pops and claims
    /// on connections of its own, so with more than one, a claim starts while another
    /// is in flight. `WorkerPool.claimPipelines(forSlots:configured:)` caps it by the
    /// pool's slots.
    public var claimPipelines: Int
    /// Rescuer and reconciler period.
    public var maintenanceInterval: Duration
    /// Rescues after which a job that keeps killing its daemon is dead-lettered.
    public var maxRescues: Int
    public var maxPayloadBytes: Int
    /// Deadline of every Postgres statement and Redis command.
    public var commandTimeout: Duration
    public var logLevel: String
    public var logFormat: String
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
        backoff: RetryBackoff(base: .seconds(1), maximum: .seconds(3_600)),
        shutdownTimeout: .seconds(30),
        promoteBatch: 1_000,
        redisHighWater: 2_000,
        claimPipelines: 1,
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

/// The daemon-wide keys: connections, workers and their scaling, the queue runtime's
/// timing and bounds, logging, metrics and the console.
extension ConfigurationKey {
    public static let databaseURL = ConfigurationKey("JOBD_DATABASE_URL", secret: true)
    public static let redisURL = ConfigurationKey("JOBD_REDIS_URL", secret: true)
    public static let contentDatabaseURL = ConfigurationKey("JOBD_CONTENT_DATABASE_URL", secret: true)
    public static let notificationsDatabaseURL = ConfigurationKey("JOBD_NOTIFICATIONS_DATABASE_URL", secret: true)
    public static let analyticsDatabaseURL = ConfigurationKey("JOBD_ANALYTICS_DATABASE_URL", secret: true)
    public static let oltpDatabaseURL = ConfigurationKey("JOBD_OLTP_DATABASE_URL", secret: true)
    public static let tierConnections = ConfigurationKey("JOBD_TIER_CONNECTIONS")
    public static let metricsListen = ConfigurationKey("JOBD_METRICS_LISTEN")
    public static let redisPrefix = ConfigurationKey("JOBD_REDIS_PREFIX")
    public static let workers = ConfigurationKey("JOBD_WORKERS")
    public static let maxTotalWorkers = ConfigurationKey("JOBD_MAX_TOTAL_WORKERS")
    public static let scaleSampleInterval = ConfigurationKey("JOBD_SCALE_SAMPLE_INTERVAL")
    public static let scaleQuietPeriod = ConfigurationKey("JOBD_SCALE_QUIET_PERIOD")
    public static let scaleDownInterval = ConfigurationKey("JOBD_SCALE_DOWN_INTERVAL")
    public static let priorityMode = ConfigurationKey("JOBD_PRIORITY_MODE")
    public static let priorityWeights = ConfigurationKey("JOBD_PRIORITY_WEIGHTS")
    public static let pollInterval = ConfigurationKey("JOBD_POLL_INTERVAL")
    public static let lease = ConfigurationKey("JOBD_LEASE")
    public static let retryBaseDelay = ConfigurationKey("JOBD_RETRY_BASE_DELAY")
    public static let retryMaxDelay = ConfigurationKey("JOBD_RETRY_MAX_DELAY")
    public static let shutdownTimeout = ConfigurationKey("JOBD_SHUTDOWN_TIMEOUT")
    public static let promoteBatch = ConfigurationKey("JOBD_PROMOTE_BATCH")
    public static let redisHighWater = ConfigurationKey("JOBD_REDIS_HIGH_WATER")
    public static let claimPipelines = ConfigurationKey("JOBD_CLAIM_PIPELINES")
    public static let maintenanceInterval = ConfigurationKey("JOBD_MAINTENANCE_INTERVAL")
    public static let maxRescues = ConfigurationKey("JOBD_MAX_RESCUES")
    public static let maxPayloadBytes = ConfigurationKey("JOBD_MAX_PAYLOAD_BYTES")
    public static let commandTimeout = ConfigurationKey("JOBD_COMMAND_TIMEOUT")
    public static let logLevel = ConfigurationKey("JOBD_LOG_LEVEL")
    public static let logFormat = ConfigurationKey("JOBD_LOG_FORMAT")
    public static let webListen = ConfigurationKey("JOBD_WEB_LISTEN")
    public static let webUsers = ConfigurationKey("JOBD_WEB_USERS", secret: true)
    public static let webTokens = ConfigurationKey("JOBD_WEB_TOKENS", secret: true)
    public static let webSecret = ConfigurationKey("JOBD_WEB_SECRET", secret: true)

    /// The key naming a tier's own database; nil for the queue (always `JOBD_DATABASE_URL`).
    public static func databaseURL(of tier: DataTier) -> ConfigurationKey? {
        switch tier {
        case .queue: nil
        case .content: .contentDatabaseURL
        case .notifications: .notificationsDatabaseURL
        case .analytics: .analyticsDatabaseURL
        case .oltp: .oltpDatabaseURL
        }
    }
}

extension DaemonConfiguration {
    /// The keys of the daemon-wide settings. Each tier's keys are declared in its module
    /// beside its settings type.
    public typealias Key = ConfigurationKey

    /// Every daemon-wide key, in the order `parse` reads them.
    public static let keys: [ConfigurationKey] = [
        .databaseURL,
        .redisURL,
        .contentDatabaseURL,
        .notificationsDatabaseURL,
        .analyticsDatabaseURL,
        .oltpDatabaseURL,
        .tierConnections,
        .metricsListen,
        .redisPrefix,
        .workers,
        .maxTotalWorkers,
        .scaleSampleInterval,
        .scaleQuietPeriod,
        .scaleDownInterval,
        .priorityMode,
        .priorityWeights,
        .pollInterval,
        .lease,
        .retryBaseDelay,
        .retryMaxDelay,
        .shutdownTimeout,
        .promoteBatch,
        .redisHighWater,
        .claimPipelines,
        .maintenanceInterval,
        .maxRescues,
        .maxPayloadBytes,
        .commandTimeout,
        .logLevel,
        .logFormat,
        .webListen,
        .webUsers,
        .webTokens,
        .webSecret,
    ]

    /// Validates every daemon-wide key; the first bad one throws, naming the key and the
    /// value (or `***` for secrets).
    public static func parse(_ lookup: @escaping (Key) -> String?) throws(ConfigurationError) -> DaemonConfiguration {
        try read(ConfigurationReader(lookup: lookup))
    }

    /// `parse` over a shared reader, as the assembly reads every tier's settings.
    public static func read(_ reader: ConfigurationReader) throws(ConfigurationError) -> DaemonConfiguration {
        var config = DaemonConfiguration.defaults

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
        let base = try reader.duration(.retryBaseDelay, default: config.backoff.base, min: 0.001)
        let maximum = try reader.duration(.retryMaxDelay, default: max(config.backoff.maximum, base), min: 0.001)
        guard maximum >= base else {
            throw reader.invalid(
                .retryMaxDelay, reader.text(.retryMaxDelay) ?? "", "must be at least JOBD_RETRY_BASE_DELAY (\(base.seconds))")
        }
        config.backoff = RetryBackoff(base: base, maximum: maximum, jitter: config.backoff.jitter)
        config.shutdownTimeout = try reader.duration(.shutdownTimeout, default: config.shutdownTimeout, min: 0)
        config.promoteBatch = try reader.integer(.promoteBatch, default: config.promoteBatch, range: 1...100_000)
        config.redisHighWater = try reader.integer(.redisHighWater, default: config.redisHighWater, range: 1...10_000_000)
        config.claimPipelines = try reader.integer(.claimPipelines, default: config.claimPipelines, range: 1...8)
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

}

extension ConfigurationReader {
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
    func perPriority(_ key: ConfigurationKey, _ text: String, allowZero: Bool) throws(ConfigurationError) -> [JobPriority: Int] {
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

// MARK: - Scaling

extension DaemonConfiguration {
    private static func parseScaling(_ reader: ConfigurationReader, workers: WorkerLayout) throws(ConfigurationError) -> ScalingSettings {
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
