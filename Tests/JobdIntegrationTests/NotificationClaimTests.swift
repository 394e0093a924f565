import Foundation
import JobdCore
@testable import JobdNotifications
import JobdPostgres
import JobdQueue
import JobdTestSupport
import Testing

@Suite("Notification claims (group commit)", .serialized)
struct NotificationClaimTests {
    static func webhook(_ key: String, body: String = #"{"n":1}"#) -> NotificationRequest {
        NotificationRequest(channel: .webhook, to: "https://hooks.example/x", body: body, idempotencyKey: key)
    }

    static func claim(_ request: NotificationRequest, _ token: String) -> NotificationClaimRequest {
        NotificationClaimRequest(request: request, token: token, jobID: 7, window: .seconds(30))
    }

    static let fixture = """
        INSERT INTO notifications.notifications
            (id, idempotency_key, channel, recipient, body, status, tries, sent_at, failed_at, archived_at)
            OVERRIDING SYSTEM VALUE VALUES
          (1, 'done',     'webhook', 'https://hooks.example/x', '{"n":1}', 'sent',    1, now(), NULL, NULL),
          (2, 'again',    'webhook', 'https://hooks.example/x', '{"n":1}', 'pending', 1, NULL,  NULL, NULL),
          (3, 'archived', 'webhook', 'https://hooks.example/x', '',        'failed',  2, NULL,  now(), now()),
          (4, 'other',    'webhook', 'https://hooks.example/x', '{"n":2}', 'pending', 0, NULL,  NULL, NULL);
        SELECT setval(pg_get_serial_sequence('notifications.notifications', 'id'), 100);
        """

    @Test("one batch: each claim its own outcome, fenced by its own token; a repeated key is refused to the later claim; a refused row fails alone; retries are no-ops")
    func batchOutcomes() async throws {
        try await withWorld { world in
            try await world.sql.executeScript(Self.fixture)
            let tier = TierDatabase(tier: .notifications, size: 1, logger: .silent) { _ in world.database.connection("n") }
            defer { Task { await tier.close() } }
            let store = NotificationStore(database: tier)

            let batch = [
                Self.claim(Self.webhook("new-1"), "t1"),
                Self.claim(Self.webhook("done"), "t2"),
                Self.claim(Self.webhook("new-1"), "t3"),  // the same key in flight
                Self.claim(Self.webhook("again"), "t4"),
                Self.claim(Self.webhook("archived", body: #"{"n":3}"#), "t5"),
                Self.claim(Self.webhook("other"), "t6"),  // the key names another body
                Self.claim(Self.webhook("new-2"), "t7"),
            ]
            let outcomes = try await store.claim(batch: batch).map { try $0.get() }
            guard case .claimed(let id1, 1) = outcomes[0] else { Issue.record("new-1: \(outcomes[0])"); return }
            #expect(outcomes[1] == .alreadySent(id: 1))
            guard case .busy(let retryIn) = outcomes[2] else { Issue.record("new-1 again: \(outcomes[2])"); return }
            #expect(retryIn > .seconds(25) && retryIn <= .seconds(30))
            #expect(outcomes[3] == .claimed(id: 2, try: 2))
            #expect(outcomes[4] == .claimed(id: 3, try: 3))
            #expect(outcomes[5] == .conflict)
            guard case .claimed(let id2, 1) = outcomes[6], id2 != id1 else { Issue.record("new-2: \(outcomes[6])"); return }
            #expect(try await world.int("SELECT id FROM notifications.notifications WHERE idempotency_key = 'new-1'") == Int(id1))
            // Each claimed row carries its own claim's token and window; the archived one its body back.
            #expect(try await world.sql.lines("""
                SELECT idempotency_key, status, tries, coalesce(claim_token, '-'), coalesce(job_id::text, '-'),
                       coalesce((sending_until BETWEEN now() + interval '29 seconds' AND now() + interval '31 seconds')::text, '-'),
                       body, archived_at IS NULL
                  FROM notifications.notifications ORDER BY idempotency_key
                """) == [
                    "again\tsending\t2\tt4\t7\ttrue\t{\"n\":1}\tt",
                    "archived\tsending\t3\tt5\t7\ttrue\t{\"n\":3}\tt",
                    "done\tsent\t1\t-\t-\t-\t{\"n\":1}\tt",
                    "new-1\tsending\t1\tt1\t7\ttrue\t{\"n\":1}\tt",
                    "new-2\tsending\t1\tt7\t7\ttrue\t{\"n\":1}\tt",
                    "other\tpending\t0\t-\t-\t-\t{\"n\":2}\tt",
                ])

            // The batch statement itself (the store falls back to single claims when the
            // server refuses it, which would hide a broken statement): claimable rows come
            // back by token, the others not at all.
            let connection = world.database.connection("claim-batch")
            let direct = try await connection.rows(NotificationStatements.ClaimBatch(claims: [
                Self.claim(Self.webhook("direct-1"), "d1"), Self.claim(Self.webhook("done"), "d2"),
                Self.claim(Self.webhook("direct-2"), "d3"),
            ]))
            await connection.close()
            #expect(direct.map(\.claimToken).sorted() == ["d1", "d3"])
            #expect(direct.allSatisfy { $0.tries == 1 })

            // A row the server refuses (key longer than the table allows) fails only its own claim.
            let refusedBatch = [
                Self.claim(Self.webhook("new-3"), "t8"),
                Self.claim(Self.webhook(String(repeating: "k", count: NotificationRequest.maxKeyLength + 1)), "t9"),
                Self.claim(Self.webhook("new-4"), "t10"),
            ]
            let refused = try await store.claim(batch: refusedBatch)
            guard case .success(.claimed(_, 1)) = refused[0] else { Issue.record("new-3: \(refused[0])"); return }
            guard case .failure = refused[1] else { Issue.record("too long: \(refused[1])"); return }
            guard case .success(.claimed(_, 1)) = refused[2] else { Issue.record("new-4: \(refused[2])"); return }
            #expect(try await world.int("SELECT count(*) FROM notifications.notifications WHERE length(idempotency_key) > 200") == 0)
            #expect(try await world.sql.lines("""
                SELECT claim_token FROM notifications.notifications WHERE idempotency_key IN ('new-3', 'new-4') ORDER BY 1
                """) == ["t10", "t8"])

            // new-1 is sent (its finish fenced on t1); new-2 is still in flight. A retry of
            // every claim changes nothing: sent stays sent, in flight stays with its claimant.
            let finished = try await store.finish([NotificationStore.TryRecord(
                notificationID: id1, tryNumber: 1, claimToken: "t1", jobID: 7, jobAttempt: 1, destination: "hooks.example",
                startedAt: Date().timeIntervalSince1970, durationMs: 1, outcome: "sent", statusCode: 200, errorCode: nil,
                excerpt: "", newStatus: "sent", lastError: nil)])
            #expect(finished == ["t1"])
            let retried = try await store.claim(batch: [
                Self.claim(Self.webhook("new-1"), "r1"), Self.claim(Self.webhook("new-2"), "r2"),
                Self.claim(Self.webhook("done"), "r3"), Self.claim(Self.webhook("new-1"), "r4"),
            ]).map { try $0.get() }
            #expect(retried[0] == .alreadySent(id: id1))
            guard case .busy = retried[1] else { Issue.record("new-2 retried: \(retried[1])"); return }
            #expect(retried[2] == .alreadySent(id: 1))
            #expect(retried[3] == .alreadySent(id: id1))
            #expect(try await world.sql.lines("""
                SELECT idempotency_key, status, tries, coalesce(claim_token, '-') FROM notifications.notifications
                 WHERE idempotency_key IN ('new-1', 'new-2') ORDER BY 1
                """) == ["new-1\tsent\t1\t-", "new-2\tsending\t1\tt7"])
            #expect(try await world.int("SELECT count(*) FROM notifications.attempts") == 1)
        }
    }

    @Test("concurrent sends: every webhook is claimed and delivered once, a duplicate job in flight sends nothing, and re-runs are no-ops")
    func concurrentSends() async throws {
        try await withNotifications(settings: { $0.rateLimit = nil; $0.timeout = .seconds(1) }) { n in
            let keys = 80, duplicates = 20
            let enqueue = """
                INSERT INTO queue.jobs (kind, payload, max_attempts)
                SELECT 'notification.send',
                       jsonb_build_object('channel', 'webhook', 'to', $1::text, 'idempotency_key', 'c-' || (i % $2::int),
                                          'body', jsonb_build_object('n', i % $2::int)),
                       20
                  FROM generate_series(0, $3::int - 1) AS i
                """
            let completed = "SELECT count(*) FROM queue.completed_jobs WHERE kind = 'notification.send'"
            // All at once: the claims of the jobs that run together share statements.
            try await n.world.exec(enqueue, [n.sink.url("/many"), String(keys), String(keys + duplicates)])
            try await waitUntil(timeout: 60, "every send job") { try await n.world.int(completed) == keys + duplicates }

            let requests = try n.sink.requests()
            let sentKeys = requests.compactMap { $0.headers["idempotency-key"] }
            #expect(requests.count == keys)
            #expect(Set(sentKeys).count == keys)
            #expect(requests.allSatisfy { $0.signatureValid == true })
            #expect(try await n.world.int("SELECT count(*) FROM notifications.notifications WHERE status = 'sent' AND tries = 1") == keys)
            #expect(try await n.world.int("SELECT count(*) FROM notifications.attempts") == keys)

            // Every key again, as new jobs: nothing is sent, nothing changes.
            try await n.world.exec(enqueue, [n.sink.url("/many"), String(keys), String(keys)])
            try await waitUntil(timeout: 60, "the re-runs") { try await n.world.int(completed) == 2 * keys + duplicates }
            #expect(try n.sink.requests().count == keys)
            #expect(try await n.world.int("SELECT count(*) FROM notifications.notifications WHERE status = 'sent' AND tries = 1") == keys)
            #expect(try await n.world.int("SELECT count(*) FROM notifications.attempts") == keys)
        }
    }
}
