//! Row decoding and error mapping shared by the SQLite queries.

use palaver_domain::model::{Message, Role, Room, User};
use palaver_domain::store::{StoreError, StoreResult};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

/// Room columns, aliased so they can sit beside message columns in one row.
pub const ROOM_COLUMNS: &str = "r.id AS r_id, r.name AS r_name, r.code AS r_code, \
    r.password_hash AS r_password_hash, r.owner_id AS r_owner_id, r.created_at AS r_created_at";

pub const MESSAGE_COLUMNS: &str = "m.room_id AS m_room_id, m.seq AS m_seq, \
    m.sender_id AS m_sender_id, m.body AS m_body, m.client_id AS m_client_id, \
    m.created_at AS m_created_at";

pub fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(err.to_string())
        }
        other => StoreError::Other(other.to_string()),
    }
}

/// Unique-constraint violations become `Conflict(what)`; anything else maps as usual.
pub fn conflict_or(err: sqlx::Error, what: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => map_err(err),
    }
}

pub fn parse_role(raw: &str) -> StoreResult<Role> {
    Role::parse(raw).ok_or_else(|| StoreError::Other(format!("unknown role {raw:?}")))
}

/// Reads `id, username, display_name, created_at` with an optional column prefix.
pub fn user_from_row(row: &SqliteRow, prefix: &str) -> StoreResult<User> {
    let col = |name: &str| format!("{prefix}{name}");
    Ok(User {
        id: UserId(row.try_get(col("id").as_str()).map_err(map_err)?),
        username: row.try_get(col("username").as_str()).map_err(map_err)?,
        display_name: row.try_get(col("display_name").as_str()).map_err(map_err)?,
        created_at: Timestamp(row.try_get(col("created_at").as_str()).map_err(map_err)?),
    })
}

pub fn room_from_row(row: &SqliteRow) -> StoreResult<Room> {
    Ok(Room {
        id: RoomId(row.try_get("r_id").map_err(map_err)?),
        name: row.try_get("r_name").map_err(map_err)?,
        code: row.try_get("r_code").map_err(map_err)?,
        owner_id: UserId(row.try_get("r_owner_id").map_err(map_err)?),
        created_at: Timestamp(row.try_get("r_created_at").map_err(map_err)?),
        password_hash: row.try_get("r_password_hash").map_err(map_err)?,
    })
}

pub fn message_from_row(row: &SqliteRow) -> StoreResult<Message> {
    let seq: i64 = row.try_get("m_seq").map_err(map_err)?;
    Ok(Message {
        room_id: RoomId(row.try_get("m_room_id").map_err(map_err)?),
        seq: seq as u64,
        sender_id: UserId(row.try_get("m_sender_id").map_err(map_err)?),
        body: row.try_get("m_body").map_err(map_err)?,
        created_at: Timestamp(row.try_get("m_created_at").map_err(map_err)?),
        client_id: row.try_get("m_client_id").map_err(map_err)?,
    })
}
