-- Stored allowances: how often one thing, named by `key`, was done in the
-- window that ends at `resets_at` (codes mailed to an account, mail to one
-- recipient, one requester's guesses at one code). In the database, so every
-- node and every restart counts the same uses; rows past their window are
-- deleted as new uses are taken.
CREATE TABLE allowances (
    key       TEXT    NOT NULL PRIMARY KEY,
    used      BIGINT  NOT NULL,
    resets_at BIGINT  NOT NULL
);
CREATE INDEX allowances_by_reset ON allowances (resets_at);
