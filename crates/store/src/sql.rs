//! The SQL both stores run, written once, generic over the engine.
//!
//! [`SqlStore<E>`] implements the store's traits, one file per aggregate
//! (`accounts.rs`, `admin.rs`, `allowances.rs`, `keys.rs`, `rooms.rs`, `invitations.rs`,
//! `messages.rs`, `outbox.rs`, `reactions.rs`), and `Transfer`
//! (`copy.rs`) for both engines; what differs between them is the one seam
//! [`Engine`]: its database driver, its row-lock clauses, and its own hot
//! paths (message appends, the reads of connection set-up, id realignment).
//! `decode.rs` turns rows into records, once; `changes.rs` writes a change's
//! events to the outbox. Placeholders are `$N`, which SQLite and PostgreSQL
//! both accept; column types are integers and text only, so every value
//! decodes the same way on both.
//!
//! Why generics over `sqlx::Database` and not one driver-independent layer:
//! both engines already speak sqlx, and the bounds the shared code needs are
//! stated on each impl block (the same `where` clause in every aggregate's
//! file: Rust implies no such clause from a trait); what is not shared is
//! named in `Engine`.

mod accounts;
mod admin;
mod allowances;
mod attachments;
pub(crate) use attachments::attachment_columns;
mod changes;
mod copy;
mod copy_admin;
mod copy_attachments;
mod copy_reactions;
pub(crate) mod decode;
mod invitations;
mod keys;
mod messages;
mod outbox;
mod reactions;
mod rooms;

use palaver_domain::model::{Message, User};
use palaver_domain::store::{
    AccountStore, AdminStore, AllowanceStore, Appended, InvitationStore, KeyStore, MessageStore,
    NewMessage, OutboxStore, ReactionStore, RoomStore, SearchRequest, Store, StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::{Database, Executor, IntoArguments, Pool};

use crate::errors::map_err;

/// Room columns, aliased so they can sit beside message columns in one row.
pub const ROOM_COLUMNS: &str = "r.id AS r_id, r.name AS r_name, r.code AS r_code, \
    r.password_hash AS r_password_hash, r.owner_id AS r_owner_id, r.created_at AS r_created_at, \
    r.kind AS r_kind";

/// A macro as well as a constant, so engine statements can `concat!` it.
macro_rules! message_columns {
    () => {
        "m.room_id AS m_room_id, m.seq AS m_seq, \
         m.sender_id AS m_sender_id, m.body AS m_body, m.client_id AS m_client_id, \
         m.created_at AS m_created_at, m.reply_to AS m_reply_to, m.edited_at AS m_edited_at, \
         m.deleted_at AS m_deleted_at"
    };
}
pub(crate) use message_columns;

pub const MESSAGE_COLUMNS: &str = message_columns!();

/// Rows per multi-row INSERT: 6 parameters each stays far below both engines'
/// parameter limits (SQLite 32766, PostgreSQL 65535).
pub const INSERT_CHUNK: usize = 500;

/// Statements built to a batch's shape are cached up to this size: a few
/// shapes each, well within sqlx's default statement cache of 100 per connection.
pub const CACHED_BATCH_SHAPES: usize = 16;

/// A macro as well as a constant, as `message_columns!`.
macro_rules! user_columns {
    () => {
        "u.id AS u_id, u.username AS u_username, \
         u.display_name AS u_display_name, u.created_at AS u_created_at, \
         u.deleted_at AS u_deleted_at"
    };
}

pub const USER_COLUMNS: &str = user_columns!();

/// → a row if login `$1` of user `$2` has neither ended nor expired by `$3`.
pub const SESSION_IS_LIVE: &str = "SELECT user_id FROM sessions \
    WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3";

/// → (room id, last seq) of every room `$1` is a member of.
pub const ROOM_POSITIONS: &str = "SELECT r.id, r.last_seq FROM members mb \
    JOIN rooms r ON r.id = mb.room_id WHERE mb.user_id = $1";

/// → the user `$1` (`USER_COLUMNS`) with, per room they are a member of, its
/// `room_id` and `room_last_seq`: one row per room, or one with NULLs for none.
pub const USER_WITH_POSITIONS: &str = concat!(
    "SELECT ",
    user_columns!(),
    ", r.id AS room_id, r.last_seq AS room_last_seq \
     FROM users u LEFT JOIN members mb ON mb.user_id = u.id \
     LEFT JOIN rooms r ON r.id = mb.room_id WHERE u.id = $1"
);

/// A store over one engine: the pools, the outbox switch, and the engine's own state.
pub struct SqlStore<E: Engine> {
    pub(crate) writer: Pool<E::Db>,
    pub(crate) readers: Pool<E::Db>,
    /// `Some(node id)`: every change writes its events to the outbox.
    pub(crate) outbox_origin: Option<String>,
    pub(crate) engine: E,
}

/// What differs between the engines, and only that.
#[async_trait::async_trait]
pub trait Engine: Clone + Send + Sync + Sized + 'static {
    type Db: Database;
    /// Appended to a `SELECT` whose rows the transaction changes next.
    const FOR_UPDATE: &'static str;
    /// Appended to a `SELECT` of a row that must not change (nor be
    /// deleted) until the transaction ends, while others may still hold it
    /// the same way and insert rows that refer to it (an account staying
    /// alive while it joins a room or logs in).
    const FOR_SHARE: &'static str;
    /// Appended to a `SELECT` of a row the transaction changes next without
    /// blocking inserts elsewhere that refer to it (foreign keys), so
    /// that a row locked before other rows cannot deadlock with a
    /// transaction holding those and inserting a reference to it.
    const FOR_NO_KEY_UPDATE: &'static str;
    /// Appended to the outbox claim, so relays on several nodes take
    /// different rows instead of waiting on each other.
    const SKIP_LOCKED: &'static str;
    /// Run first in a transaction whose commit need not be durable (the
    /// outbox rows it deletes come back after a crash, and are only sent
    /// again): spares it the wait for the log flush. Empty if the engine has
    /// no such setting.
    const RELAXED_COMMIT: &'static str;
    /// Held for the length of a write: this process's turn at the database.
    type WriteTurn: Send;

    /// Waits for the write turn; every write takes it first (see
    /// [`SqlStore::begin_write`]), and holds it until it has committed.
    async fn write_turn(&self) -> Self::WriteTurn;

    /// `Store::append_messages`: the hot path, each engine its own way.
    async fn append(&self, store: &SqlStore<Self>, batch: &[NewMessage]) -> StoreResult<Appended>;
    /// `MessageStore::search_messages`: each engine's index, read so that
    /// its cost follows the matches in the rooms searched.
    async fn search(
        &self,
        store: &SqlStore<Self>,
        request: SearchRequest<'_>,
    ) -> StoreResult<Vec<Message>>;
    /// `Store::room_positions`.
    async fn room_positions(
        &self,
        store: &SqlStore<Self>,
        user: UserId,
    ) -> StoreResult<Vec<(RoomId, u64)>>;
    /// `AccountStore::session_is_live`: read by every connection's set-up
    /// and every REST call.
    async fn session_is_live(
        &self,
        store: &SqlStore<Self>,
        user: UserId,
        session: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// `Store::user_with_positions`.
    async fn user_with_positions(
        &self,
        store: &SqlStore<Self>,
        user: UserId,
    ) -> StoreResult<Option<(User, Vec<(RoomId, u64)>)>>;
    /// Inserts outbox rows, `(room id, payload)` each, written by `origin`
    /// at `now` (Unix ms), inside `tx`; returns their ids in `rows`' order.
    async fn insert_outbox(
        &self,
        tx: &mut sqlx::Transaction<'_, Self::Db>,
        rows: &[(i64, &str)],
        origin: &str,
        now: i64,
    ) -> StoreResult<Vec<i64>>;
    /// What the engine derives from messages `db copy` inserts (room id,
    /// seq each), in the transaction that inserted them: the search index.
    async fn index_imported_messages(
        &self,
        tx: &mut sqlx::Transaction<'_, Self::Db>,
        messages: &[(i64, i64)],
    ) -> StoreResult<()>;
    /// After `db copy` imported rows with their ids: move id generators past them.
    async fn realign_ids(&self, store: &SqlStore<Self>) -> StoreResult<()>;
}

impl<E: Engine> SqlStore<E> {
    /// The write turn, then a transaction on the writer pool. The turn is
    /// bound first, so it is dropped after the transaction (committed or
    /// rolled back).
    pub(crate) async fn begin_write(
        &self,
    ) -> StoreResult<(E::WriteTurn, sqlx::Transaction<'static, E::Db>)> {
        let turn = self.engine.write_turn().await;
        let tx = self.writer.begin().await.map_err(map_err)?;
        Ok((turn, tx))
    }
}

// By hand: a derive would ask `E::Db: Clone` of the driver types.
impl<E: Engine> Clone for SqlStore<E> {
    fn clone(&self) -> Self {
        Self {
            writer: self.writer.clone(),
            readers: self.readers.clone(),
            outbox_origin: self.outbox_origin.clone(),
            engine: self.engine.clone(),
        }
    }
}

impl<E: Engine> std::fmt::Debug for SqlStore<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl<E> Store for SqlStore<E>
where
    E: Engine,
    for<'c> &'c mut <E::Db as Database>::Connection: Executor<'c, Database = E::Db>,
    for<'q> <E::Db as Database>::Arguments<'q>: IntoArguments<'q, E::Db>,
    Self: AccountStore
        + AdminStore
        + AllowanceStore
        + KeyStore
        + RoomStore
        + InvitationStore
        + MessageStore
        + OutboxStore
        + ReactionStore
        + palaver_domain::store::AttachmentStore,
{
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

/// `$first, $first+1, …` for `count` values. The generic code binds in a loop
/// rather than through `QueryBuilder`, whose arguments cannot be proven to
/// outlive a borrow of the builder for an unknown engine.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $columns), ($columns+1, …), …` for a multi-row `VALUES`.
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(row * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many rows a statement changed: each driver's result has the method,
/// but no sqlx trait does.
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_every_value_of_every_row() {
        assert_eq!(super::placeholders(3, 2), "$3, $4");
        assert_eq!(super::value_rows(2, 2), "($1, $2), ($3, $4)");
    }
}
