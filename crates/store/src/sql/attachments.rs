//! Attachments' rows: stored within the uploader's quota, read for a
//! download, and found and removed once no live message carries them.

use palaver_domain::attachments::Attachment;
use palaver_domain::model::Message;
use palaver_domain::store::{AttachmentInsert, AttachmentStore, NewAttachment, StoreResult};
use palaver_domain::time::Timestamp;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::{decode, Engine, RowsAffected, SqlStore};
use crate::errors::map_err;

/// A macro as well as a constant, as `message_columns!`.
macro_rules! attachment_columns {
    () => {
        "a.id AS a_id, a.room_id AS a_room_id, a.uploader_id AS a_uploader_id, \
         a.name AS a_name, a.size AS a_size, a.content_type AS a_content_type, \
         a.sha256 AS a_sha256, a.width AS a_width, a.height AS a_height, \
         a.created_at AS a_created_at, a.message_seq AS a_message_seq"
    };
}
pub(crate) use attachment_columns;

/// Whether the attachment `a` is an orphan: unclaimed and stored before
/// `$1`, or its room or its live message is gone.
const ORPHAN: &str = "((a.message_seq IS NULL AND a.created_at < $1) \
    OR NOT EXISTS (SELECT 1 FROM rooms r WHERE r.id = a.room_id) \
    OR (a.message_seq IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages m \
        WHERE m.room_id = a.room_id AND m.seq = a.message_seq AND m.deleted_at IS NULL)))";

#[async_trait::async_trait]
impl<E> AttachmentStore for SqlStore<E>
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
    for<'q> Option<String>: Encode<'q, E::Db>,
    for<'q> Option<&'q str>: Encode<'q, E::Db>,
    E::Db: sqlx::database::HasStatementCache,
    <E::Db as Database>::Row: decode::Columns,
    usize: ColumnIndex<<E::Db as Database>::Row>,
    for<'s> &'s str: ColumnIndex<<E::Db as Database>::Row>,
{
    async fn attachment_bytes_held(&self, user: palaver_domain::UserId) -> StoreResult<u64> {
        let held: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE uploader_id = $1",
        )
        .bind(user.0)
        .fetch_one(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(held as u64)
    }

    async fn insert_attachment(
        &self,
        attachment: &NewAttachment,
        quota_bytes: u64,
    ) -> StoreResult<AttachmentInsert> {
        let (_turn, mut tx) = self.begin_write().await?;
        // The uploader's row, locked: their uploads store one at a time, so
        // the sum read below is the one this insert adds to.
        let alive: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL{}",
            E::FOR_NO_KEY_UPDATE
        ))
        .bind(attachment.uploader_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if alive.is_none()
            || Self::role_in(&mut tx, attachment.room_id, attachment.uploader_id)
                .await?
                .is_none()
        {
            return Ok(AttachmentInsert::NotMember);
        }
        let held: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM attachments WHERE uploader_id = $1",
        )
        .bind(attachment.uploader_id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if (held as u64).saturating_add(attachment.size) > quota_bytes {
            return Ok(AttachmentInsert::OverQuota);
        }
        sqlx::query(
            "INSERT INTO attachments (id, room_id, uploader_id, name, size, content_type, \
             sha256, width, height, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(attachment.id.as_str())
        .bind(attachment.room_id.0)
        .bind(attachment.uploader_id.0)
        .bind(attachment.name.as_str())
        .bind(attachment.size as i64)
        .bind(attachment.content_type.as_str())
        .bind(attachment.sha256.as_str())
        .bind(attachment.width.map(i64::from))
        .bind(attachment.height.map(i64::from))
        .bind(attachment.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(AttachmentInsert::Stored(attachment.stored()))
    }

    async fn attachment(&self, id: &str) -> StoreResult<Option<Attachment>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            attachment_columns!(),
            " FROM attachments a WHERE a.id = $1 AND (a.message_seq IS NULL OR EXISTS \
             (SELECT 1 FROM messages m WHERE m.room_id = a.room_id \
              AND m.seq = a.message_seq AND m.deleted_at IS NULL))"
        ))
        .bind(id)
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        row.as_ref().map(decode::attachment).transpose()
    }

    async fn orphaned_attachments(
        &self,
        unclaimed_before: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(&format!(
            "SELECT a.id FROM attachments a WHERE {ORPHAN} LIMIT $2"
        ))
        .bind(unclaimed_before.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)
    }

    async fn delete_orphaned_attachment(
        &self,
        id: &str,
        unclaimed_before: Timestamp,
    ) -> StoreResult<bool> {
        let (_turn, mut tx) = self.begin_write().await?;
        let deleted = sqlx::query(&format!(
            "DELETE FROM attachments WHERE id IN \
             (SELECT a.id FROM attachments a WHERE a.id = $2 AND {ORPHAN})"
        ))
        .bind(unclaimed_before.0)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        tx.commit().await.map_err(map_err)?;
        Ok(deleted > 0)
    }
}

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
    for<'q> Option<String>: Encode<'q, E::Db>,
    for<'q> Option<&'q str>: Encode<'q, E::Db>,
    E::Db: sqlx::database::HasStatementCache,
    <E::Db as Database>::Row: decode::Columns,
    usize: ColumnIndex<<E::Db as Database>::Row>,
    for<'s> &'s str: ColumnIndex<<E::Db as Database>::Row>,
{
    /// Fills in the attachments of `messages` (a page of one room, by
    /// seq): one read, and only of the page's seq range; a deleted
    /// message carries none.
    pub(crate) async fn with_attachments(&self, messages: &mut [Message]) -> StoreResult<()> {
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            return Ok(());
        };
        let (room, low, high) = (
            first.room_id,
            first.seq.min(last.seq),
            first.seq.max(last.seq),
        );
        let rows = sqlx::query(concat!(
            "SELECT ",
            attachment_columns!(),
            " FROM attachments a WHERE a.room_id = $1 AND a.message_seq BETWEEN $2 AND $3 \
             ORDER BY a.message_seq, a.created_at, a.id"
        ))
        .bind(room.0)
        .bind(low as i64)
        .bind(high as i64)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        for row in &rows {
            let attachment = decode::attachment(row)?;
            let Some(seq) = attachment.message_seq else {
                continue;
            };
            if let Some(message) = messages
                .iter_mut()
                .find(|m| m.seq == seq && m.room_id == room && m.deleted_at.is_none())
            {
                message.attachments.push(attachment);
            }
        }
        Ok(())
    }
}
