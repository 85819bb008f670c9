//! gRPC transport (`proto/palaver/v1`, docs/grpc.md), served on the HTTP
//! listener: `connections::serve` hands every request whose content type is
//! `application/grpc…` here (gRPC-Web included), everything else to REST.
//!
//! - `auth.rs`: the one layer that authenticates every call and names its
//!   client address;
//! - `status.rs`: the one mapping from domain errors to gRPC statuses;
//! - `accounts.rs`, `rooms.rs`, `messages.rs`: unary calls → domain services;
//! - `realtime.rs`: the streams, driven by the session core (`crate::session`).

mod accounts;
mod auth;
mod messages;
mod realtime;
mod rooms;
mod status;

use axum::extract::Request;
use axum::Router;
use palaver_grpc::encoded::realtime_server::RealtimeServer;
use palaver_grpc::v1::accounts_server::AccountsServer;
use palaver_grpc::v1::messages_server::MessagesServer;
use palaver_grpc::v1::rooms_server::RoomsServer;
use tower::ServiceExt;

use crate::node::AppState;

/// Whether a request is a gRPC (or gRPC-Web) call.
pub fn is_grpc(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// `rest` for every request but gRPC calls, which go to the gRPC services.
pub async fn beside(rest: Router, state: AppState) -> Router {
    let grpc = router(state).await;
    Router::new().fallback_service(tower::service_fn(move |request: Request| {
        let target = if is_grpc(request.headers()) {
            grpc.clone()
        } else {
            rest.clone()
        };
        target.oneshot(request)
    }))
}

/// Every gRPC service, with health and reflection, behind the auth layer.
async fn router(state: AppState) -> Router {
    let max_message = state.settings.max_frame_bytes();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<AccountsServer<accounts::AccountsApi>>()
        .await;
    reporter.set_serving::<RoomsServer<rooms::RoomsApi>>().await;
    reporter
        .set_serving::<MessagesServer<messages::MessagesApi>>()
        .await;
    reporter
        .set_serving::<RealtimeServer<realtime::RealtimeApi>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(palaver_grpc::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("the compiled descriptor sets are valid");
    // What grpcurl's older releases, grpcui, Postman and Python's
    // grpcio-reflection speak.
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("the compiled descriptor sets are valid");
    let routes = tonic::service::Routes::new(
        AccountsServer::new(accounts::AccountsApi::new(state.clone()))
            .max_decoding_message_size(max_message),
    )
    .add_service(
        RoomsServer::new(rooms::RoomsApi::new(state.clone()))
            .max_decoding_message_size(max_message),
    )
    .add_service(
        MessagesServer::new(messages::MessagesApi::new(state.clone()))
            .max_decoding_message_size(max_message),
    )
    .add_service(
        RealtimeServer::new(realtime::RealtimeApi::new(state.clone()))
            .max_decoding_message_size(max_message),
    )
    // Public and unauthenticated: the same bound as every other service.
    .add_service(health.max_decoding_message_size(max_message))
    .add_service(reflection_v1.max_decoding_message_size(max_message))
    .add_service(reflection_v1alpha.max_decoding_message_size(max_message));
    // A call's request arrives in full in time, as a REST body must; the
    // real-time streams are long-lived on purpose and bounded by the session
    // quota instead.
    let body_deadline = crate::http::deadline::BodyDeadline {
        total: state.settings.http.body_timeout,
        min_rate: state.settings.http.body_min_rate,
    };
    routes
        .into_axum_router()
        .layer(tower::util::MapRequestLayer::new(
            move |request: axum::extract::Request| {
                if request.uri().path().starts_with("/palaver.v1.Realtime/") {
                    request
                } else {
                    body_deadline.apply(request)
                }
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            state,
            auth::authenticate,
        ))
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(
            tower_http::trace::TraceLayer::new_for_grpc()
                .make_span_with(crate::http::logging::RedactedSpan)
                .on_failure(crate::http::logging::QuietFailures),
        )
}
