//! Stored allowances: bounds counted in the database, so that every node and
//! every restart sees the same uses.

use palaver_domain::store::{Allowance, AllowanceStore, StoreResult};
use palaver_domain::time::Timestamp;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::{Engine, RowsAffected, SqlStore};
use crate::errors::map_err;

#[async_trait::async_trait]
impl<E> AllowanceStore for SqlStore<E>
where
    E: Engine,
    for<'c> &'c mut <E::Db as Database>::Connection: Executor<'c, Database = E::Db>,
    for<'q> <E::Db as Database>::Arguments<'q>: IntoArguments<'q, E::Db>,
    <E::Db as Database>::QueryResult: RowsAffected,
    i64: for<'q> Encode<'q, E::Db> + for<'r> Decode<'r, E::Db> + Type<E::Db>,
    for<'q> &'q str: Encode<'q, E::Db> + Type<E::Db>,
    E::Db: sqlx::database::HasStatementCache,
    usize: ColumnIndex<<E::Db as Database>::Row>,
{
    async fn take_allowances(
        &self,
        allowances: &[Allowance],
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        // In key order, so that two transactions taking the same keys lock
        // their rows in the same order (PostgreSQL).
        let mut ordered: Vec<&Allowance> = allowances.iter().collect();
        ordered.sort_by(|a, b| a.key.cmp(&b.key));
        let (_turn, mut tx) = self.begin_write().await?;
        for allowance in ordered {
            // One conditional upsert: a window that is over starts again at
            // one use; a live one counts one more only while under the limit
            // (PostgreSQL re-checks the condition on the locked row).
            let taken = sqlx::query(
                "INSERT INTO allowances (key, used, resets_at) VALUES ($1, 1, $2)
                 ON CONFLICT (key) DO UPDATE SET
                     used = CASE WHEN allowances.resets_at <= $3 THEN 1
                                 ELSE allowances.used + 1 END,
                     resets_at = CASE WHEN allowances.resets_at <= $3 THEN $2
                                      ELSE allowances.resets_at END
                 WHERE allowances.resets_at <= $3 OR allowances.used < $4",
            )
            .bind(allowance.key.as_str())
            .bind(now.plus(allowance.window).0)
            .bind(now.0)
            .bind(i64::from(allowance.limit))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected()
                > 0;
            if !taken {
                let resets_at: i64 =
                    sqlx::query_scalar("SELECT resets_at FROM allowances WHERE key = $1")
                        .bind(allowance.key.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                // None of the others is taken either.
                tx.rollback().await.map_err(map_err)?;
                return Ok(Some(Timestamp(resets_at)));
            }
        }
        sqlx::query("DELETE FROM allowances WHERE resets_at <= $1")
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(None)
    }
}
