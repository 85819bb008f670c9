//! Logins as sessions: the list, ending one or all, changing the password,
//! and what ending a login does to its tokens and open WebSockets.

use palaver_client::{ClientError, WsConnection};
use palaver_protocol::close_code;
use reqwest::Method;

use crate::helpers::*;

/// A login of `username` made with this `User-Agent`.
async fn login_as_agent(app: &TestApp, username: &str, agent: &str) -> TestUser {
    let response = app
        .client
        .request(Method::POST, "/api/v1/auth/login")
        .header("user-agent", agent)
        .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tokens: palaver_client::types::TokenResponse = response.json().await.unwrap();
    TestUser {
        client: app.client.with_token(&tokens.access_token),
        user: tokens.user,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
    }
}

/// Everything an ended login could still try: its access token on REST and
/// WebSocket, its refresh token.
async fn assert_login_ended(app: &TestApp, login: &TestUser) {
    assert_eq!(status_and_code(login.client.me().await).0, 401);
    assert_eq!(
        status_and_code(app.client.refresh(&login.refresh_token).await).0,
        401
    );
    let connected = WsConnection::connect(
        &app.base_url,
        palaver_client::WsAuth::Header(login.access_token.clone()),
    )
    .await;
    let code = match connected {
        Ok(mut ws) => closed_with(&mut ws).await,
        Err(ClientError::Closed { code, .. }) => code,
        Err(other) => panic!("the socket neither opened nor closed: {other}"),
    };
    assert_eq!(code, close_code::SESSION_ENDED);
}

async fn closed_with(ws: &mut WsConnection) -> u16 {
    tokio::time::timeout(WAIT, ws.closed())
        .await
        .expect("the socket closes")
        .0
}

#[tokio::test]
async fn the_list_shows_each_login_with_its_agent_and_marks_the_calling_one() {
    let app = spawn_app().await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    let phone = login_as_agent(&app, "alice", "Palaver/1.0 (phone)").await;
    let laptop = login_as_agent(&app, "alice", "Mozilla/5.0 (laptop)").await;
    let bob = app.signup("bob").await;

    let sessions = laptop.client.sessions().await.unwrap();
    assert_eq!(
        sessions.len(),
        2,
        "bob's login is not alice's: {sessions:?}"
    );
    let agents: Vec<_> = sessions
        .iter()
        .map(|s| (s.user_agent.as_deref().unwrap(), s.current))
        .collect();
    assert_eq!(
        agents,
        [
            ("Mozilla/5.0 (laptop)", true),
            ("Palaver/1.0 (phone)", false)
        ],
        "newest first"
    );
    let from_phone = phone.client.sessions().await.unwrap();
    assert!(from_phone
        .iter()
        .any(|s| s.current && s.user_agent.as_deref() == Some("Palaver/1.0 (phone)")));
    assert_eq!(bob.client.sessions().await.unwrap().len(), 1);
}

#[tokio::test]
async fn refreshing_moves_last_used_and_keeps_the_same_session() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let before = alice.client.sessions().await.unwrap();
    let refreshed = app.client.refresh(&alice.refresh_token).await.unwrap();
    let after = app
        .client
        .with_token(&refreshed.access_token)
        .sessions()
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id);
    assert!(after[0].current);
    assert!(after[0].last_used_at >= before[0].last_used_at);
    assert_eq!(after[0].created_at, before[0].created_at);
}

#[tokio::test]
async fn ending_a_login_revokes_its_tokens_and_closes_its_sockets_with_4002() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let second = app.signup_existing("alice").await;
    let mut doomed = alice.client.connect().await.unwrap();
    let mut kept = second.client.connect().await.unwrap();
    let doomed_id = alice
        .client
        .sessions()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.current)
        .unwrap()
        .id;

    second.client.end_session(&doomed_id).await.unwrap();

    assert_eq!(closed_with(&mut doomed).await, close_code::SESSION_ENDED);
    assert_login_ended(&app, &alice).await;
    // The other login is untouched, its socket too.
    second.client.me().await.unwrap();
    assert!(kept.next_frame_within(QUIET).await.is_ok());
    assert_eq!(second.client.sessions().await.unwrap().len(), 1);
    // Ended already, and nobody else's: the same 404.
    let (status, code) = status_and_code(second.client.end_session(&doomed_id).await);
    assert_eq!((status, code.as_str()), (404, "not_found"));
    let bob = app.signup("bob").await;
    let kept_id = second.client.sessions().await.unwrap()[0].id.clone();
    assert_eq!(
        status_and_code(bob.client.end_session(&kept_id).await).0,
        404
    );
    second.client.me().await.unwrap();
}

#[tokio::test]
async fn logout_ends_the_login_its_refresh_token_belongs_to() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let other = app.signup_existing("alice").await;
    let mut ws = alice.client.connect().await.unwrap();
    app.client.logout(&alice.refresh_token).await.unwrap();
    assert_eq!(closed_with(&mut ws).await, close_code::SESSION_ENDED);
    assert_login_ended(&app, &alice).await;
    other.client.me().await.unwrap();
    // Idempotent, and silent about unknown tokens.
    app.client.logout(&alice.refresh_token).await.unwrap();
    app.client.logout("not a token").await.unwrap();
}

#[tokio::test]
async fn logout_all_ends_every_login_the_calling_one_included() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let other = app.signup_existing("alice").await;
    let bob = app.signup("bob").await;
    let mut sockets = [
        alice.client.connect().await.unwrap(),
        other.client.connect().await.unwrap(),
    ];
    alice.client.logout_all().await.unwrap();
    for ws in &mut sockets {
        assert_eq!(closed_with(ws).await, close_code::SESSION_ENDED);
    }
    assert_login_ended(&app, &alice).await;
    assert_login_ended(&app, &other).await;
    bob.client.me().await.unwrap();
    // Signing in again works.
    app.signup_existing("alice")
        .await
        .client
        .me()
        .await
        .unwrap();
}

#[tokio::test]
async fn changing_the_password_keeps_the_calling_login_and_ends_every_other() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let other = app.signup_existing("alice").await;
    let mut mine = alice.client.connect().await.unwrap();
    let mut theirs = other.client.connect().await.unwrap();

    let (status, code) = status_and_code(
        alice
            .client
            .change_password("wrong password", "new password 2")
            .await,
    );
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let error = alice
        .client
        .change_password(PASSWORD, "short")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Api { status: 422, message, .. } if message.starts_with("new_password")),
        "{error}"
    );
    other
        .client
        .me()
        .await
        .expect("failed attempts end nothing");

    alice
        .client
        .change_password(PASSWORD, "new password 2")
        .await
        .unwrap();
    assert_eq!(closed_with(&mut theirs).await, close_code::SESSION_ENDED);
    assert_login_ended(&app, &other).await;
    alice.client.me().await.expect("the calling login stays");
    assert!(
        mine.next_frame_within(QUIET).await.is_ok(),
        "and its socket"
    );
    app.client.refresh(&alice.refresh_token).await.unwrap();

    let (status, _) = status_and_code(app.client.login("alice", PASSWORD).await);
    assert_eq!(status, 401, "the old password no longer works");
    app.client.login("alice", "new password 2").await.unwrap();
}

#[tokio::test]
async fn a_spent_refresh_token_presented_again_ends_its_login_and_its_sockets() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let mut ws = alice.client.connect().await.unwrap();
    let rotated = app.client.refresh(&alice.refresh_token).await.unwrap();
    // A thief replays the spent token: the whole login ends.
    assert_eq!(
        status_and_code(app.client.refresh(&alice.refresh_token).await).0,
        401
    );
    assert_eq!(closed_with(&mut ws).await, close_code::SESSION_ENDED);
    assert_eq!(
        status_and_code(app.client.refresh(&rotated.refresh_token).await).0,
        401
    );
    let after = app.client.with_token(&rotated.access_token);
    assert_eq!(status_and_code(after.me().await).0, 401);
}
