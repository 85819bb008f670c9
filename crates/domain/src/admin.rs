//! Server administration: the server's admins act on any account, room,
//! message or report, and every action they take is recorded in the audit
//! log in the transaction that makes it (`AdminStore::admin_act`), then
//! published as an `admin_action` event.
//!
//! Who is an admin is decided on the command line alone (`palaver admin
//! grant`, `Actor::Operator`); there is none by default. Every operation
//! checks twice that its caller is an admin whose account is alive and not
//! suspended: here, before anything is read or changed, and again in the
//! store, in the change's own transaction under the caller's account row
//! lock, so a revocation or a suspension that commits first is never passed
//! by. Members' reports of messages are filed in `reports.rs`.

mod records;
mod reports;

use std::sync::Arc;

pub use records::{
    Actor, AdminAction, AdminGrant, AuditDetail, AuditEntry, AuditTarget, Report, ReportOutcome,
    ReportResolution, RoomOverview, Suspension, UserOverview,
};
pub use reports::Filed;

use crate::accounts::UserLookup;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::outbox::Publisher;
use crate::store::{
    AdminAct, AdminChange, AdminOutcome, AdminRefusal, ReportFilter, Store, StoreResult,
};
use crate::throttle::{Caller, Operation, Throttles};
use crate::time::Timestamp;
use crate::values::Reason;

/// The refusal of every admin operation to anyone else.
pub const NOT_ADMIN: &str = "only server admins may do this";

/// The most one page of a listing holds, and how many when not asked.
pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 50;

/// Messages one `erase_messages` blanks at most: each is an event, and the
/// transaction that blanks them should stay short. Repeat while `more`.
pub const ERASE_BATCH: u32 = 500;

/// One page of a listing, and the cursor of the next (absent on the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

/// What one `erase_messages` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub entry: AuditEntry,
    pub erased: u64,
    /// Messages of the user are left to erase: call again.
    pub more: bool,
}

pub struct Admin {
    store: Arc<dyn Store>,
    publisher: Publisher,
    throttles: Arc<Throttles>,
    /// How long a deleted account's username is held (`AccountTimes`).
    username_hold_secs: i64,
}

impl Admin {
    pub fn new(
        store: Arc<dyn Store>,
        publisher: Publisher,
        throttles: Arc<Throttles>,
        username_hold_secs: i64,
    ) -> Self {
        Self {
            store,
            publisher,
            throttles,
            username_hold_secs,
        }
    }

    /// Whether `user` is an admin now (alive, not suspended).
    pub async fn is_admin(&self, user: UserId) -> Result<bool> {
        Ok(self.store.is_admin(user, Timestamp::now()).await?)
    }

    /// `Forbidden` unless `caller` is an admin now: every operation's first step.
    pub async fn require_admin(&self, caller: UserId) -> Result<()> {
        if self.is_admin(caller).await? {
            Ok(())
        } else {
            Err(Error::Forbidden(NOT_ADMIN))
        }
    }

    /// Every server admin.
    pub async fn admins(&self, caller: UserId) -> Result<Vec<AdminGrant>> {
        self.begin_read(caller).await?;
        Ok(self.store.admins().await?)
    }

    /// Live accounts whose username or display name starts with `query`
    /// (any case; all when empty), by id, after the cursor `after`.
    pub async fn users(
        &self,
        caller: UserId,
        query: Option<&str>,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Page<UserOverview>> {
        self.begin_read(caller).await?;
        let (prefix, limit) = (prefix(query)?, page_limit(limit)?);
        let mut users = self
            .store
            .user_overviews(
                &prefix,
                UserId(after.unwrap_or(0)),
                limit + 1,
                Timestamp::now(),
            )
            .await?;
        Ok(page(&mut users, limit, |user| user.user.id.0))
    }

    /// Rooms whose name starts with `query` (any case; all when empty), by
    /// id, after the cursor `after`, with their member counts and activity.
    pub async fn rooms(
        &self,
        caller: UserId,
        query: Option<&str>,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Page<RoomOverview>> {
        self.begin_read(caller).await?;
        let (prefix, limit) = (prefix(query)?, page_limit(limit)?);
        let mut rooms = self
            .store
            .room_overviews(&prefix, RoomId(after.unwrap_or(0)), limit + 1)
            .await?;
        Ok(page(&mut rooms, limit, |room| room.room.id.0))
    }

    /// Suspends an account until `ends_at` (`None`: until lifted): it cannot
    /// log in or refresh, and every session of it ends at once, on every
    /// node (`SessionsEnded`). Its owner sees `reason` when logging in.
    pub async fn suspend(
        &self,
        caller: UserId,
        user: UserId,
        reason: &str,
        ends_at: Option<Timestamp>,
    ) -> Result<AuditEntry> {
        self.begin(caller).await?;
        let reason = Reason::parse(reason)?;
        let now = Timestamp::now();
        if ends_at.is_some_and(|end| end <= now) {
            return Err(Error::invalid("until", "must be in the future"));
        }
        not_oneself(caller, user, "an admin may not suspend themselves")?;
        let change = AdminChange::Suspend { user, ends_at };
        self.act(caller, change, Some(reason), now).await
    }

    /// Lifts an account's suspension (an ended one too).
    pub async fn unsuspend(
        &self,
        caller: UserId,
        user: UserId,
        reason: Option<&str>,
    ) -> Result<AuditEntry> {
        self.begin(caller).await?;
        let reason = reason.map(Reason::parse).transpose()?;
        let change = AdminChange::Unsuspend { user };
        self.act(caller, change, reason, Timestamp::now()).await
    }

    /// Deletes an account as its owner could (`Accounts::delete_account`):
    /// refused (`LastOwner`) while it is the only owner of rooms with others.
    pub async fn delete_user(
        &self,
        caller: UserId,
        user: UserId,
        erase: bool,
        reason: &str,
    ) -> Result<AuditEntry> {
        self.begin(caller).await?;
        let reason = Reason::parse(reason)?;
        not_oneself(
            caller,
            user,
            "an admin deletes their own account as its owner (DELETE /users/me)",
        )?;
        let now = Timestamp::now();
        let change = AdminChange::DeleteUser {
            user,
            erase,
            username_free_at: now.plus_seconds(self.username_hold_secs),
        };
        self.act(caller, change, Some(reason), now).await
    }

    /// Deletes a room for everyone, with its history; its members get
    /// `room_deleted` with `reason`.
    pub async fn take_down(
        &self,
        caller: UserId,
        room: RoomId,
        reason: &str,
    ) -> Result<AuditEntry> {
        self.begin(caller).await?;
        let reason = Reason::parse(reason)?;
        let change = AdminChange::TakeDown { room };
        self.act(caller, change, Some(reason), Timestamp::now())
            .await
    }

    /// Makes `to`, a member of the group room, its owner; the owner before
    /// becomes an admin of it.
    pub async fn transfer_room(
        &self,
        caller: UserId,
        room: RoomId,
        to: UserId,
        reason: Option<&str>,
    ) -> Result<AuditEntry> {
        self.begin(caller).await?;
        let reason = reason.map(Reason::parse).transpose()?;
        let change = AdminChange::TransferRoom { room, to };
        self.act(caller, change, reason, Timestamp::now()).await
    }

    /// Deletes any message (its seq stays; members get `message_deleted`).
    pub async fn delete_message(
        &self,
        caller: UserId,
        room: RoomId,
        seq: u64,
        reason: Option<&str>,
    ) -> Result<AuditEntry> {
        self.begin(caller).await?;
        let reason = reason.map(Reason::parse).transpose()?;
        let change = AdminChange::DeleteMessage { room, seq };
        self.act(caller, change, reason, Timestamp::now()).await
    }

    /// Blanks up to `ERASE_BATCH` of the user's messages not deleted yet,
    /// each a `message_deleted`; `more` says some are left.
    pub async fn erase_messages(
        &self,
        caller: UserId,
        user: UserId,
        reason: Option<&str>,
    ) -> Result<Erased> {
        self.begin(caller).await?;
        let reason = reason.map(Reason::parse).transpose()?;
        let change = AdminChange::EraseMessages {
            user,
            most: ERASE_BATCH,
        };
        let done = self.commit(Actor::Admin(caller), change, reason, Timestamp::now());
        let outcome = done.await?;
        Ok(Erased {
            entry: outcome.entry,
            erased: outcome.erased,
            more: outcome.more,
        })
    }

    /// Reports, by id, after the cursor `after`.
    pub async fn reports(
        &self,
        caller: UserId,
        which: ReportFilter,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Page<Report>> {
        self.begin_read(caller).await?;
        let limit = page_limit(limit)?;
        let mut reports = self
            .store
            .reports(which, after.unwrap_or(0), limit + 1)
            .await?;
        Ok(page(&mut reports, limit, |report| report.id))
    }

    /// Resolves a report, and every other open report of the same message,
    /// doing what `outcome` says: nothing, deleting the message, or
    /// suspending its sender until `ends_at` (with `reason`, else the
    /// report's).
    pub async fn resolve_report(
        &self,
        caller: UserId,
        report: i64,
        outcome: ReportOutcome,
        reason: Option<&str>,
        ends_at: Option<Timestamp>,
    ) -> Result<AuditEntry> {
        self.begin(caller).await?;
        let reason = reason.map(Reason::parse).transpose()?;
        let now = Timestamp::now();
        match (outcome, ends_at) {
            (ReportOutcome::SenderSuspended, Some(end)) if end <= now => {
                return Err(Error::invalid("until", "must be in the future"))
            }
            (ReportOutcome::SenderSuspended, _) | (_, None) => {}
            (_, Some(_)) => {
                return Err(Error::invalid(
                    "until",
                    "only suspending the sender takes an end",
                ))
            }
        }
        let change = AdminChange::ResolveReport {
            report,
            outcome,
            ends_at,
        };
        self.act(caller, change, reason, now).await
    }

    /// The audit log, newest first, before the cursor `before`.
    pub async fn audit(
        &self,
        caller: UserId,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Page<AuditEntry>> {
        self.begin_read(caller).await?;
        let limit = page_limit(limit)?;
        let mut entries = self
            .store
            .audit(before.unwrap_or(i64::MAX), limit + 1)
            .await?;
        Ok(page(&mut entries, limit, |entry| entry.id))
    }

    /// The checks before any read: the caller is an admin, within their budget.
    async fn begin_read(&self, caller: UserId) -> Result<()> {
        self.require_admin(caller).await?;
        self.throttles
            .charge(Operation::AdminRead, Caller::user(caller))
    }

    /// The checks before any change: the caller is an admin, within their budget.
    async fn begin(&self, caller: UserId) -> Result<()> {
        self.require_admin(caller).await?;
        self.throttles
            .charge(Operation::AdminAction, Caller::user(caller))
    }

    async fn act(
        &self,
        caller: UserId,
        change: AdminChange,
        reason: Option<Reason>,
        now: Timestamp,
    ) -> Result<AuditEntry> {
        let outcome = self
            .commit(Actor::Admin(caller), change, reason, now)
            .await?;
        Ok(outcome.entry)
    }

    async fn commit(
        &self,
        actor: Actor,
        change: AdminChange,
        reason: Option<Reason>,
        now: Timestamp,
    ) -> Result<AdminOutcome> {
        let done = commit_act(self.store.as_ref(), actor, change, reason, now).await?;
        let outcome = self.publisher.publish_committed(done);
        tracing::info!(
            admin = ?actor.admin(),
            action = outcome.entry.action.as_str(),
            target = outcome.entry.target.kind(),
            id = outcome.entry.target.id(),
            "admin action"
        );
        Ok(outcome)
    }
}

/// Makes `user` (by username or id) a server admin, as the operator on the
/// command line. The committed events are left to the outbox's relay (when
/// the store keeps one): the command line has no bus.
pub async fn grant_as_operator(
    store: &dyn Store,
    who: &UserLookup,
    reason: Option<&str>,
) -> Result<AuditEntry> {
    let user = find_live(store, who).await?;
    operator_act(store, AdminChange::Grant { user }, reason).await
}

/// Takes the admin role from `user`, as the operator on the command line.
pub async fn revoke_as_operator(
    store: &dyn Store,
    who: &UserLookup,
    reason: Option<&str>,
) -> Result<AuditEntry> {
    let user = find_live(store, who).await?;
    operator_act(store, AdminChange::Revoke { user }, reason).await
}

/// Every server admin, for the command line.
pub async fn admins_for_operator(store: &dyn Store) -> Result<Vec<AdminGrant>> {
    Ok(store.admins().await?)
}

async fn operator_act(
    store: &dyn Store,
    change: AdminChange,
    reason: Option<&str>,
) -> Result<AuditEntry> {
    let reason = reason.map(Reason::parse).transpose()?;
    let done = commit_act(store, Actor::Operator, change, reason, Timestamp::now()).await?;
    Ok(done.value.entry)
}

async fn find_live(store: &dyn Store, who: &UserLookup) -> Result<UserId> {
    let found = match who {
        UserLookup::Id(id) => store.user_by_id(*id).await?,
        UserLookup::Username(name) => store.user_by_username(&name.to_ascii_lowercase()).await?,
    };
    found
        .filter(|user| !user.deleted)
        .map(|user| user.id)
        .ok_or(Error::NotFound("user"))
}

/// The store's admin action, its refusal turned into the domain's error.
async fn commit_act(
    store: &dyn Store,
    actor: Actor,
    change: AdminChange,
    reason: Option<Reason>,
    now: Timestamp,
) -> Result<crate::store::Committed<AdminOutcome>> {
    let act = AdminAct {
        actor,
        change,
        reason: reason.map(Reason::into_inner),
        now,
    };
    let done: StoreResult<_> = store.admin_act(act).await;
    done?.map_err(|refusal| match refusal {
        AdminRefusal::NotAdmin => Error::Forbidden(NOT_ADMIN),
        AdminRefusal::NoTarget(what) => Error::NotFound(what),
        AdminRefusal::Unchanged(why) => Error::Conflict(why),
        AdminRefusal::Forbidden(why) => Error::Forbidden(why),
        AdminRefusal::LastOwner(rooms) => Error::LastOwner(rooms),
    })
}

fn not_oneself(caller: UserId, user: UserId, why: &'static str) -> Result<()> {
    if caller == user {
        Err(Error::Forbidden(why))
    } else {
        Ok(())
    }
}

fn prefix(query: Option<&str>) -> Result<String> {
    let query = query.unwrap_or_default();
    if query.chars().count() > 64 {
        return Err(Error::invalid("q", "must be at most 64 characters"));
    }
    Ok(query.trim().to_lowercase())
}

fn page_limit(limit: Option<u32>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n @ 1..=MAX_PAGE) => Ok(n),
        Some(_) => Err(Error::invalid("limit", "must be between 1 and 100")),
    }
}

/// Cuts the one extra row read past `limit` off, and names the cursor after
/// the last row kept when it was there.
fn page<T>(rows: &mut Vec<T>, limit: u32, key: impl Fn(&T) -> i64) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Page {
        next: if more { rows.last().map(&key) } else { None },
        items: std::mem::take(rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_names_its_next_cursor_only_when_more_follow() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(
            page(&mut rows, 2, |n| *n),
            Page {
                items: vec![1, 2],
                next: Some(2)
            }
        );
        let mut rows = vec![1, 2];
        assert_eq!(
            page(&mut rows, 2, |n| *n),
            Page {
                items: vec![1, 2],
                next: None
            }
        );
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(101)).is_err());
        assert_eq!(page_limit(None).unwrap(), DEFAULT_PAGE);
    }
}
