//! Cookie sign-in (browsers): tokens in `__Host-` cookies, the CSRF token
//! every change must echo, refresh and logout by cookie, the WebSocket's
//! origin check, and CORS for the listed origins.

use futures::{SinkExt, StreamExt};
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::*;

const ACCESS: &str = "__Host-palaver-access";
const REFRESH: &str = "__Host-palaver-refresh";
const CSRF: &str = "__Host-palaver-csrf";

/// What a browser would keep of one answer's `Set-Cookie`s: name → (value,
/// the whole header line).
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| {
            let line = value.to_str().unwrap().to_owned();
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned(), line)
        })
        .collect()
}

/// A browser's cookie jar for one signed-in user.
struct Jar {
    access: String,
    refresh: String,
    csrf: String,
}

impl Jar {
    fn from(headers: &HeaderMap) -> Self {
        let cookies = set_cookies(headers);
        let value = |name: &str| {
            cookies
                .iter()
                .find(|(n, _, _)| n == name)
                .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
                .1
                .clone()
        };
        Self {
            access: value(ACCESS),
            refresh: value(REFRESH),
            csrf: value(CSRF),
        }
    }

    fn header(&self) -> String {
        format!(
            "{ACCESS}={}; {REFRESH}={}; {CSRF}={}",
            self.access, self.refresh, self.csrf
        )
    }
}

async fn cookie_login(app: &TestApp, username: &str) -> (Jar, Value) {
    let response = app
        .client
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({ "username": username, "password": PASSWORD, "cookie": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let jar = Jar::from(response.headers());
    (jar, response.json().await.unwrap())
}

fn with_cookies(app: &TestApp, method: Method, path: &str, jar: &Jar) -> reqwest::RequestBuilder {
    app.client
        .request(method, path)
        .header(COOKIE, jar.header())
}

#[tokio::test]
async fn a_cookie_login_keeps_every_token_out_of_the_body_and_out_of_page_scripts() {
    let app = spawn_app().await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    let response = app
        .client
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({ "username": "alice", "password": PASSWORD, "cookie": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookies = set_cookies(response.headers());
    let body: Value = response.json().await.unwrap();
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none());
    assert_eq!(body["user"]["username"], "alice");
    let names: Vec<_> = cookies.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, [ACCESS, REFRESH, CSRF]);
    for (name, value, line) in &cookies {
        for attribute in ["Secure", "Path=/", "SameSite=Strict", "Max-Age="] {
            assert!(line.contains(attribute), "{line} lacks {attribute}");
        }
        assert!(!line.contains("Domain"), "{line}");
        assert_eq!(line.contains("HttpOnly"), name != CSRF, "{line}");
        if name == CSRF {
            assert_eq!(
                body["csrf_token"],
                value.as_str(),
                "the body carries it too"
            );
        }
    }
}

#[tokio::test]
async fn requests_signed_in_by_cookie_must_echo_the_csrf_token_to_change_anything() {
    let app = spawn_app().await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    let (jar, _) = cookie_login(&app, "alice").await;

    let me = with_cookies(&app, Method::GET, "/api/v1/users/me", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "reading needs no CSRF token");

    let rename = json!({ "display_name": "Alice" });
    let forged = with_cookies(&app, Method::PATCH, "/api/v1/users/me", &jar)
        .json(&rename)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf_failed");
    let wrong = with_cookies(&app, Method::PATCH, "/api/v1/users/me", &jar)
        .header("x-csrf-token", "guessed")
        .json(&rename)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let room = with_cookies(&app, Method::POST, "/api/v1/rooms", &jar)
        .json(&json!({ "name": "forged" }))
        .send()
        .await
        .unwrap();
    assert_eq!(room.status(), 403, "every change, not only the account's");

    let echoed = with_cookies(&app, Method::PATCH, "/api/v1/users/me", &jar)
        .header("x-csrf-token", &jar.csrf)
        .json(&rename)
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    let account: Value = echoed.json().await.unwrap();
    assert_eq!(account["display_name"], "Alice");
}

#[tokio::test]
async fn refresh_and_logout_by_cookie() {
    let app = spawn_app().await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    let (jar, _) = cookie_login(&app, "alice").await;

    let without_csrf = with_cookies(&app, Method::POST, "/api/v1/auth/refresh", &jar)
        .json(&json!({ "cookie": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        without_csrf.status(),
        403,
        "a forged refresh spends nothing"
    );

    let refreshed = with_cookies(&app, Method::POST, "/api/v1/auth/refresh", &jar)
        .header("x-csrf-token", &jar.csrf)
        .json(&json!({ "cookie": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let next = Jar::from(refreshed.headers());
    assert_ne!(next.refresh, jar.refresh, "the refresh token rotates");
    assert_eq!(
        next.csrf, jar.csrf,
        "the login keeps its CSRF token, so no request in flight finds it changed"
    );
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["csrf_token"], next.csrf.as_str());
    let me = with_cookies(&app, Method::GET, "/api/v1/users/me", &next)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let logout = with_cookies(&app, Method::POST, "/api/v1/auth/logout", &next)
        .header("x-csrf-token", &next.csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let cleared = set_cookies(logout.headers());
    assert_eq!(cleared.len(), 3);
    for (name, value, line) in &cleared {
        assert!(
            value.is_empty() && line.contains("Max-Age=0"),
            "{name}: {line}"
        );
    }
    let after = with_cookies(&app, Method::GET, "/api/v1/users/me", &next)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        401,
        "the login ended, its access cookie with it"
    );
}

#[tokio::test]
async fn refresh_and_logout_by_cookie_take_a_post_with_no_body_at_all() {
    let app = spawn_app().await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    let (jar, _) = cookie_login(&app, "alice").await;

    // No body, no content type: what some clients send.
    let refreshed = with_cookies(&app, Method::POST, "/api/v1/auth/refresh", &jar)
        .header("x-csrf-token", &jar.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refreshed.status(),
        200,
        "a bodiless refresh spends the cookie"
    );
    let next = Jar::from(refreshed.headers());
    assert_ne!(next.refresh, jar.refresh);
    let forged = with_cookies(&app, Method::POST, "/api/v1/auth/refresh", &next)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "still only with the CSRF echo");

    let logout = with_cookies(&app, Method::POST, "/api/v1/auth/logout", &next)
        .header("x-csrf-token", &next.csrf)
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let after = with_cookies(&app, Method::GET, "/api/v1/users/me", &next)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "the login ended");

    let nothing = app
        .client
        .request(Method::POST, "/api/v1/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(
        nothing.status(),
        401,
        "no body and no cookie: nothing to end"
    );
    let not_json = app
        .client
        .request(Method::POST, "/api/v1/auth/logout")
        .body("refresh_token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415, "a body must still be JSON");
}

/// A WebSocket whose upgrade carries these cookies and `Origin`, and whose
/// first frame is `{"type":"auth"}` without a token: the frame it gets first
/// (`ready`), or the close code.
async fn cookie_socket(app: &TestApp, jar: &Jar, origin: Option<&str>) -> Result<String, u16> {
    let url = app.base_url.replace("http://", "ws://") + "/api/v1/ws";
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", jar.header().parse().unwrap());
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(WsMessage::text(r#"{"type":"auth"}"#))
        .await
        .unwrap();
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("an answer in time");
    match first {
        Some(Ok(WsMessage::Text(text))) => {
            let frame: Value = serde_json::from_str(&text).unwrap();
            Ok(frame["type"].as_str().unwrap().to_owned())
        }
        Some(Ok(WsMessage::Close(Some(close)))) => Err(close.code.into()),
        other => panic!("neither a frame nor a close: {other:?}"),
    }
}

#[tokio::test]
async fn the_websocket_takes_the_sign_in_cookie_only_from_an_allowed_origin() {
    let app = spawn_app_with(|settings| {
        settings.http.cors_origins = vec!["https://app.example".into()];
    })
    .await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    let (jar, _) = cookie_login(&app, "alice").await;
    let own_origin = app.base_url.clone();

    assert_eq!(
        cookie_socket(&app, &jar, Some(&own_origin)).await,
        Ok("ready".into())
    );
    assert_eq!(
        cookie_socket(&app, &jar, Some("https://app.example")).await,
        Ok("ready".into()),
        "a listed origin"
    );
    assert_eq!(
        cookie_socket(&app, &jar, Some("https://evil.example")).await,
        Err(4001),
        "another site's page"
    );
    assert_eq!(
        cookie_socket(&app, &jar, None).await,
        Err(4001),
        "not a browser: no cookie sign-in"
    );
}

#[tokio::test]
async fn cors_answers_the_listed_origins_with_credentials_and_nobody_else() {
    let app = spawn_app_with(|settings| {
        settings.http.cors_origins = vec!["https://app.example".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, "/api/v1/rooms")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-csrf-token",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed_headers.contains("x-csrf-token"),
        "{allowed_headers}"
    );

    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let plain = app
        .client
        .request(Method::GET, "/healthz")
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain.headers()["access-control-allow-origin"],
        "https://app.example"
    );

    // Without --cors-origins: no CORS at all.
    let closed = spawn_app().await;
    let answer = closed
        .client
        .request(Method::GET, "/healthz")
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(answer
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
