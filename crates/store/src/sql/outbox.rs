//! The outbox: each change's events, leased to a relay that hands them to the bus.

use palaver_domain::events::OutboxEntry;
use palaver_domain::store::{OutboxStore, StoreResult};
use palaver_domain::time::Timestamp;
use palaver_domain::RoomId;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{decode, placeholders, Engine, RowsAffected, SqlStore, INSERT_CHUNK};
use crate::errors::map_err;

#[async_trait::async_trait]
impl<E> OutboxStore for SqlStore<E>
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
    async fn claim_outbox(
        &self,
        written_before: Timestamp,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1 WHERE id IN (
                 SELECT id FROM outbox
                 WHERE created_at < $2 AND (claimed_until IS NULL OR claimed_until < $3)
                 ORDER BY id LIMIT $4{}
             ) RETURNING id, room_id, origin, payload",
            E::SKIP_LOCKED
        );
        let _turn = self.engine.write_turn().await;
        let rows = sqlx::query(&sql)
            .bind(lease_until.0)
            .bind(written_before.0)
            .bind(now.0)
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await
            .map_err(map_err)?;
        let mut entries = rows
            .iter()
            .map(|row| {
                Ok(OutboxEntry {
                    id: row.try_get("id")?,
                    room_id: RoomId(row.try_get("room_id")?),
                    origin: row.try_get("origin")?,
                    payload: row.try_get("payload")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(map_err)?;
        // RETURNING promises no order; per-room order is id order.
        entries.sort_unstable_by_key(|e| e.id);
        Ok(entries)
    }

    async fn delete_outbox(&self, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let (_turn, mut tx) = self.begin_write().await?;
        if !E::RELAXED_COMMIT.is_empty() {
            sqlx::query(E::RELAXED_COMMIT)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for chunk in ids.chunks(INSERT_CHUNK) {
            let sql = format!(
                "DELETE FROM outbox WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            query
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn outbox_backlog(&self) -> StoreResult<u64> {
        // A reader: counting waits for no write turn.
        let row = sqlx::query("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.readers)
            .await
            .map_err(map_err)?;
        let rows: i64 = row.try_get(0).map_err(map_err)?;
        Ok(rows.max(0) as u64)
    }
}
