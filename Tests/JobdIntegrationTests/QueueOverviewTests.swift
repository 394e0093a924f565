import JobdCore
import JobdPostgres
import JobdTestSupport
import Testing

/// `QueueAdmin`'s overview reads (the web console's front page) against a real
/// database: each count, the summary row and the per-minute outcomes.
@Suite("Queue overview", .serialized)
struct QueueOverviewTests {
    @Test("counts unfinished jobs by state and priority, live daemons, dead letters and ended attempts per minute")
    func overview() async throws {
        try await withWorld { world in
            try await world.sql.executeScript("""
                INSERT INTO queue.jobs (id, kind, state, priority, run_at, finished_at) OVERRIDING SYSTEM VALUE VALUES
                  (1, 'noop', 'available', 'high', now() - interval '90 seconds', NULL),
                  (2, 'noop', 'available', 'high', now() + interval '1 hour', NULL),
                  (3, 'noop', 'retryable', 'low', now() - interval '10 seconds', NULL),
                  (4, 'noop', 'completed', 'normal', now(), now()),
                  (5, 'noop', 'dead', 'normal', now(), now());
                SELECT setval(pg_get_serial_sequence('queue.jobs', 'id'), 100);
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
                  VALUES (5, 'noop', '{}', 'normal', 1, 'test');
                INSERT INTO queue.daemons (id, hostname, pid, version, workers) VALUES
                  ('alive', 'host-a', 1, 'v1', 3), ('gone', 'host-b', 2, 'v1', 4);
                UPDATE queue.daemons SET heartbeat_at = now() - interval '5 minutes' WHERE id = 'gone';
                INSERT INTO queue.attempts (job_id, attempt, event, at, outcome) VALUES
                  (4, 1, 'end', now() - interval '2 minutes', 'completed'),
                  (5, 1, 'end', now() - interval '2 minutes', 'dead'),
                  (5, 2, 'end', now() - interval '2 minutes', 'retry'),
                  (5, 3, 'start', now() - interval '2 minutes', NULL),
                  (4, 2, 'end', now() - interval '3 hours', 'completed');
                """)
            let admin = QueueAdmin(connection: world.database.connection("overview"))
            defer { Task { await admin.close() } }

            let counts = try await admin.unfinishedCounts()
            #expect(Set(counts.map { "\($0.state) \($0.priority) \($0.count)" }) == ["available high 2", "retryable low 1"])

            let summary = try await admin.overviewSummary()
            #expect(summary.deadLetters == 1)
            #expect(summary.generatedAt.hasSuffix("Z") && summary.generatedAt.count == 20, "\(summary.generatedAt)")
            let oldest = try #require(summary.oldestDueSeconds)
            #expect(oldest >= 90 && oldest < 150, "\(oldest)")
            #expect(summary.finishedEstimate >= 0)

            let daemons = try await admin.liveDaemons()
            #expect(daemons.map(\.id) == ["alive"])
            #expect(daemons.first?.hostname == "host-a" && daemons.first?.workers == 3 && daemons.first?.version == "v1")
            #expect((daemons.first?.heartbeatAgeSeconds ?? -1) >= 0)

            let minutes = try await admin.endedAttemptsPerMinute(from: summary.currentMinute - 59)
            #expect(minutes.count == 1)
            #expect(minutes.first?.completed == 1 && minutes.first?.failed == 2)
            #expect(minutes.first.map { summary.currentMinute - $0.minute } == 2
                    || minutes.first.map { summary.currentMinute - $0.minute } == 3)

            // Nothing due: no oldest-due age.
            try await world.sql.executeScript("DELETE FROM queue.jobs WHERE state IN ('available', 'retryable')")
            #expect(try await admin.overviewSummary().oldestDueSeconds == nil)
        }
    }
}
