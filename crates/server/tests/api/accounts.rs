//! Registration, login, token rotation, logout.

use palaver_client::ClientError;
use reqwest::Method;

use crate::helpers::*;

fn api_error(result: Result<impl std::fmt::Debug, ClientError>) -> (u16, String, String) {
    match result.expect_err("expected an API error") {
        ClientError::Api {
            status,
            code,
            message,
        } => (status, code, message),
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn register_returns_the_user_and_folds_username_case() {
    let app = spawn_app().await;
    let user = app
        .client
        .register("Alice", PASSWORD, Some("Alice A."))
        .await
        .unwrap();
    assert_eq!(user.username.as_deref(), Some("alice"));
    assert_eq!(user.display_name, "Alice A.");
    assert!(user.id > 0);
    assert!(user.created_at.ends_with('Z'));

    let (status, code, _) = api_error(app.client.register("ALICE", PASSWORD, None).await);
    assert_eq!((status, code.as_str()), (409, "conflict"));
}

#[tokio::test]
async fn register_rejects_bad_usernames_and_short_passwords_naming_the_field() {
    let app = spawn_app().await;
    let (status, code, message) = api_error(app.client.register("al", PASSWORD, None).await);
    assert_eq!((status, code.as_str()), (422, "invalid_input"));
    assert!(message.starts_with("username"), "{message}");

    let (status, _, message) = api_error(app.client.register("has space", PASSWORD, None).await);
    assert_eq!(status, 422);
    assert!(message.starts_with("username"), "{message}");

    let (status, _, message) = api_error(app.client.register("alice", "short", None).await);
    assert_eq!(status, 422);
    assert!(message.starts_with("password"), "{message}");
}

#[tokio::test]
async fn malformed_json_is_400_and_a_missing_field_is_422_naming_it() {
    let app = spawn_app().await;
    let response = app
        .client
        .request(Method::POST, "/api/v1/auth/register")
        .header("content-type", "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");

    let response = app
        .client
        .request(Method::POST, "/api/v1/auth/register")
        .json(&serde_json::json!({"username": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_with_the_error_shape() {
    let app = spawn_app().await;
    // Just over axum's 2 MiB default, so the whole body fits in the
    // loopback socket's buffers and the client reads the answer.
    let padding = "x".repeat(2 * 1024 * 1024 + 1024);
    let response = app
        .client
        .request(Method::POST, "/api/v1/auth/register")
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{padding}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
}

#[tokio::test]
async fn login_gives_tokens_and_the_same_401_for_unknown_user_and_wrong_password() {
    let app = spawn_app().await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    let tokens = app.client.login("alice", PASSWORD).await.unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 900);
    assert_eq!(tokens.user.username.as_deref(), Some("alice"));
    let me = app
        .client
        .with_token(&tokens.access_token)
        .me()
        .await
        .unwrap();
    assert_eq!(me.id, tokens.user.id);

    let wrong_password = api_error(app.client.login("alice", "not the password").await);
    let unknown_user = api_error(app.client.login("nobody", PASSWORD).await);
    assert_eq!(wrong_password.0, 401);
    assert_eq!(wrong_password, unknown_user);
}

#[tokio::test]
async fn protected_routes_need_a_valid_bearer_token() {
    let app = spawn_app().await;
    let (status, code, _) = api_error(app.client.me().await);
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    let (status, _, _) = api_error(app.client.with_token("not-a-jwt").me().await);
    assert_eq!(status, 401);
}

#[tokio::test]
async fn refresh_rotates_and_reusing_a_spent_token_revokes_the_whole_chain() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;

    let second = app.client.refresh(&alice.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, alice.refresh_token);
    app.client
        .with_token(&second.access_token)
        .me()
        .await
        .unwrap();

    // The first token is spent: presenting it again is re-use.
    let (status, _, _) = api_error(app.client.refresh(&alice.refresh_token).await);
    assert_eq!(status, 401);
    // ...which revoked the live descendant too.
    let (status, _, _) = api_error(app.client.refresh(&second.refresh_token).await);
    assert_eq!(status, 401);
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    app.client.logout(&alice.refresh_token).await.unwrap();
    let (status, _, _) = api_error(app.client.refresh(&alice.refresh_token).await);
    assert_eq!(status, 401);
    // Logging out twice (or with an unknown token) is fine and reveals nothing.
    app.client.logout(&alice.refresh_token).await.unwrap();
    app.client.logout("unknown").await.unwrap();
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_the_error_body() {
    let app = spawn_app().await;
    let response = app
        .client
        .request(Method::GET, "/api/v1/nothing")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let response = app
        .client
        .request(Method::DELETE, "/api/v1/auth/login")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
    let readiness: serde_json::Value = app
        .client
        .request(Method::GET, "/readyz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        readiness["bus"], "local",
        "a single node runs the in-process bus"
    );
}

#[tokio::test]
async fn metrics_count_connections_stored_messages_and_deliveries() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut ws = bob.connect().await;
    let before = scrape(&app).await;
    alice
        .client
        .post_message(room.id, "counted", None)
        .await
        .unwrap();
    next_message(&mut ws).await;
    let after = scrape(&app).await;

    // Other tests in this process share the recorder: compare, don't equate.
    assert!(
        after[r#"palaver_connections{transport="websocket"}"#] >= 1.0,
        "{after:?}"
    );
    for counter in ["palaver_messages_stored_total", "palaver_deliveries_total"] {
        assert!(
            after[counter] >= before.get(counter).copied().unwrap_or(0.0) + 1.0,
            "{counter}: {before:?} → {after:?}"
        );
    }
    assert!(
        after.contains_key("palaver_store_append_seconds_count"),
        "{after:?}"
    );
    let batched = "palaver_store_append_batch_messages_sum";
    assert!(
        after[batched] >= before.get(batched).copied().unwrap_or(0.0) + 1.0,
        "{batched}: {before:?} → {after:?}"
    );
}

/// The metrics listener's samples as name → value, for unlabelled samples.
async fn scrape(app: &TestApp) -> std::collections::HashMap<String, f64> {
    let text = app.metrics_text().await;
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn metrics_are_not_served_on_the_public_listener() {
    let app = spawn_app().await;
    let public = app
        .client
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let body: serde_json::Value = public.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // The connection that asked is counted on the metrics listener.
    assert!(app
        .metrics_text()
        .await
        .contains("palaver_connections_open"));
}

#[tokio::test]
async fn the_web_client_is_served_from_the_binary_with_a_strict_policy() {
    let app = spawn_app().await;
    let page = app.client.request(Method::GET, "/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/assets/app.js">"#));

    for (asset, kind) in [
        ("app.js", "text/javascript"),
        ("api.js", "text/javascript"),
        ("socket.js", "text/javascript"),
        ("style.css", "text/css"),
    ] {
        let response = app
            .client
            .request(Method::GET, &format!("/assets/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert!(!response.text().await.unwrap().is_empty());
    }
    let missing = app
        .client
        .request(Method::GET, "/assets/nope.js")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}
