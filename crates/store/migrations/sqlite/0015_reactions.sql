-- Reactions: a member's emoji on a message (crates/domain/src/messages/reactions.rs).
--
-- No foreign keys, as for messages (postgres/0008): the writer checks the
-- member and the message under the room's lock. The primary key serves a
-- history page's aggregate (one range of (room_id, seq)); the second index a
-- user's reactions on one message (the per-user cap) and an account's
-- deletion.
CREATE TABLE reactions (
    room_id    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    emoji      TEXT    NOT NULL,
    user_id    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq, emoji, user_id)
) WITHOUT ROWID;

CREATE INDEX reactions_user ON reactions (user_id, room_id, seq);

-- Reactions die with their message, whichever way it is deleted (its sender,
-- an admin, a report's resolution, its sender's erasure).
CREATE TRIGGER reactions_die_with_message AFTER UPDATE OF deleted_at ON messages
WHEN new.deleted_at IS NOT NULL AND old.deleted_at IS NULL
BEGIN
    DELETE FROM reactions WHERE room_id = new.room_id AND seq = new.seq;
END;
