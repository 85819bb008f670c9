//! The `Store` port: everything the domain needs from durable storage, and no more.
//!
//! Kept narrow and SQL-free so SQLite and PostgreSQL implement the same contract.
//! Authorization is the domain's job; the store only reports facts (e.g. "not a
//! member") that must be checked atomically with a write.

use async_trait::async_trait;

use crate::admin::{
    Actor, AdminGrant, AuditEntry, Report, ReportOutcome, RoomOverview, Suspension, UserOverview,
};
use crate::events::{DomainEvent, OutboxEntry, OutboxRow};
use crate::ids::{RoomId, UserId};
use crate::keys::SigningKey;
use crate::messages::emoji::Emoji;
use crate::model::{
    Account, AccountCode, CodePurpose, Member, Message, Role, Room, RoomSummary, User,
    UserCredentials,
};
use crate::time::Timestamp;

pub use crate::error::{StoreError, StoreResult};
pub use crate::model::RoomName;

pub struct NewUser {
    pub username: String,
    /// Lower-case; unverified.
    pub email: Option<String>,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: Timestamp,
}

pub struct NewRoom {
    pub name: String,
    pub code: String,
    pub password_hash: Option<String>,
    pub owner_id: UserId,
    pub created_at: Timestamp,
}

/// A login: its session row and its first refresh token.
pub struct NewSession {
    /// Also the family every refresh token of this login shares (re-use
    /// revokes it) and the `sid` of its access tokens.
    pub id: String,
    pub user_id: UserId,
    /// SHA-256 of the first refresh token; the token itself is never stored.
    pub token_hash: String,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A login as its owner sees it in the session list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub user_agent: Option<String>,
}

/// Deleting an account (`AccountStore::delete_account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountRemoval {
    pub user: UserId,
    /// Also empty the bodies of its messages (marked deleted; seqs kept).
    pub erase: bool,
    /// Until when its username cannot be registered again.
    pub username_free_at: Timestamp,
    pub now: Timestamp,
}

/// What deleting an account did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountDeletion {
    Deleted,
    /// Nothing: the user is the only owner of these rooms, which have other
    /// members (ownership must be handed over first).
    LastOwner(Vec<RoomName>),
}

/// Which of a user's logins to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsToEnd {
    One(String),
    /// Every one but the given (the caller's own, when it stays signed in).
    AllBut(Option<String>),
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live; it is now spent and `new` replaces it.
    Rotated { user_id: UserId, family: String },
    /// The token was already spent: its whole family is now revoked (the
    /// session itself is ended with `end_sessions`).
    ReuseDetected { user_id: UserId, family: String },
    /// Unknown, expired or revoked.
    Invalid,
}

pub use crate::messages::search::SearchTerms;

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: RoomId,
    pub sender_id: UserId,
    pub body: String,
    pub client_id: Option<String>,
    /// A seq of the same room; the domain checked that it exists.
    pub reply_to: Option<u64>,
    pub created_at: Timestamp,
    /// The uploads it carries, claimed in the storing transaction.
    pub attachments: Option<AttachmentClaim>,
}

/// The uploads a new message carries: 1 to `attachments::MAX_PER_MESSAGE`
/// distinct ids. The store claims them only if each is of the message's
/// room, uploaded by its sender, carried by no message yet and uploaded at
/// or after `uploaded_since`; else nothing of the message is stored
/// (`AppendOutcome::AttachmentsRefused`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentClaim {
    pub ids: Vec<String>,
    pub uploaded_since: Timestamp,
}

impl NewMessage {
    /// The message as stored under `seq`: neither edited nor deleted yet.
    pub fn stored_as(&self, seq: u64) -> Message {
        Message {
            room_id: self.room_id,
            seq,
            sender_id: self.sender_id,
            body: self.body.clone(),
            created_at: self.created_at,
            client_id: self.client_id.clone(),
            reply_to: self.reply_to,
            edited_at: None,
            deleted_at: None,
            attachments: Vec::new(),
        }
    }

    /// The usernames its body mentions (`messages::mentions::parse`): the
    /// store makes mentions of those who are members of the room when it
    /// stores the message, in the same transaction.
    pub fn mentioned_names(&self) -> Vec<String> {
        crate::messages::mentions::parse(&self.body)
    }
}

/// The result of appending one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored with the next seq of its room.
    Stored(Message),
    /// The sender already sent this `client_id` to this room; nothing stored.
    Duplicate(Message),
    /// The sender is not a member of the room (checked in the same transaction).
    NotMember,
    /// An attachment it lists is not one the sender may attach there (see
    /// `AttachmentClaim`); nothing stored.
    AttachmentsRefused,
}

/// The result of adding a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// False when the user already was a member (joining is idempotent).
    pub newly_joined: bool,
    /// The room's newest seq at the moment of joining.
    pub last_seq: u64,
}

/// What a change committed: its result, the events that describe it (to
/// publish after the commit, in this order), and, when the store keeps an
/// outbox, each event's row there (the same order; empty without one).
///
/// Every mutating store method returns one, so what is published is what the
/// transaction decided, and each event is encoded once: the row's payload is
/// what the outbox holds and what the bus carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    pub value: T,
    pub events: Vec<DomainEvent>,
    pub outbox: Vec<OutboxRow>,
}

impl<T> Committed<T> {
    /// A change that needs no event (nothing changed that anyone hears of).
    pub fn quiet(value: T) -> Self {
        Self {
            value,
            events: Vec::new(),
            outbox: Vec::new(),
        }
    }
}

/// How a member stops being one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// They left. An owner's ownership passes to the oldest admin, else the
    /// oldest member.
    Left,
    /// An owner or admin (`by`, who must outrank them) removed them.
    Kicked { by: UserId },
    /// Removed (if a member) and barred from joining again, by an owner or
    /// admin who outranks them.
    Banned { by: UserId, at: Timestamp },
}

/// Why the store refused a change to a room whose authority it checks in
/// the change's own transaction: what the domain checked before may no
/// longer hold when the change commits (a transfer, a demotion, a removal
/// that committed first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The actor is not a member, or there is no such room.
    NotMember,
    /// The actor's role is below what the change needs, or not above the
    /// target's.
    Outranked,
    /// The target is not a member.
    NoTarget,
}

/// A room change the store authorized again in its transaction.
pub type Authorized<T> = Result<Committed<T>, Refusal>;

/// Changes to a room's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RoomChanges {
    pub name: Option<String>,
    /// `Some(None)` removes the password.
    pub password_hash: Option<Option<String>>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub user_id: UserId,
    pub banned_by: UserId,
    pub created_at: Timestamp,
}

/// A batch append: each message's outcome, in input order, and the stored
/// messages' `MessagePosted` events.
pub type Appended = Committed<Vec<AppendOutcome>>;

/// What opening a direct room did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectRoom {
    pub room: Room,
    /// Who became a member now (with the room's newest seq at that moment):
    /// both on creation, one when a person who had left comes back.
    pub joined: Vec<(UserId, u64)>,
}

/// Where a member's read marker stands after [`Store::mark_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadMark {
    /// It moved here (the change carries the `read` event).
    Moved(u64),
    /// It was already here (or further than the capped target).
    Unchanged(u64),
    /// No such room, or the user is not a member.
    NotMember,
}

/// Everything the domain stores, as one trait per aggregate (each
/// implemented in a module of its own); the domain holds a `dyn Store`,
/// which reaches every aggregate's methods.
#[async_trait]
pub trait Store:
    AccountStore
    + AdminStore
    + AllowanceStore
    + KeyStore
    + RoomStore
    + InvitationStore
    + MessageStore
    + OutboxStore
    + ReactionStore
    + AttachmentStore
{
    /// Cheap round trip proving the store answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
}

/// Users and their refresh tokens.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// `Conflict("username")` when the (lower-case) username is taken (or
    /// was a deleted account's and is not free again yet),
    /// `Conflict("email")` when the address is.
    async fn insert_user(&self, user: NewUser) -> StoreResult<User>;
    /// The account as its owner sees it.
    async fn account(&self, user: UserId) -> StoreResult<Option<Account>>;
    /// The account whose username or e-mail address is `login` (lower case).
    async fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>>;
    /// Sets (or, with `None`, removes) the address, unverified; false when
    /// the user does not exist, `Conflict("email")` when another has it.
    async fn set_email(&self, user: UserId, email: Option<&str>) -> StoreResult<bool>;
    /// Marks the address verified if it is still `email`; false otherwise.
    async fn mark_email_verified(
        &self,
        user: UserId,
        email: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Stores the account's secret of its purpose, replacing the previous one.
    async fn put_code(&self, code: &AccountCode) -> StoreResult<()>;
    async fn code(&self, user: UserId, purpose: CodePurpose) -> StoreResult<Option<AccountCode>>;
    async fn code_by_secret(
        &self,
        purpose: CodePurpose,
        secret_hash: &str,
    ) -> StoreResult<Option<AccountCode>>;
    /// Takes one try of the secret whose hash is `secret_hash`, before it is
    /// compared, so that concurrent tries never get more than it has: false
    /// when it has none left (or was replaced). One with none left stays, as
    /// dead, until replaced (its last try may have been the right one, which
    /// then deletes it).
    async fn take_code_attempt(
        &self,
        user: UserId,
        purpose: CodePurpose,
        secret_hash: &str,
    ) -> StoreResult<bool>;
    /// Deletes the secret; false when there was none (someone else spent it).
    async fn delete_code(&self, user: UserId, purpose: CodePurpose) -> StoreResult<bool>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn credentials_by_username(&self, username: &str)
        -> StoreResult<Option<UserCredentials>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn credentials_by_id(&self, id: UserId) -> StoreResult<Option<UserCredentials>>;
    /// False, changing nothing, when the user does not exist or is
    /// suspended at `now` (checked under the account's lock).
    async fn set_password_hash(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Up to `limit` users whose username or lower-cased display name starts
    /// with `prefix` (already lower case), with username greater than `after`,
    /// ordered by username.
    async fn search_users(&self, prefix: &str, after: &str, limit: u32) -> StoreResult<Vec<User>>;
    /// When the user's last connection closed (only ever moves forward).
    async fn record_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()>;
    /// `None` when the user does not exist.
    async fn update_display_name(
        &self,
        user: UserId,
        display_name: &str,
    ) -> StoreResult<Option<User>>;

    /// Turns the account into its tombstone, in one transaction: every
    /// membership ends (`MemberLeft`; a room left with no member is deleted,
    /// `RoomDeleted`), every session ends (`SessionsEnded`), its one-time
    /// codes are dropped, its messages stay (blanked with `erase`), and
    /// `UserDeleted` names the rooms it left. Refused (`LastOwner`, nothing
    /// changed) while it is the only owner of a room with other members.
    /// `None` when there is no such live account.
    async fn delete_account(
        &self,
        removal: AccountRemoval,
    ) -> StoreResult<Option<Committed<AccountDeletion>>>;

    /// Records a login and its first refresh token, if the account is still
    /// alive and not suspended when it commits (both checked in the insert's
    /// transaction, under the account's row lock, so a deletion or a
    /// suspension cannot slip between); false when it is not.
    async fn insert_session(&self, session: NewSession) -> StoreResult<bool>;
    /// Atomically spend `presented_hash` and store `next_hash` in its family
    /// (valid until `next_expires_at`, which the session's expiry follows), or
    /// detect re-use of a spent token (which ends the session). `Invalid`
    /// when the token's session has ended (its account deleted included),
    /// checked under the session's row lock, so the new token cannot escape
    /// an ending that runs at the same time.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        next_expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Rotation>;
    /// Ends the session `token_hash` belongs to; its id, `None` when the token
    /// is unknown or its session had already ended.
    async fn end_session_of_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Committed<Option<String>>>;
    /// Ends `user`'s sessions that `which` names and that are still live
    /// (their refresh tokens revoked, `SessionsEnded` in the outbox); the ids
    /// of those it ended.
    async fn end_sessions(
        &self,
        user: UserId,
        which: SessionsToEnd,
        now: Timestamp,
    ) -> StoreResult<Committed<Vec<String>>>;
    /// `user`'s live sessions (neither ended nor expired at `now`), newest first.
    async fn sessions(&self, user: UserId, now: Timestamp) -> StoreResult<Vec<SessionRecord>>;
    /// Whether `session` is a live session of `user` (so also: the user exists).
    async fn session_is_live(
        &self,
        user: UserId,
        session: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// The current streak of failed logins of `subject` (an account at an
    /// address), if it has one.
    async fn login_failures(&self, subject: &str) -> StoreResult<Option<LoginFailures>>;
    /// Counts an attempt of `subject` as a failure before its password is
    /// looked at, in one statement, and returns the streak as it stood just
    /// before this attempt (`None`: there was none): attempts running at
    /// once each see their own predecessor. A streak whose last failure is
    /// older than `forget_before` starts again at one; streaks of every
    /// subject that old are deleted.
    async fn charge_login_attempt(
        &self,
        subject: &str,
        now: Timestamp,
        forget_before: Timestamp,
    ) -> StoreResult<Option<LoginFailures>>;
    /// Ends `subject`'s streak (a successful login).
    async fn clear_login_failures(&self, subject: &str) -> StoreResult<()>;
}

/// The keys that sign access tokens.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Adds a key. With `first`, only if the store has no key yet (of
    /// several nodes trying at once, one succeeds); false when it did not.
    async fn insert_signing_key(&self, key: &SigningKey, first: bool) -> StoreResult<bool>;
    async fn delete_signing_keys(&self, kids: &[String]) -> StoreResult<()>;
    /// The secret that authenticates the nodes' records on the cluster bus
    /// (`bus_auth`), as base64: `candidate` if the store had none yet (of
    /// several nodes asking at once, one's candidate is kept and all get it).
    async fn cluster_secret(&self, candidate: &str) -> StoreResult<String>;
}

/// Consecutive failed logins of one account from one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub count: u32,
    pub last_failed_at: Timestamp,
}

/// Rooms, their members, bans and roles.
#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// Inserts the room and its owner's membership together (the owner's
    /// `MemberJoined`). `Conflict("code")` when the join code is taken.
    async fn insert_room(&self, room: NewRoom) -> StoreResult<Committed<Room>>;
    async fn room_by_id(&self, id: RoomId) -> StoreResult<Option<Room>>;
    async fn room_by_code(&self, code: &str) -> StoreResult<Option<Room>>;
    /// The id of the direct room of `a` and `b`, if they have one.
    async fn direct_room_id(&self, a: UserId, b: UserId) -> StoreResult<Option<RoomId>>;
    /// The direct room of `a` and `b`: created with `name` and `code` if it
    /// does not exist yet, with both as members; if it does, `a` (who asks)
    /// is a member again, and `b` only if they still are (one who left comes
    /// back by opening it themselves). `Conflict("code")` when a new room's
    /// code is taken, `Conflict("deleted")` when either account is deleted
    /// (checked in the transaction, as `add_member` does).
    async fn direct_room(
        &self,
        a: UserId,
        b: UserId,
        room: NewRoom,
    ) -> StoreResult<Committed<DirectRoom>>;
    async fn member_role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>>;
    /// Adds `user` (idempotent). `Conflict("banned")` when they are banned
    /// from the room, `Conflict("deleted")` when their account is deleted:
    /// both checked in the insert's transaction, so a ban or a deletion
    /// that commits at the same time cannot be passed by.
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        now: Timestamp,
    ) -> StoreResult<Committed<Membership>>;
    /// Ends a membership (and with `Banned`, bars the user). `NotMember`
    /// when the user leaving is not a member; for a kick or a ban, `by`'s
    /// authority is checked in the transaction (`NotMember`, `Outranked`,
    /// and for a kick `NoTarget`). A ban of someone already banned and not
    /// a member changes nothing (no event).
    async fn remove_member(
        &self,
        room: RoomId,
        user: UserId,
        removal: Removal,
        now: Timestamp,
    ) -> StoreResult<Authorized<()>>;
    async fn is_banned(&self, room: RoomId, user: UserId) -> StoreResult<bool>;
    /// Lifts `user`'s ban (false when there was none), if `by` is the
    /// room's owner or an admin when it commits (`NotMember`, `Outranked`).
    async fn unban(&self, room: RoomId, by: UserId, user: UserId) -> StoreResult<Authorized<bool>>;
    async fn bans(&self, room: RoomId) -> StoreResult<Vec<Ban>>;
    /// `by`, the owner when it commits, makes `user` (not the owner) an
    /// admin or a plain member. Not for `Owner`: see `transfer_ownership`.
    async fn set_role(
        &self,
        room: RoomId,
        by: UserId,
        user: UserId,
        role: Role,
        now: Timestamp,
    ) -> StoreResult<Authorized<()>>;
    /// `to` becomes the owner and `from` an admin, if `from` is the owner
    /// when it commits (of two transfers at once, one is `Outranked`).
    async fn transfer_ownership(
        &self,
        room: RoomId,
        from: UserId,
        to: UserId,
        now: Timestamp,
    ) -> StoreResult<Authorized<()>>;
    /// `by`, the owner when it commits, changes the room's settings;
    /// `Conflict("code")` when a new code is taken.
    async fn update_room(
        &self,
        room: RoomId,
        by: UserId,
        changes: RoomChanges,
        now: Timestamp,
    ) -> StoreResult<Authorized<Room>>;
    /// `by`, the owner when it commits, deletes the room with its members
    /// and messages.
    async fn delete_room(
        &self,
        room: RoomId,
        by: UserId,
        now: Timestamp,
    ) -> StoreResult<Authorized<()>>;
    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<RoomSummary>>;
    /// The user's rooms with their newest seq: the cheap form of `rooms_of_user`.
    async fn room_positions(&self, user: UserId) -> StoreResult<Vec<(RoomId, u64)>>;
    /// The user and their room positions in one read (a connection starting up);
    /// `None` when the user does not exist.
    async fn user_with_positions(
        &self,
        user: UserId,
    ) -> StoreResult<Option<(User, Vec<(RoomId, u64)>)>>;
    /// Up to `limit` members with a user id above `after`, by user id.
    async fn members(&self, room: RoomId, after: UserId, limit: u32) -> StoreResult<Vec<Member>>;
}

/// An invitation waiting for its invitee's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub room_id: RoomId,
    pub room_name: String,
    pub by: UserId,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvitation {
    pub room: RoomId,
    pub by: UserId,
    pub invitee: UserId,
    /// The invitee's invitations waiting at most, this one included.
    pub max_pending: u32,
    pub now: Timestamp,
}

/// What an authorized invitation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteOutcome {
    /// Recorded, with the invitee's `Invited` event.
    Invited,
    /// Already waiting: nothing changed, nobody is told again.
    AlreadyInvited,
    AlreadyMember,
    Banned,
    /// The invitee has `max_pending` invitations waiting already.
    TooManyPending,
}

/// Invitations: an invitee becomes a member only by accepting.
#[async_trait]
pub trait InvitationStore: Send + Sync + 'static {
    /// `by`, at least an admin of the room when it commits, invites the
    /// invitee; every condition of `InviteOutcome` is read in the same
    /// transaction as the write. Group rooms only (a direct room is `Outranked`).
    async fn invite(&self, invitation: NewInvitation) -> StoreResult<Authorized<InviteOutcome>>;
    /// Up to `limit` of `user`'s invitations into rooms with an id above
    /// `after`, by room id; rooms they are banned from are left out.
    async fn invitations(
        &self,
        user: UserId,
        after: RoomId,
        limit: u32,
    ) -> StoreResult<Vec<Invitation>>;
    /// Ends the invitation and makes `user` a member, in one transaction;
    /// `None` when there is no such invitation. `Conflict("banned")` (and the
    /// invitation ends) when they were banned since.
    async fn accept_invitation(
        &self,
        room: RoomId,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<Committed<Membership>>>;
    /// False when there was no such invitation.
    async fn decline_invitation(&self, room: RoomId, user: UserId) -> StoreResult<bool>;
}

/// Messages and read markers.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Appends a batch in one transaction; outcomes are in input order.
    /// Seqs are allocated per room with no gap; if the transaction fails nothing
    /// is stored. The events are the stored messages' `MessagePosted`, in order.
    async fn append_messages(&self, batch: &[NewMessage]) -> StoreResult<Appended>;
    /// Up to `limit` messages with `seq < before` (or the newest), ascending.
    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// One message, deleted or not.
    async fn message(&self, room: RoomId, seq: u64) -> StoreResult<Option<Message>>;
    /// Replaces a live message's body and sets `edited_at`; `None` when the
    /// message does not exist or was deleted.
    async fn edit_message(
        &self,
        room: RoomId,
        seq: u64,
        body: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Committed<Message>>>;
    /// Empties a message's body and marks it deleted (the seq stays); `None`
    /// when it does not exist or already was deleted.
    async fn delete_message(
        &self,
        room: RoomId,
        seq: u64,
        now: Timestamp,
    ) -> StoreResult<Option<Committed<()>>>;
    /// Moves a member's read marker forward to `seq`, capped at the room's
    /// newest seq; never backwards.
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: u64,
        now: Timestamp,
    ) -> StoreResult<Committed<ReadMark>>;
    /// Every member's read marker.
    async fn read_markers(&self, room: RoomId) -> StoreResult<Vec<(UserId, u64)>>;
    /// Up to `limit` messages with `seq > after`, ascending.
    async fn messages_after(
        &self,
        room: RoomId,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// Live messages holding every term, in `request.rooms` among those
    /// `reader` is a member of as this reads them, best match first (then
    /// newest). What it costs grows with the matches in those rooms, not
    /// with matches elsewhere on the server.
    async fn search_messages(&self, request: SearchRequest<'_>) -> StoreResult<Vec<Message>>;
    /// Up to `limit` of `user`'s mentions older than `before` (all when
    /// `None`), newest first: live messages, in rooms `user` is a member of
    /// as this reads them.
    async fn mentions(
        &self,
        user: UserId,
        before: Option<MentionCursor>,
        limit: u32,
    ) -> StoreResult<Vec<Mention>>;
}

/// Where a page of mentions starts: the last mention of the page before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MentionCursor {
    pub created_at: Timestamp,
    pub room: RoomId,
    pub seq: u64,
}

/// A message that mentions its reader, and the name of its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub message: Message,
    pub room_name: String,
}

impl Mention {
    pub fn cursor(&self) -> MentionCursor {
        MentionCursor {
            created_at: self.message.created_at,
            room: self.message.room_id,
            seq: self.message.seq,
        }
    }
}

/// What `MessageStore::search_messages` looks for.
#[derive(Debug, Clone, Copy)]
pub struct SearchRequest<'a> {
    pub reader: UserId,
    pub terms: &'a SearchTerms,
    /// The rooms searched.
    pub rooms: &'a [RoomId],
    /// Only messages sent before this.
    pub before: Timestamp,
    /// Results skipped, best first.
    pub offset: u32,
    pub limit: u32,
}

/// The outbox: changes waiting for the bus (cluster mode).
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Leases up to `limit` outbox rows written before `written_before` whose
    /// lease (if any) has run out, until `lease_until`, oldest first. Rows are
    /// leased rather than locked, so no transaction stays open while the bus
    /// sends them, and a relay that dies only delays them by one lease.
    async fn claim_outbox(
        &self,
        written_before: Timestamp,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEntry>>;
    /// Forgets outbox rows whose events a bus now holds.
    async fn delete_outbox(&self, ids: &[i64]) -> StoreResult<()>;
    /// How many rows the outbox holds: events not yet known to be on the
    /// bus, whichever node wrote them (`palaver_outbox_backlog`).
    async fn outbox_backlog(&self) -> StoreResult<u64>;
}

/// One stored allowance: at most `limit` uses of `key` in a window of
/// `window`, which starts at its first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowance {
    pub key: String,
    pub limit: u32,
    pub window: std::time::Duration,
}

/// Allowances kept in the store rather than in memory, for the bounds that
/// must hold across nodes and restarts (codes and mail per account and per
/// recipient, guesses per code).
#[async_trait]
pub trait AllowanceStore: Send + Sync + 'static {
    /// Takes one use of each of `allowances`, all or none, in one
    /// transaction: `None` when taken, or when the first one that was spent
    /// is full again.
    async fn take_allowances(
        &self,
        allowances: &[Allowance],
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>>;
}

/// One admin action, as `AdminStore::admin_act` makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAct {
    pub actor: Actor,
    pub change: AdminChange,
    /// Why, as the audit log keeps it (a suspension's reason too).
    pub reason: Option<String>,
    pub now: Timestamp,
}

/// What an admin action changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminChange {
    /// Makes a live account a server admin.
    Grant {
        user: UserId,
    },
    Revoke {
        user: UserId,
    },
    /// Suspends a live account (replacing a suspension it had) and ends
    /// every session of it; the act's reason is the suspension's.
    Suspend {
        user: UserId,
        ends_at: Option<Timestamp>,
    },
    Unsuspend {
        user: UserId,
    },
    /// Deletes the account as its owner could (`AccountStore::delete_account`).
    DeleteUser {
        user: UserId,
        erase: bool,
        username_free_at: Timestamp,
    },
    /// Deletes the room for everyone; `room_deleted` carries the act's reason.
    TakeDown {
        room: RoomId,
    },
    /// `to`, a member, becomes the owner; the owner before becomes an admin.
    TransferRoom {
        room: RoomId,
        to: UserId,
    },
    DeleteMessage {
        room: RoomId,
        seq: u64,
    },
    /// Blanks up to `most` of the user's messages not deleted yet (each a
    /// `message_deleted`), oldest rooms first.
    EraseMessages {
        user: UserId,
        most: u32,
    },
    /// Resolves the report and every other open report of its message, doing
    /// what `outcome` says; suspending the sender ends at `ends_at`, with the
    /// act's reason, else the report's.
    ResolveReport {
        report: i64,
        outcome: ReportOutcome,
        ends_at: Option<Timestamp>,
    },
}

/// Why the store refused an admin action, having checked in its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRefusal {
    /// The actor is not an admin when the action commits: never one,
    /// revoked, suspended or deleted since the domain looked.
    NotAdmin,
    /// There is no such thing as the action names (`"user"`, `"room"`,
    /// `"member"`, `"message"`, `"report"`).
    NoTarget(&'static str),
    /// The action would change nothing, or the target's state does not
    /// allow it (already an admin, already deleted, already resolved…).
    Unchanged(&'static str),
    /// The action may not be done to this target (an admin to themselves).
    Forbidden(&'static str),
    /// Deleting the account is refused while it is the only owner of these
    /// rooms with other members, as for its owner.
    LastOwner(Vec<RoomName>),
}

/// What an admin action did: its audit entry, and for `EraseMessages` how
/// many messages it blanked and whether any are left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminOutcome {
    pub entry: AuditEntry,
    pub erased: u64,
    pub more: bool,
}

/// A change the store authorized again in its transaction.
pub type AdminDone = Result<Committed<AdminOutcome>, AdminRefusal>;

/// A member reports a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    pub room: RoomId,
    pub seq: u64,
    pub reporter: UserId,
    pub reason: String,
    pub now: Timestamp,
}

/// What filing a report came to, every condition read in its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportFiled {
    Filed(Report),
    /// The reporter's report of this message is still open: that one.
    AlreadyOpen(Report),
    /// No such room, or the reporter is not a member.
    NotMember,
    /// No such message, or it was deleted.
    NoMessage,
}

/// Which reports a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFilter {
    Open,
    Resolved,
    All,
}

/// Server administration: admins, suspensions, reports and the audit log.
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Whether `user` is a server admin whose account is alive and not
    /// suspended at `now`.
    async fn is_admin(&self, user: UserId, now: Timestamp) -> StoreResult<bool>;
    /// Every admin, by user id.
    async fn admins(&self) -> StoreResult<Vec<AdminGrant>>;
    /// The user's suspension, applying or not (`Suspension::applies_at`).
    async fn suspension(&self, user: UserId) -> StoreResult<Option<Suspension>>;
    /// Up to `limit` live accounts whose username or lower-cased display
    /// name starts with `prefix` (lower case), with an id above `after`, by id.
    async fn user_overviews(
        &self,
        prefix: &str,
        after: UserId,
        limit: u32,
        now: Timestamp,
    ) -> StoreResult<Vec<UserOverview>>;
    /// Up to `limit` rooms whose lower-cased name starts with `prefix`, with
    /// an id above `after`, by id.
    async fn room_overviews(
        &self,
        prefix: &str,
        after: RoomId,
        limit: u32,
    ) -> StoreResult<Vec<RoomOverview>>;
    /// Files a report if the reporter is a member of the room and the
    /// message exists and is not deleted, all read under the room's lock in
    /// the insert's transaction (so a removal that commits first is seen).
    async fn file_report(&self, report: NewReport) -> StoreResult<ReportFiled>;
    /// Up to `limit` reports with an id above `after`, by id.
    async fn reports(
        &self,
        which: ReportFilter,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Report>>;
    /// Up to `limit` audit entries with an id below `before`, newest first.
    async fn audit(&self, before: i64, limit: u32) -> StoreResult<Vec<AuditEntry>>;
    /// Makes an admin action in one transaction: checks again that the
    /// actor (unless the operator) is an admin, alive and not suspended,
    /// under their account's row lock; makes the change, checking its own
    /// conditions; appends the audit entry; and commits the change's events
    /// with an `AdminAction` last.
    async fn admin_act(&self, act: AdminAct) -> StoreResult<AdminDone>;
}

/// One member's reaction to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub room_id: RoomId,
    pub seq: u64,
    pub user_id: UserId,
    pub emoji: Emoji,
}

/// One emoji on one message as a reader sees it: how many reacted with it,
/// and whether the reader did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionCount {
    pub seq: u64,
    pub emoji: String,
    pub count: u32,
    pub mine: bool,
}

/// What adding or removing a reaction came to, every condition read in its
/// transaction under the room's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReactionChange {
    /// Added or removed: the change carries its event.
    Done,
    /// Already there (adding) or not there (removing): no event.
    Unchanged,
    /// No such room, or the user is not a member.
    NotMember,
    /// No such message.
    NoMessage,
    /// The message was deleted (adding only; removing from one is `Unchanged`:
    /// its reactions went with it).
    Deleted,
    /// The message holds `MAX_DISTINCT_PER_MESSAGE` emoji already.
    TooManyOnMessage,
    /// The user has `MAX_PER_USER_PER_MESSAGE` reactions on it already.
    TooManyOfUser,
}

/// Reactions: members' emoji on messages.
#[async_trait]
pub trait ReactionStore: Send + Sync + 'static {
    /// Adds the reaction unless it is there, after checking under the
    /// room's lock that the user is a member, the message exists and is not
    /// deleted, and the caps (`caps`) hold, counted in the same transaction.
    async fn add_reaction(
        &self,
        reaction: &Reaction,
        caps: ReactionCaps,
        now: Timestamp,
    ) -> StoreResult<Committed<ReactionChange>>;
    /// Removes the reaction if it is there, after checking membership and
    /// the message under the room's lock.
    async fn remove_reaction(
        &self,
        reaction: &Reaction,
        now: Timestamp,
    ) -> StoreResult<Committed<ReactionChange>>;
    /// The reactions of the room's messages with a seq in `from..=through`,
    /// aggregated per message and emoji (`mine`: `reader` is among them),
    /// by seq, then by when each emoji first came: one query.
    async fn reaction_counts(
        &self,
        room: RoomId,
        from: u64,
        through: u64,
        reader: UserId,
    ) -> StoreResult<Vec<ReactionCount>>;
    /// Whether the reaction is stored (for events from other nodes).
    async fn has_reaction(&self, reaction: &Reaction) -> StoreResult<bool>;
}

/// The caps `ReactionStore::add_reaction` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionCaps {
    /// Distinct emoji one message may hold.
    pub distinct_per_message: u32,
    /// Reactions one user may have on one message.
    pub per_user_per_message: u32,
}

/// An upload to store (`AttachmentStore::insert_attachment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub id: String,
    pub room_id: RoomId,
    pub uploader_id: UserId,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created_at: Timestamp,
}

impl NewAttachment {
    /// The attachment as stored: no message carries it yet.
    pub fn stored(&self) -> crate::attachments::Attachment {
        crate::attachments::Attachment {
            id: self.id.clone(),
            room_id: self.room_id,
            uploader_id: self.uploader_id,
            name: self.name.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            sha256: self.sha256.clone(),
            width: self.width,
            height: self.height,
            created_at: self.created_at,
            message_seq: None,
        }
    }
}

/// What storing an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentInsert {
    Stored(crate::attachments::Attachment),
    /// The uploader is no (longer a) member of the room.
    NotMember,
    /// The uploader's attachments would hold more than their quota.
    OverQuota,
}

/// Attachments' rows (their bytes are the `Blobs` port's).
#[async_trait]
pub trait AttachmentStore: Send + Sync + 'static {
    /// Stores an upload if, in the same transaction (under the uploader's
    /// row lock, so two uploads at once cannot both fit), the uploader is a
    /// member of its room and their attachments' sizes with this one's stay
    /// within `quota_bytes`.
    async fn insert_attachment(
        &self,
        attachment: &NewAttachment,
        quota_bytes: u64,
    ) -> StoreResult<AttachmentInsert>;
    /// The bytes `user`'s attachments hold.
    async fn attachment_bytes_held(&self, user: UserId) -> StoreResult<u64>;
    /// The attachment `id`, unless the message that carried it was deleted.
    async fn attachment(&self, id: &str) -> StoreResult<Option<crate::attachments::Attachment>>;
    /// Up to `limit` attachments no live message carries: unclaimed and
    /// stored before `unclaimed_before`, or whose message or room is gone.
    async fn orphaned_attachments(
        &self,
        unclaimed_before: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<String>>;
    /// Deletes the row of `id` if it is (still) an orphan by the same rule;
    /// false when it is not, or is gone already.
    async fn delete_orphaned_attachment(
        &self,
        id: &str,
        unclaimed_before: Timestamp,
    ) -> StoreResult<bool>;
}
