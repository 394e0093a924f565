-- An application creating jobs with nothing but SQL: plain INSERTs and triggers.
--
-- The application's tables live in the queue's database (schema `app` here), so a
-- trigger can insert into queue.jobs in the same transaction as the row that causes
-- it: the jobs exist exactly when the campaign does (a rollback takes both back), and
-- the daemon is woken by queue.jobs' own NOTIFY trigger once the transaction commits.
--
-- Run it with psql against the queue database after `jobd migrate`:
--   psql "$JOBD_DATABASE_URL" -f examples/campaigns.sql
-- tests/…/ExamplesTests runs this file and checks the jobs it creates.
--
-- The content.write payload is the content tier's documented one (README, "Content tier"):
-- external_id is the idempotency key, one message per recipient.

CREATE SCHEMA IF NOT EXISTS app;

CREATE TABLE IF NOT EXISTS app.campaigns (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text        NOT NULL,
    from_address text       NOT NULL DEFAULT 'News <news@example.com>',
    subject     text        NOT NULL,
    body        text        NOT NULL,
    recipients  text[]      NOT NULL,
    -- draft | scheduled | cancelled
    status      text        NOT NULL DEFAULT 'scheduled',
    send_at     timestamptz NOT NULL DEFAULT now(),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A new scheduled campaign enqueues one content.write job per recipient, due at
-- send_at, plus one metrics.emit job counting it. One statement-level trigger: a
-- bulk INSERT of campaigns costs one INSERT INTO queue.jobs, not one per row.
-- The unique key makes a replayed insert (same campaign id) enqueue nothing twice.
CREATE OR REPLACE FUNCTION app.enqueue_campaign_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue.jobs (kind, payload, run_at, unique_key)
    SELECT 'content.write',
           jsonb_build_object(
               'external_id', 'campaign-' || c.id || '-' || r.recipient,
               'tenant_id', c.tenant_id,
               'campaign_id', c.id::text,
               'from', c.from_address,
               'to', jsonb_build_array(r.recipient),
               'subject', c.subject,
               'text', c.body),
           c.send_at,
           'campaign:' || c.id || ':' || r.recipient
      FROM new_campaigns c
     CROSS JOIN LATERAL unnest(c.recipients) AS r(recipient)
     WHERE c.status = 'scheduled'
    ON CONFLICT (kind, unique_key)
        WHERE unique_key IS NOT NULL AND state NOT IN ('completed', 'dead', 'cancelled')
        DO NOTHING;

    INSERT INTO queue.jobs (kind, payload, priority)
    SELECT 'metrics.emit',
           jsonb_build_object(
               'name', 'campaign.created',
               'value', cardinality(c.recipients),
               'tags', jsonb_build_object('tenant', c.tenant_id, 'status', c.status),
               'time', c.created_at),
           'low'
      FROM new_campaigns c;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS campaigns_enqueue ON app.campaigns;
CREATE TRIGGER campaigns_enqueue
    AFTER INSERT ON app.campaigns
    REFERENCING NEW TABLE AS new_campaigns
    FOR EACH STATEMENT EXECUTE FUNCTION app.enqueue_campaign_jobs();

-- Cancelling a campaign withdraws its content.write jobs that have not started yet.
-- (Jobs already promoted or running finish; a promoted one that is cancelled here is
-- skipped by the claim, which only takes `promoted` rows.)
CREATE OR REPLACE FUNCTION app.cancel_campaign_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE queue.jobs
       SET state = 'cancelled', finished_at = now()
     WHERE kind = 'content.write'
       AND unique_key LIKE 'campaign:' || NEW.id || ':%'
       AND state IN ('available', 'retryable', 'promoted');
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS campaigns_cancel ON app.campaigns;
CREATE TRIGGER campaigns_cancel
    AFTER UPDATE OF status ON app.campaigns
    FOR EACH ROW
    WHEN (NEW.status = 'cancelled' AND OLD.status <> 'cancelled')
    EXECUTE FUNCTION app.cancel_campaign_jobs();
