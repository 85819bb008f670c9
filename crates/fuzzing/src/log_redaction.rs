use axum::http::Uri;
use palaver_server::fuzzing_api::redacted;

/// Query parameters whose values are secrets, as the request log knows them.
const SECRETS: [&str; 5] = [
    "access_token",
    "token",
    "refresh_token",
    "reset_token",
    "code",
];

/// The value the harness plants; nothing else in the input may spell it.
const PLANTED: &str = "s3cr3tv4lue";

/// A request target as the request log shows it. The rest after the first
/// byte is the target's query, or with the first byte's fourth bit set, the
/// whole target (absolute-form included). With the first bit set, the value
/// of every pair of the query named as a secret is first replaced by a
/// planted token (the second bit: percent-encoded, the third: in upper case).
///
/// Whatever the spelling of the name (percent-encoded, any case, repeated,
/// after a `;`), the log shows no secret's value: read at `&` as the server
/// reads a query, and at `&` and `;` as some other readers do, every pair
/// named as a secret shows `REDACTED`; no planted token shows, encoded or
/// not; a query naming no secret shows as it is, and the path is the
/// request's (never the scheme or authority, where userinfo would be).
pub fn log_redaction(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let planted = mode & 1 != 0;
    if planted && decoded(text).to_ascii_lowercase().contains(PLANTED) {
        return;
    }
    let target = match (mode & 8 != 0, text.split_once('?')) {
        (false, _) => format!("/api/v1/ws?{}", plant(text, mode)),
        (true, Some((path, query))) => format!("{path}?{}", plant(query, mode)),
        (true, None) => text.to_owned(),
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return;
    };

    let shown = redacted(&uri);

    let (path, shown_query) = match shown.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (shown.as_str(), None),
    };
    assert_eq!(path, uri.path(), "{shown}");
    assert_eq!(shown_query.is_some(), uri.query().is_some(), "{shown}");
    let (Some(shown_query), Some(query)) = (shown_query, uri.query()) else {
        return;
    };
    for pair in shown_query.split('&').chain(shown_query.split(['&', ';'])) {
        if let Some((name, value)) = pair.split_once('=') {
            if is_secret(name) {
                assert_eq!(value, "REDACTED", "{query} shows as {shown_query}");
            }
        }
    }
    if !query
        .split(['&', ';'])
        .any(|pair| is_secret(pair.split_once('=').map_or(pair, |(name, _)| name)))
    {
        assert_eq!(shown_query, query, "a query naming no secret was changed");
    }
    if planted {
        let lower = shown_query.to_ascii_lowercase();
        assert!(
            !lower.contains(PLANTED) && !decoded(&lower).contains(PLANTED),
            "{query} shows as {shown_query}"
        );
        assert!(
            !lower.contains(&percent_encoded(PLANTED).to_ascii_lowercase()),
            "{query} shows as {shown_query}"
        );
    }
}

/// Whether `name` (as the query holds it) reads as a secret's name: form
/// decoded, in any ASCII case.
fn is_secret(name: &str) -> bool {
    let decoded = decoded(name);
    SECRETS
        .iter()
        .any(|secret| decoded.eq_ignore_ascii_case(secret))
}

/// `text` form-decoded (`%XX` a byte, `+` a space), `&` and `=` kept as
/// they are.
fn decoded(text: &str) -> String {
    text.split('&')
        .map(|part| {
            part.split('=')
                .map(|piece| {
                    form_urlencoded::parse(piece.as_bytes())
                        .next()
                        .map(|(decoded, _)| decoded.into_owned())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("=")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `query` with the value of every pair named as a secret, read at `&` and
/// `;`, replaced by the planted token in the spelling `mode` picks (when its
/// first bit is set; else `query` as it is).
fn plant(query: &str, mode: u8) -> String {
    if mode & 1 == 0 {
        return query.to_owned();
    }
    let mut token = if mode & 2 != 0 {
        percent_encoded(PLANTED)
    } else {
        PLANTED.to_owned()
    };
    if mode & 4 != 0 {
        token = token.to_ascii_uppercase();
    }
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    loop {
        let end = rest.find(['&', ';']).unwrap_or(rest.len());
        let (pair, tail) = rest.split_at(end);
        match pair.split_once('=') {
            Some((name, _)) if is_secret(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(&token);
            }
            _ => out.push_str(pair),
        }
        let Some(separator) = tail.chars().next() else {
            break;
        };
        out.push(separator);
        rest = &tail[1..];
    }
    out
}

fn percent_encoded(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}
