//! The cluster secret on both engines: the first candidate stored is the one
//! every later caller gets, so all nodes on one database sign and check the
//! bus's records with one key. The PostgreSQL run needs a server
//! (`PALAVER_TEST_POSTGRES_URL`; `./scripts/test` sets it).

use palaver_domain::bus_auth::{ClusterKey, Record};
use palaver_domain::store::Store;
use palaver_store::{PostgresStore, SqliteStore, StoreOptions};
use sqlx::Connection;

async fn the_first_candidate_is_kept(store: &dyn Store) {
    let first = store.cluster_secret("Zmlyc3Q=").await.unwrap();
    assert_eq!(first, "Zmlyc3Q=");
    assert_eq!(store.cluster_secret("c2Vjb25k").await.unwrap(), "Zmlyc3Q=");
}

async fn nodes_on_one_store_share_one_key(store: &dyn Store) {
    let record = Record {
        key: b"1",
        origin: b"n",
        payload: b"{}",
    };
    let a = ClusterKey::from_store(store).await.unwrap();
    let b = ClusterKey::from_store(store).await.unwrap();
    let mac = a.sign(record);
    assert!(b.verify(record, Some(mac.as_bytes())).is_ok());
}

#[tokio::test]
async fn sqlite() {
    for check in [0, 1] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db"), &StoreOptions::default())
            .await
            .unwrap();
        match check {
            0 => the_first_candidate_is_kept(&store).await,
            _ => nodes_on_one_store_share_one_key(&store).await,
        }
    }
}

#[tokio::test]
async fn postgres() {
    let admin_url = std::env::var("PALAVER_TEST_POSTGRES_URL")
        .expect("PALAVER_TEST_POSTGRES_URL names a PostgreSQL server (./scripts/test sets it)");
    for check in [0, 1] {
        let name = format!("palaver_cluster_secret_{check}");
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::query(&sql).execute(&mut admin).await.unwrap();
        }
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        let store = PostgresStore::open(url.as_str(), &StoreOptions::default())
            .await
            .unwrap();
        match check {
            0 => the_first_candidate_is_kept(&store).await,
            _ => nodes_on_one_store_share_one_key(&store).await,
        }
    }
}
