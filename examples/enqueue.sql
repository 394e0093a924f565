-- Enqueueing the built-in kinds with plain SQL (psql "$JOBD_DATABASE_URL" -f examples/enqueue.sql).

-- An application event: name, value (default 1), tags, time (default: when the job runs).
INSERT INTO queue.jobs (kind, payload, priority)
VALUES ('metrics.emit',
        jsonb_build_object('name', 'signup', 'value', 1,
                           'tags', jsonb_build_object('plan', 'pro'), 'time', now()),
        'low');

-- Several events in one job (at most 1,000).
INSERT INTO queue.jobs (kind, payload, priority)
VALUES ('metrics.emit',
        '{"events": [{"name": "orders", "value": 3}, {"name": "revenue", "value": 129.5, "tags": {"currency": "EUR"}}]}',
        'low');

-- Roll a day up again (the same rows come out), at most one such job at a time.
SELECT queue.enqueue('analytics.rollup', '{"day": "2026-01-10"}', 'low', now(), 20, 'rollup:2026-01-10');

-- Prune finished jobs now, with a shorter window than JOBD_COMPLETED_RETENTION.
INSERT INTO queue.jobs (kind, payload) VALUES ('queue.prune', '{"older_than": "3d"}');
