-- The keys access tokens are signed with: kept here so that every node on
-- this database signs and verifies with the same ones. Private keys: treat
-- backups of this database as secret.
CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,
    algorithm   TEXT    NOT NULL,           -- JOSE name: EdDSA or RS256
    private_key TEXT    NOT NULL,           -- base64 DER: PKCS#8 (Ed25519), PKCS#1 (RSA)
    created_at  INTEGER NOT NULL,
    signs_from  INTEGER NOT NULL,            -- published from created_at, signing from here
    -- 1 on the key created when there was none, NULL on rotated ones: of
    -- two nodes starting at once on an empty database, one creates it.
    bootstrap   INTEGER UNIQUE
);

-- One row per login: the refresh tokens of a login share its id as their
-- family, and its access tokens carry it as `sid`.
CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,           -- the login, or its latest refresh
    expires_at   INTEGER NOT NULL,           -- its newest refresh token's expiry
    user_agent   TEXT,
    revoked_at   INTEGER
);
CREATE INDEX sessions_by_user ON sessions (user_id);

INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, revoked_at)
SELECT family, MIN(user_id), MIN(created_at), MAX(created_at), MAX(expires_at),
       CASE WHEN COUNT(revoked_at) > 0 THEN MAX(revoked_at) END
FROM refresh_tokens GROUP BY family;
