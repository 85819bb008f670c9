//! `Transfer` of the `attachments` table, for `copy.rs`: keyed by its text id.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{Engine, RowsAffected, SqlStore};
use crate::errors::map_err;
use crate::transfer::{AttachmentRow, Cursor};

impl<E> SqlStore<E>
where
    E: Engine,
    for<'c> &'c mut <E::Db as Database>::Connection: Executor<'c, Database = E::Db>,
    for<'q> <E::Db as Database>::Arguments<'q>: IntoArguments<'q, E::Db>,
    <E::Db as Database>::QueryResult: RowsAffected,
    i64: for<'q> Encode<'q, E::Db> + for<'r> Decode<'r, E::Db> + Type<E::Db>,
    Option<i64>: for<'r> Decode<'r, E::Db>,
    String: for<'q> Encode<'q, E::Db> + for<'r> Decode<'r, E::Db> + Type<E::Db>,
    for<'q> &'q str: Encode<'q, E::Db> + Type<E::Db>,
    for<'q> Option<i64>: Encode<'q, E::Db>,
    E::Db: sqlx::database::HasStatementCache,
    usize: ColumnIndex<<E::Db as Database>::Row>,
    for<'s> &'s str: ColumnIndex<<E::Db as Database>::Row>,
{
    /// Up to `limit` rows after `cursor.text`, in id order.
    pub(super) async fn read_attachment_page(
        connection: &mut <E::Db as Database>::Connection,
        cursor: &Cursor,
        limit: i64,
    ) -> palaver_domain::store::StoreResult<Vec<AttachmentRow>> {
        let rows = sqlx::query(
            "SELECT id, room_id, uploader_id, name, size, content_type, sha256, width, height,
                    created_at, message_seq
             FROM attachments WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(cursor.text.as_str())
        .bind(limit)
        .fetch_all(connection)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(AttachmentRow {
                    id: r.try_get("id")?,
                    room_id: r.try_get("room_id")?,
                    uploader_id: r.try_get("uploader_id")?,
                    name: r.try_get("name")?,
                    size: r.try_get("size")?,
                    content_type: r.try_get("content_type")?,
                    sha256: r.try_get("sha256")?,
                    width: r.try_get("width")?,
                    height: r.try_get("height")?,
                    created_at: r.try_get("created_at")?,
                    message_seq: r.try_get("message_seq")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    /// Inserts the rows as they are, in `tx`.
    pub(super) async fn write_attachment_rows(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        rows: &[AttachmentRow],
    ) -> palaver_domain::store::StoreResult<()> {
        for r in rows {
            sqlx::query(
                "INSERT INTO attachments (id, room_id, uploader_id, name, size, content_type,
                                          sha256, width, height, created_at, message_seq)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(r.id.as_str())
            .bind(r.room_id)
            .bind(r.uploader_id)
            .bind(r.name.as_str())
            .bind(r.size)
            .bind(r.content_type.as_str())
            .bind(r.sha256.as_str())
            .bind(r.width)
            .bind(r.height)
            .bind(r.created_at)
            .bind(r.message_seq)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        }
        Ok(())
    }
}
