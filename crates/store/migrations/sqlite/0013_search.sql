-- Full-text search over message bodies (crates/domain/src/messages/search.rs,
-- crates/store/src/sqlite/search.rs).
--
-- A contentless FTS5 index: it keeps the words, not a second copy of the
-- text. Its rowid names the message, (room_id << 32) | seq, since the
-- messages table has no stable rowid of its own (VACUUM may renumber it),
-- and so each room is one rowid range a search seeks to. A message whose room
-- id or seq does not fit those bits (none the server makes) is not indexed,
-- rather than indexed under another message's name.
-- Triggers keep the index in step in the transaction of every write: a
-- message found is a live one with its current body (deleted ones have none).
CREATE VIRTUAL TABLE messages_search USING fts5 (
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
WHEN new.body <> '' AND new.room_id BETWEEN 1 AND 2147483647 AND new.seq BETWEEN 0 AND 4294967295
BEGIN
    INSERT INTO messages_search (rowid, body) VALUES ((new.room_id << 32) | new.seq, new.body);
END;

CREATE TRIGGER messages_search_update AFTER UPDATE OF body ON messages
WHEN old.room_id BETWEEN 1 AND 2147483647 AND old.seq BETWEEN 0 AND 4294967295
BEGIN
    DELETE FROM messages_search WHERE rowid = (old.room_id << 32) | old.seq;
    INSERT INTO messages_search (rowid, body)
        SELECT (new.room_id << 32) | new.seq, new.body WHERE new.body <> '';
END;

-- Rows leave the messages table only with their room (a message deleted is
-- emptied, and so leaves the index above). A deleted room's words stay in the
-- index unread: searches read only the ranges of rooms their caller is a
-- member of, room ids are never reused (AUTOINCREMENT), and what a search
-- finds is read back from the messages table. Removing them one by one would
-- hold the node's writes for as long as the room was big.

INSERT INTO messages_search (rowid, body)
    SELECT (room_id << 32) | seq, body FROM messages
    WHERE body <> '' AND room_id BETWEEN 1 AND 2147483647 AND seq BETWEEN 0 AND 4294967295;
