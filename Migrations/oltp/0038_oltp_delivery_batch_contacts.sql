-- A delivery batch's statements (claim, record, suppress, limits, next open,
-- abandoned claims, cancel) name the batch's rows by campaign, batch and contacts.
-- A campaign the planner's statistics do not know yet (every new one, until the
-- next ANALYZE) is estimated at one open row, so every index that starts with
-- campaign_id looks equally cheap to it. The primary key (campaign_id,
-- contact_id) with campaign_id alone as its condition also yields the contacts'
-- order (for the join with oltp.contacts), which a (campaign_id, batch) index
-- does not: the planner may prefer it, and the statement then reads every
-- delivery of the campaign. With contact_id after batch, this index yields that
-- order too, and being partial (open rows only) and implying the statements'
-- state conditions it is the cheaper of the two: each statement reads one
-- batch's open rows at most.
--
-- Everything the (campaign_id, batch) index served it still serves: the sweep's
-- loose index scan over a campaign's open batches and the finish check's first
-- open delivery in batch order read its leading columns.
CREATE INDEX deliveries_open_batch_contact_idx ON oltp.deliveries (campaign_id, batch, contact_id)
    WHERE state IN ('pending', 'sending', 'deferred');
DROP INDEX oltp.deliveries_open_batch_idx;
