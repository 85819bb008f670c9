-- An account's e-mail address: stored lower-case, unique ignoring case, and
-- seen by no other user. Only a verified one receives password-reset codes.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
CREATE UNIQUE INDEX users_email ON users (email);

-- One-time secrets of an account, stored only as SHA-256: the code that
-- verifies an e-mail address, the code of a password reset, and the reset
-- token a right code is exchanged for. One of each purpose per account.
CREATE TABLE account_codes (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose       TEXT    NOT NULL,     -- verify_email, password_reset, reset_token
    secret_hash   TEXT    NOT NULL,
    email         TEXT    NOT NULL,     -- the address it was sent to
    expires_at    INTEGER NOT NULL,
    attempts_left INTEGER NOT NULL,
    sent_at       INTEGER NOT NULL,
    PRIMARY KEY (user_id, purpose)
);
CREATE INDEX account_codes_by_secret ON account_codes (purpose, secret_hash);
