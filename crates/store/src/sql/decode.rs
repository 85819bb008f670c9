//! Rows → domain records, written once for every driver that reads them
//! (sqlx's rows of either engine, and rusqlite's on SQLite's own threads),
//! through [`Columns`]. Columns are selected under the aliases of
//! `USER_COLUMNS`, `ROOM_COLUMNS` and `MESSAGE_COLUMNS`.

use palaver_domain::model::{Message, Role, Room, User};
use palaver_domain::store::{StoreError, StoreResult};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::Row;

use crate::errors::{map_err, map_rusqlite};

pub fn role(raw: &str) -> StoreResult<Role> {
    Role::parse(raw).ok_or_else(|| StoreError::Other(format!("unknown role {raw:?}")))
}

pub fn user(row: &impl Columns) -> StoreResult<User> {
    Ok(User {
        id: UserId(row.int("u_id")?),
        username: row.text("u_username")?,
        display_name: row.text("u_display_name")?,
        created_at: Timestamp(row.int("u_created_at")?),
        deleted: row.int_or_null("u_deleted_at")?.is_some(),
    })
}

pub fn room(row: &impl Columns) -> StoreResult<Room> {
    Ok(Room {
        id: RoomId(row.int("r_id")?),
        name: row.text("r_name")?,
        code: row.text("r_code")?,
        owner_id: UserId(row.int("r_owner_id")?),
        created_at: Timestamp(row.int("r_created_at")?),
        password_hash: row.text_or_null("r_password_hash")?,
        kind: {
            let kind = row.text("r_kind")?;
            palaver_domain::model::RoomKind::parse(&kind)
                .ok_or_else(|| StoreError::Other(format!("unknown room kind {kind:?}")))?
        },
    })
}

/// An attachment's row, selected as `ATTACHMENT_COLUMNS`.
pub fn attachment(row: &impl Columns) -> StoreResult<palaver_domain::attachments::Attachment> {
    let dimension = |column| -> StoreResult<Option<u32>> {
        Ok(row.int_or_null(column)?.and_then(|n| u32::try_from(n).ok()))
    };
    Ok(palaver_domain::attachments::Attachment {
        id: row.text("a_id")?,
        room_id: RoomId(row.int("a_room_id")?),
        uploader_id: UserId(row.int("a_uploader_id")?),
        name: row.text("a_name")?,
        size: row.int("a_size")? as u64,
        content_type: row.text("a_content_type")?,
        sha256: row.text("a_sha256")?,
        width: dimension("a_width")?,
        height: dimension("a_height")?,
        created_at: Timestamp(row.int("a_created_at")?),
        message_seq: row.int_or_null("a_message_seq")?.map(|seq| seq as u64),
    })
}

pub fn message(row: &impl Columns) -> StoreResult<Message> {
    let seq = row.int("m_seq")?;
    let reply_to = row.int_or_null("m_reply_to")?;
    let edited_at = row.int_or_null("m_edited_at")?;
    let deleted_at = row.int_or_null("m_deleted_at")?;
    Ok(Message {
        room_id: RoomId(row.int("m_room_id")?),
        seq: seq as u64,
        sender_id: UserId(row.int("m_sender_id")?),
        body: row.text("m_body")?,
        created_at: Timestamp(row.int("m_created_at")?),
        client_id: row.text_or_null("m_client_id")?,
        reply_to: reply_to.map(|s| s as u64),
        edited_at: edited_at.map(Timestamp),
        deleted_at: deleted_at.map(Timestamp),
        attachments: Vec::new(),
    })
}

/// A row's columns by name: integers and text, each possibly NULL (the only
/// column types Palaver's schema uses).
pub trait Columns {
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn int_or_null(&self, column: &str) -> StoreResult<Option<i64>>;
    fn text(&self, column: &str) -> StoreResult<String>;
    fn text_or_null(&self, column: &str) -> StoreResult<Option<String>>;
}

/// The four readings for a sqlx row type.
macro_rules! sqlx_columns {
    ($row:ty) => {
        impl Columns for $row {
            fn int(&self, column: &str) -> StoreResult<i64> {
                self.try_get(column).map_err(map_err)
            }
            fn int_or_null(&self, column: &str) -> StoreResult<Option<i64>> {
                self.try_get(column).map_err(map_err)
            }
            fn text(&self, column: &str) -> StoreResult<String> {
                self.try_get(column).map_err(map_err)
            }
            fn text_or_null(&self, column: &str) -> StoreResult<Option<String>> {
                self.try_get(column).map_err(map_err)
            }
        }
    };
}

sqlx_columns!(sqlx::sqlite::SqliteRow);
sqlx_columns!(sqlx::postgres::PgRow);

impl Columns for rusqlite::Row<'_> {
    fn int(&self, column: &str) -> StoreResult<i64> {
        self.get(column).map_err(map_rusqlite)
    }
    fn int_or_null(&self, column: &str) -> StoreResult<Option<i64>> {
        self.get(column).map_err(map_rusqlite)
    }
    fn text(&self, column: &str) -> StoreResult<String> {
        self.get(column).map_err(map_rusqlite)
    }
    fn text_or_null(&self, column: &str) -> StoreResult<Option<String>> {
        self.get(column).map_err(map_rusqlite)
    }
}
