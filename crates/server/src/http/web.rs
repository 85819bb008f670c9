//! The web client, embedded in the binary: plain HTML, CSS and JavaScript
//! modules from `crates/server/web/`, served as they are (no CDN, no build
//! step; see ARCHITECTURE.md, "Web client").

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const INDEX: &str = include_str!("../../web/index.html");

/// Name → (content type, contents).
const ASSETS: [(&str, &str, &str); 7] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/api.js"),
    ),
    (
        "settings.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/settings.js"),
    ),
    (
        "socket.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/socket.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    (
        "mentions.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/mentions.js"),
    ),
    (
        "times.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/times.js"),
    ),
];

/// Only this origin's scripts, styles and sockets: an injected `<script>` or a
/// stray remote URL simply does not load.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub async fn index() -> Response {
    with_headers("text/html; charset=utf-8", INDEX)
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, body)) => with_headers(content_type, body),
        None => ApiError::from(palaver_domain::Error::NotFound("asset")).into_response(),
    }
}

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Small files from the binary itself: revalidate, so an upgrade shows at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
