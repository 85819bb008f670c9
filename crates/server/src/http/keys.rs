//! `/.well-known/jwks.json`: the public keys access tokens are signed with,
//! for services that verify Palaver's tokens themselves.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use palaver_domain::time::Timestamp;
use palaver_protocol::rest::Jwks;

use super::extract::AppJson;
use super::AppState;
use crate::wire;

/// How long a verifier may cache the document. A rotation publishes the next
/// key longer than this before it signs (`palaver keys rotate`).
pub const JWKS_MAX_AGE_SECS: u64 = 300;

/// The keys that verify access tokens now: the signing key, a key published
/// ahead of a rotation, and retired keys until their last token has expired.
/// Empty when tokens are signed with a shared secret (`--jwt-secret`).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, body = Jwks, description = "cacheable for 300 s")))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let keys = state
        .services
        .accounts
        .access_tokens()
        .public_keys(Timestamp::now());
    (
        [(
            header::CACHE_CONTROL,
            format!("public, max-age={JWKS_MAX_AGE_SECS}"),
        )],
        AppJson(Jwks {
            keys: keys.iter().map(wire::jwk).collect(),
        }),
    )
}
