-- Full-text search over message bodies (crates/domain/src/messages/search.rs).
--
-- A contentless FTS5 index: it keeps the words, not a second copy of the
-- text. Its rowid names the message, (room_id << 32) | seq, since the
-- messages table has no stable rowid of its own (VACUUM may renumber it).
-- Triggers keep it in step in the transaction of every write: a message
-- found is a live one with its current body (deleted ones have none).
CREATE VIRTUAL TABLE messages_search USING fts5 (
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
WHEN new.body <> '' BEGIN
    INSERT INTO messages_search (rowid, body) VALUES ((new.room_id << 32) | new.seq, new.body);
END;

CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages BEGIN
    DELETE FROM messages_search WHERE rowid = (old.room_id << 32) | old.seq;
    INSERT INTO messages_search (rowid, body)
        SELECT (new.room_id << 32) | new.seq, new.body WHERE new.body <> '';
END;

CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM messages_search WHERE rowid = (old.room_id << 32) | old.seq;
END;

INSERT INTO messages_search (rowid, body)
    SELECT (room_id << 32) | seq, body FROM messages WHERE body <> '';
