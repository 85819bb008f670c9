//! REST transport: one module per resource, each exposing its routes; handlers
//! parse input, call a domain service, and shape the answer. No SQL here.

mod admin;
mod attachments;
mod auth;
mod byte_range;
pub mod cookies;
pub(crate) mod deadline;
pub mod error;
pub(crate) mod extract;
mod health;
mod invitations;
mod keys;
pub(crate) mod logging;
mod mentions;
mod messages;
mod moderation;
pub mod openapi;
mod reactions;
mod rooms;
mod users;
mod web;
pub(crate) mod websocket;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::node::AppState;

/// The REST routes with their OpenAPI description, built together so no route
/// can exist undocumented.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_all))
        .routes(routes!(auth::sessions))
        .routes(routes!(auth::end_session))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::verify_email))
        .routes(routes!(auth::request_password_reset))
        .routes(routes!(auth::resend_password_reset))
        .routes(routes!(auth::confirm_password_reset))
        .routes(routes!(auth::complete_password_reset))
        .routes(routes!(keys::jwks))
        .routes(routes!(users::me, users::update_me, users::delete_me))
        .routes(routes!(users::search))
        .routes(routes!(users::profile))
        .routes(routes!(users::direct))
        .routes(routes!(rooms::create, rooms::list))
        .routes(routes!(rooms::join))
        .routes(routes!(rooms::get, moderation::update, moderation::delete))
        .routes(routes!(rooms::members))
        .routes(routes!(moderation::invite))
        .routes(routes!(invitations::list))
        .routes(routes!(invitations::accept))
        .routes(routes!(invitations::decline))
        .routes(routes!(rooms::online))
        .routes(routes!(moderation::kick))
        .routes(routes!(moderation::set_role))
        .routes(routes!(moderation::transfer))
        .routes(routes!(moderation::ban, moderation::bans))
        .routes(routes!(moderation::unban))
        .routes(routes!(moderation::rotate_code))
        .routes(routes!(rooms::leave))
        .routes(routes!(messages::history, messages::post))
        .routes(routes!(messages::edit, messages::delete))
        .routes(routes!(rooms::mark_read))
        .routes(routes!(rooms::read_markers))
        .routes(routes!(messages::report))
        .routes(routes!(messages::search))
        .routes(routes!(admin::admins))
        .routes(routes!(admin::users))
        .routes(routes!(admin::suspend))
        .routes(routes!(admin::unsuspend))
        .routes(routes!(admin::delete_user))
        .routes(routes!(admin::erase_messages))
        .routes(routes!(admin::rooms))
        .routes(routes!(admin::take_down))
        .routes(routes!(admin::transfer_room))
        .routes(routes!(admin::delete_message))
        .routes(routes!(admin::reports))
        .routes(routes!(admin::resolve_report))
        .routes(routes!(admin::audit))
        .routes(routes!(reactions::react, reactions::unreact))
        .routes(routes!(mentions::list))
        .routes(routes!(attachments::upload))
        .routes(routes!(attachments::download))
        .routes(routes!(attachments::thumbnail))
}

/// The REST routes and the web client, with `beside` (the other transports
/// that ride on HTTP/1, such as the WebSocket upgrade) under the same layers.
pub fn router(state: AppState, beside: Router<AppState>) -> Router {
    let (api, mut doc) = api_router().split_for_parts();
    openapi::add_common_responses(&mut doc);
    let doc = openapi::served(&doc, state.settings.messages.max_body_bytes);
    let cors = cors(&state.settings.http.cors_origins);
    let body_deadline = deadline::BodyDeadline {
        total: state.settings.http.body_timeout,
        min_rate: state.settings.http.body_min_rate,
    };
    let upload_deadline = deadline::BodyDeadline {
        total: state.settings.attachments.upload_timeout,
        ..body_deadline
    };
    api.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || openapi::serve(doc.clone())),
    )
    .merge(beside)
    .route("/", axum::routing::get(web::index))
    .route("/assets/{name}", axum::routing::get(web::asset))
    .fallback(error::unknown_route)
    .method_not_allowed_fallback(error::method_not_allowed)
    .layer(axum::middleware::map_response(no_sniffing))
    .layer(tower::util::option_layer(cors))
    .layer(tower::util::MapRequestLayer::new(
        move |request: axum::extract::Request| {
            if attachments::is_upload(request.method(), request.uri().path()) {
                upload_deadline.apply(request)
            } else {
                body_deadline.apply(request)
            }
        },
    ))
    .layer(
        tower_http::trace::TraceLayer::new_for_http()
            .make_span_with(logging::RedactedSpan)
            .on_response(logging::CountRefusals)
            .on_failure(logging::QuietFailures),
    )
    .with_state(state)
}

/// Every answer's type is the one it states (`nosniff`): errors too, which
/// quote nothing a client sent today, so none ever becomes markup.
async fn no_sniffing(mut response: axum::response::Response) -> axum::response::Response {
    (response.headers_mut())
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    response
}

/// CORS for `--cors-origins` (none: no CORS headers, no preflight answers):
/// those origins' pages may call with credentials (cookies) and read the
/// answers, `Retry-After` included.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(cookies::CSRF_HEADER),
                // What `@microsoft/signalr` sends with its negotiate request.
                HeaderName::from_static("x-signalr-user-agent"),
                HeaderName::from_static("x-requested-with"),
            ])
            .expose_headers([header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
