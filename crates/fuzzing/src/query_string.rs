use std::fmt::Debug;

use axum::extract::Query;
use axum::http::Uri;
use palaver_protocol::rest::{
    DeleteAccountQuery, HistoryQuery, InvitationQuery, MemberQuery, UserSearchQuery,
};
use palaver_server::fuzzing_api::{redacted, WsParams};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A request target's query as the server reads it: the WebSocket upgrade's
/// `access_token` (in any percent-encoding) and the REST paging queries.
pub fn query_string(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = format!("/api/v1/ws?{text}").parse::<Uri>() else {
        return;
    };
    let query = uri.query().unwrap_or_default();

    if let Ok(Query(params)) = Query::<WsParams>::try_from_uri(&uri) {
        // The query's pairs as `application/x-www-form-urlencoded` reads them.
        let named: Vec<String> = form_urlencoded::parse(query.as_bytes())
            .filter(|(name, _)| name == "access_token")
            .map(|(_, value)| value.into_owned())
            .collect();
        match &params.access_token {
            Some(token) => {
                assert_eq!(
                    named,
                    std::slice::from_ref(token),
                    "not the one token the query names"
                );
                // What the request log shows reads as no working token.
                let logged: Uri = redacted(&uri).parse().expect("the log shows a target");
                let Query(shown) = Query::<WsParams>::try_from_uri(&logged)
                    .expect("the logged query reads as the request's did");
                assert_eq!(shown.access_token.as_deref(), Some("REDACTED"), "{logged}");
            }
            None => assert!(named.is_empty(), "a token in the query went unread"),
        }
    }

    paging::<HistoryQuery>(&uri, |history| {
        for seq in [history.before, history.after].into_iter().flatten() {
            assert!(
                seq <= i64::MAX as u64,
                "seq {seq} beyond the documented range"
            );
        }
    });
    paging::<MemberQuery>(&uri, |_| {});
    paging::<InvitationQuery>(&uri, |_| {});
    paging::<UserSearchQuery>(&uri, |_| {});
    paging::<DeleteAccountQuery>(&uri, |_| {});
}

/// A REST query read as `AppQuery` reads it; what parsed means the same when
/// written back and read again (as the `Link` header's next page is).
fn paging<T: DeserializeOwned + Serialize + Debug>(uri: &Uri, check: impl Fn(&T)) {
    let Ok(Query(query)) = Query::<T>::try_from_uri(uri) else {
        return;
    };
    check(&query);
    let written = serde_urlencoded::to_string(&query).expect("a query is written");
    let again: T = serde_urlencoded::from_str(&written)
        .unwrap_or_else(|err| panic!("{written:?} does not read back: {err}"));
    assert_eq!(format!("{again:?}"), format!("{query:?}"), "{written}");
}
