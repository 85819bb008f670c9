-- New messages enter the search index from whatever stores them, many in
-- one statement (crates/store/src/sqlite/search.rs): db copy's pages in the
-- transaction that stores them, the appender's through a waiting list (0018).
-- A trigger per insert (0013's) makes an FTS5 segment per message: FTS5
-- writes its pending entries out at every statement that writes to it. Edits and
-- deletes still go through messages_search_update.
DROP TRIGGER messages_search_insert;
