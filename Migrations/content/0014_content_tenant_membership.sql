-- 0014: tenant isolation by role membership, and reporting without message text.
--
-- content.tenant_roles maps roles to tenants. Until now a mapping applied only to a
-- session whose current_user was the mapped role itself, so the usual set-up (a
-- NOLOGIN group role per tenant, login roles granted it) was not mapped at all, and
-- a login in the group could widen its view with SET jobd.tenant_id. From here a
-- mapping applies to every role that inherits the mapped role (pg_has_role …
-- 'USAGE'): such a role sees its tenants' rows only, whatever jobd.tenant_id says.
-- A NOINHERIT member is mapped once it SET ROLEs to the group.
--
-- content.tenant_roles itself stays readable by every role but shows each only the
-- mappings that apply to it; the tables' policies read it as the querying role, so
-- "my tenants" is exactly the rows it can see there.

DROP POLICY own_mapping ON content.tenant_roles;
CREATE POLICY own_mapping ON content.tenant_roles FOR SELECT USING (
    EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
             WHERE r.rolname = role_name AND pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')));

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['messages', 'bodies', 'attachment_blobs', 'message_attachments'] LOOP
        EXECUTE format('DROP POLICY tenant_by_role ON content.%I', t);
        EXECUTE format('DROP POLICY mapped_roles_stay_home ON content.%I', t);
        EXECUTE format($p$CREATE POLICY tenant_by_role ON content.%I
            USING (tenant_id IN (SELECT r.tenant_id FROM content.tenant_roles r))
            WITH CHECK (tenant_id IN (SELECT r.tenant_id FROM content.tenant_roles r))$p$, t);
        -- Restrictive: a mapped role cannot widen its view by setting jobd.tenant_id.
        EXECUTE format($p$CREATE POLICY mapped_roles_stay_home ON content.%I AS RESTRICTIVE
            USING (NOT EXISTS (SELECT 1 FROM content.tenant_roles r)
                   OR tenant_id IN (SELECT r.tenant_id FROM content.tenant_roles r))
            WITH CHECK (NOT EXISTS (SELECT 1 FROM content.tenant_roles r)
                   OR tenant_id IN (SELECT r.tenant_id FROM content.tenant_roles r))$p$, t);
    END LOOP;
END;
$$;

-- Reporting reads sizes and counts (what `jobd report` and analytics.rollup need),
-- never what a message says or who it was for: every column but the addresses,
-- subject, headers, extracted text and search vector of content.messages, and but
-- the file name of content.message_attachments. Columns added later are not
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
        ('messages', ARRAY['from_address', 'to_addresses', 'subject', 'headers', 'index_text', 'search_vector']),
        ('message_attachments', ARRAY['filename'])) AS v(name, hidden)
    LOOP
        EXECUTE format('REVOKE SELECT ON content.%I FROM jobd_reporting', t.name);
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = format('content.%I', t.name)::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND NOT (a.attname::text = ANY (t.hidden));
        EXECUTE format('GRANT SELECT (%s) ON content.%I TO jobd_reporting', cols, t.name);
    END LOOP;
END;
$$;
