//! The one layer in front of every gRPC call, unary and streaming alike: it
//! names the caller's address (for rate limits) and, outside the few public
//! calls, authenticates the access token. The services read the outcome from
//! the request's extensions (`Caller`), so none can forget to check.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use palaver_domain::throttle::ClientAddr;
use palaver_domain::tokens::Bearer;
use tonic::Status;

use super::status;
use crate::http::extract::{bearer_token, user_agent};
use crate::node::AppState;

/// Calls that need no token: signing up and in, and the generic services
/// (health, reflection) that tools call before they have one.
const PUBLIC: &[&str] = &[
    "/palaver.v1.Accounts/Register",
    "/palaver.v1.Accounts/Login",
    "/palaver.v1.Accounts/Refresh",
    "/palaver.v1.Accounts/Logout",
];
const PUBLIC_SERVICES: &[&str] = &["/grpc.health.v1.", "/grpc.reflection."];

/// The seed's metadata key for the access token, accepted beside
/// `authorization: Bearer …`.
const TOKEN_KEY: &str = "token";

/// Who is calling: set on every request this layer lets through.
#[derive(Debug, Clone)]
pub struct Caller {
    pub from: ClientAddr,
    /// `None` only on the public calls.
    pub bearer: Option<Bearer>,
    pub user_agent: Option<String>,
}

impl Caller {
    /// The caller's address, as set by the layer.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Caller, Status> {
        request.extensions().get::<Caller>().ok_or_else(|| {
            tracing::error!("a gRPC call that did not pass the auth layer");
            Status::internal("internal error")
        })
    }

    /// The authenticated caller (every call but the public ones).
    pub fn bearer<T>(request: &tonic::Request<T>) -> Result<&Bearer, Status> {
        Caller::of(request)?.bearer.as_ref().ok_or_else(|| {
            status::with_code(
                tonic::Code::Unauthenticated,
                "unauthorized",
                "missing access token",
            )
        })
    }
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    else {
        tracing::error!("a gRPC request without its peer address");
        return Status::internal("internal error").into_http();
    };
    let from = ClientAddr::new(crate::client_addr::client_ip(
        peer.ip(),
        request.headers(),
        &state.settings.http.trusted_proxies,
    ));
    let path = request.uri().path();
    let public = PUBLIC.contains(&path) || PUBLIC_SERVICES.iter().any(|s| path.starts_with(s));
    let bearer = if public {
        None
    } else {
        let headers = request.headers();
        let token =
            bearer_token(headers).or_else(|| headers.get(TOKEN_KEY).and_then(|v| v.to_str().ok()));
        let Some(token) = token else {
            return status::with_code(
                tonic::Code::Unauthenticated,
                "unauthorized",
                "missing access token: send `authorization: Bearer <token>`",
            )
            .into_http();
        };
        match state.services.accounts.authenticate(token.trim()).await {
            Ok(bearer) => Some(bearer),
            Err(err) => return status::status(&err).into_http(),
        }
    };
    let user_agent = user_agent(request.headers());
    request.extensions_mut().insert(Caller {
        from,
        bearer,
        user_agent,
    });
    next.run(request).await
}
