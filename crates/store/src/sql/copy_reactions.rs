//! `Transfer` of `reactions`, for `copy.rs`: keyset pages over its primary
//! key `(room_id, seq, emoji, user_id)`.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{Engine, RowsAffected, SqlStore};
use crate::errors::map_err;
use crate::transfer::{Cursor, ReactionRow};

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
    <E::Db as Database>::Row: super::decode::Columns,
    usize: ColumnIndex<<E::Db as Database>::Row>,
    for<'s> &'s str: ColumnIndex<<E::Db as Database>::Row>,
{
    /// Up to `limit` reactions after `cursor` (`first`: room, `second`:
    /// seq, `text`: emoji, `third`: user), in key order.
    pub(super) async fn read_reactions(
        connection: &mut <E::Db as Database>::Connection,
        cursor: &Cursor,
        limit: i64,
    ) -> palaver_domain::store::StoreResult<Vec<ReactionRow>> {
        sqlx::query(
            "SELECT room_id, seq, emoji, user_id, created_at FROM reactions
             WHERE room_id > $1
                OR (room_id = $1 AND seq > $2)
                OR (room_id = $1 AND seq = $2 AND emoji > $3)
                OR (room_id = $1 AND seq = $2 AND emoji = $3 AND user_id > $4)
             ORDER BY room_id, seq, emoji, user_id LIMIT $5",
        )
        .bind(cursor.first)
        .bind(cursor.second)
        .bind(cursor.text.as_str())
        .bind(cursor.third)
        .bind(limit)
        .fetch_all(connection)
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| {
            Ok(ReactionRow {
                room_id: r.try_get("room_id")?,
                seq: r.try_get("seq")?,
                emoji: r.try_get("emoji")?,
                user_id: r.try_get("user_id")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(map_err)
    }

    pub(super) async fn write_reactions(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        rows: &[ReactionRow],
    ) -> palaver_domain::store::StoreResult<()> {
        for r in rows {
            sqlx::query(
                "INSERT INTO reactions (room_id, seq, emoji, user_id, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(r.room_id)
            .bind(r.seq)
            .bind(r.emoji.as_str())
            .bind(r.user_id)
            .bind(r.created_at)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        }
        Ok(())
    }
}
