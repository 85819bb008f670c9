//! What the request log shows of a request: never a secret. Tokens travel in
//! query strings where a client cannot set headers (a browser's WebSocket).

use axum::http::{Request, Uri};
use tower_http::trace::MakeSpan;

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

/// `uri` with the value of every secret query parameter replaced by `REDACTED`.
pub fn redacted(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            if SECRET_PARAMS
                .iter()
                .any(|secret| name.eq_ignore_ascii_case(secret))
            {
                format!("{name}=REDACTED")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
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
