import JobdCore
import JobdPostgres

/// What `DeliverySweep` runs: on the OLTP database (campaigns, open batches, the
/// outbox) and on the queue's (which batches an unfinished job covers).
enum CampaignSweepStatements {
    /// Up to `$2` scheduled or sending campaigns after id `$1` (`campaigns_sweep_idx`).
    struct Sending: PostgresStatement {
        struct Row: Sendable {
            var id: Int64
            var scheduled: Bool
            var fanoutDone: Bool
        }

        var after: Int64
        var limit: Int
        static let sql: SQL = """
            SELECT id, status = 'scheduled' AS scheduled, fanout_done FROM oltp.campaigns
             WHERE status IN ('scheduled', 'sending') AND id > $1 ORDER BY id LIMIT $2
            """
        var bindings: PostgresBindings { [.int(after), .int(limit)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(id: try row.decode("id"), scheduled: try row.decode("scheduled"), fanoutDone: try row.decode("fanout_done"))
        }
    }

    /// Deletes up to `$2` rows of `oltp.campaign_senders` of campaigns that are sent
    /// or cancelled and that no daemon wrote for `$1` seconds (nothing reads them
    /// once a campaign is over: its bounce counts mattered only while it could
    /// still be paused). Returns the rows deleted.
    struct PruneSenders: PostgresStatement {
        var olderThan: Double
        var limit: Int
        static let sql: SQL = """
            WITH gone AS (
                DELETE FROM oltp.campaign_senders s
                 WHERE (s.campaign_id, s.daemon) IN (
                        SELECT s2.campaign_id, s2.daemon FROM oltp.campaign_senders s2
                          JOIN oltp.campaigns c ON c.id = s2.campaign_id
                         WHERE c.status IN ('sent', 'cancelled')
                           AND s2.updated_at < now() - make_interval(secs => $1::float8)
                         LIMIT $2)
                RETURNING 1
            )
            SELECT count(*) AS pruned FROM gone
            """
        var bindings: PostgresBindings { [.double(olderThan), .int(limit)] }
        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("pruned") }
    }

    /// Up to `$3` distinct batches of campaign `$1` after batch `$2` that have an
    /// open delivery: a loose index scan of `deliveries_open_batch_contact_idx`, one probe
    /// per batch whatever its size.
    struct OpenBatches: PostgresStatement {
        var id: Int64
        var after: Int64
        var limit: Int
        static let sql: SQL = """
            WITH RECURSIVE b(batch, n) AS (
                (SELECT batch, 1 FROM oltp.deliveries
                  WHERE campaign_id = $1 AND state IN ('pending', 'sending', 'deferred') AND batch > $2
                  ORDER BY batch LIMIT 1)
                UNION ALL
                SELECT (SELECT d.batch FROM oltp.deliveries d
                         WHERE d.campaign_id = $1 AND d.state IN ('pending', 'sending', 'deferred') AND d.batch > b.batch
                         ORDER BY d.batch LIMIT 1), b.n + 1
                  FROM b WHERE b.batch IS NOT NULL AND b.n < $3
            )
            SELECT batch FROM b WHERE batch IS NOT NULL
            """
        var bindings: PostgresBindings { [.int(id), .int(after), .int(limit)] }
        static func decode(_ row: PostgresRow) throws -> Int64 { try row.decode("batch") }
    }

    /// Of the delivery keys `$1`, those an unfinished job holds (the queue's
    /// `jobs_unique_key_idx`). Runs on the queue database.
    struct CoveredKeys: PostgresStatement {
        var keys: [String]
        static let sql: SQL = """
            SELECT unique_key FROM queue.jobs
             WHERE kind = 'campaign.deliver' AND unique_key = ANY($1::text[])
               AND state NOT IN ('completed', 'dead', 'cancelled')
            """
        var bindings: PostgresBindings { [.textArray(keys.map { Optional($0) })] }
        static func decode(_ row: PostgresRow) throws -> String { try row.decode("unique_key") }
    }

    /// Enqueues (through the outbox) one delivery job per batch `$2` of campaign
    /// `$1`, with the batch's deliveries open now, unless the outbox already holds
    /// that batch's job or the campaign stopped sending. Returns the jobs written.
    struct Enqueue: PostgresStatement {
        var id: Int64
        var batches: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            WITH jobs AS (
                INSERT INTO oltp.outbox (kind, payload, unique_key)
                SELECT 'campaign.deliver',
                       jsonb_build_object('campaign_id', $1::bigint, 'batch', d.batch,
                                          'contacts', jsonb_agg(d.contact_id ORDER BY d.contact_id)),
                       'campaign:' || $1::bigint || ':deliver:' || d.batch
                  FROM oltp.deliveries d
                 WHERE d.campaign_id = $1 AND d.batch = ANY($2::bigint[]) AND d.state IN ('pending', 'sending', 'deferred')
                   AND EXISTS (SELECT 1 FROM oltp.campaigns c WHERE c.id = $1 AND c.status = 'sending')
                   AND NOT EXISTS (SELECT 1 FROM oltp.outbox o
                                    WHERE o.kind = 'campaign.deliver'
                                      AND o.unique_key = 'campaign:' || $1::bigint || ':deliver:' || d.batch)
                 GROUP BY d.batch
                RETURNING 1
            )
            SELECT count(*) AS jobs FROM jobs
            """
        var bindings: PostgresBindings { [.int(id), .intArray(batches)] }
        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("jobs") }
    }

    /// Whether an unfinished `campaign.prepare` of campaign `$1` is in the queue
    /// (few rows: the unfinished preparations). Runs on the queue database.
    struct PrepareQueued: PostgresStatement {
        var id: Int64
        static let sql: SQL = """
            SELECT EXISTS (SELECT 1 FROM queue.jobs
                            WHERE kind = 'campaign.prepare' AND unique_key IS NOT NULL
                              AND state NOT IN ('completed', 'dead', 'cancelled')
                              AND payload->>'campaign_id' = $1::bigint::text) AS queued
            """
        var bindings: PostgresBindings { [.int(id)] }
        static func decode(_ row: PostgresRow) throws -> Bool { try row.decode("queued") }
    }

    /// Enqueues the preparation of campaign `$1` again when it is scheduled (to run
    /// at its send time), or sending with its fan-out unfinished, and the outbox
    /// holds no preparation of it. Returns the jobs written (0 or 1).
    struct EnqueuePrepare: PostgresStatement {
        var id: Int64
        static let sql: SQL = """
            WITH jobs AS (
                INSERT INTO oltp.outbox (kind, payload, unique_key, run_at)
                SELECT 'campaign.prepare', jsonb_build_object('campaign_id', c.id), 'campaign:' || c.id || ':prepare',
                       greatest(coalesce(c.send_at, now()), now())
                  FROM oltp.campaigns c
                 WHERE c.id = $1 AND (c.status = 'scheduled' OR (c.status = 'sending' AND NOT c.fanout_done))
                   AND NOT EXISTS (SELECT 1 FROM oltp.outbox o
                                    WHERE o.kind = 'campaign.prepare' AND o.payload->>'campaign_id' = $1::bigint::text)
                RETURNING 1
            )
            SELECT count(*) AS jobs FROM jobs
            """
        var bindings: PostgresBindings { [.int(id)] }
        static func decode(_ row: PostgresRow) throws -> Int { try row.decode("jobs") }
    }
}
