-- Reactions: a member's emoji on a message (crates/domain/src/messages/reactions.rs).
--
-- No foreign keys, as for messages (0008): the writer checks the member and
-- the message under the room's lock. The primary key serves a history
-- page's aggregate (one range of (room_id, seq)); the second index a user's
-- reactions on one message (the per-user cap) and an account's deletion.
CREATE TABLE reactions (
    room_id    BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    emoji      TEXT   NOT NULL,
    user_id    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq, emoji, user_id)
);

CREATE INDEX reactions_user ON reactions (user_id, room_id, seq);

-- Reactions die with their message, whichever way it is deleted (its sender,
-- an admin, a report's resolution, its sender's erasure).
CREATE FUNCTION reactions_die_with_message() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM reactions WHERE room_id = NEW.room_id AND seq = NEW.seq;
    RETURN NULL;
END
$$;

CREATE TRIGGER reactions_die_with_message AFTER UPDATE OF deleted_at ON messages
FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL)
EXECUTE FUNCTION reactions_die_with_message();
