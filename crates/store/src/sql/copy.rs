//! `Transfer` (`palaver db copy`, `db backup`, `db restore`) over the SQL both
//! engines run: from a store's pools, or from one read-only transaction
//! ([`Snapshot`]).

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::{Engine, RowsAffected, SqlStore};

#[async_trait::async_trait]
impl<E> crate::transfer::Transfer for SqlStore<E>
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
    async fn count(
        &self,
        table: crate::transfer::Table,
    ) -> palaver_domain::store::StoreResult<i64> {
        let mut connection = self
            .readers
            .acquire()
            .await
            .map_err(crate::errors::map_err)?;
        Self::count_rows(&mut connection, table).await
    }

    async fn read_rows(
        &self,
        table: crate::transfer::Table,
        cursor: &crate::transfer::Cursor,
        limit: i64,
    ) -> palaver_domain::store::StoreResult<crate::transfer::Rows> {
        let mut connection = self
            .readers
            .acquire()
            .await
            .map_err(crate::errors::map_err)?;
        Self::read_page(&mut connection, table, cursor, limit).await
    }

    async fn write_rows(
        &self,
        rows: &crate::transfer::Rows,
    ) -> palaver_domain::store::StoreResult<()> {
        use crate::errors::map_err;
        use crate::transfer::{Rows, Table};
        let (_turn, mut tx) = self.begin_write().await?;
        match rows {
            Rows::Users(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO users (id, username, display_name, password_hash, created_at,
                                            last_seen_at, email, email_verified_at, deleted_at,
                                            retired_username, username_free_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    )
                    .bind(r.id)
                    .bind(&r.username)
                    .bind(&r.display_name)
                    .bind(&r.password_hash)
                    .bind(r.created_at)
                    .bind(r.last_seen_at)
                    .bind(r.email.as_deref())
                    .bind(r.email_verified_at)
                    .bind(r.deleted_at)
                    .bind(&r.retired_username)
                    .bind(r.username_free_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::Rooms(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO rooms (id, name, code, password_hash, owner_id, created_at, last_seq, kind, dm_key)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(r.id)
                    .bind(&r.name)
                    .bind(&r.code)
                    .bind(&r.password_hash)
                    .bind(r.owner_id)
                    .bind(r.created_at)
                    .bind(r.last_seq)
                    .bind(&r.kind)
                    .bind(&r.dm_key)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::Members(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO members (room_id, user_id, role, joined_at, last_read_seq)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(r.room_id)
                    .bind(r.user_id)
                    .bind(&r.role)
                    .bind(r.joined_at)
                    .bind(r.last_read_seq)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::Messages(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO messages
                         (room_id, seq, sender_id, body, client_id, created_at, reply_to, edited_at, deleted_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(r.room_id)
                    .bind(r.seq)
                    .bind(r.sender_id)
                    .bind(&r.body)
                    .bind(&r.client_id)
                    .bind(r.created_at)
                    .bind(r.reply_to)
                    .bind(r.edited_at)
                    .bind(r.deleted_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                let keys: Vec<(i64, i64)> = rows.iter().map(|r| (r.room_id, r.seq)).collect();
                self.engine.index_imported_messages(&mut tx, &keys).await?;
            }
            Rows::RefreshTokens(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO refresh_tokens
                         (token_hash, family, user_id, created_at, expires_at, used_at, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&r.token_hash)
                    .bind(&r.family)
                    .bind(r.user_id)
                    .bind(r.created_at)
                    .bind(r.expires_at)
                    .bind(r.used_at)
                    .bind(r.revoked_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::Sessions(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO sessions
                         (id, user_id, created_at, last_used_at, expires_at, user_agent, revoked_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&r.id)
                    .bind(r.user_id)
                    .bind(r.created_at)
                    .bind(r.last_used_at)
                    .bind(r.expires_at)
                    .bind(r.user_agent.as_deref())
                    .bind(r.revoked_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::SigningKeys(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO signing_keys
                         (kid, algorithm, private_key, created_at, signs_from, bootstrap)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&r.kid)
                    .bind(&r.algorithm)
                    .bind(&r.private_key)
                    .bind(r.created_at)
                    .bind(r.signs_from)
                    .bind(r.bootstrap)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::Bans(rows) => Self::write_room_marks(&mut tx, Table::Bans, rows).await?,
            Rows::Invitations(rows) => {
                Self::write_room_marks(&mut tx, Table::Invitations, rows).await?
            }
            Rows::Admins(_) | Rows::Suspensions(_) | Rows::Reports(_) | Rows::AdminAudit(_) => {
                Self::write_admin_rows(&mut tx, rows).await?
            }
            Rows::Reactions(rows) => Self::write_reactions(&mut tx, rows).await?,
            Rows::Mentions(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO mentions (user_id, room_id, seq, sender_id, created_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(r.user_id)
                    .bind(r.room_id)
                    .bind(r.seq)
                    .bind(r.sender_id)
                    .bind(r.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::Attachments(rows) => Self::write_attachment_rows(&mut tx, rows).await?,
        }
        tx.commit().await.map_err(map_err)
    }

    async fn finish_import(&self) -> palaver_domain::store::StoreResult<()> {
        self.engine.realign_ids(self).await
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
    <E::Db as Database>::Row: super::decode::Columns,
    usize: ColumnIndex<<E::Db as Database>::Row>,
    for<'s> &'s str: ColumnIndex<<E::Db as Database>::Row>,
{
    /// The rows of `table`, counted on `connection`.
    pub(crate) async fn count_rows(
        connection: &mut <E::Db as Database>::Connection,
        table: crate::transfer::Table,
    ) -> palaver_domain::store::StoreResult<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        sqlx::query_scalar(&sql)
            .fetch_one(connection)
            .await
            .map_err(crate::errors::map_err)
    }

    /// Up to `limit` rows of `table` after `cursor`, in key order, read on `connection`.
    pub(crate) async fn read_page(
        connection: &mut <E::Db as Database>::Connection,
        table: crate::transfer::Table,
        cursor: &crate::transfer::Cursor,
        limit: i64,
    ) -> palaver_domain::store::StoreResult<crate::transfer::Rows> {
        use crate::errors::map_err;
        use crate::transfer::*;
        use sqlx::Row;
        Ok(match table {
            Table::Users => Rows::Users(
                sqlx::query(
                    "SELECT id, username, display_name, password_hash, created_at, last_seen_at,
                            email, email_verified_at, deleted_at, retired_username,
                            username_free_at
                     FROM users WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(cursor.first)
                .bind(limit)
                .fetch_all(connection)
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| {
                    Ok(UserRow {
                        id: r.try_get("id")?,
                        username: r.try_get("username")?,
                        display_name: r.try_get("display_name")?,
                        password_hash: r.try_get("password_hash")?,
                        created_at: r.try_get("created_at")?,
                        last_seen_at: r.try_get("last_seen_at")?,
                        email: r.try_get("email")?,
                        email_verified_at: r.try_get("email_verified_at")?,
                        deleted_at: r.try_get("deleted_at")?,
                        retired_username: r.try_get("retired_username")?,
                        username_free_at: r.try_get("username_free_at")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(map_err)?,
            ),
            Table::Rooms => Rows::Rooms(
                sqlx::query(
                    "SELECT id, name, code, password_hash, owner_id, created_at, last_seq, kind, dm_key
                     FROM rooms WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(cursor.first)
                .bind(limit)
                .fetch_all(connection)
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| {
                    Ok(RoomRow {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        code: r.try_get("code")?,
                        password_hash: r.try_get("password_hash")?,
                        owner_id: r.try_get("owner_id")?,
                        created_at: r.try_get("created_at")?,
                        last_seq: r.try_get("last_seq")?,
                        kind: r.try_get("kind")?,
                        dm_key: r.try_get("dm_key")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(map_err)?,
            ),
            Table::Members => Rows::Members(
                sqlx::query(
                    "SELECT room_id, user_id, role, joined_at, last_read_seq FROM members
                     WHERE room_id > $1 OR (room_id = $1 AND user_id > $2)
                     ORDER BY room_id, user_id LIMIT $3",
                )
                .bind(cursor.first)
                .bind(cursor.second)
                .bind(limit)
                .fetch_all(connection)
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| {
                    Ok(MemberRow {
                        room_id: r.try_get("room_id")?,
                        user_id: r.try_get("user_id")?,
                        role: r.try_get("role")?,
                        joined_at: r.try_get("joined_at")?,
                        last_read_seq: r.try_get("last_read_seq")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(map_err)?,
            ),
            Table::Messages => Rows::Messages(
                sqlx::query(
                    "SELECT room_id, seq, sender_id, body, client_id, created_at, reply_to, edited_at, deleted_at
                     FROM messages
                     WHERE room_id > $1 OR (room_id = $1 AND seq > $2)
                     ORDER BY room_id, seq LIMIT $3",
                )
                .bind(cursor.first)
                .bind(cursor.second)
                .bind(limit)
                .fetch_all(connection)
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| {
                    Ok(MessageRow {
                        room_id: r.try_get("room_id")?,
                        seq: r.try_get("seq")?,
                        sender_id: r.try_get("sender_id")?,
                        body: r.try_get("body")?,
                        client_id: r.try_get("client_id")?,
                        created_at: r.try_get("created_at")?,
                        reply_to: r.try_get("reply_to")?,
                        edited_at: r.try_get("edited_at")?,
                        deleted_at: r.try_get("deleted_at")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(map_err)?,
            ),
            Table::RefreshTokens => Rows::RefreshTokens(
                sqlx::query(
                    "SELECT token_hash, family, user_id, created_at, expires_at, used_at, revoked_at
                     FROM refresh_tokens WHERE token_hash > $1 ORDER BY token_hash LIMIT $2",
                )
                .bind(&cursor.text)
                .bind(limit)
                .fetch_all(connection)
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| {
                    Ok(TokenRow {
                        token_hash: r.try_get("token_hash")?,
                        family: r.try_get("family")?,
                        user_id: r.try_get("user_id")?,
                        created_at: r.try_get("created_at")?,
                        expires_at: r.try_get("expires_at")?,
                        used_at: r.try_get("used_at")?,
                        revoked_at: r.try_get("revoked_at")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(map_err)?,
            ),
            Table::Sessions => Rows::Sessions(
                sqlx::query(
                    "SELECT id, user_id, created_at, last_used_at, expires_at, user_agent, revoked_at
                     FROM sessions WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(&cursor.text)
                .bind(limit)
                .fetch_all(connection)
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| {
                    Ok(SessionRow {
                        id: r.try_get("id")?,
                        user_id: r.try_get("user_id")?,
                        created_at: r.try_get("created_at")?,
                        last_used_at: r.try_get("last_used_at")?,
                        expires_at: r.try_get("expires_at")?,
                        user_agent: r.try_get("user_agent")?,
                        revoked_at: r.try_get("revoked_at")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(map_err)?,
            ),
            Table::SigningKeys => Rows::SigningKeys(
                sqlx::query(
                    "SELECT kid, algorithm, private_key, created_at, signs_from, bootstrap
                     FROM signing_keys WHERE kid > $1 ORDER BY kid LIMIT $2",
                )
                .bind(&cursor.text)
                .bind(limit)
                .fetch_all(connection)
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| {
                    Ok(SigningKeyRow {
                        kid: r.try_get("kid")?,
                        algorithm: r.try_get("algorithm")?,
                        private_key: r.try_get("private_key")?,
                        created_at: r.try_get("created_at")?,
                        signs_from: r.try_get("signs_from")?,
                        bootstrap: r.try_get("bootstrap")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(map_err)?,
            ),
            Table::Bans => Rows::Bans(Self::read_room_marks(connection, table, cursor, limit).await?),
            Table::Invitations => {
                Rows::Invitations(Self::read_room_marks(connection, table, cursor, limit).await?)
            }
            Table::Admins | Table::Suspensions | Table::Reports | Table::AdminAudit => {
                Self::read_admin_page(connection, table, cursor, limit).await?
            }
            Table::Reactions => Rows::Reactions(Self::read_reactions(connection, cursor, limit).await?),
            Table::Mentions => Rows::Mentions(
                sqlx::query(
                    "SELECT user_id, room_id, seq, sender_id, created_at FROM mentions
                     WHERE user_id > $1 OR (user_id = $1 AND (room_id > $2
                           OR (room_id = $2 AND seq > $3)))
                     ORDER BY user_id, room_id, seq LIMIT $4",
                )
                .bind(cursor.first)
                .bind(cursor.second)
                .bind(cursor.third)
                .bind(limit)
                .fetch_all(connection)
                .await
                .map_err(map_err)?
                .iter()
                .map(|r| {
                    Ok(MentionRow {
                        user_id: r.try_get("user_id")?,
                        room_id: r.try_get("room_id")?,
                        seq: r.try_get("seq")?,
                        sender_id: r.try_get("sender_id")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(map_err)?,
            ),
            Table::Attachments => {
                Rows::Attachments(Self::read_attachment_page(connection, cursor, limit).await?)
            }
        })
    }

    /// A page of `bans` or `invitations`, which share their shape.
    async fn read_room_marks(
        connection: &mut <E::Db as Database>::Connection,
        table: crate::transfer::Table,
        cursor: &crate::transfer::Cursor,
        limit: i64,
    ) -> palaver_domain::store::StoreResult<Vec<crate::transfer::RoomMarkRow>> {
        use sqlx::Row;
        let sql = format!(
            "SELECT room_id, user_id, {by} AS by_user, created_at FROM {table}
             WHERE room_id > $1 OR (room_id = $1 AND user_id > $2)
             ORDER BY room_id, user_id LIMIT $3",
            by = room_mark_by(table),
            table = table.name()
        );
        sqlx::query(&sql)
            .bind(cursor.first)
            .bind(cursor.second)
            .bind(limit)
            .fetch_all(connection)
            .await
            .map_err(crate::errors::map_err)?
            .iter()
            .map(|r| {
                Ok(crate::transfer::RoomMarkRow {
                    room_id: r.try_get("room_id")?,
                    user_id: r.try_get("user_id")?,
                    by: r.try_get("by_user")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(crate::errors::map_err)
    }

    async fn write_room_marks(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        table: crate::transfer::Table,
        rows: &[crate::transfer::RoomMarkRow],
    ) -> palaver_domain::store::StoreResult<()> {
        let sql = format!(
            "INSERT INTO {table} (room_id, user_id, {by}, created_at) VALUES ($1, $2, $3, $4)",
            by = room_mark_by(table),
            table = table.name()
        );
        for r in rows {
            sqlx::query(&sql)
                .bind(r.room_id)
                .bind(r.user_id)
                .bind(r.by)
                .bind(r.created_at)
                .execute(&mut **tx)
                .await
                .map_err(crate::errors::map_err)?;
        }
        Ok(())
    }
}

/// The column naming who marked the user, in a table of `RoomMarkRow`s.
fn room_mark_by(table: crate::transfer::Table) -> &'static str {
    match table {
        crate::transfer::Table::Invitations => "invited_by",
        _ => "banned_by",
    }
}

/// A transfer source that reads every count and page in one read-only
/// transaction, so what it yields is the store at one instant even while
/// others write (PostgreSQL: `REPEATABLE READ`). Writing to it is refused.
pub struct Snapshot<E: Engine> {
    transaction: tokio::sync::Mutex<sqlx::Transaction<'static, E::Db>>,
}

impl<E: Engine> SqlStore<E> {
    /// A [`Snapshot`] of this store: a transaction begun with `begin`, a
    /// statement that makes it read-only and one snapshot on this engine.
    pub(crate) async fn snapshot(
        &self,
        begin: &'static str,
    ) -> palaver_domain::store::StoreResult<Snapshot<E>> {
        let transaction = self
            .readers
            .begin_with(begin)
            .await
            .map_err(crate::errors::map_err)?;
        Ok(Snapshot {
            transaction: tokio::sync::Mutex::new(transaction),
        })
    }
}

#[async_trait::async_trait]
impl<E> crate::transfer::Transfer for Snapshot<E>
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
    async fn count(
        &self,
        table: crate::transfer::Table,
    ) -> palaver_domain::store::StoreResult<i64> {
        let mut transaction = self.transaction.lock().await;
        SqlStore::<E>::count_rows(&mut transaction, table).await
    }

    async fn read_rows(
        &self,
        table: crate::transfer::Table,
        cursor: &crate::transfer::Cursor,
        limit: i64,
    ) -> palaver_domain::store::StoreResult<crate::transfer::Rows> {
        let mut transaction = self.transaction.lock().await;
        SqlStore::<E>::read_page(&mut transaction, table, cursor, limit).await
    }

    async fn write_rows(
        &self,
        _rows: &crate::transfer::Rows,
    ) -> palaver_domain::store::StoreResult<()> {
        Err(read_only())
    }

    async fn finish_import(&self) -> palaver_domain::store::StoreResult<()> {
        Err(read_only())
    }
}

fn read_only() -> palaver_domain::store::StoreError {
    palaver_domain::store::StoreError::Other("a snapshot is read-only".into())
}
