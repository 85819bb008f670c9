//! The embedded default store: one SQLite file in WAL mode.
//!
//! Two pools: a single writer connection (SQLite allows one writer at a time;
//! queueing in-process avoids SQLITE_BUSY) and a few readers that WAL lets run
//! beside it. `synchronous = FULL` makes every commit durable before it is
//! acknowledged; batching in the message writer amortizes the fsync.

mod rows;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use palaver_domain::model::{Member, Message, Role, Room, RoomSummary, User, UserCredentials};
use palaver_domain::store::{
    AppendOutcome, Membership, NewMessage, NewRefreshToken, NewRoom, NewUser, Rotation, Store,
    StoreError, StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqlitePool};

use rows::{
    map_err, message_from_row, room_from_row, user_from_row, MESSAGE_COLUMNS, ROOM_COLUMNS,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(map_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self { writer, readers })
    }

    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_user(&self, user: NewUser) -> StoreResult<User> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, password_hash, created_at)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.created_at.0)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| rows::conflict_or(e, "username"))?;
        Ok(User {
            id: UserId(id),
            username: user.username,
            display_name: user.display_name,
            created_at: user.created_at,
        })
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let row =
            sqlx::query("SELECT id, username, display_name, created_at FROM users WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
        row.map(|r| user_from_row(&r, "")).transpose()
    }

    async fn credentials_by_username(
        &self,
        username: &str,
    ) -> StoreResult<Option<UserCredentials>> {
        let row = sqlx::query(
            "SELECT id, username, display_name, created_at, password_hash FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(UserCredentials {
                user: user_from_row(&r, "")?,
                password_hash: r.try_get("password_hash").map_err(map_err)?,
            })
        })
        .transpose()
    }

    async fn insert_refresh_token(&self, token: NewRefreshToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family, user_id, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&token.token_hash)
        .bind(&token.family)
        .bind(token.user_id.0)
        .bind(token.created_at.0)
        .bind(token.expires_at.0)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        next_expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Rotation> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        let row = sqlx::query(
            "SELECT family, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = ?",
        )
        .bind(presented_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let family: String = row.try_get("family").map_err(map_err)?;
        let user_id: i64 = row.try_get("user_id").map_err(map_err)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(map_err)?;
        let used_at: Option<i64> = row.try_get("used_at").map_err(map_err)?;
        let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(map_err)?;

        let rotation = if revoked_at.is_some() || expires_at <= now.0 {
            Rotation::Invalid
        } else if used_at.is_some() {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
            )
            .bind(now.0)
            .bind(&family)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            Rotation::ReuseDetected
        } else {
            sqlx::query("UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?")
                .bind(now.0)
                .bind(presented_hash)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family, user_id, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(next_hash)
            .bind(&family)
            .bind(user_id)
            .bind(now.0)
            .bind(next_expires_at.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            Rotation::Rotated {
                user_id: UserId(user_id),
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(rotation)
    }

    async fn revoke_refresh_family(&self, token_hash: &str, now: Timestamp) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = ?
             WHERE revoked_at IS NULL
               AND family = (SELECT family FROM refresh_tokens WHERE token_hash = ?)",
        )
        .bind(now.0)
        .bind(token_hash)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn insert_room(&self, room: NewRoom) -> StoreResult<Room> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO rooms (name, code, password_hash, owner_id, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&room.name)
        .bind(&room.code)
        .bind(&room.password_hash)
        .bind(room.owner_id.0)
        .bind(room.created_at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| rows::conflict_or(e, "code"))?;
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, 'owner', ?)",
        )
        .bind(id)
        .bind(room.owner_id.0)
        .bind(room.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Room {
            id: RoomId(id),
            name: room.name,
            code: room.code,
            owner_id: room.owner_id,
            created_at: room.created_at,
            password_hash: room.password_hash,
        })
    }

    async fn room_by_id(&self, id: RoomId) -> StoreResult<Option<Room>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        row.map(|r| room_from_row(&r)).transpose()
    }

    async fn room_by_code(&self, code: &str) -> StoreResult<Option<Room>> {
        let row = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.code = ?"
        ))
        .bind(code)
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        row.map(|r| room_from_row(&r)).transpose()
    }

    async fn member_role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM members WHERE room_id = ? AND user_id = ?")
                .bind(room.0)
                .bind(user.0)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
        role.map(|r| rows::parse_role(&r)).transpose()
    }

    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        now: Timestamp,
    ) -> StoreResult<Membership> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        let inserted = sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        let last_seq: i64 = sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = ?")
            .bind(room.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Membership {
            newly_joined: inserted > 0,
            last_seq: last_seq as u64,
        })
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM members WHERE room_id = ? AND user_id = ?")
            .bind(room.0)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(result.rows_affected() > 0)
    }

    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<RoomSummary>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS}, mb.role AS member_role, r.last_seq AS room_last_seq,
                    {MESSAGE_COLUMNS}
             FROM members mb
             JOIN rooms r ON r.id = mb.room_id
             LEFT JOIN messages m ON m.room_id = r.id AND m.seq = r.last_seq
             WHERE mb.user_id = ?
             ORDER BY COALESCE(m.created_at, r.created_at) DESC, r.id DESC"
        ))
        .bind(user.0)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let last_seq: i64 = row.try_get("room_last_seq").map_err(map_err)?;
                let has_message: Option<i64> = row.try_get("m_seq").map_err(map_err)?;
                Ok(RoomSummary {
                    room: room_from_row(row)?,
                    role: rows::parse_role(
                        &row.try_get::<String, _>("member_role").map_err(map_err)?,
                    )?,
                    last_seq: last_seq as u64,
                    last_message: has_message.map(|_| message_from_row(row)).transpose()?,
                })
            })
            .collect()
    }

    async fn room_positions(&self, user: UserId) -> StoreResult<Vec<(RoomId, u64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT r.id, r.last_seq FROM members mb JOIN rooms r ON r.id = mb.room_id
             WHERE mb.user_id = ?",
        )
        .bind(user.0)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, seq)| (RoomId(id), seq as u64))
            .collect())
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.display_name, u.created_at, mb.role, mb.joined_at
             FROM members mb JOIN users u ON u.id = mb.user_id
             WHERE mb.room_id = ? ORDER BY mb.joined_at, u.id",
        )
        .bind(room.0)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    user: user_from_row(row, "")?,
                    role: rows::parse_role(&row.try_get::<String, _>("role").map_err(map_err)?)?,
                    joined_at: Timestamp(row.try_get("joined_at").map_err(map_err)?),
                })
            })
            .collect()
    }

    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Vec<AppendOutcome>> {
        let mut conn = self.writer.acquire().await.map_err(map_err)?;
        let mut tx = conn.begin().await.map_err(map_err)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for new in batch {
            let is_member: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM members WHERE room_id = ? AND user_id = ?")
                    .bind(new.room_id.0)
                    .bind(new.sender_id.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
            if is_member.is_none() {
                outcomes.push(AppendOutcome::NotMember);
                continue;
            }
            if let Some(client_id) = &new.client_id {
                // Sees earlier messages of this same batch too: same transaction.
                let existing = sqlx::query(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m
                     WHERE m.room_id = ? AND m.sender_id = ? AND m.client_id = ?"
                ))
                .bind(new.room_id.0)
                .bind(new.sender_id.0)
                .bind(client_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                if let Some(row) = existing {
                    outcomes.push(AppendOutcome::Duplicate(message_from_row(&row)?));
                    continue;
                }
            }
            let seq: i64 = sqlx::query_scalar(
                "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
            )
            .bind(new.room_id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            sqlx::query(
                "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(new.room_id.0)
            .bind(seq)
            .bind(new.sender_id.0)
            .bind(&new.body)
            .bind(&new.client_id)
            .bind(new.created_at.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            outcomes.push(AppendOutcome::Stored(Message {
                room_id: new.room_id,
                seq: seq as u64,
                sender_id: new.sender_id,
                body: new.body.clone(),
                created_at: new.created_at,
                client_id: new.client_id.clone(),
            }));
        }
        tx.commit().await.map_err(map_err)?;
        Ok(outcomes)
    }

    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let before = before.map(|b| b as i64).unwrap_or(i64::MAX);
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE m.room_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?"
        ))
        .bind(room.0)
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        let mut messages = rows
            .iter()
            .map(message_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE m.room_id = ? AND m.seq > ? ORDER BY m.seq ASC LIMIT ?"
        ))
        .bind(room.0)
        .bind(after as i64)
        .bind(limit as i64)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter().map(message_from_row).collect()
    }
}
