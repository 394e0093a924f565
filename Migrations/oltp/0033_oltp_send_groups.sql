-- Sending in groups: the deliver handler claims a group of recipients in one
-- statement and records their outcomes in one, so the per-recipient cost in the
-- database is what the rows themselves cost.
--
-- Unsubscribe tokens without a loop: the HMAC's padded keys (key ⊕ 0x36…, key ⊕
-- 0x5c…, RFC 2104) are kept next to the key, filled by a trigger whenever the key
-- is written (rotation included), so a token is two sha256 calls in plain SQL.
-- The pads are as secret as the key: the table stays readable by its owner only.
ALTER TABLE oltp.unsubscribe_key ADD COLUMN inner_pad bytea, ADD COLUMN outer_pad bytea;

CREATE FUNCTION oltp.unsubscribe_key_pads() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea := NEW.key;
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
    NEW.inner_pad := inner_pad;
    NEW.outer_pad := outer_pad;
    RETURN NEW;
END;
$$;
CREATE TRIGGER unsubscribe_key_pads BEFORE INSERT OR UPDATE ON oltp.unsubscribe_key
    FOR EACH ROW EXECUTE FUNCTION oltp.unsubscribe_key_pads();
UPDATE oltp.unsubscribe_key SET key = key;
ALTER TABLE oltp.unsubscribe_key
    ALTER COLUMN inner_pad SET NOT NULL, ALTER COLUMN outer_pad SET NOT NULL,
    ADD CONSTRAINT unsubscribe_key_pads_check CHECK (octet_length(inner_pad) = 64 AND octet_length(outer_pad) = 64);

-- The same token as oltp.hmac_sha256(key, message) gives: HMAC = H(outer ‖ H(inner ‖ m)).
CREATE OR REPLACE FUNCTION oltp.unsubscribe_token(p_contact_id bigint, p_campaign_id bigint) RETURNS text
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT p_contact_id || '.' || p_campaign_id || '.' || encode(sha256(k.outer_pad || sha256(
        k.inner_pad || convert_to('unsubscribe:' || p_contact_id || ':' || p_campaign_id, 'UTF8'))), 'hex')
      FROM oltp.unsubscribe_key k
$$;

-- deliveries_open_batch_idx (campaign_id, batch) has the same predicate and leads
-- with campaign_id (NULL batches included): it answers every question the
-- (campaign_id) index did, and each open-state change no longer updates both.
DROP INDEX oltp.deliveries_open_idx;

-- The sweep looks at scheduled campaigns too (a scheduled campaign whose
-- preparation job died would otherwise stay scheduled).
CREATE INDEX campaigns_sweep_idx ON oltp.campaigns (id) WHERE status IN ('scheduled', 'sending');
DROP INDEX oltp.campaigns_sending_idx;
