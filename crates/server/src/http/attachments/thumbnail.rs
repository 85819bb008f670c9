//! `/api/v1/attachments/{id}/thumbnail`: an image attachment fitted into
//! 320×320, served as its download is, with the same headers.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use palaver_protocol::ErrorBody;

use super::super::error::ApiError;
use super::super::extract::{AppPath, AuthUser};
use super::super::AppState;
use super::{content_disposition, guarded_headers, header_value, matches_etag};

/// The thumbnail of an image attachment (PNG, JPEG, GIF or WebP): the image
/// fitted into 320×320, its aspect kept and never enlarged, as a JPEG for a
/// JPEG and a PNG for the others (a GIF's first frame). Made on the first
/// request and kept. Who may read the image may read its thumbnail; anyone
/// else, and any file that is no such image, gets 404. An image past 16384
/// pixels a side or 40 megapixels (its header's word, checked before
/// decoding), or that cannot be decoded, gets 422 `invalid_input`; past
/// two decodes at once on the node, or ten seconds of decoding, 503
/// `overloaded`. The ETag is the image's SHA-256 and `.thumbnail`.
#[utoipa::path(get, path = "/api/v1/attachments/{id}/thumbnail", tag = "attachments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "attachment id")),
    responses(
        (status = 200, description = "the thumbnail", content_type = "image/png", body = Vec<u8>),
        (status = 304, description = "the ETag given in If-None-Match is the thumbnail's"),
        (status = 404, description = "no such image, or not the caller's to read", body = ErrorBody),
        (status = 422, description = "the image is past the size bounds or cannot be decoded (`invalid_input`)", body = ErrorBody),
        (status = 429, description = "the thumbnail budget is spent (`rate_limited`)", body = ErrorBody),
        (status = 503, description = "too many thumbnails are being made (`overloaded`; see Retry-After)", body = ErrorBody),
    ))]
pub async fn thumbnail(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let thumbnail = state.attachments.open_thumbnail(user, &id).await?;
    let etag = format!("\"{}\"", thumbnail.etag());
    let mut response_headers = guarded_headers(&etag);
    if matches_etag(headers.get(header::IF_NONE_MATCH), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    let bytes = thumbnail.bytes().await?;
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(thumbnail.content_type),
    );
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        header_value(&content_disposition(&thumbnail.attachment.name, true)),
    );
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok((StatusCode::OK, response_headers, bytes).into_response())
}
