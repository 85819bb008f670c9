//! Accounts: registration, login, refresh-token rotation, logout.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::model::User;
use crate::passwords::Passwords;
use crate::store::{NewRefreshToken, NewUser, Rotation, Store, StoreError};
use crate::throttle::{ClientAddr, Throttles, LOGIN_FAILURES_FORGOTTEN_AFTER};
use crate::time::Timestamp;
use crate::tokens::{self, AccessTokens};
use crate::values::{DisplayName, Password, Username};

/// What a successful login or refresh hands out.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub user: User,
}

pub struct Accounts {
    store: Arc<dyn Store>,
    passwords: Passwords,
    access: AccessTokens,
    refresh_ttl_secs: i64,
    throttles: Arc<Throttles>,
}

const BAD_LOGIN: &str = "invalid username or password";
const BAD_REFRESH: &str = "invalid, expired or revoked refresh token";

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        passwords: Passwords,
        access: AccessTokens,
        refresh_ttl_secs: i64,
        throttles: Arc<Throttles>,
    ) -> Self {
        Self {
            store,
            passwords,
            access,
            refresh_ttl_secs,
            throttles,
        }
    }

    pub async fn register(
        &self,
        username: &str,
        password: String,
        display_name: Option<&str>,
        from: ClientAddr,
    ) -> Result<User> {
        let username = Username::parse(username)?;
        let password = Password::parse(password)?;
        let display_name = DisplayName::parse(display_name.unwrap_or(username.as_str()))?;
        self.throttles.register_per_address.check(&from)?;
        let password_hash = self.passwords.hash(password.expose()).await?;
        let new_user = NewUser {
            username: username.as_str().to_owned(),
            display_name: display_name.into_inner(),
            password_hash,
            created_at: Timestamp::now(),
        };
        match self.store.insert_user(new_user).await {
            Err(StoreError::Conflict(_)) => Err(Error::Conflict("username is already taken")),
            other => Ok(other?),
        }
    }

    /// Unknown user and wrong password take the same time and give the same
    /// error. After failed attempts of one account from one address, the next
    /// attempt waits (`LoginBackoff`): refused as `RateLimited`, without
    /// looking at the password, until the delay is over.
    pub async fn login(&self, username: &str, password: &str, from: ClientAddr) -> Result<Session> {
        self.throttles.login_per_address.check(&from)?;
        let now = Timestamp::now();
        let subject = login_subject(username, from);
        let streak = self.store.login_failures(&subject).await?;
        if let Some(streak) = streak {
            self.throttles
                .login_backoff
                .check(streak.count, streak.last_failed_at, now)?;
        }
        let credentials = match Username::parse(username) {
            Ok(name) => self.store.credentials_by_username(name.as_str()).await?,
            Err(_) => None,
        };
        let hash = credentials.as_ref().map(|c| c.password_hash.as_str());
        let verified = self.passwords.verify(password, hash).await?;
        let user = match credentials {
            Some(found) if verified => found.user,
            _ => {
                let forget_before = now.minus(LOGIN_FAILURES_FORGOTTEN_AFTER);
                self.store
                    .record_login_failure(&subject, now, forget_before)
                    .await?;
                return Err(Error::Unauthorized(BAD_LOGIN));
            }
        };
        if streak.is_some() {
            self.store.clear_login_failures(&subject).await?;
        }
        let refresh_token = tokens::new_refresh_token();
        self.store
            .insert_refresh_token(NewRefreshToken {
                user_id: user.id,
                family: tokens::random_token(16),
                token_hash: tokens::hash_refresh_token(&refresh_token),
                created_at: now,
                expires_at: now.plus_seconds(self.refresh_ttl_secs),
            })
            .await?;
        self.session(user, refresh_token, now)
    }

    /// Spends the presented refresh token and issues a new pair. Presenting a
    /// token that was already spent revokes every token descended from its login.
    pub async fn refresh(&self, presented: &str) -> Result<Session> {
        let next = tokens::new_refresh_token();
        let now = Timestamp::now();
        let rotation = self
            .store
            .rotate_refresh_token(
                &tokens::hash_refresh_token(presented),
                &tokens::hash_refresh_token(&next),
                now.plus_seconds(self.refresh_ttl_secs),
                now,
            )
            .await?;
        match rotation {
            Rotation::Rotated { user_id } => {
                let user = self
                    .store
                    .user_by_id(user_id)
                    .await?
                    .ok_or(Error::Unauthorized(BAD_REFRESH))?;
                self.session(user, next, now)
            }
            Rotation::ReuseDetected => {
                tracing::warn!("refresh token re-use detected; token family revoked");
                Err(Error::Unauthorized(BAD_REFRESH))
            }
            Rotation::Invalid => Err(Error::Unauthorized(BAD_REFRESH)),
        }
    }

    /// Revokes the token's whole family. Unknown tokens are accepted silently so
    /// that logout is idempotent and reveals nothing.
    pub async fn logout(&self, presented: &str) -> Result<()> {
        self.store
            .revoke_refresh_family(&tokens::hash_refresh_token(presented), Timestamp::now())
            .await?;
        Ok(())
    }

    /// The user an access token speaks for.
    pub fn authenticate(&self, access_token: &str) -> Result<UserId> {
        self.access.verify(access_token)
    }

    /// As `authenticate`, and the user still exists: a token outliving its
    /// account is refused like an invalid one.
    pub async fn authenticate_current(&self, access_token: &str) -> Result<UserId> {
        let user = self.access.verify(access_token)?;
        match self.store.user_by_id(user).await? {
            Some(_) => Ok(user),
            None => Err(Error::Unauthorized("the token's account no longer exists")),
        }
    }

    pub async fn user(&self, id: UserId) -> Result<User> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// A user by id or username; `NotFound` when there is none.
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
        found.ok_or(Error::NotFound("user"))
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
        let display_name = DisplayName::parse(display_name)?;
        self.store
            .update_display_name(user, &display_name.into_inner())
            .await?
            .ok_or(Error::NotFound("user"))
    }

    fn session(&self, user: User, refresh_token: String, now: Timestamp) -> Result<Session> {
        Ok(Session {
            access_token: self.access.issue(user.id, now)?,
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

/// Someone named by id or by username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserLookup {
    Id(UserId),
    Username(String),
}
