-- 0018: retention of attempt facts and events (`analytics.trim`). A day's facts
-- are deleted only after the day was rolled up (its `jobs` / `events` section is
-- `ok` in analytics.daily_rollups) and the window has passed since the day ended.
-- source_trimmed_at marks a section whose source rows are being or were deleted:
-- a later rollup of that day keeps the stored figures instead of replacing them
-- with a count of what is left.
ALTER TABLE analytics.daily_rollups ADD COLUMN source_trimmed_at timestamptz;
-- jobd_daemon already holds SELECT, INSERT, UPDATE, DELETE on every analytics table
-- (0008); the trim needs nothing more.
