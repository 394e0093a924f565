-- 0005: tenant isolation in the content tier, by row-level security keyed on
-- tenant_id. Three kinds of reader:
--   * a tenant role (any role listed in content.tenant_roles) sees only its own
--     tenants' rows, whatever it sets jobd.tenant_id to;
--   * any other role given SELECT sees only the tenant its session names with
--     SET jobd.tenant_id = '…' (nothing when unset): for an application that
--     serves many tenants through one role;
--   * the daemon (jobd_daemon, or the owner of these tables) sees everything: it
--     writes, indexes and expires every tenant's content.
-- Superusers and the tables' owner bypass row-level security (not FORCEd), so the
-- migrating role keeps working as before.

CREATE TABLE content.tenant_roles (
    role_name name NOT NULL,
    tenant_id text NOT NULL,
    PRIMARY KEY (role_name, tenant_id)
);
-- Every role may look up its own mapping (the policies below do, as that role), and
-- only its own.
ALTER TABLE content.tenant_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_mapping ON content.tenant_roles FOR SELECT USING (role_name = current_user);
GRANT SELECT ON content.tenant_roles TO PUBLIC;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['messages', 'bodies', 'attachment_blobs', 'message_attachments'] LOOP
        EXECUTE format('ALTER TABLE content.%I ENABLE ROW LEVEL SECURITY', t);
        -- A session that names its tenant.
        EXECUTE format($p$CREATE POLICY tenant_by_setting ON content.%I
            USING (tenant_id = current_setting('jobd.tenant_id', true))
            WITH CHECK (tenant_id = current_setting('jobd.tenant_id', true))$p$, t);
        -- A role mapped to tenants.
        EXECUTE format($p$CREATE POLICY tenant_by_role ON content.%I
            USING (tenant_id IN (SELECT r.tenant_id FROM content.tenant_roles r WHERE r.role_name = current_user))
            WITH CHECK (tenant_id IN (SELECT r.tenant_id FROM content.tenant_roles r WHERE r.role_name = current_user))$p$, t);
        -- Restrictive: a mapped role cannot widen its view by setting jobd.tenant_id.
        EXECUTE format($p$CREATE POLICY mapped_roles_stay_home ON content.%I AS RESTRICTIVE
            USING (NOT EXISTS (SELECT 1 FROM content.tenant_roles r WHERE r.role_name = current_user)
                   OR tenant_id IN (SELECT r.tenant_id FROM content.tenant_roles r WHERE r.role_name = current_user))
            WITH CHECK (NOT EXISTS (SELECT 1 FROM content.tenant_roles r WHERE r.role_name = current_user)
                   OR tenant_id IN (SELECT r.tenant_id FROM content.tenant_roles r WHERE r.role_name = current_user))$p$, t);
    END LOOP;

    -- The least-privilege roles, when this cluster has them (another migration
    -- creates them; without them the owner runs the daemon and nothing changes).
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        GRANT USAGE ON SCHEMA content TO jobd_daemon;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA content TO jobd_daemon;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA content TO jobd_daemon;
        FOREACH t IN ARRAY ARRAY['messages', 'bodies', 'attachment_blobs', 'message_attachments'] LOOP
            EXECUTE format('CREATE POLICY daemon_all ON content.%I TO jobd_daemon USING (true) WITH CHECK (true)', t);
        END LOOP;
    END IF;
    -- Reporting reads metadata across tenants (counts, sizes), never bodies or files.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_reporting') THEN
        GRANT USAGE ON SCHEMA content TO jobd_reporting;
        GRANT SELECT ON content.messages, content.message_attachments, content.tenant_retention TO jobd_reporting;
        CREATE POLICY reporting_metadata ON content.messages FOR SELECT TO jobd_reporting USING (true);
        CREATE POLICY reporting_metadata ON content.message_attachments FOR SELECT TO jobd_reporting USING (true);
    END IF;
END;
$$;
