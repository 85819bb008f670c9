//! Rate limits: how often one caller (an address, a user, an account at an
//! address) may do one kind of thing, and the growing delay after failed logins.
//!
//! The in-memory limits (`Throttle`) are per node; the login back-off lives
//! in the store, so switching node does not reset it.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use strum::{EnumCount, IntoEnumIterator};

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::time::Timestamp;

/// A rate: `count` per `period` on average, with bursts of up to `burst`.
/// Written `5/s`, `20/min burst 40`, `10/h`; `off` disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
    pub burst: NonZeroU32,
}

impl Rate {
    pub const fn new(count: u32, period: Duration, burst: u32) -> Self {
        match (NonZeroU32::new(count), NonZeroU32::new(burst)) {
            (Some(count), Some(burst)) => Self {
                count,
                period,
                burst,
            },
            _ => panic!("a rate's count and burst are at least 1"),
        }
    }

    pub fn quota(&self) -> Quota {
        // One cell replenishes every period / count.
        let every = self.period / self.count.get();
        Quota::with_period(every.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(self.burst)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)?;
        if self.burst != self.count {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

/// A limit that may be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(pub Option<Rate>);

impl FromStr for RateLimit {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(RateLimit(None));
        }
        let bad = || format!("{text:?}: expected COUNT/UNIT [burst N] (unit s, min or h) or off");
        let mut words = text.split_whitespace();
        let (count, unit) = words
            .next()
            .and_then(|w| w.split_once('/'))
            .ok_or_else(bad)?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        let period = match unit {
            "s" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => count,
            (Some("burst"), Some(n), None) => n.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if count == 0 || burst == 0 {
            return Err(format!(
                "{text:?}: count and burst must be at least 1 (or use off)"
            ));
        }
        Ok(RateLimit(Some(Rate::new(count, period, burst))))
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(rate) => rate.fmt(f),
            None => f.write_str("off"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for RateLimit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a request comes from, as rate limits count it: an IPv4 address, or
/// an IPv6 /64 (one subscriber usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(IpAddr);

impl ClientAddr {
    pub fn new(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    IpAddr::V6(Ipv6Addr::from(prefix))
                }
            },
            v4 => v4,
        };
        Self(ip)
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
            IpAddr::V4(v4) => v4.fmt(f),
        }
    }
}

/// One in-memory rate limit, keyed by who is limited.
pub struct Throttle<K: Hash + Eq + Clone> {
    /// Names the limit in metrics (`palaver_rate_limited_total{limit}`).
    name: &'static str,
    limiter: Option<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(name: &'static str, limit: RateLimit) -> Self {
        Self {
            name,
            limiter: limit
                .0
                .map(|rate| governor::RateLimiter::keyed(rate.quota())),
        }
    }

    /// Counts one attempt by `key`; `RateLimited` (with how long to wait)
    /// once its budget is spent.
    pub fn check(&self, key: &K) -> Result<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(key)
            .map_err(|not_until| refused(self.name, limiter.clock(), not_until))
    }

    /// Forgets every key whose budget is full again, so memory follows the
    /// callers of the last period, not every caller ever seen.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// One in-memory rate limit on one thing (a connection's frames): the
/// `Throttle` of a single key, without the map.
pub struct SingleThrottle {
    name: &'static str,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl SingleThrottle {
    pub fn new(name: &'static str, limit: RateLimit) -> Self {
        Self {
            name,
            limiter: limit
                .0
                .map(|rate| governor::RateLimiter::direct(rate.quota())),
        }
    }

    /// Counts one attempt; `RateLimited` once the budget is spent.
    pub fn check(&self) -> Result<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check()
            .map_err(|not_until| refused(self.name, limiter.clock(), not_until))
    }
}

/// A limit's refusal: counted in `palaver_rate_limited_total{limit}`, with
/// how long to wait.
fn refused(
    name: &'static str,
    clock: &DefaultClock,
    not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>,
) -> Error {
    metrics::counter!("palaver_rate_limited_total", "limit" => name).increment(1);
    Error::RateLimited {
        retry_after: not_until.wait_time_from(clock.now()),
    }
}

/// The delay after consecutive failed logins of one account from one
/// address: none for the first `free` failures, then 1 s, doubling with each
/// failure up to `max`. A delay, never a lockout: the right password is
/// accepted once it is over, and it ends the streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginBackoff {
    pub free: u32,
    pub max: Duration,
}

impl Default for LoginBackoff {
    fn default() -> Self {
        Self {
            free: 5,
            max: Duration::from_secs(300),
        }
    }
}

/// A streak of failed logins is forgotten this long after its last failure.
pub const LOGIN_FAILURES_FORGOTTEN_AFTER: Duration = Duration::from_secs(24 * 3600);

impl LoginBackoff {
    /// How long after the last of `failures` consecutive failures the next
    /// attempt is accepted.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(30);
        Duration::from_secs(1u64 << doublings).min(self.max)
    }

    /// `Err(RateLimited)` while the streak's delay is running.
    pub fn check(&self, failures: u32, last_failed_at: Timestamp, now: Timestamp) -> Result<()> {
        let delay = self.delay(failures);
        // No wait due: attempts running at once may see a predecessor
        // stamped a moment after their own clock reading.
        if delay.is_zero() {
            return Ok(());
        }
        let ends = last_failed_at.0 + delay.as_millis() as i64;
        if now.0 < ends {
            metrics::counter!("palaver_rate_limited_total", "limit" => "login_backoff")
                .increment(1);
            return Err(Error::RateLimited {
                retry_after: Duration::from_millis((ends - now.0) as u64),
            });
        }
        Ok(())
    }
}

/// Every budget of the domain: one operation (or a family of them) counted
/// per one kind of caller. The snake_case name is everything else's name:
/// the metric label (`palaver_rate_limited_total{limit}`), the key under
/// `[limits]` in the configuration file, `--limit NAME=RATE` and
/// `PALAVER_LIMIT_NAME`. Each default is written once, in `default_rate`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum Limit {
    LoginPerAddress,
    RegisterPerAddress,
    RefreshPerAddress,
    PasswordResetPerAddress,
    PasswordChangePerUser,
    AccountDeletePerUser,
    SessionEndPerUser,
    ProfilePerUser,
    EmailChangePerUser,
    EmailChangePerAddress,
    EmailVerifyPerUser,
    ResetCodePerAddress,
    RoomCreatePerUser,
    RoomUpdatePerUser,
    ModeratePerUser,
    JoinPerUser,
    JoinPerAddress,
    LeavePerUser,
    InvitePerUser,
    InvitePerInvitee,
    InvitationAnswerPerUser,
    DirectPerUser,
    DirectPerTarget,
    SendPerUser,
    EditPerUser,
    MessageDeletePerUser,
    ReadPerUser,
    TypingPerUser,
    FramesPerConnection,
    SessionOpenPerUser,
    SessionOpenPerAddress,
    SearchPerUser,
    SearchPerAddress,
    ReportPerUser,
    ReportPerAddress,
    AdminPerUser,
    AdminReadPerUser,
    ReactPerUser,
    MentionPerUser,
    UploadPerUser,
    UploadPerAddress,
    DownloadPerUser,
    ThumbnailPerUser,
}

/// Whom a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// The signed-in user acting.
    User,
    /// The client address (an IPv6 /64), whoever is signed in.
    Address,
    /// The user an operation lands on (an invitee), whoever acts.
    Target,
    /// One real-time connection.
    Connection,
}

impl Limit {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The default budget: what a person, not a program, does.
    pub const fn default_rate(self) -> RateLimit {
        const S: Duration = Duration::from_secs(1);
        const MIN: Duration = Duration::from_secs(60);
        const H: Duration = Duration::from_secs(3600);
        let (count, period, burst) = match self {
            Limit::LoginPerAddress => (30, MIN, 30),
            Limit::RegisterPerAddress => (10, H, 10),
            // A client refreshes every few minutes; many share a NAT's address.
            Limit::RefreshPerAddress => (120, MIN, 120),
            Limit::PasswordResetPerAddress => (10, MIN, 10),
            Limit::PasswordChangePerUser => (10, H, 5),
            Limit::AccountDeletePerUser => (10, H, 5),
            Limit::SessionEndPerUser => (30, MIN, 30),
            Limit::ProfilePerUser => (30, H, 10),
            // Each change mails the new address.
            Limit::EmailChangePerUser => (5, H, 3),
            Limit::EmailChangePerAddress => (10, H, 10),
            Limit::EmailVerifyPerUser => (10, H, 10),
            Limit::ResetCodePerAddress => (20, H, 10),
            Limit::RoomCreatePerUser => (20, H, 10),
            Limit::RoomUpdatePerUser => (60, H, 20),
            // A moderator clearing out a raid needs a quick hand.
            Limit::ModeratePerUser => (60, MIN, 30),
            Limit::JoinPerUser => (10, MIN, 10),
            Limit::JoinPerAddress => (30, MIN, 30),
            Limit::LeavePerUser => (30, MIN, 10),
            Limit::InvitePerUser => (30, H, 10),
            Limit::InvitePerInvitee => (20, H, 10),
            Limit::InvitationAnswerPerUser => (60, H, 20),
            Limit::DirectPerUser => (30, H, 10),
            Limit::DirectPerTarget => (20, H, 10),
            Limit::SendPerUser => (10, S, 30),
            Limit::EditPerUser => (30, MIN, 10),
            Limit::MessageDeletePerUser => (60, MIN, 20),
            // Clients move the marker as messages scroll into view.
            Limit::ReadPerUser => (5, S, 20),
            // Clients repeat typing every few seconds in the room being written in.
            Limit::TypingPerUser => (2, S, 10),
            Limit::FramesPerConnection => (50, S, 200),
            // A client reconnects with back-off; each opening tells the
            // user's rooms they are online, so a loop would flood them.
            Limit::SessionOpenPerUser => (20, MIN, 20),
            Limit::SessionOpenPerAddress => (120, MIN, 120),
            // Each search ranks matches across every room of the user.
            Limit::SearchPerUser => (30, MIN, 15),
            Limit::SearchPerAddress => (60, MIN, 30),
            // Each report waits for an admin to read it.
            Limit::ReportPerUser => (20, H, 10),
            // Throwaway accounts from one address share its budget.
            Limit::ReportPerAddress => (60, H, 20),
            // An admin clearing out a raid needs a quick hand.
            Limit::AdminPerUser => (60, MIN, 60),
            // Each list or search reads pages of accounts, rooms or reports.
            Limit::AdminReadPerUser => (120, MIN, 60),
            // A person clicks reactions on and off while reading along.
            Limit::ReactPerUser => (60, MIN, 30),
            // Each reaches its members even where they muted the room.
            Limit::MentionPerUser => (20, MIN, 10),
            // Each upload is up to --max-attachment-bytes written to storage.
            Limit::UploadPerUser => (60, H, 20),
            // Throwaway accounts from one address share its budget.
            Limit::UploadPerAddress => (120, H, 40),
            // A history page shows a few images at once.
            Limit::DownloadPerUser => (300, MIN, 100),
            // A history page shows a thumbnail of each image on it; each is
            // decoded once, then read like a download.
            Limit::ThumbnailPerUser => (300, MIN, 100),
        };
        RateLimit(Some(Rate::new(count, period, burst)))
    }

    pub const fn per(self) -> Per {
        match self {
            Limit::LoginPerAddress
            | Limit::RegisterPerAddress
            | Limit::RefreshPerAddress
            | Limit::PasswordResetPerAddress
            | Limit::JoinPerAddress
            | Limit::EmailChangePerAddress
            | Limit::ResetCodePerAddress
            | Limit::SessionOpenPerAddress
            | Limit::ReportPerAddress
            | Limit::SearchPerAddress
            | Limit::UploadPerAddress => Per::Address,
            Limit::InvitePerInvitee | Limit::DirectPerTarget => Per::Target,
            Limit::FramesPerConnection => Per::Connection,
            _ => Per::User,
        }
    }

    /// What the limit counts, for `--help` and the documentation.
    pub const fn counts(self) -> &'static str {
        match self {
            Limit::LoginPerAddress => "logins and password checks, whatever the account",
            Limit::RegisterPerAddress => "registrations",
            Limit::RefreshPerAddress => "refreshes and logouts",
            Limit::PasswordResetPerAddress => {
                "password-reset steps (request, resend, confirm, complete)"
            }
            Limit::PasswordChangePerUser => "password changes",
            Limit::AccountDeletePerUser => "account deletion attempts",
            Limit::SessionEndPerUser => "sessions ended (one or all)",
            Limit::ProfilePerUser => "display-name changes",
            Limit::EmailChangePerUser => "e-mail address changes (each mails a code)",
            Limit::EmailChangePerAddress => "e-mail address changes, whatever the account",
            Limit::EmailVerifyPerUser => "e-mail verification attempts and resends",
            Limit::ResetCodePerAddress => "reset codes tried, whatever the account",
            Limit::RoomCreatePerUser => "rooms created",
            Limit::RoomUpdatePerUser => {
                "room changes by its owner: name, password, code, roles, transfer, deletion"
            }
            Limit::ModeratePerUser => "removals, bans and unbans",
            Limit::JoinPerUser | Limit::JoinPerAddress => {
                "joins by code, right or wrong code or password"
            }
            Limit::LeavePerUser => "rooms left",
            Limit::InvitePerUser => "invitations sent",
            Limit::InvitePerInvitee => "invitations received, whoever sends them",
            Limit::InvitationAnswerPerUser => "invitations accepted or declined",
            Limit::DirectPerUser => "direct rooms opened",
            Limit::DirectPerTarget => "direct rooms others open with this user",
            Limit::SendPerUser => "messages sent, over any transport",
            Limit::EditPerUser => "messages edited",
            Limit::MessageDeletePerUser => "messages deleted",
            Limit::ReadPerUser => "read markers moved",
            Limit::TypingPerUser => "typing indicators",
            Limit::FramesPerConnection => "frames one real-time connection may send",
            Limit::SessionOpenPerUser | Limit::SessionOpenPerAddress => {
                "real-time sessions opened, over any transport"
            }
            Limit::SearchPerUser => "message searches",
            Limit::SearchPerAddress => "message searches, whatever the account",
            Limit::ReportPerUser => "messages reported",
            Limit::ReportPerAddress => "messages reported, whatever the account",
            Limit::AdminPerUser => "server admin actions (the admin API's changes)",
            Limit::AdminReadPerUser => "the admin API's lists, searches and audit-log pages",
            Limit::ReactPerUser => "reactions added or removed, over any transport",
            Limit::MentionPerUser => "messages sent that mention someone (at most 20 names each)",
            Limit::UploadPerUser => "attachments uploaded",
            Limit::UploadPerAddress => "attachments uploaded, whatever the account",
            Limit::DownloadPerUser => "attachments downloaded",
            Limit::ThumbnailPerUser => "image attachments' thumbnails fetched",
        }
    }
}

/// Every mutating operation of the domain, whatever transport asks for it,
/// and the budgets it draws from. A new operation needs a line here (the
/// match is exhaustive), and the API tests flood each one until refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Operation {
    Register,
    Login,
    Refresh,
    Logout,
    PasswordResetRequest,
    PasswordResetConfirm,
    PasswordResetComplete,
    PasswordChange,
    AccountDelete,
    SessionEnd,
    ProfileUpdate,
    EmailChange,
    EmailVerify,
    RoomCreate,
    RoomUpdate,
    RoomCodeRotate,
    RoomDelete,
    RoleChange,
    OwnershipTransfer,
    Kick,
    Ban,
    Unban,
    Join,
    Leave,
    Invite,
    InvitationAccept,
    InvitationDecline,
    DirectRoom,
    Send,
    Edit,
    MessageDelete,
    MarkRead,
    Typing,
    SessionOpen,
    Search,
    Report,
    AdminAction,
    AdminRead,
    React,
    Unreact,
    Mention,
    AttachmentUpload,
    AttachmentDownload,
    AttachmentThumbnail,
}

impl Operation {
    pub const fn limits(self) -> &'static [Limit] {
        use Limit::*;
        match self {
            Operation::Register => &[RegisterPerAddress],
            Operation::Login => &[LoginPerAddress],
            Operation::Refresh | Operation::Logout => &[RefreshPerAddress],
            Operation::PasswordResetRequest | Operation::PasswordResetComplete => {
                &[PasswordResetPerAddress]
            }
            Operation::PasswordResetConfirm => &[PasswordResetPerAddress, ResetCodePerAddress],
            Operation::PasswordChange => &[PasswordChangePerUser, LoginPerAddress],
            Operation::AccountDelete => &[AccountDeletePerUser, LoginPerAddress],
            Operation::SessionEnd => &[SessionEndPerUser],
            Operation::ProfileUpdate => &[ProfilePerUser],
            Operation::EmailChange => &[EmailChangePerUser, EmailChangePerAddress],
            Operation::EmailVerify => &[EmailVerifyPerUser],
            Operation::RoomCreate => &[RoomCreatePerUser],
            Operation::RoomUpdate
            | Operation::RoomCodeRotate
            | Operation::RoomDelete
            | Operation::RoleChange
            | Operation::OwnershipTransfer => &[RoomUpdatePerUser],
            Operation::Kick | Operation::Ban | Operation::Unban => &[ModeratePerUser],
            Operation::Join => &[JoinPerUser, JoinPerAddress],
            Operation::Leave => &[LeavePerUser],
            Operation::Invite => &[InvitePerUser, InvitePerInvitee],
            Operation::InvitationAccept | Operation::InvitationDecline => {
                &[InvitationAnswerPerUser]
            }
            Operation::DirectRoom => &[DirectPerUser, DirectPerTarget],
            Operation::Send => &[SendPerUser],
            Operation::Edit => &[EditPerUser],
            Operation::MessageDelete => &[MessageDeletePerUser],
            Operation::MarkRead => &[ReadPerUser],
            Operation::Typing => &[TypingPerUser],
            Operation::SessionOpen => &[SessionOpenPerUser, SessionOpenPerAddress],
            Operation::Search => &[SearchPerUser, SearchPerAddress],
            Operation::Report => &[ReportPerUser, ReportPerAddress],
            Operation::AdminAction => &[AdminPerUser],
            Operation::AdminRead => &[AdminReadPerUser],
            Operation::React | Operation::Unreact => &[ReactPerUser],
            Operation::Mention => &[MentionPerUser],
            Operation::AttachmentUpload => &[UploadPerUser, UploadPerAddress],
            Operation::AttachmentDownload => &[DownloadPerUser],
            Operation::AttachmentThumbnail => &[ThumbnailPerUser],
        }
    }
}

/// Who is asking, as the limits count them: each of an operation's limits
/// takes the key its `Per` names.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller {
    pub user: Option<UserId>,
    pub address: Option<ClientAddr>,
    pub target: Option<UserId>,
}

impl Caller {
    pub fn user(user: UserId) -> Self {
        Self {
            user: Some(user),
            ..Self::default()
        }
    }

    pub fn address(address: ClientAddr) -> Self {
        Self {
            address: Some(address),
            ..Self::default()
        }
    }

    pub fn from(mut self, address: ClientAddr) -> Self {
        self.address = Some(address);
        self
    }

    pub fn on(mut self, target: UserId) -> Self {
        self.target = Some(target);
        self
    }
}

/// What a limit is keyed by in its limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LimitKey {
    User(UserId),
    Address(ClientAddr),
}

/// Every limit's rate, as configured, and the login back-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    rates: [RateLimit; Limit::COUNT],
    pub login_backoff: LoginBackoff,
}

impl Default for RateLimits {
    fn default() -> Self {
        let mut rates = [RateLimit(None); Limit::COUNT];
        for limit in Limit::iter() {
            rates[limit as usize] = limit.default_rate();
        }
        Self {
            rates,
            login_backoff: LoginBackoff::default(),
        }
    }
}

impl RateLimits {
    /// Nothing limited: for benchmarks and tests that are about something else.
    pub fn off() -> Self {
        Self {
            rates: [RateLimit(None); Limit::COUNT],
            login_backoff: LoginBackoff {
                free: u32::MAX,
                max: Duration::ZERO,
            },
        }
    }

    pub fn get(&self, limit: Limit) -> RateLimit {
        self.rates[limit as usize]
    }

    pub fn set(&mut self, limit: Limit, rate: RateLimit) {
        self.rates[limit as usize] = rate;
    }

    /// Every limit with its rate, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (Limit, RateLimit)> + '_ {
        Limit::iter().map(|limit| (limit, self.get(limit)))
    }
}

/// The domain's in-memory limits, shared by its services: one keyed limiter
/// per limit of the table.
pub struct Throttles {
    limiters: Vec<Throttle<LimitKey>>,
    pub login_backoff: LoginBackoff,
}

/// How often idle keys are forgotten.
pub const FORGET_IDLE_EVERY: Duration = Duration::from_secs(30);

impl Throttles {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            limiters: Limit::iter()
                .map(|limit| Throttle::new(limit.name(), limits.get(limit)))
                .collect(),
            login_backoff: limits.login_backoff,
        }
    }

    /// Draws one unit from each of `operation`'s budgets of the caller (per
    /// user, per address), in table order: `RateLimited` at the first one
    /// that is spent. Budgets per target are drawn by `charge_landing`.
    pub fn charge(&self, operation: Operation, caller: Caller) -> Result<()> {
        self.draw(operation, caller, |per| per != Per::Target)
    }

    /// Draws `operation`'s budgets counted `per` alone: for an operation that
    /// spends its caller's budgets first and a shared one (an address's)
    /// only once the request proved worth it.
    pub fn charge_only(&self, operation: Operation, caller: Caller, per: Per) -> Result<()> {
        self.draw(operation, caller, |counted| counted == per)
    }

    /// Draws `operation`'s budgets per target, once something really lands
    /// on `caller.target` (an invitation recorded, a direct room created):
    /// an attempt that lands nothing, refused or repeated, spends none of
    /// the target's budget, so no one can spend it for others by trying.
    pub fn charge_landing(&self, operation: Operation, caller: Caller) -> Result<()> {
        self.draw(operation, caller, |per| per == Per::Target)
    }

    fn draw(
        &self,
        operation: Operation,
        caller: Caller,
        which: impl Fn(Per) -> bool,
    ) -> Result<()> {
        for &limit in operation.limits().iter().filter(|l| which(l.per())) {
            let key = match limit.per() {
                Per::User => caller.user.map(LimitKey::User),
                Per::Address => caller.address.map(LimitKey::Address),
                Per::Target => caller.target.map(LimitKey::User),
                Per::Connection => None,
            };
            let Some(key) = key else {
                // A caller without the key a limit counts by would escape it:
                // refuse rather than let it through unlimited.
                tracing::error!(
                    operation = <&'static str>::from(operation),
                    limit = limit.name(),
                    "an operation was charged without the key its limit counts by"
                );
                return Err(Error::Internal);
            };
            self.limiters[limit as usize].check(&key)?;
        }
        Ok(())
    }

    pub fn forget_idle(&self) {
        for limiter in &self.limiters {
            limiter.forget_idle();
        }
    }
    /// Forgets idle keys every `FORGET_IDLE_EVERY` until the throttles are dropped.
    pub fn spawn_forgetting(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let throttles = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FORGET_IDLE_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                match throttles.upgrade() {
                    Some(throttles) => throttles.forget_idle(),
                    None => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_burst() {
        let rate = |text: &str| text.parse::<RateLimit>().unwrap().0.unwrap();
        assert_eq!(rate("5/s"), Rate::new(5, Duration::from_secs(1), 5));
        assert_eq!(
            rate("20/min burst 40"),
            Rate::new(20, Duration::from_secs(60), 40)
        );
        assert_eq!(rate(" 10/h "), Rate::new(10, Duration::from_secs(3600), 10));
        assert_eq!("off".parse::<RateLimit>().unwrap(), RateLimit(None));
        for bad in [
            "",
            "5",
            "5/day",
            "0/s",
            "5/s burst",
            "5/s burst 0",
            "5/s x 3",
            "-1/s",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?} parsed");
        }
        for text in ["5/s", "20/min burst 40", "10/h", "off"] {
            assert_eq!(text.parse::<RateLimit>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn a_throttle_allows_the_burst_then_says_how_long_to_wait() {
        let throttle = Throttle::new("test", "3/min".parse().unwrap());
        for _ in 0..3 {
            throttle.check(&1).unwrap();
        }
        match throttle.check(&1) {
            Err(Error::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::from_secs(15));
                assert!(retry_after <= Duration::from_secs(20));
            }
            other => panic!("expected rate_limited, got {other:?}"),
        }
        // Another key has a budget of its own.
        throttle.check(&2).unwrap();
        let off = Throttle::new("off", RateLimit(None));
        for _ in 0..1000 {
            off.check(&1).unwrap();
        }
    }

    #[test]
    fn the_login_backoff_starts_after_the_free_failures_and_doubles_up_to_its_cap() {
        let backoff = LoginBackoff {
            free: 3,
            max: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (0..12).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(60));
        let failed = Timestamp(1_000_000);
        assert!(backoff.check(2, failed, failed).is_ok());
        // No wait due: a predecessor stamped after this attempt's clock passes.
        assert!(backoff.check(2, Timestamp(failed.0 + 5), failed).is_ok());
        match backoff.check(5, failed, Timestamp(failed.0 + 1500)) {
            Err(Error::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_millis(2500))
            }
            other => panic!("expected rate_limited, got {other:?}"),
        }
        assert!(backoff.check(5, failed, Timestamp(failed.0 + 4000)).is_ok());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a = ClientAddr::new("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddr::new("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = ClientAddr::new("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        assert_eq!(
            ClientAddr::new("::ffff:192.0.2.7".parse().unwrap()),
            ClientAddr::new("192.0.2.7".parse().unwrap())
        );
    }

    #[test]
    fn every_limit_is_drawn_by_an_operation_and_every_operation_has_a_budget() {
        for operation in Operation::iter() {
            assert!(
                !operation.limits().is_empty(),
                "{operation:?} has no budget"
            );
        }
        for limit in Limit::iter().filter(|l| l.per() != Per::Connection) {
            assert!(
                Operation::iter().any(|op| op.limits().contains(&limit)),
                "{limit} is drawn by no operation"
            );
        }
    }

    #[test]
    fn limit_names_round_trip_and_defaults_are_on() {
        for limit in Limit::iter() {
            assert_eq!(limit.name().parse::<Limit>().unwrap(), limit);
            assert!(
                limit.default_rate().0.is_some(),
                "{limit} is off by default"
            );
            assert_eq!(RateLimits::default().get(limit), limit.default_rate());
        }
        assert_eq!(Limit::SendPerUser.name(), "send_per_user");
    }

    #[test]
    fn a_charge_draws_every_budget_of_the_operation_with_its_own_key() {
        let mut rates = RateLimits::off();
        rates.set(Limit::InvitePerUser, "2/h".parse().unwrap());
        rates.set(Limit::InvitePerInvitee, "1/h".parse().unwrap());
        let throttles = Throttles::new(&rates);
        let (alice, bob, carol) = (UserId(1), UserId(2), UserId(3));
        let invite = |by: UserId, to: UserId| {
            throttles.charge(Operation::Invite, Caller::user(by).on(to))?;
            throttles.charge_landing(Operation::Invite, Caller::user(by).on(to))
        };
        invite(alice, bob).unwrap();
        // Bob's budget as an invitee is spent, whoever invites him.
        assert!(matches!(invite(carol, bob), Err(Error::RateLimited { .. })));
        // Alice's own budget (2) is spent by her second invitation.
        invite(alice, carol).unwrap();
        assert!(matches!(
            invite(alice, UserId(4)),
            Err(Error::RateLimited { .. })
        ));
        // Trying alone spends nothing of the target's budget.
        throttles
            .charge(Operation::Invite, Caller::user(UserId(5)).on(UserId(6)))
            .unwrap();
        throttles
            .charge_landing(Operation::Invite, Caller::user(UserId(5)).on(UserId(6)))
            .unwrap();
        // A caller missing a key its limit counts by is refused, never waved through.
        let off = Throttles::new(&RateLimits::off());
        assert!(matches!(
            off.charge_landing(Operation::Invite, Caller::user(alice)),
            Err(Error::Internal)
        ));
    }

    #[test]
    fn the_security_guide_lists_every_limit_with_its_default() {
        let guide = include_str!("../../../docs/security.md");
        for limit in Limit::iter() {
            let per = match limit.per() {
                Per::User => "user",
                Per::Address => "address",
                Per::Target => "target",
                Per::Connection => "connection",
            };
            let row = format!(
                "| `{}` | {per} | {} | `{}` |",
                limit.name(),
                limit.counts(),
                limit.default_rate()
            );
            assert!(guide.contains(&row), "docs/security.md lacks the row {row}");
        }
    }
}
