-- Mentions (crates/domain/src/messages/mentions.rs). Same tables, columns and
-- meaning as migrations/sqlite/0016_mentions.sql: one row per member a
-- message names with `@username`, written in the transaction that appends
-- the message (crates/store/src/postgres.rs) under the room's row lock that
-- read membership; no foreign keys, as for messages (0008).
CREATE TABLE mentions (
    user_id    BIGINT NOT NULL,
    room_id    BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    sender_id  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
);
CREATE INDEX mentions_newest ON mentions (user_id, created_at, room_id, seq);
CREATE INDEX mentions_message ON mentions (room_id, seq);

-- A deleted message mentions no one, whoever deleted it.
CREATE FUNCTION mentions_message_deleted() RETURNS trigger AS $$
BEGIN
    DELETE FROM mentions WHERE room_id = NEW.room_id AND seq = NEW.seq;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER mentions_message_deleted AFTER UPDATE OF deleted_at ON messages
FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL)
EXECUTE FUNCTION mentions_message_deleted();
