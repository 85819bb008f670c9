//! Rooms, membership, bans and roles.

use palaver_domain::events::DomainEvent;
use palaver_domain::model::{Member, Role, Room, RoomKind, RoomSummary, User};
use palaver_domain::store::{
    Authorized, Ban, Committed, DirectRoom, Membership, NewRoom, Refusal, Removal, RoomChanges,
    RoomStore, StoreError, StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{decode, Engine, RowsAffected, SqlStore, MESSAGE_COLUMNS, ROOM_COLUMNS, USER_COLUMNS};
use crate::errors::{conflict_or, map_err};

#[async_trait::async_trait]
impl<E> RoomStore for SqlStore<E>
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
    async fn insert_room(&self, room: NewRoom) -> StoreResult<Committed<Room>> {
        let (_turn, mut tx) = self.begin_write().await?;
        Self::check_room_capacity_in(&mut tx, room.owner_id, RoomId(0)).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO rooms (name, code, password_hash, owner_id, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&room.name)
        .bind(&room.code)
        .bind(&room.password_hash)
        .bind(room.owner_id.0)
        .bind(room.created_at.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, "code"))?;
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)",
        )
        .bind(id)
        .bind(room.owner_id.0)
        .bind(room.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let joined = DomainEvent::MemberJoined {
            room_id: RoomId(id),
            user_id: room.owner_id,
            last_seq: 0,
        };
        let created = Room {
            id: RoomId(id),
            name: room.name,
            code: room.code,
            owner_id: room.owner_id,
            created_at: room.created_at,
            password_hash: room.password_hash,
            kind: RoomKind::Group,
        };
        let at = room.created_at;
        self.commit_events(tx, created, vec![joined], at).await
    }

    async fn room_by_id(&self, id: RoomId) -> StoreResult<Option<Room>> {
        let sql = format!("SELECT {} FROM rooms r WHERE r.id = $1", ROOM_COLUMNS);
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.map(|r| decode::room(&r)).transpose()
    }

    async fn room_by_code(&self, code: &str) -> StoreResult<Option<Room>> {
        let sql = format!("SELECT {} FROM rooms r WHERE r.code = $1", ROOM_COLUMNS);
        let row = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.map(|r| decode::room(&r)).transpose()
    }

    async fn direct_room_id(&self, a: UserId, b: UserId) -> StoreResult<Option<RoomId>> {
        let (low, high) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM rooms WHERE dm_key = $1")
            .bind(format!("{}:{}", low.0, high.0))
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(id.map(RoomId))
    }

    async fn direct_room(
        &self,
        a: UserId,
        b: UserId,
        room: NewRoom,
    ) -> StoreResult<Committed<DirectRoom>> {
        let (low, high) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        let dm_key = format!("{}:{}", low.0, high.0);
        let (_turn, mut tx) = self.begin_write().await?;
        // Both accounts' rows, shared, as `add_member` holds one: neither is
        // deleted while it becomes a member.
        let alive: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM users WHERE id IN ($1, $2) AND deleted_at IS NULL ORDER BY id{}",
            E::FOR_SHARE
        ))
        .bind(low.0)
        .bind(high.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        if !(alive.contains(&low.0) && alive.contains(&high.0)) {
            return Err(StoreError::Conflict("deleted"));
        }
        let created = sqlx::query(
            "INSERT INTO rooms (name, code, password_hash, owner_id, created_at, kind, dm_key)
             VALUES ($1, $2, NULL, $3, $4, 'direct', $5)
             ON CONFLICT (dm_key) WHERE dm_key IS NOT NULL DO NOTHING",
        )
        .bind(&room.name)
        .bind(&room.code)
        .bind(room.owner_id.0)
        .bind(room.created_at.0)
        .bind(&dm_key)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, "code"))?
        .rows_affected()
            > 0;
        let sql = format!(
            "SELECT {}, r.last_seq AS room_last_seq FROM rooms r WHERE r.dm_key = $1",
            ROOM_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(&dm_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let found = decode::room(&row)?;
        let last_seq: i64 = sqlx::Row::try_get(&row, "room_last_seq").map_err(map_err)?;
        let mut joined = Vec::new();
        let mut events = Vec::new();
        // An existing room takes back only whoever opens it: someone who
        // left is not put back by the other.
        let entering = if created { vec![low, high] } else { vec![a] };
        for user in entering {
            Self::check_room_capacity_in(&mut tx, user, found.id).await?;
            let inserted = sqlx::query(
                "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'member', $3)
                 ON CONFLICT (room_id, user_id) DO NOTHING",
            )
            .bind(found.id.0)
            .bind(user.0)
            .bind(room.created_at.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
            if inserted > 0 {
                joined.push((user, last_seq as u64));
                events.push(DomainEvent::MemberJoined {
                    room_id: found.id,
                    user_id: user,
                    last_seq: last_seq as u64,
                });
            }
        }
        let direct = DirectRoom {
            room: found,
            joined,
        };
        self.commit_events(tx, direct, events, room.created_at)
            .await
    }

    async fn member_role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room.0)
                .bind(user.0)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
        role.map(|r| decode::role(&r)).transpose()
    }

    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        now: Timestamp,
    ) -> StoreResult<Committed<Membership>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let (membership, events) = Self::add_member_in(&mut tx, room, user, role, now).await?;
        self.commit_events(tx, membership, events, now).await
    }

    async fn remove_member(
        &self,
        room: RoomId,
        user: UserId,
        removal: Removal,
        now: Timestamp,
    ) -> StoreResult<Authorized<()>> {
        let (_turn, mut tx) = self.begin_write().await?;
        Self::lock_room(&mut tx, room).await?;
        if let Removal::Kicked { by } | Removal::Banned { by, .. } = removal {
            let Some(actor) = Self::role_in(&mut tx, room, by).await? else {
                return Ok(Err(Refusal::NotMember));
            };
            let target = Self::role_in(&mut tx, room, user).await?;
            if actor < Role::Admin || target.is_some_and(|target| target >= actor) {
                return Ok(Err(Refusal::Outranked));
            }
            if target.is_none() && matches!(removal, Removal::Kicked { .. }) {
                return Ok(Err(Refusal::NoTarget));
            }
        }
        let role: Option<String> = sqlx::query_scalar(
            "DELETE FROM members WHERE room_id = $1 AND user_id = $2 RETURNING role",
        )
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut events = Vec::new();
        match removal {
            Removal::Left => {
                if role.is_none() {
                    return Ok(Err(Refusal::NotMember));
                }
                events.push(DomainEvent::MemberLeft {
                    room_id: room,
                    user_id: user,
                });
                if role.as_deref() == Some("owner") {
                    // The oldest admin, else the oldest member, takes over.
                    let heir: Option<i64> = sqlx::query_scalar(
                        "SELECT user_id FROM members WHERE room_id = $1
                         ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, user_id LIMIT 1",
                    )
                    .bind(room.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    if let Some(heir) = heir {
                        let heir = UserId(heir);
                        events.extend(self.make_owner(&mut tx, room, heir).await?);
                    }
                }
            }
            Removal::Kicked { .. } => {
                if role.is_none() {
                    return Ok(Err(Refusal::NoTarget));
                }
                events.push(DomainEvent::MemberRemoved {
                    room_id: room,
                    user_id: user,
                    banned: false,
                });
            }
            Removal::Banned { by, at } => {
                let banned = sqlx::query(
                    "INSERT INTO bans (room_id, user_id, banned_by, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (room_id, user_id) DO NOTHING",
                )
                .bind(room.0)
                .bind(user.0)
                .bind(by.0)
                .bind(at.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
                if role.is_none() && banned == 0 {
                    return Ok(Ok(Committed::quiet(())));
                }
                if role.is_some() {
                    events.push(DomainEvent::MemberRemoved {
                        room_id: room,
                        user_id: user,
                        banned: true,
                    });
                }
            }
        }
        Ok(Ok(self.commit_events(tx, (), events, now).await?))
    }

    async fn is_banned(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM bans WHERE room_id = $1 AND user_id = $2")
                .bind(room.0)
                .bind(user.0)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
        Ok(found.is_some())
    }

    async fn unban(&self, room: RoomId, by: UserId, user: UserId) -> StoreResult<Authorized<bool>> {
        let (_turn, mut tx) = self.begin_write().await?;
        // Under the room's lock, which a demotion or a removal of `by` takes
        // too: the role read here is the one the delete commits under.
        if !Self::lock_room(&mut tx, room).await? {
            return Ok(Err(Refusal::NotMember));
        }
        match Self::role_in(&mut tx, room, by).await? {
            None => return Ok(Err(Refusal::NotMember)),
            Some(role) if role < Role::Admin => return Ok(Err(Refusal::Outranked)),
            Some(_) => {}
        }
        let removed = sqlx::query("DELETE FROM bans WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        tx.commit().await.map_err(map_err)?;
        Ok(Ok(Committed::quiet(removed > 0)))
    }

    async fn bans(&self, room: RoomId) -> StoreResult<Vec<Ban>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT user_id, banned_by, created_at FROM bans WHERE room_id = $1 ORDER BY created_at, user_id",
        )
        .bind(room.0)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(user, by, at)| Ban {
                user_id: UserId(user),
                banned_by: UserId(by),
                created_at: Timestamp(at),
            })
            .collect())
    }

    async fn set_role(
        &self,
        room: RoomId,
        by: UserId,
        user: UserId,
        role: Role,
        now: Timestamp,
    ) -> StoreResult<Authorized<()>> {
        let (_turn, mut tx) = self.begin_write().await?;
        Self::lock_room(&mut tx, room).await?;
        if let Err(refusal) = Self::require_owner(&mut tx, room, by).await? {
            return Ok(Err(refusal));
        }
        match Self::role_in(&mut tx, room, user).await? {
            None => return Ok(Err(Refusal::NoTarget)),
            // The owner's role changes only with a transfer: a room always has one.
            Some(Role::Owner) => return Ok(Err(Refusal::Outranked)),
            Some(_) => {}
        }
        sqlx::query("UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(room.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let event = DomainEvent::RoleChanged {
            room_id: room,
            user_id: user,
            role,
        };
        Ok(Ok(self.commit_events(tx, (), vec![event], now).await?))
    }

    async fn transfer_ownership(
        &self,
        room: RoomId,
        from: UserId,
        to: UserId,
        now: Timestamp,
    ) -> StoreResult<Authorized<()>> {
        let (_turn, mut tx) = self.begin_write().await?;
        // Of two transfers at once, the second finds `from` an admin.
        Self::lock_room(&mut tx, room).await?;
        if let Err(refusal) = Self::require_owner(&mut tx, room, from).await? {
            return Ok(Err(refusal));
        }
        if Self::role_in(&mut tx, room, to).await?.is_none() {
            return Ok(Err(Refusal::NoTarget));
        }
        sqlx::query("UPDATE members SET role = 'admin' WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(from.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut events = vec![DomainEvent::RoleChanged {
            room_id: room,
            user_id: from,
            role: Role::Admin,
        }];
        events.extend(self.make_owner(&mut tx, room, to).await?);
        Ok(Ok(self.commit_events(tx, (), events, now).await?))
    }

    async fn update_room(
        &self,
        room: RoomId,
        by: UserId,
        changes: RoomChanges,
        now: Timestamp,
    ) -> StoreResult<Authorized<Room>> {
        let (_turn, mut tx) = self.begin_write().await?;
        if !Self::lock_room(&mut tx, room).await? {
            return Ok(Err(Refusal::NotMember));
        }
        if let Err(refusal) = Self::require_owner(&mut tx, room, by).await? {
            return Ok(Err(refusal));
        }
        if let Some(name) = &changes.name {
            sqlx::query("UPDATE rooms SET name = $1 WHERE id = $2")
                .bind(name)
                .bind(room.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(password_hash) = &changes.password_hash {
            sqlx::query("UPDATE rooms SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(room.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(code) = &changes.code {
            sqlx::query("UPDATE rooms SET code = $1 WHERE id = $2")
                .bind(code)
                .bind(room.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or(e, "code"))?;
        }
        let updated = Self::room_in(&mut tx, room).await?;
        let event = DomainEvent::RoomUpdated(updated.profile());
        Ok(Ok(self
            .commit_events(tx, updated, vec![event], now)
            .await?))
    }

    async fn delete_room(
        &self,
        room: RoomId,
        by: UserId,
        now: Timestamp,
    ) -> StoreResult<Authorized<()>> {
        let (_turn, mut tx) = self.begin_write().await?;
        if !Self::lock_room(&mut tx, room).await? {
            return Ok(Err(Refusal::NotMember));
        }
        if let Err(refusal) = Self::require_owner(&mut tx, room, by).await? {
            return Ok(Err(refusal));
        }
        self.delete_room_in(&mut tx, room).await?;
        let event = DomainEvent::RoomDeleted {
            room_id: room,
            reason: None,
        };
        Ok(Ok(self.commit_events(tx, (), vec![event], now).await?))
    }

    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<RoomSummary>> {
        // Unread: newer than the marker, from someone else, not deleted.
        let sql = format!(
            "SELECT {}, mb.role AS member_role, r.last_seq AS room_last_seq, {},
                    mb.last_read_seq AS last_read_seq,
                    (SELECT COUNT(*) FROM messages u
                     WHERE u.room_id = r.id AND u.seq > mb.last_read_seq
                       AND u.sender_id <> mb.user_id AND u.deleted_at IS NULL) AS unread_count,
                    (SELECT COUNT(*) FROM mentions mn
                     WHERE mn.user_id = mb.user_id AND mn.room_id = r.id
                       AND mn.seq > mb.last_read_seq) AS unread_mentions
             FROM members mb
             JOIN rooms r ON r.id = mb.room_id
             LEFT JOIN messages m ON m.room_id = r.id AND m.seq = r.last_seq
             WHERE mb.user_id = $1
             ORDER BY COALESCE(m.created_at, r.created_at) DESC, r.id DESC",
            ROOM_COLUMNS, MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(user.0)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let last_seq: i64 = row.try_get("room_last_seq").map_err(map_err)?;
                let has_message: Option<i64> = row.try_get("m_seq").map_err(map_err)?;
                let role: String = row.try_get("member_role").map_err(map_err)?;
                Ok(RoomSummary {
                    room: decode::room(row)?,
                    role: decode::role(&role)?,
                    last_seq: last_seq as u64,
                    last_message: has_message.map(|_| decode::message(row)).transpose()?,
                    last_read_seq: row.try_get::<i64, _>("last_read_seq").map_err(map_err)? as u64,
                    unread_count: row.try_get::<i64, _>("unread_count").map_err(map_err)? as u64,
                    unread_mentions: (row.try_get::<i64, _>("unread_mentions")).map_err(map_err)?
                        as u64,
                })
            })
            .collect()
    }

    async fn room_positions(&self, user: UserId) -> StoreResult<Vec<(RoomId, u64)>> {
        // Read by every new connection: each engine reads its own way.
        self.engine.room_positions(self, user).await
    }

    async fn user_with_positions(
        &self,
        user: UserId,
    ) -> StoreResult<Option<(User, Vec<(RoomId, u64)>)>> {
        // Read by every new connection: each engine reads its own way.
        self.engine.user_with_positions(self, user).await
    }

    async fn members(&self, room: RoomId, after: UserId, limit: u32) -> StoreResult<Vec<Member>> {
        let sql = format!(
            "SELECT {}, mb.role, mb.joined_at, u.last_seen_at
             FROM members mb JOIN users u ON u.id = mb.user_id
             WHERE mb.room_id = $1 AND mb.user_id > $2 ORDER BY mb.user_id LIMIT $3",
            USER_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(room.0)
            .bind(after.0)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role").map_err(map_err)?;
                Ok(Member {
                    user: decode::user(row)?,
                    role: decode::role(&role)?,
                    joined_at: Timestamp(row.try_get("joined_at").map_err(map_err)?),
                    last_seen: row
                        .try_get::<Option<i64>, _>("last_seen_at")
                        .map_err(map_err)?
                        .map(Timestamp),
                })
            })
            .collect()
    }
}
