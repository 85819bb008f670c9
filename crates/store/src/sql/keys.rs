//! The keys that sign access tokens.

use palaver_domain::keys::{KeyAlgorithm, SigningKey};
use palaver_domain::store::{KeyStore, StoreError, StoreResult};
use palaver_domain::time::Timestamp;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::decode::Columns;
use super::{Engine, RowsAffected, SqlStore};
use crate::errors::map_err;

#[async_trait::async_trait]
impl<E> KeyStore for SqlStore<E>
where
    E: Engine,
    for<'c> &'c mut <E::Db as Database>::Connection: Executor<'c, Database = E::Db>,
    for<'q> <E::Db as Database>::Arguments<'q>: IntoArguments<'q, E::Db>,
    <E::Db as Database>::QueryResult: RowsAffected,
    i64: for<'q> Encode<'q, E::Db> + for<'r> Decode<'r, E::Db> + Type<E::Db>,
    String: for<'q> Encode<'q, E::Db> + for<'r> Decode<'r, E::Db> + Type<E::Db>,
    for<'q> &'q str: Encode<'q, E::Db> + Type<E::Db>,
    for<'q> Option<i64>: Encode<'q, E::Db>,
    E::Db: sqlx::database::HasStatementCache,
    <E::Db as Database>::Row: Columns,
    usize: ColumnIndex<<E::Db as Database>::Row>,
    for<'s> &'s str: ColumnIndex<<E::Db as Database>::Row>,
{
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, created_at, signs_from FROM signing_keys",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let algorithm = row.text("algorithm")?;
                Ok(SigningKey {
                    kid: row.text("kid")?,
                    algorithm: KeyAlgorithm::parse(&algorithm).map_err(|_| {
                        StoreError::Other(format!("unknown signing algorithm {algorithm:?}"))
                    })?,
                    private_der: SigningKey::decode_private_text(&row.text("private_key")?)
                        .map_err(|_| StoreError::Other("a signing key is not base64".into()))?,
                    created_at: Timestamp(row.int("created_at")?),
                    signs_from: Timestamp(row.int("signs_from")?),
                })
            })
            .collect()
    }

    async fn insert_signing_key(&self, key: &SigningKey, first: bool) -> StoreResult<bool> {
        let _turn = self.engine.write_turn().await;
        // The first key is the one with `bootstrap = 1`, which is unique; the
        // NOT EXISTS keeps a first key out of a store that has rotated ones.
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, created_at, signs_from, bootstrap)
             SELECT $1, $2, $3, $4, $5, CAST($6 AS BIGINT)
             WHERE CAST($6 AS BIGINT) IS NULL OR NOT EXISTS (SELECT 1 FROM signing_keys)
             ON CONFLICT (bootstrap) DO NOTHING",
        )
        .bind(&key.kid)
        .bind(key.algorithm.jose_name())
        .bind(key.private_text())
        .bind(key.created_at.0)
        .bind(key.signs_from.0)
        .bind(first.then_some(1_i64))
        .execute(&self.writer)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(inserted > 0)
    }

    async fn delete_signing_keys(&self, kids: &[String]) -> StoreResult<()> {
        let _turn = self.engine.write_turn().await;
        for kid in kids {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .execute(&self.writer)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn cluster_secret(&self, candidate: &str) -> StoreResult<String> {
        let _turn = self.engine.write_turn().await;
        sqlx::query(
            "INSERT INTO cluster_secret (id, secret, created_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(candidate)
        .bind(Timestamp::now().0)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        // From the writer: a reader might not see the row just written yet.
        let row = sqlx::query("SELECT secret FROM cluster_secret WHERE id = 1")
            .fetch_one(&self.writer)
            .await
            .map_err(map_err)?;
        row.text("secret")
    }
}
