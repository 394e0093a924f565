import Foundation
import JobdAssembly
import JobdCore
import JobdPostgres

/// The writes section: what PostgreSQL writes per job, counted rather than timed, so
/// that it reads the same on a loaded host. A drain of no-op jobs by the assembled
/// daemon, between two readings of the cumulative statistics: rows inserted, updated
/// (HOT or not) and deleted per table (`pg_stat_user_tables`), WAL bytes (the WAL
/// position's advance), WAL records and full-page images (`pg_stat_wal`), and the
/// daemon's round trips.
extension Bench {
    func writes(jobs: Int, workers: Int) async throws -> BenchReport.Writes {
        try await reset()
        try await insertDue(jobs)
        try await sql.executeScript("VACUUM ANALYZE queue.jobs")
        // A checkpoint first, so every run pays the same full-page images (one per page
        // it touches first); needs superuser or pg_checkpoint, counted either way.
        let checkpointed = (try? await sql.execute(BenchStatisticsStatements.Checkpoint())) != nil
        let stats = try await separateStatisticsConnections()
        defer { Task { for connection in stats { await connection.close() } } }
        let tablesBefore = try await settledTableWrites(stats)
        let walBefore = try await sql.firstRow(BenchStatisticsStatements.WALPosition())
        let tripsBefore = PostgresStatistics.roundTrips.load(ordering: .relaxed)
        try await withDaemon(workers: workers) { daemon in
            try await waitForCompletions(jobs, daemon: daemon)
        }
        let trips = PostgresStatistics.roundTrips.load(ordering: .relaxed) - tripsBefore
        // The daemon's backends flush their statistics as they exit: wait until the
        // readings stop moving before taking the second.
        let tablesAfter = try await settledTableWrites(stats)
        let walAfter = try await sql.firstRow(BenchStatisticsStatements.WALPosition())
        guard let walBefore, let walAfter else { throw CLIError("writes: pg_stat_wal returned no row") }
        let walBytes = try await sql.firstRow(BenchStatisticsStatements.WALBytes(from: walBefore.lsn, to: walAfter.lsn)) ?? 0
        guard try await completedCount() >= jobs else { throw CLIError("writes: fewer than \(jobs) jobs completed in Postgres") }

        let perJob = { (value: Int64) in Double(value) / Double(jobs) }
        var tables: [BenchReport.Writes.Table] = []
        for (name, after) in tablesAfter.sorted(by: { $0.key < $1.key }) {
            let before = tablesBefore[name]
            let inserted = after.inserted - (before?.inserted ?? 0)
            let updated = after.updated - (before?.updated ?? 0)
            let hot = after.hotUpdated - (before?.hotUpdated ?? 0)
            let deleted = after.deleted - (before?.deleted ?? 0)
            guard inserted != 0 || updated != 0 || deleted != 0 else { continue }
            tables.append(.init(
                table: name, insertedPerJob: perJob(inserted), updatedPerJob: perJob(updated),
                hotUpdatedPerJob: perJob(hot), deletedPerJob: perJob(deleted)))
        }
        let rowsWritten = tables.map { $0.insertedPerJob + $0.updatedPerJob + $0.deletedPerJob }.reduce(0, +)
        return .init(
            workers: workers, jobs: jobs, checkpointFirst: checkpointed, tables: tables, rowsWrittenPerJob: rowsWritten,
            walBytesPerJob: perJob(walBytes), walRecordsPerJob: perJob(walAfter.records - walBefore.records),
            walFullPageImagesPerJob: perJob(walAfter.fullPageImages - walBefore.fullPageImages),
            postgresRoundTripsPerJob: Double(trips) / Double(jobs))
    }

    /// One connection per distinct database the queue and analytics tiers use (the
    /// tiers a no-op job writes to); statistics are per database.
    private func separateStatisticsConnections() async throws -> [PostgresConnection] {
        var urls: Set<String> = []
        var connections: [PostgresConnection] = []
        for tier in [DataTier.queue, .analytics] {
            let url = configuration.daemon.databaseURL(for: tier) ?? ""
            guard urls.insert(url).inserted else { continue }
            connections.append(try await self.connections.checkedPostgres("bench-stats-\(tier)", tier: tier))
        }
        return connections
    }

    /// Every table's counters once two readings 300 ms apart agree (at most 10 s),
    /// after asking this session to flush its own pending statistics.
    private func settledTableWrites(
        _ connections: [PostgresConnection]
    ) async throws -> [String: BenchStatisticsStatements.TableWrites.Row] {
        _ = try await sql.execute(BenchStatisticsStatements.ForceFlush())
        func read() async throws -> [String: BenchStatisticsStatements.TableWrites.Row] {
            var all: [String: BenchStatisticsStatements.TableWrites.Row] = [:]
            for connection in connections {
                for row in try await connection.rows(BenchStatisticsStatements.TableWrites()) { all[row.table] = row }
            }
            return all
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var last = try await read()
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            let next = try await read()
            if next == last { return next }
            last = next
        }
        return last
    }
}
