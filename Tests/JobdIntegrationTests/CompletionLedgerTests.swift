import JobdCore
import JobdPostgres
import JobdQueue
import JobdTestRandom
import JobdTestSupport
import Testing

/// A completion deletes the job row; the attempt's ledger row carries the completed job,
/// and operators read it there until the ledger's retention removes it.
@Suite("Completion leaves queue.jobs", .serialized)
struct CompletionLedgerTests {
    /// Inserts one job and claims it as daemon "a"; returns its id and the claimed attempt.
    private func claimOne(
        _ world: QueueWorld, _ store: QueueStore, kind: String = "noop", payload: String = "{}",
        priority: String = "normal", uniqueKey: String? = nil
    ) async throws -> (id: JobID, fence: AttemptFence) {
        let text = try await world.scalar(
            "INSERT INTO queue.jobs (kind, payload, priority, unique_key) VALUES ($1, $2::jsonb, $3, $4) RETURNING id",
            [kind, payload, priority, uniqueKey]) ?? ""
        let id = try #require(JobID(text))
        let claimed = try await store.claim(ids: [id], daemon: "a", lease: .seconds(30), maxPayloadBytes: 10_000)
        return (id, try #require(claimed.first?.job.fence))
    }

    @Test("a completed job leaves queue.jobs; the console, the job page and jobd status show it from the ledger until the trim")
    func completedJobInLedger() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            let admin = QueueAdmin(connection: world.sql)
            let (id, fence) = try await claimOne(
                world, store, kind: "invoice", payload: #"{"order": {"id": 7}}"#, priority: "high", uniqueKey: "inv-7")
            let applied = try await store.complete(
                [AttemptCompletion(fence: fence, outcome: .completed, runSeconds: 0.25)], daemon: "a")
            #expect(applied == [fence])

            // Gone from the hot table, with every index entry of its row.
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE id = $1::bigint", [String(id)]) == 0)
            // One ledger row: the attempt's end, carrying the job.
            let ledger = try await world.sql.query("""
                SELECT outcome, kind, priority, payload::text, unique_key, attempt, max_attempts, rescues,
                       enqueued_at IS NOT NULL, run_at IS NOT NULL, started_at IS NOT NULL, errors IS NULL, daemon
                  FROM queue.attempts WHERE job_id = $1::bigint
                """, [String(id)])
            #expect(ledger.rows == [["completed", "invoice", "high", #"{"order": {"id": 7}}"#, "inv-7", "1", "20", "0",
                                     "t", "t", "t", "t", "a"]])

            // The console's list: state=completed, and no state filter, and by payload.
            var filter = QueueAdmin.JobFilter()
            filter.state = .completed
            let completed = try await admin.jobs(filter)
            #expect(completed.map(\.id) == [id])
            #expect(completed.first?.state == "completed")
            #expect(completed.first?.priority == "high")
            #expect(completed.first?.uniqueKey == "inv-7")
            filter.state = nil
            filter.contains = #"{"order": {"id": 7}}"#
            #expect(try await admin.jobs(filter).map(\.id) == [id])
            filter.contains = #"{"order": {"id": 8}}"#
            #expect(try await admin.jobs(filter).isEmpty)
            // The job page.
            let detail = try #require(try await admin.job(id))
            #expect(detail.summary.state == "completed")
            #expect(detail.summary.kind == "invoice")
            #expect(detail.payload == #"{"order": {"id": 7}}"#)
            #expect(detail.errors == "[]")
            #expect(detail.finishedAt != nil && detail.startedAt != nil)
            #expect(detail.deadLetterReason == nil)
            // jobd status, and a cancel of it says it is finished.
            #expect(try await admin.status().counts["completed"]?["high"] == 1)
            #expect(try await admin.cancel(ids: [id]).map(\.outcome) == [.finished])
            #expect(try await world.int("SELECT count(*) FROM queue.completed_jobs WHERE id = $1::bigint", [String(id)]) == 1)

            // Within the window the trim keeps it; past it, it is gone everywhere.
            #expect(try await world.int("SELECT queue.trim_attempts(7 * 86400, 1000)") == 0)
            #expect(try await admin.job(id) != nil)
            try await world.exec("UPDATE queue.attempts SET at = now() - interval '7 days 1 minute' WHERE job_id = $1::bigint",
                                 [String(id)])
            #expect(try await world.int("SELECT queue.trim_attempts(7 * 86400, 1000)") == 1)
            #expect(try await admin.job(id) == nil)
            filter = QueueAdmin.JobFilter()
            filter.state = .completed
            #expect(try await admin.jobs(filter).isEmpty)
            #expect(try await admin.status().counts["completed"] == nil)
        }
    }

    @Test("a stale completion deletes nothing and writes no ledger row; the current one deletes the row")
    func staleCompletionDeletesNothing() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            let (id, fence) = try await claimOne(world, store)
            for stale in [AttemptFence(id: id, attempt: fence.attempt, token: fence.token &+ 1),
                          AttemptFence(id: id, attempt: fence.attempt + 1, token: fence.token)] {
                #expect(try await store.complete([AttemptCompletion(fence: stale, outcome: .completed)]).isEmpty)
            }
            #expect(try await world.scalar("SELECT state FROM queue.jobs WHERE id = $1::bigint", [String(id)]) == "running")
            #expect(try await world.int("SELECT count(*) FROM queue.attempts") == 0)
            // The same batch: the stale fence is refused, the current one applied.
            let stale = AttemptFence(id: id, attempt: fence.attempt, token: fence.token &+ 1)
            let applied = try await store.complete([AttemptCompletion(fence: stale, outcome: .completed),
                                                    AttemptCompletion(fence: fence, outcome: .completed)])
            #expect(applied == [fence])
            #expect(try await world.int("SELECT count(*) FROM queue.jobs") == 0)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts WHERE outcome = 'completed'") == 1)
            // Applied once only: a repeat finds no row.
            #expect(try await store.complete([AttemptCompletion(fence: fence, outcome: .completed)]).isEmpty)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts") == 1)
        }
    }

    @Test("an earlier daemon's JSON batch (queue.complete(jsonb, text)) applies exactly what the binary arrays apply")
    func jsonBatchMatchesArrays() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            // One job per outcome, in two identical sets: the first completed through the
            // arrays (what this daemon sends), the second through the JSON form.
            let outcomes: [(CompletionOutcome, Duration, String?, String?, Bool)] = [
                (.completed, .zero, nil, nil, false), (.retry, .seconds(90), "boom", "failed \"once\"", false),
                (.dead, .zero, "payload_invalid", "no", false), (.snooze, .seconds(30), "later", "busy", false),
                (.snooze, .zero, "goes_on", "more", true), (.release, .zero, nil, nil, false),
            ]
            var sets: [[AttemptCompletion]] = []
            for _ in 0..<2 {
                var batch: [AttemptCompletion] = []
                for (outcome, delay, code, error, place) in outcomes {
                    let (_, fence) = try await claimOne(world, store, payload: #"{"n": 1}"#)
                    batch.append(AttemptCompletion(fence: fence, outcome: outcome, delay: delay, errorCode: code,
                                                   errorMessage: error, runSeconds: 0.5, queueWaitSeconds: 0.25,
                                                   keepsPlace: place))
                }
                // And one stale fence, refused by both.
                let (_, fence) = try await claimOne(world, store)
                batch.append(AttemptCompletion(fence: AttemptFence(id: fence.id, attempt: fence.attempt, token: fence.token &+ 1),
                                               outcome: .completed))
                sets.append(batch)
            }
            let applied = try await store.complete(sets[0], daemon: "a")
            #expect(applied == Set(sets[0].dropLast().map(\.fence)))
            func json(_ c: AttemptCompletion) -> String {
                var fields = [#""id":\#(c.fence.id)"#, #""attempt":\#(c.fence.attempt)"#, #""token":\#(c.fence.token)"#,
                              #""outcome":"\#(c.outcome.rawValue)""#, #""delay":\#(c.delay.seconds)"#,
                              #""run":\#(c.runSeconds)"#, #""wait":\#(c.queueWaitSeconds)"#]
                if let code = c.errorCode { fields.append(#""code":"\#(code)""#) }
                if let error = c.errorMessage { fields.append(#""error":"\#(error.replacingOccurrences(of: "\"", with: "\\\""))""#) }
                if c.keepsPlace { fields.append(#""place":true"#) }
                return "{" + fields.joined(separator: ",") + "}"
            }
            let document = "[" + sets[1].map(json).joined(separator: ",") + "]"
            let returned = try await world.sql.query(
                "SELECT id, attempt, token FROM queue.complete($1::jsonb, 'a')", [document]).rows
            #expect(Set(returned.map { $0.map { $0 ?? "" }.joined(separator: "/") })
                    == Set(sets[1].dropLast().map { "\($0.fence.id)/\($0.fence.attempt)/\($0.fence.token)" }))
            // Each pair of jobs ends alike: the row (or its absence), the ledger row, the dead letter.
            // Due times in tens of seconds from now: the two sets ran moments apart.
            for (first, second) in zip(sets[0], sets[1]) {
                let state = """
                    SELECT coalesce((SELECT concat_ws('|', state, attempt, round(extract(epoch FROM run_at - now()) / 10)::text,
                                                      last_error, jsonb_array_length(errors), lease_token IS NULL)
                                       FROM queue.jobs WHERE id = $1::bigint), 'gone')
                           || ' ' || coalesce((SELECT string_agg(concat_ws('|', outcome, error_code, run_seconds,
                                                                       queue_wait_seconds, daemon, payload::text), ',')
                                                 FROM queue.attempts WHERE job_id = $1::bigint), 'no ledger row')
                           || ' ' || coalesce((SELECT concat_ws('|', reason, last_error) FROM queue.dead_letters
                                                WHERE job_id = $1::bigint), 'no dead letter')
                    """
                let viaArrays = try await world.scalar(state, [String(first.fence.id)])
                let viaJSON = try await world.scalar(state, [String(second.fence.id)])
                #expect(viaArrays == viaJSON, "\(first.outcome): \(viaArrays ?? "nil") against \(viaJSON ?? "nil")")
            }
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 2)
            #expect(try await world.int("SELECT count(*) FROM queue.attempts WHERE outcome = 'completed'") == 2)
        }
    }

    @Test("a snooze keeping its place is due exactly its margin before the row's run_at, whatever its wait and run time; never below run_at's CHECK")
    func snoozeKeepsPlace() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            let policy = FailurePolicy(backoff: RetryBackoff(base: .seconds(1), maximum: .seconds(60)))
            var generator = SplitMix64(seed: 3)
            let old = "2026-03-01 12:00:00.123456+00"
            let lowest = "1970-01-01 00:00:00+00"
            var completions: [AttemptCompletion] = []
            var ids: [JobID] = []
            for runAt in [old, lowest] {
                let text = try await world.scalar(
                    "INSERT INTO queue.jobs (kind, run_at, last_error) VALUES ('noop', $1::timestamptz, 'before') RETURNING id", [runAt]) ?? ""
                let id = try #require(JobID(text))
                let claimed = try #require(try await store.claim(ids: [id], daemon: "a", lease: .seconds(30), maxPayloadBytes: 1000).first)
                // A run time and wait that, worked back from now(), would land far from the row's run_at.
                completions.append(policy.completion(
                    for: claimed.job, result: .snoozed(.keepingPlace(code: "goes_on", message: "more to do")),
                    runSeconds: 7_200, using: &generator))
                ids.append(id)
            }
            #expect(try await store.complete(completions, daemon: "a") == Set(completions.map(\.fence)))
            let margin = String(JobSnooze.placeMargin.seconds)
            let row = try await world.sql.query("""
                SELECT state, attempt, run_at = $2::timestamptz - make_interval(secs => $3::float8), last_error, errors::text
                  FROM queue.jobs WHERE id = $1::bigint
                """, [String(ids[0]), old, margin]).rows
            #expect(row == [["retryable", "0", "t", "before", "[]"]])
            // At the CHECK's lower bound it stays there, and the batch is applied.
            #expect(try await world.scalar("SELECT run_at = $2::timestamptz FROM queue.jobs WHERE id = $1::bigint",
                                           [String(ids[1]), lowest]) == "t")
        }
    }

    @Test("a completion frees the unique key at once; the ledger row keeps it and the earlier errors")
    func uniqueKeyFreed() async throws {
        try await withWorld { world in
            let store = QueueStore(connection: world.sql)
            let (id, fence) = try await claimOne(world, store, uniqueKey: "order-42")
            #expect(try await world.scalar("SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, 'order-42')") == String(id))
            // A failed attempt first, then a successful one.
            #expect(try await store.complete([AttemptCompletion(
                fence: fence, outcome: .retry, delay: .zero, errorCode: "boom", errorMessage: "it broke")]) == [fence])
            let again = try #require(try await store.claim(ids: [id], daemon: "a", lease: .seconds(30), maxPayloadBytes: 1000).first)
            #expect(try await store.complete([AttemptCompletion(fence: again.job.fence, outcome: .completed)])
                    == [again.job.fence])
            let next = try await world.scalar("SELECT queue.enqueue('noop', '{}', 'normal', now(), 20, 'order-42')")
            #expect(next != nil && next != String(id))
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE id = $1::bigint", [String(id)]) == 0)
            let row = try await world.sql.query("""
                SELECT unique_key, attempt, last_error, errors->0->>'code' FROM queue.attempts
                 WHERE job_id = $1::bigint AND outcome = 'completed'
                """, [String(id)])
            #expect(row.rows == [["order-42", "2", "it broke", "boom"]])
            let detail = try #require(try await QueueAdmin(connection: world.sql).job(id))
            #expect(detail.summary.attempt == 2)
            #expect(detail.summary.lastError == "it broke")
            #expect(detail.errors.contains("it broke"))
        }
    }

    @Test("the ledger's configured window is at least JOBD_COMPLETED_RETENTION")
    func trimWindowFloor() async throws {
        try await withWorld { world in
            let day = RetentionWindow.days(1)
            var settings = QueueRetentionSettings.defaults
            settings.attempts = day
            let short = QueueTrimHandler(connection: world.sql, settings: settings, completedRetention: day * 7)
            #expect(short.configuredAttemptsWindow == day * 7)
            settings.attempts = day * 30
            let long = QueueTrimHandler(connection: world.sql, settings: settings, completedRetention: day * 7)
            #expect(long.configuredAttemptsWindow == day * 30)
            settings.attempts = nil
            #expect(QueueTrimHandler(connection: world.sql, settings: settings, completedRetention: day * 7)
                .configuredAttemptsWindow == nil)
        }
    }
}
