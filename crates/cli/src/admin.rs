//! `palaver-cli admin …`: the server admin API from a shell (server admins
//! only; the server refuses anyone else with `forbidden`). One line per
//! record, fields separated by tabs; text from the server is sanitized.

use clap::Subcommand;
use palaver_client::types::admin::AuditEntryInfo;
use palaver_client::{Client, ClientError};

use crate::sanitize::line as shown;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Accounts by id: id, username, rooms, live sessions, last seen, admin,
    /// suspension.
    Users {
        /// Start of a username or display name.
        #[arg(long, default_value = "")]
        q: String,
        /// The `next` cursor a previous page printed.
        #[arg(long)]
        after: Option<i64>,
    },
    /// Suspend an account: it cannot log in, and its sessions end at once.
    Suspend {
        user: i64,
        /// Shown to the account's owner when they log in.
        #[arg(long)]
        reason: String,
        /// When it ends (RFC 3339); until lifted without it.
        #[arg(long)]
        until: Option<String>,
    },
    /// Lift an account's suspension.
    Unsuspend {
        user: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete an account as its owner could.
    DeleteUser {
        user: i64,
        #[arg(long)]
        reason: String,
        /// Blank its messages too.
        #[arg(long)]
        erase: bool,
    },
    /// Blank every message of a user (in batches of 500).
    EraseMessages {
        user: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Rooms by id: id, name, members, newest seq, last activity.
    Rooms {
        #[arg(long, default_value = "")]
        q: String,
        #[arg(long)]
        after: Option<i64>,
    },
    /// Delete a room for everyone; its members are told the reason.
    TakeDown {
        room: i64,
        #[arg(long)]
        reason: String,
    },
    /// Make a member the room's owner.
    Transfer {
        room: i64,
        user: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete any message.
    DeleteMessage {
        room: i64,
        seq: u64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Members' reports: id, room, seq, reporter, status, reason, the message.
    Reports {
        /// `open`, `resolved` or `all`.
        #[arg(long, default_value = "open")]
        status: String,
        #[arg(long)]
        after: Option<i64>,
    },
    /// Resolve a report: `dismiss`, `delete_message` or `suspend_sender`.
    Resolve {
        report: i64,
        action: String,
        #[arg(long)]
        reason: Option<String>,
        /// With `suspend_sender`: when the suspension ends (RFC 3339).
        #[arg(long)]
        until: Option<String>,
    },
    /// The audit log, newest first: id, time, admin, action, target, reason.
    Audit {
        /// The `next` cursor a previous page printed.
        #[arg(long)]
        before: Option<i64>,
    },
}

pub async fn run(client: &Client, command: AdminCommand) -> Result<(), ClientError> {
    match command {
        AdminCommand::Users { q, after } => {
            let page = client.admin_users(&q, after, None).await?;
            for user in page.users {
                let name = user.user.username.unwrap_or_else(|| "(deleted)".into());
                let suspended = match &user.suspension {
                    Some(s) => format!(
                        "suspended until {}: {}",
                        s.until.as_deref().unwrap_or("lifted"),
                        shown(&s.reason)
                    ),
                    None => String::new(),
                };
                println!(
                    "{}\t{}\trooms {}\tsessions {}\tlast seen {}\t{}\t{suspended}",
                    user.user.id,
                    shown(&name),
                    user.rooms,
                    user.live_sessions,
                    user.last_seen.as_deref().map(shown).unwrap_or_default(),
                    if user.admin { "admin" } else { "" },
                );
            }
            next(page.next);
        }
        AdminCommand::Suspend {
            user,
            reason,
            until,
        } => done(&client.suspend_user(user, &reason, until.as_deref()).await?),
        AdminCommand::Unsuspend { user, reason } => {
            done(&client.unsuspend_user(user, reason.as_deref()).await?)
        }
        AdminCommand::DeleteUser {
            user,
            reason,
            erase,
        } => done(&client.admin_delete_user(user, &reason, erase).await?),
        AdminCommand::EraseMessages { user, reason } => loop {
            let erased = client.erase_messages(user, reason.as_deref()).await?;
            done(&erased.entry);
            if !erased.more {
                break;
            }
        },
        AdminCommand::Rooms { q, after } => {
            let page = client.admin_rooms(&q, after, None).await?;
            for room in page.rooms {
                println!(
                    "{}\t{}\tmembers {}\tseq {}\tactive {}",
                    room.room.id,
                    shown(&room.room.name),
                    room.members,
                    room.last_seq,
                    shown(&room.last_activity)
                );
            }
            next(page.next);
        }
        AdminCommand::TakeDown { room, reason } => {
            done(&client.take_down_room(room, &reason).await?)
        }
        AdminCommand::Transfer { room, user, reason } => done(
            &client
                .admin_transfer_room(room, user, reason.as_deref())
                .await?,
        ),
        AdminCommand::DeleteMessage { room, seq, reason } => done(
            &client
                .admin_delete_message(room, seq, reason.as_deref())
                .await?,
        ),
        AdminCommand::Reports { status, after } => {
            let page = client.reports(&status, after, None).await?;
            for report in page.reports {
                let message = report
                    .message
                    .map(|m| shown(&m.body).into_owned())
                    .unwrap_or_else(|| "(room gone)".into());
                println!(
                    "{}\troom {}\tseq {}\tby {}\t{}\t{}\t{message}",
                    report.id,
                    report.room,
                    report.seq,
                    report.reporter_id,
                    report
                        .resolution
                        .as_deref()
                        .map(shown)
                        .unwrap_or_else(|| shown(&report.status)),
                    shown(&report.reason),
                );
            }
            next(page.next);
        }
        AdminCommand::Resolve {
            report,
            action,
            reason,
            until,
        } => done(
            &client
                .resolve_report(report, &action, reason.as_deref(), until.as_deref())
                .await?,
        ),
        AdminCommand::Audit { before } => {
            let page = client.audit(before, None).await?;
            for entry in page.entries {
                println!("{}", audit_line(&entry));
            }
            next(page.next);
        }
    }
    Ok(())
}

/// One entry of the audit log, as a line.
fn audit_line(entry: &AuditEntryInfo) -> String {
    let admin = entry
        .admin_id
        .map_or("command line".to_owned(), |id| format!("admin {id}"));
    let target = match entry.target.seq {
        Some(seq) => format!("{} {} #{seq}", entry.target.kind, entry.target.id),
        None => format!("{} {}", entry.target.kind, entry.target.id),
    };
    format!(
        "{}\t{}\t{admin}\t{}\t{}\t{}",
        entry.id,
        shown(&entry.at),
        shown(&entry.action),
        shown(&target),
        entry.reason.as_deref().map(shown).unwrap_or_default()
    )
}

fn done(entry: &AuditEntryInfo) {
    println!("done: {}", audit_line(entry));
}

fn next(cursor: Option<i64>) {
    if let Some(cursor) = cursor {
        println!("next: {cursor}");
    }
}
