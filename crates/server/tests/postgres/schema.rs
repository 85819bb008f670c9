//! Migrations on PostgreSQL: `palaver migrate`, and refusing a newer schema.

use sqlx::Connection;

use crate::helpers::*;

async fn palaver(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_palaver"))
        .args(args)
        .output()
        .await
        .expect("palaver runs")
}

#[tokio::test]
async fn migrate_creates_the_schema_and_a_newer_schema_is_refused() {
    let database = TestDatabase::postgres().await;
    let url = database.url.clone().unwrap();

    let output = palaver(&["migrate", "--database-url", &url]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("up to date"));
    // Running it again changes nothing and succeeds.
    assert!(palaver(&["migrate", "--database-url", &url])
        .await
        .status
        .success());

    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'from a future palaver', TRUE, '\\x00'::bytea, 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let output = palaver(&["migrate", "--database-url", &url]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("newer than this palaver"), "{stderr}");
    assert!(
        !stderr.contains("postgres:postgres@"),
        "the password must not be printed: {stderr}"
    );
}
