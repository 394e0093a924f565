-- 0046: a message's rows stay whole in their table up to 8 KB.
--
-- Past about 2 KB a row is toasted: content.bodies moved its (already compressed)
-- data into the TOAST table, a second heap row and a second index entry per body,
-- and content.messages ran pglz over index_text, which the indexer clears again
-- moments later. A typical mail's compressed body and its plain text are a few
-- kilobytes, so each write paid for both. With toast_tuple_target at its maximum,
-- rows up to 8160 bytes are stored as they are; larger ones are toasted as before.
ALTER TABLE content.bodies SET (toast_tuple_target = 8160);
ALTER TABLE content.messages SET (toast_tuple_target = 8160);
