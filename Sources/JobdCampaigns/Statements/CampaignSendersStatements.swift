import JobdCore
import JobdPostgres

/// `oltp.domain_limits` and `oltp.campaign_senders`: the throttles a batch reads and
/// what a daemon reports while it sends (with the bounce-rate auto-pause).
enum CampaignSendersStatements {
    /// The domain and the domain limit of each of the batch's contacts whose delivery
    /// is still open: the account's own row for the domain, else the row for all
    /// accounts, else none. Bounded by the batch like `CampaignDeliveriesStatements`
    /// (nil `batch`: by campaign and contacts alone).
    struct RecipientLimits: PostgresStatement {
        var id: Int64
        var account: Int64
        var batch: Int64?
        var contacts: [Int64]
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT k.id, lower(split_part(k.address, '@', 2)) AS domain, l.messages_per_second, l.burst, l.max_transfers
              FROM oltp.deliveries d
              JOIN oltp.contacts k ON k.id = d.contact_id
              LEFT JOIN LATERAL (
                SELECT messages_per_second, burst, max_transfers FROM oltp.domain_limits
                 WHERE domain = lower(split_part(k.address, '@', 2)) AND coalesce(account_id, 0) IN ($2, 0)
                 ORDER BY account_id IS NULL LIMIT 1) l ON true
             WHERE d.campaign_id = $1 AND ($4::bigint IS NULL OR d.batch = $4::bigint)
               AND d.contact_id = ANY($3::bigint[]) AND d.state IN ('pending', 'sending', 'deferred')
            """
        var bindings: PostgresBindings { [.int(id), .int(account), .intArray(contacts), .int(batch)] }

        static func decode(_ row: PostgresRow) throws -> RecipientLimit {
            RecipientLimit(
                contact: try row.decode("id"), domain: try row.decode("domain"),
                rate: try row.decode("messages_per_second", as: Double?.self),
                burst: try row.decode("burst", as: Int?.self) ?? 1,
                maxTransfers: try row.decode("max_transfers", as: Int?.self))
        }
    }

    /// Campaign `$1`'s open deliveries to domain `$2` and that domain's messages per
    /// second for the campaign's account (its own row wins over the operator's; NULL:
    /// no rate). Reads every open delivery of the campaign: run only when a domain
    /// throttle is what limits it.
    struct DomainBacklog: PostgresStatement {
        struct Row: Sendable {
            var open: Int
            var rate: Double?
        }

        var id: Int64
        var domain: String
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT (SELECT count(*) FROM oltp.deliveries d JOIN oltp.contacts k ON k.id = d.contact_id
                     WHERE d.campaign_id = $1 AND d.state IN ('pending', 'sending', 'deferred')
                       AND lower(split_part(k.address, '@', 2)) = $2) AS open,
                   (SELECT l.messages_per_second FROM oltp.domain_limits l, oltp.campaigns c
                     WHERE c.id = $1 AND l.domain = $2 AND coalesce(l.account_id, 0) IN (c.account_id, 0)
                     ORDER BY l.account_id IS NULL LIMIT 1) AS rate
            """
        var bindings: PostgresBindings { [.int(id), .text(domain)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(open: try row.decode("open"), rate: try row.decode("rate", as: Double?.self))
        }
    }

    /// Writes this daemon's row for campaign `$1` and pauses the campaign when the
    /// bounce rate summed over every daemon's row (this one's new totals included)
    /// passed its threshold after its minimum sample. `paused_reason` is the reason
    /// written when this statement paused it, else NULL; `status` the campaign's
    /// status before it.
    struct Report: PostgresStatement {
        struct Row: Sendable, Equatable {
            var pausedReason: String?
            var status: String?
        }

        var id: Int64
        var daemon: String
        var window: CampaignSendMonitor.Window
        var seconds: Double
        var slots: Int
        /// Seconds from now a batch snoozed for a throttle will be back.
        var heldFor: Double?
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            WITH up AS (
                INSERT INTO oltp.campaign_senders AS s (
                    campaign_id, daemon, tried, bounced, window_seconds, sends, deferrals, pool_wait, domain_wait,
                    account_wait, database_time, smtp_time, throttled_domain, slots, held_until, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                        now() + make_interval(secs => $15::float8), now())
                ON CONFLICT (campaign_id, daemon) DO UPDATE SET
                    tried = EXCLUDED.tried, bounced = EXCLUDED.bounced, window_seconds = EXCLUDED.window_seconds,
                    sends = EXCLUDED.sends, deferrals = EXCLUDED.deferrals, pool_wait = EXCLUDED.pool_wait,
                    domain_wait = EXCLUDED.domain_wait, account_wait = EXCLUDED.account_wait,
                    database_time = EXCLUDED.database_time, smtp_time = EXCLUDED.smtp_time,
                    throttled_domain = EXCLUDED.throttled_domain, slots = EXCLUDED.slots,
                    held_until = greatest(EXCLUDED.held_until, CASE WHEN s.held_until > now() THEN s.held_until END),
                    updated_at = now()
                RETURNING 1
            ), totals AS (
                SELECT $3::bigint + coalesce(sum(tried), 0) AS tried, $4::bigint + coalesce(sum(bounced), 0) AS bounced
                  FROM oltp.campaign_senders WHERE campaign_id = $1 AND daemon <> $2
            ), paused AS (
                UPDATE oltp.campaigns c
                   SET status = 'paused',
                       pause_reason = format('bounce rate %s%% (%s bounced of %s tried) passed the threshold of %s%%',
                                             round(100.0 * t.bounced / t.tried, 1), t.bounced, t.tried,
                                             round(100 * c.bounce_threshold::numeric, 1))
                  FROM totals t
                 WHERE c.id = $1 AND c.status = 'sending' AND c.bounce_threshold < 1
                   AND t.tried >= c.bounce_min_sample AND t.bounced > c.bounce_threshold * t.tried
                RETURNING c.pause_reason
            )
            SELECT (SELECT count(*) FROM up) AS written, (SELECT pause_reason FROM paused) AS paused_reason,
                   (SELECT status FROM oltp.campaigns WHERE id = $1) AS status
            """
        var bindings: PostgresBindings {
            [
                .int(id), .text(daemon), .int(window.tried), .int(window.bounced), .double(seconds), .int(window.sends),
                .int(window.deferrals), .double(window.poolWait), .double(window.domainWait), .double(window.accountWait),
                .double(window.database), .double(window.smtp), .text(window.throttledDomain), .int(slots),
                .double(heldFor),
            ]
        }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(pausedReason: try row.decode("paused_reason", as: String?.self), status: try row.decode("status", as: String?.self))
        }
    }

    /// The windows of campaign `$1`'s daemons that reported in the last 10 s (or
    /// hold a batch snoozed for a throttle), summed; `daemons` 0 when none.
    struct Senders: PostgresStatement {
        struct Row: Sendable, Equatable {
            var daemons: Int
            var windowSeconds: Double
            var sends: Int
            var deferrals: Int
            var poolWait: Double
            var domainWait: Double
            var accountWait: Double
            var database: Double
            var smtp: Double
            var throttledDomain: String?
            var slots: Int
            var held: Bool
        }

        var id: Int64
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT count(*) AS daemons, coalesce(sum(window_seconds), 0)::float8 AS window_seconds,
                   coalesce(sum(sends), 0) AS sends, coalesce(sum(deferrals), 0) AS deferrals,
                   coalesce(sum(pool_wait), 0)::float8 AS pool_wait, coalesce(sum(domain_wait), 0)::float8 AS domain_wait,
                   coalesce(sum(account_wait), 0)::float8 AS account_wait,
                   coalesce(sum(database_time), 0)::float8 AS database_time,
                   coalesce(sum(smtp_time), 0)::float8 AS smtp_time,
                   (array_agg(throttled_domain ORDER BY domain_wait DESC) FILTER (WHERE throttled_domain IS NOT NULL))[1]
                       AS throttled_domain,
                   coalesce(sum(slots), 0) AS slots, coalesce(bool_or(held_until > now()), false) AS held
              FROM oltp.campaign_senders
             WHERE campaign_id = $1 AND (updated_at > now() - interval '10 seconds' OR held_until > now())
            """
        var bindings: PostgresBindings { [.int(id)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                daemons: try row.decode("daemons"), windowSeconds: try row.decode("window_seconds"),
                sends: try row.decode("sends"), deferrals: try row.decode("deferrals"),
                poolWait: try row.decode("pool_wait"), domainWait: try row.decode("domain_wait"),
                accountWait: try row.decode("account_wait"), database: try row.decode("database_time"),
                smtp: try row.decode("smtp_time"), throttledDomain: try row.decode("throttled_domain", as: String?.self),
                slots: try row.decode("slots"), held: try row.decode("held"))
        }
    }
}
