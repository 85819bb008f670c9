//! Who may change a room and its membership.
//!
//! | action | who |
//! |---|---|
//! | invite (`invitations.rs`), remove, ban, unban, list bans | owner, admins (an admin only acts on plain members) |
//! | promote/demote admins, transfer ownership, rename, password, new code, delete | owner |
//!
//! Direct rooms have no moderation: two people, no roles. Non-members get
//! `NotFound` for everything, exactly as for a room that does not exist.

use super::{refused, room_password, Rooms, CODE_ATTEMPTS};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::model::{Role, Room, RoomKind};
use crate::store::{Ban, Removal, RoomChanges, StoreError};
use crate::throttle::{Caller, Operation};
use crate::time::Timestamp;
use crate::values::{JoinCode, RoomName};

const ONLY_OWNER: &str = "only the room's owner may do this";
const OWNER_OR_ADMIN: &str = "only the room's owner and admins may do this";
const OUTRANKED: &str = "only the owner may remove or ban an admin, and no one the owner";

/// What `PATCH /rooms/{id}` may change; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct RoomSettings {
    pub name: Option<String>,
    /// `Some("")` removes the password.
    pub password: Option<String>,
}

impl Rooms {
    /// Removes a member; their connections stop receiving the room at once.
    pub async fn kick(&self, actor: UserId, room: RoomId, target: UserId) -> Result<()> {
        self.throttles
            .charge(Operation::Kick, Caller::user(actor))?;
        let (_, actor_role) = self.authorize(actor, room, Role::Admin).await?;
        let target_role = self
            .store
            .member_role(room, target)
            .await?
            .ok_or(Error::NotFound("member"))?;
        outranks(actor, actor_role, target, Some(target_role))?;
        let removal = Removal::Kicked { by: actor };
        let committed = self
            .store
            .remove_member(room, target, removal, Timestamp::now())
            .await?
            .map_err(|refusal| refused(refusal, OUTRANKED))?;
        self.publisher.publish_committed(committed);
        Ok(())
    }

    /// Removes the user if they are a member and bars them from joining again.
    pub async fn ban(&self, actor: UserId, room: RoomId, target: UserId) -> Result<()> {
        self.throttles.charge(Operation::Ban, Caller::user(actor))?;
        let (_, actor_role) = self.authorize(actor, room, Role::Admin).await?;
        let target_role = self.store.member_role(room, target).await?;
        outranks(actor, actor_role, target, target_role)?;
        let now = Timestamp::now();
        let removal = Removal::Banned { by: actor, at: now };
        let committed = self
            .store
            .remove_member(room, target, removal, now)
            .await?
            .map_err(|refusal| refused(refusal, OUTRANKED))?;
        self.publisher.publish_committed(committed);
        Ok(())
    }

    pub async fn unban(&self, actor: UserId, room: RoomId, target: UserId) -> Result<()> {
        self.throttles
            .charge(Operation::Unban, Caller::user(actor))?;
        self.authorize(actor, room, Role::Admin).await?;
        // Checked again where the ban is lifted: a demotion or a removal of
        // the actor may commit in between.
        let committed = self
            .store
            .unban(room, actor, target)
            .await?
            .map_err(|refusal| refused(refusal, OWNER_OR_ADMIN))?;
        if self.publisher.publish_committed(committed) {
            Ok(())
        } else {
            Err(Error::NotFound("ban"))
        }
    }

    pub async fn bans(&self, actor: UserId, room: RoomId) -> Result<Vec<Ban>> {
        self.authorize(actor, room, Role::Admin).await?;
        Ok(self.store.bans(room).await?)
    }

    /// Makes a member an admin or a plain member again (owner only).
    pub async fn set_role(
        &self,
        actor: UserId,
        room: RoomId,
        target: UserId,
        role: Role,
    ) -> Result<()> {
        self.throttles
            .charge(Operation::RoleChange, Caller::user(actor))?;
        self.authorize(actor, room, Role::Owner).await?;
        if role == Role::Owner {
            return Err(Error::invalid(
                "role",
                "transfer ownership instead (POST /rooms/{id}/owner)",
            ));
        }
        if target == actor {
            return Err(Error::Forbidden(
                "the owner's role changes only by transferring ownership",
            ));
        }
        let committed = self
            .store
            .set_role(room, actor, target, role, Timestamp::now())
            .await?
            .map_err(|refusal| refused(refusal, ONLY_OWNER))?;
        self.publisher.publish_committed(committed);
        Ok(())
    }

    /// Hands the room to another member; the old owner becomes an admin.
    /// Handing it to oneself changes nothing.
    pub async fn transfer_ownership(&self, actor: UserId, room: RoomId, to: UserId) -> Result<()> {
        self.throttles
            .charge(Operation::OwnershipTransfer, Caller::user(actor))?;
        self.authorize(actor, room, Role::Owner).await?;
        if to == actor {
            return Ok(());
        }
        let committed = self
            .store
            .transfer_ownership(room, actor, to, Timestamp::now())
            .await?
            .map_err(|refusal| refused(refusal, ONLY_OWNER))?;
        self.publisher.publish_committed(committed);
        Ok(())
    }

    /// Renames the room and/or changes or removes its password (owner only).
    pub async fn update(
        &self,
        actor: UserId,
        room: RoomId,
        settings: RoomSettings,
    ) -> Result<Room> {
        self.throttles
            .charge(Operation::RoomUpdate, Caller::user(actor))?;
        self.authorize(actor, room, Role::Owner).await?;
        let name = settings
            .name
            .as_deref()
            .map(RoomName::parse)
            .transpose()?
            .map(RoomName::into_inner);
        let password_hash = match settings.password.as_deref() {
            None => None,
            Some(given) => Some(match room_password(Some(given))? {
                None => None,
                Some(password) => Some(self.passwords.hash(password).await?),
            }),
        };
        let changes = RoomChanges {
            name,
            password_hash,
            code: None,
        };
        self.apply(actor, room, changes).await
    }

    /// Gives the room a new join code; the old one stops working (owner only).
    pub async fn rotate_code(&self, actor: UserId, room: RoomId) -> Result<Room> {
        self.throttles
            .charge(Operation::RoomCodeRotate, Caller::user(actor))?;
        self.authorize(actor, room, Role::Owner).await?;
        for _ in 0..CODE_ATTEMPTS {
            let changes = RoomChanges {
                code: Some(JoinCode::generate().as_str().to_owned()),
                ..RoomChanges::default()
            };
            match self.apply(actor, room, changes).await {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        tracing::error!("could not find a free join code");
        Err(Error::Internal)
    }

    /// Deletes the room with its history (owner only). Members get
    /// `room_deleted` and stop receiving it.
    pub async fn delete(&self, actor: UserId, room: RoomId) -> Result<()> {
        self.throttles
            .charge(Operation::RoomDelete, Caller::user(actor))?;
        self.authorize(actor, room, Role::Owner).await?;
        let committed = self
            .store
            .delete_room(room, actor, Timestamp::now())
            .await?
            .map_err(|refusal| refused(refusal, ONLY_OWNER))?;
        self.publisher.publish_committed(committed);
        Ok(())
    }

    /// Changes the room's settings, if `actor` is still its owner when the
    /// change commits.
    async fn apply(&self, actor: UserId, room: RoomId, changes: RoomChanges) -> Result<Room> {
        let committed = match self
            .store
            .update_room(room, actor, changes, Timestamp::now())
            .await
        {
            Err(StoreError::Conflict(what)) => return Err(Error::Conflict(what)),
            other => other?.map_err(|refusal| refused(refusal, ONLY_OWNER))?,
        };
        Ok(self.publisher.publish_committed(committed))
    }

    /// The room and the actor's role, if the actor may act with `needed`.
    async fn authorize(&self, actor: UserId, room: RoomId, needed: Role) -> Result<(Room, Role)> {
        let role = self.require_member(actor, room).await?;
        let found = self
            .store
            .room_by_id(room)
            .await?
            .ok_or(Error::NotFound("room"))?;
        if found.kind == RoomKind::Direct {
            return Err(Error::Forbidden("a direct room has no owner or admins"));
        }
        if role < needed {
            return Err(Error::Forbidden(match needed {
                Role::Owner => ONLY_OWNER,
                _ => OWNER_OR_ADMIN,
            }));
        }
        Ok((found, role))
    }
}

/// An actor may remove or ban only someone of a lower role, and never themselves.
fn outranks(
    actor: UserId,
    actor_role: Role,
    target: UserId,
    target_role: Option<Role>,
) -> Result<()> {
    if actor == target {
        return Err(Error::Forbidden(
            "no one may remove, ban or re-rank themselves; to leave, use leave",
        ));
    }
    match target_role {
        Some(role) if role >= actor_role => Err(Error::Forbidden(OUTRANKED)),
        _ => Ok(()),
    }
}
