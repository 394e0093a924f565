-- 0010: the insert trigger sends NOTIFY only when some daemon's promoter is idle and
-- waiting for one (issue 6).
--
-- PostgreSQL serialises the commits of all transactions that sent a NOTIFY (a
-- database-wide lock taken in PreCommit_Notify and held until the commit record is
-- flushed), so concurrent single-row inserters lost group commit: 31.5% of their
-- throughput went to the trigger's NOTIFY. While every promoter is busy it finds new
-- jobs by itself (it promotes again after every pass, pop and short timeout), so the
-- NOTIFY is only needed when one of them is about to sleep.
--
-- The protocol (docs/architecture.md, "Wake-up protocol"), keyed by the advisory
-- lock pair (1785684580, 1) — 1785684580 is 'jobd' in ASCII, 1 the wake-up lock:
--
--   inserter (this trigger), only if the statement inserted a due row:
--     1. pg_advisory_xact_lock_shared(1785684580, 1)        held until its commit
--     2. EXISTS (idle listener)   — a new statement, so a snapshot taken after 1
--     3. NOTIFY only if 2 is true
--   promoter, each time before it sleeps waiting for a NOTIFY, one statement:
--     upsert its row idle = true; pg_try_advisory_xact_lock(1785684580, 1)
--     then (a new statement) one more promotion pass.
--     Lock taken: every inserter that read "busy" has committed (the pass sees its
--     rows) or will block on step 1 until the idle row is committed and then read it
--     and notify. Lock not taken: some inserter that read "busy" is still open, so
--     the promoter re-checks after a short backoff instead of sleeping on NOTIFY.
--
-- The promoter marks its row busy inside its promote statement, whenever it works.

-- One row per daemon (queue.daemons.id). UNLOGGED: flipping a flag writes no WAL.
-- Crash recovery empties it, which is safe: a promoter upserts its row every time it
-- goes idle, and after a server restart every daemon reconnects and passes again.
CREATE UNLOGGED TABLE queue.listeners (
    daemon_id  text        PRIMARY KEY,
    idle       boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION queue.notify_jobs_inserted() RETURNS trigger
LANGUAGE plpgsql
-- As the owner, so any role that may INSERT into queue.jobs (jobd_enqueuer, or an
-- application's own role) may read queue.listeners here without a grant of its own;
-- search_path is pinned and every name is qualified so the inserter's schemas
-- cannot shadow anything called here.
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One check per statement, not per row: a bulk insert costs one NOTIFY at most.
    IF NOT EXISTS (SELECT 1 FROM inserted WHERE run_at <= pg_catalog.now()) THEN
        RETURN NULL;
    END IF;
    -- REPEATABLE READ and SERIALIZABLE read with the transaction's first snapshot,
    -- which may predate a promoter's idle row: such an inserter cannot trust what it
    -- reads, so it notifies as before.
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM pg_catalog.pg_notify('jobd_jobs', '');
        RETURN NULL;
    END IF;
    -- Shared, so inserters never wait for each other; a promoter's try-lock fails
    -- while any inserter that may have read "busy" is still uncommitted. Held to
    -- the end of the transaction.
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(1785684580, 1);
    -- A new statement with a snapshot taken after the lock: a promoter that went
    -- idle before the lock was granted is seen as idle. Reads only: a row lock held
    -- by an inserter until its commit would stall a promoter behind a long
    -- transaction.
    IF EXISTS (SELECT 1 FROM queue.listeners WHERE idle) THEN
        PERFORM pg_catalog.pg_notify('jobd_jobs', '');
    END IF;
    RETURN NULL;
END;
$$;

-- The daemon's promoter writes its own row; maintenance reaps crashed daemons' rows.
GRANT SELECT, INSERT, UPDATE, DELETE ON queue.listeners TO jobd_daemon;
GRANT SELECT ON queue.listeners TO jobd_reporting;
