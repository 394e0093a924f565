-- 0002: the attempts ledger and the enqueue-time payload limit.

-- The attempts ledger: one row when an attempt starts (written by the claim) and one
-- when it ends (written by the completion, the rescuer or a drain), each inside the
-- very statement that moves the job, so the ledger can never disagree with
-- queue.jobs. It is the evidence for counting duplicate runs after a fault and the
-- audit behind a job's history (SELECT * FROM queue.attempts WHERE job_id = $1
-- ORDER BY at, event DESC).
--
-- Append-only, and deliberately without a primary key or a foreign key: each would
-- add an index probe (or a row lock on the job) to every claim and completion, and
-- the ledger is only ever read by job. A snoozed attempt does not count, so its
-- number is used again: (job_id, attempt) is not unique.
CREATE TABLE queue.attempts (
    job_id      bigint      NOT NULL,
    attempt     integer     NOT NULL,
    -- 'start' (claimed), 'end' (the attempt came to an outcome), or 'solo': the job
    -- is a suspect (rescued max(1, JOBD_MAX_RESCUES - 1) times), so this attempt runs
    -- alone in its daemon; if it is lost too, that rescue counts towards the
    -- poison-pill limit.
    event       text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    -- start, solo: the daemon that runs it; end by the rescuer: the daemon that lost it.
    daemon      text,
    -- end only: completed | retry | snooze | dead | release | lease_expired.
    outcome     text,
    error_code  text,
    -- end only, written by the daemon: how long the handler ran.
    run_seconds float8,

    CONSTRAINT attempts_event_check CHECK (event IN ('start', 'solo', 'end')),
    CONSTRAINT attempts_outcome_check CHECK (
        (event IN ('start', 'solo') AND outcome IS NULL) OR
        (event = 'end' AND outcome IN ('completed', 'retry', 'snooze', 'dead', 'release', 'lease_expired')))
);
CREATE INDEX attempts_job_idx ON queue.attempts (job_id, attempt);

-- Insert-only: no dead tuples, but vacuum must still visit it to keep the visibility
-- map current (index-only scans) and to freeze; the default 20 % of a large ledger
-- would let that slide for hours.
ALTER TABLE queue.attempts SET (
    autovacuum_vacuum_insert_scale_factor = 0.02,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.02
);

-- queue.daemons is rewritten by every daemon every maintenance pass: keep room for
-- HOT updates and vacuum it eagerly, as queue.jobs.
ALTER TABLE queue.daemons SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.1,
                               autovacuum_vacuum_threshold = 50);

-- The largest payload an INSERT may store, as the length of its JSON text (the same
-- measure the daemon applies at fetch, JOBD_MAX_PAYLOAD_BYTES; keep the two equal).
-- One row; an operator changes it with
--   UPDATE queue.limits SET max_payload_bytes = 4194304;
CREATE TABLE queue.limits (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    max_payload_bytes integer NOT NULL DEFAULT 1048576
        CHECK (max_payload_bytes BETWEEN 2 AND 268435456)
);
INSERT INTO queue.limits DEFAULT VALUES;

-- Refuses an INSERT whose payload is over the limit, before any daemon sees it.
-- Statement-level over the transition table (which the NOTIFY trigger already
-- materialises), so a bulk INSERT pays one query, not one per row.
CREATE FUNCTION queue.check_inserted_payloads() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_limit integer;
    v_size  integer;
BEGIN
    SELECT max_payload_bytes INTO v_limit FROM queue.limits;
    SELECT octet_length(i.payload::text) INTO v_size
      FROM inserted i
     WHERE octet_length(i.payload::text) > v_limit
     LIMIT 1;
    IF v_size IS NOT NULL THEN
        RAISE EXCEPTION 'queue.jobs payload is % bytes, over the limit of % bytes', v_size, v_limit
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'the limit is queue.limits.max_payload_bytes (and JOBD_MAX_PAYLOAD_BYTES in the daemon)';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_check_inserted_payloads
    AFTER INSERT ON queue.jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION queue.check_inserted_payloads();

-- An UPDATE that rewrites a payload (never the daemon; an operator fixing a job)
-- obeys the same limit. Row-level, because a trigger with a column list cannot
-- have a transition table; it fires only when payload is assigned.
CREATE FUNCTION queue.check_updated_payload() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_limit integer;
    v_size  integer;
BEGIN
    SELECT max_payload_bytes INTO v_limit FROM queue.limits;
    v_size := octet_length(NEW.payload::text);
    IF v_size > v_limit THEN
        RAISE EXCEPTION 'queue.jobs payload is % bytes, over the limit of % bytes', v_size, v_limit
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'the limit is queue.limits.max_payload_bytes (and JOBD_MAX_PAYLOAD_BYTES in the daemon)';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER jobs_check_updated_payload
    BEFORE UPDATE OF payload ON queue.jobs
    FOR EACH ROW EXECUTE FUNCTION queue.check_updated_payload();
