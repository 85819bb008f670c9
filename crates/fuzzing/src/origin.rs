use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue};
use palaver_server::http::cookies::origin_allowed;

/// `--cors-origins` lists, in the one form configuration keeps them in
/// (`scheme://host[:port]`, lower case, as browsers send `Origin`).
const LISTS: [&[&str]; 3] = [
    &[],
    &["https://app.example"],
    &[
        "https://app.example",
        "http://localhost:3000",
        "https://xn--bcher-kva.example:8443",
    ],
];

/// Whether a WebSocket upgrade's `Origin` may sign in by cookie. The first
/// byte picks the configured list; the rest is the `Origin` header, then,
/// after a newline, the `Host` header (none without one).
///
/// An origin passes exactly when it is listed as it is, or is `http://` or
/// `https://` and the (non-empty) `Host` the request was sent to: a lookalike (other
/// case, a trailing dot, a port, userinfo, a path, `null`, another scheme)
/// never passes unless it is itself listed.
pub fn origin(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let listed: Vec<String> = LISTS[usize::from(mode) % LISTS.len()]
        .iter()
        .map(|origin| (*origin).to_owned())
        .collect();
    let (origin, host) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let mut headers = HeaderMap::new();
    let Ok(origin) = HeaderValue::from_bytes(origin) else {
        return;
    };
    headers.insert(ORIGIN, origin.clone());
    if let Some(host) = host {
        let Ok(host) = HeaderValue::from_bytes(host) else {
            return;
        };
        headers.insert(HOST, host);
    }

    let allowed = origin_allowed(&headers, &listed);

    let origin = origin.to_str().ok();
    let host = headers.get(HOST).and_then(|host| host.to_str().ok());
    let own = host.is_some_and(|host| {
        !host.is_empty()
            && (origin == Some(&format!("http://{host}"))
                || origin == Some(&format!("https://{host}")))
    });
    let expected = own || origin.is_some_and(|origin| listed.iter().any(|l| l == origin));
    assert_eq!(
        allowed, expected,
        "Origin {origin:?} with Host {host:?} and {listed:?}"
    );
}
