//! Signing keys shared through the database: nodes that were given no
//! secret accept each other's tokens, and `palaver keys rotate` reaches every
//! node without a restart.

use palaver_client::Client;

use crate::helpers::*;
use crate::node::Node;

async fn login(client: &Client, name: &str) -> String {
    client.login(name, PASSWORD).await.unwrap().access_token
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Runs `palaver keys <args>` on the database; its standard output.
async fn keys_command(database_url: &str, args: &[&str]) -> String {
    let data_dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_palaver"))
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("PALAVER_DATABASE_URL", database_url)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn nodes_started_together_share_one_key_and_a_rotation_reaches_them_all() {
    let database = TestDatabase::postgres().await;
    let url = database.url.clone().unwrap();
    // Started at once on an empty database: one first key between them.
    let (first, second) = tokio::join!(Node::start(&url, &[]), Node::start(&url, &[]));
    first
        .client
        .register("alice", PASSWORD, None)
        .await
        .unwrap();
    let from_first = login(&first.client, "alice").await;
    let from_second = login(&second.client, "alice").await;
    assert_eq!(kid(&from_first), kid(&from_second));
    second.client.with_token(&from_first).me().await.unwrap();
    first.client.with_token(&from_second).me().await.unwrap();
    let old_kid = kid(&from_first);

    let rotated = keys_command(&url, &["rotate", "--publish-ahead-secs", "0"]).await;
    let new_kid = rotated
        .lines()
        .find_map(|line| line.strip_prefix("added "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the new key is named")
        .to_owned();
    let listed = keys_command(&url, &["list"]).await;
    let state = |kid: &str| {
        listed
            .lines()
            .find(|line| line.starts_with(kid))
            .unwrap_or_else(|| panic!("{kid} not listed:\n{listed}"))
            .to_owned()
    };
    assert!(state(&new_kid).ends_with("signing"), "{listed}");
    assert!(state(&old_kid).contains("verifying until"), "{listed}");

    // A node started now signs with the new key; the running ones learn of
    // it from the first token that names it.
    let third = Node::start(&url, &[]).await;
    let from_third = login(&third.client, "alice").await;
    assert_eq!(kid(&from_third), new_kid);
    first.client.with_token(&from_third).me().await.unwrap();
    second.client.with_token(&from_third).me().await.unwrap();
    let published = first.client.jwks().await.unwrap();
    let kids: Vec<_> = published.keys.iter().map(|k| k.kid.as_str()).collect();
    assert!(
        kids.contains(&new_kid.as_str()) && kids.contains(&old_kid.as_str()),
        "{kids:?}"
    );
    // Tokens of the old key keep working until they expire.
    third.client.with_token(&from_first).me().await.unwrap();
    first.client.with_token(&from_first).me().await.unwrap();
}
