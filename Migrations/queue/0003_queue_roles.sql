-- 0003: least-privilege roles for the queue tier.
--
-- Three NOLOGIN group roles; an operator grants them to login roles:
--   CREATE ROLE orders_app LOGIN PASSWORD '…';  GRANT jobd_enqueuer  TO orders_app;
--   CREATE ROLE jobd       LOGIN PASSWORD '…';  GRANT jobd_daemon    TO jobd;
--   CREATE ROLE metabase   LOGIN PASSWORD '…';  GRANT jobd_reporting TO metabase;
-- jobd_enqueuer  may add jobs (INSERT on the enqueue columns, queue.enqueue()) and
--                read nothing: no payloads, no dead letters, no history.
-- jobd_daemon    runs `jobd run`: moves jobs through their states, writes dead
--                letters, the attempts ledger and its registry row. It cannot
--                insert or delete jobs, rewrite a payload, or change the schema.
-- jobd_reporting reads every queue table and writes nothing.
-- Migrations and the operator commands (`jobd migrate`, `jobd dead-letter
-- retry|purge`) run as the schema owner.
--
-- Roles are cluster-wide while migrations run per database, so creation is
-- conditional and tolerates another database's migration creating them at the
-- same moment. Creating roles needs CREATEROLE; without it, an administrator
-- creates the three roles once and this migration only grants.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['jobd_enqueuer', 'jobd_daemon', 'jobd_reporting'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created concurrently by a migration of another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role % does not exist and % may not create roles', r, current_user
                    USING HINT = format('as an administrator: CREATE ROLE %I NOLOGIN; then migrate again', r);
        END;
    END LOOP;
END;
$$;

REVOKE ALL ON SCHEMA queue FROM PUBLIC;
GRANT USAGE ON SCHEMA queue TO jobd_enqueuer, jobd_daemon, jobd_reporting;

-- Enqueuer: the columns a producer sets, nothing the queue's own bookkeeping owns
-- (state, attempt, leases …), so it cannot enqueue a job as already completed.
GRANT INSERT (kind, payload, priority, run_at, max_attempts, unique_key) ON queue.jobs TO jobd_enqueuer;
-- The payload-size trigger reads the limit as the inserting role.
GRANT SELECT ON queue.limits TO jobd_enqueuer, jobd_daemon, jobd_reporting;
-- queue.enqueue reads queue.jobs to find the holder of a unique key; running it as
-- its owner lets producers use it without any SELECT on the table. search_path is
-- pinned so a producer's own schemas cannot shadow anything it calls.
ALTER FUNCTION queue.enqueue(text, jsonb, text, timestamptz, integer, text)
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION queue.enqueue(text, jsonb, text, timestamptz, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.enqueue(text, jsonb, text, timestamptz, integer, text) TO jobd_enqueuer;

-- Daemon: read jobs, and update only the columns its loops move (never kind,
-- payload, priority, max_attempts or unique_key). A new column a loop writes needs
-- its own GRANT in a later migration (the roles test runs a daemon as this role).
GRANT SELECT ON queue.jobs TO jobd_daemon;
GRANT UPDATE (state, run_at, attempt, rescues, leased_by, lease_expires_at, promoted_at,
              started_at, finished_at, last_error, errors)
    ON queue.jobs TO jobd_daemon;
GRANT SELECT, INSERT, UPDATE ON queue.dead_letters TO jobd_daemon;
GRANT INSERT ON queue.attempts TO jobd_daemon;
-- The rescuer looks for an attempt's 'solo' row (poison-pill counting).
GRANT SELECT (job_id, attempt, event) ON queue.attempts TO jobd_daemon;
GRANT SELECT, INSERT, UPDATE, DELETE ON queue.daemons TO jobd_daemon;
-- `jobd run` refuses to start while migrations are pending: it reads the record.
GRANT USAGE ON SCHEMA jobd TO jobd_daemon;
GRANT SELECT ON jobd.migrations TO jobd_daemon;

-- Reporting: read-only, everything in the queue tier.
GRANT SELECT ON queue.jobs, queue.dead_letters, queue.attempts, queue.daemons TO jobd_reporting;
