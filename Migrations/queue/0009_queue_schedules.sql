-- 0009: queue-side state of periodic jobs and of attempt facts.

-- One row per schedule slot ever enqueued. The primary key is what makes a slot run
-- once across all daemons: the scheduler inserts the slot and its job in one
-- statement, and a second daemon's insert of the same slot does nothing. (The
-- job's unique_key, `cron:<name>:<slot>`, guards only while the job is unfinished.)
-- queue.prune deletes slots older than the retention window.
CREATE TABLE queue.schedule_slots (
    name        text        NOT NULL,
    slot        timestamptz NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, slot)
);

-- Attempt facts that could not reach the analytics tier (its database is down).
-- The queue database is up whenever jobs complete, so facts parked here are not
-- lost; the FactsWriter moves them to analytics.attempt_facts once it is back
-- (inserting there is idempotent, so a move that is interrupted and repeated is safe).
CREATE TABLE queue.analytics_spool (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        bigint           NOT NULL,
    attempt       integer          NOT NULL,
    kind          text             NOT NULL,
    priority      text             NOT NULL,
    outcome       text             NOT NULL,
    queue_wait_ms double precision NOT NULL,
    run_ms        double precision NOT NULL,
    finished_at   timestamptz      NOT NULL,
    spooled_at    timestamptz      NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON queue.schedule_slots, queue.analytics_spool TO jobd_daemon;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_reporting') THEN
        GRANT SELECT ON queue.schedule_slots TO jobd_reporting;
    END IF;
END;
$$;
