import JobdCore
import JobdPostgres

/// The rollup's `campaigns` section: what it reads from the OLTP tier
/// (`oltp.campaigns`, `oltp.deliveries`; possibly another database) and what it
/// stores in and loads from `analytics.daily_campaigns`.
///
/// A delivery counts on the day of its last change (`updated_at`), so a campaign's
/// rows over all days add up to the whole campaign; `Daily` over an unbounded
/// range is the whole campaign.
enum AnalyticsCampaignStatements {
    /// Per campaign, the deliveries whose last change falls in `[$1, $2)`
    /// (`-infinity`/`infinity` for all time), only campaign `$3` unless it is NULL.
    /// Without `$3` this reads every delivery changed in the range (no index on
    /// `updated_at`: one would make every delivery update a non-HOT update); with it,
    /// the primary key's prefix.
    struct Daily: PostgresStatement {
        var start: String
        var end: String
        var campaignID: Int64?
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT d.campaign_id, c.workspace_id, c.name,
                   count(*) AS recipients,
                   count(*) FILTER (WHERE d.state = 'sent') AS delivered,
                   count(*) FILTER (WHERE d.state = 'bounced') AS bounced,
                   count(*) FILTER (WHERE d.state = 'deferred' OR d.tries > 1) AS deferred,
                   count(*) FILTER (WHERE d.state = 'suppressed') AS suppressed,
                   count(*) FILTER (WHERE d.state = 'failed') AS failed,
                   count(*) FILTER (WHERE d.state NOT IN ('sent', 'bounced', 'suppressed', 'failed')) AS unfinished,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.sent_at - d.created_at) * 1000)
                       FILTER (WHERE d.state = 'sent') AS send_p50_ms,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM d.sent_at - d.created_at) * 1000)
                       FILTER (WHERE d.state = 'sent') AS send_p99_ms
              FROM oltp.deliveries d JOIN oltp.campaigns c ON c.id = d.campaign_id
             WHERE d.updated_at >= $1::timestamptz AND d.updated_at < $2::timestamptz
               AND ($3::bigint IS NULL OR d.campaign_id = $3::bigint)
             GROUP BY d.campaign_id, c.workspace_id, c.name
             ORDER BY d.campaign_id
            """
        var bindings: PostgresBindings { [.text(start), .text(end), .int(campaignID)] }

        static func decode(_ row: PostgresRow) throws -> DailyReport.Campaign {
            var campaign = DailyReport.Campaign(
                campaignID: try row.decode("campaign_id"), workspaceID: try row.decode("workspace_id"),
                name: try row.decode("name"), recipients: try row.decode("recipients"),
                delivered: try row.decode("delivered"), bounced: try row.decode("bounced"),
                deferred: try row.decode("deferred"), suppressed: try row.decode("suppressed"),
                failed: try row.decode("failed"), unfinished: try row.decode("unfinished"),
                sendP50Ms: try row.decode("send_p50_ms", as: Double?.self),
                sendP99Ms: try row.decode("send_p99_ms", as: Double?.self))
            let attempted = campaign.delivered + campaign.bounced + campaign.failed
            campaign.deliveryRate = attempted > 0 ? Double(campaign.delivered) / Double(attempted) : nil
            return campaign
        }
    }

    struct Store: AnalyticsDailyStore {
        var day: AnalyticsDay
        var rows: String
        var status: DailyReport.Section
        static let sql: SQL = """
            WITH cols AS (
                SELECT (r->>'campaignID')::bigint AS campaign_id, (r->>'workspaceID')::bigint AS workspace_id,
                       left(r->>'name', 200) AS name, (r->>'recipients')::bigint AS recipients,
                       (r->>'delivered')::bigint AS delivered, (r->>'bounced')::bigint AS bounced,
                       (r->>'deferred')::bigint AS deferred, (r->>'suppressed')::bigint AS suppressed,
                       (r->>'failed')::bigint AS failed, (r->>'unfinished')::bigint AS unfinished,
                       (r->>'deliveryRate')::float8 AS delivery_rate, (r->>'sendP50Ms')::float8 AS send_p50_ms,
                       (r->>'sendP99Ms')::float8 AS send_p99_ms
                  FROM jsonb_array_elements($2::jsonb) AS r
            ), gone AS (
                DELETE FROM analytics.daily_campaigns d
                 WHERE d.day = $1::date AND NOT EXISTS (SELECT 1 FROM cols i WHERE i.campaign_id = d.campaign_id)
            ),
            """ + AnalyticsDailyStatements.recordStatus + """
            INSERT INTO analytics.daily_campaigns (day, campaign_id, workspace_id, name, recipients, delivered, bounced,
                                                   deferred, suppressed, failed, unfinished, delivery_rate,
                                                   send_p50_ms, send_p99_ms)
            SELECT $1::date, campaign_id, workspace_id, name, recipients, delivered, bounced, deferred, suppressed,
                   failed, unfinished, delivery_rate, send_p50_ms, send_p99_ms
              FROM cols
            ON CONFLICT (day, campaign_id) DO UPDATE
               SET workspace_id = EXCLUDED.workspace_id, name = EXCLUDED.name, recipients = EXCLUDED.recipients,
                   delivered = EXCLUDED.delivered, bounced = EXCLUDED.bounced, deferred = EXCLUDED.deferred,
                   suppressed = EXCLUDED.suppressed, failed = EXCLUDED.failed, unfinished = EXCLUDED.unfinished,
                   delivery_rate = EXCLUDED.delivery_rate, send_p50_ms = EXCLUDED.send_p50_ms,
                   send_p99_ms = EXCLUDED.send_p99_ms
            """
    }

    /// The stored campaign rows of day `$1`, or of every day of campaign `$2`
    /// (`$1` NULL), with their day, oldest first.
    struct Load: PostgresStatement {
        var day: AnalyticsDay?
        var campaignID: Int64?
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT day::text AS day, campaign_id, workspace_id, name, recipients, delivered, bounced, deferred,
                   suppressed, failed, unfinished, delivery_rate, send_p50_ms, send_p99_ms
              FROM analytics.daily_campaigns
             WHERE ($1::date IS NULL OR day = $1::date) AND ($2::bigint IS NULL OR campaign_id = $2::bigint)
             ORDER BY day, campaign_id
            """
        var bindings: PostgresBindings { [.text(day?.description), .int(campaignID)] }

        static func decode(_ row: PostgresRow) throws -> CampaignReport.Day {
            CampaignReport.Day(day: try row.decode("day"), campaign: DailyReport.Campaign(
                campaignID: try row.decode("campaign_id"), workspaceID: try row.decode("workspace_id"),
                name: try row.decode("name"), recipients: try row.decode("recipients"),
                delivered: try row.decode("delivered"), bounced: try row.decode("bounced"),
                deferred: try row.decode("deferred"), suppressed: try row.decode("suppressed"),
                failed: try row.decode("failed"), unfinished: try row.decode("unfinished"),
                deliveryRate: try row.decode("delivery_rate", as: Double?.self),
                sendP50Ms: try row.decode("send_p50_ms", as: Double?.self),
                sendP99Ms: try row.decode("send_p99_ms", as: Double?.self)))
        }
    }
}
