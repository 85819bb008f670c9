-- Palaver schema v1. Timestamps are Unix milliseconds (portable to PostgreSQL BIGINT).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,  -- stored lower-case: unique ignoring case
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT    PRIMARY KEY,         -- SHA-256 of the token; the token is never stored
    family     TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,                     -- set when rotated; presenting it again is re-use
    revoked_at INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

CREATE TABLE rooms (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    code          TEXT    NOT NULL UNIQUE,
    password_hash TEXT,
    owner_id      INTEGER NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL DEFAULT 0  -- the per-room sequence counter
);

CREATE TABLE members (
    room_id   INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id);

CREATE TABLE messages (
    room_id    INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    sender_id  INTEGER NOT NULL REFERENCES users (id),
    body       TEXT    NOT NULL,
    client_id  TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
);
-- Idempotent retries: one message per (room, sender, client_id).
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
