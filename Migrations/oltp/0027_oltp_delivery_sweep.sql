-- Every open delivery of a sending campaign is covered by an unfinished
-- campaign.deliver job. A delivery job can end with its recipients still open (it
-- was dead-lettered: killed mid-batch too often, or its attempts spent while the
-- OLTP database was down); the outbox relay's sweep (OutboxRelay/DeliverySweep)
-- then enqueues their batch again.
--
-- `batch` names the delivery job a row belongs to: the batch's first contact id.
-- The job's unique_key is `campaign:<campaign_id>:deliver:<batch>` (the relay keeps
-- delivery keys as written), so the queue answers "is this batch covered?" by its
-- unique index, and a batch enqueued again while its job is unfinished is dropped.
-- NULL on rows that were never pending (suppressed at fan-out).
ALTER TABLE oltp.deliveries ADD COLUMN batch bigint;

-- Rows still open from before this migration: grouped per campaign in contact
-- order by its batch_size (their jobs carry other keys; the sweep may cover them a
-- second time, which sends nothing twice: a claim is taken once).
WITH numbered AS (
    SELECT d.campaign_id, d.contact_id,
           (row_number() OVER (PARTITION BY d.campaign_id ORDER BY d.contact_id) - 1) / c.batch_size AS n
      FROM oltp.deliveries d JOIN oltp.campaigns c ON c.id = d.campaign_id
     WHERE d.state IN ('pending', 'sending', 'deferred')
), grouped AS (
    SELECT campaign_id, contact_id, min(contact_id) OVER (PARTITION BY campaign_id, n) AS first
      FROM numbered
)
UPDATE oltp.deliveries d SET batch = g.first
  FROM grouped g
 WHERE d.campaign_id = g.campaign_id AND d.contact_id = g.contact_id;

-- The sweep's walk over a campaign's open batches (a loose index scan: one probe
-- per batch, never the rows of a batch).
CREATE INDEX deliveries_open_batch_idx ON oltp.deliveries (campaign_id, batch)
    WHERE state IN ('pending', 'sending', 'deferred');

-- The sweep's list of campaigns to look at.
CREATE INDEX campaigns_sending_idx ON oltp.campaigns (id) WHERE status = 'sending';
