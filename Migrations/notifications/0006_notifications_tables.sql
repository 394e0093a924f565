-- 0006: the notifications tier (notification.send). May live in its own database
-- (JOBD_NOTIFICATIONS_DATABASE_URL), so it references nothing in queue.*.

CREATE SCHEMA IF NOT EXISTS notifications;

-- One row per idempotency key: the notification and where its delivery stands.
--   pending -> sending -> sent             (accepted by the provider: never sent again)
--                      -> pending          (retry or Retry-After snooze)
--                      -> failed           (refused for good, or the job's attempts spent)
-- A sender owns a `sending` row through claim_token until sending_until; the final
-- update is fenced on that token, so a run that lost its claim cannot overwrite the
-- outcome of the run that took it over.
CREATE TABLE notifications.notifications (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text        NOT NULL,
    channel         text        NOT NULL,
    -- The payload's "to": URL, email address or E.164 number.
    recipient       text        NOT NULL,
    subject         text,
    -- Exactly what is sent: canonical JSON text for webhooks, the text otherwise.
    body            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',
    -- Send tries so far; the n-th try is notifications.attempts row (id, n).
    tries           integer     NOT NULL DEFAULT 0,
    claim_token     text,
    sending_until   timestamptz,
    -- The queue job that last worked on it (the queue may be another database).
    job_id          bigint,
    last_status_code integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    failed_at       timestamptz,
    CONSTRAINT notifications_key_unique UNIQUE (idempotency_key),
    CONSTRAINT notifications_key_check CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    CONSTRAINT notifications_channel_check CHECK (channel IN ('webhook', 'email', 'sms')),
    CONSTRAINT notifications_status_check CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    CONSTRAINT notifications_claim_check CHECK (
        status <> 'sending' OR (claim_token IS NOT NULL AND sending_until IS NOT NULL)),
    CONSTRAINT notifications_sent_check CHECK ((status = 'sent') = (sent_at IS NOT NULL))
) WITH (fillfactor = 80);  -- room for HOT updates: each row is updated at least twice

-- Operators' view of what is still on its way (and the oldest of it).
CREATE INDEX notifications_open_idx ON notifications.notifications (status, updated_at)
    WHERE status IN ('pending', 'sending');

-- The audit trail: every try, whatever came of it.
CREATE TABLE notifications.attempts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint      NOT NULL REFERENCES notifications.notifications (id) ON DELETE CASCADE,
    try             integer     NOT NULL,
    job_id          bigint,
    job_attempt     integer,
    -- scheme://host:port the try went to (the unit of rate limiting and circuit breaking).
    destination     text        NOT NULL,
    started_at      timestamptz NOT NULL,
    duration_ms     double precision NOT NULL,
    -- sent | failed (permanent) | retry | snoozed (Retry-After)
    outcome         text        NOT NULL,
    -- HTTP status or SMTP reply code; NULL when no answer came (timeout, refused connection).
    status_code     integer,
    error_code      text,
    -- The start of the response body, the relay's last reply, or the error.
    excerpt         text,
    CONSTRAINT attempts_try_unique UNIQUE (notification_id, try),
    CONSTRAINT attempts_outcome_check CHECK (outcome IN ('sent', 'failed', 'retry', 'snoozed')),
    CONSTRAINT attempts_excerpt_check CHECK (octet_length(excerpt) <= 4096)
);
CREATE INDEX attempts_started_idx ON notifications.attempts (started_at);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        GRANT USAGE ON SCHEMA notifications TO jobd_daemon;
        GRANT SELECT, INSERT, UPDATE ON notifications.notifications, notifications.attempts TO jobd_daemon;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_reporting') THEN
        GRANT USAGE ON SCHEMA notifications TO jobd_reporting;
        GRANT SELECT ON notifications.notifications, notifications.attempts TO jobd_reporting;
    END IF;
END;
$$;
