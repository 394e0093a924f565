-- 0017: retention of notifications (`notifications.trim`). A finished notification
-- (sent or failed) keeps its status row — key, channel, recipient, status, times —
-- while its body and the excerpts of its tries are dropped after one window
-- (archived_at is set), and the row with its tries is deleted after a longer one.

ALTER TABLE notifications.notifications ADD COLUMN archived_at timestamptz;

-- updated_at of a finished row is when it finished. One index per step, so neither
-- walks past the rows the other has handled.
CREATE INDEX notifications_unarchived_idx ON notifications.notifications (updated_at)
    WHERE status IN ('sent', 'failed') AND archived_at IS NULL;
CREATE INDEX notifications_finished_idx ON notifications.notifications (updated_at)
    WHERE status IN ('sent', 'failed');

-- Deletes at most p_batch finished notifications (their tries cascade) that
-- finished longer ago than the window. Owned by the schema owner so jobd_daemon
-- needs no DELETE on the tier: it can remove only finished rows past a day.
CREATE FUNCTION notifications.trim_finished(p_older_than_seconds float8, p_batch integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_count integer;
BEGIN
    IF p_older_than_seconds IS NULL OR NOT (p_older_than_seconds BETWEEN 86400 AND 3153600000) THEN
        RAISE EXCEPTION 'notifications.trim_finished: the window must be between 1 day and 100 years, got % s',
            p_older_than_seconds USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_batch IS NULL OR NOT (p_batch BETWEEN 1 AND 100000) THEN
        RAISE EXCEPTION 'notifications.trim_finished: the batch must be between 1 and 100000, got %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH doomed AS (
        SELECT id FROM notifications.notifications
         WHERE status IN ('sent', 'failed')
           AND updated_at < now() - make_interval(secs => p_older_than_seconds)
         ORDER BY updated_at
         LIMIT p_batch
         FOR UPDATE SKIP LOCKED
    )
    DELETE FROM notifications.notifications n USING doomed d WHERE n.id = d.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;

REVOKE EXECUTE ON FUNCTION notifications.trim_finished(float8, integer) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        GRANT EXECUTE ON FUNCTION notifications.trim_finished(float8, integer) TO jobd_daemon;
    END IF;
END;
$$;
