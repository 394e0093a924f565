import Foundation
import JobdCore
import JobdPostgres
import JobdQueue
import JobdRedis
import JobdTestSupport
import JobdThreads
@testable import JobdWeb
import Logging
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The web console over real HTTP on loopback (Hummingbird listening on a free port),
/// against a real PostgreSQL (and, for cancel and pause, a real daemon with Redis).
@Suite("Web console")
struct WebConsoleTests {
    // Low iteration counts keep the tests fast; the format is the production one.
    static let alice = ("alice", "alice-secret")  // operator
    static let bob = ("bob", "bob-secret")        // read-only
    static let carolToken = "carol-token-0123456789abcdef"  // operator, bearer

    static func authSettings() throws -> WebSettings {
        let users = try WebCredential.parseList(
            "alice:operator:\(CredentialHash.make(password: alice.1, iterations: 1_000).text),"
                + "bob:read:\(CredentialHash.make(password: bob.1, iterations: 1_000).text)",
            what: "JOBD_WEB_USERS")
        let tokens = try WebCredential.parseList(
            "carol:operator:\(CredentialHash.sha256Hash(of: carolToken).text)", what: "JOBD_WEB_TOKENS")
        var settings = WebSettings(host: "127.0.0.1", port: 0, users: users, tokens: tokens)
        settings.refreshInterval = .milliseconds(200)
        return settings
    }

    static func basic(_ user: (String, String)) -> String {
        "Basic " + Data("\(user.0):\(user.1)".utf8).base64EncodedString()
    }

    // MARK: Access

    @Test("beyond loopback, or with credentials configured, nothing is served without authentication")
    func authenticationRequired() async throws {
        #expect(throws: JobdInputError.self) { try WebSettings(host: "0.0.0.0", port: 8080).validate() }
        #expect(WebSettings(host: "0.0.0.0", port: 8080).requiresAuthentication)
        #expect(!WebSettings(host: "127.0.0.1", port: 8080).requiresAuthentication)
        try await withWorld { world in
            let id = try await world.int("INSERT INTO queue.jobs (kind) VALUES ('report') RETURNING id")
            try await withConsole(world, try Self.authSettings()) { console in
                let paths = ["/", "/jobs", "/jobs/\(id)", "/dead-letters", "/api/v1/overview", "/api/v1/jobs",
                             "/api/v1/jobs/\(id)", "/api/v1/dead-letters", "/api/v1/pauses", "/api/v1/csrf",
                             "/static/console.js"]
                for path in paths {
                    let anonymous = try await console.request("GET", path)
                    #expect(anonymous.status == 401, "\(path)")
                    #expect(anonymous.header("www-authenticate")?.hasPrefix("Basic") == true)
                    let wrong = try await console.request("GET", path, auth: Self.basic(("alice", "guess")))
                    #expect(wrong.status == 401, "\(path)")
                    let badToken = try await console.request("GET", path, auth: "Bearer nope")
                    #expect(badToken.status == 401, "\(path)")
                    let reader = try await console.request("GET", path, auth: Self.basic(Self.bob))
                    #expect(reader.status == 200, "\(path): \(reader.body.prefix(200))")
                    let token = try await console.request("GET", path, auth: "Bearer \(Self.carolToken)")
                    #expect(token.status == 200, "\(path)")
                }
                for path in ["/nope", "/jobs/999999999", "/api/v1/jobs/999999999", "/api/v2/jobs", "/static/x.js"] {
                    #expect(try await console.request("GET", path, auth: Self.basic(Self.alice)).status == 404, "\(path)")
                }
            }
        }
    }

    @Test("every page carries a strict Content-Security-Policy and refers only to its own assets")
    func securityHeaders() async throws {
        try await withWorld { world in
            let id = try await world.int("INSERT INTO queue.jobs (kind) VALUES ('report') RETURNING id")
            try await withConsole(world, try Self.authSettings()) { console in
                for path in ["/", "/jobs", "/jobs/\(id)", "/dead-letters"] {
                    let page = try await console.request("GET", path, auth: Self.basic(Self.alice))
                    #expect(page.status == 200)
                    let policy = page.header("content-security-policy") ?? ""
                    #expect(policy.hasPrefix("default-src 'self'"), "\(path): \(policy)")
                    #expect(!policy.contains("unsafe-inline"))
                    #expect(page.header("x-content-type-options") == "nosniff")
                    // No inline script or style, nothing from elsewhere.
                    #expect(!page.body.contains("<script>"), "\(path)")
                    #expect(!page.body.contains("style="), "\(path)")
                    #expect(!page.body.contains("<style"), "\(path)")
                    #expect(!page.body.contains("http://") && !page.body.contains("https://"), "\(path)")
                    #expect(page.body.contains("<script src=\"/static/console.js\" defer></script>"))
                }
            }
        }
    }

    @Test("actions: POST only, a CSRF token unless bearer-authenticated, refused to read-only users, logged")
    func actions() async throws {
        try await withWorld { world in
            let first = try await world.int("INSERT INTO queue.jobs (kind, run_at) VALUES ('report', now() + interval '1 hour') RETURNING id")
            let second = try await world.int("INSERT INTO queue.jobs (kind, run_at) VALUES ('report', now() + interval '1 hour') RETURNING id")
            let logs = LogCapture()
            try await withConsole(world, try Self.authSettings(), logger: logs.logger()) { console in
                let alice = Self.basic(Self.alice)
                let bob = Self.basic(Self.bob)
                let aliceToken = try await console.csrf(auth: alice)
                let bobToken = try await console.csrf(auth: bob)
                #expect(aliceToken != bobToken)

                // GET on an action, POST on a page.
                #expect(try await console.request("GET", "/jobs/\(first)/cancel", auth: alice).status == 405)
                #expect(try await console.request("POST", "/jobs", auth: alice, form: ["csrf": aliceToken]).status == 405)
                // Read-only, even with its own valid token.
                let refused = try await console.request("POST", "/jobs/\(first)/cancel", auth: bob, form: ["csrf": bobToken])
                #expect(refused.status == 403)
                #expect(try await console.request("POST", "/api/v1/pause", auth: bob, form: ["csrf": bobToken, "scope": "kind", "name": "report"]).status == 403)
                // No token, another user's token, a token in the wrong form.
                #expect(try await console.request("POST", "/jobs/\(first)/cancel", auth: alice).status == 403)
                #expect(try await console.request("POST", "/jobs/\(first)/cancel", auth: alice, form: ["csrf": bobToken]).status == 403)
                #expect(try await console.request("POST", "/jobs/\(first)/cancel", auth: alice, form: ["csrf": "zz"]).status == 403)
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(first)]) == "available")
                #expect(try await world.int("SELECT count(*) FROM queue.pauses") == 0)

                // The operator with the token: done, redirected back to the job.
                let done = try await console.request("POST", "/jobs/\(first)/cancel", auth: alice, form: ["csrf": aliceToken])
                #expect(done.status == 303)
                #expect(done.header("location")?.hasPrefix("/jobs/\(first)?notice=") == true)
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(first)]) == "cancelled")
                // The token also works as a header (the API from a browser session).
                let viaHeader = try await console.request(
                    "POST", "/api/v1/jobs/\(first)/retry", auth: alice, headers: ["X-CSRF-Token": aliceToken])
                #expect(viaHeader.status == 200)
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(first)]) == "available")
                // A bearer token needs no CSRF token: browsers never send one by themselves.
                let bearer = try await console.request("POST", "/api/v1/jobs/\(second)/cancel", auth: "Bearer \(Self.carolToken)")
                #expect(bearer.status == 200)
                #expect(try console.json(bearer)["ok"] as? Bool == true)
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(second)]) == "cancelled")
                // Cancelling it again is refused with a reason.
                let again = try await console.request("POST", "/api/v1/jobs/\(second)/cancel", auth: "Bearer \(Self.carolToken)")
                #expect(again.status == 409)

                let entries = logs.messages("web console action")
                #expect(entries.contains { $0.metadata["user"] == "alice" && $0.metadata["action"] == "cancel" && $0.metadata["job_id"] == String(first) })
                #expect(entries.contains { $0.metadata["user"] == "carol" && $0.metadata["action"] == "cancel" && $0.metadata["job_id"] == String(second) })
                #expect(!entries.contains { $0.metadata["user"] == "bob" })
                #expect(logs.messages("web console action refused").contains { $0.metadata["user"] == "bob" })
            }
        }
    }

    @Test("a read-only user sees no bodies, no secrets and no action buttons; stored strings are escaped")
    func redactionAndEscaping() async throws {
        try await withWorld { world in
            let body = String(repeating: "Dear customer, ", count: 30)
            let id = try await world.int("""
                INSERT INTO queue.jobs (kind, payload) VALUES ('<script>alert(1)</script>',
                  jsonb_build_object('to', 'ann@example.com', 'html', $1::text, 'smtp_password', 'hunter2',
                                     'note', '<img src=x onerror=alert(2)>'))
                RETURNING id
                """, [body])
            try await withConsole(world, try Self.authSettings()) { console in
                let reader = try await console.request("GET", "/jobs/\(id)", auth: Self.basic(Self.bob))
                #expect(reader.status == 200)
                #expect(!reader.body.contains("hunter2"))
                #expect(!reader.body.contains("Dear customer"))
                #expect(reader.body.contains("ann@example.com"))
                #expect(!reader.body.contains("action=\"/jobs/\(id)/cancel\""))
                #expect(!reader.body.contains("<script>alert(1)"))
                #expect(reader.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
                #expect(!reader.body.contains("<img src=x"))
                let api = try await console.request("GET", "/api/v1/jobs/\(id)", auth: Self.basic(Self.bob))
                #expect(!api.body.contains("hunter2") && !api.body.contains("Dear customer"))

                let operatorPage = try await console.request("GET", "/jobs/\(id)", auth: Self.basic(Self.alice))
                #expect(operatorPage.body.contains("Dear customer"))
                #expect(!operatorPage.body.contains("hunter2"))
                #expect(operatorPage.body.contains("action=\"/jobs/\(id)/cancel\""))
                let list = try await console.request("GET", "/jobs", auth: Self.basic(Self.bob))
                #expect(list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
                #expect(!list.body.contains("<script>alert(1)"))
            }
        }
    }

    @Test("on loopback without credentials: local requests act as the operator, but only with a loopback Host and a CSRF token")
    func loopbackWithoutCredentials() async throws {
        try await withWorld { world in
            let id = try await world.int("INSERT INTO queue.jobs (kind, run_at) VALUES ('report', now() + interval '1 hour') RETURNING id")
            var settings = WebSettings(host: "127.0.0.1", port: 0)
            settings.refreshInterval = .milliseconds(200)
            try await withConsole(world, settings) { console in
                #expect(try await console.request("GET", "/").status == 200)
                // A DNS name pointing at 127.0.0.1 (rebinding) is not served.
                #expect(try await console.request("GET", "/", headers: ["Host": "evil.example:\(console.port)"]).status == 421)
                #expect(try await console.request("GET", "/", headers: ["Host": "localhost:\(console.port)"]).status == 200)
                #expect(try await console.request("POST", "/jobs/\(id)/cancel").status == 403)
                let token = try await console.csrf(auth: nil)
                let done = try await console.request("POST", "/jobs/\(id)/cancel", headers: ["X-CSRF-Token": token])
                #expect(done.status == 303)
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(id)]) == "cancelled")
            }
        }
    }

    // MARK: Jobs list

    @Test("filters, payload search and keyset pagination")
    func filtersAndPagination() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, payload, unique_key)
                SELECT 'invoice', jsonb_build_object('order', jsonb_build_object('id', i), 'tenant', CASE WHEN i % 3 = 0 THEN 't2' ELSE 't1' END),
                       'inv-' || i
                  FROM generate_series(1, 30) i
                """)
            try await world.exec("INSERT INTO queue.jobs (kind, priority, payload) SELECT 'mail', 'high', jsonb_build_object('order', jsonb_build_object('id', 170)) FROM generate_series(1, 10)")
            try await world.exec("UPDATE queue.jobs SET state = 'completed', finished_at = now() WHERE kind = 'invoice' AND (payload->'order'->>'id')::int <= 4")
            let invoices = Set(try await world.sql.query("SELECT id FROM queue.jobs WHERE kind = 'invoice'").rows.compactMap { $0[0].flatMap { Int($0) } })
            #expect(invoices.count == 30)
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                func ids(_ query: String, auth: String? = nil) async throws -> (ids: [Int], next: Int?) {
                    let reply = try await console.request("GET", "/api/v1/jobs?" + query, auth: auth ?? alice)
                    #expect(reply.status == 200, "\(query): \(reply.body)")
                    let object = try console.json(reply)
                    let jobs = object["jobs"] as? [[String: Any]] ?? []
                    return (jobs.compactMap { $0["id"] as? Int }, object["next_before"] as? Int)
                }
                // Keyset pages of 7: newest first, no overlap, nothing missed.
                var seen: [Int] = []
                var query = "kind=invoice&limit=7"
                var pages = 0
                while true {
                    let page = try await ids(query)
                    #expect(page.ids == page.ids.sorted(by: >))
                    #expect(page.ids.count <= 7)
                    seen += page.ids
                    pages += 1
                    guard let next = page.next else { break }
                    #expect(next == page.ids.last)
                    query = "kind=invoice&limit=7&before=\(next)"
                    if pages > 10 { break }
                }
                #expect(pages == 5)
                #expect(seen.count == 30 && Set(seen) == invoices)

                #expect(try await ids("kind=invoice&state=completed").ids.count == 4)
                #expect(try await ids("state=available&kind=invoice").ids.count == 26)
                #expect(try await ids("priority=high").ids.count == 10)
                let one = try await ids("unique_key=inv-7").ids
                #expect(one.count == 1)
                #expect(try await ids("id=\(one[0])").ids == one)
                // Containment and a field's value, nested, typed.
                #expect(try await ids("contains=" + HTML.urlEncode("{\"tenant\": \"t2\"}")).ids.count == 10)
                #expect(try await ids("field=order.id&value=17").ids.count == 1)
                #expect(try await ids("field=order.id&value=170").ids.count == 10)
                #expect(try await ids("field=order.id&value=%2217%22").ids.isEmpty)  // the string "17" is not the number 17
                #expect(try await ids("field=tenant&value=t1&kind=invoice").ids.count == 20)
                #expect(try await ids("field=tenant&value=t1&kind=mail").ids.isEmpty)

                for bad in ["contains=%5B1%5D", "contains=nope", "id=abc", "state=bogus", "priority=urgent", "limit=0",
                            "before=x", "contains=%7B%7D&field=a"] {
                    #expect(try await console.request("GET", "/api/v1/jobs?" + bad, auth: alice).status == 400, "\(bad)")
                }
                // Searching by content is reading it: not for read-only users.
                #expect(try await console.request("GET", "/api/v1/jobs?field=tenant&value=t1", auth: Self.basic(Self.bob)).status == 403)
                #expect(try await ids("kind=invoice", auth: Self.basic(Self.bob)).ids.count == 30)

                // The page links to the next one with the same filter.
                let page = try await console.request("GET", "/jobs?kind=invoice&limit=7", auth: alice)
                #expect(page.body.contains("rel=\"next\" href=\"/jobs?before=\(seen[6])&amp;kind=invoice&amp;limit=7\""))
            }
            // The containment search can use the GIN index (forced, the table is tiny); it
            // and the kind index hold the jobs not running.
            try await world.exec("SET enable_seqscan = off")
            let plan = try await world.plan(
                "EXPLAIN SELECT id FROM queue.jobs WHERE payload @> '{\"tenant\": \"t2\"}'::jsonb AND state <> 'running' ORDER BY id DESC LIMIT 50")
            #expect(plan.contains("jobs_payload_idle_idx"), "\(plan)")
            let kindPlan = try await world.plan(
                "EXPLAIN SELECT id FROM queue.jobs WHERE kind = 'invoice' AND state <> 'running' AND id < 100 ORDER BY id DESC LIMIT 50")
            #expect(kindPlan.contains("jobs_kind_id_idle_idx"), "\(kindPlan)")
            try await world.exec("RESET enable_seqscan")
        }
    }

    // MARK: Dead letters and overview

    @Test("dead letters: list, retry, discard")
    func deadLetters() async throws {
        try await withWorld { world in
            let ids = try await world.sql.query("INSERT INTO queue.jobs (kind) SELECT 'report' FROM generate_series(1, 3) RETURNING id")
                .rows.compactMap { $0[0].flatMap { Int($0) } }
            try await world.exec("UPDATE queue.jobs SET state = 'dead', attempt = 3, finished_at = now() WHERE kind = 'report'")
            try await world.exec("""
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, last_error)
                SELECT id, kind, payload, priority, 3, 'max_attempts', 'boom <b>' FROM queue.jobs
                """)
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                let page = try await console.request("GET", "/dead-letters", auth: alice)
                #expect(page.body.contains("boom &lt;b&gt;"))
                for id in ids { #expect(page.body.contains("action=\"/dead-letters/\(id)/retry\"")) }
                let reader = try await console.request("GET", "/dead-letters", auth: Self.basic(Self.bob))
                #expect(!reader.body.contains("/retry\""))
                let token = try await console.csrf(auth: alice)
                #expect(try await console.request("POST", "/dead-letters/\(ids[0])/retry", auth: alice, form: ["csrf": token]).status == 303)
                #expect(try await console.request("POST", "/dead-letters/\(ids[1])/discard", auth: alice, form: ["csrf": token]).status == 303)
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(ids[0])]) == "available")
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(ids[1])]) == "cancelled")
                #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 1)
                let api = try console.jsonArray(try await console.request("GET", "/api/v1/dead-letters", auth: alice))
                #expect(api.compactMap { $0["job_id"] as? Int } == [ids[2]])
                // Retrying what is no longer a dead letter is refused.
                let again = try await console.request("POST", "/api/v1/dead-letters/\(ids[0])/retry", auth: "Bearer \(Self.carolToken)")
                #expect(again.status == 409)
            }
        }
    }

    @Test("dead letters page by keyset (dead_at, job id): every letter once, in order, ties included, across pages")
    func deadLetterPages() async throws {
        try await withWorld { world in
            // 25 dead letters; groups of five share one dead_at (the tie-breaker matters),
            // kinds alternate.
            try await world.exec("""
                INSERT INTO queue.jobs (kind)
                SELECT CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END FROM generate_series(1, 25) AS g
                """)
            try await world.exec("UPDATE queue.jobs SET state = 'dead', attempt = 1, finished_at = now()")
            try await world.exec("""
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason, dead_at)
                SELECT id, kind, payload, priority, 1, 'max_attempts',
                       timestamptz '2026-01-01 00:00:00.123456+00' + ((id % 5) * interval '1.000001 second')
                  FROM queue.jobs
                """)
            let expected = try await world.sql.query(
                "SELECT job_id FROM queue.dead_letters ORDER BY dead_at DESC, job_id DESC").rows.compactMap { $0[0].flatMap { Int($0) } }
            #expect(expected.count == 25)
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                var seen: [Int] = []
                var before: String?
                var pages = 0
                repeat {
                    let path = "/api/v1/dead-letters?limit=7" + (before.map { "&before=\($0)" } ?? "")
                    let page = try console.jsonArray(try await console.request("GET", path, auth: alice))
                    seen += page.compactMap { $0["job_id"] as? Int }
                    before = page.count == 7 ? page.last?["cursor"] as? String : nil
                    pages += 1
                } while before != nil && pages < 10
                #expect(pages == 4)
                #expect(seen == expected)
                // A kind filter pages the same way.
                let oddExpected = try await world.sql.query(
                    "SELECT job_id FROM queue.dead_letters WHERE kind = 'odd' ORDER BY dead_at DESC, job_id DESC").rows.compactMap { $0[0].flatMap { Int($0) } }
                let firstOdd = try console.jsonArray(try await console.request("GET", "/api/v1/dead-letters?kind=odd&limit=10", auth: alice))
                let cursor = try #require(firstOdd.last?["cursor"] as? String)
                let secondOdd = try console.jsonArray(try await console.request("GET", "/api/v1/dead-letters?kind=odd&limit=10&before=\(cursor)", auth: alice))
                #expect((firstOdd + secondOdd).compactMap { $0["job_id"] as? Int } == oddExpected)
                // The page links to the next one, keeping the filter; the last page has no link.
                let html = try await console.request("GET", "/dead-letters?kind=odd&limit=10", auth: alice)
                #expect(html.body.contains("<a rel=\"next\" href=\"/dead-letters?before=\(cursor)&amp;kind=odd&amp;limit=10\">"))
                let last = try await console.request("GET", "/dead-letters?kind=odd&limit=10&before=\(cursor)", auth: alice)
                #expect(!last.body.contains("rel=\"next\""))
                for bad in ["x", "1", "1.2.3", "-5.1", "1.x", "99999999999999999999.1"] {
                    #expect(try await console.request("GET", "/api/v1/dead-letters?before=\(bad)", auth: alice).status == 400, "\(bad)")
                }
            }
        }
    }

    @Test("the overview is computed once per interval for every viewer")
    func overviewShared() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind, priority) SELECT 'report', 'high' FROM generate_series(1, 3)")
            try await world.exec("INSERT INTO queue.jobs (kind, priority) VALUES ('report', 'low')")
            var settings = try Self.authSettings()
            settings.refreshInterval = .seconds(30)
            try await withConsole(world, settings) { console in
                let alice = Self.basic(Self.alice)
                let server = try #require(console.server)
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<12 {
                        group.addTask {
                            try await console.request("GET", index % 2 == 0 ? "/" : "/api/v1/overview", auth: alice).status
                        }
                    }
                    for try await status in group { #expect(status == 200) }
                }
                #expect(server.overview.computations.load(ordering: .relaxed) == 1)
                let snapshot = try console.json(try await console.request("GET", "/api/v1/overview", auth: alice))
                let unfinished = snapshot["unfinished"] as? [String: [String: Int]]
                #expect(unfinished?["available"]?["high"] == 3)
                #expect(unfinished?["available"]?["low"] == 1)
                #expect(server.overview.computations.load(ordering: .relaxed) == 1)
            }
        }
    }

    @Test("the first overview snapshot is computed when the console starts: the first viewer is served it, no second computation")
    func overviewPreparedAtStart() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind, priority) SELECT 'report', 'high' FROM generate_series(1, 2)")
            var settings = try Self.authSettings()
            settings.refreshInterval = .seconds(30)
            try await withConsole(world, settings) { console in
                let server = try #require(console.server)
                // Nobody has asked yet.
                try await waitUntil(timeout: 15, "the snapshot computed at the start") { server.overview.hasSnapshot }
                #expect(server.overview.computations.load(ordering: .relaxed) == 1)
                let alice = Self.basic(Self.alice)
                let page = try await console.request("GET", "/", auth: alice)
                #expect(page.status == 200)
                let snapshot = try console.json(try await console.request("GET", "/api/v1/overview", auth: alice))
                #expect((snapshot["unfinished"] as? [String: [String: Int]])?["available"]?["high"] == 2)
                #expect(server.overview.computations.load(ordering: .relaxed) == 1)
            }
        }
    }

    @Test("the overview's last hour counts ended attempts per minute from the ledger")
    func overviewLastHour() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.attempts (job_id, attempt, event, outcome, at)
                VALUES (1, 1, 'end', 'completed', now()), (2, 1, 'end', 'completed', now()),
                       (3, 1, 'end', 'retry', now()), (4, 1, 'start', NULL, now()),
                       (5, 1, 'end', 'completed', now() - interval '2 hours')
                """)
            var settings = try Self.authSettings()
            settings.refreshInterval = .milliseconds(1)
            try await withConsole(world, settings) { console in
                let alice = Self.basic(Self.alice)
                let first = try console.json(try await console.request("GET", "/api/v1/overview", auth: alice))
                let minutes = first["last_hour"] as? [[String: Any]] ?? []
                #expect(minutes.reduce(0) { $0 + ($1["completed"] as? Int ?? 0) } == 2)
                #expect(minutes.reduce(0) { $0 + ($1["failed"] as? Int ?? 0) } == 1)
                // The current minute is read again: a new ending shows up.
                try await world.exec("INSERT INTO queue.attempts (job_id, attempt, event, outcome) VALUES (6, 1, 'end', 'dead')")
                // A stale snapshot is served while the next one is computed: it shows up
                // within an interval and a computation.
                var later: [[String: Any]] = []
                try await waitUntil(timeout: 10, "the new ending on the overview") {
                    let second = try console.json(try await console.request("GET", "/api/v1/overview", auth: alice))
                    later = second["last_hour"] as? [[String: Any]] ?? []
                    return later.reduce(0) { $0 + ($1["failed"] as? Int ?? 0) } == 2
                }
                #expect(later.reduce(0) { $0 + ($1["completed"] as? Int ?? 0) } == 2)
                let page = try await console.request("GET", "/", auth: alice)
                #expect(page.body.contains("<svg class=\"chart\""))
            }
        }
    }

    @Test("the overview shows PostgreSQL and Redis health, the dispatch lists, busy/total slots per daemon, and what is paused")
    func overviewHealthAndSlots() async throws {
        try await withWorld { world in
            let daemon = world.makeDaemon(world.configuration { $0.workers = .shared(4) }, id: "slots-daemon")
            try await world.running([daemon]) {
                var settings = try Self.authSettings()
                settings.refreshInterval = .milliseconds(50)
                try await withConsole(world, settings) { console in
                    let alice = Self.basic(Self.alice)
                    try await world.exec("INSERT INTO queue.jobs (kind, payload) SELECT 'noop', '{\"sleep_ms\": 4000}' FROM generate_series(1, 3)")
                    let token = try await console.csrf(auth: alice)
                    #expect(try await console.request("POST", "/pause", auth: alice, form: ["csrf": token, "scope": "kind", "name": "mail.send"]).status == 303)
                    // The daemon publishes its slots about once a second: 3 of its 4 busy.
                    var overview: [String: Any] = [:]
                    try await waitUntil(timeout: 15, "3 of 4 slots busy on the overview") {
                        overview = try console.json(try await console.request("GET", "/api/v1/overview", auth: alice))
                        let daemons = overview["daemons"] as? [[String: Any]] ?? []
                        return daemons.first { $0["id"] as? String == "slots-daemon" }.map {
                            $0["busy"] as? Int == 3 && $0["slots"] as? Int == 4
                        } ?? false
                    }
                    let postgres = overview["postgres"] as? [String: Any] ?? [:]
                    #expect(postgres["reachable"] as? Bool == true)
                    #expect((postgres["version"] as? String)?.hasPrefix("15") == true, "\(postgres)")
                    #expect((postgres["latency_milliseconds"] as? Double).map { $0 >= 0 && $0 < 5_000 } == true)
                    let redis = overview["redis"] as? [String: Any] ?? [:]
                    #expect(redis["reachable"] as? Bool == true)
                    #expect((redis["version"] as? String)?.hasPrefix("7") == true, "\(redis)")
                    #expect(redis["latency_milliseconds"] as? Double != nil)
                    #expect((overview["redis_lists"] as? [String: Int])?.keys.sorted() == ["high", "low", "normal"])
                    let page = try await console.request("GET", "/", auth: alice)
                    #expect(page.body.contains("<td id=\"pg-health\" class=\"ok\">reachable · "))
                    #expect(page.body.contains("<td id=\"redis-health\" class=\"ok\">reachable · "))
                    #expect(page.body.contains("<td class=\"num\">3 / 4</td>"))
                    #expect(page.body.contains("<p id=\"paused-line\">paused: kind mail.send (by alice)</p>"))
                }
            }
        }
    }

    @Test("the overview still answers when Redis or PostgreSQL cannot be reached, and says which")
    func overviewUnreachable() async throws {
        try await withWorld { world in
            try await world.exec("INSERT INTO queue.jobs (kind, priority) VALUES ('report', 'high')")
            let closed = try BrowserTools.freePort()
            let deadRedis = ConsoleRedisTarget(url: RedisURL(host: "127.0.0.1", port: closed), prefix: world.prefix, commandTimeout: .seconds(2))
            try await withConsole(world, try Self.authSettings(), redis: deadRedis) { console in
                let alice = Self.basic(Self.alice)
                let overview = try console.json(try await console.request("GET", "/api/v1/overview", auth: alice))
                #expect((overview["redis"] as? [String: Any])?["reachable"] as? Bool == false)
                #expect((overview["postgres"] as? [String: Any])?["reachable"] as? Bool == true)
                #expect((overview["unfinished"] as? [String: [String: Int]])?["available"]?["high"] == 1)
                let page = try await console.request("GET", "/", auth: alice)
                #expect(page.status == 200)
                #expect(page.body.contains("<td id=\"redis-health\" class=\"bad\">unreachable: "))
            }
            try await withConsole(world, try Self.authSettings(), conninfo: "postgresql://127.0.0.1:\(closed)/nowhere?connect_timeout=2") { console in
                let alice = Self.basic(Self.alice)
                let page = try await console.request("GET", "/", auth: alice)
                #expect(page.status == 200)
                #expect(page.body.contains("<td id=\"pg-health\" class=\"bad\">unreachable: "))
                #expect(page.body.contains("<td id=\"redis-health\" class=\"ok\">reachable · "))
            }
        }
    }

    // MARK: Cancel and pause against a real daemon

    // MARK: Bulk actions

    static func merged(_ base: [String: String], _ extra: [String: String]) -> [String: String] {
        var result = base
        for (key, value) in extra { result[key] = value }
        return result
    }

    /// The dry run's count for `fields` (and 200), -1 when it has none.
    static func dryRunCount(_ console: ConsoleUnderTest, auth: String, token: String, _ fields: [String: String]) async throws -> Int {
        let reply = try await console.request("POST", "/api/v1/bulk", auth: auth, form: merged(fields, ["csrf": token]))
        let status = reply.status
        #expect(status == 200, "\(fields): \(reply.body)")
        let count = try console.json(reply)["count"] as? Int
        return count ?? -1
    }

    @Test("bulk actions: refused to read-only users and without CSRF; the dry run counts exactly the matching rows")
    func bulkDryRun() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, payload, priority, run_at)
                SELECT CASE WHEN g % 4 = 0 THEN 'other' ELSE 'report' END, jsonb_build_object('tenant', g % 3, 'n', g),
                       CASE WHEN g % 5 = 0 THEN 'low' ELSE 'normal' END, now() + interval '1 hour'
                  FROM generate_series(1, 60) g
                """)
            try await world.exec("UPDATE queue.jobs SET state = 'dead' WHERE id % 6 = 0")
            try await world.exec("""
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
                SELECT id, kind, payload, priority, 1, 'failed' FROM queue.jobs WHERE state = 'dead'
                """)
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                let bob = Self.basic(Self.bob)
                let aliceToken = try await console.csrf(auth: alice)
                let bobToken = try await console.csrf(auth: bob)
                let form = ["target": "jobs", "action": "cancel", "kind": "report"]
                // Read-only: refused for the dry run and the confirm, page and API alike.
                #expect(try await console.request("POST", "/bulk", auth: bob, form: Self.merged(form, ["csrf": bobToken])).status == 403)
                #expect(try await console.request("POST", "/api/v1/bulk", auth: bob, form: Self.merged(form, ["csrf": bobToken, "confirm": "1", "upper": "1000"])).status == 403)
                // No CSRF token, or another user's.
                #expect(try await console.request("POST", "/bulk", auth: alice, form: form).status == 403)
                #expect(try await console.request("POST", "/api/v1/bulk", auth: alice, form: Self.merged(form, ["csrf": bobToken, "confirm": "1", "upper": "1000"])).status == 403)
                #expect(try await world.int("SELECT count(*) FROM queue.bulk_actions") == 0)
                #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'cancelled'") == 0)

                // Dry runs: the count is the rows matching, filter by filter.
                let cases: [([String: String], String)] = [
                    (["kind": "report"], "kind = 'report'"),
                    (["kind": "report", "priority": "low"], "kind = 'report' AND priority = 'low'"),
                    (["state": "dead"], "state = 'dead'"),
                    (["contains": "{\"tenant\": 1}"], "payload @> '{\"tenant\": 1}'"),
                    (["field": "tenant", "value": "2", "kind": "other"], "payload @> '{\"tenant\": 2}' AND kind = 'other'"),
                    ([:], "true"),
                ]
                for (fields, condition) in cases {
                    let expected = try await world.int("SELECT count(*) FROM queue.jobs WHERE \(condition)")
                    #expect(expected > 0)
                    let got = try await Self.dryRunCount(console, auth: alice, token: aliceToken, Self.merged(["target": "jobs", "action": "retry"], fields))
                    #expect(got == expected, "\(condition)")
                }
                let deadExports = try await world.int("SELECT count(*) FROM queue.dead_letters WHERE kind = 'report'")
                #expect(try await Self.dryRunCount(console, auth: alice, token: aliceToken, ["target": "dead_letters", "action": "discard", "kind": "report"]) == deadExports)
                let allDead = try await world.int("SELECT count(*) FROM queue.dead_letters")
                #expect(try await Self.dryRunCount(console, auth: alice, token: aliceToken, ["target": "dead_letters", "action": "retry"]) == allDead)
                // Bad requests.
                for bad in [["target": "jobs", "action": "explode"], ["target": "everything", "action": "retry"],
                            ["target": "dead_letters", "action": "cancel"], ["target": "jobs", "action": "retry", "state": "asleep"]] {
                    let reply = try await console.request("POST", "/api/v1/bulk", auth: alice, form: Self.merged(bad, ["csrf": aliceToken]))
                    #expect(reply.status == 400, "\(bad)")
                }
                // The page: the count and a confirm form carrying the filter, the bound and the token.
                let page = try await console.request("POST", "/bulk", auth: alice, form: Self.merged(form, ["csrf": aliceToken]))
                #expect(page.status == 200)
                let reports = try await world.int("SELECT count(*) FROM queue.jobs WHERE kind = 'report'")
                #expect(page.body.contains("<strong id=\"bulk-count\">\(reports)</strong>"))
                #expect(page.body.contains("name=\"confirm\" value=\"1\""))
                #expect(page.body.contains("name=\"kind\" value=\"report\""))
                #expect(page.body.contains("name=\"csrf\" value=\"\(aliceToken)\""))
                // Nothing was changed or recorded by the dry runs.
                #expect(try await world.int("SELECT count(*) FROM queue.bulk_actions") == 0)
                #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'cancelled'") == 0)
                // The jobs and dead-letter pages offer it to operators only.
                #expect(try await console.request("GET", "/jobs?kind=report", auth: alice).body.contains("action=\"/bulk\""))
                #expect(!(try await console.request("GET", "/jobs?kind=report", auth: bob).body.contains("action=\"/bulk\"")))
                #expect(try await console.request("GET", "/dead-letters", auth: alice).body.contains("action=\"/bulk\""))
            }
        }
    }

    @Test("bulk actions: confirming records who asked and runs a job that works through the matches in batches to the end")
    func bulkRuns() async throws {
        try await withWorld { world in
            try await world.exec("""
                INSERT INTO queue.jobs (kind, payload, run_at)
                SELECT CASE WHEN g % 4 = 0 THEN 'other' ELSE 'report' END, jsonb_build_object('tenant', g % 3),
                       now() + interval '1 hour'
                  FROM generate_series(1, 40) g
                """)
            try await world.exec("""
                INSERT INTO queue.jobs (kind, state, run_at, finished_at)
                SELECT CASE WHEN g % 3 = 0 THEN 'other' ELSE 'export' END, 'dead', now(), now() FROM generate_series(1, 17) g
                """)
            try await world.exec("""
                INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason)
                SELECT id, kind, payload, priority, 1, 'failed' FROM queue.jobs WHERE state = 'dead'
                """)
            let logs = LogCapture()
            let matching = try await world.int("SELECT count(*) FROM queue.jobs WHERE kind = 'report' AND payload @> '{\"tenant\": 1}'")
            let deadExports = try await world.int("SELECT count(*) FROM queue.dead_letters WHERE kind = 'export'")
            try await withConsole(world, try Self.authSettings(), logger: logs.logger()) { console in
                let alice = Self.basic(Self.alice)
                let token = try await console.csrf(auth: alice)
                let fields = ["target": "jobs", "action": "cancel", "kind": "report", "field": "tenant", "value": "1", "csrf": token]
                let dry = try console.json(try await console.request("POST", "/api/v1/bulk", auth: alice, form: fields))
                #expect(dry["count"] as? Int == matching)
                let upper = try #require(dry["upper"] as? Int)
                // Enqueued after the dry run: matches, but is not in the set counted.
                let late = try await world.int("INSERT INTO queue.jobs (kind, payload, run_at) VALUES ('report', '{\"tenant\": 1}', now() + interval '1 hour') RETURNING id")
                let confirmed = try await console.request(
                    "POST", "/bulk", auth: alice, form: Self.merged(fields, ["confirm": "1", "upper": String(upper), "batch": "4"]))
                #expect(confirmed.status == 303)
                let location = try #require(confirmed.header("location"))
                #expect(location.hasPrefix("/bulk/"))
                let digits = String(location.dropFirst("/bulk/".count).prefix(while: \.isNumber))
                let id = try #require(Int(digits))
                // Audited before anything ran: who, what, the filter, the count.
                #expect(try await world.scalar("SELECT requested_by FROM queue.bulk_actions WHERE id = $1", [String(id)]) == "alice")
                #expect(try await world.int("SELECT expected FROM queue.bulk_actions WHERE id = $1", [String(id)]) == matching)
                #expect(try await world.scalar("SELECT filter->>'kind' FROM queue.bulk_actions WHERE id = $1", [String(id)]) == "report")
                let queued = try await console.request("GET", "/bulk/\(id)", auth: alice)
                #expect(queued.body.contains("http-equiv=\"refresh\""))
                #expect(queued.body.contains("queued"))
                // The job is internal: a producer cannot enqueue it (the door of migration 0013).
                #expect(try await world.int("SELECT count(*) FROM queue.internal_kinds WHERE kind = 'queue.bulk_action'") == 1)

                // Dead letters by bearer token (no CSRF), discarded in batches of 5.
                let carol = "Bearer \(Self.carolToken)"
                let dryDead = try console.json(try await console.request(
                    "POST", "/api/v1/bulk", auth: carol, form: ["target": "dead_letters", "action": "discard", "kind": "export"]))
                #expect(dryDead["count"] as? Int == deadExports)
                let started = try console.json(try await console.request(
                    "POST", "/api/v1/bulk", auth: carol,
                    form: ["target": "dead_letters", "action": "discard", "kind": "export", "confirm": "1",
                           "upper": String(try #require(dryDead["upper"] as? Int)), "batch": "5"]))
                let deadID = try #require(started["id"] as? Int)
                #expect(started["expected"] as? Int == deadExports)

                let daemon = world.makeDaemon(world.configuration())
                try await world.running([daemon]) {
                    try await waitUntil(timeout: 30, "both bulk actions finished") {
                        try await world.int("SELECT count(*) FROM queue.bulk_actions WHERE finished_at IS NOT NULL") == 2
                    }
                }
                // Exactly the rows counted changed; the late one did not.
                #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state = 'cancelled' AND kind = 'report'") == matching)
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(late)]) == "available")
                #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE kind = 'report' AND state = 'available'") == 30 - matching + 1)
                #expect(try await world.int("SELECT count(*) FROM queue.dead_letters WHERE kind = 'export'") == 0)
                #expect(try await world.int("SELECT count(*) FROM queue.dead_letters WHERE kind = 'other'") == 17 - deadExports)
                let row = try await world.exec(
                    "SELECT expected, processed, affected, requested_by, started_at IS NOT NULL FROM queue.bulk_actions WHERE id = $1", [String(id)])
                #expect(row.rows.first == [String(matching), String(matching), String(matching), "alice", "t"])
                let dead = try await world.exec("SELECT processed, affected, requested_by FROM queue.bulk_actions WHERE id = $1", [String(deadID)])
                #expect(dead.rows.first == [String(deadExports), String(deadExports), "carol"])
                #expect(try await world.scalar("SELECT 'completed' FROM queue.completed_jobs WHERE kind = 'queue.bulk_action' AND payload->>'bulk_action_id' = $1", [String(id)]) == "completed")

                // The page shows it finished, and the API the same figures.
                let page = try await console.request("GET", "/bulk/\(id)", auth: Self.basic(Self.bob))
                #expect(page.status == 200)
                #expect(page.body.contains("<span id=\"bulk-status\">finished</span>"))
                #expect(page.body.contains("<span id=\"bulk-processed\">\(matching)</span>"))
                #expect(!page.body.contains("http-equiv=\"refresh\""))
                let api = try console.json(try await console.request("GET", "/api/v1/bulk/\(id)", auth: alice))
                #expect(api["requested_by"] as? String == "alice")
                #expect(api["affected"] as? Int == matching)
                #expect(try await console.request("GET", "/bulk", auth: alice).body.contains("/bulk/\(deadID)"))
                #expect(try await console.request("GET", "/bulk/999999", auth: alice).status == 404)
            }
            // The journal names who: the console when confirmed, the daemon when done.
            #expect(logs.messages("web console action").contains {
                $0.metadata["user"] == "alice" && $0.metadata["action"] == "bulk_cancel" && $0.metadata["expected"] == String(matching)
            })
            #expect(logs.messages("web console action").contains { $0.metadata["user"] == "carol" && $0.metadata["action"] == "bulk_discard" })
            #expect(world.logs.messages("bulk action finished").contains {
                $0.metadata["user"] == "alice" && $0.metadata["affected"] == String(matching)
            })
        }
    }

    // MARK: API of the other tiers, and the OpenAPI file

    /// Notifications with mixed statuses and tries, a campaign, a dead letter, a bulk action.
    static func tierData(_ world: QueueWorld) async throws -> (notification: Int, campaign: Int, job: Int, bulk: Int) {
        try await world.exec("""
            INSERT INTO notifications.notifications (idempotency_key, channel, recipient, subject, body, status, tries, sent_at, last_error)
            SELECT 'k' || g, 'webhook', 'https://hooks.example/' || g, NULL, '{"secret": "body"}',
                   CASE g % 3 WHEN 0 THEN 'sent' WHEN 1 THEN 'failed' ELSE 'pending' END, g % 3,
                   CASE WHEN g % 3 = 0 THEN now() END, CASE WHEN g % 3 = 1 THEN 'HTTP 500' END
              FROM generate_series(1, 25) g
            """)
        let notification = try await world.int("SELECT min(id) FROM notifications.notifications WHERE status = 'failed'")
        try await world.exec("""
            INSERT INTO notifications.attempts (notification_id, try, destination, started_at, duration_ms, outcome, status_code, excerpt)
            VALUES ($1, 1, 'https://hooks.example:443', now(), 12.5, 'failed', 500, 'server <b>error</b>')
            """, [String(notification)])
        let workspace = try await world.scalar("INSERT INTO oltp.workspaces (name) VALUES ('acme') RETURNING id")!
        let account = try await world.scalar("""
            INSERT INTO oltp.email_accounts (workspace_id, name, from_address, relay_url, unsubscribe_url)
            VALUES ($1, 'news', 'news@acme.test', 'smtp://127.0.0.1:1', 'https://acme.test/u') RETURNING id
            """, [workspace])!
        let list = try await world.scalar("INSERT INTO oltp.lists (workspace_id, name) VALUES ($1, 'all') RETURNING id", [workspace])!
        let campaign = try await world.int("""
            INSERT INTO oltp.campaigns (workspace_id, name, account_id, list_id, subject, text_template)
            VALUES ($1, 'spring <sale>', $2, $3, 'Hello', 'Hi') RETURNING id
            """, [workspace, account, list])
        let job = try await world.int("INSERT INTO queue.jobs (kind, state, run_at, finished_at) VALUES ('export', 'dead', now(), now()) RETURNING id")
        try await world.exec("INSERT INTO queue.dead_letters (job_id, kind, payload, priority, attempts, reason) VALUES ($1, 'export', '{}', 'normal', 1, 'failed')", [String(job)])
        let bulk = try await world.int("SELECT id FROM queue.bulk_action_start('jobs', 'retry', '{\"kind\": \"nothing\"}', 'alice', 1, 10)")
        try await storeMessage(world, "order/7")
        return (notification, campaign, job, bulk)
    }

    @Test("API: notifications by id and by status in keyset pages, campaigns, periodic jobs, content search; pages for each")
    func tierAPI() async throws {
        try await withWorld { world in
            let data = try await Self.tierData(world)
            var settings = try Self.authSettings()
            settings.schedules = [
                ScheduledJob(name: "nightly", cron: try CronSchedule("0 3 * * *"), kind: "report.daily"),
                ScheduledJob(name: "often", cron: try CronSchedule("*/5 * * * *"), kind: "noop"),
            ]
            try await world.exec("INSERT INTO queue.schedule_slots (name, slot) VALUES ('nightly', '2026-01-01 03:00+00'), ('nightly', '2026-01-02 03:00+00')")
            try await withConsole(world, settings) { console in
                let alice = Self.basic(Self.alice)
                let bob = Self.basic(Self.bob)
                // One notification with its tries.
                let one = try console.json(try await console.request("GET", "/api/v1/notifications/\(data.notification)", auth: bob))
                #expect(one["status"] as? String == "failed")
                #expect(one["last_error"] as? String == "HTTP 500")
                let tries = one["attempts"] as? [[String: Any]] ?? []
                #expect(tries.count == 1 && tries.first?["status_code"] as? Int == 500 && tries.first?["outcome"] as? String == "failed")
                #expect(!(try await console.request("GET", "/api/v1/notifications/\(data.notification)", auth: bob).body.contains("secret")))
                #expect(try await console.request("GET", "/api/v1/notifications/999999", auth: bob).status == 404)
                // By status, in keyset pages of 3: every failed one once, newest first.
                var seen: [Int] = []
                var before: Int?
                var pages = 0
                while true {
                    var path = "/api/v1/notifications?status=failed&limit=3"
                    if let before { path += "&before=\(before)" }
                    let page = try console.json(try await console.request("GET", path, auth: bob))
                    let items = page["notifications"] as? [[String: Any]] ?? []
                    let statuses = Set(items.compactMap { $0["status"] as? String })
                    #expect(statuses.isSubset(of: ["failed"]))
                    seen += items.compactMap { $0["id"] as? Int }
                    before = page["next_before"] as? Int
                    pages += 1
                    if before == nil || pages >= 10 { break }
                }
                let failed = try await world.exec("SELECT id FROM notifications.notifications WHERE status = 'failed' ORDER BY id DESC")
                let expectedIDs = failed.rows.compactMap { row in row.first.flatMap { $0 }.flatMap { Int($0) } }
                let seenIDs = seen
                let pageCount = pages
                #expect(seenIDs == expectedIDs)
                // 9 in pages of 3: the third is full, so a fourth (empty) one ends the walk.
                #expect(seenIDs.count == 9 && pageCount == 4)
                #expect(try await console.request("GET", "/api/v1/notifications?status=lost", auth: bob).status == 400)
                #expect(try await console.request("GET", "/api/v1/notifications?before=x", auth: bob).status == 400)
                // The page escapes what it shows.
                let notificationPage = try await console.request("GET", "/notifications/\(data.notification)", auth: bob)
                #expect(notificationPage.status == 200)
                #expect(notificationPage.body.contains("server &lt;b&gt;error&lt;/b&gt;"))
                #expect(try await console.request("GET", "/notifications?status=failed", auth: bob).body.contains("/notifications/\(data.notification)"))

                // Campaigns: the status of `jobd campaign status`, list and one.
                let campaign = try console.json(try await console.request("GET", "/api/v1/campaigns/\(data.campaign)", auth: bob))
                #expect(campaign["name"] as? String == "spring <sale>")
                #expect(campaign["status"] as? String == "draft")
                let campaigns = try console.jsonArray(try await console.request("GET", "/api/v1/campaigns", auth: bob))
                #expect(campaigns.compactMap { $0["id"] as? Int } == [data.campaign])
                #expect(try await console.request("GET", "/api/v1/campaigns/424242", auth: bob).status == 404)
                let campaignsPage = try await console.request("GET", "/campaigns", auth: bob)
                #expect(campaignsPage.body.contains("spring &lt;sale&gt;") && campaignsPage.body.contains("<progress"))

                // Periodic jobs: the latest slot enqueued and the next ones.
                let periodic = try console.jsonArray(try await console.request("GET", "/api/v1/periodic", auth: bob))
                #expect(periodic.compactMap { $0["name"] as? String } == ["nightly", "often"])
                #expect(periodic.first?["last_slot"] as? String == "2026-01-02T03:00:00Z")
                let lastSlot = periodic.last?["last_slot"]
                #expect(lastSlot == nil || lastSlot is NSNull)
                let next = periodic.first?["next_slots"] as? [String] ?? []
                #expect(next.count == 3 && next.allSatisfy { $0.hasSuffix("T03:00:00Z") })
                #expect(try await console.request("GET", "/periodic", auth: bob).body.contains("report.daily"))

                // Content search: operators only; an empty result is an empty list.
                #expect(try await console.request("GET", "/api/v1/content?q=invoice", auth: bob).status == 403)
                #expect(try await console.request("GET", "/api/v1/content", auth: alice).status == 400)
                let hits = try await console.request("GET", "/api/v1/content?q=invoice", auth: alice)
                #expect(hits.status == 200 && hits.body == "[]")
                #expect(try await console.request("GET", "/content", auth: bob).body.contains("for operators"))
            }
        }
    }

    @Test("every path of docs/openapi.yaml answers: GETs with 200 and JSON, POSTs with a refusal for want of a CSRF token (not 404)")
    func openAPIPathsAnswer() async throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        // Paths are the two-space-indented keys under `paths:`, methods the four-space ones.
        var operations: [(method: String, path: String)] = []
        var inPaths = false
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                current = String(line.dropFirst(2).dropLast())
            } else if let path = current, line == "    get:" {
                operations.append(("get", path))
            } else if let path = current, line == "    post:" {
                operations.append(("post", path))
            }
        }
        #expect(operations.count >= 22, "\(operations)")
        try await withWorld { world in
            let data = try await Self.tierData(world)
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                for operation in operations {
                    var path = operation.path
                    let id = path.hasPrefix("/notifications") ? data.notification
                        : path.hasPrefix("/campaigns") ? data.campaign : path.hasPrefix("/bulk") ? data.bulk : data.job
                    path = path.replacingOccurrences(of: "{id}", with: String(id))
                    path = path.replacingOccurrences(of: "{external_id}", with: "order%2F7")
                    if path == "/content" { path += "?q=invoice" }
                    let reply = try await console.request(operation.method.uppercased(), "/api/v1" + path, auth: alice)
                    if operation.method == "get" {
                        #expect(reply.status == 200, "GET \(path): \(reply.status) \(reply.body)")
                        #expect(reply.header("content-type") == "application/json", "GET \(path)")
                        #expect((try? JSONSerialization.jsonObject(with: Data(reply.body.utf8))) != nil, "GET \(path)")
                    } else {
                        #expect(reply.status == 403 && reply.body.contains("CSRF"), "POST \(path): \(reply.status) \(reply.body)")
                    }
                }
                // And an undocumented path does not answer so.
                #expect(try await console.request("GET", "/api/v1/nothing-here", auth: alice).status == 404)
            }
        }
    }

    @Test("cancel: waiting jobs at once; a running job ends cancelled when its attempt fails, completed when it succeeds")
    func cancelSemantics() async throws {
        try await withWorld { world in
            let admin = QueueAdmin(connection: world.sql)
            let later = try await world.int("INSERT INTO queue.jobs (kind, run_at) VALUES ('noop', now() + interval '1 hour') RETURNING id")
            let due = try await world.int("INSERT INTO queue.jobs (kind) VALUES ('noop') RETURNING id")
            let results = try await admin.cancel(ids: [JobID(later), JobID(due), 999_999_999])
            #expect(results.map(\.outcome) == [.cancelled, .cancelled, .unchanged])
            #expect(results.last?.state == nil)
            #expect(try await world.count(state: "cancelled") == 2)
            #expect(try await admin.cancel(ids: [JobID(later)]).first?.outcome == .finished)

            let config = world.configuration()
            let daemon = world.makeDaemon(config)
            try await world.running([daemon]) {
                let failing = try await world.int("INSERT INTO queue.jobs (kind, payload, max_attempts) VALUES ('noop', '{\"sleep_ms\": 1500, \"fail\": true}', 5) RETURNING id")
                let succeeding = try await world.int("INSERT INTO queue.jobs (kind, payload) VALUES ('noop', '{\"sleep_ms\": 1500}') RETURNING id")
                try await world.waitForState("running", count: 2)
                let marked = try await admin.cancel(ids: [JobID(failing), JobID(succeeding)])
                #expect(marked.map(\.outcome) == [.requested, .requested])
                // The attempts run on: still running right after the request.
                #expect(try await world.count(state: "running") == 2)
                // Ended: a job row in a final state, or (completed) the ledger's row.
                try await waitUntil(timeout: 20, "both attempts ended") {
                    try await world.int("""
                        SELECT (SELECT count(*) FROM queue.jobs WHERE id = ANY($1::bigint[])
                                   AND state NOT IN ('running', 'available', 'retryable', 'completed'))
                             + (SELECT count(*) FROM queue.completed_jobs WHERE id = ANY($1::bigint[]))
                        """, [PostgresArray.integers([failing, succeeding])]) == 2
                }
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(failing)]) == "cancelled")
                #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(succeeding)]) == "completed")
                // The failed attempt neither retried nor dead-lettered; its ledger row says how it ended.
                #expect(try await world.int("SELECT attempt FROM queue.jobs WHERE id = $1", [String(failing)]) == 1)
                #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 0)
                #expect(try await world.scalar("SELECT outcome FROM queue.attempts WHERE job_id = $1 AND event = 'end'", [String(failing)]) == "retry")
                #expect(try await world.scalar("SELECT finished_at IS NOT NULL FROM queue.jobs WHERE id = $1", [String(failing)]) == "t")
            }
        }
    }

    @Test("cancel: a running job whose daemon vanished ends cancelled when the rescuer takes it back")
    func cancelRescued() async throws {
        try await withWorld { world in
            let id = try await world.int("INSERT INTO queue.jobs (kind) VALUES ('noop') RETURNING id")
            try await world.exec("""
                UPDATE queue.jobs SET state = 'running', attempt = 1, leased_by = 'gone', lease_token = 7,
                       lease_expires_at = now() - interval '1 second', started_at = now() WHERE id = $1
                """, [String(id)])
            #expect(try await QueueAdmin(connection: world.sql).cancel(ids: [JobID(id)]).first?.outcome == .requested)
            let rescued = try await QueueStore(connection: world.sql).rescueExpiredLeases(maxRescues: 3)
            #expect(rescued.map(\.state) == [.cancelled])
            #expect(try await world.scalar("SELECT coalesce((SELECT state FROM queue.jobs WHERE id = $1::bigint), (SELECT 'completed' FROM queue.completed_jobs WHERE id = $1::bigint))", [String(id)]) == "cancelled")
            #expect(try await world.int("SELECT count(*) FROM queue.dead_letters") == 0)
        }
    }

    @Test("pause: a paused kind or lane is not promoted, running jobs finish, resume promotes it")
    func pauseSemantics() async throws {
        try await withWorld { world in
            let admin = QueueAdmin(connection: world.sql)
            #expect(try await admin.pause(.kind, "noop", by: "test"))
            #expect(try await !admin.pause(.kind, "noop", by: "test"))
            #expect(try await admin.pause(.priority, "low", by: "test"))
            let config = world.configuration()
            let daemon = world.makeDaemon(config)
            try await world.running([daemon]) {
                try await world.exec("INSERT INTO queue.jobs (kind, priority) SELECT 'noop', 'high' FROM generate_series(1, 5)")
                // A job of another kind in the paused lane, and one promoted before the pause.
                try await world.exec("INSERT INTO queue.jobs (kind, priority) VALUES ('other', 'low')")
                // Several promoter passes (poll interval 0.2 s) and nothing moves.
                try await Task.sleep(for: .milliseconds(1_500))
                #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE state <> 'available'") == 0)
                #expect(try await admin.resume(.kind, "noop"))
                try await world.waitForState("completed", count: 5)
                // The low lane is still paused for every kind.
                try await world.exec("INSERT INTO queue.jobs (kind, priority) SELECT 'noop', 'low' FROM generate_series(1, 3)")
                try await world.exec("INSERT INTO queue.jobs (kind, priority) VALUES ('noop', 'normal')")
                try await world.waitForState("completed", count: 6)
                try await Task.sleep(for: .milliseconds(800))
                #expect(try await world.int("SELECT count(*) FROM queue.jobs WHERE priority = 'low' AND state = 'available'") == 4)
                #expect(try await admin.resume(.priority, "low"))
                try await world.waitForState("completed", count: 9)
                #expect(try await !admin.resume(.priority, "low"))
            }
            #expect(try await admin.pauses().isEmpty)
        }
    }

    @Test("pause and resume from the console; listed by the API")
    func pauseFromConsole() async throws {
        try await withWorld { world in
            try await withConsole(world, try Self.authSettings()) { console in
                let alice = Self.basic(Self.alice)
                let token = try await console.csrf(auth: alice)
                #expect(try await console.request("POST", "/pause", auth: alice, form: ["csrf": token, "scope": "kind", "name": "mail.send"]).status == 303)
                #expect(try await console.request("POST", "/pause", auth: alice, form: ["csrf": token, "scope": "priority", "name": "urgent"]).status == 400)
                #expect(try await console.request("POST", "/pause", auth: alice, form: ["csrf": token, "scope": "lane", "name": "low"]).status == 400)
                let pauses = try console.jsonArray(try await console.request("GET", "/api/v1/pauses", auth: alice))
                #expect(pauses.count == 1 && pauses.first?["name"] as? String == "mail.send" && pauses.first?["paused_by"] as? String == "alice")
                // The overview's snapshot (the first one computed when the console
                // started) shows it within an interval and a computation.
                try await waitUntil(timeout: 10, "the pause on the overview") {
                    try await console.request("GET", "/", auth: alice).body.contains("mail.send")
                }
                #expect(try await console.request("POST", "/api/v1/resume", auth: "Bearer \(Self.carolToken)", json: ["scope": "kind", "name": "mail.send"]).status == 200)
                #expect(try await world.int("SELECT count(*) FROM queue.pauses") == 0)
            }
        }
    }
}

// MARK: - Unit checks of the pieces

@Suite("Web console pieces")
struct WebConsolePieceTests {
    @Test("PBKDF2-HMAC-SHA256 matches RFC 7914's test vector")
    func pbkdf2Vector() {
        let derived = PBKDF2.sha256(password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1, length: 64)
        #expect(Hex.encode(derived) == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")
    }

    @Test("credential lists: hashes verify, bad entries are refused naming the key")
    func credentials() throws {
        let hash = CredentialHash.make(password: "pw", iterations: 1_000)
        #expect(hash.verify("pw") && !hash.verify("pW") && !hash.verify(""))
        #expect(try CredentialHash(parsing: hash.text) == hash)
        let list = try WebCredential.parseList("a:read:\(hash.text), b:operator:\(CredentialHash.sha256Hash(of: "t").text)", what: "JOBD_WEB_USERS")
        #expect(list.map(\.name) == ["a", "b"] && list.map(\.role) == [.read, .operator])
        for bad in ["a:admin:\(hash.text)", "a:read", "a:read:md5:00", "a:read:sha256:abc", "a:read:\(hash.text),a:read:\(hash.text)"] {
            #expect(throws: JobdInputError.self) { try WebCredential.parseList(bad, what: "JOBD_WEB_USERS") }
        }
        do {
            _ = try WebCredential.parseList("a:admin:x", what: "JOBD_WEB_USERS")
        } catch {
            #expect(error.message.hasPrefix("JOBD_WEB_USERS"))
        }
    }

    @Test("listen addresses")
    func listen() throws {
        #expect(try WebSettings.parseListen("127.0.0.1:8080") == ("127.0.0.1", 8080))
        #expect(try WebSettings.parseListen("[::1]:9000") == ("::1", 9000))
        #expect(try WebSettings.parseListen(":8081") == ("127.0.0.1", 8081))
        #expect(throws: JobdInputError.self) { try WebSettings.parseListen("localhost") }
        #expect(throws: JobdInputError.self) { try WebSettings.parseListen("host:99999") }
    }

    @Test("HTML escaping and form decoding")
    func html() {
        #expect(HTML.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
        #expect(HTML.parseForm("a=1+2&b=%7B%22x%22%3A1%7D&c&a=ignored") == ["a": "1 2", "b": "{\"x\":1}", "c": ""])
        #expect(HTML.decode("%zz%4") == "%zz%4")
        #expect(HTML.urlEncode("a b&c=é") == "a%20b%26c%3D%C3%A9")
    }

    @Test("field search builds exact containment objects")
    func containment() throws {
        #expect(try ConsoleResponder.containment(field: "order.id", value: "9007199254740993") == "{\"order\":{\"id\":9007199254740993}}")
        #expect(try ConsoleResponder.containment(field: "tenant", value: "t1") == "{\"tenant\":\"t1\"}")
        #expect(try ConsoleResponder.containment(field: "flag", value: "true") == "{\"flag\":true}")
        #expect(try ConsoleResponder.containment(field: "a", value: "\"17\"") == "{\"a\":\"17\"}")
        #expect(throws: WebError.self) { try ConsoleResponder.containment(field: "a..b", value: "1") }
    }

    @Test("the overview cache shares one computation among concurrent callers and within its interval")
    func cacheSharing() async throws {
        let cache = OverviewCache(interval: .milliseconds(300)) {
            try await Task.sleep(for: .milliseconds(100))
            return OverviewSnapshot(generatedAt: "x", unfinished: [:], finishedEstimate: 0, deadLetters: 0, oldestDueSeconds: nil,
                                    daemons: [], pauses: [], lastHour: [])
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { _ = try await cache.current() } }
            try await group.waitForAll()
        }
        #expect(cache.computations.load(ordering: .relaxed) == 1)
        _ = try await cache.current()
        #expect(cache.computations.load(ordering: .relaxed) == 1)
        try await Task.sleep(for: .milliseconds(350))
        _ = try await cache.current()
        try await waitUntil(timeout: 5, "the refresh ran") { cache.computations.load(ordering: .relaxed) == 2 }
    }

    @Test("prepare starts the first computation without waiting for it; callers meanwhile share it; once stored it is served at once")
    func cachePrepare() async throws {
        let cache = OverviewCache(interval: .seconds(60)) {
            try await Task.sleep(for: .milliseconds(300))
            return OverviewSnapshot(generatedAt: "first", unfinished: [:], finishedEstimate: 0, deadLetters: 0,
                                    oldestDueSeconds: nil, daemons: [], pauses: [], lastHour: [])
        }
        let started = ContinuousClock.now
        cache.prepare()
        #expect(ContinuousClock.now - started < .milliseconds(200))
        #expect(!cache.hasSnapshot)
        cache.prepare()
        // A caller during the computation awaits that same one.
        #expect(try await cache.current().generatedAt == "first")
        #expect(cache.hasSnapshot)
        cache.prepare()
        let served = ContinuousClock.now
        #expect(try await cache.current().generatedAt == "first")
        #expect(ContinuousClock.now - served < .milliseconds(200))
        #expect(cache.computations.load(ordering: .relaxed) == 1)
    }

    @Test("once the overview has a snapshot, no request waits for the next computation: the stored one is served meanwhile")
    func cacheServesStaleWhileComputing() async throws {
        let generation = Atomic<Int>(0)
        let cache = OverviewCache(interval: .milliseconds(100)) {
            let number = generation.add(1, ordering: .relaxed).newValue
            // Every computation after the first is slow (a count over a big queue).
            if number > 1 { try await Task.sleep(for: .milliseconds(1_500)) }
            return OverviewSnapshot(generatedAt: "g\(number)", unfinished: [:], finishedEstimate: 0, deadLetters: 0,
                                    oldestDueSeconds: nil, daemons: [], pauses: [], lastHour: [])
        }
        #expect(try await cache.current().generatedAt == "g1")
        try await Task.sleep(for: .milliseconds(150))
        // Stale: the stored snapshot at once, while one computation starts.
        for _ in 0..<5 {
            let started = ContinuousClock.now
            #expect(try await cache.current().generatedAt == "g1")
            #expect(ContinuousClock.now - started < .milliseconds(500))
        }
        #expect(cache.computations.load(ordering: .relaxed) == 2)
        var latest = ""
        try await waitUntil(timeout: 10, "the refreshed snapshot is served") {
            latest = try await cache.current().generatedAt
            return latest != "g1"
        }
        #expect(latest == "g2")
    }
}

// MARK: - Harness: the console on a free loopback port, a blocking HTTP client on its own thread

struct ConsoleUnderTest {
    let port: Int
    let server: ConsoleServer?
    let client: LoopbackHTTPClient

    func request(
        _ method: String, _ path: String, auth: String? = nil, headers: [String: String] = [:],
        form: [String: String]? = nil, json: [String: String]? = nil
    ) async throws -> LoopbackHTTPClient.Reply {
        var headers = headers
        if let auth { headers["Authorization"] = auth }
        var body: [UInt8] = []
        if let form {
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = Array(form.map { "\(HTML.urlEncode($0.key))=\(HTML.urlEncode($0.value))" }.joined(separator: "&").utf8)
        } else if let json {
            headers["Content-Type"] = "application/json"
            body = Array(try JSONSerialization.data(withJSONObject: json))
        }
        return try await client.send(port: port, method: method, path: path, headers: headers, body: body)
    }

    func csrf(auth: String?) async throws -> String {
        let reply = try await request("GET", "/api/v1/csrf", auth: auth)
        return try json(reply)["csrf"] as? String ?? ""
    }

    func json(_ reply: LoopbackHTTPClient.Reply) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any] ?? [:]
    }

    func jsonArray(_ reply: LoopbackHTTPClient.Reply) throws -> [[String: Any]] {
        try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [[String: Any]] ?? []
    }
}

/// The console against the world's database and Redis (or the `conninfo` and `redis`
/// given, to show what it does when they cannot be reached).
func withConsole(
    _ world: QueueWorld, _ settings: WebSettings, logger: Logger = .silent, conninfo: String? = nil,
    redis: ConsoleRedisTarget? = nil, _ body: (ConsoleUnderTest) async throws -> Void
) async throws {
    let target = redis ?? ConsoleRedisTarget(url: world.redisURL, prefix: world.prefix, commandTimeout: .seconds(5))
    let server = try ConsoleServer(settings: settings, conninfo: conninfo ?? world.database.url, redis: target, logger: logger)
    let group = ServiceGroup(configuration: .init(services: [server], logger: .silent))
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        let port = await server.boundPort.wait()
        let console = ConsoleUnderTest(port: port, server: server, client: LoopbackHTTPClient())
        do {
            try await body(console)
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}

/// HTTP/1.1 over a loopback socket, one request per connection, on a thread of its own
/// (blocking socket calls never run on the cooperative pool the server also uses).
actor LoopbackHTTPClient {
    private nonisolated let executor = DedicatedThreadExecutor(name: "http-test-client")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// How long one reply may take to arrive.
    private let timeoutSeconds: Int

    init(timeoutSeconds: Int = 15) {
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { executor.shutdown() }

    struct Reply: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: String
        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    struct Failure: Error { var reason: String }

    func send(port: Int, method: String, path: String, headers: [String: String], body: [UInt8]) throws -> Reply {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(reason: "socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(reason: "connect errno \(errno)") }
        var head = "\(method) \(path) HTTP/1.1\r\n"
        var fields = headers
        if fields["Host"] == nil { fields["Host"] = "127.0.0.1:\(port)" }
        fields["Connection"] = "close"
        if method == "POST" || !body.isEmpty { fields["Content-Length"] = String(body.count) }
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8) + body
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(reason: "send errno \(errno)") }
            sent += n
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        // Until the peer closes, or the body its Content-Length announces is complete
        // (some servers, chromedriver among them, keep the connection open after
        // answering `Connection: close`).
        while Self.expectedLength(data).map({ data.count < $0 }) ?? true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n < 0 { throw Failure(reason: "recv errno \(errno)") }
            if n == 0 { break }
            data += buffer[0..<n]
        }
        guard let split = Self.find(Array("\r\n\r\n".utf8), in: data) else { throw Failure(reason: "no header end") }
        let headText = String(decoding: data[..<split], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        guard let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw Failure(reason: "bad status line \(statusLine)")
        }
        let replyHeaders: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var payload = Array(data[(split + 4)...])
        if replyHeaders.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
            payload = Self.dechunk(payload)
        }
        return Reply(status: status, headers: replyHeaders, body: String(decoding: payload, as: UTF8.self))
    }

    /// Head plus body length when the head is complete and names a Content-Length.
    static func expectedLength(_ data: [UInt8]) -> Int? {
        guard let split = find(Array("\r\n\r\n".utf8), in: data) else { return nil }
        for line in String(decoding: data[..<split], as: UTF8.self).components(separatedBy: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length",
               let length = Int(parts[1].trimmingCharacters(in: .whitespaces)) {
                return split + 4 + length
            }
        }
        return nil
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where Array(haystack[index..<(index + needle.count)]) == needle {
            return index
        }
        return nil
    }

    static func dechunk(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while let lineEnd = find(Array("\r\n".utf8), in: Array(data[index...])) {
            let sizeText = String(decoding: data[index..<(index + lineEnd)], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16), size > 0 else { break }
            let start = index + lineEnd + 2
            guard start + size <= data.count else { break }
            out += data[start..<(start + size)]
            index = start + size + 2
            if index >= data.count { break }
        }
        return out
    }
}
