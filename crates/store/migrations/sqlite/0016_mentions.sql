-- Mentions (crates/domain/src/messages/mentions.rs): a message that names a
-- member of its room with `@username`, one row per member named. Written in
-- the transaction that appends the message (crates/store/src/sqlite/appender.rs),
-- for members only, never the sender. No foreign keys, as for messages: the
-- appender wrote the row under the same write lock that checked membership.
CREATE TABLE mentions (
    user_id    INTEGER NOT NULL,  -- who is mentioned
    room_id    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    sender_id  INTEGER NOT NULL,  -- who mentioned them
    created_at INTEGER NOT NULL,  -- the message's
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
-- A user's mentions, newest first (GET /users/me/mentions).
CREATE INDEX mentions_newest ON mentions (user_id, created_at, room_id, seq);
-- A message's mentions (its deletion), a room's (its deletion).
CREATE INDEX mentions_message ON mentions (room_id, seq);

-- A deleted message mentions no one: whoever deletes it (its sender, a
-- moderator, an admin, an account's erasure), its mentions go with it.
CREATE TRIGGER mentions_message_deleted AFTER UPDATE OF deleted_at ON messages
WHEN new.deleted_at IS NOT NULL
BEGIN
    DELETE FROM mentions WHERE room_id = new.room_id AND seq = new.seq;
END;
