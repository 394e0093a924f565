-- Campaign attachments: files a draft campaign sends to every recipient.
--
-- A producer inserts them with plain SQL while the campaign is a draft; once it
-- leaves draft they are fixed, like its templates. The preparation stores them once
-- in the content tier with the campaign's content (zlib-compressed, de-duplicated
-- per tenant, each checked by SHA-256 when read), and every delivery batch reads
-- them from there once. The content tier may be another database, so nothing here
-- can reference it by foreign key: a batch that finds the stored campaign without
-- its attachments (purged or archived by retention) pauses the campaign with a
-- pause_reason saying so and sends nothing without them.
--
-- Bounds at the door (the rendered message must stay under common relay limits,
-- Postfix's default being 10,240,000 bytes after base64):
--   * at most 10 attachments (position 1–10, unique per campaign);
--   * 1 to 5,000,000 bytes each, 7,000,000 bytes in all per campaign;
--   * filename 1–255 bytes, not only dots and spaces, without control characters
--     (C0, DEL, C1), / or \, line or paragraph separators, or bidirectional
--     overrides (which make "invoice<RLO>fdp.exe" read as "invoiceexe.pdf");
--   * content_type a bare media type (RFC 6838 names, no parameters).

-- Lets an attachment reference (campaign, workspace), so it can never sit in
-- another workspace than its campaign: row-level security keys on workspace_id.
ALTER TABLE oltp.campaigns ADD CONSTRAINT campaigns_id_workspace_key UNIQUE (id, workspace_id);

CREATE TABLE oltp.campaign_attachments (
    campaign_id  bigint      NOT NULL,
    workspace_id bigint      NOT NULL,
    -- The order in the message, 1 first.
    position     integer     NOT NULL,
    filename     text        NOT NULL,
    content_type text        NOT NULL,
    data         bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, position),
    FOREIGN KEY (campaign_id, workspace_id) REFERENCES oltp.campaigns (id, workspace_id) ON DELETE CASCADE,
    CONSTRAINT campaign_attachments_position_check CHECK (position BETWEEN 1 AND 10),
    CONSTRAINT campaign_attachments_size_check CHECK (octet_length(data) BETWEEN 1 AND 5000000),
    CONSTRAINT campaign_attachments_filename_check CHECK (
        octet_length(filename) BETWEEN 1 AND 255
        AND filename !~ '^[ .]*$'
        AND filename !~ '[\x01-\x1f\x7f-\x9f/\\\u2028\u2029\u202a-\u202e\u2066-\u2069]'),
    CONSTRAINT campaign_attachments_content_type_check CHECK (
        content_type ~ '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$')
);

-- Only a draft's attachments change, and their total stays bounded. The campaign
-- row is locked first, so scheduling and a concurrent insert are serialised: an
-- insert that commits after the campaign left draft is refused. A row deleted with
-- its campaign (the cascade) finds no campaign and passes.
-- SECURITY DEFINER: the lock needs no UPDATE right on campaigns for the writer.
CREATE FUNCTION oltp.campaign_attachments_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    c_status text;
    c_id bigint;
    total bigint;
BEGIN
    FOR c_id IN SELECT DISTINCT x FROM unnest(ARRAY[
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.campaign_id END,
            CASE WHEN TG_OP <> 'DELETE' THEN NEW.campaign_id END]) AS t(x) WHERE x IS NOT NULL ORDER BY x LOOP
        SELECT status INTO c_status FROM oltp.campaigns WHERE id = c_id FOR UPDATE;
        IF FOUND AND c_status <> 'draft' THEN
            RAISE EXCEPTION 'campaign % is %: only a draft can change its attachments', c_id, c_status
                USING ERRCODE = 'check_violation', CONSTRAINT = 'campaign_attachments_draft_check';
        END IF;
    END LOOP;
    IF TG_OP <> 'DELETE' THEN
        SELECT coalesce(sum(octet_length(a.data)), 0) INTO total
          FROM oltp.campaign_attachments a
         WHERE a.campaign_id = NEW.campaign_id
           AND (TG_OP = 'INSERT' OR NOT (a.campaign_id = OLD.campaign_id AND a.position = OLD.position));
        IF total + octet_length(NEW.data) > 7000000 THEN
            RAISE EXCEPTION 'campaign % attachments would be % bytes; at most 7000000 in all',
                NEW.campaign_id, total + octet_length(NEW.data)
                USING ERRCODE = 'check_violation', CONSTRAINT = 'campaign_attachments_total_check';
        END IF;
        RETURN NEW;
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER campaign_attachments_guard BEFORE INSERT OR UPDATE OR DELETE ON oltp.campaign_attachments
    FOR EACH ROW EXECUTE FUNCTION oltp.campaign_attachments_guard();

-- Row-level security by workspace, as for the other tables.
ALTER TABLE oltp.campaign_attachments ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_by_setting ON oltp.campaign_attachments
    USING (workspace_id::text = current_setting('jobd.workspace_id', true))
    WITH CHECK (workspace_id::text = current_setting('jobd.workspace_id', true));
CREATE POLICY workspace_by_role ON oltp.campaign_attachments
    USING (workspace_id IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user))
    WITH CHECK (workspace_id IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user));
-- Restrictive: a mapped role cannot widen its view by setting jobd.workspace_id.
CREATE POLICY mapped_roles_stay_home ON oltp.campaign_attachments AS RESTRICTIVE
    USING (NOT EXISTS (SELECT 1 FROM oltp.workspace_roles r WHERE r.role_name = current_user)
           OR workspace_id IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user))
    WITH CHECK (NOT EXISTS (SELECT 1 FROM oltp.workspace_roles r WHERE r.role_name = current_user)
           OR workspace_id IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user));

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        -- The daemon reads attachments at preparation; it never writes them.
        GRANT SELECT ON oltp.campaign_attachments TO jobd_daemon;
        CREATE POLICY daemon_all ON oltp.campaign_attachments TO jobd_daemon USING (true) WITH CHECK (true);
    END IF;
END;
$$;
