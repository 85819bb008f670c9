use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue, Method};
use palaver_server::http::cookies::{check_csrf, read, ACCESS, CSRF, CSRF_HEADER, REFRESH};

/// A request's `Cookie` headers as cookie sign-in reads them. The first line
/// is the `X-CSRF-Token` the request echoes; every other line is one
/// `Cookie` header (lines a header cannot hold are dropped, as the HTTP
/// parser would refuse them).
pub fn cookies(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let echoed = lines
        .next()
        .and_then(|line| HeaderValue::from_bytes(line).ok());
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }

    for name in [ACCESS, REFRESH, CSRF] {
        let value = read(&headers, name);
        assert_eq!(value, first_pair(&headers, name), "{name}");
        if let Some(value) = &value {
            // One pair's value: no blank around it, no second pair inside.
            assert!(!value.is_empty() && !value.contains(';'), "{value:?}");
            assert_eq!(value.trim(), value);
        }
    }

    if let Some(echoed) = echoed {
        headers.insert(CSRF_HEADER, echoed.clone());
        let passed = check_csrf(&Method::POST, &headers).is_ok();
        let cookie = read(&headers, CSRF);
        assert_eq!(
            passed,
            cookie.is_some_and(|cookie| cookie.as_bytes() == echoed.as_bytes()),
            "the CSRF check passed {passed} for the echo {echoed:?}"
        );
    }
}

/// The first pair that names `name` exactly (case included: `__host-…` is
/// another cookie, one a browser lets any page set), as RFC 6265 §5.4 lays
/// the header out: pairs separated by `;`, blanks around names and values
/// ignored; none when its value is empty.
fn first_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(found, _)| found.trim() == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}
