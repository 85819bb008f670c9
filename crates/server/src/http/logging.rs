//! What the request log shows of a request: never a secret, and never a
//! line per refusal. Tokens travel in query strings where a client cannot
//! set headers (a browser's WebSocket); refusals (429, 503, 413, 408) come
//! in floods, so they are counted in metrics and logged at debug: at error
//! level the log would amplify the flood and drown real errors.

use std::time::Duration;

use axum::http::{Request, Response, StatusCode, Uri};
use tower_http::classify::{GrpcFailureClass, ServerErrorsFailureClass};
use tower_http::trace::{DefaultOnResponse, MakeSpan, OnFailure, OnResponse};

/// Query parameters whose values are secrets.
const SECRET_PARAMS: [&str; 5] = [
    "access_token",
    "token",
    "refresh_token",
    "reset_token",
    "code",
];

/// The request's span: method, the URI with secrets redacted, version.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactedSpan;

impl<B> MakeSpan<B> for RedactedSpan {
    fn make_span(&mut self, request: &Request<B>) -> tracing::Span {
        tracing::debug_span!(
            "request",
            method = %request.method(),
            uri = %redacted(request.uri()),
            version = ?request.version(),
        )
    }
}

/// The path and query of `uri`, the value of every secret query parameter
/// replaced by `REDACTED` (no scheme or authority: an absolute-form target
/// may carry a password as its userinfo). Names are compared as the query
/// parser reads them (percent-decoded, `+` as a space) and in any case:
/// `access%5Ftoken` authenticates as `access_token` does. Pairs are read at
/// `&`, as the server reads a query, and again at `;`, as some other readers
/// do: a value is hidden up to where either reading ends it.
pub fn redacted(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            if is_secret(name_of(pair)) {
                return format!("{}=REDACTED", name_of(pair));
            }
            pair.split(';')
                .map(|part| match part.split_once('=') {
                    Some((name, _)) if is_secret(name) => format!("{name}=REDACTED"),
                    // A name alone has no value to hide; rewriting it would
                    // change how the `&` reading reads the pair.
                    _ => part.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// A pair's name: what precedes its first `=`, or all of it.
fn name_of(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(name, _)| name)
}

fn is_secret(name: &str) -> bool {
    let decoded = form_decoded(name);
    SECRET_PARAMS
        .iter()
        .any(|secret| decoded.eq_ignore_ascii_case(secret))
}

/// `text` as `application/x-www-form-urlencoded` decodes it (what axum's
/// `Query` sees): `+` is a space, `%XX` a byte, a stray `%` itself; bytes
/// that are not UTF-8 become U+FFFD.
fn form_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Statuses that refuse a request for its volume or size, not for a fault
/// of the server's.
fn is_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::REQUEST_TIMEOUT
    )
}

/// A REST response: counted by status class (`palaver_http_responses_total`,
/// the denominator of an error rate), refusals by status
/// (`palaver_http_refusals_total`), every response logged at debug.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountRefusals;

impl<B> OnResponse<B> for CountRefusals {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &tracing::Span) {
        let status = response.status();
        metrics::counter!("palaver_http_responses_total", "class" => status_class(status))
            .increment(1);
        if is_refusal(status) {
            metrics::counter!("palaver_http_refusals_total", "status" => status.as_str().to_owned())
                .increment(1);
        }
        DefaultOnResponse::new().on_response(response, latency, span);
    }
}

/// `2xx`, `4xx`, `5xx`…: a label with few values, whatever the status.
fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// A failed request or call: logged at error only when the server itself
/// failed (500; gRPC `INTERNAL`, `UNKNOWN`, `DATA_LOSS`), whose cause the
/// code that failed has logged already; anything a client can cause (a
/// refusal, a bad request, a stream it reset) at debug.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietFailures;

impl OnFailure<ServerErrorsFailureClass> for QuietFailures {
    fn on_failure(
        &mut self,
        class: ServerErrorsFailureClass,
        latency: Duration,
        _: &tracing::Span,
    ) {
        let latency_ms = latency.as_millis() as u64;
        match class {
            ServerErrorsFailureClass::StatusCode(status) if !is_refusal(status) => {
                tracing::error!(%status, latency_ms, "request failed")
            }
            class => tracing::debug!(%class, latency_ms, "request refused or cut short"),
        }
    }
}

impl OnFailure<GrpcFailureClass> for QuietFailures {
    fn on_failure(&mut self, class: GrpcFailureClass, latency: Duration, _: &tracing::Span) {
        let latency_ms = latency.as_millis() as u64;
        match class {
            GrpcFailureClass::Code(code) => {
                let code = tonic::Code::from_i32(code.get());
                // `Unknown` is mostly a client's doing (a cancelled call, a
                // body cut short), so it is counted, not logged loudly; a
                // server fault is logged where it happens, with its cause.
                if matches!(
                    code,
                    tonic::Code::ResourceExhausted
                        | tonic::Code::Unavailable
                        | tonic::Code::Unknown
                ) {
                    metrics::counter!("palaver_grpc_refusals_total", "code" => grpc_code_name(code))
                        .increment(1);
                }
                tracing::debug!(?code, latency_ms, "call refused or failed");
            }
            GrpcFailureClass::Error(error) => {
                tracing::debug!(%error, latency_ms, "call cut short")
            }
        }
    }
}

fn grpc_code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::ResourceExhausted => "resource_exhausted",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::Unknown => "unknown",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_the_query_are_redacted_and_the_rest_is_kept() {
        let uri: Uri = "/api/v1/ws?access_token=eyJhbGciOi.secret.sig&x=1&Token=t2&code"
            .parse()
            .unwrap();
        let shown = redacted(&uri);
        assert_eq!(
            shown,
            "/api/v1/ws?access_token=REDACTED&x=1&Token=REDACTED&code=REDACTED"
        );
        let plain: Uri = "/api/v1/rooms/7/messages?before=10".parse().unwrap();
        assert_eq!(redacted(&plain), "/api/v1/rooms/7/messages?before=10");
    }

    #[test]
    fn tokens_are_redacted_whatever_the_percent_encoding_of_their_name() {
        for name in [
            "access%5Ftoken",
            "access%5ftoken",
            "%61ccess_token",
            "%61%63%63%65%73%73%5F%74%6F%6B%65%6E",
            "ACCESS%5FTOKEN",
            "refresh%5Ftoken",
            "t%6Fken",
            "c%6fde",
        ] {
            let uri: Uri = format!("/api/v1/ws?x=1&{name}=eyJ.secret.sig&y=2")
                .parse()
                .unwrap();
            let shown = redacted(&uri);
            assert!(!shown.contains("secret"), "{name}: {shown}");
            assert_eq!(shown, format!("/api/v1/ws?x=1&{name}=REDACTED&y=2"));
        }
        // Names that only look alike are not secrets, and odd escapes are kept.
        for kept in ["/a?access%20token=1", "/a?access_tokens=1", "/a?%zz=1&%=2"] {
            assert_eq!(redacted(&kept.parse().unwrap()), kept);
        }
    }

    #[test]
    fn tokens_after_a_semicolon_are_redacted_too() {
        for (query, shown) in [
            ("x=1;access_token=jwt", "x=1;access_token=REDACTED"),
            (
                "x=1;ACCESS%5FTOKEN=jwt&y=2",
                "x=1;ACCESS%5FTOKEN=REDACTED&y=2",
            ),
            // The server reads `jwt;x=1` as the token: all of it is hidden.
            ("access_token=jwt;x=1&y=2", "access_token=REDACTED&y=2"),
            ("token;x=1", "token;x=1"),
            ("a=b;c=d", "a=b;c=d"),
        ] {
            let uri: Uri = format!("/api/v1/ws?{query}").parse().unwrap();
            assert_eq!(redacted(&uri), format!("/api/v1/ws?{shown}"));
        }
    }

    #[test]
    fn an_absolute_target_shows_no_userinfo() {
        let uri: Uri = "http://alice:hunter2@chat.example/api/v1/rooms"
            .parse()
            .unwrap();
        assert_eq!(redacted(&uri), "/api/v1/rooms");
        let uri: Uri = "http://alice:hunter2@chat.example/api/v1/ws?access_token=t"
            .parse()
            .unwrap();
        assert_eq!(redacted(&uri), "/api/v1/ws?access_token=REDACTED");
    }

    #[test]
    fn query_names_decode_as_the_query_parser_decodes_them() {
        assert_eq!(form_decoded("access%5Ftoken"), "access_token");
        assert_eq!(form_decoded("a+b%2Bc"), "a b+c");
        assert_eq!(form_decoded("100%"), "100%");
        assert_eq!(form_decoded("%4"), "%4");
        assert_eq!(form_decoded("%ff"), "\u{fffd}");
    }

    #[test]
    fn the_websocket_query_reads_an_encoded_name_as_access_token() {
        // What `ws::upgrade` reads: a redaction that missed this spelling
        // would log a working token.
        #[derive(serde::Deserialize)]
        struct Params {
            access_token: Option<String>,
        }
        let uri: Uri = "/api/v1/ws?access%5Ftoken=jwt".parse().unwrap();
        let axum::extract::Query(params) =
            axum::extract::Query::<Params>::try_from_uri(&uri).unwrap();
        assert_eq!(params.access_token.as_deref(), Some("jwt"));
        assert!(!redacted(&uri).contains("jwt"));
    }

    #[test]
    fn the_request_span_shows_the_redacted_uri() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt;

        /// Records the fields of every new span.
        struct Fields(Arc<Mutex<String>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Fields {
            fn on_new_span(
                &self,
                attrs: &tracing::span::Attributes<'_>,
                _: &tracing::span::Id,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                struct Visit<'a>(&'a mut String);
                impl tracing::field::Visit for Visit<'_> {
                    fn record_debug(
                        &mut self,
                        field: &tracing::field::Field,
                        value: &dyn std::fmt::Debug,
                    ) {
                        self.0.push_str(&format!("{}={value:?} ", field.name()));
                    }
                }
                attrs.record(&mut Visit(&mut self.0.lock().unwrap()));
            }
        }

        let seen = Arc::new(Mutex::new(String::new()));
        let subscriber = tracing_subscriber::registry()
            .with(Fields(seen.clone()))
            .with(tracing_subscriber::filter::LevelFilter::DEBUG);
        tracing::subscriber::with_default(subscriber, || {
            let request = Request::get("/api/v1/ws?access_token=hunter2")
                .body(())
                .unwrap();
            let _span = RedactedSpan.make_span(&request);
        });
        let seen = seen.lock().unwrap();
        assert!(seen.contains("access_token=REDACTED"), "{seen}");
        assert!(!seen.contains("hunter2"), "{seen}");
    }
}
