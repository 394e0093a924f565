-- 0047: the search index holds indexed messages only.
--
-- A GIN index keeps an entry for a NULL value too, so every content.write insert
-- (search_vector stays NULL until ContentIndexer fills it) added one to the index's
-- pending list, and the indexer's update added the real entries next to it. Partial,
-- the write adds nothing to it; a search (`search_vector @@ query`, a strict operator)
-- implies the predicate, so the planner still uses the index.
--
-- The build takes a SHARE lock on content.messages (writes wait) while it runs. On a
-- big table, build it first without the lock, under the same name, and this
-- migration skips it:
--   CREATE INDEX CONCURRENTLY messages_search_indexed_idx ON content.messages
--       USING gin (search_vector) WHERE search_vector IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_search_indexed_idx ON content.messages
    USING gin (search_vector) WHERE search_vector IS NOT NULL;
DROP INDEX IF EXISTS content.messages_search_idx;
