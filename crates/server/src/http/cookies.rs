//! Cookie sign-in for browsers: the tokens of a login in `__Host-` cookies
//! that page scripts cannot read, the CSRF token every state-changing request
//! authenticated by them must echo, and which origins may use them.
//!
//! `__Host-` cookies are `Secure`, have `Path=/` and no `Domain`: no other
//! host (a sibling subdomain included) can set or overwrite them, which is
//! what makes the double-submit CSRF check sound. `SameSite=Strict`: another
//! site's page never sends them.

use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The access token (a JWT), sent by the browser with every request.
pub const ACCESS: &str = "__Host-palaver-access";
/// The refresh token; only `POST /auth/refresh` and `/auth/logout` read it.
pub const REFRESH: &str = "__Host-palaver-refresh";
/// Readable by the page, which echoes it in [`CSRF_HEADER`].
pub const CSRF: &str = "__Host-palaver-csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a cookie login sets: how long each cookie lives.
pub struct CookieLogin<'a> {
    pub access_token: &'a str,
    pub access_ttl_secs: u64,
    pub refresh_token: &'a str,
    pub refresh_ttl_secs: u64,
    pub csrf_token: &'a str,
}

/// The `Set-Cookie` headers of a cookie login or refresh.
pub fn set(headers: &mut HeaderMap, login: &CookieLogin<'_>) {
    let cookies = [
        (ACCESS, login.access_token, login.access_ttl_secs, true),
        (REFRESH, login.refresh_token, login.refresh_ttl_secs, true),
        (CSRF, login.csrf_token, login.refresh_ttl_secs, false),
    ];
    for (name, value, ttl, http_only) in cookies {
        append(headers, name, value, ttl as i64, http_only);
    }
}

/// The `Set-Cookie` headers that delete every sign-in cookie.
pub fn clear(headers: &mut HeaderMap) {
    for name in [ACCESS, REFRESH, CSRF] {
        append(headers, name, "", 0, name != CSRF);
    }
}

fn append(headers: &mut HeaderMap, name: &str, value: &str, max_age_secs: i64, http_only: bool) {
    let cookie = Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(http_only)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    // Names and values are ours: tokens are base64url or JWTs, always valid.
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(SET_COOKIE, value);
    }
}

/// The value of the request's cookie `name`, if it sent one.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
        .filter(|value| !value.is_empty())
}

/// A request authenticated by cookie that changes something must carry the
/// CSRF cookie's value in `X-CSRF-Token`: another origin's page can make the
/// browser send the cookies, but cannot read them to echo one.
pub fn check_csrf(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let echoed = headers
        .get(CSRF_HEADER)
        .map(|value| value.as_bytes().to_vec());
    match (read(headers, CSRF), echoed) {
        (Some(cookie), Some(echoed)) if bool::from(cookie.as_bytes().ct_eq(&echoed)) => Ok(()),
        _ => Err(ApiError::Rejected {
            status: StatusCode::FORBIDDEN,
            code: "csrf_failed",
            message: format!(
                "a request signed in by cookie must echo the {CSRF} cookie in {CSRF_HEADER}"
            ),
        }),
    }
}

/// The sign-in cookie's access token for a real-time connection (WebSocket,
/// STOMP, Socket.IO): a browser sends its cookies to any page's connection,
/// so only our own and the listed origins may sign in with them.
pub fn realtime_token(headers: &HeaderMap, cors_origins: &[String]) -> Option<String> {
    read(headers, ACCESS).filter(|_| origin_allowed(headers, cors_origins))
}

/// Whether the request's `Origin` may use cookie sign-in on a WebSocket: the
/// server's own (`http` or `https` and the `Host` it was asked for, which a
/// browser never sends empty) or one of `--cors-origins`. A request without
/// `Origin` is not a browser's and gets no cookie sign-in.
///
/// Compared exactly: a browser sends an origin in its one serialization
/// (lower case, no userinfo, no default port) and the configured list is kept
/// in that form, so anything else (`https://APP.example`, `https://app.example.`,
/// `https://app.example:443`, `null`, another scheme) is another origin or
/// one that only looks like a listed one.
pub fn origin_allowed(headers: &HeaderMap, cors_origins: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    let same_host = match (
        origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://")),
        headers.get(HOST).and_then(|h| h.to_str().ok()),
    ) {
        (Some(authority), Some(host)) => !host.is_empty() && authority == host,
        _ => false,
    };
    same_host || cors_origins.iter().any(|listed| listed == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn login_cookies_are_host_only_secure_strict_and_the_tokens_http_only() {
        let mut out = HeaderMap::new();
        set(
            &mut out,
            &CookieLogin {
                access_token: "a.b.c",
                access_ttl_secs: 900,
                refresh_token: "r",
                refresh_ttl_secs: 3600,
                csrf_token: "x",
            },
        );
        let cookies: Vec<_> = out
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .collect();
        assert_eq!(cookies.len(), 3);
        for cookie in &cookies {
            assert!(cookie.name().starts_with("__Host-"));
            assert_eq!(cookie.secure(), Some(true));
            assert_eq!(cookie.path(), Some("/"));
            assert_eq!(cookie.domain(), None);
            assert_eq!(cookie.same_site(), Some(SameSite::Strict));
        }
        let http_only: Vec<_> = cookies
            .iter()
            .map(|c| (c.name(), c.http_only() == Some(true)))
            .collect();
        assert_eq!(http_only, [(ACCESS, true), (REFRESH, true), (CSRF, false)]);
        assert_eq!(
            cookies[0].max_age(),
            Some(cookie::time::Duration::seconds(900))
        );
    }

    #[test]
    fn a_state_change_needs_the_csrf_cookie_echoed() {
        let signed_in = [("cookie", "__Host-palaver-csrf=tok; other=1")];
        assert!(check_csrf(&Method::GET, &headers(&signed_in)).is_ok());
        assert!(check_csrf(&Method::POST, &headers(&signed_in)).is_err());
        let echoed = [signed_in[0], (CSRF_HEADER, "tok")];
        assert!(check_csrf(&Method::POST, &headers(&echoed)).is_ok());
        let wrong = [signed_in[0], (CSRF_HEADER, "tok2")];
        assert!(check_csrf(&Method::DELETE, &headers(&wrong)).is_err());
        let no_cookie = [(CSRF_HEADER, "tok")];
        assert!(check_csrf(&Method::POST, &headers(&no_cookie)).is_err());
    }

    #[test]
    fn websocket_cookies_are_taken_from_the_own_origin_and_listed_ones_only() {
        let listed = ["https://app.example".to_owned()];
        let own = [
            ("host", "chat.example:8080"),
            ("origin", "https://chat.example:8080"),
        ];
        assert!(origin_allowed(&headers(&own), &[]));
        let foreign = [("host", "chat.example"), ("origin", "https://evil.example")];
        assert!(!origin_allowed(&headers(&foreign), &listed));
        let other = [("host", "chat.example"), ("origin", "https://app.example")];
        assert!(origin_allowed(&headers(&other), &listed));
        assert!(!origin_allowed(
            &headers(&[("host", "chat.example")]),
            &listed
        ));
        for lookalike in [
            "https://APP.example",
            "https://app.example.",
            "https://app.example:443",
            "https://user@app.example",
            "https://app.example/",
            "null",
            "https://CHAT.example",
            "ftp://chat.example",
            "://chat.example",
            "https://chat.example.",
            "https://chat.example:443",
        ] {
            let request = [("host", "chat.example"), ("origin", lookalike)];
            assert!(!origin_allowed(&headers(&request), &listed), "{lookalike}");
        }
        let no_host = [("host", ""), ("origin", "https://")];
        assert!(!origin_allowed(&headers(&no_host), &listed));
    }
}
