-- Attachments (crates/domain/src/attachments.rs): the rows of files whose
-- bytes live behind the Blobs port, under their id.
--
-- No foreign keys: a file outlives neither its room nor its message, but
-- its blob must be removed before its row, so a deleted room's or
-- message's files are left to the collector, which finds them by the
-- absence of what they point at.
CREATE TABLE attachments (
    id           TEXT    PRIMARY KEY,
    room_id      BIGINT  NOT NULL,
    uploader_id  BIGINT  NOT NULL,
    name         TEXT    NOT NULL,
    size         BIGINT  NOT NULL,
    content_type TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    width        BIGINT,
    height       BIGINT,
    created_at   BIGINT  NOT NULL,
    -- The message of room_id carrying it, once one does.
    message_seq  BIGINT
);
-- An uploader's quota is the sum of their files' sizes.
CREATE INDEX attachments_uploader ON attachments (uploader_id);
-- A page of history reads its messages' files.
CREATE INDEX attachments_message ON attachments (room_id, message_seq);
