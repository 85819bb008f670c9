//! Invitations: recorded under the same room lock as every membership
//! change, answered by the invitee alone.

use palaver_domain::events::DomainEvent;
use palaver_domain::model::{Role, RoomKind};
use palaver_domain::store::{
    Authorized, Committed, Invitation, InvitationStore, InviteOutcome, Membership, NewInvitation,
    Refusal, StoreError, StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::{decode, Engine, RowsAffected, SqlStore};
use crate::errors::map_err;

#[async_trait::async_trait]
impl<E> InvitationStore for SqlStore<E>
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
    async fn invite(&self, invitation: NewInvitation) -> StoreResult<Authorized<InviteOutcome>> {
        let NewInvitation {
            room,
            by,
            invitee,
            max_pending,
            now,
        } = invitation;
        let (_turn, mut tx) = self.begin_write().await?;
        if !Self::lock_room(&mut tx, room).await? {
            return Ok(Err(Refusal::NotMember));
        }
        let found = Self::room_in(&mut tx, room).await?;
        match Self::role_in(&mut tx, room, by).await? {
            None => return Ok(Err(Refusal::NotMember)),
            // Nobody moderates a direct room: two people, no invitations.
            Some(_) if found.kind != RoomKind::Group => return Ok(Err(Refusal::Outranked)),
            Some(role) if role < Role::Admin => return Ok(Err(Refusal::Outranked)),
            Some(_) => {}
        }
        let outcome = if Self::role_in(&mut tx, room, invitee).await?.is_some() {
            InviteOutcome::AlreadyMember
        } else if Self::is_banned_in(&mut tx, room, invitee).await? {
            InviteOutcome::Banned
        } else {
            let pending: Vec<i64> = sqlx::query_scalar(
                "SELECT room_id FROM invitations WHERE user_id = $1 ORDER BY room_id",
            )
            .bind(invitee.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
            if pending.contains(&room.0) {
                InviteOutcome::AlreadyInvited
            } else if pending.len() >= max_pending as usize {
                InviteOutcome::TooManyPending
            } else {
                sqlx::query(
                    "INSERT INTO invitations (room_id, user_id, invited_by, created_at)
                     SELECT $1, id, $3, $4 FROM users WHERE id = $2 AND deleted_at IS NULL",
                )
                .bind(room.0)
                .bind(invitee.0)
                .bind(by.0)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                InviteOutcome::Invited
            }
        };
        let events = match outcome {
            InviteOutcome::Invited => vec![DomainEvent::Invited {
                room_id: room,
                room_name: found.name,
                user_id: invitee,
                by,
            }],
            _ => Vec::new(),
        };
        Ok(Ok(self.commit_events(tx, outcome, events, now).await?))
    }

    async fn invitations(
        &self,
        user: UserId,
        after: RoomId,
        limit: u32,
    ) -> StoreResult<Vec<Invitation>> {
        let rows = sqlx::query(
            "SELECT i.room_id, r.name, i.invited_by, i.created_at
             FROM invitations i JOIN rooms r ON r.id = i.room_id
             WHERE i.user_id = $1 AND i.room_id > $2
               AND NOT EXISTS (SELECT 1 FROM bans b
                               WHERE b.room_id = i.room_id AND b.user_id = i.user_id)
             ORDER BY i.room_id LIMIT $3",
        )
        .bind(user.0)
        .bind(after.0)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(Invitation {
                    room_id: RoomId(row.try_get(0)?),
                    room_name: row.try_get(1)?,
                    by: UserId(row.try_get(2)?),
                    created_at: Timestamp(row.try_get(3)?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn accept_invitation(
        &self,
        room: RoomId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<Committed<Membership>>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let ended = sqlx::query("DELETE FROM invitations WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        if ended == 0 {
            return Ok(None);
        }
        match Self::add_member_in(&mut tx, room, user, Role::Member, now).await {
            Ok((membership, events)) => {
                Ok(Some(self.commit_events(tx, membership, events, now).await?))
            }
            Err(StoreError::Conflict("banned")) => {
                // The invitation ends all the same: a ban answers it.
                tx.commit().await.map_err(map_err)?;
                Err(StoreError::Conflict("banned"))
            }
            Err(other) => Err(other),
        }
    }

    async fn decline_invitation(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        let (_turn, mut tx) = self.begin_write().await?;
        let ended = sqlx::query("DELETE FROM invitations WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?
            .rows_affected();
        tx.commit().await.map_err(map_err)?;
        Ok(ended > 0)
    }
}
