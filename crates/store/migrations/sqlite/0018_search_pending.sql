-- New messages wait in search_pending before they enter the search index
-- (crates/store/src/sqlite/search.rs): the appender records a batch's
-- messages here, in its transaction, and feeds the index a thousand or so at a
-- time (INDEX_PENDING) in the transaction of a later batch, or when a search
-- is about to read it. Every FTS5 write makes a segment and rewrites the
-- index's structure and averages, a handful of pages in each commit; a row
-- here is a few bytes at the end of one page.
--
-- Keyed by arrival, not by message: new rows go to the last page whatever
-- rooms the batch touched.
CREATE TABLE search_pending (
    id      INTEGER PRIMARY KEY,
    -- The message's search rowid, (room_id << 32) | seq.
    message INTEGER NOT NULL
);
-- The trigger below asks, for every message whose body changes, whether it
-- waits: without this, erasing an account's messages would read the whole
-- list once per message, under the write turn.
CREATE INDEX search_pending_message ON search_pending (message);

-- An edit or deletion of a message not yet indexed changes nothing in the
-- index: the message enters it later with the body it has then.
DROP TRIGGER messages_search_update;
CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages
WHEN old.room_id BETWEEN 1 AND 2147483647 AND old.seq BETWEEN 0 AND 4294967295
    AND NOT EXISTS (SELECT 1 FROM search_pending WHERE message = (old.room_id << 32) | old.seq)
BEGIN
    DELETE FROM messages_search WHERE rowid = (old.room_id << 32) | old.seq;
    INSERT INTO messages_search (rowid, body)
        SELECT (new.room_id << 32) | new.seq, new.body WHERE new.body <> '';
END;
