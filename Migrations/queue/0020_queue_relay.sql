-- 0020: the daemon relays work another tier asked for (the OLTP tier's outbox) into
-- the queue. jobd_daemon has no INSERT on queue.jobs; this function, run as the
-- schema owner, inserts only internal kinds (queue.internal_kinds) under a unique
-- key, so a relayed row cannot become a producer's job or squat a schedule slot,
-- and relaying the same row twice (a crash between insert and outbox delete)
-- enqueues it once while the first job is unfinished.
CREATE FUNCTION queue.enqueue_relayed(
    p_kinds text[], p_payloads jsonb[], p_unique_keys text[], p_run_ats timestamptz[]
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_inserted integer;
BEGIN
    IF EXISTS (SELECT 1 FROM unnest(p_kinds, p_unique_keys) AS i(kind, unique_key)
                WHERE i.unique_key IS NULL OR i.unique_key LIKE 'cron:%'
                   OR NOT EXISTS (SELECT 1 FROM queue.internal_kinds k WHERE k.kind = i.kind)) THEN
        RAISE EXCEPTION 'relayed jobs are internal kinds with a unique key outside the cron: namespace'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO queue.jobs (kind, payload, unique_key, run_at)
    SELECT i.kind, i.payload, i.unique_key, coalesce(i.run_at, now())
      FROM unnest(p_kinds, p_payloads, p_unique_keys, p_run_ats) AS i(kind, payload, unique_key, run_at)
    ON CONFLICT (kind, unique_key)
        WHERE unique_key IS NOT NULL AND state NOT IN ('completed', 'dead', 'cancelled')
        DO NOTHING;
    GET DIAGNOSTICS v_inserted = ROW_COUNT;
    RETURN v_inserted;
END;
$$;
REVOKE EXECUTE ON FUNCTION queue.enqueue_relayed(text[], jsonb[], text[], timestamptz[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION queue.enqueue_relayed(text[], jsonb[], text[], timestamptz[]) TO jobd_daemon;

-- The campaign kinds are enqueued only by the relay.
INSERT INTO queue.internal_kinds (kind) VALUES ('campaign.prepare'), ('campaign.deliver')
ON CONFLICT DO NOTHING;
