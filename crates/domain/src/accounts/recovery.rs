//! An account's e-mail address and the password reset it makes possible:
//! one-time codes mailed to the address, stored only as hashes.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::Accounts;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::mail::{templates, MailQueue};
use crate::model::{Account, AccountCode, CodePurpose};
use crate::store::{Allowance, SessionsToEnd, Store, StoreError};
use crate::throttle::{Caller, ClientAddr, Operation};
use crate::time::Timestamp;
use crate::tokens;
use crate::values::{Email, Password};

/// How one-time codes behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLimits {
    /// How long a mailed code works.
    pub code_ttl_secs: i64,
    /// Tries at one code from one requester: a verification code's (only
    /// its account may try it), and each client address's at a reset code.
    pub attempts: u32,
    /// Tries that end a password-reset code, from every address together:
    /// larger than `attempts`, so a stranger cannot spend the owner's tries.
    pub reset_code_attempts: u32,
    /// Least time between two codes of one purpose mailed to one address for
    /// one account (or the code's lifetime, if shorter), whatever address
    /// the account had in between.
    pub resend_cooldown_secs: i64,
    /// How long the token a right reset code gives works.
    pub reset_token_ttl_secs: i64,
    /// Codes of one purpose mailed for one account in a day.
    pub codes_per_account_per_day: u32,
    /// Address changes (and requests for a fresh code) of one account in a day.
    pub email_changes_per_account_per_day: u32,
    /// Mails to one address in a day, whichever accounts they are for.
    pub mails_per_recipient_per_day: u32,
}

impl Default for CodeLimits {
    fn default() -> Self {
        Self {
            code_ttl_secs: 300,
            attempts: 5,
            reset_code_attempts: 20,
            resend_cooldown_secs: 60,
            reset_token_ttl_secs: 600,
            codes_per_account_per_day: 10,
            email_changes_per_account_per_day: 10,
            mails_per_recipient_per_day: 10,
        }
    }
}

const BAD_CODE: &str = "the code is wrong or has expired";
const BAD_RESET_TOKEN: &str = "the reset token is invalid, used or expired";
const DAY: Duration = Duration::from_secs(24 * 3600);
/// Password-reset requests being worked on at once; past that one is dropped
/// (and logged): the answer is the same either way.
const RESETS_AT_ONCE: usize = 16;

/// Issues and checks codes, and mails them.
#[derive(Clone)]
pub struct Codes {
    store: Arc<dyn Store>,
    mail: MailQueue,
    limits: CodeLimits,
    resets_at_once: Arc<Semaphore>,
}

impl Codes {
    pub fn new(store: Arc<dyn Store>, mail: MailQueue, limits: CodeLimits) -> Self {
        Self {
            store,
            mail,
            limits,
            resets_at_once: Arc::new(Semaphore::new(RESETS_AT_ONCE)),
        }
    }

    /// Mails a fresh code of `purpose` to `email` (replacing any earlier one),
    /// unless one went to that address for this account within the cool-down,
    /// or the account's codes or the address's mail for the day are spent:
    /// then nothing is mailed, and nothing said (the reset's caller may be
    /// anyone).
    pub(super) async fn mail_code(
        &self,
        account: &Account,
        email: &str,
        purpose: CodePurpose,
    ) -> Result<()> {
        let now = Timestamp::now();
        let user = account.user.id;
        let cooldown = self
            .limits
            .resend_cooldown_secs
            .min(self.limits.code_ttl_secs)
            .max(1) as u64;
        // Addresses appear in keys only hashed: the table outlives accounts
        // and holds addresses nobody verified.
        let recipient = tokens::hash_secret(email);
        let allowances = [
            // Kept apart from the code, so that moving to another address
            // and back does not start the cool-down again.
            Allowance {
                key: format!("code_cooldown:{}:{}:{recipient}", purpose.as_str(), user.0),
                limit: 1,
                window: Duration::from_secs(cooldown),
            },
            Allowance {
                key: format!("codes:{}:{}", purpose.as_str(), user.0),
                limit: self.limits.codes_per_account_per_day,
                window: DAY,
            },
            Allowance {
                key: format!("mail_to:{recipient}"),
                limit: self.limits.mails_per_recipient_per_day,
                window: DAY,
            },
        ];
        if self
            .store
            .take_allowances(&allowances, now)
            .await?
            .is_some()
        {
            tracing::debug!(
                purpose = purpose.as_str(),
                "no code mailed: cool-down or ceiling"
            );
            return Ok(());
        }
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
        self.store
            .put_code(&AccountCode {
                user_id: user,
                purpose,
                secret_hash: code_hash(user, purpose, &code),
                email: email.to_owned(),
                expires_at: now.plus_seconds(self.limits.code_ttl_secs),
                attempts_left: match purpose {
                    CodePurpose::PasswordReset => self.limits.reset_code_attempts,
                    _ => self.limits.attempts,
                },
                sent_at: now,
            })
            .await?;
        let minutes = (self.limits.code_ttl_secs / 60).max(1) as u64;
        let username = &account.user.username;
        self.mail.send(match purpose {
            CodePurpose::VerifyEmail => templates::verify_email(email, username, &code, minutes),
            _ => templates::password_reset(email, username, &code, minutes),
        });
        Ok(())
    }

    /// Spends the account's code of `purpose` if `code` is it; any try costs
    /// one of the code's tries, taken before comparing, so concurrent tries
    /// get no more than it has. `from`: the requester, whose own tries at
    /// this code are counted apart (a reset code, which anyone may try). The
    /// address it was mailed to when right.
    async fn spend_code(
        &self,
        user: UserId,
        purpose: CodePurpose,
        code: &str,
        from: Option<ClientAddr>,
    ) -> Result<String> {
        let now = Timestamp::now();
        let stored = self
            .store
            .code(user, purpose)
            .await?
            .filter(|c| now < c.expires_at && c.attempts_left > 0)
            .ok_or(Error::Forbidden(BAD_CODE))?;
        if let Some(from) = from {
            let requester = Allowance {
                key: format!(
                    "code_tries:{}:{}:{}:{from}",
                    purpose.as_str(),
                    user.0,
                    stored.sent_at.0
                ),
                limit: self.limits.attempts,
                window: Duration::from_secs(self.limits.code_ttl_secs.max(1) as u64),
            };
            // Spent: the same answer as a wrong code, and the code is not
            // even compared.
            if self
                .store
                .take_allowances(&[requester], now)
                .await?
                .is_some()
            {
                return Err(Error::Forbidden(BAD_CODE));
            }
        }
        if !self
            .store
            .take_code_attempt(user, purpose, &stored.secret_hash)
            .await?
        {
            return Err(Error::Forbidden(BAD_CODE));
        }
        let presented = code_hash(user, purpose, code.trim());
        if !bool::from(presented.as_bytes().ct_eq(stored.secret_hash.as_bytes())) {
            return Err(Error::Forbidden(BAD_CODE));
        }
        if !self.store.delete_code(user, purpose).await? {
            // Spent by a concurrent request with the same code.
            return Err(Error::Forbidden(BAD_CODE));
        }
        Ok(stored.email)
    }

    /// One of the account's address changes of the day; `RateLimited` (until
    /// the day's window ends) when they are spent.
    async fn take_email_change(&self, user: UserId) -> Result<()> {
        let now = Timestamp::now();
        let allowance = Allowance {
            key: format!("email_changes:{}", user.0),
            limit: self.limits.email_changes_per_account_per_day,
            window: DAY,
        };
        match self.store.take_allowances(&[allowance], now).await? {
            None => Ok(()),
            Some(resets_at) => {
                metrics::counter!(
                    "palaver_rate_limited_total",
                    "limit" => "email_changes_per_account_per_day"
                )
                .increment(1);
                Err(Error::RateLimited {
                    retry_after: Duration::from_millis((resets_at.0 - now.0).max(1000) as u64),
                })
            }
        }
    }

    /// The reset-code mail for `login`, if it names an account with a
    /// verified address; `only_if_pending`: only when a reset was asked for.
    /// Whether a suspension of `user` applies now.
    pub(super) async fn suspended(&self, user: UserId) -> Result<bool> {
        Ok(self
            .store
            .suspension(user)
            .await?
            .is_some_and(|suspension| suspension.applies_at(Timestamp::now())))
    }

    async fn mail_reset_code(&self, login: &str, only_if_pending: bool) -> Result<()> {
        let Some(account) = self.store.account_by_login(login).await? else {
            return Ok(());
        };
        let Some(email) = account.email.clone().filter(|_| account.email_verified) else {
            return Ok(());
        };
        // A suspended account gets no code; its owner learns of the
        // suspension at login, after the right password.
        if self.suspended(account.user.id).await? {
            return Ok(());
        }
        if only_if_pending
            && self
                .store
                .code(account.user.id, CodePurpose::PasswordReset)
                .await?
                .is_none()
        {
            return Ok(());
        }
        self.mail_code(&account, &email, CodePurpose::PasswordReset)
            .await
    }

    /// Does `mail_reset_code` off the request, so the answer takes the same
    /// time whether or not the account exists.
    fn mail_reset_code_later(&self, login: String, only_if_pending: bool) {
        let Ok(permit) = self.resets_at_once.clone().try_acquire_owned() else {
            tracing::warn!("too many password resets at once; one was dropped");
            metrics::counter!("palaver_password_resets_dropped_total").increment(1);
            return;
        };
        let codes = self.clone();
        tokio::spawn(async move {
            if let Err(err) = codes.mail_reset_code(&login, only_if_pending).await {
                tracing::warn!(error = %err, "a password reset failed");
            }
            drop(permit);
        });
    }
}

/// The hash a code is stored as: SHA-256 over the account, purpose and code,
/// so equal codes of two accounts never share a hash.
fn code_hash(user: UserId, purpose: CodePurpose, code: &str) -> String {
    tokens::hash_secret(&format!("{}:{}:{code}", user.0, purpose.as_str()))
}

/// `Password::parse`'s error, naming the field it came in.
pub(super) fn new_password_field(err: Error) -> Error {
    match err {
        Error::Invalid { reason, .. } => Error::Invalid {
            field: "new_password",
            reason,
        },
        other => other,
    }
}

/// The least time a refused reset confirmation takes: longer than any of
/// its paths takes on a healthy store, so all of them answer alike.
const REFUSAL_FLOOR: std::time::Duration = std::time::Duration::from_millis(50);

impl Accounts {
    /// The caller's own account, e-mail address included.
    pub async fn account(&self, user: UserId) -> Result<Account> {
        self.store
            .account(user)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    pub fn reset_token_ttl_secs(&self) -> u64 {
        self.codes.limits.reset_token_ttl_secs as u64
    }

    /// Sets the address (unverified, a code mailed to it) or, with `None`,
    /// removes it. Setting one draws from the account's daily allowance of
    /// changes, stored (so no node or restart gives more), whether or not
    /// the address turns out to be taken: an address taken is as costly to
    /// ask about as registering is.
    pub async fn set_email(
        &self,
        user: UserId,
        email: Option<&str>,
        from: ClientAddr,
    ) -> Result<Account> {
        self.throttles
            .charge(Operation::EmailChange, Caller::user(user).from(from))?;
        let email = email.map(Email::parse).transpose()?;
        if email.is_some() {
            self.codes.take_email_change(user).await?;
        }
        let current = self.account(user).await?;
        if current.email.as_deref() == email.as_ref().map(Email::as_str) {
            // The same address again: a fresh code if it is still unverified
            // (the way to ask again once a code has expired).
            if let (Some(email), false) = (&email, current.email_verified) {
                self.codes
                    .mail_code(&current, email.as_str(), CodePurpose::VerifyEmail)
                    .await?;
            }
            return Ok(current);
        }
        match self
            .store
            .set_email(user, email.as_ref().map(Email::as_str))
            .await
        {
            Err(StoreError::Conflict(_)) => {
                return Err(Error::Conflict(
                    "this e-mail address belongs to another account",
                ))
            }
            Ok(false) => return Err(Error::NotFound("user")),
            other => other?,
        };
        self.store
            .delete_code(user, CodePurpose::VerifyEmail)
            .await?;
        self.store
            .delete_code(user, CodePurpose::PasswordReset)
            .await?;
        let account = self.account(user).await?;
        if let Some(email) = &email {
            self.codes
                .mail_code(&account, email.as_str(), CodePurpose::VerifyEmail)
                .await?;
        }
        Ok(account)
    }

    /// Verifies the address with the code mailed to it.
    pub async fn verify_email(&self, user: UserId, code: &str) -> Result<Account> {
        self.throttles
            .charge(Operation::EmailVerify, Caller::user(user))?;
        // Only the account tries its own verification code: the code's tries
        // are the requester's.
        let email = self
            .codes
            .spend_code(user, CodePurpose::VerifyEmail, code, None)
            .await?;
        if !self
            .store
            .mark_email_verified(user, &email, Timestamp::now())
            .await?
        {
            // The address changed after the code was mailed.
            return Err(Error::Forbidden(BAD_CODE));
        }
        self.account(user).await
    }

    /// Mails a reset code to the verified address of the account `login`
    /// names (username or address), if there is one. Answers the same, and
    /// as fast, either way: the work happens after the answer.
    pub fn request_password_reset(&self, login: &str, from: ClientAddr) -> Result<()> {
        self.throttles
            .charge(Operation::PasswordResetRequest, Caller::address(from))?;
        self.codes
            .mail_reset_code_later(normalize_login(login), false);
        Ok(())
    }

    /// As `request_password_reset`, only for a reset already asked for.
    pub fn resend_password_reset(&self, login: &str, from: ClientAddr) -> Result<()> {
        self.throttles
            .charge(Operation::PasswordResetRequest, Caller::address(from))?;
        self.codes
            .mail_reset_code_later(normalize_login(login), true);
        Ok(())
    }

    /// Exchanges a right reset code for a single-use reset token.
    /// A refusal takes at least `REFUSAL_FLOOR`, whichever way it was
    /// reached (no account, no live code, a wrong one): how long the answer
    /// took must not tell a stranger which.
    pub async fn confirm_password_reset(
        &self,
        login: &str,
        code: &str,
        from: ClientAddr,
    ) -> Result<String> {
        self.throttles
            .charge(Operation::PasswordResetConfirm, Caller::address(from))?;
        let started = tokio::time::Instant::now();
        let confirmed = self.try_confirm_password_reset(login, code, from).await;
        if matches!(confirmed, Err(Error::Forbidden(_))) {
            tokio::time::sleep_until(started + REFUSAL_FLOOR).await;
        }
        confirmed
    }

    async fn try_confirm_password_reset(
        &self,
        login: &str,
        code: &str,
        from: ClientAddr,
    ) -> Result<String> {
        let account = self
            .store
            .account_by_login(&normalize_login(login))
            .await?
            .ok_or(Error::Forbidden(BAD_CODE))?;
        let mailed_to = self
            .codes
            .spend_code(
                account.user.id,
                CodePurpose::PasswordReset,
                code,
                Some(from),
            )
            .await?;
        if account.email.as_deref() != Some(mailed_to.as_str())
            || !account.email_verified
            || self.codes.suspended(account.user.id).await?
        {
            return Err(Error::Forbidden(BAD_CODE));
        }
        let token = tokens::random_token(32);
        let now = Timestamp::now();
        self.store
            .put_code(&AccountCode {
                user_id: account.user.id,
                purpose: CodePurpose::ResetToken,
                secret_hash: tokens::hash_secret(&token),
                email: mailed_to,
                expires_at: now.plus_seconds(self.codes.limits.reset_token_ttl_secs),
                attempts_left: 1,
                sent_at: now,
            })
            .await?;
        Ok(token)
    }

    /// Sets the new password with a reset token: every login of the account
    /// ends, and its address is told.
    pub async fn complete_password_reset(
        &self,
        reset_token: &str,
        new_password: String,
        from: ClientAddr,
    ) -> Result<()> {
        self.throttles
            .charge(Operation::PasswordResetComplete, Caller::address(from))?;
        let new_password = Password::parse(new_password).map_err(new_password_field)?;
        let stored = self
            .store
            .code_by_secret(CodePurpose::ResetToken, &tokens::hash_secret(reset_token))
            .await?
            .filter(|c| Timestamp::now() < c.expires_at)
            .ok_or(Error::Forbidden(BAD_RESET_TOKEN))?;
        if !self
            .store
            .delete_code(stored.user_id, CodePurpose::ResetToken)
            .await?
        {
            return Err(Error::Forbidden(BAD_RESET_TOKEN));
        }
        let password_hash = self.passwords.hash(new_password.expose()).await?;
        if !self
            .store
            .set_password_hash(stored.user_id, &password_hash, Timestamp::now())
            .await?
        {
            return Err(Error::Forbidden(BAD_RESET_TOKEN));
        }
        self.end_sessions(stored.user_id, SessionsToEnd::AllBut(None))
            .await?;
        let account = self.account(stored.user_id).await?;
        self.codes.mail.send(templates::password_changed(
            &stored.email,
            &account.user.username,
        ));
        Ok(())
    }
}

/// Usernames and addresses are both stored lower-case.
fn normalize_login(login: &str) -> String {
    login
        .trim()
        .chars()
        .take(254)
        .collect::<String>()
        .to_lowercase()
}
