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
/// | jobs | queue | `queue.attempts` end rows (kind, outcome, queue_wait_seconds, run_seconds, at) and `queue.ledger_trimmed`; see `AnalyticsLedgerStatements` |
/// | events | analytics | `analytics.events` (name, value, occurred_at) |
/// | content | content | `content.messages` (tenant_id, created_at, raw_bytes, stored_bytes) |
/// | notifications | notifications | `notifications.notifications` (channel, status, created_at) and `notifications.attempts` (notification_id → notifications.id for the channel, outcome, started_at, duration_ms) |
/// | campaigns | oltp | `oltp.deliveries` (campaign_id, state, tries, created_at, updated_at, sent_at) and `oltp.campaigns` (id, workspace_id, name); see `AnalyticsCampaignStatements` |
///
/// Notification `status` counts as sent when `sent` or `delivered`, as failed when
/// `failed` or `dead`; an attempt failed unless its `outcome` is `sent`,
/// `delivered`, `ok` or `success`.
///
/// The `jobs` section's source is the attempts ledger, which `queue.trim` deletes
/// after `JOBD_ATTEMPTS_RETENTION` (30 days by default), sooner than `analytics.trim`
/// marks anything. A day that starts before `queue.ledger_trimmed` (how far back
/// ledger rows were deleted) is never recounted: its stored `jobs` rows stay as they
/// are, and a day that was never rolled up gets no `jobs` rows, only the status
/// `source_trimmed`. The mark is read after the aggregate, on the same connection,
/// so a deletion that committed before the aggregate read the ledger is always seen.
public struct AnalyticsRollup: Sendable {
    public let databases: TierDatabases
    /// The queue tier's database, for the `jobs` section.
    public let queue: TierDatabase
    public let logger: Logger

    public init(databases: TierDatabases, queue: TierDatabase, logger: Logger) {
        self.databases = databases
        self.queue = queue
        self.logger = logger
    }

    /// A section whose source rows retention has deleted: not stored over.
    static let sourceTrimmed = "source_trimmed"

    public static let sectionNames = ["jobs", "events", "content", "notifications", "campaigns"]

    // MARK: Rollup (compute + store)

    /// Computes `day` from every tier and replaces its stored rows, section by
    /// section (each section's write is one idempotent statement). A tier that cannot
    /// be reached leaves its section's rows as they were and makes this throw the
    /// transient `tier_unavailable` failure after the other sections are stored, so
    /// the job retries and the day ends up complete.
    ///
    /// A section whose source rows retention has deleted (`source_trimmed_at`, set by
    /// `analytics.trim`; for `jobs`, the ledger's `queue.ledger_trimmed` mark) is kept
    /// as stored: recounting it would replace the figures with a count of what is
    /// left. The report is then the stored one.
    @discardableResult
    public func rollUp(_ day: AnalyticsDay) async throws -> DailyReport {
        var report = DailyReport(day: day, stored: true)
        var firstFailure: (any Error)?
        var trimmed = try await trimmedSections(day)
        for section in configuredSections {
            if trimmed.contains(section) {
                logger.info("rollup section kept: its source rows were trimmed", metadata: [
                    "section": "\(section)", "day": "\(day)",
                ])
                continue
            }
            do {
                let part = try await compute(section, day: day)
                if part.sections.first?.status == Self.sourceTrimmed {
                    logger.info("rollup section kept: its source rows were trimmed", metadata: [
                        "section": "\(section)", "day": "\(day)",
                    ])
                    trimmed.insert(section)
                    // Stored figures stay; a day never stored records why it has none.
                    if try await load(day)?.sections.contains(where: { $0.section == section }) != true {
                        try await store(part, section: section, day: day)
                    }
                    continue
                }
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
        let sections = try await databases[.analytics].withConnection { connection in
            try await connection.rows(AnalyticsDailyStatements.TrimmedSections(day: day))
        }
        return Set(sections)
    }

    /// The stored rollup of `day`, or, when it was never rolled up, the same figures
    /// computed now (not stored; `stored == false`).
    public func report(_ day: AnalyticsDay) async throws -> DailyReport {
        if let stored = try await load(day) { return stored }
        var report = DailyReport(day: day, stored: false)
        for section in configuredSections { report.merge(try await compute(section, day: day)) }
        return report
    }

    // MARK: Sections

    /// The rows of one section for one day, read from the section's own tier.
    func compute(_ section: String, day: AnalyticsDay) async throws -> DailyReport {
        var part = DailyReport(day: day, stored: false)
        let range = AnalyticsRange(day: day)
        switch section {
        case "jobs":
            let (jobs, mark): ([DailyReport.Jobs], AnalyticsLedgerStatements.Trimmed.Row?) = try await queue.withConnection { connection in
                let jobs = try await Self.long(connection, AnalyticsLedgerStatements.DailyJobs(range: range))
                // After the aggregate: a trim that deleted rows it could have read has committed its mark.
                return (jobs, try await connection.firstRow(AnalyticsLedgerStatements.Trimmed(day: day)))
            }
            if let mark, mark.trimmed {
                part.sections = [.init(
                    section: section, status: Self.sourceTrimmed,
                    detail: "queue.trim deleted ledger rows before \(mark.before ?? "?"); not recounted")]
            } else {
                part.jobs = jobs
                part.sections = [.init(section: section, status: "ok", sourceRows: jobs.map(\.attempts).reduce(0, +))]
            }
        case "events":
            part.events = try await databases[.analytics].withConnection {
                try await Self.long($0, AnalyticsEventsStatements.Daily(range: range))
            }
            part.sections = [.init(section: section, status: "ok", sourceRows: part.events.map(\.events).reduce(0, +))]
        case "content":
            part.sections = [try await guarded(section, tier: .content, tables: ["content.messages"]) { connection in
                let rows = try await Self.long(connection, AnalyticsSourceStatements.DailyContent(range: range))
                part.content = rows.map { row in
                    DailyReport.Content(
                        tenantID: row.tenantID, messages: row.messages, rawBytes: row.rawBytes, storedBytes: row.storedBytes,
                        compressionRatio: row.storedBytes > 0 ? Double(row.rawBytes) / Double(row.storedBytes) : nil)
                }
                return part.content.map(\.messages).reduce(0, +)
            }]
        case "notifications":
            var byChannel: [String: DailyReport.Notifications] = [:]
            let tables = ["notifications.notifications", "notifications.attempts"]
            part.sections = [try await guarded(section, tier: .notifications, tables: tables) { connection in
                var sourceRows = 0
                for row in try await Self.long(connection, AnalyticsSourceStatements.DailyNotifications(range: range)) {
                    var entry = byChannel[row.channel] ?? .init(channel: row.channel)
                    entry.notifications = row.notifications
                    entry.sent = row.sent
                    entry.failed = row.failed
                    entry.deliveryRate = entry.sent + entry.failed > 0
                        ? Double(entry.sent) / Double(entry.sent + entry.failed) : nil
                    sourceRows += entry.notifications
                    byChannel[row.channel] = entry
                }
                for row in try await Self.long(connection, AnalyticsSourceStatements.DailyNotificationAttempts(range: range)) {
                    var entry = byChannel[row.channel] ?? .init(channel: row.channel)
                    entry.attempts = row.attempts
                    entry.failedAttempts = row.failedAttempts
                    (entry.latencyP50Ms, entry.latencyP95Ms, entry.latencyP99Ms) = (row.latency.p50, row.latency.p95, row.latency.p99)
                    sourceRows += entry.attempts
                    byChannel[row.channel] = entry
                }
                return sourceRows
            }]
            part.notifications = byChannel.values.sorted { $0.channel < $1.channel }
        case "campaigns":
            part = try await computeCampaigns(day)
        default:
            preconditionFailure("unknown rollup section \(section)")
        }
        if part.sections.first?.status != "ok" {
            // A source that is missing, malformed or trimmed contributes no rows, not half of them.
            part.jobs = []
            part.content = []
            part.notifications = []
            part.campaigns = []
        }
        return part
    }

    /// Runs `body` only if every table exists in the tier; maps a missing column to
    /// `source_invalid` instead of failing the whole rollup.
    func guarded(
        _ section: String, tier: DataTier, tables: [String], _ body: (PostgresConnection) async throws -> Int
    ) async throws -> DailyReport.Section {
        try await databases[tier].withConnection { connection in
            let missing = try await connection.rows(AnalyticsSourceStatements.TablesExist(tables: tables))
                .filter { !$0.exists }.map(\.table)
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

    static func long<S: PostgresStatement>(_ connection: PostgresConnection, _ statement: S) async throws -> [S.Row] {
        let previous = try await connection.firstRow(AnalyticsSourceStatements.StatementTimeout()) ?? nil
        let restore = AnalyticsSourceStatements.SetStatementTimeout(value: previous ?? "0")
        try await connection.execute(AnalyticsSourceStatements.SetStatementTimeout(value: String(Int(longTimeout * 1000))))
        let rows: [S.Row]
        do {
            rows = try await connection.rows(statement, timeout: longTimeout)
        } catch {
            _ = try? await connection.execute(restore)
            throw error
        }
        try await connection.execute(restore)
        return rows
    }

    // The section statements are in Statements/ (AnalyticsLedgerStatements.DailyJobs,
    // AnalyticsEventsStatements.Daily, AnalyticsSourceStatements); percentiles
    // everywhere are p50, p95, p99, as `ARRAY[0.5, 0.95, 0.99]` in each statement.

    // MARK: Storing

    /// Replaces one section's rows of `day` in one statement: keys no longer present
    /// are deleted, the rest upserted, and the section's status recorded.
    func store(_ part: DailyReport, section: String, day: AnalyticsDay) async throws {
        var status = part.sections.first ?? .init(section: section, status: "ok")
        status.section = section
        let encoder = JSONEncoder()
        func rows(_ value: some Encodable) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        let statement: any AnalyticsDailyStore
        switch section {
        case "jobs":
            statement = AnalyticsDailyStatements.StoreJobs(day: day, rows: try rows(part.jobs), status: status)
        case "events":
            statement = AnalyticsDailyStatements.StoreEvents(day: day, rows: try rows(part.events), status: status)
        case "content":
            statement = AnalyticsDailyStatements.StoreContent(day: day, rows: try rows(part.content), status: status)
        case "notifications":
            statement = AnalyticsDailyStatements.StoreNotifications(day: day, rows: try rows(part.notifications), status: status)
        case "campaigns":
            statement = AnalyticsCampaignStatements.Store(day: day, rows: try rows(part.campaigns), status: status)
        default:
            preconditionFailure("unknown rollup section \(section)")
        }
        _ = try await databases[.analytics].withConnection { connection in
            try await connection.execute(statement)
        }
    }

    // MARK: Loading

    /// The stored rollup, in one round trip; nil if the day was never rolled up.
    func load(_ day: AnalyticsDay) async throws -> DailyReport? {
        let row = try await databases[.analytics].withConnection {
            try await $0.firstRow(AnalyticsDailyStatements.Load(day: day))
        }
        guard let row, row.sections != "[]" else { return nil }
        let decoder = JSONDecoder()
        var report = DailyReport(day: day, stored: true)
        report.sections = try decoder.decode([DailyReport.Section].self, from: Data(row.sections.utf8))
        report.jobs = try decoder.decode([DailyReport.Jobs].self, from: Data(row.jobs.utf8))
        report.events = try decoder.decode([DailyReport.Events].self, from: Data(row.events.utf8))
        report.content = try decoder.decode([DailyReport.Content].self, from: Data(row.content.utf8))
        report.notifications = try decoder.decode([DailyReport.Notifications].self, from: Data(row.notifications.utf8))
        report.campaigns = try await loadCampaigns(day)
        return report
    }
}

extension DailyReport {
    mutating func merge(_ part: DailyReport) {
        jobs += part.jobs
        events += part.events
        content += part.content
        notifications += part.notifications
        campaigns += part.campaigns
        sections += part.sections
    }
}
