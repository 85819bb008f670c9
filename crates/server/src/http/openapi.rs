//! The OpenAPI document (`GET /api/v1/openapi.json`).

use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Palaver", description = "Real-time chat server. WebSocket protocol: docs/protocol.md."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth"), (name = "users"), (name = "rooms"), (name = "messages"), (name = "health")
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
                    .build(),
            ),
        );
    }
}

pub fn base() -> OpenApiDoc {
    ApiDoc::openapi()
}

/// Serves the document serialized once at start-up.
pub async fn serve(json: Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json)
}
