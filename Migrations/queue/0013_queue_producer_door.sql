-- 0013: what a producer may put into queue.jobs, and what stays the daemon's own.
--
-- 1. run_at is finite and between 1970-01-01 and 9999-12-31 (UTC). Outside that a
--    value means nothing a queue can act on, and 'infinity' or year 1 broke the
--    arithmetic the promoter and the queue-wait figures do on it.
-- 2. Internal kinds (queue.internal_kinds) and the scheduler's unique keys
--    (`cron:…`) are refused to every inserting role that is not the daemon
--    (jobd_daemon), the schema owner or a superuser: a producer can neither run the
--    daemon's own work nor squat a schedule slot's key.
-- 3. The daemon's scheduler and queue.prune work through two functions running as
--    the owner, so jobd_daemon still cannot insert or delete arbitrary jobs.

-- 1. run_at in range. Rows already outside it are clamped to the nearest bound
-- first: -infinity and year 1 meant "as soon as possible" and stay first in line,
-- +infinity meant "never" and becomes the year 9999. One scan of the table while
-- the migration holds its lock; the CHECK is then validated at once.
UPDATE queue.jobs
   SET run_at = least(greatest(run_at, timestamptz '1970-01-01 00:00:00+00'),
                      timestamptz '9999-12-31 23:59:59+00')
 WHERE NOT (run_at >= timestamptz '1970-01-01 00:00:00+00' AND run_at <= timestamptz '9999-12-31 23:59:59+00');

ALTER TABLE queue.jobs ADD CONSTRAINT jobs_run_at_range_check
    CHECK (run_at >= timestamptz '1970-01-01 00:00:00+00' AND run_at <= timestamptz '9999-12-31 23:59:59+00');
COMMENT ON CONSTRAINT jobs_run_at_range_check ON queue.jobs IS
    'run_at must be finite, from 1970-01-01 to 9999-12-31 UTC (SQLSTATE 23514 when not).';

-- 2. Internal kinds: one list, seeded here; a daemon adds the kinds its handlers
-- declare internal at start-up (JobHandler.isInternal), so a new one needs no SQL.
CREATE TABLE queue.internal_kinds (
    kind        text        PRIMARY KEY CHECK (kind <> '' AND length(kind) <= 128),
    declared_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO queue.internal_kinds (kind) VALUES ('queue.prune'), ('content.purge'), ('analytics.rollup');

-- Whether `role` may enqueue internal kinds and reserved keys: the daemon, the owner
-- of queue.jobs, a superuser (pg_has_role is true for superusers).
CREATE FUNCTION queue.may_enqueue_internal(p_role name) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.pg_has_role(p_role, 'jobd_daemon', 'USAGE')
        OR pg_catalog.pg_has_role(p_role, (SELECT c.relowner FROM pg_catalog.pg_class c
                                            WHERE c.oid = 'queue.jobs'::pg_catalog.regclass), 'USAGE')
$$;

-- Refuses what `role` may not enqueue, with SQLSTATE 42501 and a constraint name
-- the producer can match on: jobs_internal_kind or jobs_reserved_unique_key.
CREATE FUNCTION queue.check_producer(p_role name, p_kind text, p_unique_key text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_unique_key LIKE 'cron:%' AND NOT queue.may_enqueue_internal(p_role) THEN
        RAISE EXCEPTION 'unique_key "%" is reserved: keys starting with "cron:" belong to jobd''s scheduler',
                        left(p_unique_key, 80)
            USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'jobs_reserved_unique_key',
                  SCHEMA = 'queue', TABLE = 'jobs', COLUMN = 'unique_key',
                  HINT = 'choose a unique_key that does not start with "cron:"';
    END IF;
    IF EXISTS (SELECT 1 FROM queue.internal_kinds WHERE kind = p_kind) AND NOT queue.may_enqueue_internal(p_role) THEN
        RAISE EXCEPTION 'kind "%" is internal to jobd: only the daemon enqueues it', p_kind
            USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'jobs_internal_kind',
                  SCHEMA = 'queue', TABLE = 'jobs', COLUMN = 'kind',
                  HINT = 'internal kinds are listed in queue.internal_kinds; schedule them with JOBD_SCHEDULES';
    END IF;
END;
$$;

-- Every INSERT statement, as the inserting role (SECURITY INVOKER: current_user is
-- who inserts). Once per statement over its transition table, not once per row: a
-- bulk insert of 200,000 jobs pays one hash join with queue.internal_kinds, not
-- 200,000 function calls. The daemon never updates kind or unique_key, so INSERT is
-- the only door. Raising in the AFTER trigger undoes the whole statement.
CREATE FUNCTION queue.check_inserted_jobs() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_kind text;
    v_key  text;
BEGIN
    SELECT i.kind, i.unique_key INTO v_kind, v_key
      FROM inserted i
     WHERE i.unique_key LIKE 'cron:%'
        OR EXISTS (SELECT 1 FROM queue.internal_kinds k WHERE k.kind = i.kind)
     LIMIT 1;
    IF FOUND THEN
        PERFORM queue.check_producer(current_user, v_kind, v_key);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_check_inserted_jobs
    AFTER INSERT ON queue.jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION queue.check_inserted_jobs();

GRANT SELECT ON queue.internal_kinds TO jobd_enqueuer, jobd_daemon, jobd_reporting;
GRANT INSERT ON queue.internal_kinds TO jobd_daemon;
GRANT EXECUTE ON FUNCTION queue.may_enqueue_internal(name), queue.check_producer(name, text, text)
    TO jobd_enqueuer, jobd_daemon;

-- queue.enqueue runs as the owner (0003), so the row trigger sees the owner there;
-- it checks its caller itself. Inside a SECURITY DEFINER function the caller's login
-- is session_user: a session that SET ROLE down from a more privileged login is
-- judged by that login, which could RESET ROLE and insert directly anyway.
CREATE OR REPLACE FUNCTION queue.enqueue(
    p_kind         text,
    p_payload      jsonb       DEFAULT '{}'::jsonb,
    p_priority     text        DEFAULT 'normal',
    p_run_at       timestamptz DEFAULT now(),
    p_max_attempts integer     DEFAULT 20,
    p_unique_key   text        DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM queue.check_producer(session_user, p_kind, p_unique_key);
    LOOP
        INSERT INTO queue.jobs (kind, payload, priority, run_at, max_attempts, unique_key)
        VALUES (p_kind, coalesce(p_payload, '{}'::jsonb), coalesce(p_priority, 'normal'),
                coalesce(p_run_at, now()), coalesce(p_max_attempts, 20), p_unique_key)
        ON CONFLICT (kind, unique_key)
            WHERE unique_key IS NOT NULL AND state NOT IN ('completed', 'dead', 'cancelled')
            DO NOTHING
        RETURNING id INTO v_id;
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
        SELECT id INTO v_id FROM queue.jobs
         WHERE kind = p_kind AND unique_key = p_unique_key
           AND state NOT IN ('completed', 'dead', 'cancelled');
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
        -- The holder finished between the two statements: try the insert again.
    END LOOP;
END;
$$;

-- 3. The scheduler's statement (Sources/JobdRuntime/Services/Scheduler.swift): claim
-- each (name, slot) and insert its job in one statement; a slot another daemon
-- claimed first inserts nothing. Only `cron:` keys: this is the scheduler's door, not
-- a general insert for the daemon role.
CREATE FUNCTION queue.enqueue_schedule_slots(
    p_names text[], p_slots timestamptz[], p_kinds text[], p_payloads jsonb[], p_unique_keys text[]
) RETURNS TABLE (job_id bigint, job_unique_key text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(p_unique_keys) AS k WHERE k IS NULL OR k NOT LIKE 'cron:%') THEN
        RAISE EXCEPTION 'schedule slot jobs carry cron: unique keys' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH input AS (
        SELECT * FROM unnest(p_names, p_slots, p_kinds, p_payloads, p_unique_keys)
            AS i(name, slot, kind, payload, unique_key)
    ), claimed AS (
        INSERT INTO queue.schedule_slots (name, slot)
        SELECT i.name, i.slot FROM input i
        ON CONFLICT (name, slot) DO NOTHING
        RETURNING name, slot
    )
    INSERT INTO queue.jobs AS j (kind, payload, run_at, unique_key)
    SELECT i.kind, i.payload, i.slot, i.unique_key
      FROM input i JOIN claimed c ON c.name = i.name AND c.slot = i.slot
    ON CONFLICT (kind, unique_key)
        WHERE unique_key IS NOT NULL AND state NOT IN ('completed', 'dead', 'cancelled')
        DO NOTHING
    RETURNING j.id, j.unique_key;
END;
$$;

-- queue.prune's batch: completed and cancelled jobs finished more than
-- p_older_than seconds ago (at least a minute), oldest first, at most p_batch.
CREATE FUNCTION queue.prune_finished(p_older_than float8, p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted integer;
BEGIN
    IF p_older_than IS NULL OR NOT (p_older_than >= 60) OR p_batch IS NULL OR p_batch NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'prune: older_than must be at least 60 seconds and batch 1 to 100000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH doomed AS (
        SELECT id FROM queue.jobs
         WHERE state IN ('completed', 'cancelled')
           AND finished_at < now() - make_interval(secs => least(p_older_than, 1e10))
         ORDER BY finished_at LIMIT p_batch
         FOR UPDATE SKIP LOCKED
    )
    DELETE FROM queue.jobs j USING doomed d WHERE j.id = d.id;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;

REVOKE EXECUTE ON FUNCTION queue.enqueue_schedule_slots(text[], timestamptz[], text[], jsonb[], text[]),
                           queue.prune_finished(float8, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.enqueue_schedule_slots(text[], timestamptz[], text[], jsonb[], text[]),
                          queue.prune_finished(float8, integer) TO jobd_daemon;

-- Reporting reads the queue's bookkeeping but not what producers put in payloads
-- (message bodies, addresses, tokens): every column of queue.jobs and
-- queue.dead_letters except payload.
DO $$
DECLARE
    t text;
    cols text;
BEGIN
    FOREACH t IN ARRAY ARRAY['jobs', 'dead_letters'] LOOP
        EXECUTE format('REVOKE SELECT ON queue.%I FROM jobd_reporting', t);
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = format('queue.%I', t)::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname <> 'payload';
        EXECUTE format('GRANT SELECT (%s) ON queue.%I TO jobd_reporting', cols, t);
    END LOOP;
END;
$$;
