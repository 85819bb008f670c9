//! `Store` over the SQL both engines run: accounts and tokens, rooms and
//! membership, messages and read markers, the outbox. Each engine's own
//! paths are behind [`Engine`].

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::{Engine, RowsAffected, SqlStore};

#[async_trait::async_trait]
impl<E> palaver_domain::store::Store for SqlStore<E>
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
    // Health.

    async fn ping(&self) -> palaver_domain::store::StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        Ok(())
    }

    // Accounts and refresh tokens.

    async fn insert_user(
        &self,
        user: palaver_domain::store::NewUser,
    ) -> palaver_domain::store::StoreResult<palaver_domain::model::User> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, password_hash, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.created_at.0)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| crate::errors::conflict_or(e, "username"))?;
        Ok(palaver_domain::model::User {
            id: palaver_domain::UserId(id),
            username: user.username,
            display_name: user.display_name,
            created_at: user.created_at,
        })
    }

    async fn user_by_id(
        &self,
        id: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::User>> {
        let sql = format!(
            "SELECT {} FROM users u WHERE u.id = $1",
            crate::sql::USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        row.map(|r| super::decode::user(&r)).transpose()
    }

    async fn user_by_username(
        &self,
        username: &str,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::User>> {
        let sql = format!(
            "SELECT {} FROM users u WHERE u.username = $1",
            crate::sql::USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        row.map(|r| super::decode::user(&r)).transpose()
    }

    async fn credentials_by_username(
        &self,
        username: &str,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::UserCredentials>> {
        use sqlx::Row;
        let sql = format!(
            "SELECT {}, u.password_hash FROM users u WHERE u.username = $1",
            crate::sql::USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        row.map(|r| {
            Ok(palaver_domain::model::UserCredentials {
                user: super::decode::user(&r)?,
                password_hash: r.try_get("password_hash").map_err(crate::errors::map_err)?,
            })
        })
        .transpose()
    }

    async fn search_users(
        &self,
        prefix: &str,
        after: &str,
        limit: u32,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::model::User>> {
        // LIKE with the wildcards of the prefix escaped, so `a_b` means "a_b".
        let escaped: String = prefix
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("{escaped}%");
        let sql = format!(
            "SELECT {} FROM users u
             WHERE (u.username LIKE $1 ESCAPE '\\' OR lower(u.display_name) LIKE $1 ESCAPE '\\')
               AND u.username > $2
             ORDER BY u.username LIMIT $3",
            crate::sql::USER_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(pattern)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        rows.iter().map(super::decode::user).collect()
    }

    async fn update_display_name(
        &self,
        user: palaver_domain::UserId,
        display_name: &str,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::User>> {
        let updated = sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
            .bind(display_name)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(crate::errors::map_err)?
            .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        self.user_by_id(user).await
    }

    async fn record_last_seen(
        &self,
        user: palaver_domain::UserId,
        at: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<()> {
        sqlx::query(
            "UPDATE users SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $1)",
        )
        .bind(at.0)
        .bind(user.0)
        .execute(&self.writer)
        .await
        .map_err(crate::errors::map_err)?;
        Ok(())
    }

    async fn insert_refresh_token(
        &self,
        token: palaver_domain::store::NewRefreshToken,
    ) -> palaver_domain::store::StoreResult<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&token.token_hash)
        .bind(&token.family)
        .bind(token.user_id.0)
        .bind(token.created_at.0)
        .bind(token.expires_at.0)
        .execute(&self.writer)
        .await
        .map_err(crate::errors::map_err)?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        next_expires_at: palaver_domain::time::Timestamp,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<palaver_domain::store::Rotation> {
        use crate::errors::map_err;
        use palaver_domain::store::Rotation;
        use sqlx::Row;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // Row lock (PostgreSQL) so two concurrent presentations of one
        // token cannot both rotate it; SQLite's single writer serializes anyway.
        let sql = format!(
            "SELECT family, user_id, expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1{}",
            E::FOR_UPDATE
        );
        let row = sqlx::query(&sql)
            .bind(presented_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let family: String = row.try_get("family").map_err(map_err)?;
        let user_id: i64 = row.try_get("user_id").map_err(map_err)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(map_err)?;
        let used_at: Option<i64> = row.try_get("used_at").map_err(map_err)?;
        let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(map_err)?;

        let rotation = if revoked_at.is_some() || expires_at <= now.0 {
            Rotation::Invalid
        } else if used_at.is_some() {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
            )
            .bind(now.0)
            .bind(&family)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            Rotation::ReuseDetected
        } else {
            sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
                .bind(now.0)
                .bind(presented_hash)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(next_hash)
            .bind(&family)
            .bind(user_id)
            .bind(now.0)
            .bind(next_expires_at.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            Rotation::Rotated {
                user_id: palaver_domain::UserId(user_id),
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(rotation)
    }

    async fn revoke_refresh_family(
        &self,
        token_hash: &str,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1
             WHERE revoked_at IS NULL
               AND family = (SELECT family FROM refresh_tokens WHERE token_hash = $2)",
        )
        .bind(now.0)
        .bind(token_hash)
        .execute(&self.writer)
        .await
        .map_err(crate::errors::map_err)?;
        Ok(result.rows_affected() > 0)
    }

    // Rooms, membership, bans and roles.

    async fn insert_room(
        &self,
        room: palaver_domain::store::NewRoom,
    ) -> palaver_domain::store::StoreResult<
        palaver_domain::store::Committed<palaver_domain::model::Room>,
    > {
        use crate::errors::map_err;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
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
        .map_err(|e| crate::errors::conflict_or(e, "code"))?;
        sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)",
        )
        .bind(id)
        .bind(room.owner_id.0)
        .bind(room.created_at.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let joined = palaver_domain::events::DomainEvent::MemberJoined {
            room_id: palaver_domain::RoomId(id),
            user_id: room.owner_id,
            last_seq: 0,
        };
        let created = palaver_domain::model::Room {
            id: palaver_domain::RoomId(id),
            name: room.name,
            code: room.code,
            owner_id: room.owner_id,
            created_at: room.created_at,
            password_hash: room.password_hash,
            kind: palaver_domain::model::RoomKind::Group,
        };
        let at = room.created_at;
        self.commit_events(tx, created, vec![joined], at).await
    }

    async fn room_by_id(
        &self,
        id: palaver_domain::RoomId,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::Room>> {
        let sql = format!(
            "SELECT {} FROM rooms r WHERE r.id = $1",
            crate::sql::ROOM_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        row.map(|r| super::decode::room(&r)).transpose()
    }

    async fn room_by_code(
        &self,
        code: &str,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::Room>> {
        let sql = format!(
            "SELECT {} FROM rooms r WHERE r.code = $1",
            crate::sql::ROOM_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(code)
            .fetch_optional(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        row.map(|r| super::decode::room(&r)).transpose()
    }

    async fn direct_room(
        &self,
        a: palaver_domain::UserId,
        b: palaver_domain::UserId,
        room: palaver_domain::store::NewRoom,
    ) -> palaver_domain::store::StoreResult<
        palaver_domain::store::Committed<palaver_domain::store::DirectRoom>,
    > {
        use crate::errors::map_err;
        let (low, high) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        let dm_key = format!("{}:{}", low.0, high.0);
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        sqlx::query(
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
        .map_err(|e| crate::errors::conflict_or(e, "code"))?;
        let sql = format!(
            "SELECT {}, r.last_seq AS room_last_seq FROM rooms r WHERE r.dm_key = $1",
            crate::sql::ROOM_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(&dm_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let found = super::decode::room(&row)?;
        let last_seq: i64 = sqlx::Row::try_get(&row, "room_last_seq").map_err(map_err)?;
        let mut joined = Vec::new();
        let mut events = Vec::new();
        for user in [low, high] {
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
                events.push(palaver_domain::events::DomainEvent::MemberJoined {
                    room_id: found.id,
                    user_id: user,
                    last_seq: last_seq as u64,
                });
            }
        }
        let direct = palaver_domain::store::DirectRoom {
            room: found,
            joined,
        };
        self.commit_events(tx, direct, events, room.created_at)
            .await
    }

    async fn member_role(
        &self,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room.0)
                .bind(user.0)
                .fetch_optional(&self.readers)
                .await
                .map_err(crate::errors::map_err)?;
        role.map(|r| super::decode::role(&r)).transpose()
    }

    async fn add_member(
        &self,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
        role: palaver_domain::model::Role,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<
        palaver_domain::store::Committed<palaver_domain::store::Membership>,
    > {
        use crate::errors::map_err;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let inserted = sqlx::query(
            "INSERT INTO members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (room_id, user_id) DO NOTHING",
        )
        .bind(room.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        let last_seq: i64 = sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = $1")
            .bind(room.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
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
        self.commit_events(tx, membership, events, now).await
    }

    async fn remove_member(
        &self,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
        removal: palaver_domain::store::Removal,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::store::Committed<()>>> {
        use crate::errors::map_err;
        use palaver_domain::events::DomainEvent;
        use palaver_domain::store::Removal;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
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
                    return Ok(None);
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
                        let heir = palaver_domain::UserId(heir);
                        events.extend(self.make_owner(&mut tx, room, heir).await?);
                    }
                }
            }
            Removal::Kicked => {
                if role.is_none() {
                    return Ok(None);
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
                    return Ok(None);
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
        Ok(Some(self.commit_events(tx, (), events, now).await?))
    }

    async fn is_banned(
        &self,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM bans WHERE room_id = $1 AND user_id = $2")
                .bind(room.0)
                .bind(user.0)
                .fetch_optional(&self.readers)
                .await
                .map_err(crate::errors::map_err)?;
        Ok(found.is_some())
    }

    async fn unban(
        &self,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<bool> {
        let removed = sqlx::query("DELETE FROM bans WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&self.writer)
            .await
            .map_err(crate::errors::map_err)?
            .rows_affected();
        Ok(removed > 0)
    }

    async fn bans(
        &self,
        room: palaver_domain::RoomId,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::store::Ban>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT user_id, banned_by, created_at FROM bans WHERE room_id = $1 ORDER BY created_at, user_id",
        )
        .bind(room.0)
        .fetch_all(&self.readers)
        .await
        .map_err(crate::errors::map_err)?;
        Ok(rows
            .into_iter()
            .map(|(user, by, at)| palaver_domain::store::Ban {
                user_id: palaver_domain::UserId(user),
                banned_by: palaver_domain::UserId(by),
                created_at: palaver_domain::time::Timestamp(at),
            })
            .collect())
    }

    async fn set_role(
        &self,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
        role: palaver_domain::model::Role,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::store::Committed<()>>> {
        use crate::errors::map_err;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let changed =
            sqlx::query("UPDATE members SET role = $1 WHERE room_id = $2 AND user_id = $3")
                .bind(role.as_str())
                .bind(room.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
        if changed == 0 {
            return Ok(None);
        }
        let event = palaver_domain::events::DomainEvent::RoleChanged {
            room_id: room,
            user_id: user,
            role,
        };
        Ok(Some(self.commit_events(tx, (), vec![event], now).await?))
    }

    async fn transfer_ownership(
        &self,
        room: palaver_domain::RoomId,
        from: palaver_domain::UserId,
        to: palaver_domain::UserId,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::store::Committed<()>>> {
        use crate::errors::map_err;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let member: Option<String> =
            sqlx::query_scalar("SELECT role FROM members WHERE room_id = $1 AND user_id = $2")
                .bind(room.0)
                .bind(to.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        if member.is_none() {
            return Ok(None);
        }
        sqlx::query("UPDATE members SET role = 'admin' WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(from.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let mut events = vec![palaver_domain::events::DomainEvent::RoleChanged {
            room_id: room,
            user_id: from,
            role: palaver_domain::model::Role::Admin,
        }];
        events.extend(self.make_owner(&mut tx, room, to).await?);
        Ok(Some(self.commit_events(tx, (), events, now).await?))
    }

    async fn update_room(
        &self,
        room: palaver_domain::RoomId,
        changes: palaver_domain::store::RoomChanges,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<
        Option<palaver_domain::store::Committed<palaver_domain::model::Room>>,
    > {
        use crate::errors::map_err;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM rooms WHERE id = $1")
            .bind(room.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            return Ok(None);
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
                .map_err(|e| crate::errors::conflict_or(e, "code"))?;
        }
        let updated = Self::room_in(&mut tx, room).await?;
        let event = palaver_domain::events::DomainEvent::RoomUpdated(updated.profile());
        Ok(Some(
            self.commit_events(tx, updated, vec![event], now).await?,
        ))
    }

    async fn delete_room(
        &self,
        room: palaver_domain::RoomId,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::store::Committed<()>>> {
        use crate::errors::map_err;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        // Children first: SQLite enforces foreign keys per connection, and
        // explicit deletes keep both engines' behaviour identical.
        for sql in [
            "DELETE FROM messages WHERE room_id = $1",
            "DELETE FROM members WHERE room_id = $1",
            "DELETE FROM bans WHERE room_id = $1",
        ] {
            sqlx::query(sql)
                .bind(room.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        let deleted = sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(room.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if deleted == 0 {
            return Ok(None);
        }
        let event = palaver_domain::events::DomainEvent::RoomDeleted { room_id: room };
        Ok(Some(self.commit_events(tx, (), vec![event], now).await?))
    }

    async fn rooms_of_user(
        &self,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::model::RoomSummary>> {
        use crate::errors::map_err;
        use sqlx::Row;
        // Unread: newer than the marker, from someone else, not deleted.
        let sql = format!(
            "SELECT {}, mb.role AS member_role, r.last_seq AS room_last_seq, {},
                    mb.last_read_seq AS last_read_seq,
                    (SELECT COUNT(*) FROM messages u
                     WHERE u.room_id = r.id AND u.seq > mb.last_read_seq
                       AND u.sender_id <> mb.user_id AND u.deleted_at IS NULL) AS unread_count
             FROM members mb
             JOIN rooms r ON r.id = mb.room_id
             LEFT JOIN messages m ON m.room_id = r.id AND m.seq = r.last_seq
             WHERE mb.user_id = $1
             ORDER BY COALESCE(m.created_at, r.created_at) DESC, r.id DESC",
            crate::sql::ROOM_COLUMNS,
            crate::sql::MESSAGE_COLUMNS
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
                Ok(palaver_domain::model::RoomSummary {
                    room: super::decode::room(row)?,
                    role: super::decode::role(&role)?,
                    last_seq: last_seq as u64,
                    last_message: has_message
                        .map(|_| super::decode::message(row))
                        .transpose()?,
                    last_read_seq: row.try_get::<i64, _>("last_read_seq").map_err(map_err)? as u64,
                    unread_count: row.try_get::<i64, _>("unread_count").map_err(map_err)? as u64,
                })
            })
            .collect()
    }

    async fn room_positions(
        &self,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<Vec<(palaver_domain::RoomId, u64)>> {
        // Read by every new connection: each engine reads its own way.
        self.engine.room_positions(self, user).await
    }

    async fn user_with_positions(
        &self,
        user: palaver_domain::UserId,
    ) -> palaver_domain::store::StoreResult<
        Option<(
            palaver_domain::model::User,
            Vec<(palaver_domain::RoomId, u64)>,
        )>,
    > {
        // Read by every new connection: each engine reads its own way.
        self.engine.user_with_positions(self, user).await
    }

    async fn members(
        &self,
        room: palaver_domain::RoomId,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::model::Member>> {
        use crate::errors::map_err;
        use sqlx::Row;
        let sql = format!(
            "SELECT {}, mb.role, mb.joined_at, u.last_seen_at
             FROM members mb JOIN users u ON u.id = mb.user_id
             WHERE mb.room_id = $1 ORDER BY mb.joined_at, u.id",
            crate::sql::USER_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(room.0)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role").map_err(map_err)?;
                Ok(palaver_domain::model::Member {
                    user: super::decode::user(row)?,
                    role: super::decode::role(&role)?,
                    joined_at: palaver_domain::time::Timestamp(
                        row.try_get("joined_at").map_err(map_err)?,
                    ),
                    last_seen: row
                        .try_get::<Option<i64>, _>("last_seen_at")
                        .map_err(map_err)?
                        .map(palaver_domain::time::Timestamp),
                })
            })
            .collect()
    }

    // Messages and read markers.

    async fn append_messages(
        &self,
        batch: &[palaver_domain::store::NewMessage],
    ) -> palaver_domain::store::StoreResult<palaver_domain::store::Appended> {
        // The hot path: each engine appends its own way (`append`).
        self.engine.append(self, batch).await
    }

    async fn messages_before(
        &self,
        room: palaver_domain::RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::model::Message>> {
        let before = before
            .map(|b| b.min(i64::MAX as u64) as i64)
            .unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {} FROM messages m
             WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3",
            crate::sql::MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(room.0)
            .bind(before)
            .bind(limit as i64)
            .fetch_all(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        let mut messages = rows
            .iter()
            .map(super::decode::message)
            .collect::<palaver_domain::store::StoreResult<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }

    async fn message(
        &self,
        room: palaver_domain::RoomId,
        seq: u64,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::model::Message>> {
        let sql = format!(
            "SELECT {} FROM messages m WHERE m.room_id = $1 AND m.seq = $2",
            crate::sql::MESSAGE_COLUMNS
        );
        sqlx::query(&sql)
            .bind(room.0)
            .bind(seq.min(i64::MAX as u64) as i64)
            .fetch_optional(&self.readers)
            .await
            .map_err(crate::errors::map_err)?
            .as_ref()
            .map(super::decode::message)
            .transpose()
    }

    async fn messages_after(
        &self,
        room: palaver_domain::RoomId,
        after: u64,
        limit: u32,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::model::Message>> {
        let sql = format!(
            "SELECT {} FROM messages m
             WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3",
            crate::sql::MESSAGE_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(room.0)
            .bind(after.min(i64::MAX as u64) as i64)
            .bind(limit as i64)
            .fetch_all(&self.readers)
            .await
            .map_err(crate::errors::map_err)?;
        rows.iter().map(super::decode::message).collect()
    }

    async fn edit_message(
        &self,
        room: palaver_domain::RoomId,
        seq: u64,
        body: &str,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<
        Option<palaver_domain::store::Committed<palaver_domain::model::Message>>,
    > {
        use crate::errors::map_err;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let seq = seq.min(i64::MAX as u64) as i64;
        let edited = sqlx::query(
            "UPDATE messages SET body = $1, edited_at = $2
             WHERE room_id = $3 AND seq = $4 AND deleted_at IS NULL",
        )
        .bind(body)
        .bind(now.0)
        .bind(room.0)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if edited == 0 {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {} FROM messages m WHERE m.room_id = $1 AND m.seq = $2",
            crate::sql::MESSAGE_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(room.0)
            .bind(seq)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let message = super::decode::message(&row)?;
        let event = palaver_domain::events::DomainEvent::MessageEdited(message.clone());
        Ok(Some(
            self.commit_events(tx, message, vec![event], now).await?,
        ))
    }

    async fn delete_message(
        &self,
        room: palaver_domain::RoomId,
        seq: u64,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<Option<palaver_domain::store::Committed<()>>> {
        use crate::errors::map_err;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let deleted = sqlx::query(
            "UPDATE messages SET body = '', deleted_at = $1
             WHERE room_id = $2 AND seq = $3 AND deleted_at IS NULL",
        )
        .bind(now.0)
        .bind(room.0)
        .bind(seq.min(i64::MAX as u64) as i64)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if deleted == 0 {
            return Ok(None);
        }
        let event = palaver_domain::events::DomainEvent::MessageDeleted { room_id: room, seq };
        Ok(Some(self.commit_events(tx, (), vec![event], now).await?))
    }

    async fn mark_read(
        &self,
        room: palaver_domain::RoomId,
        user: palaver_domain::UserId,
        seq: u64,
        now: palaver_domain::time::Timestamp,
    ) -> palaver_domain::store::StoreResult<
        palaver_domain::store::Committed<palaver_domain::store::ReadMark>,
    > {
        use crate::errors::map_err;
        use palaver_domain::store::{Committed, ReadMark};
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let Some(last_seq): Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = $1")
                .bind(room.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
        else {
            return Ok(Committed::quiet(ReadMark::NotMember));
        };
        // A marker past the newest message would hide messages not yet sent.
        let target = (seq.min(i64::MAX as u64) as i64).min(last_seq);
        let moved: Option<i64> = sqlx::query_scalar(
            "UPDATE members SET last_read_seq = $1
             WHERE room_id = $2 AND user_id = $3 AND last_read_seq < $1
             RETURNING last_read_seq",
        )
        .bind(target)
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(now_at) = moved else {
            // Already there: answer with where it is, one row.
            let at: Option<i64> = sqlx::query_scalar(
                "SELECT last_read_seq FROM members WHERE room_id = $1 AND user_id = $2",
            )
            .bind(room.0)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            let mark = at.map_or(ReadMark::NotMember, |at| ReadMark::Unchanged(at as u64));
            return Ok(Committed::quiet(mark));
        };
        let event = palaver_domain::events::DomainEvent::ReadMarkerMoved {
            room_id: room,
            user_id: user,
            seq: now_at as u64,
        };
        self.commit_events(tx, ReadMark::Moved(now_at as u64), vec![event], now)
            .await
    }

    async fn read_markers(
        &self,
        room: palaver_domain::RoomId,
    ) -> palaver_domain::store::StoreResult<Vec<(palaver_domain::UserId, u64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT user_id, last_read_seq FROM members WHERE room_id = $1 ORDER BY user_id",
        )
        .bind(room.0)
        .fetch_all(&self.readers)
        .await
        .map_err(crate::errors::map_err)?;
        Ok(rows
            .into_iter()
            .map(|(user, seq)| (palaver_domain::UserId(user), seq as u64))
            .collect())
    }

    // The outbox.

    async fn claim_outbox(
        &self,
        written_before: palaver_domain::time::Timestamp,
        now: palaver_domain::time::Timestamp,
        lease_until: palaver_domain::time::Timestamp,
        limit: u32,
    ) -> palaver_domain::store::StoreResult<Vec<palaver_domain::events::OutboxEntry>> {
        use crate::errors::map_err;
        use sqlx::Row;
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1 WHERE id IN (
                 SELECT id FROM outbox
                 WHERE created_at < $2 AND (claimed_until IS NULL OR claimed_until < $3)
                 ORDER BY id LIMIT $4{}
             ) RETURNING id, room_id, origin, payload",
            E::SKIP_LOCKED
        );
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
                Ok(palaver_domain::events::OutboxEntry {
                    id: row.try_get("id")?,
                    room_id: palaver_domain::RoomId(row.try_get("room_id")?),
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

    async fn delete_outbox(&self, ids: &[i64]) -> palaver_domain::store::StoreResult<()> {
        for chunk in ids.chunks(crate::sql::INSERT_CHUNK) {
            let sql = format!(
                "DELETE FROM outbox WHERE id IN ({})",
                super::placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            query
                .persistent(false)
                .execute(&self.writer)
                .await
                .map_err(crate::errors::map_err)?;
        }
        Ok(())
    }
}
