import JobdCore
import JobdPostgres

/// `oltp.campaigns` (with its account and, for the status, its deliveries): what
/// `CampaignStore` and `CampaignStatus` run. Each is one statement, so each is its
/// own transaction.
enum CampaignCampaignsStatements {
    /// Campaign `$1` with its sending account; no row when there is none.
    struct Campaign: PostgresStatement {
        var id: Int64
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            SELECT c.id, c.workspace_id, c.status,
                   coalesce(extract(epoch FROM c.send_at - now()), 0)::float8 AS due_in, c.fanout_done, c.content_ref,
                   c.list_id, c.subject, c.html_template, c.text_template,
                   a.from_address, a.from_name, a.unsubscribe_url, a.relay_url, a.username, a.secret_ref, a.starttls,
                   c.account_id, a.messages_per_second,
                   (SELECT count(*) FROM oltp.campaign_attachments x WHERE x.campaign_id = c.id) AS attachments
              FROM oltp.campaigns c JOIN oltp.email_accounts a ON a.id = c.account_id
             WHERE c.id = $1
            """
        var bindings: PostgresBindings { [.int(id)] }

        static func decode(_ row: PostgresRow) throws -> CampaignStore.Campaign {
            let id: Int64 = try row.decode("id")
            return CampaignStore.Campaign(
                id: id, workspaceID: try row.decode("workspace_id"), status: try row.decode("status"),
                dueIn: try row.decode("due_in"), fanoutDone: try row.decode("fanout_done"),
                contentRef: try row.decode("content_ref", as: String?.self), listID: try row.decode("list_id"),
                template: CampaignTemplate(
                    campaignID: id, fromAddress: try row.decode("from_address"), fromName: try row.decode("from_name"),
                    subject: try row.decode("subject"), html: try row.decode("html_template", as: String?.self),
                    text: try row.decode("text_template", as: String?.self),
                    unsubscribeURL: try row.decode("unsubscribe_url")),
                relayURL: try row.decode("relay_url"), username: try row.decode("username", as: String?.self),
                secretRef: try row.decode("secret_ref", as: String?.self), startTLS: try row.decode("starttls"),
                accountID: try row.decode("account_id"),
                accountRate: try row.decode("messages_per_second", as: Double?.self),
                attachmentCount: try row.decode("attachments"))
        }
    }

    /// scheduled → sending (one row affected), else nothing.
    struct Start: PostgresStatement {
        var id: Int64
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            UPDATE oltp.campaigns SET status = 'sending', started_at = coalesce(started_at, now())
             WHERE id = $1 AND status = 'scheduled'
            """
        var bindings: PostgresBindings { [.int(id)] }
    }

    /// The campaign's content reference, set once.
    struct SetContentRef: PostgresStatement {
        var id: Int64
        var ref: String
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = "UPDATE oltp.campaigns SET content_ref = $2 WHERE id = $1 AND content_ref IS NULL"
        var bindings: PostgresBindings { [.int(id), .text(ref)] }
    }

    /// One fan-out page of campaign `$1`, `$2` members (see `CampaignStore.fanOutPage`).
    /// Always one row.
    struct FanOutPage: PostgresStatement {
        var id: Int64
        var pageSize: Int
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            WITH c AS (
                SELECT id, workspace_id, list_id, fanout_cursor, batch_size FROM oltp.campaigns
                 WHERE id = $1 AND status = 'sending' AND NOT fanout_done
                 FOR UPDATE
            ), page AS (
                -- The contact's status by primary key per member (a scalar subquery is
                -- never turned into a hash join over the whole contacts table).
                -- Likewise whether it has a delivery already: an index probe per member.
                -- Not EXISTS: the planner may run an EXISTS as a hashed subplan, which
                -- reads every delivery of every campaign on each page (a fan-out
                -- quadratic in its own size).
                SELECT m.contact_id, (SELECT k.status FROM oltp.contacts k WHERE k.id = m.contact_id) AS status,
                       (SELECT true FROM oltp.deliveries d WHERE d.campaign_id = c.id AND d.contact_id = m.contact_id)
                           IS NOT NULL AS delivered
                  FROM c CROSS JOIN LATERAL (
                    SELECT contact_id FROM oltp.list_members
                     WHERE list_id = c.list_id AND contact_id > c.fanout_cursor
                     -- The primary key's order: read in order from it, never sorted.
                     ORDER BY list_id, contact_id LIMIT $2) m
            ), numbered AS (
                -- Members without a delivery yet (the campaign row's lock keeps other
                -- fan-outs out), the subscribed ones numbered into batches. Only these
                -- name batches, so a new batch never takes an existing batch's name.
                SELECT p.contact_id, p.status = 'subscribed' AS open,
                       (row_number() OVER (PARTITION BY p.status = 'subscribed' ORDER BY p.contact_id) - 1)
                           / (SELECT batch_size FROM c) AS n
                  FROM page p
                 WHERE NOT p.delivered
            ), batched AS (
                -- A batch is named by its first contact: its job's unique_key ends with it.
                SELECT contact_id, open, CASE WHEN open THEN min(contact_id) OVER (PARTITION BY open, n) END AS batch
                  FROM numbered
            ), ins AS (
                INSERT INTO oltp.deliveries (campaign_id, contact_id, workspace_id, state, batch)
                SELECT c.id, b.contact_id, c.workspace_id, CASE WHEN b.open THEN 'pending' ELSE 'suppressed' END, b.batch
                  FROM c CROSS JOIN batched b
                ON CONFLICT (campaign_id, contact_id) DO NOTHING
                RETURNING contact_id, state, batch
            ), jobs AS (
                INSERT INTO oltp.outbox (kind, payload, unique_key)
                SELECT 'campaign.deliver',
                       jsonb_build_object('campaign_id', $1::bigint, 'batch', batch,
                                          'contacts', jsonb_agg(contact_id ORDER BY contact_id)),
                       'campaign:' || $1::bigint || ':deliver:' || batch
                  FROM ins WHERE state = 'pending' GROUP BY batch
                RETURNING 1
            ), moved AS (
                UPDATE oltp.campaigns
                   SET fanout_cursor = coalesce((SELECT max(contact_id) FROM page), fanout_cursor),
                       fanout_done = (SELECT count(*) FROM page) < $2
                 WHERE id = (SELECT id FROM c)
                RETURNING fanout_done
            )
            SELECT (SELECT count(*) FROM moved) AS ran, (SELECT count(*) FROM page) AS members,
                   (SELECT count(*) FROM ins) AS deliveries, (SELECT count(*) FROM jobs) AS jobs,
                   coalesce((SELECT fanout_done FROM moved), true) AS done
            """
        var bindings: PostgresBindings { [.int(id), .int(pageSize)] }

        static func decode(_ row: PostgresRow) throws -> CampaignStore.FanOutPage {
            CampaignStore.FanOutPage(
                ran: try row.decode("ran", as: Int.self) == 1, members: try row.decode("members"),
                deliveries: try row.decode("deliveries"), jobs: try row.decode("jobs"), done: try row.decode("done"))
        }
    }

    /// sending → sent once the fan-out is done and no delivery is open (one row affected).
    /// Every delivery batch runs it as it ends, so it must stay cheap however far the
    /// campaign got: the open deliveries are looked for only once the campaign is
    /// `sending` with its fan-out done (a correlated subquery, evaluated after the
    /// campaign row's own conditions), and in `deliveries_open_batch_contact_idx` order, so
    /// the first open one found in that index answers. (Unordered, the planner may
    /// scan the table from its start, through every delivery already sent.)
    struct FinishIfDone: PostgresStatement {
        var id: Int64
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = """
            UPDATE oltp.campaigns c SET status = 'sent', finished_at = now()
             WHERE c.id = $1 AND c.status = 'sending' AND c.fanout_done
               AND (SELECT true FROM oltp.deliveries d
                     WHERE d.campaign_id = c.id AND d.state IN ('pending', 'sending', 'deferred')
                     ORDER BY d.batch LIMIT 1) IS NULL
            """
        var bindings: PostgresBindings { [.int(id)] }
    }

    /// Campaign `$1`'s counts for `jobd campaign status`; no row when there is none.
    struct Status: PostgresStatement {
        struct Row: Sendable {
            var name: String
            var status: String
            var fanoutDone: Bool
            var members: Int
            var deliveries: Int
            var pending: Int
            var sending: Int
            var sent: Int
            var deferred: Int
            var bounced: Int
            var failed: Int
            var suppressed: Int
            var cancelled: Int
            /// Seconds from the first delivery sent to the last; nil before one was sent.
            var sendingSpan: Double?
            var startedAt: String?
            var finishedAt: String?
            var pauseReason: String?
        }

        var id: Int64
        static let planning = PostgresPlanning.perExecution
        static let sql: SQL = CampaignStatusColumns.select + """

              FROM oltp.campaigns c
            """ + CampaignStatusColumns.deliveryCounts + """

             WHERE c.id = $1
            """
        var bindings: PostgresBindings { [.int(id)] }

        static func decode(_ row: PostgresRow) throws -> Row {
            Row(
                name: try row.decode("name"), status: try row.decode("status"), fanoutDone: try row.decode("fanout_done"),
                members: try row.decode("members"), deliveries: try row.decode("deliveries"),
                pending: try row.decode("pending"), sending: try row.decode("sending"), sent: try row.decode("sent"),
                deferred: try row.decode("deferred"), bounced: try row.decode("bounced"), failed: try row.decode("failed"),
                suppressed: try row.decode("suppressed"), cancelled: try row.decode("cancelled"),
                sendingSpan: try row.decode("sending_span", as: Double?.self),
                startedAt: try row.decode("started_at", as: String?.self),
                finishedAt: try row.decode("finished_at", as: String?.self),
                pauseReason: try row.decode("pause_reason", as: String?.self))
        }
    }
}

/// The select list of a campaign's status row (`Status.Row`), written once for the
/// statements that return it: `Status` (one campaign) and the console's
/// `CampaignConsoleStatements.Recent` (the newest campaigns). Each supplies its own
/// `FROM` naming the campaign `c`, then joins `deliveryCounts` as `d`; both decode the
/// row with `Status.decode`.
enum CampaignStatusColumns {
    static let select: SQL = """
        SELECT c.id, c.name, c.status, c.fanout_done,
               (SELECT count(*) FROM oltp.list_members m WHERE m.list_id = c.list_id) AS members,
               d.deliveries, d.pending, d.sending, d.sent, d.deferred, d.bounced, d.failed, d.suppressed,
               d.cancelled, d.sending_span,
               to_char(c.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS started_at,
               to_char(c.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS finished_at,
               c.pause_reason
        """

    /// Campaign `c`'s deliveries counted by state, as `d`: a LATERAL aggregate over the
    /// campaign's rows of the deliveries' primary key (campaign_id, contact_id), so a
    /// list of campaigns costs one statement, not one per campaign. A campaign without
    /// deliveries gets zeros and a NULL span.
    static let deliveryCounts: SQL = """

          CROSS JOIN LATERAL (
            SELECT count(*) AS deliveries,
                   count(*) FILTER (WHERE x.state = 'pending') AS pending,
                   count(*) FILTER (WHERE x.state = 'sending') AS sending,
                   count(*) FILTER (WHERE x.state = 'sent') AS sent,
                   count(*) FILTER (WHERE x.state = 'deferred') AS deferred,
                   count(*) FILTER (WHERE x.state = 'bounced') AS bounced,
                   count(*) FILTER (WHERE x.state = 'failed') AS failed,
                   count(*) FILTER (WHERE x.state = 'suppressed') AS suppressed,
                   count(*) FILTER (WHERE x.state = 'cancelled') AS cancelled,
                   extract(epoch FROM max(x.sent_at) - min(x.sent_at))::float8 AS sending_span
              FROM oltp.deliveries x WHERE x.campaign_id = c.id) d
        """
}
