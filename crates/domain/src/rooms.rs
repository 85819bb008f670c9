//! Rooms: create, join by code, list, inspect, leave, read markers, direct
//! rooms; moderation lives in `moderation.rs`.
//!
//! Every read about a room first proves the caller is a member; a non-member gets
//! `NotFound`, exactly as for a room that does not exist.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::model::{Member, Role, Room, RoomKind, RoomSummary, User};
use crate::outbox::Publisher;
use crate::passwords::Passwords;
use crate::store::{NewRoom, ReadMark, Refusal, Removal, Store, StoreError};
use crate::throttle::{Caller, ClientAddr, Operation, Throttles};
use crate::time::Timestamp;
use crate::values::{JoinCode, RoomName};

mod invitations;
mod moderation;

pub use invitations::{InvitationPage, MAX_PENDING_INVITATIONS};
pub use moderation::RoomSettings;

pub struct Rooms {
    store: Arc<dyn Store>,
    publisher: Publisher,
    passwords: Passwords,
    throttles: Arc<Throttles>,
}

/// Join codes are random; a handful of attempts makes a collision-caused
/// failure astronomically unlikely (31^8 ≈ 8.5e11 codes).
pub(crate) const CODE_ATTEMPTS: usize = 5;

/// The most members one page lists.
pub const MAX_MEMBER_PAGE: u32 = 500;

/// One page of a room's members, by user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPage {
    pub members: Vec<Member>,
    /// Whether members with higher ids follow.
    pub has_more: bool,
}

/// Rooms one user may be in: what bounds their room list and their `ready`
/// frame. Checked by the store in the transaction that adds a membership.
pub const MAX_ROOMS_PER_USER: i64 = 1000;

/// The refusal past `MAX_ROOMS_PER_USER`.
pub const TOO_MANY_ROOMS: &str = "one may be in at most 1000 rooms; leave one first";

impl Rooms {
    pub fn new(
        store: Arc<dyn Store>,
        publisher: Publisher,
        passwords: Passwords,
        throttles: Arc<Throttles>,
    ) -> Self {
        Self {
            store,
            publisher,
            passwords,
            throttles,
        }
    }

    pub async fn create(&self, owner: UserId, name: &str, password: Option<&str>) -> Result<Room> {
        self.throttles
            .charge(Operation::RoomCreate, Caller::user(owner))?;
        let name = RoomName::parse(name)?.into_inner();
        let password_hash = match room_password(password)? {
            Some(p) => Some(self.passwords.hash(p).await?),
            None => None,
        };
        for _ in 0..CODE_ATTEMPTS {
            let new_room = NewRoom {
                name: name.clone(),
                code: JoinCode::generate().as_str().to_owned(),
                password_hash: password_hash.clone(),
                owner_id: owner,
                created_at: Timestamp::now(),
            };
            match self.store.insert_room(new_room).await {
                Err(StoreError::Conflict("code")) => continue,
                Err(err) => return Err(err.into()),
                // The owner's `MemberJoined`: their open connections follow
                // the new room at once.
                Ok(created) => return Ok(self.publisher.publish_committed(created)),
            }
        }
        tracing::error!("could not find a free join code");
        Err(Error::Internal)
    }

    /// The one direct room of `user` and `other`, created on first use; the
    /// same room every time, from either side. Opening it makes `user` a
    /// member again if they had left; `other`, who left, stays out until
    /// they open it themselves.
    pub async fn direct(&self, user: &User, other: &User) -> Result<Room> {
        let caller = Caller::user(user.id).on(other.id);
        self.throttles.charge(Operation::DirectRoom, caller)?;
        if user.id == other.id {
            return Err(Error::Forbidden("a direct room needs someone else"));
        }
        // Only a new room lands on the other person: only it spends their budget.
        if self
            .store
            .direct_room_id(user.id, other.id)
            .await?
            .is_none()
        {
            self.throttles
                .charge_landing(Operation::DirectRoom, caller)?;
        }
        let mut names = [user.username.as_str(), other.username.as_str()];
        names.sort_unstable();
        for _ in 0..CODE_ATTEMPTS {
            let new_room = NewRoom {
                name: format!("{} & {}", names[0], names[1]),
                code: JoinCode::generate().as_str().to_owned(),
                password_hash: None,
                owner_id: user.id,
                created_at: Timestamp::now(),
            };
            match self.store.direct_room(user.id, other.id, new_room).await {
                Err(StoreError::Conflict("deleted")) => return Err(Error::NotFound("user")),
                Err(StoreError::Conflict("code")) => continue,
                Err(err) => return Err(err.into()),
                Ok(direct) => return Ok(self.publisher.publish_committed(direct).room),
            }
        }
        tracing::error!("could not find a free join code");
        Err(Error::Internal)
    }

    /// Joining a room one already belongs to returns it without asking again.
    /// Every attempt counts against the caller's join limits (per user and per
    /// address), so codes and room passwords cannot be guessed at speed.
    pub async fn join(
        &self,
        user: UserId,
        code: &str,
        password: Option<&str>,
        from: ClientAddr,
    ) -> Result<Room> {
        self.throttles
            .charge(Operation::Join, Caller::user(user).from(from))?;
        let code = JoinCode::parse(code)?;
        let room = self
            .store
            .room_by_code(code.as_str())
            .await?
            // A direct room has a code only because every room does.
            .filter(|room| room.kind == RoomKind::Group)
            .ok_or(Error::NotFound("room"))?;
        if self.store.member_role(room.id, user).await?.is_some() {
            return Ok(room);
        }
        if self.store.is_banned(room.id, user).await? {
            return Err(Error::Forbidden("you are banned from this room"));
        }
        if let Some(hash) = &room.password_hash {
            let given = password.unwrap_or_default();
            if !self.passwords.verify(given, Some(hash)).await? {
                return Err(Error::Forbidden("wrong room password"));
            }
        }
        // The ban is checked again by the insert: one made since the check
        // above wins.
        let joined = match self
            .store
            .add_member(room.id, user, Role::Member, Timestamp::now())
            .await
        {
            Err(StoreError::Conflict("banned")) => {
                return Err(Error::Forbidden("you are banned from this room"))
            }
            Err(StoreError::Conflict("deleted")) => return Err(Error::NotFound("user")),
            other => other?,
        };
        self.publisher.publish_committed(joined);
        Ok(room)
    }

    pub async fn get(&self, user: UserId, room: RoomId) -> Result<Room> {
        self.require_member(user, room).await?;
        self.store
            .room_by_id(room)
            .await?
            .ok_or(Error::NotFound("room"))
    }

    pub async fn list(&self, user: UserId) -> Result<Vec<RoomSummary>> {
        Ok(self.store.rooms_of_user(user).await?)
    }

    /// Each of the user's rooms with its newest seq.
    pub async fn positions(&self, user: UserId) -> Result<Vec<(RoomId, u64)>> {
        Ok(self.store.room_positions(user).await?)
    }

    /// The user and each of their rooms with its newest seq, in one read;
    /// `NotFound` when the user does not exist.
    pub async fn user_with_positions(&self, user: UserId) -> Result<(User, Vec<(RoomId, u64)>)> {
        self.store
            .user_with_positions(user)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// A page of the room's members with a user id above `after`, by user id
    /// (a room's members are a list anyone with its code can grow).
    pub async fn members(
        &self,
        user: UserId,
        room: RoomId,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<MemberPage> {
        self.require_member(user, room).await?;
        if !(1..=MAX_MEMBER_PAGE).contains(&limit) {
            return Err(Error::invalid("limit", "must be from 1 to 500"));
        }
        let mut members = self
            .store
            .members(room, after.unwrap_or(UserId(0)), limit + 1)
            .await?;
        let has_more = members.len() > limit as usize;
        members.truncate(limit as usize);
        Ok(MemberPage { members, has_more })
    }

    pub async fn leave(&self, user: UserId, room: RoomId) -> Result<()> {
        self.throttles
            .charge(Operation::Leave, Caller::user(user))?;
        let committed = self
            .store
            .remove_member(room, user, Removal::Left, Timestamp::now())
            .await?
            .map_err(|refusal| refused(refusal, "you may not leave this room"))?;
        self.publisher.publish_committed(committed);
        Ok(())
    }

    /// Moves the caller's read marker forward to `seq` (capped at the room's
    /// newest message); returns where it now is. Never moves it backwards.
    /// Membership is checked by the store in the same transaction
    /// (`ReadMark::NotMember`): no separate read, and no race with a leave.
    pub async fn mark_read(&self, user: UserId, room: RoomId, seq: u64) -> Result<u64> {
        self.throttles
            .charge(Operation::MarkRead, Caller::user(user))?;
        let marked = self
            .store
            .mark_read(room, user, seq, Timestamp::now())
            .await?;
        match self.publisher.publish_committed(marked) {
            ReadMark::Moved(now_at) => Ok(now_at),
            ReadMark::Unchanged(at) => Ok(at),
            // Not found, as for every room operation: a stranger learns nothing.
            ReadMark::NotMember => Err(Error::NotFound("room")),
        }
    }

    /// Every member's read marker.
    pub async fn read_markers(&self, user: UserId, room: RoomId) -> Result<Vec<(UserId, u64)>> {
        self.require_member(user, room).await?;
        Ok(self.store.read_markers(room).await?)
    }

    /// The caller's role, or `NotFound` so non-members learn nothing.
    pub async fn require_member(&self, user: UserId, room: RoomId) -> Result<Role> {
        self.store
            .member_role(room, user)
            .await?
            .ok_or(Error::NotFound("room"))
    }
}

/// The error for a change the store refused, having found in its
/// transaction that the domain's earlier check no longer holds: what that
/// check would answer now (`outranked`: the operation's own refusal).
pub(crate) fn refused(refusal: Refusal, outranked: &'static str) -> Error {
    match refusal {
        Refusal::NotMember => Error::NotFound("room"),
        Refusal::Outranked => Error::Forbidden(outranked),
        Refusal::NoTarget => Error::NotFound("member"),
    }
}

/// An empty password means "no password"; otherwise 1–1024 characters.
pub(crate) fn room_password(password: Option<&str>) -> Result<Option<&str>> {
    match password {
        None | Some("") => Ok(None),
        Some(p) if p.chars().count() > 1024 => Err(Error::invalid(
            "password",
            "must be at most 1024 characters",
        )),
        Some(p) => Ok(Some(p)),
    }
}
