//! The OpenAPI document (`GET /api/v1/openapi.json`).

use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, OpenApi as OpenApiDoc, Ref, RefOr, Response, ResponseBuilder,
};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Palaver", description = "Real-time chat server. WebSocket protocol: docs/protocol.md."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth"), (name = "users"), (name = "rooms"), (name = "messages"), (name = "health"),
        (name = "admin", description = "The server admin API: server admins only (docs/admin.md).")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /auth/login`. Browsers signed in with \
                         `\"cookie\": true` send the `__Host-palaver-access` cookie instead, \
                         and echo the `__Host-palaver-csrf` cookie in `X-CSRF-Token` on every \
                         request but GET (docs/accounts.md).",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn base() -> OpenApiDoc {
    ApiDoc::openapi()
}

/// Adds to every operation the answers any route of its kind can give, each
/// where the route does not describe it itself: so the document lists every
/// status the server can return, and a new route cannot forget one.
pub fn add_common_responses(doc: &mut OpenApiDoc) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            (&mut item.get, true),
            (&mut item.put, false),
            (&mut item.post, false),
            (&mut item.delete, false),
            (&mut item.patch, false),
        ];
        for (operation, safe) in operations {
            let Some(operation) = operation else { continue };
            let body = operation.request_body.is_some();
            let params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut add = |status: &str, description: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            };
            if body || params {
                add(
                    "400",
                    "a path or query parameter of the wrong type (`invalid_input`), or a body that is not JSON (`malformed_json`)",
                );
                add(
                    "422",
                    "a field failed validation; the message names it (`invalid_input`)",
                );
            }
            if body {
                add(
                    "413",
                    "the body is larger than the server accepts (`payload_too_large`)",
                );
                add(
                    "415",
                    "the body is not `application/json` (`unsupported_media_type`)",
                );
            }
            if secured {
                add(
                    "401",
                    "missing, malformed or expired access token (`unauthorized`)",
                );
            }
            if secured && !safe {
                add(
                    "403",
                    "signed in by cookie without echoing its CSRF token in `X-CSRF-Token` (`csrf_failed`)",
                );
            }
            add(
                "429",
                "too many open connections from this address (`too_many_connections`), or a rate limit (`rate_limited`); `Retry-After` says when to retry",
            );
            add(
                "503",
                "the database cannot be reached (`store_unavailable`), too many open connections (`too_many_connections`) or too much password hashing (`overloaded`); retry later",
            );
        }
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// The document as served: JSON, stating this node's own limits where a
/// schema depends on them.
pub fn served(doc: &OpenApiDoc, max_body_bytes: usize) -> Bytes {
    let mut json = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    for request in ["PostMessageRequest", "EditMessageRequest"] {
        json["components"]["schemas"][request]["properties"]["body"]["maxLength"] =
            serde_json::Value::from(max_body_bytes);
    }
    Bytes::from(serde_json::to_vec(&json).expect("JSON serializes"))
}

/// Serves the document serialized once at start-up.
pub async fn serve(json: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json)
}
