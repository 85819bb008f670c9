//! Messages and read markers. Appends, the hot path, are each engine's
//! own (`Engine::append`).

use palaver_domain::events::DomainEvent;
use palaver_domain::model::Message;
use palaver_domain::store::{
    Appended, Committed, Mention, MentionCursor, MessageStore, NewMessage, ReadMark, SearchRequest,
    StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{decode, Engine, RowsAffected, SqlStore, MESSAGE_COLUMNS};
use crate::errors::map_err;

#[async_trait::async_trait]
impl<E> MessageStore for SqlStore<E>
where
    E: Engine,
    for<'c> &'c mut <E::Db as Database>::Connection: Executor<'c, Database = E::Db>,
    for<'q> <E::Db as Database>::Arguments<'q>: IntoArguments<'q, E::Db>,
    <E::Db as Database>::QueryResult: RowsAffected,
    i64: for<'q> Encode<'q, E::Db> + for<'r> Decode<'r, E::Db> + Type<E::Db>,
    String: for<'q> Encode<'q, E::Db> + for<'r> Decode<'r, E::Db> + Type<E::Db>,
    for<'q> &'q str: Encode<'q, E::Db> + Type<E::Db>,
    for<'q> Option<i64>: Encode<'q, E::Db>,
    for<'q> Option<String>: Encode<'q, E::Db>,
    for<'q> Option<&'q str>: Encode<'q, E::Db>,
    E::Db: sqlx::database::HasStatementCache,
    <E::Db as Database>::Row: decode::Columns,
    usize: ColumnIndex<<E::Db as Database>::Row>,
    for<'s> &'s str: ColumnIndex<<E::Db as Database>::Row>,
{
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Appended> {
        // The hot path: each engine appends its own way (`append`).
        self.engine.append(self, batch).await
    }

    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let before = before
            .map(|b| b.min(i64::MAX as u64) as i64)
            .unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {} FROM messages m
             WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3",
            MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(room.0)
            .bind(before)
            .bind(limit as i64)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        let mut messages = rows
            .iter()
            .map(decode::message)
            .collect::<StoreResult<Vec<_>>>()?;
        messages.reverse();
        self.with_attachments(&mut messages).await?;
        Ok(messages)
    }

    async fn search_messages(&self, request: SearchRequest<'_>) -> StoreResult<Vec<Message>> {
        self.engine.search(self, request).await
    }

    async fn mentions(
        &self,
        user: UserId,
        before: Option<MentionCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Mention>> {
        let before = before.unwrap_or(MentionCursor {
            created_at: Timestamp(i64::MAX),
            room: RoomId(i64::MAX),
            seq: i64::MAX as u64,
        });
        // Newest first, down the (user, created_at, room, seq) index; a
        // mention of a room left since, or of a deleted message, is not read.
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}, r.name AS mention_room_name
             FROM mentions mn
             JOIN members mb ON mb.room_id = mn.room_id AND mb.user_id = mn.user_id
             JOIN messages m ON m.room_id = mn.room_id AND m.seq = mn.seq
             JOIN rooms r ON r.id = mn.room_id
             WHERE mn.user_id = $1 AND m.deleted_at IS NULL
               AND (mn.created_at < $2 OR (mn.created_at = $2
                    AND (mn.room_id < $3 OR (mn.room_id = $3 AND mn.seq < $4))))
             ORDER BY mn.created_at DESC, mn.room_id DESC, mn.seq DESC
             LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(user.0)
            .bind(before.created_at.0)
            .bind(before.room.0)
            .bind(before.seq.min(i64::MAX as u64) as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(Mention {
                    message: decode::message(row)?,
                    room_name: row.try_get("mention_room_name").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn message(&self, room: RoomId, seq: u64) -> StoreResult<Option<Message>> {
        let sql = format!(
            "SELECT {} FROM messages m WHERE m.room_id = $1 AND m.seq = $2",
            MESSAGE_COLUMNS
        );
        sqlx::query(&sql)
            .bind(room.0)
            .bind(seq.min(i64::MAX as u64) as i64)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(decode::message)
            .transpose()
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let sql = format!(
            "SELECT {} FROM messages m
             WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3",
            MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(room.0)
            .bind(after.min(i64::MAX as u64) as i64)
            .bind(limit as i64)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        let mut messages = rows
            .iter()
            .map(decode::message)
            .collect::<StoreResult<Vec<_>>>()?;
        self.with_attachments(&mut messages).await?;
        Ok(messages)
    }

    async fn edit_message(
        &self,
        room: RoomId,
        seq: u64,
        body: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Committed<Message>>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let seq = seq.min(i64::MAX as u64) as i64;
        let edited = sqlx::query(
            "UPDATE messages SET body = $1, edited_at = $2
             WHERE room_id = $3 AND seq = $4 AND deleted_at IS NULL",
        )
        .bind(body)
        .bind(now.0)
        .bind(room.0)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if edited == 0 {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {} FROM messages m WHERE m.room_id = $1 AND m.seq = $2",
            MESSAGE_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(room.0)
            .bind(seq)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let message = decode::message(&row)?;
        let event = DomainEvent::MessageEdited(message.clone());
        Ok(Some(
            self.commit_events(tx, message, vec![event], now).await?,
        ))
    }

    async fn delete_message(
        &self,
        room: RoomId,
        seq: u64,
        now: Timestamp,
    ) -> StoreResult<Option<Committed<()>>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let deleted = sqlx::query(
            "UPDATE messages SET body = '', deleted_at = $1
             WHERE room_id = $2 AND seq = $3 AND deleted_at IS NULL",
        )
        .bind(now.0)
        .bind(room.0)
        .bind(seq.min(i64::MAX as u64) as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if deleted == 0 {
            return Ok(None);
        }
        let event = DomainEvent::MessageDeleted { room_id: room, seq };
        Ok(Some(self.commit_events(tx, (), vec![event], now).await?))
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: u64,
        now: Timestamp,
    ) -> StoreResult<Committed<ReadMark>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let Some(last_seq): Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = $1")
                .bind(room.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
        else {
            return Ok(Committed::quiet(ReadMark::NotMember));
        };
        // A marker past the newest message would hide messages not yet sent.
        let target = (seq.min(i64::MAX as u64) as i64).min(last_seq);
        let moved: Option<i64> = sqlx::query_scalar(
            "UPDATE members SET last_read_seq = $1
             WHERE room_id = $2 AND user_id = $3 AND last_read_seq < $1
             RETURNING last_read_seq",
        )
        .bind(target)
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(now_at) = moved else {
            // Already there: answer with where it is, one row.
            let at: Option<i64> = sqlx::query_scalar(
                "SELECT last_read_seq FROM members WHERE room_id = $1 AND user_id = $2",
            )
            .bind(room.0)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            let mark = at.map_or(ReadMark::NotMember, |at| ReadMark::Unchanged(at as u64));
            return Ok(Committed::quiet(mark));
        };
        let event = DomainEvent::ReadMarkerMoved {
            room_id: room,
            user_id: user,
            seq: now_at as u64,
        };
        self.commit_events(tx, ReadMark::Moved(now_at as u64), vec![event], now)
            .await
    }

    async fn read_markers(&self, room: RoomId) -> StoreResult<Vec<(UserId, u64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT user_id, last_read_seq FROM members WHERE room_id = $1 ORDER BY user_id",
        )
        .bind(room.0)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(user, seq)| (UserId(user), seq as u64))
            .collect())
    }
}
