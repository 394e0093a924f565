-- The OLTP tier: workspaces, users, sending accounts, contacts, lists, campaigns and
-- one delivery row per campaign recipient. May live in its own database
-- (JOBD_OLTP_DATABASE_URL), so it references nothing in queue.* or content.*: work
-- for the queue leaves through oltp.outbox, which the daemon relays (see below).
--
-- Every producer-writable value is bounded here, with a CHECK whose name says what.
-- Row-level security by workspace on every workspace table (0005's model):
--   * a role listed in oltp.workspace_roles sees only its workspaces' rows;
--   * any other role sees the workspace its session names with
--     SET jobd.workspace_id = '…' (nothing when unset);
--   * jobd_daemon (and the tables' owner, which RLS does not bind) sees everything.

CREATE SCHEMA IF NOT EXISTS oltp;

CREATE TABLE oltp.workspaces (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workspaces_name_check CHECK (length(name) BETWEEN 1 AND 200)
);

CREATE TABLE oltp.workspace_roles (
    role_name    name   NOT NULL,
    workspace_id bigint NOT NULL REFERENCES oltp.workspaces (id) ON DELETE CASCADE,
    PRIMARY KEY (role_name, workspace_id)
);
ALTER TABLE oltp.workspace_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_mapping ON oltp.workspace_roles FOR SELECT USING (role_name = current_user);
GRANT SELECT ON oltp.workspace_roles TO PUBLIC;

CREATE TABLE oltp.users (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id bigint      NOT NULL REFERENCES oltp.workspaces (id) ON DELETE CASCADE,
    email        text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    role         text        NOT NULL DEFAULT 'member',
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_check CHECK (email ~ '^[^@\s<>]+@[^@\s<>]+$' AND length(email) <= 254),
    CONSTRAINT users_name_check CHECK (length(name) <= 200 AND name !~ '[\r\n]'),
    CONSTRAINT users_role_check CHECK (role IN ('owner', 'admin', 'member'))
);
CREATE UNIQUE INDEX users_email_key ON oltp.users (workspace_id, lower(email));

-- One SMTP relay per account. The relay's password is never stored: secret_ref
-- names where the daemon reads it, `env:NAME` (an environment variable of the
-- daemon) or `file:/absolute/path` (a file it can read, e.g. a systemd credential;
-- one trailing newline is dropped). relay_url carries no password either.
CREATE TABLE oltp.email_accounts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id    bigint      NOT NULL REFERENCES oltp.workspaces (id) ON DELETE CASCADE,
    name            text        NOT NULL,
    from_address    text        NOT NULL,
    from_name       text        NOT NULL DEFAULT '',
    relay_url       text        NOT NULL,
    username        text,
    secret_ref      text,
    starttls        text        NOT NULL DEFAULT 'try',
    -- The https:// page that takes RFC 8058 one-click POSTs; `?token=…` is appended.
    unsubscribe_url text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT email_accounts_id_workspace_key UNIQUE (id, workspace_id),
    CONSTRAINT email_accounts_name_check CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT email_accounts_from_check CHECK (from_address ~ '^[^@\s<>"]+@[^@\s<>"]+$' AND length(from_address) <= 254),
    CONSTRAINT email_accounts_from_name_check CHECK (length(from_name) <= 200 AND from_name !~ '[\r\n"\\]'),
    CONSTRAINT email_accounts_relay_check CHECK (
        relay_url ~ '^smtps?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?/?$' AND length(relay_url) <= 300),
    CONSTRAINT email_accounts_username_check CHECK (username IS NULL OR (length(username) BETWEEN 1 AND 200 AND username !~ '[\r\n]')),
    CONSTRAINT email_accounts_secret_ref_check CHECK (
        secret_ref IS NULL OR secret_ref ~ '^env:[A-Za-z_][A-Za-z0-9_]{0,127}$' OR secret_ref ~ '^file:/[^\r\n]{1,1000}$'),
    CONSTRAINT email_accounts_starttls_check CHECK (starttls IN ('off', 'try', 'require')),
    CONSTRAINT email_accounts_unsubscribe_check CHECK (
        unsubscribe_url ~ '^https://[^\s<>"?#]+$' AND length(unsubscribe_url) <= 500)
);

-- Addresses are unique per workspace regardless of case (lookups use lower()).
CREATE TABLE oltp.contacts (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id bigint      NOT NULL REFERENCES oltp.workspaces (id) ON DELETE CASCADE,
    address      text        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    fields       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status       text        NOT NULL DEFAULT 'subscribed',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contacts_id_workspace_key UNIQUE (id, workspace_id),
    CONSTRAINT contacts_address_check CHECK (address ~ '^[^@\s<>"]+@[^@\s<>"]+$' AND length(address) <= 254),
    CONSTRAINT contacts_name_check CHECK (length(name) <= 200 AND name !~ '[\r\n]'),
    CONSTRAINT contacts_fields_check CHECK (jsonb_typeof(fields) = 'object' AND octet_length(fields::text) <= 16384),
    CONSTRAINT contacts_status_check CHECK (status IN ('subscribed', 'unsubscribed', 'bounced'))
);
CREATE UNIQUE INDEX contacts_address_key ON oltp.contacts (workspace_id, lower(address));

CREATE TABLE oltp.lists (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id bigint      NOT NULL REFERENCES oltp.workspaces (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lists_id_workspace_key UNIQUE (id, workspace_id),
    CONSTRAINT lists_name_check CHECK (length(name) BETWEEN 1 AND 200)
);

-- A list and its contacts are in one workspace (the composite keys make sure).
-- The primary key is the fan-out's keyset: (list_id, contact_id > cursor).
CREATE TABLE oltp.list_members (
    list_id      bigint      NOT NULL,
    contact_id   bigint      NOT NULL,
    workspace_id bigint      NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, contact_id),
    FOREIGN KEY (list_id, workspace_id) REFERENCES oltp.lists (id, workspace_id) ON DELETE CASCADE,
    FOREIGN KEY (contact_id, workspace_id) REFERENCES oltp.contacts (id, workspace_id) ON DELETE CASCADE
);
CREATE INDEX list_members_contact_idx ON oltp.list_members (contact_id);

-- A campaign's life:
--   draft -> scheduled -> sending -> sent
--   scheduled | sending -> paused -> scheduled (resume)
--   draft | scheduled | sending | paused -> cancelled
-- Setting `scheduled` (from draft or paused) enqueues campaign.prepare for send_at
-- in the same transaction (trigger below). The daemon moves scheduled -> sending
-- when it starts and sending -> sent when no delivery is open. What is sent
-- (account, list, subject, templates) is fixed once the campaign leaves draft.
CREATE TABLE oltp.campaigns (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id  bigint      NOT NULL REFERENCES oltp.workspaces (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    account_id    bigint      NOT NULL,
    list_id       bigint      NOT NULL,
    subject       text        NOT NULL,
    html_template text,
    text_template text,
    status        text        NOT NULL DEFAULT 'draft',
    send_at       timestamptz,
    -- Recipients per delivery job.
    batch_size    integer     NOT NULL DEFAULT 100,
    -- Fan-out progress: the last list member turned into deliveries; done when the
    -- list is exhausted.
    fanout_cursor bigint      NOT NULL DEFAULT 0,
    fanout_done   boolean     NOT NULL DEFAULT false,
    -- content.messages.external_id of the stored template, once stored.
    content_ref   text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    FOREIGN KEY (account_id, workspace_id) REFERENCES oltp.email_accounts (id, workspace_id),
    FOREIGN KEY (list_id, workspace_id) REFERENCES oltp.lists (id, workspace_id),
    CONSTRAINT campaigns_name_check CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT campaigns_subject_check CHECK (length(subject) <= 998 AND subject !~ '[\r\n]'),
    CONSTRAINT campaigns_body_check CHECK (html_template IS NOT NULL OR text_template IS NOT NULL),
    CONSTRAINT campaigns_html_size_check CHECK (octet_length(html_template) <= 1048576),
    CONSTRAINT campaigns_text_size_check CHECK (octet_length(text_template) <= 1048576),
    CONSTRAINT campaigns_status_check CHECK (
        status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')),
    CONSTRAINT campaigns_batch_size_check CHECK (batch_size BETWEEN 1 AND 1000)
);
CREATE INDEX campaigns_workspace_idx ON oltp.campaigns (workspace_id, created_at);

-- One row per campaign recipient, written by the fan-out in the same statement
-- that advances the cursor, so a recipient is enqueued once whatever crashes.
--   pending -> sending -> sent       (the relay accepted: never sent again)
--                      -> deferred   (4xx; tried again at next_attempt_at)
--                      -> bounced    (5xx; the contact becomes bounced)
--                      -> failed     (deferred too often, or no relay to talk to)
--   pending | deferred -> suppressed (the contact is not subscribed)
--   pending | deferred -> cancelled  (the campaign was cancelled)
-- A sender owns a `sending` row through claim_token until sending_until.
CREATE TABLE oltp.deliveries (
    campaign_id     bigint      NOT NULL REFERENCES oltp.campaigns (id) ON DELETE CASCADE,
    contact_id      bigint      NOT NULL,
    workspace_id    bigint      NOT NULL,
    state           text        NOT NULL DEFAULT 'pending',
    tries           integer     NOT NULL DEFAULT 0,
    claim_token     text,
    sending_until   timestamptz,
    next_attempt_at timestamptz,
    last_code       integer,
    last_reply      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    PRIMARY KEY (campaign_id, contact_id),
    FOREIGN KEY (contact_id, workspace_id) REFERENCES oltp.contacts (id, workspace_id) ON DELETE CASCADE,
    CONSTRAINT deliveries_state_check CHECK (
        state IN ('pending', 'sending', 'sent', 'deferred', 'bounced', 'failed', 'suppressed', 'cancelled')),
    CONSTRAINT deliveries_claim_check CHECK (
        state <> 'sending' OR (claim_token IS NOT NULL AND sending_until IS NOT NULL)),
    CONSTRAINT deliveries_sent_check CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
    CONSTRAINT deliveries_reply_check CHECK (octet_length(last_reply) <= 1024)
) WITH (fillfactor = 80);
-- "Is anything of this campaign still open?" — small, rows leave it as they finish.
CREATE INDEX deliveries_open_idx ON oltp.deliveries (campaign_id)
    WHERE state IN ('pending', 'sending', 'deferred');
CREATE INDEX deliveries_contact_idx ON oltp.deliveries (contact_id);

-- Jobs for the queue, written in the OLTP transaction that causes them and moved
-- into queue.jobs by the daemon's relay (insert with unique_key, then delete here).
-- The queue may be another database, so a trigger cannot insert there; the relay
-- is idempotent because the job's unique_key guards while the job is unfinished
-- and every campaign job is itself idempotent.
CREATE TABLE oltp.outbox (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text        NOT NULL,
    payload    jsonb       NOT NULL,
    unique_key text        NOT NULL,
    run_at     timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT outbox_kind_check CHECK (kind IN ('campaign.prepare', 'campaign.deliver')),
    CONSTRAINT outbox_unique_key_check CHECK (length(unique_key) BETWEEN 1 AND 512)
);

CREATE FUNCTION oltp.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('jobd_oltp_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON oltp.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION oltp.notify_outbox();

-- The lifecycle, enforced for every writer (the daemon included).
-- SECURITY DEFINER: a workspace role schedules its campaign without any right on
-- the outbox.
CREATE FUNCTION oltp.campaign_transition() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('draft', 'scheduled') THEN
            RAISE EXCEPTION 'a new campaign is draft or scheduled, not %', NEW.status USING ERRCODE = 'check_violation';
        END IF;
    ELSE
        IF NEW.status <> OLD.status AND NOT (
            (OLD.status = 'draft'     AND NEW.status IN ('scheduled', 'cancelled')) OR
            (OLD.status = 'scheduled' AND NEW.status IN ('sending', 'paused', 'cancelled')) OR
            (OLD.status = 'sending'   AND NEW.status IN ('sent', 'paused', 'cancelled')) OR
            (OLD.status = 'paused'    AND NEW.status IN ('scheduled', 'cancelled'))
        ) THEN
            RAISE EXCEPTION 'campaign % cannot go from % to %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
        IF OLD.status <> 'draft' AND (
            NEW.account_id, NEW.list_id, NEW.subject, NEW.html_template, NEW.text_template, NEW.batch_size, NEW.workspace_id
        ) IS DISTINCT FROM (
            OLD.account_id, OLD.list_id, OLD.subject, OLD.html_template, OLD.text_template, OLD.batch_size, OLD.workspace_id
        ) THEN
            RAISE EXCEPTION 'campaign % is %: only a draft can change what it sends', OLD.id, OLD.status
                USING ERRCODE = 'check_violation';
        END IF;
        NEW.updated_at := now();
    END IF;
    -- Scheduling (first time or resume) enqueues the preparation, in this transaction.
    IF NEW.status = 'scheduled' AND (TG_OP = 'INSERT' OR OLD.status <> 'scheduled') THEN
        INSERT INTO oltp.outbox (kind, payload, unique_key, run_at)
        VALUES ('campaign.prepare', jsonb_build_object('campaign_id', NEW.id),
                'campaign:' || NEW.id || ':prepare', greatest(coalesce(NEW.send_at, now()), now()));
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER campaigns_transition BEFORE INSERT OR UPDATE ON oltp.campaigns
    FOR EACH ROW EXECUTE FUNCTION oltp.campaign_transition();

-- Unsubscribe tokens: `<contact_id>.<campaign_id>.<hex HMAC-SHA256>` over
-- 'unsubscribe:<contact_id>:<campaign_id>' with a key generated here (from two
-- gen_random_uuid(), 244 random bits) and readable by the table owner only. The
-- daemon asks oltp.unsubscribe_token() for each recipient's token; a web page or
-- mail handler passes what it received to oltp.unsubscribe(), which needs no other
-- rights. Rotating: UPDATE oltp.unsubscribe_key (outstanding links stop working).
CREATE TABLE oltp.unsubscribe_key (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    key      bytea   NOT NULL CHECK (octet_length(key) >= 16)
);
INSERT INTO oltp.unsubscribe_key (key)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
REVOKE ALL ON oltp.unsubscribe_key FROM PUBLIC;

-- RFC 2104 HMAC with SHA-256, in SQL so that no extension is needed.
CREATE FUNCTION oltp.hmac_sha256(key bytea, message bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    k bytea := key;
    inner_pad bytea;
    outer_pad bytea;
BEGIN
    IF octet_length(k) > 64 THEN k := sha256(k); END IF;
    k := k || decode(repeat('00', 64 - octet_length(k)), 'hex');
    inner_pad := k;
    outer_pad := k;
    FOR i IN 0..63 LOOP
        inner_pad := set_byte(inner_pad, i, get_byte(k, i) # 54);  -- 0x36
        outer_pad := set_byte(outer_pad, i, get_byte(k, i) # 92);  -- 0x5c
    END LOOP;
    RETURN sha256(outer_pad || sha256(inner_pad || message));
END;
$$;

CREATE FUNCTION oltp.unsubscribe_token(p_contact_id bigint, p_campaign_id bigint) RETURNS text
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT p_contact_id || '.' || p_campaign_id || '.' || encode(oltp.hmac_sha256(
        k.key, convert_to('unsubscribe:' || p_contact_id || ':' || p_campaign_id, 'UTF8')), 'hex')
      FROM oltp.unsubscribe_key k
$$;
REVOKE EXECUTE ON FUNCTION oltp.unsubscribe_token(bigint, bigint) FROM PUBLIC;

-- True when the token is genuine (the contact is then unsubscribed, unless it
-- bounced); false for anything else, without saying why.
CREATE FUNCTION oltp.unsubscribe(p_token text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[];
    contact bigint;
    campaign bigint;
BEGIN
    IF p_token IS NULL OR p_token !~ '^[0-9]{1,19}\.[0-9]{1,19}\.[0-9a-f]{64}$' THEN
        RETURN false;
    END IF;
    parts := string_to_array(p_token, '.');
    BEGIN
        contact := parts[1]::bigint;
        campaign := parts[2]::bigint;
    EXCEPTION WHEN numeric_value_out_of_range THEN
        RETURN false;
    END;
    IF oltp.unsubscribe_token(contact, campaign) IS DISTINCT FROM p_token THEN
        RETURN false;
    END IF;
    UPDATE oltp.contacts SET status = 'unsubscribed', updated_at = now()
     WHERE id = contact AND status = 'subscribed';
    RETURN EXISTS (SELECT 1 FROM oltp.contacts WHERE id = contact);
END;
$$;
GRANT EXECUTE ON FUNCTION oltp.unsubscribe(text) TO PUBLIC;

-- Row-level security by workspace.
DO $$
DECLARE
    t text;
    key text;
BEGIN
    FOREACH t IN ARRAY ARRAY['workspaces', 'users', 'email_accounts', 'contacts', 'lists', 'list_members',
                             'campaigns', 'deliveries'] LOOP
        key := CASE WHEN t = 'workspaces' THEN 'id' ELSE 'workspace_id' END;
        EXECUTE format('ALTER TABLE oltp.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY workspace_by_setting ON oltp.%I
            USING (%I::text = current_setting('jobd.workspace_id', true))
            WITH CHECK (%I::text = current_setting('jobd.workspace_id', true))$p$, t, key, key);
        EXECUTE format($p$CREATE POLICY workspace_by_role ON oltp.%I
            USING (%I IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user))
            WITH CHECK (%I IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user))$p$,
            t, key, key);
        -- Restrictive: a mapped role cannot widen its view by setting jobd.workspace_id.
        EXECUTE format($p$CREATE POLICY mapped_roles_stay_home ON oltp.%I AS RESTRICTIVE
            USING (NOT EXISTS (SELECT 1 FROM oltp.workspace_roles r WHERE r.role_name = current_user)
                   OR %I IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user))
            WITH CHECK (NOT EXISTS (SELECT 1 FROM oltp.workspace_roles r WHERE r.role_name = current_user)
                   OR %I IN (SELECT r.workspace_id FROM oltp.workspace_roles r WHERE r.role_name = current_user))$p$,
            t, key, key);
    END LOOP;

    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        GRANT USAGE ON SCHEMA oltp TO jobd_daemon;
        GRANT SELECT ON ALL TABLES IN SCHEMA oltp TO jobd_daemon;
        GRANT UPDATE ON oltp.campaigns, oltp.contacts TO jobd_daemon;
        GRANT INSERT, UPDATE ON oltp.deliveries TO jobd_daemon;
        GRANT INSERT, DELETE ON oltp.outbox TO jobd_daemon;
        REVOKE SELECT ON oltp.unsubscribe_key FROM jobd_daemon;
        GRANT EXECUTE ON FUNCTION oltp.unsubscribe_token(bigint, bigint) TO jobd_daemon;
        FOREACH t IN ARRAY ARRAY['workspaces', 'users', 'email_accounts', 'contacts', 'lists', 'list_members',
                                 'campaigns', 'deliveries'] LOOP
            EXECUTE format('CREATE POLICY daemon_all ON oltp.%I TO jobd_daemon USING (true) WITH CHECK (true)', t);
        END LOOP;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_reporting') THEN
        GRANT USAGE ON SCHEMA oltp TO jobd_reporting;
        GRANT SELECT ON oltp.campaigns, oltp.deliveries TO jobd_reporting;
        CREATE POLICY reporting_all ON oltp.campaigns FOR SELECT TO jobd_reporting USING (true);
        CREATE POLICY reporting_all ON oltp.deliveries FOR SELECT TO jobd_reporting USING (true);
    END IF;
END;
$$;
