-- Edits, deletes, replies, read markers, bans, direct messages, last seen.

ALTER TABLE messages ADD COLUMN reply_to   INTEGER;  -- a seq in the same room
ALTER TABLE messages ADD COLUMN edited_at  INTEGER;
ALTER TABLE messages ADD COLUMN deleted_at INTEGER;  -- the body is emptied; the seq stays

-- The member's read marker: the newest seq they have read (only moves forward).
ALTER TABLE members ADD COLUMN last_read_seq INTEGER NOT NULL DEFAULT 0;

-- 'group' rooms are joined by code; a 'direct' room holds exactly two people,
-- found again through dm_key ("<lower user id>:<higher user id>").
ALTER TABLE rooms ADD COLUMN kind   TEXT NOT NULL DEFAULT 'group' CHECK (kind IN ('group', 'direct'));
ALTER TABLE rooms ADD COLUMN dm_key TEXT;
CREATE UNIQUE INDEX rooms_dm_key ON rooms (dm_key) WHERE dm_key IS NOT NULL;

-- A banned user cannot re-join by code until unbanned.
CREATE TABLE bans (
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by  INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

-- When the user's last connection closed (presence); NULL: never connected.
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;

-- Finding people by the start of their display name (usernames are already unique-indexed).
CREATE INDEX users_display_name ON users (lower(display_name));
