-- Server administration (crates/domain/src/admin.rs, docs/admin.md).

-- The server's admins: granted and revoked on the command line alone
-- (`palaver admin grant|revoke`); there is none by default.
CREATE TABLE admins (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id),
    granted_at INTEGER NOT NULL,
    granted_by INTEGER REFERENCES users (id)  -- NULL: the command line
);

-- An account's suspension: at most one; lifting it deletes the row (the audit
-- log keeps its history). One whose ends_at has passed no longer applies.
CREATE TABLE suspensions (
    user_id      INTEGER PRIMARY KEY REFERENCES users (id),
    reason       TEXT    NOT NULL,            -- shown to the account's owner at login
    ends_at      INTEGER,                     -- NULL: until lifted
    suspended_by INTEGER REFERENCES users (id),  -- NULL: the command line
    suspended_at INTEGER NOT NULL
);

-- A member's report of a message. room_id and seq are not foreign keys: a
-- report outlives the room taken down over it.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id     INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER,                      -- NULL while open
    resolved_by INTEGER REFERENCES users (id),   -- NULL: the command line, or open
    resolution  TEXT CHECK (resolution IN ('dismissed', 'message_deleted', 'sender_suspended'))
);
-- One open report per reporter and message.
CREATE UNIQUE INDEX reports_open_per_reporter ON reports (reporter_id, room_id, seq)
    WHERE resolved_at IS NULL;
CREATE INDEX reports_by_message ON reports (room_id, seq);

-- Every admin action: who, what, to whom, when, why.
CREATE TABLE admin_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    acted_at    INTEGER NOT NULL,
    admin_id    INTEGER REFERENCES users (id),  -- NULL: the command line
    action      TEXT    NOT NULL,               -- suspend_user, take_down_room, …
    target_kind TEXT    NOT NULL,               -- user, room, message, report
    target_id   INTEGER NOT NULL,               -- a message's room
    target_seq  INTEGER,                        -- a message's seq
    reason      TEXT,
    detail      TEXT                            -- a small JSON object
);
