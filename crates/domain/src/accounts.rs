//! Accounts: registration, login, refresh-token rotation, logout, sessions,
//! password change, deletion.

mod recovery;

use std::sync::Arc;

pub use recovery::{CodeLimits, Codes};

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::User;
use crate::outbox::Publisher;
use crate::passwords::Passwords;
use crate::store::{
    AccountDeletion, AccountRemoval, NewSession, NewUser, Rotation, SessionRecord, SessionsToEnd,
    Store, StoreError,
};
use crate::throttle::{Caller, ClientAddr, Operation, Throttles, LOGIN_FAILURES_FORGOTTEN_AFTER};
use crate::time::Timestamp;
use crate::tokens::{self, AccessTokens, Bearer};
use crate::values::{DisplayName, Email, Password, Username};

/// What a successful login or refresh hands out.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: User,
}

/// How long an account's things last.
#[derive(Debug, Clone, Copy)]
pub struct AccountTimes {
    pub refresh_token_ttl_secs: i64,
    /// How long a deleted account's username cannot be registered again, so
    /// that nobody takes over a name others still know as someone else.
    pub username_hold_secs: i64,
}

pub struct Accounts {
    store: Arc<dyn Store>,
    publisher: Publisher,
    passwords: Passwords,
    access: AccessTokens,
    times: AccountTimes,
    throttles: Arc<Throttles>,
    codes: Codes,
}

const BAD_LOGIN: &str = "invalid username or password";
const BAD_REFRESH: &str = "invalid, expired or revoked refresh token";

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        publisher: Publisher,
        passwords: Passwords,
        access: AccessTokens,
        times: AccountTimes,
        throttles: Arc<Throttles>,
        codes: Codes,
    ) -> Self {
        Self {
            codes,
            store,
            publisher,
            passwords,
            access,
            times,
            throttles,
        }
    }

    /// Creates an account; with `email`, the address is stored unverified and
    /// a code to verify it is mailed.
    pub async fn register(
        &self,
        username: &str,
        password: String,
        display_name: Option<&str>,
        email: Option<&str>,
        from: ClientAddr,
    ) -> Result<User> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let display_name = DisplayName::parse(display_name.unwrap_or(username.as_str()))?;
        let email = email.map(Email::parse).transpose()?;
        self.throttles
            .charge(Operation::Register, Caller::address(from))?;
        let password_hash = self.passwords.hash(password.expose()).await?;
        let new_user = NewUser {
            username: username.as_str().to_owned(),
            email: email.as_ref().map(|e| e.as_str().to_owned()),
            display_name: display_name.into_inner(),
            password_hash,
            created_at: Timestamp::now(),
        };
        let user = match self.store.insert_user(new_user).await {
            Err(StoreError::Conflict("email")) => {
                return Err(Error::Conflict(
                    "this e-mail address belongs to another account",
                ))
            }
            Err(StoreError::Conflict(_)) => {
                return Err(Error::Conflict("username is already taken"))
            }
            other => other?,
        };
        if let Some(email) = &email {
            let account = self.account(user.id).await?;
            self.codes
                .mail_code(
                    &account,
                    email.as_str(),
                    crate::model::CodePurpose::VerifyEmail,
                )
                .await?;
        }
        Ok(user)
    }

    /// Unknown user and wrong password take the same time and give the same
    /// error. After failed attempts of one account from one address, the next
    /// attempt waits (`LoginBackoff`): refused as `RateLimited`, without
    /// looking at the password, until the delay is over.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        from: ClientAddr,
        user_agent: Option<&str>,
    ) -> Result<Session> {
        self.throttles
            .charge(Operation::Login, Caller::address(from))?;
        let credentials = match Username::parse(username) {
            Ok(name) => self.store.credentials_by_username(name.as_str()).await?,
            Err(_) => None,
        };
        let hash = credentials.as_ref().map(|c| c.password_hash.as_str());
        let verified = self
            .check_password(&login_subject(username, from), password, hash)
            .await?;
        let user = match credentials {
            Some(found) if verified => found.user,
            _ => return Err(Error::Unauthorized(BAD_LOGIN)),
        };
        // Told only now, to whoever proved they hold the account.
        let now = Timestamp::now();
        self.refuse_if_suspended(user.id, now).await?;
        let refresh_token = tokens::new_refresh_token();
        let id = tokens::random_token(16);
        let inserted = self
            .store
            .insert_session(NewSession {
                id: id.clone(),
                user_id: user.id,
                token_hash: tokens::hash_secret(&refresh_token),
                user_agent: user_agent.map(shorten_user_agent),
                created_at: now,
                expires_at: now.plus_seconds(self.times.refresh_token_ttl_secs),
            })
            .await?;
        if !inserted {
            // Suspended since it was checked above, or deleted since its
            // credentials were read: then as if it never existed.
            self.refuse_if_suspended(user.id, Timestamp::now()).await?;
            return Err(Error::Unauthorized(BAD_LOGIN));
        }
        self.session(user, &id, refresh_token, now)
    }

    /// `Suspended` (with its reason and end) while a suspension of `user`
    /// applies at `now`.
    async fn refuse_if_suspended(&self, user: UserId, now: Timestamp) -> Result<()> {
        match self.store.suspension(user).await? {
            Some(suspension) if suspension.applies_at(now) => Err(Error::Suspended {
                reason: suspension.reason,
                ends_at: suspension.ends_at,
            }),
            _ => Ok(()),
        }
    }

    /// Spends the presented refresh token and issues a new pair. Presenting a
    /// token that was already spent revokes every token descended from its login.
    pub async fn refresh(&self, presented: &str, from: ClientAddr) -> Result<Session> {
        self.throttles
            .charge(Operation::Refresh, Caller::address(from))?;
        let next = tokens::new_refresh_token();
        let now = Timestamp::now();
        let rotation = self
            .store
            .rotate_refresh_token(
                &tokens::hash_secret(presented),
                &tokens::hash_secret(&next),
                now.plus_seconds(self.times.refresh_token_ttl_secs),
                now,
            )
            .await?;
        match rotation {
            Rotation::Rotated { user_id, family } => {
                let user = self
                    .store
                    .user_by_id(user_id)
                    .await?
                    .filter(|user| !user.deleted)
                    .ok_or(Error::Unauthorized(BAD_REFRESH))?;
                self.session(user, &family, next, now)
            }
            Rotation::ReuseDetected { user_id, family } => {
                tracing::warn!(user = %user_id, "refresh token re-use detected; its login is ended");
                self.end_sessions(user_id, SessionsToEnd::One(family))
                    .await?;
                Err(Error::Unauthorized(BAD_REFRESH))
            }
            Rotation::Invalid => Err(Error::Unauthorized(BAD_REFRESH)),
        }
    }

    /// Ends the token's login: its refresh tokens, access tokens and
    /// connections. Unknown tokens are accepted silently so that logout is
    /// idempotent and reveals nothing.
    pub async fn logout(&self, presented: &str, from: ClientAddr) -> Result<()> {
        self.throttles
            .charge(Operation::Logout, Caller::address(from))?;
        let committed = self
            .store
            .end_session_of_token(&tokens::hash_secret(presented), Timestamp::now())
            .await?;
        self.publisher.publish_committed(committed);
        Ok(())
    }

    /// Who an access token speaks for, if its login is still live: a token
    /// whose login ended (or whose account is gone) is refused like an
    /// invalid one, before it expires.
    pub async fn authenticate(&self, access_token: &str) -> Result<Bearer> {
        let bearer = self.verify_token(access_token).await?;
        if self.is_live(&bearer).await? {
            Ok(bearer)
        } else {
            Err(Error::Unauthorized("the token's login has ended"))
        }
    }

    /// Who an access token speaks for, by its signature and claims alone; a
    /// connection checks `is_live` once it listens for its login's end.
    pub async fn verify_token(&self, access_token: &str) -> Result<Bearer> {
        self.access.verify(access_token).await
    }

    /// Whether the token's login has neither ended nor expired.
    pub async fn is_live(&self, bearer: &Bearer) -> Result<bool> {
        Ok(self
            .store
            .session_is_live(bearer.user, &bearer.session, Timestamp::now())
            .await?)
    }

    /// The caller's live logins, newest first.
    pub async fn sessions(&self, user: UserId) -> Result<Vec<SessionRecord>> {
        Ok(self.store.sessions(user, Timestamp::now()).await?)
    }

    /// Ends one of the caller's logins; `NotFound` when it has no live login
    /// of that id (another user's included).
    pub async fn end_session(&self, user: UserId, session: &str) -> Result<()> {
        self.throttles
            .charge(Operation::SessionEnd, Caller::user(user))?;
        let ended = self
            .end_sessions(user, SessionsToEnd::One(session.to_owned()))
            .await?;
        if ended.is_empty() {
            return Err(Error::NotFound("session"));
        }
        Ok(())
    }

    /// Ends every login of the caller, the calling one included.
    pub async fn end_all_sessions(&self, user: UserId) -> Result<()> {
        self.throttles
            .charge(Operation::SessionEnd, Caller::user(user))?;
        self.end_sessions(user, SessionsToEnd::AllBut(None)).await?;
        Ok(())
    }

    /// Changes the password after checking the current one; every other
    /// login of the account ends, the calling one (`bearer.session`) stays.
    /// Checking the current password is a login attempt: the same rate and
    /// back-off apply, so a stolen access token cannot guess it quickly.
    pub async fn change_password(
        &self,
        bearer: &Bearer,
        current: &str,
        new_password: String,
        from: ClientAddr,
    ) -> Result<()> {
        self.throttles.charge(
            Operation::PasswordChange,
            Caller::user(bearer.user).from(from),
        )?;
        let new_password = Password::parse(new_password).map_err(recovery::new_password_field)?;
        self.confirm_password(bearer.user, current, from)
            .await
            .map_err(|err| match err {
                Error::Forbidden(_) => Error::Forbidden("the current password is wrong"),
                other => other,
            })?;
        let password_hash = self.passwords.hash(new_password.expose()).await?;
        if !self
            .store
            .set_password_hash(bearer.user, &password_hash, Timestamp::now())
            .await?
        {
            return Err(Error::NotFound("user"));
        }
        self.end_sessions(
            bearer.user,
            SessionsToEnd::AllBut(Some(bearer.session.clone())),
        )
        .await?;
        Ok(())
    }

    /// Deletes the caller's account after checking its password (a login
    /// attempt, as for `change_password`): see `AccountStore::delete_account`
    /// for what remains. `LastOwner` while it is the only owner of a room
    /// that has other members.
    pub async fn delete_account(
        &self,
        user: UserId,
        password: &str,
        erase: bool,
        from: ClientAddr,
    ) -> Result<()> {
        self.throttles
            .charge(Operation::AccountDelete, Caller::user(user).from(from))?;
        self.confirm_password(user, password, from).await?;
        let now = Timestamp::now();
        let committed = self
            .store
            .delete_account(AccountRemoval {
                user,
                erase,
                username_free_at: now.plus_seconds(self.times.username_hold_secs),
                now,
            })
            .await?
            .ok_or(Error::NotFound("user"))?;
        match self.publisher.publish_committed(committed) {
            AccountDeletion::Deleted => {
                tracing::info!(user = %user, erase, "account deleted");
                Ok(())
            }
            AccountDeletion::LastOwner(rooms) => Err(Error::LastOwner(rooms)),
        }
    }

    /// A signed-in user confirms a change with their password: a login
    /// attempt (the operation draws from the login budget too, and the
    /// back-off applies), so a stolen access token cannot be used to guess
    /// it quickly. `Forbidden` when it is wrong.
    async fn confirm_password(&self, user: UserId, password: &str, from: ClientAddr) -> Result<()> {
        let credentials = self
            .store
            .credentials_by_id(user)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let subject = login_subject(&credentials.user.username, from);
        if self
            .check_password(&subject, password, Some(&credentials.password_hash))
            .await?
        {
            Ok(())
        } else {
            Err(Error::Forbidden("the password is wrong"))
        }
    }

    /// Whether `password` matches `hash` (`None`: no such account, checked
    /// as long anyway), under the login back-off of `subject`: while its
    /// streak of failures makes it wait, refused as `RateLimited` without
    /// looking. Every attempt is counted as a failure before the password
    /// is looked at (`charge_login_attempt`), so attempts running at once
    /// cannot all pass the same streak; a success then ends the streak.
    async fn check_password(
        &self,
        subject: &str,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let forget_before = now.minus(LOGIN_FAILURES_FORGOTTEN_AFTER);
        // Counted first, judged after: of attempts running at once, each is
        // judged against the failure counted just before it, so no two pass
        // on the same streak. One refused counts too: the wait it was told
        // to keep starts again from it.
        let before = self
            .store
            .charge_login_attempt(subject, now, forget_before)
            .await?;
        if let Some(streak) = before {
            self.throttles
                .login_backoff
                .check(streak.count, streak.last_failed_at, now)?;
        }
        let verified = self.passwords.verify(password, hash).await?;
        if !verified || hash.is_none() {
            return Ok(false);
        }
        self.store.clear_login_failures(subject).await?;
        Ok(true)
    }

    async fn end_sessions(&self, user: UserId, which: SessionsToEnd) -> Result<Vec<String>> {
        let committed = self
            .store
            .end_sessions(user, which, Timestamp::now())
            .await?;
        Ok(self.publisher.publish_committed(committed))
    }

    /// The keys access tokens are signed with (`tokens::AccessTokens`).
    pub fn access_tokens(&self) -> &AccessTokens {
        &self.access
    }

    pub async fn user(&self, id: UserId) -> Result<User> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// A user to act on (invite, write to) by id or username; `NotFound`
    /// when there is none or the account was deleted.
    pub async fn find(&self, who: &UserLookup) -> Result<User> {
        let found = match who {
            UserLookup::Id(id) => self.store.user_by_id(*id).await?,
            // Usernames are stored lower-case.
            UserLookup::Username(name) => {
                self.store
                    .user_by_username(&name.to_ascii_lowercase())
                    .await?
            }
        };
        found
            .filter(|user| !user.deleted)
            .ok_or(Error::NotFound("user"))
    }

    /// Users whose username or display name starts with `query` (any case),
    /// by username, after the cursor `after`; `limit` defaults to 20 (max 100).
    pub async fn search(
        &self,
        query: &str,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<User>, Option<String>)> {
        let limit = match limit {
            None => 20,
            Some(n @ 1..=100) => n,
            Some(_) => return Err(Error::invalid("limit", "must be between 1 and 100")),
        };
        if query.chars().count() > 64 {
            return Err(Error::invalid("q", "must be at most 64 characters"));
        }
        let prefix = query.trim().to_lowercase();
        let mut users = self
            .store
            .search_users(&prefix, after.unwrap_or(""), limit + 1)
            .await?;
        let next = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| u.username.clone())
        } else {
            None
        };
        Ok((users, next))
    }

    pub async fn update_display_name(&self, user: UserId, display_name: &str) -> Result<User> {
        self.throttles
            .charge(Operation::ProfileUpdate, Caller::user(user))?;
        let display_name = DisplayName::parse(display_name)?;
        self.store
            .update_display_name(user, &display_name.into_inner())
            .await?
            .ok_or(Error::NotFound("user"))
    }

    fn session(
        &self,
        user: User,
        family: &str,
        refresh_token: String,
        now: Timestamp,
    ) -> Result<Session> {
        Ok(Session {
            access_token: self.access.issue(user.id, family, now)?,
            refresh_token,
            expires_in: self.access.ttl_secs(),
            user,
        })
    }
}

/// Whose failed logins are counted together: one account (by the name
/// given, so unknown names are counted too) from one address.
fn login_subject(username: &str, from: ClientAddr) -> String {
    let name: String = username.trim().to_lowercase().chars().take(64).collect();
    format!("{name} {from}")
}

/// What a session list shows of a browser's or app's `User-Agent`: enough to
/// tell logins apart, bounded so a client cannot store a novel.
fn shorten_user_agent(agent: &str) -> String {
    agent
        .chars()
        .filter(|c| !c.is_control())
        .take(256)
        .collect()
}

/// Someone named by id or by username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserLookup {
    Id(UserId),
    Username(String),
}
