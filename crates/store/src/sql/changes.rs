//! Helpers of every change: its events into the outbox in the change's
//! transaction, and the owner hand-over and room deletion two changes share.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::{Engine, RowsAffected, SqlStore};

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
    /// Writes `events` to the outbox (when on) and commits `tx`.
    pub(crate) async fn commit_events<T>(
        &self,
        mut tx: sqlx::Transaction<'_, E::Db>,
        value: T,
        events: Vec<palaver_domain::events::DomainEvent>,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<palaver_domain::store::Committed<T>> {
        let outbox = self.write_outbox(&mut tx, &events, now).await?;
        tx.commit().await.map_err(crate::errors::map_err)?;
        Ok(palaver_domain::store::Committed {
            value,
            events,
            outbox,
        })
    }

    /// Deletes the room with its members, messages and bans; false when it
    /// did not exist.
    pub(super) async fn delete_room_in(
        &self,
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: palaver_domain::RoomId,
    ) -> palaver_domain::store::StoreResult<bool> {
        use crate::errors::map_err;
        // The room's row lock first, the one appends take (PostgreSQL): an
        // append holding it commits before its messages are deleted here,
        // and one waiting for it then finds no room.
        sqlx::query(&format!(
            "SELECT id FROM rooms WHERE id = $1{}",
            E::FOR_UPDATE
        ))
        .bind(room.0)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        // Children first: SQLite enforces foreign keys per connection, and
        // explicit deletes keep both engines' behaviour identical.
        for sql in [
            "DELETE FROM messages WHERE room_id = $1",
            "DELETE FROM members WHERE room_id = $1",
            "DELETE FROM bans WHERE room_id = $1",
        ] {
            sqlx::query(sql)
                .bind(room.0)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
        }
        let deleted = sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(room.0)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(deleted > 0)
    }

    /// Makes `user` the room's owner (role and `rooms.owner_id`); returns
    /// the events that describe it.
    pub(super) async fn make_owner(
        &self,
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::events::DomainEvent>> {
        use crate::errors::map_err;
        sqlx::query("UPDATE members SET role = 'owner' WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE rooms SET owner_id = $1 WHERE id = $2")
            .bind(user.0)
            .bind(room.0)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        let updated = Self::room_in(tx, room).await?;
        Ok(vec![
            palaver_domain::events::DomainEvent::RoleChanged {
                room_id: room,
                user_id: user,
                role: palaver_domain::model::Role::Owner,
            },
            palaver_domain::events::DomainEvent::RoomUpdated(updated.profile()),
        ])
    }

    pub(super) async fn room_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: palaver_domain::RoomId,
    ) -> palaver_domain::store::StoreResult<palaver_domain::model::Room> {
        let sql = format!(
            "SELECT {} FROM rooms r WHERE r.id = $1",
            crate::sql::ROOM_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(room.0)
            .fetch_one(&mut **tx)
            .await
            .map_err(crate::errors::map_err)?;
        super::decode::room(&row)
    }

    /// Writes `events` to the outbox inside `tx` when this store has one;
    /// returns the new rows, each event encoded once (empty without an outbox).
    async fn write_outbox(
        &self,
        tx: &mut sqlx::Transaction<'_, E::Db>,
        events: &[palaver_domain::events::DomainEvent],
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::events::OutboxRow>> {
        let Some(origin) = self.outbox_origin.as_deref() else {
            return Ok(Vec::new());
        };
        let payloads: Vec<std::sync::Arc<str>> = events
            .iter()
            .map(|e| palaver_domain::events::encode(e).into())
            .collect();
        let rows: Vec<(i64, &str)> = events
            .iter()
            .zip(&payloads)
            .map(|(event, payload)| (event.room_id().0, &**payload))
            .collect();
        let ids = self.engine.insert_outbox(tx, &rows, origin, now.0).await?;
        Ok(ids
            .into_iter()
            .zip(payloads)
            .map(|(id, payload)| palaver_domain::events::OutboxRow { id, payload })
            .collect())
    }
}
