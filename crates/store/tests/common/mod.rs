//! What the store's two-engine checks share (`conditions.rs`, `admin.rs`):
//! running each check on a fresh SQLite file and a fresh PostgreSQL
//! database, and the rows they start from.

#![allow(dead_code)]

use palaver_domain::model::User;
use palaver_domain::store::{NewRoom, NewSession, NewUser, Store};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use palaver_store::{PostgresStore, SqliteStore, StoreOptions};
use sqlx::Connection;

/// Each check, on a fresh SQLite file and a fresh PostgreSQL database named
/// `$prefix` and the check.
macro_rules! on_both_engines {
    ($prefix:literal: $($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (_dir, store) = crate::common::sqlite().await;
                super::$check(std::sync::Arc::new(store)).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = crate::common::postgres($prefix, stringify!($check)).await;
                super::$check(std::sync::Arc::new(store)).await;
            })*
        }
    };
}
pub(crate) use on_both_engines;

pub async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("p.db"), &StoreOptions::default())
        .await
        .unwrap();
    (dir, store)
}

/// A store on a database of its own on the test server, recreated for each check.
pub async fn postgres(prefix: &str, check: &str) -> PostgresStore {
    let admin_url = std::env::var("PALAVER_TEST_POSTGRES_URL")
        .expect("PALAVER_TEST_POSTGRES_URL names a PostgreSQL server (./scripts/test sets it)");
    let name = format!("{prefix}_{}", &check[..check.len().min(40)]);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    PostgresStore::open(url.as_str(), &StoreOptions::default())
        .await
        .unwrap()
}

pub async fn user(store: &dyn Store, name: &str) -> User {
    let new = NewUser {
        username: name.into(),
        email: None,
        display_name: name.into(),
        password_hash: "x".into(),
        created_at: Timestamp(0),
    };
    store.insert_user(new).await.unwrap()
}

pub async fn room(store: &dyn Store, owner: UserId, code: &str) -> RoomId {
    let new = NewRoom {
        name: "r".into(),
        code: code.into(),
        password_hash: None,
        owner_id: owner,
        created_at: Timestamp(0),
    };
    store.insert_room(new).await.unwrap().value.id
}

/// A login of `user` made at `at`.
pub fn session(id: &str, user: UserId, at: i64) -> NewSession {
    NewSession {
        id: id.into(),
        user_id: user,
        token_hash: format!("hash of {id}"),
        user_agent: None,
        created_at: Timestamp(at),
        expires_at: Timestamp(i64::MAX / 2),
    }
}
