//! Extractors whose rejections use Palaver's error body, and the caller's identity.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palaver_domain::throttle::ClientAddr;
use palaver_domain::tokens::Bearer;
use palaver_domain::{Error, UserId};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::cookies;
use super::error::ApiError;
use super::AppState;

/// `Json` whose rejections are `{"error":{…}}`, and whose body must be a JSON
/// object: serde would also fill a struct from an array of its fields in
/// order, which the OpenAPI document does not allow.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(JsonObject(value)) = axum::Json::from_request(request, state).await?;
        Ok(AppJson(value))
    }
}

/// As `AppJson`, but an empty body (with or without a content type) is
/// `None`: some clients send a bodiless `POST` where nothing needs saying
/// (signing out by cookie).
pub struct JsonOrEmpty<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        // Within the body limit, as `Json` reads it.
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|rejection| ApiError::from(JsonRejection::from(rejection)))?;
        // No body, or JSON's own "nothing" (what the document's optional,
        // nullable body allows), both mean the caller sent nothing.
        if bytes.trim_ascii().is_empty() || bytes.trim_ascii() == b"null" {
            return Ok(JsonOrEmpty(None));
        }
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        let AppJson(value) = AppJson::from_request(request, state).await?;
        Ok(JsonOrEmpty(Some(value)))
    }
}

/// A `T` read only from a JSON object.
struct JsonObject<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectOnly(std::marker::PhantomData))
            .map(JsonObject)
    }
}

impl<T: serde::Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

/// The user a valid access token of a live login speaks for: from
/// `Authorization: Bearer`, or else the sign-in cookie (with the CSRF check).
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthLogin(bearer) = AuthLogin::from_request_parts(parts, state).await?;
        Ok(AuthUser(bearer.user))
    }
}

/// As `AuthUser`, with the login the token was issued to (for the routes
/// that act on the caller's own logins).
pub struct AuthLogin(pub Bearer);

impl FromRequestParts<AppState> for AuthLogin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = match bearer_token(&parts.headers) {
            Some(token) => token.to_owned(),
            None => {
                let token = cookies::read(&parts.headers, cookies::ACCESS).ok_or(
                    Error::Unauthorized("missing bearer token or sign-in cookie"),
                )?;
                cookies::check_csrf(&parts.method, &parts.headers)?;
                token
            }
        };
        let bearer = state.services.accounts.authenticate(&token).await?;
        Ok(AuthLogin(bearer))
    }
}

/// The request's `User-Agent`, if it has a readable one.
pub struct UserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(UserAgent(user_agent(&parts.headers)))
    }
}

/// A request's readable `User-Agent`.
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Where the request comes from, as rate limits count it (`client_addr.rs`).
pub struct ClientAddress(pub ClientAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        client_address(parts, state)
            .map(ClientAddress)
            .ok_or_else(|| Error::Internal.into())
    }
}

/// Where a request (a Socket.IO handshake included) comes from; `None`
/// (logged) when it lacks its peer address.
pub fn client_address(parts: &Parts, state: &AppState) -> Option<ClientAddr> {
    // Set by `connections::serve` on every request it serves.
    let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
        tracing::error!("a request without its peer address");
        return None;
    };
    let ip = crate::client_addr::client_ip(
        peer.ip(),
        &parts.headers,
        &state.settings.http.trusted_proxies,
    );
    Some(ClientAddr::new(ip))
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    bearer_of(value)
}

/// The token of an `Authorization` value `Bearer <token>`, wherever it came
/// from (an HTTP header, a STOMP `CONNECT` header).
pub fn bearer_of(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// `201 Created` with a JSON body.
pub struct Created<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, axum::Json(self.0)).into_response()
    }
}
