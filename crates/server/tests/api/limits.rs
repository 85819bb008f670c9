//! Rate limits, connection limits and timeouts, seen from outside. The
//! requests come through 127.0.0.1, configured as a trusted proxy, so that an
//! `X-Forwarded-For` header can stand for each client's address.

use std::time::Duration;

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_domain::throttle::{Limit, LoginBackoff, RateLimit};
use palaver_server::Settings;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::live::{Via, EVERY, FRAMED};

fn behind_a_proxy(settings: &mut Settings) {
    settings.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

fn rate(text: &str) -> RateLimit {
    text.parse().unwrap()
}

/// A POST of `body` to `path` from client address `from`: status, `Retry-After`, body.
async fn post_from(
    app: &TestApp,
    from: &str,
    path: &str,
    body: Value,
) -> (u16, Option<u64>, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", app.base_url))
        // The client's own claim first: never believed.
        .header("x-forwarded-for", format!("198.51.100.99, {from}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    // 204 has no body.
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

async fn login_from(app: &TestApp, from: &str, password: &str) -> (u16, Option<u64>, Value) {
    let body = json!({"username": "alice", "password": password});
    post_from(app, from, "/api/v1/auth/login", body).await
}

/// A node behind a proxy whose login back-off starts after two failures, and
/// an account `alice`.
async fn alice_behind_a_proxy_with_two_free_failures() -> TestApp {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.limits.login_backoff = LoginBackoff {
            free: 2,
            max: Duration::from_secs(60),
        };
    })
    .await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    app
}

#[tokio::test]
async fn failed_logins_make_the_next_attempt_wait_for_that_address_only() {
    let app = alice_behind_a_proxy_with_two_free_failures().await;
    let attacker = "203.0.113.66";

    assert_eq!(login_from(&app, attacker, "wrong password 1").await.0, 401);
    assert_eq!(login_from(&app, attacker, "wrong password 2").await.0, 401);
    let (status, retry_after, body) = login_from(&app, attacker, "wrong password 3").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(retry_after, Some(1));
    // While the delay runs, even the right password is refused unread: the
    // delay tells a guesser nothing.
    assert_eq!(login_from(&app, attacker, PASSWORD).await.0, 429);
    // Alice, from her own address, is not locked out by someone else's guesses.
    assert_eq!(login_from(&app, "192.0.2.10", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn a_successful_login_ends_the_streak_of_failures() {
    let app = alice_behind_a_proxy_with_two_free_failures().await;
    let alice = "192.0.2.10";
    assert_eq!(login_from(&app, alice, "a typo in it").await.0, 401);
    assert_eq!(login_from(&app, alice, PASSWORD).await.0, 200);
    // Had the streak gone on, this would be the second failure and the next
    // attempt would wait.
    assert_eq!(login_from(&app, alice, "another typo").await.0, 401);
    assert_eq!(login_from(&app, alice, "and another").await.0, 401);
    assert_eq!(login_from(&app, alice, "and one more").await.0, 429);
}

#[tokio::test]
async fn logins_per_address_are_limited_whatever_the_account() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.limits.set(Limit::LoginPerAddress, rate("3/h"));
    })
    .await;
    let sprayer = "203.0.113.7";
    for name in ["ann", "bob", "cat"] {
        let body = json!({"username": name, "password": "guess guess"});
        assert_eq!(
            post_from(&app, sprayer, "/api/v1/auth/login", body).await.0,
            401
        );
    }
    let body = json!({"username": "dan", "password": "guess guess"});
    let (status, retry_after, body) = post_from(&app, sprayer, "/api/v1/auth/login", body).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(retry_after.unwrap() >= 1);
    let body = json!({"username": "dan", "password": "guess guess"});
    assert_eq!(
        post_from(&app, "192.0.2.1", "/api/v1/auth/login", body)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn registrations_per_address_are_limited() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.limits.set(Limit::RegisterPerAddress, rate("2/h"));
    })
    .await;
    let register = |name: &str| json!({"username": name, "password": PASSWORD});
    let farm = "203.0.113.50";
    assert_eq!(
        post_from(&app, farm, "/api/v1/auth/register", register("bot1"))
            .await
            .0,
        201
    );
    assert_eq!(
        post_from(&app, farm, "/api/v1/auth/register", register("bot2"))
            .await
            .0,
        201
    );
    let (status, retry_after, body) =
        post_from(&app, farm, "/api/v1/auth/register", register("bot3")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(retry_after.unwrap() > 60, "{retry_after:?}");
    let elsewhere = "192.0.2.77";
    assert_eq!(
        post_from(&app, elsewhere, "/api/v1/auth/register", register("bot3"))
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn every_step_of_a_password_reset_counts_against_the_address() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.limits.set(Limit::PasswordResetPerAddress, rate("3/min"));
    })
    .await;
    let guesser = "203.0.113.60";
    let steps = [
        (
            "/api/v1/auth/password-reset",
            json!({"login": "alice"}),
            202,
        ),
        (
            "/api/v1/auth/password-reset/resend",
            json!({"login": "alice"}),
            202,
        ),
        (
            "/api/v1/auth/password-reset/confirm",
            json!({"login": "alice", "code": "123456"}),
            403,
        ),
    ];
    for (path, body, status) in &steps {
        assert_eq!(
            post_from(&app, guesser, path, body.clone()).await.0,
            *status,
            "{path}"
        );
    }
    let (status, retry_after, body) = post_from(
        &app,
        guesser,
        "/api/v1/auth/password-reset/complete",
        json!({"reset_token": "guess", "new_password": "new password 1"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(retry_after.is_some());
    let (status, _, _) = post_from(
        &app,
        "192.0.2.78",
        "/api/v1/auth/password-reset/confirm",
        json!({"login": "alice", "code": "123456"}),
    )
    .await;
    assert_eq!(status, 403, "another address is not limited");
}

#[tokio::test]
async fn refreshes_and_logouts_per_address_are_limited() {
    let app = spawn_app_with(|s| {
        behind_a_proxy(s);
        s.limits.set(Limit::RefreshPerAddress, rate("2/min"));
    })
    .await;
    let guesser = "203.0.113.70";
    let guess = || json!({"refresh_token": "guessed"});
    assert_eq!(
        post_from(&app, guesser, "/api/v1/auth/refresh", guess())
            .await
            .0,
        401
    );
    assert_eq!(
        post_from(&app, guesser, "/api/v1/auth/logout", guess())
            .await
            .0,
        204
    );
    let (status, retry_after, body) =
        post_from(&app, guesser, "/api/v1/auth/refresh", guess()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(retry_after.is_some());
    assert_eq!(
        post_from(&app, "192.0.2.79", "/api/v1/auth/refresh", guess())
            .await
            .0,
        401,
        "another address is not limited"
    );
}

#[tokio::test]
async fn join_codes_cannot_be_guessed_at_speed() {
    let app = spawn_app_with(|s| {
        s.limits.set(Limit::JoinPerUser, rate("3/min"));
    })
    .await;
    let owner = app.signup("owner").await;
    let guesser = app.signup("guesser").await;
    let room = owner
        .client
        .create_room("secret", Some("room pass 1"))
        .await
        .unwrap();
    for guess in ["AAAAAAAA", "BBBBBBBB"] {
        assert_eq!(status_of(guesser.client.join_room(guess, None).await), 404);
    }
    assert_eq!(
        status_of(
            guesser
                .client
                .join_room(&room.code, Some("wrong pass"))
                .await
        ),
        403
    );
    // The right code and password now: refused like every attempt past the limit.
    let refused = guesser
        .client
        .join_room(&room.code, Some("room pass 1"))
        .await;
    assert_eq!(status_of(refused), 429);
    // Another user has a budget of their own.
    let friend = app.signup("friend").await;
    friend
        .client
        .join_room(&room.code, Some("room pass 1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn sends_are_limited_per_user_on_every_transport() {
    for via in EVERY {
        let app = spawn_app_with(|s| {
            s.limits.set(Limit::SendPerUser, rate("3/h"));
        })
        .await;
        let alice = app.signup("alice").await;
        let room = alice.client.create_room("r", None).await.unwrap();
        for body in ["one", "two"] {
            alice
                .client
                .post_message(room.id, body, None)
                .await
                .unwrap();
        }
        let mut live = alice.live(&app, via, None).await;
        live.send(&send_frame(room.id, "three", Some("c3"))).await;
        next_ack(&mut live).await;
        live.send(&send_frame(room.id, "four", Some("c4"))).await;
        let (code, reference, retry_after_ms) = next_matching(&mut live, |frame| match frame {
            ServerFrame::Error {
                code,
                reference,
                retry_after_ms,
                ..
            } => Some((code, reference, retry_after_ms)),
            _ => None,
        })
        .await;
        assert_eq!(
            (code.as_str(), reference.as_deref()),
            ("rate_limited", Some("c4")),
            "{via:?}"
        );
        // STOMP's ERROR and SignalR's error text carry no wait.
        if matches!(via, Via::WebSocket | Via::Grpc | Via::SocketIo) {
            assert!(retry_after_ms.unwrap() > 60_000, "{via:?}");
        }
        assert_eq!(
            status_of(alice.client.post_message(room.id, "five", None).await),
            429
        );
        // Nothing refused was stored.
        let page = alice
            .client
            .history(room.id, &Default::default())
            .await
            .unwrap();
        let bodies: Vec<_> = page.messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["one", "two", "three"], "{via:?}");
    }
}

#[tokio::test]
async fn a_connection_sending_too_many_frames_is_told_to_wait_and_kept() {
    for via in FRAMED {
        let app = spawn_app_with(|s| {
            s.limits.set(Limit::FramesPerConnection, rate("3/h"));
        })
        .await;
        let alice = app.signup("alice").await;
        let mut live = alice.live(&app, via, None).await;
        for n in 0..3 {
            let reference = format!("p{n}");
            live.send(&ClientFrame::Ping {
                reference: Some(reference.clone()),
            })
            .await;
            let pong = next_matching(&mut live, |frame| match frame {
                ServerFrame::Pong { reference } => Some(reference),
                _ => None,
            })
            .await;
            assert_eq!(pong, Some(reference), "{via:?}");
        }
        live.send(&ClientFrame::Ping {
            reference: Some("p3".into()),
        })
        .await;
        let (code, reference) = next_error(&mut live).await;
        assert_eq!(
            (code.as_str(), reference.as_deref()),
            ("rate_limited", Some("p3")),
            "{via:?}"
        );
        // Kept: a frame later in the window gets the same answer, not a close.
        live.send(&ClientFrame::Ping {
            reference: Some("p4".into()),
        })
        .await;
        assert_eq!(next_error(&mut live).await.0, "rate_limited", "{via:?}");
    }
    // A malformed frame counts too, and is answered the same way.
    let app = spawn_app_with(|s| {
        s.limits.set(Limit::FramesPerConnection, rate("1/h"));
    })
    .await;
    let alice = app.signup("alice").await;
    let mut ws = alice.connect().await;
    ws.send(&ClientFrame::Ping { reference: None })
        .await
        .unwrap();
    ws.send_text("{not json").await.unwrap();
    assert_eq!(next_error(&mut ws).await.0, "rate_limited");
}

/// An open TCP connection to the app that has sent nothing yet.
async fn open_connection(app: &TestApp) -> tokio::net::TcpStream {
    let addr = app.base_url.trim_start_matches("http://");
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

#[tokio::test]
async fn connections_past_the_per_address_limit_are_refused_with_429() {
    let app = spawn_app_with(|s| {
        s.http.max_connections_per_address = 2;
    })
    .await;
    let _held = [open_connection(&app).await, open_connection(&app).await];
    let refused = reqwest::get(format!("{}/healthz", app.base_url))
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
    drop(_held);
    // Once they close, their places are free again.
    tokio::time::timeout(WAIT, async {
        loop {
            let response = reqwest::get(format!("{}/healthz", app.base_url))
                .await
                .unwrap();
            if response.status() == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the closed connections' places are freed");
}

#[tokio::test]
async fn connections_past_the_node_limit_are_refused_with_503() {
    let app = spawn_app_with(|s| {
        s.http.max_connections = 2;
    })
    .await;
    let _held = [open_connection(&app).await, open_connection(&app).await];
    let refused = reqwest::get(format!("{}/healthz", app.base_url))
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_connections");
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_headers_in_time_is_dropped() {
    let app = spawn_app_with(|s| {
        s.http.header_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    let mut slow = open_connection(&app).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    // The server gives up on the request: the connection ends (with or
    // without a 408) instead of waiting for the rest forever.
    let read = tokio::time::timeout(WAIT, slow.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the connection is still open");
    let answer = String::from_utf8_lossy(&rest);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_websocket_client_that_sends_but_never_reads_is_dropped_after_the_write_timeout() {
    use tokio_tungstenite::tungstenite::Message;

    let app = spawn_app_with(|s| {
        s.realtime.write_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    let alice = app.signup("alice").await;
    let mut client = app.connect_with_tiny_receive_buffer(&alice).await;
    // Pings with long references: every pong is as long, and none is read.
    let ping = ClientFrame::Ping {
        reference: Some("x".repeat(60)),
    };
    let text = serde_json::to_string(&ping).unwrap();
    let ended = tokio::time::timeout(WAIT * 3, async {
        use futures::SinkExt;
        loop {
            if client.send(Message::text(text.clone())).await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the server still reads from a client that reads nothing"
    );
}
