//! Stored allowances on both engines: a limit per window, all or none of a
//! set, a new window once one is over, concurrent takers never past the
//! limit, and nothing forgotten by a restart. The PostgreSQL runs need a
//! server (`./scripts/test` provides one; see `PALAVER_TEST_POSTGRES_URL`).

use std::sync::Arc;
use std::time::Duration;

use palaver_domain::store::{Allowance, Store};
use palaver_domain::time::Timestamp;
use sqlx::Connection;

macro_rules! on_both_engines {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $check() {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("p.db");
                let open = move || {
                    let path = path.clone();
                    async move {
                        Arc::new(SqliteStore::open(&path, &StoreOptions::default()).await.unwrap())
                            as Arc<dyn super::Store>
                    }
                };
                super::$check(open).await;
            })*
            use std::sync::Arc;
            use palaver_store::{SqliteStore, StoreOptions};
        }
        mod postgres {
            $(#[tokio::test]
            async fn $check() {
                let url = super::postgres_database(stringify!($check)).await;
                let open = move || {
                    let url = url.clone();
                    async move {
                        Arc::new(
                            PostgresStore::open(url.as_str(), &StoreOptions::default())
                                .await
                                .unwrap(),
                        ) as Arc<dyn super::Store>
                    }
                };
                super::$check(open).await;
            })*
            use std::sync::Arc;
            use palaver_store::{PostgresStore, StoreOptions};
        }
    };
}

on_both_engines!(
    a_limit_per_window_then_a_new_window,
    a_set_is_taken_all_or_none,
    concurrent_takers_never_pass_the_limit,
    a_restart_forgets_nothing,
);

const HOUR: Duration = Duration::from_secs(3600);

fn allowance(key: &str, limit: u32) -> Allowance {
    Allowance {
        key: key.into(),
        limit,
        window: HOUR,
    }
}

async fn a_limit_per_window_then_a_new_window<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    let store = open().await;
    let start = Timestamp(1_000_000);
    let key = [allowance("mail_to:a@example.com", 3)];
    for _ in 0..3 {
        assert_eq!(store.take_allowances(&key, start).await.unwrap(), None);
    }
    let refused = store
        .take_allowances(&key, start.plus(HOUR / 2))
        .await
        .unwrap();
    assert_eq!(
        refused,
        Some(start.plus(HOUR)),
        "spent until its window ends"
    );
    // Another key is another count.
    let other = [allowance("mail_to:b@example.com", 3)];
    assert_eq!(store.take_allowances(&other, start).await.unwrap(), None);
    // Once the window is over, a new one starts at this use.
    let later = start.plus(HOUR);
    assert_eq!(store.take_allowances(&key, later).await.unwrap(), None);
    assert_eq!(store.take_allowances(&key, later).await.unwrap(), None);
    assert_eq!(store.take_allowances(&key, later).await.unwrap(), None);
    assert_eq!(
        store.take_allowances(&key, later).await.unwrap(),
        Some(later.plus(HOUR))
    );
}

async fn a_set_is_taken_all_or_none<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    let store = open().await;
    let now = Timestamp(5_000_000);
    let account = allowance("codes:1", 5);
    let recipient = allowance("mail_to:a@example.com", 1);
    let both = [account.clone(), recipient.clone()];
    assert_eq!(store.take_allowances(&both, now).await.unwrap(), None);
    // The recipient's is spent: neither is taken.
    assert!(store.take_allowances(&both, now).await.unwrap().is_some());
    for _ in 0..4 {
        assert_eq!(
            store
                .take_allowances(std::slice::from_ref(&account), now)
                .await
                .unwrap(),
            None,
            "the refused set took none of the account's"
        );
    }
    assert!(store
        .take_allowances(std::slice::from_ref(&account), now)
        .await
        .unwrap()
        .is_some());
}

async fn concurrent_takers_never_pass_the_limit<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    let store = open().await;
    let now = Timestamp(9_000_000);
    let takes = (0..24).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .take_allowances(&[allowance("code_tries:x", 5)], now)
                .await
                .unwrap()
                .is_none()
        })
    });
    let mut taken = 0;
    for take in takes.collect::<Vec<_>>() {
        taken += usize::from(take.await.unwrap());
    }
    assert_eq!(taken, 5);
}

async fn a_restart_forgets_nothing<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    let now = Timestamp(2_000_000);
    let key = [allowance("email_changes:7", 2)];
    {
        let store = open().await;
        assert_eq!(store.take_allowances(&key, now).await.unwrap(), None);
        assert_eq!(store.take_allowances(&key, now).await.unwrap(), None);
    }
    let store = open().await;
    assert!(store.take_allowances(&key, now).await.unwrap().is_some());
}

/// The URL of a fresh database for `check` on the test server.
async fn postgres_database(check: &str) -> url::Url {
    let admin_url = std::env::var("PALAVER_TEST_POSTGRES_URL")
        .expect("PALAVER_TEST_POSTGRES_URL names a PostgreSQL server (./scripts/test sets it)");
    let name = format!("palaver_allowances_{}", &check[..check.len().min(40)]);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    url
}
