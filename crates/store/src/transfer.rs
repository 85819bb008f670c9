//! Moving a whole installation between stores (`palaver db copy`, and the
//! backups of `backup.rs`): every table, ids preserved, in foreign-key order,
//! in keyset-paged batches, then verified by counting. Only these tables move:
//! the rest (login back-off, mailed codes, budgets' allowances, the outbox,
//! the cluster secret) is transient or made again by the first node.

use palaver_domain::store::{StoreError, StoreResult};

mod admin;
mod attachments;
mod reactions;
pub use admin::{AdminRow, AuditRow, ReportRow, SuspensionRow};
pub use attachments::AttachmentRow;
pub use reactions::ReactionRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Rooms,
    Members,
    Messages,
    Sessions,
    RefreshTokens,
    Bans,
    Invitations,
    SigningKeys,
    Admins,
    Suspensions,
    Reports,
    AdminAudit,
    Reactions,
    Mentions,
    /// The rows only: the files themselves are copied apart (docs/deploy.md).
    Attachments,
}

impl Table {
    /// Parents before children.
    pub const ALL: [Table; 16] = [
        Table::Users,
        Table::Rooms,
        Table::Members,
        Table::Messages,
        Table::Sessions,
        Table::RefreshTokens,
        Table::Bans,
        Table::Invitations,
        Table::SigningKeys,
        Table::Admins,
        Table::Suspensions,
        Table::Reports,
        Table::AdminAudit,
        Table::Reactions,
        Table::Mentions,
        Table::Attachments,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Rooms => "rooms",
            Table::Members => "members",
            Table::Messages => "messages",
            Table::Sessions => "sessions",
            Table::RefreshTokens => "refresh_tokens",
            Table::Bans => "bans",
            Table::Invitations => "invitations",
            Table::SigningKeys => "signing_keys",
            Table::Admins => "admins",
            Table::Suspensions => "suspensions",
            Table::Reports => "reports",
            Table::AdminAudit => "admin_audit",
            Table::Reactions => "reactions",
            Table::Mentions => "mentions",
            Table::Attachments => "attachments",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub email: Option<String>,
    pub email_verified_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub retired_username: Option<String>,
    pub username_free_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRow {
    pub id: i64,
    pub name: String,
    pub code: String,
    pub password_hash: Option<String>,
    pub owner_id: i64,
    pub created_at: i64,
    pub last_seq: i64,
    pub kind: String,
    pub dm_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub room_id: i64,
    pub user_id: i64,
    pub role: String,
    pub joined_at: i64,
    pub last_read_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub room_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub body: String,
    pub client_id: Option<String>,
    pub created_at: i64,
    pub reply_to: Option<i64>,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

/// A row of `bans` (`by`: `banned_by`) or `invitations` (`invited_by`):
/// one user marked in one room by another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMarkRow {
    pub room_id: i64,
    pub user_id: i64,
    pub by: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_hash: String,
    pub family: String,
    pub user_id: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: i64,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub revoked_at: Option<i64>,
}

/// A row of `mentions`: `user_id` named in the message `(room_id, seq)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionRow {
    pub user_id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub private_key: String,
    pub created_at: i64,
    pub signs_from: i64,
    pub bootstrap: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    Users(Vec<UserRow>),
    Rooms(Vec<RoomRow>),
    Members(Vec<MemberRow>),
    Messages(Vec<MessageRow>),
    Sessions(Vec<SessionRow>),
    RefreshTokens(Vec<TokenRow>),
    Bans(Vec<RoomMarkRow>),
    Invitations(Vec<RoomMarkRow>),
    SigningKeys(Vec<SigningKeyRow>),
    Admins(Vec<AdminRow>),
    Suspensions(Vec<SuspensionRow>),
    Reports(Vec<ReportRow>),
    AdminAudit(Vec<AuditRow>),
    Reactions(Vec<ReactionRow>),
    Mentions(Vec<MentionRow>),
    Attachments(Vec<AttachmentRow>),
}

/// Where the next page starts: after this key (tables use the parts they need).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub first: i64,
    pub second: i64,
    pub text: String,
    /// A key's third part (reactions: the user; mentions: the seq).
    pub third: i64,
}

impl Default for Cursor {
    fn default() -> Self {
        Self {
            first: i64::MIN,
            second: i64::MIN,
            text: String::new(),
            third: i64::MIN,
        }
    }
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Users(r) => r.len(),
            Rows::Rooms(r) => r.len(),
            Rows::Members(r) => r.len(),
            Rows::Messages(r) => r.len(),
            Rows::Sessions(r) => r.len(),
            Rows::RefreshTokens(r) => r.len(),
            Rows::Bans(r) | Rows::Invitations(r) => r.len(),
            Rows::SigningKeys(r) => r.len(),
            Rows::Admins(r) => r.len(),
            Rows::Suspensions(r) => r.len(),
            Rows::Reports(r) => r.len(),
            Rows::AdminAudit(r) => r.len(),
            Rows::Reactions(r) => r.len(),
            Rows::Mentions(r) => r.len(),
            Rows::Attachments(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cursor after the last row of this page.
    fn next_cursor(&self) -> Option<Cursor> {
        let mut cursor = Cursor::default();
        match self {
            Rows::Users(r) => cursor.first = r.last()?.id,
            Rows::Rooms(r) => cursor.first = r.last()?.id,
            Rows::Members(r) => {
                let last = r.last()?;
                (cursor.first, cursor.second) = (last.room_id, last.user_id);
            }
            Rows::Messages(r) => {
                let last = r.last()?;
                (cursor.first, cursor.second) = (last.room_id, last.seq);
            }
            Rows::Sessions(r) => cursor.text = r.last()?.id.clone(),
            Rows::RefreshTokens(r) => cursor.text = r.last()?.token_hash.clone(),
            Rows::SigningKeys(r) => cursor.text = r.last()?.kid.clone(),
            Rows::Admins(r) => cursor.first = r.last()?.user_id,
            Rows::Suspensions(r) => cursor.first = r.last()?.user_id,
            Rows::Reports(r) => cursor.first = r.last()?.id,
            Rows::AdminAudit(r) => cursor.first = r.last()?.id,
            Rows::Reactions(r) => {
                let last = r.last()?;
                (cursor.first, cursor.second) = (last.room_id, last.seq);
                (cursor.text, cursor.third) = (last.emoji.clone(), last.user_id);
            }
            Rows::Attachments(r) => cursor.text = r.last()?.id.clone(),
            Rows::Bans(r) | Rows::Invitations(r) => {
                let last = r.last()?;
                (cursor.first, cursor.second) = (last.room_id, last.user_id);
            }
            Rows::Mentions(r) => {
                let last = r.last()?;
                (cursor.first, cursor.second, cursor.third) =
                    (last.user_id, last.room_id, last.seq);
            }
        }
        Some(cursor)
    }
}

#[async_trait::async_trait]
pub trait Transfer: Send + Sync {
    async fn count(&self, table: Table) -> StoreResult<i64>;
    /// Up to `limit` rows after `cursor`, in key order.
    async fn read_rows(&self, table: Table, cursor: &Cursor, limit: i64) -> StoreResult<Rows>;
    /// Inserts rows as they are (ids included), in one transaction.
    async fn write_rows(&self, rows: &Rows) -> StoreResult<()>;
    /// After an import: realign id generators past the imported ids.
    async fn finish_import(&self) -> StoreResult<()>;
}

const PAGE: i64 = 2000;

/// Refuses a store that holds any row of any table copied.
pub async fn ensure_empty(to: &dyn Transfer) -> StoreResult<()> {
    for table in Table::ALL {
        let present = to.count(table).await?;
        if present > 0 {
            return Err(StoreError::Other(format!(
                "the target is not empty: {} holds {present} rows; copy only into a new database",
                table.name()
            )));
        }
    }
    Ok(())
}

/// Copies everything from `from` into the empty store `to` and verifies that
/// every table holds the same number of rows on both sides.
pub async fn copy(from: &dyn Transfer, to: &dyn Transfer) -> StoreResult<Vec<(Table, i64)>> {
    ensure_empty(to).await?;
    let mut report = Vec::new();
    for table in Table::ALL {
        let mut cursor = Cursor::default();
        loop {
            let rows = from.read_rows(table, &cursor, PAGE).await?;
            let Some(next) = rows.next_cursor() else {
                break;
            };
            to.write_rows(&rows).await?;
            cursor = next;
        }
        let (source, target) = (from.count(table).await?, to.count(table).await?);
        if source != target {
            return Err(StoreError::Other(format!(
                "verification failed: {} has {source} rows in the source but {target} in the target",
                table.name()
            )));
        }
        report.push((table, target));
    }
    to.finish_import().await?;
    Ok(report)
}
