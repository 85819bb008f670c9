-- The transactional outbox (cluster mode): every committed event, written in
-- the same transaction as its change, stays here until a bus holds it.
-- See crates/domain/src/outbox.rs and ARCHITECTURE.md, "Cluster mode".
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       INTEGER NOT NULL,  -- the bus key; not a foreign key: a deleted room's events still go out
    origin        TEXT    NOT NULL,  -- the node that wrote it (and delivered it locally)
    payload       TEXT    NOT NULL,  -- the event, as docs/events.md describes it
    created_at    INTEGER NOT NULL,
    claimed_until INTEGER           -- a relay's lease while it re-sends the event
);
