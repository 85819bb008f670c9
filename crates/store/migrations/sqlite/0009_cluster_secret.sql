-- The secret that authenticates the nodes' records on the Kafka topic
-- (HMAC-SHA256, palaver_domain::bus_auth): one row, written by the first
-- node to need it, read by every node.
CREATE TABLE cluster_secret (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    secret     TEXT    NOT NULL,             -- base64, 32 bytes
    created_at INTEGER NOT NULL
);
