-- Full-text search over message bodies (crates/domain/src/messages/search.rs).
--
-- The words of each body, kept by PostgreSQL itself in the row (so in step
-- with every write, in its transaction), under a GIN index. The 'simple'
-- configuration lower-cases and stems nothing, as SQLite's unicode61
-- tokenizer does; deleted messages have an empty body and no words.
ALTER TABLE messages
    ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
