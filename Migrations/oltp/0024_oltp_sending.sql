-- Sending that protects the sender and explains itself:
--   * throttles: an account's own messages per second, and per recipient domain
--     (messages per second, burst, transfers at once), per account or for all;
--   * bounce-rate auto-pause per campaign, with the reason recorded;
--   * oltp.campaign_senders: what each daemon measured while sending a campaign,
--     read by `jobd campaign status` to say what limits the rate.
-- Every limit is enforced by each daemon on its own (token buckets in memory):
-- N daemons sending the same account may together reach N times a limit.

-- The account's own limit; NULL: none.
ALTER TABLE oltp.email_accounts
    ADD COLUMN messages_per_second float8,
    ADD CONSTRAINT email_accounts_rate_check CHECK (
        messages_per_second IS NULL OR (messages_per_second >= 0.01 AND messages_per_second <= 100000));

-- A limit for recipients at one domain (the part after @, lower case, exact: a
-- row for gmail.com does not cover googlemail.com). A row with account_id names
-- that account only and wins over a row without, which covers every account and
-- is the operator's (workspace_id NULL: invisible to workspace roles).
CREATE TABLE oltp.domain_limits (
    id                  bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id        bigint  REFERENCES oltp.workspaces (id) ON DELETE CASCADE,
    account_id          bigint,
    domain              text    NOT NULL,
    -- Messages per second to this domain; NULL: no rate, only max_transfers.
    messages_per_second float8,
    -- Largest burst after a quiet spell (token-bucket depth).
    burst               integer NOT NULL DEFAULT 1,
    -- SMTP transactions to this domain's recipients in flight at once; NULL: no limit.
    max_transfers       integer,
    created_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (account_id, workspace_id) REFERENCES oltp.email_accounts (id, workspace_id) ON DELETE CASCADE,
    CONSTRAINT domain_limits_scope_check CHECK ((account_id IS NULL) = (workspace_id IS NULL)),
    CONSTRAINT domain_limits_domain_check CHECK (
        domain ~ '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$' AND length(domain) <= 253),
    CONSTRAINT domain_limits_rate_check CHECK (
        messages_per_second IS NULL OR (messages_per_second >= 0.01 AND messages_per_second <= 100000)),
    CONSTRAINT domain_limits_burst_check CHECK (burst BETWEEN 1 AND 100000),
    CONSTRAINT domain_limits_transfers_check CHECK (max_transfers IS NULL OR max_transfers BETWEEN 1 AND 1000),
    CONSTRAINT domain_limits_something_check CHECK (messages_per_second IS NOT NULL OR max_transfers IS NOT NULL)
);
CREATE UNIQUE INDEX domain_limits_key ON oltp.domain_limits (coalesce(account_id, 0), domain);

-- Bounce-rate auto-pause: once at least bounce_min_sample recipients were tried
-- (sent, bounced or failed), a bounced share above bounce_threshold pauses the
-- campaign; pause_reason says why. 1 switches it off.
ALTER TABLE oltp.campaigns
    ADD COLUMN bounce_threshold  float8    NOT NULL DEFAULT 0.1,
    ADD COLUMN bounce_min_sample integer NOT NULL DEFAULT 50,
    ADD COLUMN pause_reason      text,
    ADD CONSTRAINT campaigns_bounce_threshold_check CHECK (bounce_threshold > 0 AND bounce_threshold <= 1),
    ADD CONSTRAINT campaigns_bounce_min_sample_check CHECK (bounce_min_sample BETWEEN 1 AND 1000000),
    ADD CONSTRAINT campaigns_pause_reason_check CHECK (length(pause_reason) <= 500);

-- A reason belongs to one pause: leaving `paused` clears it, and a pause written
-- without one (a user's UPDATE) says so.
CREATE FUNCTION oltp.campaign_pause_reason() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'paused' AND OLD.status <> 'paused' AND NEW.pause_reason IS NULL THEN
        NEW.pause_reason := 'paused by request';
    ELSIF NEW.status <> 'paused' THEN
        NEW.pause_reason := NULL;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER campaigns_pause_reason BEFORE UPDATE ON oltp.campaigns
    FOR EACH ROW EXECUTE FUNCTION oltp.campaign_pause_reason();

-- One row per daemon and campaign it sends, rewritten about once a second while
-- it does: totals since the daemon started on it (tried, bounced: the auto-pause
-- sums them over daemons) and the last window's time split (seconds spent waiting
-- for an SMTP worker, for a domain or the account throttle, in database calls, in
-- SMTP transactions) with its sends and deferrals. Not workspace data: the daemon
-- and the table's owner read it.
CREATE TABLE oltp.campaign_senders (
    campaign_id     bigint      NOT NULL REFERENCES oltp.campaigns (id) ON DELETE CASCADE,
    daemon          text        NOT NULL,
    tried           bigint      NOT NULL DEFAULT 0,
    bounced         bigint      NOT NULL DEFAULT 0,
    window_seconds  float8      NOT NULL DEFAULT 0,
    sends           integer     NOT NULL DEFAULT 0,
    deferrals       integer     NOT NULL DEFAULT 0,
    pool_wait       float8      NOT NULL DEFAULT 0,
    domain_wait     float8      NOT NULL DEFAULT 0,
    account_wait    float8      NOT NULL DEFAULT 0,
    database_time   float8      NOT NULL DEFAULT 0,
    smtp_time       float8      NOT NULL DEFAULT 0,
    -- The domain whose throttle made this window wait longest.
    throttled_domain text,
    -- SMTP workers the daemon has for campaigns (JOBD_CAMPAIGN_CONCURRENCY).
    slots           integer     NOT NULL DEFAULT 0,
    -- A batch of this daemon snoozed for a throttle until then (it is waiting,
    -- not gone, though the row is not rewritten meanwhile).
    held_until      timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, daemon),
    CONSTRAINT campaign_senders_daemon_check CHECK (length(daemon) BETWEEN 1 AND 200),
    CONSTRAINT campaign_senders_domain_check CHECK (length(throttled_domain) <= 253)
) WITH (fillfactor = 50);

-- The unsubscribe check compares the MAC in constant time (every byte, whatever
-- differs first), so response time tells nothing about how much of a forged
-- token was right.
CREATE OR REPLACE FUNCTION oltp.unsubscribe(p_token text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[];
    contact bigint;
    campaign bigint;
    given bytea;
    expected bytea;
    diff integer := 0;
BEGIN
    IF p_token IS NULL OR p_token !~ '^[0-9]{1,19}\.[0-9]{1,19}\.[0-9a-f]{64}$' THEN
        RETURN false;
    END IF;
    parts := string_to_array(p_token, '.');
    BEGIN
        contact := parts[1]::bigint;
        campaign := parts[2]::bigint;
    EXCEPTION WHEN numeric_value_out_of_range THEN
        RETURN false;
    END;
    given := decode(parts[3], 'hex');
    expected := decode(split_part(oltp.unsubscribe_token(contact, campaign), '.', 3), 'hex');
    IF octet_length(expected) IS DISTINCT FROM 32 THEN
        RETURN false;
    END IF;
    FOR i IN 0..31 LOOP
        diff := diff | (get_byte(given, i) # get_byte(expected, i));
    END LOOP;
    -- The ids are compared as the text they were signed as (a leading zero is another token).
    IF diff <> 0 OR parts[1] <> contact::text OR parts[2] <> campaign::text THEN
        RETURN false;
    END IF;
    UPDATE oltp.contacts SET status = 'unsubscribed', updated_at = now()
     WHERE id = contact AND status = 'subscribed';
    RETURN EXISTS (SELECT 1 FROM oltp.contacts WHERE id = contact);
END;
$$;

DO $$
BEGIN
    ALTER TABLE oltp.domain_limits ENABLE ROW LEVEL SECURITY;
    -- Workspace rows as for every workspace table; the operator's (NULL workspace) rows
    -- are seen by no workspace role.
    CREATE POLICY workspace_by_setting ON oltp.domain_limits
        USING (workspace_id::text = current_setting('jobd.workspace_id', true))
        WITH CHECK (workspace_id::text = current_setting('jobd.workspace_id', true));
    CREATE POLICY workspace_by_role ON oltp.domain_limits
        USING (workspace_id IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user))
        WITH CHECK (workspace_id IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user));
    CREATE POLICY mapped_roles_stay_home ON oltp.domain_limits AS RESTRICTIVE
        USING (NOT EXISTS (SELECT 1 FROM oltp.workspace_roles r WHERE r.role_name = current_user)
               OR workspace_id IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user))
        WITH CHECK (NOT EXISTS (SELECT 1 FROM oltp.workspace_roles r WHERE r.role_name = current_user)
               OR workspace_id IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user));
    ALTER TABLE oltp.campaign_senders ENABLE ROW LEVEL SECURITY;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        GRANT SELECT ON oltp.domain_limits TO jobd_daemon;
        CREATE POLICY daemon_all ON oltp.domain_limits TO jobd_daemon USING (true) WITH CHECK (true);
        GRANT SELECT, INSERT, UPDATE, DELETE ON oltp.campaign_senders TO jobd_daemon;
        CREATE POLICY daemon_all ON oltp.campaign_senders TO jobd_daemon USING (true) WITH CHECK (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_reporting') THEN
        GRANT SELECT ON oltp.campaign_senders TO jobd_reporting;
        CREATE POLICY reporting_all ON oltp.campaign_senders FOR SELECT TO jobd_reporting USING (true);
    END IF;
END;
$$;
