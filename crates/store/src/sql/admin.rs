//! Server administration: admins, suspensions, reports and the audit log.
//!
//! Every admin action is one transaction (`admin_act`): the account rows it
//! concerns locked first, in id order (the actor's and the target's: a
//! revocation, a suspension or a deletion of either commits before it or
//! after it, never between); the actor's authority read again under that
//! lock; the change, each checking its own conditions; the audit entry; and
//! the events, `AdminAction` last.

use palaver_domain::admin::{
    AdminAction, AdminGrant, AuditDetail, AuditEntry, AuditTarget, Report, ReportOutcome,
    ReportResolution, RoomOverview, Suspension, UserOverview,
};
use palaver_domain::events::DomainEvent;
use palaver_domain::model::{Role, RoomKind};
use palaver_domain::store::{
    AccountDeletion, AccountRemoval, AdminAct, AdminChange, AdminDone, AdminOutcome, AdminRefusal,
    AdminStore, NewReport, ReportFiled, ReportFilter, SessionsToEnd, StoreError, StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use super::decode::{self, Columns};
use super::{
    placeholders, Engine, RowsAffected, SqlStore, MESSAGE_COLUMNS, ROOM_COLUMNS, USER_COLUMNS,
};
use crate::errors::map_err;

/// → `$1` if it is an admin whose account is alive and not suspended at `$2`.
const IS_ADMIN: &str = "SELECT a.user_id FROM admins a JOIN users u ON u.id = a.user_id
     WHERE a.user_id = $1 AND u.deleted_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM suspensions s
                       WHERE s.user_id = a.user_id AND (s.ends_at IS NULL OR s.ends_at > $2))";

/// Why the API may not suspend or delete an admin: one stolen admin login
/// must not lock the others out; the operator revokes on the command line.
const ACTS_ON_AN_ADMIN: &str =
    "an admin may not be suspended or deleted through the API: revoke first";

const SUSPENSION_COLUMNS: &str = "user_id, reason, ends_at, suspended_by, suspended_at";

const AUDIT_COLUMNS: &str =
    "id, acted_at, admin_id, action, target_kind, target_id, target_seq, reason, detail";

/// Report columns, aliased to sit beside `MESSAGE_COLUMNS` (the message
/// reported, joined as `m`).
const REPORT_COLUMNS: &str = "p.id AS p_id, p.room_id AS p_room_id, p.seq AS p_seq, \
    p.reporter_id AS p_reporter_id, p.reason AS p_reason, p.created_at AS p_created_at, \
    p.resolved_at AS p_resolved_at, p.resolved_by AS p_resolved_by, \
    p.resolution AS p_resolution";

#[async_trait::async_trait]
impl<E> AdminStore for SqlStore<E>
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
    async fn is_admin(&self, user: UserId, now: Timestamp) -> StoreResult<bool> {
        let found: Option<i64> = sqlx::query_scalar(IS_ADMIN)
            .bind(user.0)
            .bind(now.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        Ok(found.is_some())
    }

    async fn admins(&self) -> StoreResult<Vec<AdminGrant>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, a.granted_at, a.granted_by
             FROM admins a JOIN users u ON u.id = a.user_id ORDER BY a.user_id"
        ))
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(AdminGrant {
                    user: decode::user(row)?,
                    granted_at: Timestamp(row.int("granted_at")?),
                    granted_by: row.int_or_null("granted_by")?.map(UserId),
                })
            })
            .collect()
    }

    async fn suspension(&self, user: UserId) -> StoreResult<Option<Suspension>> {
        let row = sqlx::query(&format!(
            "SELECT {SUSPENSION_COLUMNS} FROM suspensions WHERE user_id = $1"
        ))
        .bind(user.0)
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        row.map(|row| suspension(&row)).transpose()
    }

    async fn user_overviews(
        &self,
        prefix: &str,
        after: UserId,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<UserOverview>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, u.last_seen_at,
                    (SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id
                       AND s.revoked_at IS NULL AND s.expires_at > $4) AS live_sessions,
                    (SELECT COUNT(*) FROM members mb WHERE mb.user_id = u.id) AS room_count,
                    (SELECT COUNT(*) FROM admins a WHERE a.user_id = u.id) AS admin_rows,
                    sp.user_id, sp.reason, sp.ends_at, sp.suspended_by, sp.suspended_at
             FROM users u
             LEFT JOIN suspensions sp
                    ON sp.user_id = u.id AND (sp.ends_at IS NULL OR sp.ends_at > $4)
             WHERE (u.username LIKE $1 ESCAPE '\\' OR lower(u.display_name) LIKE $1 ESCAPE '\\')
               AND u.id > $2 AND u.deleted_at IS NULL
             ORDER BY u.id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(like_prefix(prefix))
            .bind(after.0)
            .bind(i64::from(limit))
            .bind(now.0)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(UserOverview {
                    user: decode::user(row)?,
                    last_seen: row.int_or_null("last_seen_at")?.map(Timestamp),
                    live_sessions: row.int("live_sessions")? as u64,
                    rooms: row.int("room_count")? as u64,
                    admin: row.int("admin_rows")? > 0,
                    suspension: match row.int_or_null("user_id")? {
                        Some(_) => Some(suspension(row)?),
                        None => None,
                    },
                })
            })
            .collect()
    }

    async fn room_overviews(
        &self,
        prefix: &str,
        after: RoomId,
        limit: u32,
    ) -> StoreResult<Vec<RoomOverview>> {
        let sql = format!(
            "SELECT {ROOM_COLUMNS}, r.last_seq AS room_last_seq,
                    (SELECT COUNT(*) FROM members mb WHERE mb.room_id = r.id) AS member_count,
                    COALESCE(m.created_at, r.created_at) AS last_activity
             FROM rooms r LEFT JOIN messages m ON m.room_id = r.id AND m.seq = r.last_seq
             WHERE lower(r.name) LIKE $1 ESCAPE '\\' AND r.id > $2
             ORDER BY r.id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(like_prefix(prefix))
            .bind(after.0)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(RoomOverview {
                    room: decode::room(row)?,
                    members: row.int("member_count")? as u64,
                    last_seq: row.int("room_last_seq")? as u64,
                    last_activity: Timestamp(row.int("last_activity")?),
                })
            })
            .collect()
    }

    async fn file_report(&self, report: NewReport) -> StoreResult<ReportFiled> {
        let NewReport {
            room,
            seq,
            reporter,
            reason,
            now,
        } = report;
        let seq = seq.min(i64::MAX as u64) as i64;
        let (_turn, mut tx) = self.begin_write().await?;
        // The room's lock, which every membership change takes first: a
        // removal that committed before is seen here, one that waits
        // commits after the report.
        if !Self::lock_room(&mut tx, room).await? {
            return Ok(ReportFiled::NotMember);
        }
        if Self::role_in(&mut tx, room, reporter).await?.is_none() {
            return Ok(ReportFiled::NotMember);
        }
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT seq FROM messages WHERE room_id = $1 AND seq = $2 AND deleted_at IS NULL",
        )
        .bind(room.0)
        .bind(seq)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if live.is_none() {
            return Ok(ReportFiled::NoMessage);
        }
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM reports
             WHERE reporter_id = $1 AND room_id = $2 AND seq = $3 AND resolved_at IS NULL",
        )
        .bind(reporter.0)
        .bind(room.0)
        .bind(seq)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(id) = open {
            let found = Self::report_in(&mut tx, id).await?;
            return Ok(ReportFiled::AlreadyOpen(found));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO reports (room_id, seq, reporter_id, reason, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(room.0)
        .bind(seq)
        .bind(reporter.0)
        .bind(&reason)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let filed = Self::report_in(&mut tx, id).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(ReportFiled::Filed(filed))
    }

    async fn reports(
        &self,
        which: ReportFilter,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Report>> {
        let filter = match which {
            ReportFilter::Open => " AND p.resolved_at IS NULL",
            ReportFilter::Resolved => " AND p.resolved_at IS NOT NULL",
            ReportFilter::All => "",
        };
        let sql = format!(
            "SELECT {REPORT_COLUMNS}, {MESSAGE_COLUMNS}
             FROM reports p LEFT JOIN messages m ON m.room_id = p.room_id AND m.seq = p.seq
             WHERE p.id > $1{filter} ORDER BY p.id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter().map(report).collect()
    }

    async fn audit(&self, before: i64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM admin_audit WHERE id < $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter().map(audit_entry).collect()
    }

    async fn admin_act(&self, act: AdminAct) -> StoreResult<AdminDone> {
        let AdminAct {
            actor,
            change,
            reason,
            now,
        } = act;
        let (_turn, mut tx) = self.begin_write().await?;
        // The accounts whose rows the action locks: the actor's, and the
        // one it acts on (a report's sender, read before the lock: a
        // message's sender never changes).
        let mut accounts: Vec<UserId> = actor.admin().into_iter().collect();
        let mut reported = None;
        match &change {
            AdminChange::Grant { user }
            | AdminChange::Revoke { user }
            | AdminChange::Suspend { user, .. }
            | AdminChange::Unsuspend { user }
            | AdminChange::DeleteUser { user, .. }
            | AdminChange::EraseMessages { user, .. } => accounts.push(*user),
            AdminChange::ResolveReport { report, .. } => {
                let Some(found) = Self::reported_in(&mut tx, *report).await? else {
                    return Ok(Err(AdminRefusal::NoTarget("report")));
                };
                accounts.extend(found.sender);
                reported = Some(found);
            }
            AdminChange::TakeDown { .. }
            | AdminChange::TransferRoom { .. }
            | AdminChange::DeleteMessage { .. } => {}
        }
        Self::lock_accounts(&mut tx, &mut accounts).await?;
        if let Some(admin) = actor.admin() {
            let still: Option<i64> = sqlx::query_scalar(IS_ADMIN)
                .bind(admin.0)
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
            if still.is_none() {
                return Ok(Err(AdminRefusal::NotAdmin));
            }
        }
        let mut events = Vec::new();
        let mut detail = AuditDetail::default();
        let (mut erased, mut more) = (0, false);
        let (action, target) = match change {
            AdminChange::Grant { user } => {
                if !Self::is_live_in(&mut tx, user).await? {
                    return Ok(Err(AdminRefusal::NoTarget("user")));
                }
                let granted = sqlx::query(
                    "INSERT INTO admins (user_id, granted_at, granted_by) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user.0)
                .bind(now.0)
                .bind(actor.admin().map(|a| a.0))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
                if granted == 0 {
                    return Ok(Err(AdminRefusal::Unchanged("the user is already an admin")));
                }
                (AdminAction::GrantAdmin, AuditTarget::User(user))
            }
            AdminChange::Revoke { user } => {
                let revoked = sqlx::query("DELETE FROM admins WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if revoked == 0 {
                    return Ok(Err(AdminRefusal::Unchanged("the user is not an admin")));
                }
                (AdminAction::RevokeAdmin, AuditTarget::User(user))
            }
            AdminChange::Suspend { user, ends_at } => {
                if actor.admin() == Some(user) {
                    return Ok(Err(AdminRefusal::Forbidden(
                        "an admin may not suspend themselves",
                    )));
                }
                if !Self::is_live_in(&mut tx, user).await? {
                    return Ok(Err(AdminRefusal::NoTarget("user")));
                }
                if actor.admin().is_some() && Self::holds_admin_in(&mut tx, user).await? {
                    return Ok(Err(AdminRefusal::Forbidden(ACTS_ON_AN_ADMIN)));
                }
                let why = reason.clone().unwrap_or_else(|| "suspended".to_owned());
                events.extend(
                    self.suspend_in(&mut tx, user, &why, ends_at, actor.admin(), now)
                        .await?,
                );
                detail.ends_at = ends_at.map(|end| end.0);
                (AdminAction::SuspendUser, AuditTarget::User(user))
            }
            AdminChange::Unsuspend { user } => {
                let lifted = sqlx::query("DELETE FROM suspensions WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                if lifted == 0 {
                    return Ok(Err(AdminRefusal::Unchanged("the user is not suspended")));
                }
                (AdminAction::UnsuspendUser, AuditTarget::User(user))
            }
            AdminChange::DeleteUser {
                user,
                erase,
                username_free_at,
            } => {
                if actor.admin() == Some(user) {
                    return Ok(Err(AdminRefusal::Forbidden(
                        "an admin deletes their own account as its owner",
                    )));
                }
                if actor.admin().is_some() && Self::holds_admin_in(&mut tx, user).await? {
                    return Ok(Err(AdminRefusal::Forbidden(ACTS_ON_AN_ADMIN)));
                }
                let removal = AccountRemoval {
                    user,
                    erase,
                    username_free_at,
                    now,
                };
                match self.delete_account_in(&mut tx, removal).await? {
                    None => return Ok(Err(AdminRefusal::NoTarget("user"))),
                    Some((AccountDeletion::LastOwner(rooms), _)) => {
                        return Ok(Err(AdminRefusal::LastOwner(rooms)))
                    }
                    Some((AccountDeletion::Deleted, deleted)) => events.extend(deleted),
                }
                detail.erase = Some(erase);
                (AdminAction::DeleteUser, AuditTarget::User(user))
            }
            AdminChange::TakeDown { room } => {
                if !Self::lock_room(&mut tx, room).await? {
                    return Ok(Err(AdminRefusal::NoTarget("room")));
                }
                self.delete_room_in(&mut tx, room).await?;
                events.push(DomainEvent::RoomDeleted {
                    room_id: room,
                    reason: reason.clone(),
                });
                (AdminAction::TakeDownRoom, AuditTarget::Room(room))
            }
            AdminChange::TransferRoom { room, to } => {
                if !Self::lock_room(&mut tx, room).await? {
                    return Ok(Err(AdminRefusal::NoTarget("room")));
                }
                if Self::room_in(&mut tx, room).await?.kind == RoomKind::Direct {
                    return Ok(Err(AdminRefusal::Unchanged(
                        "a direct room has no owner to change",
                    )));
                }
                match Self::role_in(&mut tx, room, to).await? {
                    None => return Ok(Err(AdminRefusal::NoTarget("member"))),
                    Some(Role::Owner) => {
                        return Ok(Err(AdminRefusal::Unchanged(
                            "the user already owns the room",
                        )))
                    }
                    Some(_) => {}
                }
                let owner: Option<i64> = sqlx::query_scalar(
                    "SELECT user_id FROM members WHERE room_id = $1 AND role = 'owner'",
                )
                .bind(room.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                if let Some(owner) = owner {
                    sqlx::query(
                        "UPDATE members SET role = 'admin' WHERE room_id = $1 AND user_id = $2",
                    )
                    .bind(room.0)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    events.push(DomainEvent::RoleChanged {
                        room_id: room,
                        user_id: UserId(owner),
                        role: Role::Admin,
                    });
                }
                events.extend(self.make_owner(&mut tx, room, to).await?);
                detail.from = owner;
                detail.to = Some(to.0);
                (AdminAction::TransferRoom, AuditTarget::Room(room))
            }
            AdminChange::DeleteMessage { room, seq } => {
                match Self::delete_message_in(&mut tx, room, seq, now).await? {
                    Some(event) => events.push(event),
                    None if Self::message_exists_in(&mut tx, room, seq).await? => {
                        return Ok(Err(AdminRefusal::Unchanged(
                            "the message was already deleted",
                        )))
                    }
                    None => return Ok(Err(AdminRefusal::NoTarget("message"))),
                }
                (
                    AdminAction::DeleteMessage,
                    AuditTarget::Message { room, seq },
                )
            }
            AdminChange::EraseMessages { user, most } => {
                let known: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if known.is_none() {
                    return Ok(Err(AdminRefusal::NoTarget("user")));
                }
                let mut blanked: Vec<(i64, i64)> = sqlx::query_as(
                    "UPDATE messages SET body = '', deleted_at = $2
                     WHERE (room_id, seq) IN (SELECT room_id, seq FROM messages
                                              WHERE sender_id = $1 AND deleted_at IS NULL
                                              ORDER BY room_id, seq LIMIT $3)
                     RETURNING room_id, seq",
                )
                .bind(user.0)
                .bind(now.0)
                .bind(i64::from(most))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                if blanked.is_empty() {
                    return Ok(Err(AdminRefusal::Unchanged(
                        "the user has no message left to erase",
                    )));
                }
                blanked.sort_unstable();
                let left: Option<i64> = sqlx::query_scalar(
                    "SELECT seq FROM messages WHERE sender_id = $1 AND deleted_at IS NULL LIMIT 1",
                )
                .bind(user.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                (erased, more) = (blanked.len() as u64, left.is_some());
                events.extend(
                    blanked
                        .into_iter()
                        .map(|(room, seq)| DomainEvent::MessageDeleted {
                            room_id: RoomId(room),
                            seq: seq as u64,
                        }),
                );
                detail.erased = Some(erased);
                (AdminAction::EraseMessages, AuditTarget::User(user))
            }
            AdminChange::ResolveReport {
                report,
                outcome,
                ends_at,
            } => {
                let reported = reported.expect("read before the locks");
                // The report's own lock: of two resolutions at once, the
                // second finds it resolved.
                let resolved: Option<Option<i64>> = sqlx::query_scalar(&format!(
                    "SELECT resolved_at FROM reports WHERE id = $1{}",
                    E::FOR_UPDATE
                ))
                .bind(report)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
                if resolved.flatten().is_some() {
                    return Ok(Err(AdminRefusal::Unchanged(
                        "the report was already resolved",
                    )));
                }
                let (room, seq) = (reported.room, reported.seq);
                match outcome {
                    ReportOutcome::Dismissed => {}
                    ReportOutcome::MessageDeleted => {
                        // Deleted since, or gone with its room: nothing is left to delete.
                        events.extend(Self::delete_message_in(&mut tx, room, seq, now).await?);
                    }
                    ReportOutcome::SenderSuspended => {
                        let Some(sender) = reported.sender else {
                            return Ok(Err(AdminRefusal::NoTarget("message")));
                        };
                        if actor.admin() == Some(sender) {
                            return Ok(Err(AdminRefusal::Forbidden(
                                "an admin may not suspend themselves",
                            )));
                        }
                        if !Self::is_live_in(&mut tx, sender).await? {
                            return Ok(Err(AdminRefusal::Unchanged(
                                "the sender's account was deleted",
                            )));
                        }
                        if actor.admin().is_some() && Self::holds_admin_in(&mut tx, sender).await? {
                            return Ok(Err(AdminRefusal::Forbidden(ACTS_ON_AN_ADMIN)));
                        }
                        // Never the reporter's words: the suspended person
                        // reads this at every login.
                        let why = reason
                            .clone()
                            .unwrap_or_else(|| "suspended after a report".to_owned());
                        events.extend(
                            self.suspend_in(&mut tx, sender, &why, ends_at, actor.admin(), now)
                                .await?,
                        );
                        detail.sender = Some(sender.0);
                        detail.ends_at = ends_at.map(|end| end.0);
                    }
                }
                let closed = sqlx::query(
                    "UPDATE reports SET resolved_at = $1, resolved_by = $2, resolution = $3
                     WHERE room_id = $4 AND seq = $5 AND resolved_at IS NULL",
                )
                .bind(now.0)
                .bind(actor.admin().map(|a| a.0))
                .bind(outcome.as_str())
                .bind(room.0)
                .bind(seq.min(i64::MAX as u64) as i64)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
                detail.outcome = Some(outcome.as_str().to_owned());
                detail.room = Some(room.0);
                detail.seq = Some(seq);
                detail.resolved = Some(closed);
                (AdminAction::ResolveReport, AuditTarget::Report(report))
            }
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO admin_audit
                 (acted_at, admin_id, action, target_kind, target_id, target_seq, reason, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(now.0)
        .bind(actor.admin().map(|a| a.0))
        .bind(action.as_str())
        .bind(target.kind())
        .bind(target.id())
        .bind(target.seq().map(|seq| seq.min(i64::MAX as u64) as i64))
        .bind(reason.as_deref())
        .bind(detail.encode())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let entry = AuditEntry {
            id,
            at: now,
            admin: actor.admin(),
            action,
            target,
            reason,
            detail,
        };
        events.push(DomainEvent::AdminAction(entry.clone()));
        let outcome = AdminOutcome {
            entry,
            erased,
            more,
        };
        Ok(Ok(self.commit_events(tx, outcome, events, now).await?))
    }
}

/// What resolving a report needs of it, read before the locks.
struct Reported {
    room: RoomId,
    seq: u64,
    /// The message's sender; `None` once the message is gone with its room.
    sender: Option<UserId>,
}

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
    <E::Db as Database>::Row: decode::Columns,
    usize: ColumnIndex<<E::Db as Database>::Row>,
    for<'s> &'s str: ColumnIndex<<E::Db as Database>::Row>,
{
    /// Locks the accounts' rows in id order (PostgreSQL; SQLite's one writer
    /// already serializes), the order every admin action takes them in, so
    /// two actions on each other's actors wait rather than deadlock. The
    /// lock conflicts with the shared one logins and joins take.
    async fn lock_accounts(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        accounts: &mut Vec<UserId>,
    ) -> StoreResult<()> {
        accounts.sort_unstable();
        accounts.dedup();
        if accounts.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT id FROM users WHERE id IN ({}) ORDER BY id{}",
            placeholders(1, accounts.len()),
            E::FOR_NO_KEY_UPDATE
        );
        let mut query = sqlx::query(&sql);
        for account in accounts.iter() {
            query = query.bind(account.0);
        }
        query.execute(&mut **tx).await.map_err(map_err)?;
        Ok(())
    }

    /// Whether `user` holds the admin role (suspended or not); read under
    /// the account's lock, which granting and revoking take too.
    async fn holds_admin_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        user: UserId,
    ) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM admins WHERE user_id = $1")
                .bind(user.0)
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
        Ok(found.is_some())
    }

    /// Whether `user` is an account not deleted, read in `tx`.
    async fn is_live_in(tx: &mut sqlx::Transaction<'_, E::Db>, user: UserId) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL")
                .bind(user.0)
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
        Ok(found.is_some())
    }

    /// Suspends `user` (replacing a suspension they had) and ends every
    /// session of theirs; the events.
    async fn suspend_in(
        &self,
        tx: &mut sqlx::Transaction<'_, E::Db>,
        user: UserId,
        reason: &str,
        ends_at: Option<Timestamp>,
        by: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<Vec<DomainEvent>> {
        sqlx::query(
            "INSERT INTO suspensions (user_id, reason, ends_at, suspended_by, suspended_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE SET
                 reason = $2, ends_at = $3, suspended_by = $4, suspended_at = $5",
        )
        .bind(user.0)
        .bind(reason)
        .bind(ends_at.map(|end| end.0))
        .bind(by.map(|by| by.0))
        .bind(now.0)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        let sessions = self
            .end_live_sessions_in(tx, user, &SessionsToEnd::AllBut(None), now)
            .await?;
        Ok(if sessions.is_empty() {
            Vec::new()
        } else {
            vec![DomainEvent::SessionsEnded {
                user_id: user,
                sessions,
            }]
        })
    }

    /// Deletes a live message in `tx`; its event, `None` when there was no
    /// live message there.
    async fn delete_message_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: RoomId,
        seq: u64,
        now: Timestamp,
    ) -> StoreResult<Option<DomainEvent>> {
        let deleted = sqlx::query(
            "UPDATE messages SET body = '', deleted_at = $1
             WHERE room_id = $2 AND seq = $3 AND deleted_at IS NULL",
        )
        .bind(now.0)
        .bind(room.0)
        .bind(seq.min(i64::MAX as u64) as i64)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok((deleted > 0).then_some(DomainEvent::MessageDeleted { room_id: room, seq }))
    }

    async fn message_exists_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        room: RoomId,
        seq: u64,
    ) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM messages WHERE room_id = $1 AND seq = $2")
                .bind(room.0)
                .bind(seq.min(i64::MAX as u64) as i64)
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
        Ok(found.is_some())
    }

    /// The report `id` with its message, read in `tx`.
    async fn report_in(tx: &mut sqlx::Transaction<'_, E::Db>, id: i64) -> StoreResult<Report> {
        let row = sqlx::query(&format!(
            "SELECT {REPORT_COLUMNS}, {MESSAGE_COLUMNS}
             FROM reports p LEFT JOIN messages m ON m.room_id = p.room_id AND m.seq = p.seq
             WHERE p.id = $1"
        ))
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
        report(&row)
    }

    /// What resolving report `id` needs of it; `None` when there is none.
    async fn reported_in(
        tx: &mut sqlx::Transaction<'_, E::Db>,
        id: i64,
    ) -> StoreResult<Option<Reported>> {
        let row = sqlx::query(
            "SELECT p.room_id, p.seq, m.sender_id
             FROM reports p LEFT JOIN messages m ON m.room_id = p.room_id AND m.seq = p.seq
             WHERE p.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
        row.map(|row| {
            Ok(Reported {
                room: RoomId(row.int("room_id")?),
                seq: row.int("seq")? as u64,
                sender: row.int_or_null("sender_id")?.map(UserId),
            })
        })
        .transpose()
    }
}

/// `LIKE` pattern for "starts with `prefix`", its wildcards escaped (with
/// `ESCAPE '\'`), so `a_b` means "a_b".
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

fn suspension(row: &impl Columns) -> StoreResult<Suspension> {
    Ok(Suspension {
        user_id: UserId(row.int("user_id")?),
        reason: row.text("reason")?,
        ends_at: row.int_or_null("ends_at")?.map(Timestamp),
        by: row.int_or_null("suspended_by")?.map(UserId),
        at: Timestamp(row.int("suspended_at")?),
    })
}

fn report(row: &impl Columns) -> StoreResult<Report> {
    let resolution = match row.int_or_null("p_resolved_at")? {
        None => None,
        Some(at) => {
            let outcome = row.text("p_resolution")?;
            Some(ReportResolution {
                at: Timestamp(at),
                by: row.int_or_null("p_resolved_by")?.map(UserId),
                outcome: ReportOutcome::parse(&outcome)
                    .ok_or_else(|| StoreError::Other(format!("unknown resolution {outcome:?}")))?,
            })
        }
    };
    Ok(Report {
        id: row.int("p_id")?,
        room_id: RoomId(row.int("p_room_id")?),
        seq: row.int("p_seq")? as u64,
        reporter_id: UserId(row.int("p_reporter_id")?),
        reason: row.text("p_reason")?,
        created_at: Timestamp(row.int("p_created_at")?),
        resolution,
        message: match row.int_or_null("m_seq")? {
            Some(_) => Some(decode::message(row)?),
            None => None,
        },
    })
}

fn audit_entry(row: &impl Columns) -> StoreResult<AuditEntry> {
    let action = row.text("action")?;
    let kind = row.text("target_kind")?;
    let seq = row.int_or_null("target_seq")?.map(|seq| seq as u64);
    Ok(AuditEntry {
        id: row.int("id")?,
        at: Timestamp(row.int("acted_at")?),
        admin: row.int_or_null("admin_id")?.map(UserId),
        action: AdminAction::parse(&action)
            .ok_or_else(|| StoreError::Other(format!("unknown admin action {action:?}")))?,
        target: AuditTarget::from_parts(&kind, row.int("target_id")?, seq)
            .ok_or_else(|| StoreError::Other(format!("unknown audit target {kind:?}")))?,
        reason: row.text_or_null("reason")?,
        detail: AuditDetail::decode(row.text_or_null("detail")?.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_like_prefix_matches_its_wildcards_literally() {
        assert_eq!(super::like_prefix("a_b%"), "a\\_b\\%%");
        assert_eq!(super::like_prefix(""), "%");
    }
}
