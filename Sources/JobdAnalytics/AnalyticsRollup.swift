import Foundation
import JobdCore
import JobdPostgres
import JobdQueue
import Logging

/// Computes, stores and loads a day's rollup across the tiers.
///
/// Tiers may be separate databases, so there is no cross-tier join: each section is
/// one aggregate statement run in its own tier's database, and the rows come back
/// here to be written into `analytics.daily_*`. A section whose source table does
/// not exist in its tier (`to_regclass` is null) is recorded as `source_missing`,
/// and one whose table lacks an expected column as `source_invalid`; neither stops
/// the other sections. Expected sources (the other tiers' helpers own them):
///
/// | section | tier | table (columns read) |
/// |---|---|---|
/// | jobs | analytics | `analytics.attempt_facts` (kind, outcome, queue_wait_ms, run_ms, finished_at) |
/// | events | analytics | `analytics.events` (name, value, occurred_at) |
/// | content | content | `content.messages` (tenant_id, created_at, raw_bytes, stored_bytes) |
/// | notifications | notifications | `notifications.notifications` (channel, status, created_at) and `notifications.attempts` (notification_id → notifications.id for the channel, outcome, started_at, duration_ms) |
///
/// Notification `status` counts as sent when `sent` or `delivered`, as failed when
/// `failed` or `dead`; an attempt failed unless its `outcome` is `sent`,
/// `delivered`, `ok` or `success`.
public struct AnalyticsRollup: Sendable {
    public let databases: TierDatabases
    public let logger: Logger

    public init(databases: TierDatabases, logger: Logger) {
        self.databases = databases
        self.logger = logger
    }

    public static let sectionNames = ["jobs", "events", "content", "notifications"]

    // MARK: Rollup (compute + store)

    /// Computes `day` from every tier and replaces its stored rows, section by
    /// section (each section's write is one idempotent statement). A tier that cannot
    /// be reached leaves its section's rows as they were and makes this throw the
    /// transient `tier_unavailable` failure after the other sections are stored, so
    /// the job retries and the day ends up complete.
    ///
    /// A section whose source rows retention has deleted (`source_trimmed_at`, set by
    /// `analytics.trim`) is kept as stored: recounting it would replace the figures
    /// with a count of what is left. The report is then the stored one.
    @discardableResult
    public func rollUp(_ day: AnalyticsDay) async throws -> DailyReport {
        var report = DailyReport(day: day, stored: true)
        var firstFailure: (any Error)?
        let trimmed = try await trimmedSections(day)
        for section in Self.sectionNames {
            if trimmed.contains(section) {
                logger.info("rollup section kept: its source rows were trimmed", metadata: [
                    "section": "\(section)", "day": "\(day)",
                ])
                continue
            }
            do {
                let part = try await compute(section, day: day)
                try await store(part, section: section, day: day)
                report.merge(part)
            } catch {
                logger.warning("rollup section failed", metadata: [
                    "section": "\(section)", "day": "\(day)", LogKey.error: "\(error)",
                ])
                firstFailure = firstFailure ?? error
            }
        }
        if let firstFailure { throw firstFailure }
        if !trimmed.isEmpty, let stored = try await load(day) { return stored }
        return report
    }

    /// The sections of `day` whose source rows retention has deleted.
    func trimmedSections(_ day: AnalyticsDay) async throws -> Set<String> {
        let rows = try await databases[.analytics].withConnection { connection in
            try await connection.query(
                "SELECT section FROM analytics.daily_rollups WHERE day = $1::date AND source_trimmed_at IS NOT NULL",
                [day.description]).rows
        }
        return Set(rows.compactMap { $0.first ?? nil })
    }

    /// The stored rollup of `day`, or, when it was never rolled up, the same figures
    /// computed now (not stored; `stored == false`).
    public func report(_ day: AnalyticsDay) async throws -> DailyReport {
        if let stored = try await load(day) { return stored }
        var report = DailyReport(day: day, stored: false)
        for section in Self.sectionNames { report.merge(try await compute(section, day: day)) }
        return report
    }

    // MARK: Sections

    /// The rows of one section for one day, read from the section's own tier.
    func compute(_ section: String, day: AnalyticsDay) async throws -> DailyReport {
        var part = DailyReport(day: day, stored: false)
        let range = [day.startISO, day.endISO]
        switch section {
        case "jobs":
            let rows = try await databases[.analytics].withConnection { try await Self.long($0, Self.jobsSQL, range) }.rows
            part.jobs = rows.map { row in
                let wait = Self.doubles(row[3]), run = Self.doubles(row[4])
                return DailyReport.Jobs(
                    kind: row[0] ?? "", outcome: row[1] ?? "", attempts: Int(row[2] ?? "") ?? 0,
                    waitP50Ms: wait[0], waitP95Ms: wait[1], waitP99Ms: wait[2],
                    runP50Ms: run[0], runP95Ms: run[1], runP99Ms: run[2])
            }
            part.sections = [.init(section: section, status: "ok", sourceRows: part.jobs.map(\.attempts).reduce(0, +))]
        case "events":
            let rows = try await databases[.analytics].withConnection { try await Self.long($0, Self.eventsSQL, range) }.rows
            part.events = rows.map { row in
                DailyReport.Events(
                    name: row[0] ?? "", events: Int(row[1] ?? "") ?? 0, total: Double(row[2] ?? "") ?? 0,
                    min: row[3].flatMap(Double.init), max: row[4].flatMap(Double.init), avg: row[5].flatMap(Double.init))
            }
            part.sections = [.init(section: section, status: "ok", sourceRows: part.events.map(\.events).reduce(0, +))]
        case "content":
            part.sections = [try await guarded(section, tier: .content, tables: ["content.messages"]) { connection in
                let rows = try await Self.long(connection, Self.contentSQL, range).rows
                part.content = rows.map { row in
                    let raw = Int64(row[2] ?? "") ?? 0, stored = Int64(row[3] ?? "") ?? 0
                    return DailyReport.Content(
                        tenantID: row[0] ?? "", messages: Int(row[1] ?? "") ?? 0, rawBytes: raw, storedBytes: stored,
                        compressionRatio: stored > 0 ? Double(raw) / Double(stored) : nil)
                }
                return part.content.map(\.messages).reduce(0, +)
            }]
        case "notifications":
            var byChannel: [String: DailyReport.Notifications] = [:]
            let tables = ["notifications.notifications", "notifications.attempts"]
            part.sections = [try await guarded(section, tier: .notifications, tables: tables) { connection in
                var sourceRows = 0
                for row in try await Self.long(connection, Self.notificationsSQL, range).rows {
                    let channel = row[0] ?? ""
                    var entry = byChannel[channel] ?? .init(channel: channel)
                    entry.notifications = Int(row[1] ?? "") ?? 0
                    entry.sent = Int(row[2] ?? "") ?? 0
                    entry.failed = Int(row[3] ?? "") ?? 0
                    entry.deliveryRate = entry.sent + entry.failed > 0
                        ? Double(entry.sent) / Double(entry.sent + entry.failed) : nil
                    sourceRows += entry.notifications
                    byChannel[channel] = entry
                }
                for row in try await Self.long(connection, Self.attemptsSQL, range).rows {
                    let channel = row[0] ?? ""
                    var entry = byChannel[channel] ?? .init(channel: channel)
                    entry.attempts = Int(row[1] ?? "") ?? 0
                    entry.failedAttempts = Int(row[2] ?? "") ?? 0
                    let latency = Self.doubles(row[3])
                    (entry.latencyP50Ms, entry.latencyP95Ms, entry.latencyP99Ms) = (latency[0], latency[1], latency[2])
                    sourceRows += entry.attempts
                    byChannel[channel] = entry
                }
                return sourceRows
            }]
            part.notifications = byChannel.values.sorted { $0.channel < $1.channel }
        default:
            preconditionFailure("unknown rollup section \(section)")
        }
        if part.sections.first?.status != "ok" {
            // A source that is missing or malformed contributes no rows, not half of them.
            part.content = []
            part.notifications = []
        }
        return part
    }

    /// Runs `body` only if every table exists in the tier; maps a missing column to
    /// `source_invalid` instead of failing the whole rollup.
    private func guarded(
        _ section: String, tier: DataTier, tables: [String], _ body: (PostgresConnection) async throws -> Int
    ) async throws -> DailyReport.Section {
        try await databases[tier].withConnection { connection in
            let exists = try await connection.query(
                "SELECT t, to_regclass(t) IS NOT NULL FROM unnest($1::text[]) AS t",
                [PostgresArray.texts(tables)]).rows
            let missing = exists.filter { $0[1] != "t" }.compactMap { $0[0] }
            guard missing.isEmpty else {
                return .init(section: section, status: "source_missing",
                             detail: "\(missing.joined(separator: ", ")) not in the \(tier.rawValue) database")
            }
            do {
                return .init(section: section, status: "ok", sourceRows: try await body(connection))
            } catch let error as PostgresError where ["42703", "42883", "42804"].contains(error.sqlState ?? "") {
                // Undefined column, operator or a type mismatch: the table is not
                // shaped as documented. Say so in the report; the other sections go on.
                return .init(section: section, status: "source_invalid", detail: error.message)
            }
        }
    }

    /// Aggregates over a busy day (tens of millions of rows) outlast the daemon's
    /// command timeout; they get `longTimeout` seconds, server and client side, and
    /// the session's own timeout is put back afterwards.
    static let longTimeout = 900.0

    static func long(_ connection: PostgresConnection, _ sql: String, _ params: [String?]) async throws -> PostgresResult {
        let previous = try await connection.query("SELECT current_setting('statement_timeout')").rows.first?.first ?? nil
        try await connection.query("SELECT set_config('statement_timeout', $1, false)", [String(Int(longTimeout * 1000))])
        let restore = "SELECT set_config('statement_timeout', $1, false)"
        let result: PostgresResult
        do {
            result = try await connection.query(sql, params, timeout: longTimeout)
        } catch {
            _ = try? await connection.query(restore, [previous ?? "0"])
            throw error
        }
        try await connection.query(restore, [previous ?? "0"])
        return result
    }

    // Percentiles everywhere: p50, p95, p99, as `ARRAY[0.5, 0.95, 0.99]` in each statement.

    static let jobsSQL = """
        SELECT kind, outcome, count(*),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY queue_wait_ms),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY run_ms)
          FROM analytics.attempt_facts
         WHERE finished_at >= $1::timestamptz AND finished_at < $2::timestamptz
         GROUP BY kind, outcome ORDER BY kind, outcome
        """

    static let eventsSQL = """
        SELECT name, count(*), sum(value), min(value), max(value), avg(value)
          FROM analytics.events
         WHERE occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz
         GROUP BY name ORDER BY name
        """

    static let contentSQL = """
        SELECT tenant_id::text, count(*), coalesce(sum(raw_bytes), 0)::bigint, coalesce(sum(stored_bytes), 0)::bigint
          FROM content.messages
         WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz
         GROUP BY 1 ORDER BY 1
        """

    static let notificationsSQL = """
        SELECT channel::text, count(*),
               count(*) FILTER (WHERE status::text IN ('sent', 'delivered')),
               count(*) FILTER (WHERE status::text IN ('failed', 'dead'))
          FROM notifications.notifications
         WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz
         GROUP BY 1 ORDER BY 1
        """

    static let attemptsSQL = """
        SELECT n.channel::text, count(*),
               count(*) FILTER (WHERE a.outcome::text NOT IN ('sent', 'delivered', 'ok', 'success')),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (ORDER BY a.duration_ms::float8)
          FROM notifications.attempts a JOIN notifications.notifications n ON n.id = a.notification_id
         WHERE a.started_at >= $1::timestamptz AND a.started_at < $2::timestamptz
         GROUP BY 1 ORDER BY 1
        """

    /// `{1.5,2,3}` → [1.5, 2, 3]; missing values are nil.
    static func doubles(_ text: String?) -> [Double?] {
        var values: [Double?] = (text ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "{}"))
            .split(separator: ",").map { Double($0) }
        while values.count < 3 { values.append(nil) }
        return values
    }

    // MARK: Storing

    /// Replaces one section's rows of `day` in one statement: keys no longer present
    /// are deleted, the rest upserted, and the section's status recorded.
    func store(_ part: DailyReport, section: String, day: AnalyticsDay) async throws {
        let status = part.sections.first ?? .init(section: section, status: "ok")
        let encoder = JSONEncoder()
        let rows: Data
        let sql: String
        switch section {
        case "jobs":
            rows = try encoder.encode(part.jobs)
            sql = Self.storeSQL(table: "daily_jobs", keys: ["kind", "outcome"], columns: [
                ("kind", "text", "kind"), ("outcome", "text", "outcome"), ("attempts", "bigint", "attempts"),
                ("wait_p50_ms", "float8", "waitP50Ms"), ("wait_p95_ms", "float8", "waitP95Ms"),
                ("wait_p99_ms", "float8", "waitP99Ms"), ("run_p50_ms", "float8", "runP50Ms"),
                ("run_p95_ms", "float8", "runP95Ms"), ("run_p99_ms", "float8", "runP99Ms"),
            ])
        case "events":
            rows = try encoder.encode(part.events)
            sql = Self.storeSQL(table: "daily_events", keys: ["name"], columns: [
                ("name", "text", "name"), ("events", "bigint", "events"), ("total", "float8", "total"),
                ("min", "float8", "min"), ("max", "float8", "max"), ("avg", "float8", "avg"),
            ])
        case "content":
            rows = try encoder.encode(part.content)
            sql = Self.storeSQL(table: "daily_content", keys: ["tenant_id"], columns: [
                ("tenant_id", "text", "tenantID"), ("messages", "bigint", "messages"), ("raw_bytes", "bigint", "rawBytes"),
                ("stored_bytes", "bigint", "storedBytes"), ("compression_ratio", "float8", "compressionRatio"),
            ])
        case "notifications":
            rows = try encoder.encode(part.notifications)
            sql = Self.storeSQL(table: "daily_notifications", keys: ["channel"], columns: [
                ("channel", "text", "channel"), ("notifications", "bigint", "notifications"), ("sent", "bigint", "sent"),
                ("failed", "bigint", "failed"), ("delivery_rate", "float8", "deliveryRate"),
                ("attempts", "bigint", "attempts"), ("failed_attempts", "bigint", "failedAttempts"),
                ("latency_p50_ms", "float8", "latencyP50Ms"), ("latency_p95_ms", "float8", "latencyP95Ms"),
                ("latency_p99_ms", "float8", "latencyP99Ms"),
            ])
        default:
            preconditionFailure("unknown rollup section \(section)")
        }
        _ = try await databases[.analytics].withConnection { connection in
            try await connection.query(sql, [
                day.description, String(decoding: rows, as: UTF8.self), section, status.status, status.detail,
                String(status.sourceRows),
            ])
        }
    }

    /// `$1` day, `$2` the rows as a JSON array (Swift property names), `$3…$6` the
    /// section's status. The DELETE and the upsert touch disjoint keys, so running
    /// them in one statement is safe, and the whole replacement is atomic.
    static func storeSQL(table: String, keys: [String], columns: [(name: String, type: String, json: String)]) -> String {
        let names = columns.map(\.name).joined(separator: ", ")
        let extract = columns.map { "(r->>'\($0.json)')::\($0.type) AS \($0.name)" }.joined(separator: ", ")
        let updates = columns.filter { !keys.contains($0.name) }.map { "\($0.name) = EXCLUDED.\($0.name)" }
            .joined(separator: ", ")
        let keyMatch = keys.map { "i.\($0) = d.\($0)" }.joined(separator: " AND ")
        return """
            WITH cols AS (
                SELECT \(extract) FROM jsonb_array_elements($2::jsonb) AS r
            ), gone AS (
                DELETE FROM analytics.\(table) d
                 WHERE d.day = $1::date AND NOT EXISTS (SELECT 1 FROM cols i WHERE \(keyMatch))
            ), status AS (
                INSERT INTO analytics.daily_rollups (day, section, status, detail, source_rows)
                VALUES ($1::date, $3, $4, $5, $6::bigint)
                ON CONFLICT (day, section) DO UPDATE
                   SET status = EXCLUDED.status, detail = EXCLUDED.detail,
                       source_rows = EXCLUDED.source_rows, rolled_up_at = now()
            )
            INSERT INTO analytics.\(table) (day, \(names))
            SELECT $1::date, \(names) FROM cols
            ON CONFLICT (day, \(keys.joined(separator: ", "))) DO UPDATE SET \(updates)
            """
    }

    // MARK: Loading

    /// The stored rollup, in one round trip; nil if the day was never rolled up.
    func load(_ day: AnalyticsDay) async throws -> DailyReport? {
        let row = try await databases[.analytics].withConnection { try await $0.query(Self.loadSQL, [day.description]) }
            .rows.first
        guard let row, let sectionsJSON = row[0], sectionsJSON != "[]" else { return nil }
        let decoder = JSONDecoder()
        var report = DailyReport(day: day, stored: true)
        report.sections = try decoder.decode([DailyReport.Section].self, from: Data(sectionsJSON.utf8))
        report.jobs = try decoder.decode([DailyReport.Jobs].self, from: Data((row[1] ?? "[]").utf8))
        report.events = try decoder.decode([DailyReport.Events].self, from: Data((row[2] ?? "[]").utf8))
        report.content = try decoder.decode([DailyReport.Content].self, from: Data((row[3] ?? "[]").utf8))
        report.notifications = try decoder.decode([DailyReport.Notifications].self, from: Data((row[4] ?? "[]").utf8))
        return report
    }

    static let loadSQL = """
        SELECT
          (SELECT coalesce(json_agg(json_build_object('section', section, 'status', status, 'detail', detail,
                                                      'sourceRows', source_rows) ORDER BY section), '[]')
             FROM analytics.daily_rollups WHERE day = $1::date),
          (SELECT coalesce(json_agg(json_build_object('kind', kind, 'outcome', outcome, 'attempts', attempts,
                    'waitP50Ms', wait_p50_ms, 'waitP95Ms', wait_p95_ms, 'waitP99Ms', wait_p99_ms,
                    'runP50Ms', run_p50_ms, 'runP95Ms', run_p95_ms, 'runP99Ms', run_p99_ms) ORDER BY kind, outcome), '[]')
             FROM analytics.daily_jobs WHERE day = $1::date),
          (SELECT coalesce(json_agg(json_build_object('name', name, 'events', events, 'total', total,
                    'min', min, 'max', max, 'avg', avg) ORDER BY name), '[]')
             FROM analytics.daily_events WHERE day = $1::date),
          (SELECT coalesce(json_agg(json_build_object('tenantID', tenant_id, 'messages', messages,
                    'rawBytes', raw_bytes, 'storedBytes', stored_bytes, 'compressionRatio', compression_ratio)
                    ORDER BY tenant_id), '[]')
             FROM analytics.daily_content WHERE day = $1::date),
          (SELECT coalesce(json_agg(json_build_object('channel', channel, 'notifications', notifications,
                    'sent', sent, 'failed', failed, 'deliveryRate', delivery_rate, 'attempts', attempts,
                    'failedAttempts', failed_attempts, 'latencyP50Ms', latency_p50_ms,
                    'latencyP95Ms', latency_p95_ms, 'latencyP99Ms', latency_p99_ms) ORDER BY channel), '[]')
             FROM analytics.daily_notifications WHERE day = $1::date)
        """
}

extension DailyReport {
    mutating func merge(_ part: DailyReport) {
        jobs += part.jobs
        events += part.events
        content += part.content
        notifications += part.notifications
        sections += part.sections
    }
}
