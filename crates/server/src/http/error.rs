//! The one mapping from domain errors (and rejected input) to HTTP responses.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use palaver_domain::Error;
use palaver_protocol::error::{RoomRef, SuspensionInfo};
use palaver_protocol::ErrorBody;

#[derive(Debug)]
pub enum ApiError {
    Domain(Error),
    /// Input the extractors refused before it reached the domain.
    Rejected {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError::Domain(err)
    }
}

pub fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::Suspended { .. } => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Conflict(_) | Error::LastOwner(_) => StatusCode::CONFLICT,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Overloaded { .. } | Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body, retry_after) = match self {
            ApiError::Domain(err) => {
                let mut body = ErrorBody::new(err.code(), err.to_string());
                if let Error::Suspended { reason, ends_at } = &err {
                    body.error.suspension = Some(SuspensionInfo {
                        reason: reason.clone(),
                        until: ends_at.map(|end| end.to_rfc3339()),
                    });
                }
                if let Error::LastOwner(rooms) = &err {
                    body.error.rooms = Some(
                        rooms
                            .iter()
                            .map(|room| RoomRef {
                                id: room.id.0,
                                name: room.name.clone(),
                            })
                            .collect(),
                    );
                }
                (status_of(&err), body, err.retry_after())
            }
            ApiError::Rejected {
                status,
                code,
                message,
            } => (status, ErrorBody::new(code, message), None),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(wait) = retry_after {
            // Whole seconds, rounded up: `Retry-After` has no finer unit.
            let secs = wait.as_millis().div_ceil(1000).max(1);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs as u64),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // serde's text names the missing or mistyped field and where it is.
        let (status, code) = match &rejection {
            _ if super::deadline::timed_out(&rejection) => {
                (StatusCode::REQUEST_TIMEOUT, "request_timeout")
            }
            // A body over the limit fails while being buffered.
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            _ => (StatusCode::BAD_REQUEST, "malformed_json"),
        };
        ApiError::Rejected {
            status,
            code,
            message: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::Rejected {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_input",
            message: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Rejected {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_input",
            message: rejection.body_text(),
        }
    }
}

pub async fn unknown_route() -> ApiError {
    ApiError::Rejected {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: "no such route".into(),
    }
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::Rejected {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this route does not accept that method".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_overloaded_answer_is_503_with_retry_after_in_whole_seconds_rounded_up() {
        let response = ApiError::Domain(Error::Overloaded {
            retry_after: Duration::from_millis(1500),
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "2");
    }

    #[test]
    fn other_errors_carry_no_retry_after() {
        let response = ApiError::Domain(Error::Unavailable).into_response();
        assert!(!response
            .headers()
            .contains_key(axum::http::header::RETRY_AFTER));
    }
}
