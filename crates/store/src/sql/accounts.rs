//! Users and their refresh tokens.

use palaver_domain::events::DomainEvent;
use palaver_domain::model::{
    Account, AccountCode, CodePurpose, User, UserCredentials, DELETED_USER_NAME,
};
use palaver_domain::store::{
    AccountDeletion, AccountRemoval, AccountStore, Committed, LoginFailures, NewSession, NewUser,
    RoomName, Rotation, SessionRecord, SessionsToEnd, StoreError, StoreResult,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};

use super::decode::{self, Columns};
use super::{Engine, RowsAffected, SqlStore, USER_COLUMNS};
use crate::errors::{conflict_or, map_err};

#[async_trait::async_trait]
impl<E> AccountStore for SqlStore<E>
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
    async fn insert_user(&self, user: NewUser) -> StoreResult<User> {
        let _turn = self.engine.write_turn().await;
        // A deleted account's former username is not free again before its
        // time; checked in the insert itself, so no deletion slips between.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, password_hash, created_at, email)
             SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS BIGINT),
                    CAST($5 AS TEXT)
             WHERE NOT EXISTS (SELECT 1 FROM users
                               WHERE retired_username = $1 AND username_free_at > $4)
             RETURNING id",
        )
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.created_at.0)
        .bind(user.email.as_deref())
        .fetch_optional(&self.writer)
        .await
        .map_err(|e| {
            let what = if unique_violation_of(&e, "email") {
                "email"
            } else {
                "username"
            };
            conflict_or(e, what)
        })?;
        let Some(id) = id else {
            return Err(StoreError::Conflict("username"));
        };
        Ok(User {
            id: UserId(id),
            username: user.username,
            display_name: user.display_name,
            created_at: user.created_at,
            deleted: false,
        })
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {} FROM users u WHERE u.id = $1", USER_COLUMNS);
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.map(|r| decode::user(&r)).transpose()
    }

    async fn account(&self, user: UserId) -> StoreResult<Option<Account>> {
        let sql = format!(
            "SELECT {}, u.email, u.email_verified_at FROM users u WHERE u.id = $1",
            USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(user.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.map(|r| account(&r)).transpose()
    }

    async fn account_by_login(&self, login: &str) -> StoreResult<Option<Account>> {
        let sql = format!(
            "SELECT {}, u.email, u.email_verified_at FROM users u
             WHERE (u.username = $1 OR u.email = $1) AND u.deleted_at IS NULL
             ORDER BY u.id LIMIT 1",
            USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(login)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.map(|r| account(&r)).transpose()
    }

    async fn set_email(&self, user: UserId, email: Option<&str>) -> StoreResult<bool> {
        let _turn = self.engine.write_turn().await;
        let updated =
            sqlx::query("UPDATE users SET email = $1, email_verified_at = NULL WHERE id = $2 AND deleted_at IS NULL")
                .bind(email)
                .bind(user.0)
                .execute(&self.writer)
                .await
                .map_err(|e| conflict_or(e, "email"))?
                .rows_affected();
        Ok(updated > 0)
    }

    async fn mark_email_verified(
        &self,
        user: UserId,
        email: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let _turn = self.engine.write_turn().await;
        let updated =
            sqlx::query("UPDATE users SET email_verified_at = $1 WHERE id = $2 AND email = $3")
                .bind(at.0)
                .bind(user.0)
                .bind(email)
                .execute(&self.writer)
                .await
                .map_err(map_err)?
                .rows_affected();
        Ok(updated > 0)
    }

    async fn put_code(&self, code: &AccountCode) -> StoreResult<()> {
        let _turn = self.engine.write_turn().await;
        sqlx::query(
            "INSERT INTO account_codes
                 (user_id, purpose, secret_hash, email, expires_at, attempts_left, sent_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (user_id, purpose) DO UPDATE SET
                 secret_hash = $3, email = $4, expires_at = $5, attempts_left = $6, sent_at = $7",
        )
        .bind(code.user_id.0)
        .bind(code.purpose.as_str())
        .bind(&code.secret_hash)
        .bind(&code.email)
        .bind(code.expires_at.0)
        .bind(i64::from(code.attempts_left))
        .bind(code.sent_at.0)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn code(&self, user: UserId, purpose: CodePurpose) -> StoreResult<Option<AccountCode>> {
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS} FROM account_codes WHERE user_id = $1 AND purpose = $2"
        ))
        .bind(user.0)
        .bind(purpose.as_str())
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        row.map(|r| account_code(&r, purpose)).transpose()
    }

    async fn code_by_secret(
        &self,
        purpose: CodePurpose,
        secret_hash: &str,
    ) -> StoreResult<Option<AccountCode>> {
        let row = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS} FROM account_codes WHERE purpose = $1 AND secret_hash = $2"
        ))
        .bind(purpose.as_str())
        .bind(secret_hash)
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        row.map(|r| account_code(&r, purpose)).transpose()
    }

    async fn take_code_attempt(
        &self,
        user: UserId,
        purpose: CodePurpose,
        secret_hash: &str,
    ) -> StoreResult<bool> {
        let _turn = self.engine.write_turn().await;
        // One conditional statement: of concurrent tries, only as many as
        // the secret has left find `attempts_left > 0`.
        let taken = sqlx::query(
            "UPDATE account_codes SET attempts_left = attempts_left - 1
             WHERE user_id = $1 AND purpose = $2 AND secret_hash = $3 AND attempts_left > 0",
        )
        .bind(user.0)
        .bind(purpose.as_str())
        .bind(secret_hash)
        .execute(&self.writer)
        .await
        .map_err(map_err)?
        .rows_affected()
            > 0;
        Ok(taken)
    }

    async fn delete_code(&self, user: UserId, purpose: CodePurpose) -> StoreResult<bool> {
        let _turn = self.engine.write_turn().await;
        let deleted = sqlx::query("DELETE FROM account_codes WHERE user_id = $1 AND purpose = $2")
            .bind(user.0)
            .bind(purpose.as_str())
            .execute(&self.writer)
            .await
            .map_err(map_err)?
            .rows_affected();
        Ok(deleted > 0)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = format!(
            "SELECT {} FROM users u WHERE u.username = $1 AND u.deleted_at IS NULL",
            USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.map(|r| decode::user(&r)).transpose()
    }

    async fn credentials_by_username(
        &self,
        username: &str,
    ) -> StoreResult<Option<UserCredentials>> {
        let sql = format!(
            "SELECT {}, u.password_hash FROM users u
             WHERE u.username = $1 AND u.deleted_at IS NULL",
            USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.map(|r| credentials(&r)).transpose()
    }

    async fn credentials_by_id(&self, id: UserId) -> StoreResult<Option<UserCredentials>> {
        let sql = format!(
            "SELECT {}, u.password_hash FROM users u WHERE u.id = $1 AND u.deleted_at IS NULL",
            USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?;
        row.map(|r| credentials(&r)).transpose()
    }

    async fn set_password_hash(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (_turn, mut tx) = self.begin_write().await?;
        // The update takes the account's row lock, under which suspensions
        // commit: the check after it sees one that committed meanwhile.
        let updated =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(password_hash)
                .bind(user.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        let suspended: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM suspensions
             WHERE user_id = $1 AND (ends_at IS NULL OR ends_at > $2)",
        )
        .bind(user.0)
        .bind(now.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if suspended.is_some() {
            return Ok(false);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn search_users(&self, prefix: &str, after: &str, limit: u32) -> StoreResult<Vec<User>> {
        // LIKE with the wildcards of the prefix escaped, so `a_b` means "a_b".
        let escaped: String = prefix
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("{escaped}%");
        let sql = format!(
            "SELECT {} FROM users u
             WHERE (u.username LIKE $1 ESCAPE '\\' OR lower(u.display_name) LIKE $1 ESCAPE '\\')
               AND u.username > $2 AND u.deleted_at IS NULL
             ORDER BY u.username LIMIT $3",
            USER_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(pattern)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?;
        rows.iter().map(decode::user).collect()
    }

    async fn update_display_name(
        &self,
        user: UserId,
        display_name: &str,
    ) -> StoreResult<Option<User>> {
        let _turn = self.engine.write_turn().await;
        let updated =
            sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(display_name)
                .bind(user.0)
                .execute(&self.writer)
                .await
                .map_err(map_err)?
                .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        self.user_by_id(user).await
    }

    async fn record_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()> {
        let _turn = self.engine.write_turn().await;
        sqlx::query(
            "UPDATE users SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $1)",
        )
        .bind(at.0)
        .bind(user.0)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_account(
        &self,
        removal: AccountRemoval,
    ) -> StoreResult<Option<Committed<AccountDeletion>>> {
        let (_turn, mut tx) = self.begin_write().await?;
        match self.delete_account_in(&mut tx, removal).await? {
            None => Ok(None),
            Some((deletion, events)) => Ok(Some(
                self.commit_events(tx, deletion, events, removal.now)
                    .await?,
            )),
        }
    }

    async fn insert_session(&self, session: NewSession) -> StoreResult<bool> {
        let (_turn, mut tx) = self.begin_write().await?;
        // The account's row, shared (PostgreSQL), which its deletion locks
        // first: a deletion running now commits before this reads the row
        // (and so ends no session it cannot see), or waits for this one to
        // commit (and ends it).
        let alive: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL{}",
            E::FOR_SHARE
        ))
        .bind(session.user_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if alive.is_none() {
            return Ok(false);
        }
        // A statement of its own, after the lock: a suspension commits
        // under the same row's lock, so one that committed while this
        // waited is seen here, and one that waits for this commit ends the
        // session made here.
        let suspended: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM suspensions
             WHERE user_id = $1 AND (ends_at IS NULL OR ends_at > $2)",
        )
        .bind(session.user_id.0)
        .bind(session.created_at.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if suspended.is_some() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent)
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(&session.id)
        .bind(session.user_id.0)
        .bind(session.created_at.0)
        .bind(session.expires_at.0)
        .bind(session.user_agent.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.token_hash)
        .bind(&session.id)
        .bind(session.user_id.0)
        .bind(session.created_at.0)
        .bind(session.expires_at.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next_hash: &str,
        next_expires_at: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Rotation> {
        let (_turn, mut tx) = self.begin_write().await?;
        // The session's row lock first (PostgreSQL), as ending a session
        // takes it before revoking its tokens: an ending that commits first
        // is seen here, and one that waits for this commit revokes the token
        // made here too. An ended session (its account's deletion included)
        // rotates nothing.
        let family: Option<String> =
            sqlx::query_scalar("SELECT family FROM refresh_tokens WHERE token_hash = $1")
                .bind(presented_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some(family) = family else {
            return Ok(Rotation::Invalid);
        };
        let live: Option<String> = sqlx::query_scalar(&format!(
            "SELECT id FROM sessions WHERE id = $1 AND revoked_at IS NULL{}",
            E::FOR_UPDATE
        ))
        .bind(&family)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if live.is_none() {
            return Ok(Rotation::Invalid);
        }
        // Row lock (PostgreSQL) so two concurrent presentations of one
        // token cannot both rotate it; SQLite's single writer serializes anyway.
        let sql = format!(
            "SELECT family, user_id, expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1{}",
            E::FOR_UPDATE
        );
        let row = sqlx::query(&sql)
            .bind(presented_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let family: String = row.try_get("family").map_err(map_err)?;
        let user_id: i64 = row.try_get("user_id").map_err(map_err)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(map_err)?;
        let used_at: Option<i64> = row.try_get("used_at").map_err(map_err)?;
        let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(map_err)?;

        let rotation = if revoked_at.is_some() || expires_at <= now.0 {
            Rotation::Invalid
        } else if used_at.is_some() {
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
            )
            .bind(now.0)
            .bind(&family)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            Rotation::ReuseDetected {
                user_id: UserId(user_id),
                family,
            }
        } else {
            sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
                .bind(now.0)
                .bind(presented_hash)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(next_hash)
            .bind(&family)
            .bind(user_id)
            .bind(now.0)
            .bind(next_expires_at.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            sqlx::query("UPDATE sessions SET last_used_at = $1, expires_at = $2 WHERE id = $3")
                .bind(now.0)
                .bind(next_expires_at.0)
                .bind(&family)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            Rotation::Rotated {
                user_id: UserId(user_id),
                family,
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(rotation)
    }

    async fn end_session_of_token(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Committed<Option<String>>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT s.id, s.user_id FROM sessions s
             JOIN refresh_tokens t ON t.family = s.id
             WHERE t.token_hash = $1 AND s.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(Committed::quiet(None));
        };
        let id: String = row.try_get("id").map_err(map_err)?;
        let user: i64 = row.try_get("user_id").map_err(map_err)?;
        self.end_sessions_in(&mut tx, std::slice::from_ref(&id), now)
            .await?;
        let event = DomainEvent::SessionsEnded {
            user_id: UserId(user),
            sessions: vec![id.clone()],
        };
        self.commit_events(tx, Some(id), vec![event], now).await
    }

    async fn end_sessions(
        &self,
        user: UserId,
        which: SessionsToEnd,
        now: Timestamp,
    ) -> StoreResult<Committed<Vec<String>>> {
        let (_turn, mut tx) = self.begin_write().await?;
        let ended = self
            .end_live_sessions_in(&mut tx, user, &which, now)
            .await?;
        if ended.is_empty() {
            return Ok(Committed::quiet(ended));
        }
        let event = DomainEvent::SessionsEnded {
            user_id: user,
            sessions: ended.clone(),
        };
        self.commit_events(tx, ended, vec![event], now).await
    }

    async fn sessions(&self, user: UserId, now: Timestamp) -> StoreResult<Vec<SessionRecord>> {
        let rows = sqlx::query(
            "SELECT id, created_at, last_used_at, user_agent FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
             ORDER BY created_at DESC, id",
        )
        .bind(user.0)
        .bind(now.0)
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(SessionRecord {
                    id: row.text("id")?,
                    created_at: Timestamp(row.int("created_at")?),
                    last_used_at: Timestamp(row.int("last_used_at")?),
                    user_agent: row.text_or_null("user_agent")?,
                })
            })
            .collect()
    }

    async fn session_is_live(
        &self,
        user: UserId,
        session: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        self.engine.session_is_live(self, user, session, now).await
    }

    async fn login_failures(&self, subject: &str) -> StoreResult<Option<LoginFailures>> {
        let row =
            sqlx::query("SELECT failures, last_failed_at FROM login_failures WHERE subject = $1")
                .bind(subject)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
        row.map(|row| {
            let failures: i64 = row.try_get("failures").map_err(map_err)?;
            let last_failed_at: i64 = row.try_get("last_failed_at").map_err(map_err)?;
            Ok(LoginFailures {
                count: u32::try_from(failures).unwrap_or(u32::MAX),
                last_failed_at: Timestamp(last_failed_at),
            })
        })
        .transpose()
    }

    async fn charge_login_attempt(
        &self,
        subject: &str,
        now: Timestamp,
        forget_before: Timestamp,
    ) -> StoreResult<Option<LoginFailures>> {
        let _turn = self.engine.write_turn().await;
        // One statement: the row's lock orders attempts running at once, and
        // each returns what its predecessor left (the right-hand sides read
        // the row as it was).
        let row: (i64, Option<i64>) = sqlx::query_as(
            "INSERT INTO login_failures (subject, failures, last_failed_at, previous_failed_at)
             VALUES ($1, 1, $2, NULL)
             ON CONFLICT (subject) DO UPDATE SET
                 failures = CASE WHEN login_failures.last_failed_at < $3 THEN 1
                                 ELSE login_failures.failures + 1 END,
                 previous_failed_at = CASE WHEN login_failures.last_failed_at < $3 THEN NULL
                                           ELSE login_failures.last_failed_at END,
                 last_failed_at = $2
             RETURNING failures, previous_failed_at",
        )
        .bind(subject)
        .bind(now.0)
        .bind(forget_before.0)
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        sqlx::query("DELETE FROM login_failures WHERE last_failed_at < $1")
            .bind(forget_before.0)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        let (failures, previous) = row;
        Ok(previous.map(|at| LoginFailures {
            count: (failures - 1) as u32,
            last_failed_at: Timestamp(at),
        }))
    }

    async fn clear_login_failures(&self, subject: &str) -> StoreResult<()> {
        let _turn = self.engine.write_turn().await;
        sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }
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
    /// `AccountStore::delete_account` in `tx`, which the caller commits
    /// with the events: `None` when there is no such live account; a
    /// `LastOwner` refusal changed nothing.
    pub(super) async fn delete_account_in(
        &self,
        tx: &mut sqlx::Transaction<'_, E::Db>,
        removal: AccountRemoval,
    ) -> StoreResult<Option<(AccountDeletion, Vec<DomainEvent>)>> {
        let AccountRemoval {
            user,
            erase,
            username_free_at,
            now,
        } = removal;
        // Joins and logins hold the row shared: each commits before this
        // reads on, or waits for the deletion and finds the account gone.
        // Not a key lock, so a ban (its row refers to this one) that holds a
        // room lock taken below can still commit.
        let live: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL{}",
            E::FOR_NO_KEY_UPDATE
        ))
        .bind(user.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(map_err)?;
        if live.is_none() {
            return Ok(None);
        }
        // Its rooms' row locks (PostgreSQL), in id order as appends take
        // them: a transfer, a ban or a leave in one of them commits before
        // its memberships are read here (so a transfer to this account
        // makes it a last owner), or waits for the deletion. Joins take the
        // account's row lock first, held here already.
        sqlx::query(&format!(
            "SELECT id FROM rooms
             WHERE id IN (SELECT room_id FROM members WHERE user_id = $1) ORDER BY id{}",
            E::FOR_UPDATE
        ))
        .bind(user.0)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_err)?;
        let memberships = sqlx::query(
            "SELECT mb.room_id, mb.role, r.name,
                    (SELECT COUNT(*) FROM members o
                     WHERE o.room_id = mb.room_id AND o.user_id <> $1) AS others
             FROM members mb JOIN rooms r ON r.id = mb.room_id
             WHERE mb.user_id = $1 ORDER BY mb.room_id",
        )
        .bind(user.0)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_err)?;
        let mut last_owner = Vec::new();
        let mut rooms = Vec::new();
        for row in &memberships {
            let room = RoomId(row.int("room_id")?);
            let others = row.int("others")?;
            if others > 0 && row.text("role")? == "owner" {
                last_owner.push(RoomName {
                    id: room,
                    name: row.text("name")?,
                });
            }
            rooms.push((room, others));
        }
        if !last_owner.is_empty() {
            return Ok(Some((AccountDeletion::LastOwner(last_owner), Vec::new())));
        }
        let mut events = vec![DomainEvent::UserDeleted {
            user_id: user,
            rooms: rooms.iter().map(|(room, _)| *room).collect(),
            erased: erase,
        }];
        for (room, others) in rooms {
            if others == 0 {
                // Nobody is left to see it.
                self.delete_room_in(tx, room).await?;
                events.push(DomainEvent::RoomDeleted {
                    room_id: room,
                    reason: None,
                });
            } else {
                sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
                    .bind(room.0)
                    .bind(user.0)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?;
                events.push(DomainEvent::MemberLeft {
                    room_id: room,
                    user_id: user,
                });
            }
        }
        if erase {
            sqlx::query(
                "UPDATE messages SET body = '', deleted_at = $2
                 WHERE sender_id = $1 AND deleted_at IS NULL",
            )
            .bind(user.0)
            .bind(now.0)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        }
        let sessions = self
            .end_live_sessions_in(tx, user, &SessionsToEnd::AllBut(None), now)
            .await?;
        if !sessions.is_empty() {
            events.push(DomainEvent::SessionsEnded {
                user_id: user,
                sessions,
            });
        }
        // A deleted account's reactions go with it (docs/protocol.md):
        // they would count someone no one can be shown.
        sqlx::query("DELETE FROM reactions WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        // An admin no more; a suspension goes with the account, and so do
        // the mentions of it (those it made go with its messages when they
        // are erased: a deleted message mentions no one, 0016_mentions.sql).
        for sql in [
            "DELETE FROM admins WHERE user_id = $1",
            "DELETE FROM suspensions WHERE user_id = $1",
            "DELETE FROM mentions WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(user.0)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query("DELETE FROM account_codes WHERE user_id = $1")
            .bind(user.0)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "UPDATE users SET retired_username = username, username_free_at = $2,
                 username = '~' || CAST(id AS TEXT), display_name = $3, password_hash = '',
                 email = NULL, email_verified_at = NULL, deleted_at = $4
             WHERE id = $1",
        )
        .bind(user.0)
        .bind(username_free_at.0)
        .bind(DELETED_USER_NAME)
        .bind(now.0)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        // Former usernames free again are forgotten.
        sqlx::query(
            "UPDATE users SET retired_username = NULL, username_free_at = NULL
             WHERE retired_username IS NOT NULL AND username_free_at <= $1",
        )
        .bind(now.0)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
        Ok(Some((AccountDeletion::Deleted, events)))
    }

    /// Ends `user`'s live sessions that `which` names, in `tx`; their ids.
    pub(super) async fn end_live_sessions_in(
        &self,
        tx: &mut sqlx::Transaction<'_, E::Db>,
        user: UserId,
        which: &SessionsToEnd,
        now: Timestamp,
    ) -> StoreResult<Vec<String>> {
        let live = sqlx::query_scalar::<_, String>(
            "SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(user.0)
        .fetch_all(&mut **tx)
        .await
        .map_err(map_err)?;
        let ended: Vec<String> = live
            .into_iter()
            .filter(|id| match which {
                SessionsToEnd::One(one) => id == one,
                SessionsToEnd::AllBut(keep) => Some(id) != keep.as_ref(),
            })
            .collect();
        self.end_sessions_in(tx, &ended, now).await?;
        Ok(ended)
    }

    /// Marks the sessions ended and revokes their refresh tokens.
    async fn end_sessions_in(
        &self,
        tx: &mut sqlx::Transaction<'_, E::Db>,
        ids: &[String],
        now: Timestamp,
    ) -> StoreResult<()> {
        for id in ids {
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now.0)
                .bind(id)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
            )
            .bind(now.0)
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        }
        Ok(())
    }
}

const CODE_COLUMNS: &str = "user_id, secret_hash, email, expires_at, attempts_left, sent_at";

fn account(row: &impl decode::Columns) -> StoreResult<Account> {
    Ok(Account {
        user: decode::user(row)?,
        email: row.text_or_null("email")?,
        email_verified: row.int_or_null("email_verified_at")?.is_some(),
    })
}

fn account_code(row: &impl decode::Columns, purpose: CodePurpose) -> StoreResult<AccountCode> {
    Ok(AccountCode {
        user_id: UserId(row.int("user_id")?),
        purpose,
        secret_hash: row.text("secret_hash")?,
        email: row.text("email")?,
        expires_at: Timestamp(row.int("expires_at")?),
        attempts_left: u32::try_from(row.int("attempts_left")?).unwrap_or(0),
        sent_at: Timestamp(row.int("sent_at")?),
    })
}

/// Whether `err` broke a uniqueness rule on `column` (PostgreSQL names the
/// constraint, SQLite the column).
fn unique_violation_of(err: &sqlx::Error, column: &str) -> bool {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.constraint().is_some_and(|c| c.contains(column)) || db.message().contains(column)
        }
        _ => false,
    }
}

fn credentials(row: &impl decode::Columns) -> StoreResult<UserCredentials> {
    Ok(UserCredentials {
        user: decode::user(row)?,
        password_hash: row.text("password_hash")?,
    })
}
