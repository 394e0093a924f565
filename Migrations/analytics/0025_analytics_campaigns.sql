-- Per-campaign daily rollup (the `campaigns` section of analytics.rollup), read
-- from the OLTP tier's oltp.deliveries (possibly another database) and written here.
-- A delivery counts on the UTC day of its last change (`updated_at`; for a sent one
-- that is when the relay accepted it), so a campaign's rows over all days add up to
-- the campaign. The figures are the rollup's copy: they outlive the OLTP rows.
CREATE TABLE analytics.daily_campaigns (
    day           date             NOT NULL,
    campaign_id   bigint           NOT NULL,
    workspace_id  bigint           NOT NULL,
    -- The campaign's name when rolled up (bounded in the OLTP tier, 1..200 chars).
    name          text             NOT NULL,
    recipients    bigint           NOT NULL,
    delivered     bigint           NOT NULL,
    bounced       bigint           NOT NULL,
    -- Recipients the relay deferred at least once (4xx or no answer), whatever came after.
    deferred      bigint           NOT NULL,
    suppressed    bigint           NOT NULL,
    failed        bigint           NOT NULL,
    -- Not finished when rolled up: pending, sending, deferred or cancelled.
    unfinished    bigint           NOT NULL,
    -- delivered / (delivered + bounced + failed); NULL when none was attempted to the end.
    delivery_rate double precision,
    -- From the delivery row's creation (fan-out) to the relay's acceptance, sent ones only.
    send_p50_ms   double precision,
    send_p99_ms   double precision,
    PRIMARY KEY (day, campaign_id),
    CONSTRAINT daily_campaigns_name_check CHECK (length(name) <= 200)
);
-- `jobd report --campaign ID` reads one campaign's days.
CREATE INDEX daily_campaigns_campaign_idx ON analytics.daily_campaigns (campaign_id, day);

ALTER TABLE analytics.daily_rollups DROP CONSTRAINT daily_rollups_section_check;
ALTER TABLE analytics.daily_rollups ADD CONSTRAINT daily_rollups_section_check
    CHECK (section IN ('jobs', 'events', 'content', 'notifications', 'campaigns'));

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_daemon') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON analytics.daily_campaigns TO jobd_daemon;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jobd_reporting') THEN
        GRANT SELECT ON analytics.daily_campaigns TO jobd_reporting;
    END IF;
END;
$$;
