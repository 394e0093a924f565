-- 0008: the analytics tier. Facts (one row per finished attempt, one row per
-- application event) and the daily rollups `analytics.rollup` computes from them
-- and from the content and notifications tiers. May live in its own database.

CREATE SCHEMA IF NOT EXISTS analytics;

-- One row per finished attempt, written in batches by the daemon's FactsWriter.
-- (job_id, attempt, finished_at) identifies an attempt: a snoozed attempt keeps its
-- number, so the number alone repeats. The key makes a re-sent batch (a write whose
-- answer was lost, a spool drained twice) change nothing.
CREATE TABLE analytics.attempt_facts (
    job_id        bigint           NOT NULL,
    attempt       integer          NOT NULL,
    kind          text             NOT NULL,
    priority      text             NOT NULL,
    -- completed | retry | snooze | dead | release (the completion's outcome)
    outcome       text             NOT NULL,
    -- From run_at (due) to the attempt's start, and the handler's run time.
    queue_wait_ms double precision NOT NULL,
    run_ms        double precision NOT NULL,
    finished_at   timestamptz      NOT NULL,
    PRIMARY KEY (job_id, attempt, finished_at)
);
-- The rollup reads one day at a time; facts arrive in time order, so a BRIN index
-- is tiny and costs inserts next to nothing.
CREATE INDEX attempt_facts_finished_brin ON analytics.attempt_facts USING brin (finished_at);

-- Application events recorded by `metrics.emit` jobs. (job_id, seq) makes a job that
-- runs twice record its events once.
CREATE TABLE analytics.events (
    job_id      bigint           NOT NULL,
    seq         integer          NOT NULL,
    name        text             NOT NULL CHECK (name <> '' AND length(name) <= 200),
    value       double precision NOT NULL,
    tags        jsonb            NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(tags) = 'object'),
    occurred_at timestamptz      NOT NULL,
    recorded_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX events_occurred_brin ON analytics.events USING brin (occurred_at);
CREATE INDEX events_name_time_idx ON analytics.events (name, occurred_at);

-- Daily rollups. A day is a UTC calendar day. Re-running a day replaces its rows
-- (stale keys deleted, the rest upserted), so the same facts give the same rows.

CREATE TABLE analytics.daily_jobs (
    day          date             NOT NULL,
    kind         text             NOT NULL,
    outcome      text             NOT NULL,
    attempts     bigint           NOT NULL,
    wait_p50_ms  double precision,
    wait_p95_ms  double precision,
    wait_p99_ms  double precision,
    run_p50_ms   double precision,
    run_p95_ms   double precision,
    run_p99_ms   double precision,
    PRIMARY KEY (day, kind, outcome)
);

CREATE TABLE analytics.daily_events (
    day    date             NOT NULL,
    name   text             NOT NULL,
    events bigint           NOT NULL,
    total  double precision NOT NULL,
    min    double precision,
    max    double precision,
    avg    double precision,
    PRIMARY KEY (day, name)
);

-- From content.messages (tenant_id, created_at, raw_bytes, stored_bytes).
CREATE TABLE analytics.daily_content (
    day               date             NOT NULL,
    tenant_id         text             NOT NULL,
    messages          bigint           NOT NULL,
    raw_bytes         bigint           NOT NULL,
    stored_bytes      bigint           NOT NULL,
    -- raw / stored: 4.0 means stored in a quarter of the space. NULL when nothing stored.
    compression_ratio double precision,
    PRIMARY KEY (day, tenant_id)
);

-- From notifications.notifications (channel, status, created_at) and
-- notifications.attempts (channel, outcome, started_at, duration_ms).
CREATE TABLE analytics.daily_notifications (
    day             date             NOT NULL,
    channel         text             NOT NULL,
    notifications   bigint           NOT NULL,
    sent            bigint           NOT NULL,
    failed          bigint           NOT NULL,
    -- sent / (sent + failed); NULL when none has finished.
    delivery_rate   double precision,
    attempts        bigint           NOT NULL,
    failed_attempts bigint           NOT NULL,
    latency_p50_ms  double precision,
    latency_p95_ms  double precision,
    latency_p99_ms  double precision,
    PRIMARY KEY (day, channel)
);

-- Which sections a day's rollup covered, and why one is missing (`source_missing`:
-- that tier's table does not exist here; `source_invalid`: it lacks a column).
CREATE TABLE analytics.daily_rollups (
    day          date        NOT NULL,
    section      text        NOT NULL CHECK (section IN ('jobs', 'events', 'content', 'notifications')),
    status       text        NOT NULL CHECK (status IN ('ok', 'source_missing', 'source_invalid')),
    detail       text,
    source_rows  bigint      NOT NULL DEFAULT 0,
    rolled_up_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (day, section)
);

-- Grants for the roles another migration creates; skipped when they do not exist.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        GRANT USAGE ON SCHEMA analytics TO jobd_daemon;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA analytics TO jobd_daemon;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_reporting') THEN
        GRANT USAGE ON SCHEMA analytics TO jobd_reporting;
        GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO jobd_reporting;
    END IF;
END;
$$;
