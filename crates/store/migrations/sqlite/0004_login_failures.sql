-- Consecutive failed logins per account and address (the login back-off):
-- kept here so that every node sees the same streak.
CREATE TABLE login_failures (
    subject        TEXT PRIMARY KEY,      -- "<lower-case username> <address>"
    failures       INTEGER NOT NULL,
    last_failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_last_failed_at ON login_failures (last_failed_at);
