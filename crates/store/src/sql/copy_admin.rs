//! `Transfer` of server administration's tables (admins, suspensions,
//! reports, the audit log), for `copy.rs`: each keyed by one integer.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{Engine, RowsAffected, SqlStore};
use crate::errors::map_err;
use crate::transfer::{AdminRow, AuditRow, Cursor, ReportRow, Rows, SuspensionRow, Table};

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
    /// Up to `limit` rows of one of the tables after `cursor.first`.
    pub(super) async fn read_admin_page(
        connection: &mut <E::Db as Database>::Connection,
        table: Table,
        cursor: &Cursor,
        limit: i64,
    ) -> palaver_domain::store::StoreResult<Rows> {
        let (columns, key) = match table {
            Table::Admins => ("user_id, granted_at, granted_by", "user_id"),
            Table::Suspensions => (
                "user_id, reason, ends_at, suspended_by, suspended_at",
                "user_id",
            ),
            Table::Reports => (
                "id, room_id, seq, reporter_id, reason, created_at, resolved_at, resolved_by,
                 resolution",
                "id",
            ),
            Table::AdminAudit => (
                "id, acted_at, admin_id, action, target_kind, target_id, target_seq, reason,
                 detail",
                "id",
            ),
            other => unreachable!("{} is not an admin table", other.name()),
        };
        let sql = format!(
            "SELECT {columns} FROM {} WHERE {key} > $1 ORDER BY {key} LIMIT $2",
            table.name()
        );
        let rows = sqlx::query(&sql)
            .bind(cursor.first)
            .bind(limit)
            .fetch_all(connection)
            .await
            .map_err(map_err)?;
        let read = || -> Result<Rows, sqlx::Error> {
            Ok(match table {
                Table::Admins => Rows::Admins(
                    rows.iter()
                        .map(|r| {
                            Ok(AdminRow {
                                user_id: r.try_get("user_id")?,
                                granted_at: r.try_get("granted_at")?,
                                granted_by: r.try_get("granted_by")?,
                            })
                        })
                        .collect::<Result<_, sqlx::Error>>()?,
                ),
                Table::Suspensions => Rows::Suspensions(
                    rows.iter()
                        .map(|r| {
                            Ok(SuspensionRow {
                                user_id: r.try_get("user_id")?,
                                reason: r.try_get("reason")?,
                                ends_at: r.try_get("ends_at")?,
                                suspended_by: r.try_get("suspended_by")?,
                                suspended_at: r.try_get("suspended_at")?,
                            })
                        })
                        .collect::<Result<_, sqlx::Error>>()?,
                ),
                Table::Reports => Rows::Reports(
                    rows.iter()
                        .map(|r| {
                            Ok(ReportRow {
                                id: r.try_get("id")?,
                                room_id: r.try_get("room_id")?,
                                seq: r.try_get("seq")?,
                                reporter_id: r.try_get("reporter_id")?,
                                reason: r.try_get("reason")?,
                                created_at: r.try_get("created_at")?,
                                resolved_at: r.try_get("resolved_at")?,
                                resolved_by: r.try_get("resolved_by")?,
                                resolution: r.try_get("resolution")?,
                            })
                        })
                        .collect::<Result<_, sqlx::Error>>()?,
                ),
                _ => Rows::AdminAudit(
                    rows.iter()
                        .map(|r| {
                            Ok(AuditRow {
                                id: r.try_get("id")?,
                                acted_at: r.try_get("acted_at")?,
                                admin_id: r.try_get("admin_id")?,
                                action: r.try_get("action")?,
                                target_kind: r.try_get("target_kind")?,
                                target_id: r.try_get("target_id")?,
                                target_seq: r.try_get("target_seq")?,
                                reason: r.try_get("reason")?,
                                detail: r.try_get("detail")?,
                            })
                        })
                        .collect::<Result<_, sqlx::Error>>()?,
                ),
            })
        };
        read().map_err(map_err)
    }

    /// Inserts rows of one of the tables as they are, in `tx`.
    pub(super) async fn write_admin_rows(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        rows: &Rows,
    ) -> palaver_domain::store::StoreResult<()> {
        match rows {
            Rows::Admins(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO admins (user_id, granted_at, granted_by) VALUES ($1, $2, $3)",
                    )
                    .bind(r.user_id)
                    .bind(r.granted_at)
                    .bind(r.granted_by)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::Suspensions(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO suspensions
                             (user_id, reason, ends_at, suspended_by, suspended_at)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(r.user_id)
                    .bind(&r.reason)
                    .bind(r.ends_at)
                    .bind(r.suspended_by)
                    .bind(r.suspended_at)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::Reports(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO reports (id, room_id, seq, reporter_id, reason, created_at,
                                              resolved_at, resolved_by, resolution)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(r.id)
                    .bind(r.room_id)
                    .bind(r.seq)
                    .bind(r.reporter_id)
                    .bind(&r.reason)
                    .bind(r.created_at)
                    .bind(r.resolved_at)
                    .bind(r.resolved_by)
                    .bind(r.resolution.as_deref())
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            Rows::AdminAudit(rows) => {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO admin_audit (id, acted_at, admin_id, action, target_kind,
                                                  target_id, target_seq, reason, detail)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(r.id)
                    .bind(r.acted_at)
                    .bind(r.admin_id)
                    .bind(&r.action)
                    .bind(&r.target_kind)
                    .bind(r.target_id)
                    .bind(r.target_seq)
                    .bind(r.reason.as_deref())
                    .bind(r.detail.as_deref())
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?;
                }
            }
            _ => unreachable!("not an admin table's rows"),
        }
        Ok(())
    }
}
