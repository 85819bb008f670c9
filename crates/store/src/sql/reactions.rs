//! Reactions: added and removed under the room's lock, where membership,
//! the message and the caps are read; a page's aggregate in one query.

use palaver_domain::events::DomainEvent;
use palaver_domain::store::{
    Committed, Reaction, ReactionCaps, ReactionChange, ReactionCount, ReactionStore, StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::{decode, Engine, RowsAffected, SqlStore};
use crate::errors::map_err;

/// A seq as the database holds it.
fn db_seq(seq: u64) -> i64 {
    seq.min(i64::MAX as u64) as i64
}

#[async_trait::async_trait]
impl<E> ReactionStore for SqlStore<E>
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
    async fn add_reaction(
        &self,
        reaction: &Reaction,
        caps: ReactionCaps,
        now: Timestamp,
    ) -> StoreResult<Committed<ReactionChange>> {
        let (_turn, mut tx) = self.begin_write().await?;
        if let Some(refused) = Self::check_target_in(&mut tx, reaction, true).await? {
            return Ok(Committed::quiet(refused));
        }
        let (room, seq) = (reaction.room_id.0, db_seq(reaction.seq));
        let emoji = reaction.emoji.as_str();
        let theirs: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM reactions
             WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
        )
        .bind(room)
        .bind(seq)
        .bind(emoji)
        .bind(reaction.user_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if theirs.is_some() {
            return Ok(Committed::quiet(ReactionChange::Unchanged));
        }
        // The user's reactions on this message (their index's range).
        let mine: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM reactions WHERE user_id = $1 AND room_id = $2 AND seq = $3",
        )
        .bind(reaction.user_id.0)
        .bind(room)
        .bind(seq)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if mine >= i64::from(caps.per_user_per_message) {
            return Ok(Committed::quiet(ReactionChange::TooManyOfUser));
        }
        // A new emoji on the message counts against its distinct emoji;
        // another user's same emoji does not.
        let present: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM reactions WHERE room_id = $1 AND seq = $2 AND emoji = $3 LIMIT 1",
        )
        .bind(room)
        .bind(seq)
        .bind(emoji)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if present.is_none() {
            let distinct: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT DISTINCT emoji FROM reactions
                 WHERE room_id = $1 AND seq = $2) AS d",
            )
            .bind(room)
            .bind(seq)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            if distinct >= i64::from(caps.distinct_per_message) {
                return Ok(Committed::quiet(ReactionChange::TooManyOnMessage));
            }
        }
        sqlx::query(
            "INSERT INTO reactions (room_id, seq, emoji, user_id, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(room)
        .bind(seq)
        .bind(emoji)
        .bind(reaction.user_id.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let event = DomainEvent::ReactionAdded(reaction.clone());
        self.commit_events(tx, ReactionChange::Done, vec![event], now)
            .await
    }

    async fn remove_reaction(
        &self,
        reaction: &Reaction,
        now: Timestamp,
    ) -> StoreResult<Committed<ReactionChange>> {
        let (_turn, mut tx) = self.begin_write().await?;
        if let Some(refused) = Self::check_target_in(&mut tx, reaction, false).await? {
            return Ok(Committed::quiet(refused));
        }
        let removed = sqlx::query(
            "DELETE FROM reactions
             WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
        )
        .bind(reaction.room_id.0)
        .bind(db_seq(reaction.seq))
        .bind(reaction.emoji.as_str())
        .bind(reaction.user_id.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if removed == 0 {
            return Ok(Committed::quiet(ReactionChange::Unchanged));
        }
        let event = DomainEvent::ReactionRemoved(reaction.clone());
        self.commit_events(tx, ReactionChange::Done, vec![event], now)
            .await
    }

    async fn reaction_counts(
        &self,
        room: RoomId,
        from: u64,
        through: u64,
        reader: UserId,
    ) -> StoreResult<Vec<ReactionCount>> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT seq, emoji, COUNT(*),
                    CAST(MAX(CASE WHEN user_id = $4 THEN 1 ELSE 0 END) AS BIGINT)
             FROM reactions WHERE room_id = $1 AND seq BETWEEN $2 AND $3
             GROUP BY seq, emoji ORDER BY seq, MIN(created_at), emoji",
        )
        .bind(room.0)
        .bind(db_seq(from))
        .bind(db_seq(through))
        .bind(reader.0)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(seq, emoji, count, mine)| ReactionCount {
                seq: seq as u64,
                emoji,
                count: count.clamp(0, i64::from(u32::MAX)) as u32,
                mine: mine != 0,
            })
            .collect())
    }

    async fn has_reaction(&self, reaction: &Reaction) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM reactions
             WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
        )
        .bind(reaction.room_id.0)
        .bind(db_seq(reaction.seq))
        .bind(reaction.emoji.as_str())
        .bind(reaction.user_id.0)
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(found.is_some())
    }
}

impl<E> SqlStore<E>
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
    /// Under the room's lock (which membership changes and appends take
    /// first): the refusal, if the user is not a member or the message is
    /// missing, or deleted when `adding` (removing from a deleted message
    /// finds nothing to remove: its reactions went with it).
    async fn check_target_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        reaction: &Reaction,
        adding: bool,
    ) -> StoreResult<Option<ReactionChange>> {
        let room = reaction.room_id;
        if !Self::lock_room(tx, room).await?
            || Self::role_in(tx, room, reaction.user_id).await?.is_none()
        {
            return Ok(Some(ReactionChange::NotMember));
        }
        let deleted_at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT deleted_at FROM messages WHERE room_id = $1 AND seq = $2")
                .bind(room.0)
                .bind(db_seq(reaction.seq))
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
        Ok(match deleted_at {
            None => Some(ReactionChange::NoMessage),
            Some(Some(_)) if adding => Some(ReactionChange::Deleted),
            Some(_) => None,
        })
    }
}
