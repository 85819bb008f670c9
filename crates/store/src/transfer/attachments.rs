//! The rows of `attachments` as `db copy` and backups move them.

/// One attachment's row, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    pub id: String,
    pub room_id: i64,
    pub uploader_id: i64,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub created_at: i64,
    pub message_seq: Option<i64>,
}
