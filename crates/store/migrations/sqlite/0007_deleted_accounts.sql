-- A deleted account stays as a tombstone so that its messages keep a sender:
-- display name "Deleted user", no e-mail, no password, and in place of its
-- username '~' and its id, which no username can be (so nobody logs in as,
-- finds or registers it). Its former username is kept aside and cannot be
-- registered again before username_free_at.
ALTER TABLE users ADD COLUMN deleted_at INTEGER;
ALTER TABLE users ADD COLUMN retired_username TEXT;
ALTER TABLE users ADD COLUMN username_free_at INTEGER;
CREATE INDEX users_retired_username ON users (retired_username)
    WHERE retired_username IS NOT NULL;
