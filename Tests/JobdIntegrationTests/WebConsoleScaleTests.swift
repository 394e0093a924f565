import Foundation
import JobdCampaigns
import JobdCodec
import JobdContent
import JobdCore
@testable import JobdPostgres
import JobdQueue
import JobdTestSupport
import PropertyBased
@testable import JobdWeb
import Testing

/// The console's reads that must stay cheap on a big queue (plans, statement counts,
/// batches), and content retrieval by external id.
extension WebConsoleTests {
    @Test("dead letters: pages of all and of one kind are read through an index in the page's order (no sort), and page through ties")
    func deadLetterPlans() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind, state) SELECT 'k' || (g % 3), 'dead' FROM generate_series(1, 30) g")
            // Five distinct times: the job id breaks every tie.
            try await world.exec("""
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, dead_at)
                SELECT id, kind, '{}', 'normal', 1, 'failed', timestamptz '2026-01-01 00:00+00' + (id % 5) * interval '1 minute'
                  FROM queue.jobs
                """)
            try await world.exec("ANALYZE queue.dead_letters")
            try await world.exec("SET enable_seqscan = off")
            // The statements' own text, prepared, each execution planned with its values
            // (as `perExecution` statements are).
            try await world.exec("PREPARE dl_page (int, text, bigint, bigint) AS \(QueueDeadLettersStatements.Page.sql.text)")
            try await world.exec("PREPARE dl_list (int, text) AS \(QueueDeadLettersStatements.List.sql.text)")
            let cursor = "1767225720000000, 17"
            let plans = [
                ("newest", "EXPLAIN EXECUTE dl_page(100, NULL, NULL, NULL)", "dead_letters_dead_at_job_idx"),
                ("deeper", "EXPLAIN EXECUTE dl_page(100, NULL, \(cursor))", "dead_letters_dead_at_job_idx"),
                ("kind", "EXPLAIN EXECUTE dl_page(100, 'k1', NULL, NULL)", "dead_letters_kind_idx"),
                ("kind, deeper", "EXPLAIN EXECUTE dl_page(100, 'k1', \(cursor))", "dead_letters_kind_idx"),
                ("list", "EXPLAIN EXECUTE dl_list(100, NULL)", "dead_letters_dead_at_job_idx"),
                ("list of a kind", "EXPLAIN EXECUTE dl_list(100, 'k1')", "dead_letters_kind_idx"),
            ]
            for (name, explain, index) in plans {
                let plan = try await world.plan(explain)
                #expect(plan.contains(index) && !plan.contains("Sort"), "\(name): \(plan)")
            }
            // The dry run's count of a kind from the index alone.
            let count = try await world.plan("EXPLAIN SELECT count(*) FROM queue.dead_letters WHERE kind = 'k1'")
            #expect(count.contains("Index Only Scan using dead_letters_kind_idx"), "\(count)")
            try await world.exec("RESET enable_seqscan")

            let expected = try await world.sql.query(
                "SELECT job_id FROM queue.dead_letters ORDER BY dead_at DESC, job_id DESC").rows.compactMap { $0[0].flatMap { Int($0) } }
            let expectedK1 = try await world.sql.query(
                "SELECT job_id FROM queue.dead_letters WHERE kind = 'k1' ORDER BY dead_at DESC, job_id DESC").rows.compactMap { $0[0].flatMap { Int($0) } }
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                for (kind, wanted) in [(nil, expected), ("k1", expectedK1)] as [(String?, [Int])] {
                    var seen: [Int] = []
                    var before: String?
                    for _ in 0..<20 {
                        var path = "/api/v1/dead-letters?limit=4" + (kind.map { "&kind=\($0)" } ?? "")
                        if let before { path += "&before=\(before)" }
                        let page = try console.jsonArray(try await console.request("GET", path, auth: alice))
                        seen += page.compactMap { $0["job_id"] as? Int }
                        guard page.count == 4, let last = page.last?["cursor"] as? String else { break }
                        before = last
                    }
                    #expect(seen == wanted, "kind \(kind ?? "any")")
                }
            }
        }
    }

    @Test("waiting jobs of a kind in a state: listed newest first and counted from jobs_waiting_kind_idx alone")
    func waitingKindPlans() async throws {
        try await withWorld { world in
            // A big table of finished jobs with a small backlog among them (one in ten waits).
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, finished_at)
                SELECT 'k' || (g % 3), CASE g % 20 WHEN 0 THEN 'available' WHEN 1 THEN 'retryable' ELSE 'completed' END,
                       CASE WHEN g % 20 > 1 THEN now() END
                  FROM generate_series(1, 20000) g
                """)
            try await world.exec("VACUUM ANALYZE queue.jobs")
            try await world.exec("SET enable_seqscan = off")
            try await world.exec("SET enable_bitmapscan = off")
            try await world.exec("PREPARE jobs_search (bigint, text, text, text, text, jsonb, bigint, int) AS \(QueueJobsStatements.Search.sql.text)")
            for (name, arguments) in [("state and kind", "NULL, 'available', 'k1', NULL, NULL, NULL, NULL, 50"),
                                      ("state and kind, deeper", "NULL, 'retryable', 'k2', NULL, NULL, NULL, 10000, 50")] {
                let plan = try await world.plan("EXPLAIN EXECUTE jobs_search(\(arguments))")
                #expect(plan.contains("jobs_waiting_kind_idx") && !plan.contains("Sort"), "\(name): \(plan)")
            }
            // The dry run's count (the text queue.bulk_action_count runs, with its values).
            let count = try await world.plan(
                "EXPLAIN SELECT count(*) FROM queue.jobs j WHERE j.state <> 'running' AND j.id < 30000 AND j.state = 'available' AND j.kind = 'k1'")
            #expect(count.contains("Index Only Scan using jobs_waiting_kind_idx"), "\(count)")
            try await world.exec("RESET enable_seqscan")
            try await world.exec("RESET enable_bitmapscan")
            let listed = try await world.sql.query(
                "EXECUTE jobs_search(NULL, 'available', 'k1', NULL, NULL, NULL, NULL, 500)").rows.compactMap { $0[0].flatMap { Int($0) } }
            let truth = try await world.sql.query(
                "SELECT id FROM queue.jobs WHERE state = 'available' AND kind = 'k1' ORDER BY id DESC").rows.compactMap { $0[0].flatMap { Int($0) } }
            #expect(listed == truth && !truth.isEmpty)
        }
    }

    @Test("waiting jobs of a state alone: ids read kind by kind from jobs_waiting_kind_idx, never down the primary key, and equal to the plain query")
    func waitingStatePlans() async throws {
        try await withWorld { world in
            // The newest jobs are all finished: walking the primary key down would pass them all.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, priority, finished_at)
                SELECT 'k' || (g % 4), CASE WHEN g <= 3000 AND g % 3 = 0 THEN 'available'
                                            WHEN g <= 3000 AND g % 3 = 1 THEN 'retryable' ELSE 'completed' END,
                       (ARRAY['high', 'normal', 'low'])[1 + g % 3 / 2 + g % 2],
                       CASE WHEN g > 3000 OR g % 3 = 2 THEN now() END
                  FROM generate_series(1, 30000) g
                """)
            try await world.exec("VACUUM ANALYZE queue.jobs")
            try await world.exec("PREPARE waiting (text, text, bigint, int) AS \(QueueJobsStatements.SearchWaiting.sql.text)")
            for arguments in ["'available', NULL, NULL, 50", "'retryable', 'low', 2000, 50"] {
                let plan = try await world.plan("EXPLAIN EXECUTE waiting(\(arguments))")
                // The primary key only fetches the page's rows by id; it is never walked.
                #expect(plan.contains("jobs_waiting_kind_idx") && !plan.contains("Backward using jobs_pkey")
                        && !plan.contains("Seq Scan"), "\(arguments): \(plan)")
            }
            // With no priority filter, each kind's newest ids come from the index alone.
            let idsOnly = try await world.plan("EXPLAIN EXECUTE waiting('available', NULL, NULL, 50)")
            #expect(idsOnly.contains("Index Only Scan Backward using jobs_waiting_kind_idx"), "\(idsOnly)")
            for (state, priority, before) in [("available", "NULL", "NULL"), ("retryable", "'normal'", "2000"),
                                              ("available", "'high'", "1500")] {
                let listed = try await world.sql.query("EXECUTE waiting('\(state)', \(priority), \(before), 500)")
                    .rows.compactMap { $0[0].flatMap { Int($0) } }
                let truth = try await world.sql.query("""
                    SELECT id FROM queue.jobs WHERE state = '\(state)' AND (\(priority)::text IS NULL OR priority = \(priority))
                       AND (\(before)::bigint IS NULL OR id < \(before)) ORDER BY id DESC LIMIT 500
                    """).rows.compactMap { $0[0].flatMap { Int($0) } }
                #expect(listed == truth && !truth.isEmpty, "\(state) \(priority) \(before)")
            }
            // Through the console's entry point, and the list of a kind still goes to Search.
            var filter = QueueAdmin.JobFilter()
            filter.state = .available
            filter.limit = 20
            let page = try await QueueAdmin(connection: world.sql).jobs(filter)
            #expect(page.count == 20 && page.allSatisfy { $0.state == "available" })
            #expect(page.map(\.id) == page.map(\.id).sorted(by: >))
        }
    }

    @Test("completed jobs in the ledger: a kind, a unique key and a payload are searched through the ledger's partial indexes, never along the ledger by job")
    func completedSearchPlans() async throws {
        try await withWorld { world in
            // 20,000 completed jobs as completions leave them (the ledger's end row carries the
            // job), one kind in 5,000 rare, half of them keyed; and rows the search must skip:
            // retries before one in ten, with no job columns.
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, outcome, kind, priority, payload, unique_key,
                                            run_at, enqueued_at, max_attempts, rescues)
                SELECT g, 1 + (g % 10 = 3)::int, 'end', 'completed', CASE WHEN g % 5000 = 7 THEN 'rare' ELSE 'k' || (g % 4) END,
                       (ARRAY['high', 'normal', 'low'])[1 + g % 3],
                       jsonb_build_object('order', jsonb_build_object('id', g), 'tenant', 't' || (g % 100)),
                       CASE WHEN g % 2 = 0 THEN 'key-' || g END, now(), now(), 20, 0
                  FROM generate_series(1, 20000) g
                """)
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, outcome, kind)
                SELECT g, 1, 'end', 'retry', 'k' || (g % 4) FROM generate_series(3, 20000, 10) g
                """)
            try await world.exec("VACUUM ANALYZE queue.attempts")
            try await world.exec("SET enable_seqscan = off")
            try await world.exec("PREPARE completed_search (bigint, text, text, text, text, jsonb, bigint, int) AS \(QueueJobsStatements.SearchCompleted.sql.text)")
            // Filters that match rarely or never: along attempts_job_idx each would read the
            // whole ledger.
            let plans = [
                ("unique key", "NULL, NULL, NULL, NULL, 'key-1234', NULL, NULL, 50", "attempts_completed_key_idx"),
                ("unique key, no match", "NULL, NULL, NULL, NULL, 'key-none', NULL, NULL, 50", "attempts_completed_key_idx"),
                ("payload", #"NULL, NULL, NULL, NULL, NULL, '{"order": {"id": 777}}', NULL, 50"#, "attempts_completed_payload_idx"),
                ("payload, no match", #"NULL, NULL, NULL, NULL, NULL, '{"order": {"id": -1}}', NULL, 50"#, "attempts_completed_payload_idx"),
            ]
            for (name, arguments, index) in plans {
                let plan = try await world.plan("EXPLAIN EXECUTE completed_search(\(arguments))")
                #expect(plan.contains(index) && !plan.contains("attempts_job_idx") && !plan.contains("Seq Scan"),
                        "\(name): \(plan)")
            }
            // The newest completed jobs without a key or payload filter (of a kind, a priority,
            // both or neither): (kind, priority) by (kind, priority) from the kind index in its
            // order, never down attempts_job_idx (past the newest 3,000 ledger rows, all
            // failures), and a priority never past the others' rows (a kind only ever high).
            // Index-only: the ledger is insert-only and vacuumed.
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, outcome, kind)
                SELECT g, 1, 'end', 'dead', 'k' || (g % 4) FROM generate_series(20001, 23000) g
                """)
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, outcome, kind, priority, payload, run_at, enqueued_at, max_attempts, rescues)
                SELECT g, 1, 'end', 'completed', 'high-only', 'high', '{}', now(), now(), 20, 0 FROM generate_series(30001, 33000) g
                """)
            try await world.exec("VACUUM ANALYZE queue.attempts")
            try await world.exec("PREPARE completed_newest (text, text, bigint, int) AS \(QueueJobsStatements.SearchCompletedNewest.sql.text)")
            for arguments in ["NULL, NULL, NULL, 50", "NULL, 'low', 15000, 50", "'rare', NULL, NULL, 50", "'none', NULL, NULL, 50",
                              "'rare', 'low', 15000, 50", "'high-only', 'low', NULL, 50"] {
                // attempts_job_idx only to read the page's rows by id, never walked down.
                let plan = try await world.plan("EXPLAIN EXECUTE completed_newest(\(arguments))")
                #expect(plan.contains("Index Only Scan Backward using attempts_completed_kind_idx")
                            && !plan.contains("Backward using attempts_job_idx") && !plan.contains("Seq Scan"),
                        "newest \(arguments): \(plan)")
            }
            // The priority is part of the index condition: the low jobs of a kind never low
            // are found absent without reading one of its 3,000 rows.
            let absent = try await world.plan("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE completed_newest('high-only', 'low', NULL, 50)")
            #expect(absent.contains("attempts_completed_kind_idx") && !absent.contains("Rows Removed by Filter"), "\(absent)")
            try await world.exec("RESET enable_seqscan")
            for (arguments, condition, count) in [
                ("NULL, NULL, NULL, 500", "true", 500), ("NULL, 'low', 15000, 500", "priority = 'low' AND id < 15000", 500),
                ("'rare', NULL, NULL, 500", "kind = 'rare'", 4), ("'k1', 'low', 15000, 500", "kind = 'k1' AND priority = 'low' AND id < 15000", 500),
                ("'high-only', 'low', NULL, 500", "kind = 'high-only' AND priority = 'low'", 0),
            ] {
                let listed = try await world.sql.query("EXECUTE completed_newest(\(arguments))").rows.compactMap { $0[0].flatMap { Int($0) } }
                let truth = try await world.sql.query(
                    "SELECT id FROM queue.completed_jobs WHERE \(condition) ORDER BY id DESC LIMIT 500").rows.compactMap { $0[0].flatMap { Int($0) } }
                #expect(listed == truth && truth.count == count, "newest \(condition)")
            }
            // The same answers as the plain query over queue.completed_jobs.
            let checks = [
                (#"NULL, NULL, 'k1', NULL, NULL, '{"tenant": "t5"}', NULL, 500"#, #"kind = 'k1' AND payload @> '{"tenant": "t5"}'"#),
                ("NULL, NULL, NULL, NULL, 'key-1234', NULL, NULL, 500", "unique_key = 'key-1234'"),
                (#"NULL, NULL, NULL, NULL, NULL, '{"order": {"id": 777}}', NULL, 500"#, #"payload @> '{"order": {"id": 777}}'"#),
                (#"NULL, NULL, NULL, NULL, NULL, '{"tenant": "t7"}', 19000, 500"#, #"payload @> '{"tenant": "t7"}' AND id < 19000"#),
            ]
            for (arguments, condition) in checks {
                let listed = try await world.sql.query("EXECUTE completed_search(\(arguments))").rows.compactMap { $0[0].flatMap { Int($0) } }
                let truth = try await world.sql.query(
                    "SELECT id FROM queue.completed_jobs WHERE \(condition) ORDER BY id DESC LIMIT 500").rows.compactMap { $0[0].flatMap { Int($0) } }
                #expect(listed == truth && !truth.isEmpty, "\(condition)")
            }
        }
    }

    @Test("a payload search reads id windows from the top: keyset pages over queue.jobs and the ledger equal the plain query, across window edges, for dense, sparse, rare and absent values")
    func payloadSearchWindows() async throws {
        try await withWorld { world in
            // 6,000 jobs; one in three completed into the ledger (its row gone from queue.jobs,
            // as a completion leaves it), one in five of the rest dead. Tenants: `dense` one job
            // in 3, `sparse` one in 97 (with 4 a page the first window is 1,024 ids wide, and the
            // last pages reach the window that is everything left), `rare` three jobs far apart
            // (the newest in the ledger, in a page of 4's first window; the others in the next),
            // `none` no job.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, payload, finished_at)
                SELECT 'k' || (g % 3), CASE WHEN g % 5 = 1 THEN 'dead' ELSE 'available' END,
                       jsonb_build_object('tenant', CASE WHEN g IN (17, 2900, 5997) THEN 'rare'
                                                         WHEN g % 97 = 0 THEN 'sparse'
                                                         WHEN g % 3 = 1 THEN 'dense' ELSE 'other' END, 'n', g),
                       CASE WHEN g % 5 = 1 THEN now() END
                  FROM generate_series(1, 6000) g
                """)
            try await world.exec("""
                WITH done AS (DELETE FROM queue.jobs WHERE id % 3 = 0 RETURNING *)
                INSERT INTO queue.attempts (job_id, attempt, event, outcome, kind, priority, payload, run_at, enqueued_at, max_attempts, rescues)
                SELECT id, 1, 'end', 'completed', kind, priority, payload, run_at, created_at, max_attempts, 0 FROM done
                """)
            try await world.exec("VACUUM ANALYZE queue.jobs")
            try await world.exec("VACUUM ANALYZE queue.attempts")
            let admin = QueueAdmin(connection: world.sql)
            for (tenant, state) in [("dense", nil), ("sparse", nil), ("rare", nil), ("none", nil), ("sparse", JobState.dead),
                                    ("sparse", JobState.completed)] as [(String, JobState?)] {
                let condition = state.map { "state = '\($0.rawValue)' AND " } ?? ""
                let truth = try await world.sql.query("""
                    SELECT id FROM (SELECT id, state, payload FROM queue.jobs
                                    UNION ALL SELECT id, 'completed', payload FROM queue.completed_jobs) j
                     WHERE \(condition)payload @> jsonb_build_object('tenant', $1::text) ORDER BY id DESC
                    """, [tenant]).rows.compactMap { $0[0].flatMap { JobID($0) } }
                for limit in [4, 50] {
                    var filter = QueueAdmin.JobFilter()
                    filter.contains = "{\"tenant\": \"\(tenant)\"}"
                    filter.state = state
                    filter.limit = limit
                    var seen: [JobID] = []
                    while true {
                        let page = try await admin.jobs(filter)
                        #expect(page.count <= limit)
                        seen += page.map(\.id)
                        guard page.count == limit, let last = page.last else { break }
                        filter.beforeID = last.id
                    }
                    #expect(seen == truth, "\(tenant) \(state?.rawValue ?? "any") by \(limit)")
                }
                #expect(tenant == "none" ? truth.isEmpty : truth.count >= 3, "\(tenant)")
            }
            // The rare jobs, the newest in the ledger, on one page (50 a page: the first window,
            // 12,800 ids, is the whole table).
            var rare = QueueAdmin.JobFilter()
            rare.contains = #"{"tenant": "rare"}"#
            #expect(try await admin.jobs(rare).map(\.id) == [5997, 2900, 17])
        }
    }

    @Test("a payload search's next window: from the last width to 16 times it, the most when nothing was found, else twice what the density found says the rest of the page needs; no input traps")
    func payloadWindowWidths() async {
        #expect(QueueAdmin.nextPayloadWindow(after: 12_800, searched: 12_800, found: 0, limit: 50) == 204_800)
        // 12 of 50 in the first 12,800 ids: the other 38 need about 40,534 ids at that density.
        #expect(QueueAdmin.nextPayloadWindow(after: 12_800, searched: 12_800, found: 12, limit: 50) == 81_067)
        #expect(QueueAdmin.nextPayloadWindow(after: 12_800, searched: 12_800, found: 49, limit: 50) == 12_800)
        #expect(QueueAdmin.nextPayloadWindow(after: 1_000, searched: 200_000, found: 1, limit: 50) == 16_000)
        #expect(QueueAdmin.nextPayloadWindow(after: .max / 8, searched: .max, found: 0, limit: 500) == .max)
        let lasts = Gen<Int64?>.element(of: [1, 2, 256, 12_800, 262_144, 1 << 40, .max / 16, .max / 16 + 1, .max])
            .map { (last: Int64?) -> Int64 in last ?? 1 }
        await propertyCheck(
            count: 1_000, input: lasts, Gen.int64(in: 1 ... .max), Gen.int(in: 0...500), Gen.int(in: 1...500)
        ) { last, searched, found, limit in
            let next = QueueAdmin.nextPayloadWindow(after: last, searched: searched, found: found, limit: limit)
            let most = last > .max / 16 ? Int64.max : last * 16
            #expect(next >= last && next <= most, "\(last) \(searched) \(found) \(limit): \(next)")
            if found == 0 { #expect(next == most) }
        }
    }

    @Test("jobs the daemon completed are found in the ledger by kind, unique key and payload, through the API and the page")
    func completedSearchThroughConsole() async throws {
        try await withWorld { world in
            let config = world.configuration()
            let daemon = world.makeDaemon(config, handlers: [LedgerSearchProbe(kind: "ledger.order"), LedgerSearchProbe(kind: "ledger.rare")])
            try await world.running([daemon]) {
                try await world.exec("""
                    INSERT INTO queue.jobs (kind, payload, unique_key)
                    SELECT 'ledger.order', jsonb_build_object('order', jsonb_build_object('id', i), 'tenant', 't' || (i % 3)), 'ord-' || i
                      FROM generate_series(1, 30) i
                    """)
                try await world.exec(#"INSERT INTO queue.jobs (kind, payload) VALUES ('ledger.rare', '{"order": {"id": 1000}}')"#)
                try await world.waitForState("completed", count: 31)
            }
            // Their rows left queue.jobs: every one below is read from its ledger end row.
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE kind LIKE 'ledger.%'") == 0)
            let rare = try await world.int("SELECT id FROM queue.completed_jobs WHERE kind = 'ledger.rare'")
            let seventh = try await world.int("SELECT id FROM queue.completed_jobs WHERE unique_key = 'ord-7'")
            let orders = try await world.sql.query("SELECT id FROM queue.completed_jobs WHERE kind = 'ledger.order' ORDER BY id DESC")
                .rows.compactMap { $0[0].flatMap { Int($0) } }
            #expect(orders.count == 30)
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                func jobs(_ query: String) async throws -> (ids: [Int], states: Set<String>, next: Int?) {
                    let reply = try await console.request("GET", "/api/v1/jobs?" + query, auth: alice)
                    #expect(reply.status == 200, "\(query): \(reply.body)")
                    let object = try console.json(reply)
                    let rows = object["jobs"] as? [[String: Any]] ?? []
                    return (rows.compactMap { $0["id"] as? Int }, Set(rows.compactMap { $0["state"] as? String }),
                            object["next_before"] as? Int)
                }
                for state in ["", "&state=completed"] {
                    let byKind = try await jobs("kind=ledger.rare" + state)
                    #expect(byKind.ids == [rare] && byKind.states == ["completed"], "\(state)")
                    #expect(try await jobs("unique_key=ord-7" + state).ids == [seventh], "\(state)")
                    #expect(try await jobs("field=order.id&value=7" + state).ids == [seventh], "\(state)")
                    #expect(try await jobs("contains=" + HTML.urlEncode(#"{"order": {"id": 1000}}"#) + state).ids == [rare], "\(state)")
                    #expect(try await jobs("field=tenant&value=t1&kind=ledger.order" + state).ids.count == 10, "\(state)")
                    #expect(try await jobs("unique_key=ord-none" + state).ids.isEmpty, "\(state)")
                    #expect(try await jobs("kind=ledger.none" + state).ids.isEmpty, "\(state)")
                }
                // A kind's completed jobs in keyset pages of 7, newest first, none missed.
                var seen: [Int] = []
                var query = "kind=ledger.order&state=completed&limit=7"
                for _ in 0..<10 {
                    let page = try await jobs(query)
                    seen += page.ids
                    guard let next = page.next else { break }
                    query = "kind=ledger.order&state=completed&limit=7&before=\(next)"
                }
                #expect(seen == orders)
                // The page lists it, linked to the job's page, which shows the ledger's copy.
                let page = try await console.request("GET", "/jobs?unique_key=ord-7", auth: alice)
                #expect(page.status == 200 && page.body.contains("href=\"/jobs/\(seventh)\""))
                let detail = try console.json(try await console.request("GET", "/api/v1/jobs/\(seventh)", auth: alice))["job"] as? [String: Any]
                #expect(detail?["state"] as? String == "completed" && detail?["unique_key"] as? String == "ord-7")
            }
        }
    }

    @Test("completed rows left in queue.jobs are listed through jobs_completed_id_idx, and a unique key alone is found through jobs_unique_key_id_idx")
    func legacyCompletedPlans() async throws {
        try await withWorld { world in
            // Completed rows an older daemon left, below 10,000 newer jobs in other states.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, finished_at)
                SELECT 'k' || (g % 3), CASE WHEN g <= 2000 THEN 'completed' WHEN g % 2 = 0 THEN 'available' ELSE 'dead' END,
                       CASE WHEN g <= 2000 OR g % 2 = 1 THEN now() END
                  FROM generate_series(1, 12000) g
                """)
            try await world.exec("VACUUM ANALYZE queue.jobs")
            try await world.exec("SET enable_seqscan = off")
            try await world.exec("PREPARE jobs_search (bigint, text, text, text, text, jsonb, bigint, int) AS \(QueueJobsStatements.Search.sql.text)")
            try await world.exec("PREPARE jobs_every (bigint, text, text, text, text, jsonb, bigint, int) AS \(QueueJobsStatements.SearchEveryState.sql.text)")
            for arguments in ["NULL, 'completed', NULL, NULL, NULL, NULL, NULL, 50", "NULL, 'completed', NULL, 'low', NULL, NULL, 1500, 50"] {
                let plan = try await world.plan("EXPLAIN EXECUTE jobs_search(\(arguments))")
                #expect(plan.contains("jobs_completed_id_idx") && !plan.contains("jobs_pkey") && !plan.contains("Sort"), "\(arguments): \(plan)")
            }
            // A unique key alone (no kind), whatever the state: jobs_unique_key_idx leads with
            // the kind and holds unfinished jobs only.
            try await world.exec("UPDATE queue.jobs SET unique_key = 'key-' || id WHERE id % 7 = 0")
            try await world.exec("VACUUM ANALYZE queue.jobs")
            for key in ["key-1400", "key-none"] {
                let plan = try await world.plan("EXPLAIN EXECUTE jobs_every(NULL, NULL, NULL, NULL, '\(key)', NULL, NULL, 50)")
                #expect(plan.contains("jobs_unique_key_id_idx") && !plan.contains("Seq Scan") && !plan.contains("jobs_pkey"), "\(key): \(plan)")
            }
            try await world.exec("RESET enable_seqscan")
            var filter = QueueAdmin.JobFilter()
            filter.state = .completed
            filter.limit = 30
            let page = try await QueueAdmin(connection: world.sql).jobs(filter)
            let truth = try await world.sql.query("SELECT id FROM queue.jobs WHERE state = 'completed' ORDER BY id DESC LIMIT 30")
                .rows.compactMap { $0[0].flatMap { JobID($0) } }
            #expect(page.map(\.id) == truth && truth.count == 30 && page.allSatisfy { $0.state == "completed" })
        }
    }

    @Test("the overview reads a bounded number of waiting jobs a priority: exact below the cap, lower bounds and said so above it")
    func overviewWaitingCap() async throws {
        try await withWorld { world in
            let cap = QueueAdmin.overviewWaitingCap
            try await world.exec("INSERT INTO queue.jobs (kind, priority) SELECT 'report', 'high' FROM generate_series(1, $1::int)", [String(cap + 100)])
            try await world.exec("INSERT INTO queue.jobs (kind, priority, state) SELECT 'report', 'low', 'retryable' FROM generate_series(1, 7)")
            try await world.exec("INSERT INTO queue.jobs (kind, priority, run_at) VALUES ('report', 'low', now() - interval '10 minutes')")
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                let overview = try console.json(try await console.request("GET", "/api/v1/overview", auth: alice))
                let unfinished = overview["unfinished"] as? [String: [String: Int]]
                #expect(unfinished?["available"]?["high"] == cap + 1)
                #expect(unfinished?["available"]?["low"] == 1 && unfinished?["retryable"]?["low"] == 7)
                #expect(overview["waiting_capped"] as? [String] == ["high"] && overview["waiting_cap"] as? Int == cap)
                #expect((overview["oldest_due_seconds"] as? Double).map { $0 >= 590 && $0 < 3_600 } == true)
                #expect((overview["compute_milliseconds"] as? Double).map { $0 > 0 } == true)
                let page = try await console.request("GET", "/", auth: alice)
                #expect(page.body.contains("<p id=\"waiting-capped\" class=\"muted\">More than \(cap) jobs wait at priority high"))
            }
        }
    }

    @Test("bulk dry run: the plain count equals count(*) for each filter, over jobs and dead letters")
    func bulkCountFunction() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, priority, state, payload)
                SELECT 'k' || (g % 4), (ARRAY['high', 'normal', 'low'])[1 + g % 3],
                       (ARRAY['available', 'retryable', 'completed', 'dead'])[1 + g % 4],
                       jsonb_build_object('tenant', 't' || (g % 5))
                  FROM generate_series(1, 200) g
                """)
            try await world.exec("""
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
                SELECT id, kind, payload, priority, 1, 'failed' FROM queue.jobs WHERE state = 'dead'
                """)
            let upper = try await world.int("SELECT max(id) + 1 FROM queue.jobs")
            let cases: [(String, String, String)] = [
                ("jobs", "{}", "true"),
                ("jobs", "{\"kind\": \"k1\", \"state\": \"retryable\"}", "kind = 'k1' AND state = 'retryable'"),
                ("jobs", "{\"kind\": \"k2\", \"priority\": \"low\"}", "kind = 'k2' AND priority = 'low'"),
                ("jobs", "{\"contains\": {\"tenant\": \"t3\"}, \"state\": \"available\"}", "payload @> '{\"tenant\": \"t3\"}' AND state = 'available'"),
                ("jobs", "{\"id\": 7}", "id = 7"),
            ]
            for (target, filter, condition) in cases {
                let counted = try await world.int("SELECT queue.bulk_action_count($1, $2::jsonb, $3::bigint)", [target, filter, String(upper)])
                let truth = try await world.int("SELECT count(*) FROM queue.jobs WHERE id < \(upper) AND \(condition)")
                #expect(counted == truth, "\(filter)")
            }
            // Below the bound only.
            #expect(try await world.int("SELECT queue.bulk_action_count('jobs', '{}', 101)") == 100)
            let dead = try await world.int("SELECT queue.bulk_action_count('dead_letters', '{\"kind\": \"k3\"}', $1::bigint)", [String(upper)])
            #expect(dead == (try await world.int("SELECT count(*) FROM queue.dead_letters WHERE kind = 'k3'")))
            #expect(dead > 0)
            // The start records the same count.
            let started = try await world.sql.query(
                "SELECT expected FROM queue.bulk_action_start('jobs', 'cancel', '{\"kind\": \"k1\", \"state\": \"retryable\"}', 'alice', $1::bigint, 10)",
                [String(upper)]).rows.first?.first.flatMap { $0 }.flatMap { Int($0) }
            #expect(started == (try await world.int("SELECT count(*) FROM queue.jobs WHERE kind = 'k1' AND state = 'retryable'")))
        }
    }

    @Test("a bulk action filtered by payload lists its candidates once, takes each batch from that list, and re-checks the state")
    func bulkPayloadListing() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, payload)
                SELECT 'export', jsonb_build_object('tenant', CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, 'n', g)
                  FROM generate_series(1, 20) g
                """)
            let upper = try await world.int("SELECT max(id) + 1 FROM queue.jobs")
            let filter = "{\"contains\": {\"tenant\": \"a\"}, \"state\": \"available\"}"
            let start = try await world.sql.query(
                "SELECT id, expected FROM queue.bulk_action_start('jobs', 'cancel', $1::jsonb, 'alice', $2::bigint, 3)",
                [filter, String(upper)]).rows.first ?? []
            let id = try #require(start.first.flatMap { $0 })
            #expect(start.last.flatMap { $0 } == "10")
            func step() async throws -> (processed: Int, done: Bool) {
                let row = try await world.sql.query("SELECT processed, done FROM queue.bulk_action_step($1::bigint)", [id]).rows.first ?? []
                return (Int(row[0] ?? "") ?? -1, row[1] == "t")
            }
            let first = try await step()
            #expect(first.processed == 3 && !first.done)
            // The first batch listed the ten candidates; later batches read the list, not the payload index.
            #expect(try await world.int("SELECT count(*) FROM queue.bulk_action_ids WHERE bulk_action_id = $1", [id]) == 10)
            #expect(try await world.scalar("SELECT listed_at IS NOT NULL FROM queue.bulk_actions WHERE id = $1", [id]) == "t")
            // A listed job that moved on before its batch no longer matches the state: left alone.
            let lowest = try await world.int("SELECT min(id) FROM queue.jobs WHERE payload @> '{\"tenant\": \"a\"}'")
            try await world.exec("UPDATE queue.jobs SET state = 'completed', finished_at = now() WHERE id = $1", [String(lowest)])
            // A job enqueued now matches the payload but is not in the counted set.
            let late = try await world.int("INSERT INTO queue.jobs (kind, payload) VALUES ('export', '{\"tenant\": \"a\"}') RETURNING id")
            var last = first
            for _ in 0..<10 where !last.done { last = try await step() }
            #expect(last.done && last.processed == 9)
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'cancelled'") == 9)
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'cancelled' AND NOT payload @> '{\"tenant\": \"a\"}'") == 0)
            #expect(try await world.scalar("SELECT state FROM queue.jobs WHERE id = $1", [String(lowest)]) == "completed")
            #expect(try await world.scalar("SELECT state FROM queue.jobs WHERE id = $1", [String(late)]) == "available")
            let row = try await world.sql.query(
                "SELECT processed, affected, finished_at IS NOT NULL FROM queue.bulk_actions WHERE id = $1", [id]).rows.first ?? []
            #expect(row == ["9", "9", "t"])
            // The list goes with the finished action.
            #expect(try await world.int("SELECT count(*) FROM queue.bulk_action_ids WHERE bulk_action_id = $1", [id]) == 0)
        }
    }

    @Test("the campaigns list is one statement for all campaigns (plus one per sending campaign), with each campaign's figures")
    func campaignsListStatements() async throws {
        try await withWorld { world in
            let workspace = try await world.scalar("INSERT INTO oltp.workspaces (name) VALUES ('acme') RETURNING id")!
            let account = try await world.scalar("""
                INSERT INTO oltp.email_accounts (workspace_id, name, from_address, relay_url, unsubscribe_url)
                VALUES ($1, 'news', 'news@acme.test', 'smtp://127.0.0.1:1', 'https://acme.test/u') RETURNING id
                """, [workspace])!
            let list = try await world.scalar("INSERT INTO oltp.lists (workspace_id, name) VALUES ($1, 'all') RETURNING id", [workspace])!
            try await world.exec("INSERT INTO oltp.contacts (workspace_id, address) SELECT $1, 'c' || g || '@acme.test' FROM generate_series(1, 12) g", [workspace])
            var ids: [Int] = []
            for index in 0..<5 {
                ids.append(try await world.int("""
                    INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, text_template, fanout_done)
                    VALUES ($1, 'campaign \(index)', $2, $3, 'Hello', 'Hi', true) RETURNING id
                    """, [workspace, account, list]))
            }
            // Deliveries in every state, a different mix per campaign (the last has none).
            for (offset, campaign) in ids.dropLast().enumerated() {
                try await world.exec("""
                    INSERT INTO oltp.deliveries (campaign_id, contact_id, workspace_id, state, sent_at)
                    SELECT $1, c.id, c.workspace_id, s.state, CASE WHEN s.state = 'sent' THEN now() - c.id * interval '1 second' END
                      FROM oltp.contacts c
                      JOIN LATERAL (SELECT (ARRAY['pending', 'sent', 'deferred', 'bounced', 'failed', 'suppressed', 'cancelled', 'sent'])
                                           [1 + (c.id + $2) % 8] AS state) s ON true
                     WHERE c.id % 4 <> $2
                    """, [String(campaign), String(offset)])
            }
            let connection = PostgresConnection(conninfo: world.database.url, name: "campaigns-list", commandTimeout: 30, logger: .silent)
            do {
                _ = try await connection.query("SELECT 1")
                var before = await connection.statementsSent
                let listed = try await CampaignStatus.recent(connection, limit: 20)
                #expect(await connection.statementsSent - before == 1)
                #expect(listed.map(\.id) == ids.reversed().map(Int64.init))
                for status in listed {
                    #expect(status == (try await CampaignStatus.load(world.sql, id: status.id)))
                }
                #expect(listed.first { $0.id == Int64(ids[0]) }.map { $0.delivered > 0 && $0.bounced > 0 && $0.recipients == $0.fannedOut } == true)
                #expect(listed.first?.fannedOut == 0)
                // A sending campaign adds the statement of its senders' figures.
                try await world.exec("UPDATE oltp.campaigns SET status = 'scheduled' WHERE id = $1", [String(ids[1])])
                try await world.exec("UPDATE oltp.campaigns SET status = 'sending', started_at = now() WHERE id = $1", [String(ids[1])])
                before = await connection.statementsSent
                let again = try await CampaignStatus.recent(connection, limit: 4)
                #expect(await connection.statementsSent - before == 2)
                #expect(again.map(\.id) == ids.reversed().prefix(4).map(Int64.init))
                for status in again {
                    #expect(status == (try await CampaignStatus.load(world.sql, id: status.id)))
                }
            } catch {
                await connection.close()
                throw error
            }
            await connection.close()
            try await withConsole(world, try Self.authSettings()) { console in
                let api = try console.jsonArray(try await console.request("GET", "/api/v1/campaigns", auth: Self.basic(Self.bob)))
                #expect(api.compactMap { $0["id"] as? Int } == ids.reversed())
                let truth = try await CampaignStatus.load(world.sql, id: Int64(ids[2]))
                #expect(api.first { $0["id"] as? Int == ids[2] }?["delivered"] as? Int == truth?.delivered)
            }
        }
    }

    static func storeMessage(_ world: QueueWorld, _ externalID: String, _ overrides: [String: Any] = [:]) async throws {
        let data = try JSONSerialization.data(withJSONObject: ContentFixtures.message(externalID, overrides))
        guard case .object(let object) = try JSONDecoder().decode(JSONValue.self, from: data) else {
            Issue.record("the fixture is not an object")
            return
        }
        let prepared = try PreparedMessage(try ContentMessage.parse(object), codec: ZlibCodec())
        let outcome = try await ContentStore(connection: world.sql).write(prepared)
        guard case .inserted = outcome else {
            Issue.record("not stored: \(outcome)")
            return
        }
    }

    @Test("content by external id: API and page; bodies for operators, hidden from read-only viewers; secret headers from everyone")
    func contentByExternalID() async throws {
        try await withWorld { world in
            let externalID = "order/42 receipt&<x>"
            try await Self.storeMessage(world, externalID, [
                "headers": ["X-Campaign": "spring", "X-Api-Token": "tok-123"],
                "attachments": [["filename": "r.txt", "content_type": "text/plain", "data_base64": "aGVsbG8="]],
            ])
            let encoded = "order%2F42%20receipt%26%3Cx%3E"
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                let bob = Self.basic(Self.bob)
                let full = try console.json(try await console.request("GET", "/api/v1/content/\(encoded)", auth: alice))
                #expect(full["external_id"] as? String == externalID)
                #expect(full["subject"] as? String == "Spring sale: 20% off garden tools")
                #expect(full["text"] as? String == "Spring sale! 20% off garden tools until Sunday.")
                #expect((full["html"] as? String)?.contains("<h1>Spring sale</h1>") == true)
                let attachment = (full["attachments"] as? [[String: Any]])?.first
                #expect(attachment?["filename"] as? String == "r.txt" && attachment?["size"] as? Int == 5)
                #expect(attachment?["data_base64"] as? String == "aGVsbG8=")
                let headers = (full["headers"] as? [[String: Any]]) ?? []
                #expect(headers.first { $0["name"] as? String == "X-Api-Token" }?["value"] as? String == "‹secret hidden›")
                #expect(headers.first { $0["name"] as? String == "X-Campaign" }?["value"] as? String == "spring")
                #expect(!(try await console.request("GET", "/api/v1/content/\(encoded)", auth: alice)).body.contains("tok-123"))

                let reply = try await console.request("GET", "/api/v1/content/\(encoded)", auth: bob)
                #expect(reply.status == 200)
                let redacted = try console.json(reply)
                #expect(redacted["subject"] as? String == "Spring sale: 20% off garden tools")
                #expect((redacted["text"] as? String)?.hasPrefix("‹body hidden: ") == true)
                #expect((redacted["html"] as? String)?.hasPrefix("‹body hidden: ") == true)
                #expect((redacted["attachments"] as? String)?.hasPrefix("‹body hidden: ") == true)
                #expect(!reply.body.contains("until Sunday") && !reply.body.contains("aGVsbG8=") && !reply.body.contains("tok-123"))

                let page = try await console.request("GET", "/content/\(encoded)", auth: alice)
                #expect(page.status == 200)
                #expect(page.body.contains("<h1>Message order/42 receipt&amp;&lt;x&gt;</h1>"))
                #expect(page.body.contains("&lt;h1&gt;Spring sale&lt;/h1&gt;") && !page.body.contains("<h1>Spring sale</h1>"))
                #expect(page.body.contains("until Sunday") && page.body.contains("r.txt") && !page.body.contains("tok-123"))
                let readOnly = try await console.request("GET", "/content/\(encoded)", auth: bob)
                #expect(readOnly.status == 200 && readOnly.body.contains("‹body hidden: "))
                #expect(!readOnly.body.contains("until Sunday") && !readOnly.body.contains("tok-123"))

                // The by-id form goes to the message's address; an unknown id is 404.
                let form = try await console.request("GET", "/content?id=\(encoded)", auth: bob)
                #expect(form.status == 303 && form.header("location") == "/content/\(encoded)")
                #expect(try await console.request("GET", "/api/v1/content/nope", auth: alice).status == 404)
                #expect(try await console.request("GET", "/content/nope", auth: alice).status == 404)
                #expect(try await console.request("GET", "/content/\(encoded)").status == 401)
            }
        }
    }
}

extension WebConsoleTests {
    @Test("a claim writes no entry in the kind and payload indexes; searches by kind, payload and bulk filter still find running jobs, through jobs_lease_idx")
    func claimWritesNoSearchEntry() async throws {
        try await withWorld { world in
            // Dead and waiting jobs of five tenants; kind k1 is one job in a hundred (all of tenant t1). Then
            // 40 of kind k1 claimed by the daemon's own claim statement.
            try await world.exec("""
                INSERT INTO queue.jobs (kind, payload, state, finished_at)
                SELECT CASE WHEN g % 100 = 1 THEN 'k1' ELSE 'k' || (2 + g % 3) END, jsonb_build_object('tenant', 't' || (g % 5)),
                       CASE WHEN g % 3 = 0 THEN 'dead' ELSE 'available' END, CASE WHEN g % 3 = 0 THEN now() END
                  FROM generate_series(1, 20000) g
                """)
            try await world.exec("VACUUM ANALYZE queue.jobs")
            let claimed = try await world.sql.query(
                "SELECT id FROM queue.jobs WHERE kind = 'k1' AND state = 'available' ORDER BY id DESC LIMIT 40")
                .rows.compactMap { $0[0] ?? nil }
            try #require(claimed.count == 40)
            try await world.exec("PREPARE claim(bigint[], text, float8, int, bigint) AS \(QueueStore.claimSQL)")
            let claim = try await world.plan("""
                EXPLAIN (ANALYZE, WAL, COSTS OFF, TIMING OFF, SUMMARY OFF)
                EXECUTE claim('{\(claimed.joined(separator: ","))}', 'd', 30, 1000, 9)
                """)
            // Per claimed job its new row version, its primary-key entry and its lease
            // entry (and one record for the statement); the kind and payload entries
            // were two more a job (5 × 40 + 1 before migration 0051).
            #expect(walRecords(claim).map { $0 <= 3 * 40 + 1 } == true, "\(claim)")
            #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'running'") == 40)

            // Each search equals the plain query over the whole table, running jobs included.
            let admin = QueueAdmin(connection: world.sql)
            func truth(_ condition: String) async throws -> [JobID] {
                try await world.sql.query("SELECT id FROM queue.jobs WHERE \(condition) ORDER BY id DESC LIMIT 500")
                    .rows.compactMap { JobID($0[0] ?? "") }
            }
            var byKind = QueueAdmin.JobFilter()
            byKind.kind = "k1"
            byKind.limit = 500
            let kindTruth = try await truth("kind = 'k1'")
            #expect(try await admin.jobs(byKind).map(\.id) == kindTruth && Set(kindTruth).isSuperset(of: claimed.compactMap { JobID($0) }))
            var runningOfKind = byKind
            runningOfKind.state = .running
            #expect(try await admin.jobs(runningOfKind).map(\.id) == claimed.compactMap { JobID($0) })
            var byPayload = QueueAdmin.JobFilter()
            byPayload.contains = #"{"tenant": "t1"}"#
            byPayload.limit = 500
            let payloadTruth = try await truth(#"payload @> '{"tenant": "t1"}'"#)
            #expect(try await admin.jobs(byPayload).map(\.id) == payloadTruth)
            #expect(payloadTruth.contains { id in claimed.contains(id.description) })
            var runningByPayload = byPayload
            runningByPayload.state = .running
            #expect(try await admin.jobs(runningByPayload).map(\.id) == (try await truth(#"state = 'running' AND payload @> '{"tenant": "t1"}'"#)))
            // The bulk actions' dry-run count and their matches.
            let top = try await world.int("SELECT max(id) + 1 FROM queue.jobs")
            for filter in [#"{"kind": "k1"}"#, #"{"kind": "k1", "state": "running"}"#, #"{"contains": {"tenant": "t1"}}"#] {
                let counted = try await world.int("SELECT queue.bulk_action_count('jobs', $1::jsonb, \(top))", [filter])
                let matched = try await world.sql.query(
                    "SELECT m FROM queue.bulk_action_matches('jobs', $1::jsonb, \(top), NULL) m", [filter]).rows.count
                let plain = try await world.int("""
                    SELECT count(*) FROM queue.jobs
                     WHERE ($1::jsonb->>'kind' IS NULL OR kind = $1::jsonb->>'kind')
                       AND ($1::jsonb->>'state' IS NULL OR state = $1::jsonb->>'state')
                       AND ($1::jsonb->'contains' IS NULL OR payload @> ($1::jsonb->'contains'))
                    """, [filter])
                #expect(counted == plain && matched == plain && plain > 0, "\(filter): \(counted), \(matched), \(plain)")
            }

            // The plans: the rows not running from the kind (payload) index, the running
            // ones from the lease index; a search of running jobs reads no other index.
            try await world.exec("SET enable_seqscan = off")
            try await world.exec("PREPARE jobs_search (bigint, text, text, text, text, jsonb, bigint, int) AS \(QueueJobsStatements.Search.sql.text)")
            try await world.exec("PREPARE jobs_every (bigint, text, text, text, text, jsonb, bigint, int) AS \(QueueJobsStatements.SearchEveryState.sql.text)")
            let kindPlan = try await world.plan("EXPLAIN EXECUTE jobs_every(NULL, NULL, 'k1', NULL, NULL, NULL, NULL, 50)")
            #expect(kindPlan.contains("jobs_kind_id_idle_idx") && kindPlan.contains("jobs_lease_idx")
                    && !kindPlan.contains("jobs_pkey"), "\(kindPlan)")
            let runningPlan = try await world.plan("EXPLAIN EXECUTE jobs_search(NULL, 'running', 'k1', NULL, NULL, NULL, NULL, 50)")
            #expect(runningPlan.contains("jobs_lease_idx") && !runningPlan.contains("jobs_kind_id_idle_idx")
                    && !runningPlan.contains("jobs_pkey"), "\(runningPlan)")
            try await world.exec("""
                PREPARE payload_window (bigint, text, text, text, text, jsonb, bigint, int, bigint, boolean)
                    AS \(QueueJobsStatements.SearchPayloadWindow.sql.text)
                """)
            let payloadPlan = try await world.plan(
                #"EXPLAIN EXECUTE payload_window(NULL, NULL, NULL, NULL, NULL, '{"tenant": "t1"}', \#(top), 50, NULL, false)"#)
            #expect(payloadPlan.contains("jobs_payload_idle_idx") && payloadPlan.contains("jobs_lease_idx"), "\(payloadPlan)")
            try await world.exec("RESET enable_seqscan")
        }
    }
}

/// Completes every job of its kind at once.
struct LedgerSearchProbe: JobHandler {
    let kind: String
    func handle(_ job: ClaimedJob, context: JobContext) async throws {}
}
