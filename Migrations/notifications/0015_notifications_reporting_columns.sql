-- 0015: reporting reads the notifications' status and timing, not their text.
--
-- jobd_reporting may read every column of notifications.notifications but the
-- recipient, subject, body and claim token, and every column of
-- notifications.attempts but the excerpt (the start of the receiver's answer, which
-- may echo the body). `jobd report` and analytics.rollup read channel, status,
-- created_at, outcome, started_at and duration_ms only. Columns added later are not
-- granted until a migration says so.
DO $$
DECLARE
    t record;
    cols text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_reporting') THEN
        RETURN;
    END IF;
    FOR t IN SELECT * FROM (VALUES
        ('notifications', ARRAY['recipient', 'subject', 'body', 'claim_token']),
        ('attempts', ARRAY['excerpt'])) AS v(name, hidden)
    LOOP
        EXECUTE format('REVOKE SELECT ON notifications.%I FROM jobd_reporting', t.name);
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = format('notifications.%I', t.name)::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND NOT (a.attname::text = ANY (t.hidden));
        EXECUTE format('GRANT SELECT (%s) ON notifications.%I TO jobd_reporting', cols, t.name);
    END LOOP;
END;
$$;
