-- 0004: the content tier. Whole emails written by content.write: metadata rows apart
-- from body rows, bodies and attachments zlib-compressed into bytea (codec column,
-- raw and stored sizes), attachments de-duplicated by SHA-256 within a tenant, and a
-- full-text search vector filled in batches by the daemon's indexer.
-- May live in its own database (JOBD_CONTENT_DATABASE_URL).

CREATE SCHEMA IF NOT EXISTS content;

CREATE TABLE content.messages (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The producer's idempotency key: a retried write finds its row and stops.
    external_id      text        NOT NULL,
    tenant_id        text        NOT NULL,
    campaign_id      text,
    from_address     text        NOT NULL,
    to_addresses     text[]      NOT NULL,
    subject          text        NOT NULL,
    headers          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- SHA-256 over every field: the same external_id with other content is refused.
    digest           text        NOT NULL,
    attachment_count integer     NOT NULL DEFAULT 0,
    -- Bodies + attachments as received (decoded), and as stored (compressed, before
    -- attachments are de-duplicated); `jobd content stats` sums the tables instead.
    raw_bytes        bigint      NOT NULL,
    stored_bytes     bigint      NOT NULL,
    -- Plain text (from the HTML, tags stripped) waiting for the indexer, which turns
    -- it into search_vector and clears it.
    index_text       text,
    search_vector    tsvector,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Set by retention's archive action: bodies and attachments are gone.
    archived_at      timestamptz,

    CONSTRAINT messages_external_id_key UNIQUE (external_id),
    -- Lets child rows reference (id, tenant_id), so a body can never sit under
    -- another tenant than its message: row-level security keys on tenant_id.
    CONSTRAINT messages_id_tenant_key UNIQUE (id, tenant_id),
    CONSTRAINT messages_tenant_check CHECK (tenant_id <> '' AND length(tenant_id) <= 128),
    CONSTRAINT messages_external_id_check CHECK (external_id <> '' AND length(external_id) <= 256)
);

CREATE INDEX messages_search_idx ON content.messages USING gin (search_vector);
-- The indexer's queue: small, since rows leave it once indexed.
CREATE INDEX messages_unindexed_idx ON content.messages (id)
    WHERE search_vector IS NULL AND archived_at IS NULL;
-- Retention's scan, oldest first; archived rows are done with.
CREATE INDEX messages_expiry_idx ON content.messages (created_at)
    WHERE archived_at IS NULL;
CREATE INDEX messages_tenant_idx ON content.messages (tenant_id, created_at);

CREATE TABLE content.bodies (
    message_id   bigint  NOT NULL,
    tenant_id    text    NOT NULL,
    part         text    NOT NULL,
    -- 'zlib' (RFC 1950); 'zlib+html' for a text part deflated with the message's
    -- HTML part as preset dictionary (it mostly repeats the HTML's words); or
    -- 'identity' when compressing did not make it smaller.
    codec        text    NOT NULL,
    raw_bytes    integer NOT NULL,
    stored_bytes integer NOT NULL,
    data         bytea   NOT NULL,
    PRIMARY KEY (message_id, part),
    FOREIGN KEY (message_id, tenant_id) REFERENCES content.messages (id, tenant_id) ON DELETE CASCADE,
    CONSTRAINT bodies_part_check CHECK (part IN ('text', 'html')),
    CONSTRAINT bodies_codec_check CHECK (codec IN ('zlib', 'zlib+html', 'identity')),
    CONSTRAINT bodies_size_check CHECK (raw_bytes >= 0 AND stored_bytes = octet_length(data))
);
-- Already compressed: stop TOAST from trying pglz on it a second time.
ALTER TABLE content.bodies ALTER COLUMN data SET STORAGE EXTERNAL;

-- One row per distinct attachment per tenant. De-duplication stays within a tenant:
-- across tenants it would tell one tenant that another holds the same file, and
-- row-level security could not hide the shared row from either.
CREATE TABLE content.attachment_blobs (
    tenant_id    text        NOT NULL,
    sha256       text        NOT NULL,
    codec        text        NOT NULL,
    raw_bytes    bigint      NOT NULL,
    stored_bytes bigint      NOT NULL,
    data         bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sha256),
    CONSTRAINT attachment_blobs_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT attachment_blobs_codec_check CHECK (codec IN ('zlib', 'identity')),
    CONSTRAINT attachment_blobs_size_check CHECK (raw_bytes >= 0 AND stored_bytes = octet_length(data))
);
ALTER TABLE content.attachment_blobs ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE content.message_attachments (
    message_id   bigint  NOT NULL,
    position     integer NOT NULL,
    tenant_id    text    NOT NULL,
    filename     text    NOT NULL,
    content_type text    NOT NULL,
    sha256       text    NOT NULL,
    raw_bytes    bigint  NOT NULL,
    PRIMARY KEY (message_id, position),
    FOREIGN KEY (message_id, tenant_id) REFERENCES content.messages (id, tenant_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, sha256) REFERENCES content.attachment_blobs (tenant_id, sha256)
);
-- Retention asks "is this blob still referenced?".
CREATE INDEX message_attachments_blob_idx ON content.message_attachments (tenant_id, sha256);

-- Per-tenant retention, overriding JOBD_CONTENT_RETENTION. retain NULL keeps the
-- tenant's content forever even when a global default is set.
CREATE TABLE content.tenant_retention (
    tenant_id  text        PRIMARY KEY,
    retain     interval,
    action     text        NOT NULL DEFAULT 'purge',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_retention_action_check CHECK (action IN ('purge', 'archive')),
    CONSTRAINT tenant_retention_retain_check CHECK (retain IS NULL OR retain >= interval '1 minute')
);
