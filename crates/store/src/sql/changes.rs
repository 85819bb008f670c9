//! Helpers of every change: its events into the outbox in the change's
//! transaction, the owner hand-over and room deletion two changes share, and
//! the room lock and role reads under which room changes check authority.

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

    /// Deletes the room with its members, messages, reactions and bans; false when it
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
            "DELETE FROM reactions WHERE room_id = $1",
            "DELETE FROM mentions WHERE room_id = $1",
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

    /// Makes `user` a member with `role` in `tx`, unless deleted
    /// (`Conflict("deleted")`) or banned (`Conflict("banned")`), both read
    /// under the locks the change takes; the membership and its event (none
    /// when they already were a member).
    pub(super) async fn add_member_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
        role: palaver_domain::model::Role,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<(
        palaver_domain::store::Membership,
        Vec<palaver_domain::events::DomainEvent>,
    )> {
        // The user's row (shared), then the room's lock: the order an
        // account's deletion takes them in, so a deletion or a ban running
        // now either commits first and is seen here, or waits and sees this
        // member. Shared, because a ban's insert refers to the user's row.
        let alive: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL{}",
            E::FOR_SHARE
        ))
        .bind(user.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(crate::errors::map_err)?;
        if alive.is_none() {
            return Err(palaver_domain::store::StoreError::Conflict("deleted"));
        }
        Self::lock_room(tx, room).await?;
        Self::check_room_capacity_in(tx, user, room).await?;
        if Self::is_banned_in(tx, room, user).await? {
            return Err(palaver_domain::store::StoreError::Conflict("banned"));
        }
        let inserted = sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(now.0)
        .execute(&mut **tx)
        .await
        .map_err(crate::errors::map_err)?
        .rows_affected();
        let last_seq: i64 = sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = $1")
            .bind(room.0)
            .fetch_one(&mut **tx)
            .await
            .map_err(crate::errors::map_err)?;
        let mut events = Vec::new();
        if inserted > 0 {
            events.push(palaver_domain::events::DomainEvent::MemberJoined {
                room_id: room,
                user_id: user,
                last_seq: last_seq as u64,
            });
        }
        let membership = palaver_domain::store::Membership {
            newly_joined: inserted > 0,
            last_seq: last_seq as u64,
        };
        Ok((membership, events))
    }

    /// `Conflict(TOO_MANY_ROOMS)` when `user`, not a member of `room`, is in
    /// as many rooms as one may be (under the user's row lock, which every
    /// membership of theirs takes first).
    pub(super) async fn check_room_capacity_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        user: palaver_domain::UserId,
        room: palaver_domain::RoomId,
    ) -> palaver_domain::store::StoreResult<()> {
        use palaver_domain::rooms::{MAX_ROOMS_PER_USER, TOO_MANY_ROOMS};
        let others: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE user_id = $1 AND room_id <> $2")
                .bind(user.0)
                .bind(room.0)
                .fetch_one(&mut **tx)
                .await
                .map_err(crate::errors::map_err)?;
        if others >= MAX_ROOMS_PER_USER {
            return Err(palaver_domain::store::StoreError::Conflict(TOO_MANY_ROOMS));
        }
        Ok(())
    }

    /// Whether `user` is banned from the room, read in `tx`.
    pub(super) async fn is_banned_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<bool> {
        let banned: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM bans WHERE room_id = $1 AND user_id = $2")
                .bind(room.0)
                .bind(user.0)
                .fetch_optional(&mut **tx)
                .await
                .map_err(crate::errors::map_err)?;
        Ok(banned.is_some())
    }

    /// Takes the room's row lock (PostgreSQL; SQLite's one writer already
    /// serializes), which every change of a room's members, roles and bans
    /// takes first, as appends do: what this transaction reads of the
    /// room's members after it is what every such change committed, and
    /// none commits before this one does. False when there is no such room.
    pub(super) async fn lock_room(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: palaver_domain::RoomId,
    ) -> palaver_domain::store::StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM rooms WHERE id = $1{}",
            E::FOR_UPDATE
        ))
        .bind(room.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(crate::errors::map_err)?;
        Ok(found.is_some())
    }

    /// `user`'s role in the room, read in `tx` (after `lock_room`).
    pub(super) async fn role_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room.0)
                .bind(user.0)
                .fetch_optional(&mut **tx)
                .await
                .map_err(crate::errors::map_err)?;
        role.map(|r| super::decode::role(&r)).transpose()
    }

    /// Whether `by` is the room's owner, read in `tx` (after `lock_room`):
    /// the refusal when not.
    pub(super) async fn require_owner(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: palaver_domain::RoomId,
        by: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<Result<(), palaver_domain::store::Refusal>> {
        use palaver_domain::model::Role;
        use palaver_domain::store::Refusal;
        Ok(match Self::role_in(tx, room, by).await? {
            None => Err(Refusal::NotMember),
            Some(Role::Owner) => Ok(()),
            Some(_) => Err(Refusal::Outranked),
        })
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
