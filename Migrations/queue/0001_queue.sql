-- 0001: the queue tier. The durable job table is the only source of truth;
-- Redis holds dispatch hints that may vanish at any moment.

CREATE SCHEMA IF NOT EXISTS queue;

CREATE TABLE queue.jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL,
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    priority         text        NOT NULL DEFAULT 'normal',
    -- See JobState in Sources/JobdCore for which loop moves a job out of each state.
    state            text        NOT NULL DEFAULT 'available',
    run_at           timestamptz NOT NULL DEFAULT now(),
    -- Attempts started so far. The claim increments it; (id, attempt) fences completions.
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 20,
    unique_key       text,
    -- Times the rescuer took the job back from a daemon that vanished mid-attempt.
    rescues          integer     NOT NULL DEFAULT 0,
    leased_by        text,
    lease_expires_at timestamptz,
    promoted_at      timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    last_error       text,
    -- One object per failed attempt: {"attempt": n, "at": time, "code": c, "error": text}.
    errors           jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT jobs_kind_check CHECK (kind <> '' AND length(kind) <= 128),
    CONSTRAINT jobs_priority_check CHECK (priority IN ('high', 'normal', 'low')),
    CONSTRAINT jobs_state_check CHECK (state IN
        ('available', 'promoted', 'running', 'retryable', 'completed', 'dead', 'cancelled')),
    CONSTRAINT jobs_max_attempts_check CHECK (max_attempts BETWEEN 1 AND 1000),
    CONSTRAINT jobs_payload_object_check CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT jobs_unique_key_check CHECK (unique_key IS NULL OR length(unique_key) BETWEEN 1 AND 512)
) WITH (fillfactor = 80);  -- room for HOT updates: every job is updated 3-4 times

-- The promoter's fetch: due jobs of one priority, oldest first. Partial, so the index
-- holds only the waiting rows and stays small however many jobs have completed.
CREATE INDEX jobs_due_idx ON queue.jobs (priority, run_at, id)
    WHERE state IN ('available', 'retryable');

-- The rescuer's scan of expired leases.
CREATE INDEX jobs_lease_idx ON queue.jobs (lease_expires_at)
    WHERE state = 'running';

-- The reconciler's scan of promotions Redis may have lost.
CREATE INDEX jobs_promoted_idx ON queue.jobs (promoted_at)
    WHERE state = 'promoted';

-- Retention prune of finished jobs.
CREATE INDEX jobs_finished_idx ON queue.jobs (finished_at)
    WHERE state IN ('completed', 'cancelled');

-- While a job with this kind+unique_key is unfinished, a second plain INSERT is
-- rejected with a unique violation (23505). queue.enqueue() ignores the duplicate
-- and returns the existing job's id instead.
CREATE UNIQUE INDEX jobs_unique_key_idx ON queue.jobs (kind, unique_key)
    WHERE unique_key IS NOT NULL AND state NOT IN ('completed', 'dead', 'cancelled');

-- Churned table: vacuum it far more eagerly than the default 20% of rows.
ALTER TABLE queue.jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_delay = 0
);

CREATE TABLE queue.dead_letters (
    job_id      bigint      PRIMARY KEY REFERENCES queue.jobs (id) ON DELETE CASCADE,
    kind        text        NOT NULL,
    payload     jsonb       NOT NULL,
    priority    text        NOT NULL,
    attempts    integer     NOT NULL,
    reason      text        NOT NULL,
    last_error  text,
    errors      jsonb       NOT NULL DEFAULT '[]'::jsonb,
    dead_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_dead_at_idx ON queue.dead_letters (dead_at);

-- Daemons announce themselves here; `jobd status` lists the live ones.
CREATE TABLE queue.daemons (
    id           text        PRIMARY KEY,
    hostname     text        NOT NULL,
    pid          integer     NOT NULL,
    version      text        NOT NULL,
    workers      integer     NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Wake the promoter. One NOTIFY per statement (not per row), and only when the
-- statement inserted something due now: a bulk insert costs one notification, and
-- Postgres folds identical notifications within a transaction.
CREATE FUNCTION queue.notify_jobs_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted WHERE run_at <= now()) THEN
        PERFORM pg_notify('jobd_jobs', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_notify_inserted
    AFTER INSERT ON queue.jobs
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION queue.notify_jobs_inserted();

-- Enqueue with ON CONFLICT semantics: returns the new job's id, or the id of the
-- unfinished job that already holds (kind, unique_key).
CREATE FUNCTION queue.enqueue(
    p_kind         text,
    p_payload      jsonb       DEFAULT '{}'::jsonb,
    p_priority     text        DEFAULT 'normal',
    p_run_at       timestamptz DEFAULT now(),
    p_max_attempts integer     DEFAULT 20,
    p_unique_key   text        DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    LOOP
        INSERT INTO queue.jobs (kind, payload, priority, run_at, max_attempts, unique_key)
        VALUES (p_kind, coalesce(p_payload, '{}'::jsonb), coalesce(p_priority, 'normal'),
                coalesce(p_run_at, now()), coalesce(p_max_attempts, 20), p_unique_key)
        ON CONFLICT (kind, unique_key)
            WHERE unique_key IS NOT NULL AND state NOT IN ('completed', 'dead', 'cancelled')
            DO NOTHING
        RETURNING id INTO v_id;
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
        SELECT id INTO v_id FROM queue.jobs
         WHERE kind = p_kind AND unique_key = p_unique_key
           AND state NOT IN ('completed', 'dead', 'cancelled');
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
        -- The holder finished between the two statements: try the insert again.
    END LOOP;
END;
$$;
