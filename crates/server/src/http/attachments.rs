//! `/api/v1/rooms/{id}/attachments` (upload) and `/api/v1/attachments/{id}`
//! (download): files' bytes travel over REST alone; every other transport
//! carries their ids and metadata.
//!
//! A download is served as what its content was sniffed as, inline only for
//! the few raster image types a browser shows without running anything,
//! everything else as an attachment, always with `nosniff` and a sandboxing
//! CSP, so a file can never act as a page of this origin.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use palaver_domain::attachments::is_inline;
use palaver_domain::error::Error;
use palaver_domain::RoomId;
use palaver_protocol::rest::attachments::{Attachment, UploadQuery};
use palaver_protocol::ErrorBody;

use super::byte_range::{self, Asked};
use super::error::ApiError;
use super::extract::{AppPath, AppQuery, AuthUser, ClientAddress, Created};
use super::AppState;
use crate::wire;

mod thumbnail;
pub use thumbnail::*;

/// What every download carries: the browser must not guess another type,
/// and a file opened as a page runs nothing and loads nothing.
const CONTENT_SECURITY_POLICY: &str =
    "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'";

/// Whether a request is an upload, whose body has `attachments.upload_timeout`
/// rather than `http.body_timeout` to arrive.
pub fn is_upload(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path.starts_with("/api/v1/rooms/")
        && path.ends_with("/attachments")
}

/// Upload a file into a room (members only): the raw bytes as the body, any
/// `Content-Type` (the stored type is sniffed from the content). Streamed
/// to storage; refused 413 as soon as it passes `--max-attachment-bytes` or
/// the uploader's quota. A message claims it by listing its id in
/// `attachments`; unclaimed, it is removed after `attachments.claim_within`.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/attachments", tag = "attachments",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "room id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the file's bytes, as they are"),
    responses(
        (status = 201, description = "stored", body = Attachment),
        (status = 404, description = "no such room (or not a member)", body = ErrorBody),
        (status = 408, description = "the body did not arrive in time", body = ErrorBody),
        (status = 413, description = "past the size limit or the uploader's quota (`too_large`)", body = ErrorBody),
        (status = 422, description = "a bad name, or an empty body", body = ErrorBody),
        (status = 429, description = "the upload budget is spent (`rate_limited`)", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ClientAddress(from): ClientAddress,
    AppPath(id): AppPath<i64>,
    AppQuery(query): AppQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let declared = (headers.get(header::CONTENT_LENGTH))
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    let timed_out = Arc::new(AtomicBool::new(false));
    let late = timed_out.clone();
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    let mut chunks = body.into_data_stream().map(move |chunk| {
        chunk
            .inspect(|bytes| {
                counted.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            })
            .map_err(|err| {
                if super::deadline::timed_out(&err) {
                    late.store(true, Ordering::Relaxed);
                }
                Error::invalid("body", "could not be read to its end")
            })
    });
    // Lent, not given: what a refusal leaves unread is drained below.
    let uploaded = state
        .attachments
        .upload(user, RoomId(id), &query.name, declared, &mut chunks, from)
        .await;
    match uploaded {
        Ok(attachment) => Ok(Created(wire::attachment(&attachment)).into_response()),
        Err(_) if timed_out.load(Ordering::Relaxed) => Err(ApiError::Rejected {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "request_timeout",
            message: "the request body did not arrive in time".into(),
        }),
        Err(err) => {
            let read = received.load(Ordering::Relaxed);
            let rest = drain_bound(declared, read, state.attachments.limits().max_bytes);
            if let (true, Some(rest)) = (charged(&err), rest) {
                tokio::spawn(drain(chunks, rest));
            }
            Err(err.into())
        }
    }
}

/// How long a refused upload's remaining body is read for, at most.
const DRAIN_WITHIN: Duration = Duration::from_secs(10);

/// Whether a refusal came after the upload budget was charged: only those
/// are drained, so a caller past their budget makes the node read nothing.
fn charged(err: &Error) -> bool {
    !matches!(err, Error::RateLimited { .. } | Error::Overloaded { .. })
}

/// How much more of a refused upload is read, `read` bytes in: the node
/// reads at most twice the cap of one refused upload in all, and a body
/// declared to end past that is not read at all (the connection closes at
/// once: it could not end within the bound anyway).
fn drain_bound(declared: Option<u64>, read: u64, max_bytes: u64) -> Option<u64> {
    let most = max_bytes.saturating_mul(2).saturating_sub(read);
    match declared {
        Some(length) => Some(length.saturating_sub(read)).filter(|rest| *rest <= most),
        None => Some(most).filter(|most| *most > 0),
    }
}

/// Reads and drops what is left of a refused upload's body, up to `bound`
/// bytes and `DRAIN_WITHIN` (and the body's own deadline), while hyper
/// sends the refusal. Closing with bytes unread would make the kernel reset
/// the connection, and a client still sending (most HTTP clients read the
/// answer only once their body is written) would see the reset, not the
/// answer. The upload was charged to the caller's budget
/// ([`drain_bound`] bounds the bytes); past the bounds the connection closes.
async fn drain<S>(mut chunks: S, bound: u64)
where
    S: futures::Stream<Item = Result<bytes::Bytes, Error>> + Unpin,
{
    let read_all = async {
        let mut read = 0u64;
        while let Some(Ok(chunk)) = chunks.next().await {
            read += chunk.len() as u64;
            if read > bound {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_WITHIN, read_all).await;
}

/// Download an attachment: members of its room only (and, until a message
/// carries it, its uploader only); anyone else gets 404, as for no such
/// file. One byte range may be asked (`Range`, 206); the ETag is the
/// content's SHA-256.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "attachments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "attachment id")),
    responses(
        (status = 200, description = "the file, as the type its content was sniffed as", content_type = "*/*", body = Vec<u8>),
        (status = 206, description = "the range asked for", content_type = "*/*", body = Vec<u8>),
        (status = 304, description = "the ETag given in If-None-Match is the file's"),
        (status = 404, description = "no such file, or not the caller's to read", body = ErrorBody),
        (status = 416, description = "the range begins past the end"),
        (status = 429, description = "the download budget is spent (`rate_limited`)", body = ErrorBody),
    ))]
pub async fn download(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    AppPath(id): AppPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let download = state.attachments.open(user, &id).await?;
    let attachment = &download.attachment;
    let etag = format!("\"{}\"", attachment.sha256);
    let mut response_headers = guarded_headers(&etag);
    if matches_etag(headers.get(header::IF_NONE_MATCH), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(header::CONTENT_TYPE, header_value(&attachment.content_type));
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        header_value(&content_disposition(
            &attachment.name,
            is_inline(&attachment.content_type),
        )),
    );
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // A range of another version than the one asked about means the whole.
    let if_range_holds = match headers.get(header::IF_RANGE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| v.trim() == etag),
    };
    let size = attachment.size;
    let asked = if if_range_holds {
        byte_range::asked(range_header, size)
    } else {
        Asked::Whole
    };
    let (status, range) = match asked {
        Asked::Whole => (StatusCode::OK, None),
        Asked::Part(range) => {
            response_headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{size}", range.start, range.end - 1)),
            );
            (StatusCode::PARTIAL_CONTENT, Some(range))
        }
        Asked::Unsatisfiable => {
            response_headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{size}")),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response());
        }
    };
    let length = range.map_or(size, |range| range.end - range.start);
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let bytes = download.bytes(range).await?;
    Ok((status, response_headers, Body::from_stream(bytes)).into_response())
}

/// The headers of every answer about a file's bytes (a 304 too): its
/// ETag, revalidated before each use, and what keeps it from acting as a
/// page of this origin or being embedded by another.
fn guarded_headers(etag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, header_value(etag));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches_etag(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(value) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
}

/// `inline` or `attachment`, with the name twice (RFC 6266): an ASCII
/// fallback with anything else replaced, and the name itself in UTF-8.
fn content_disposition(name: &str, inline: bool) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_upload_is_read_to_at_most_twice_the_cap_in_all() {
        const CAP: u64 = 1000;
        // Declared: read to its end when that is within the bound.
        assert_eq!(drain_bound(Some(CAP + 1), 0, CAP), Some(CAP + 1));
        assert_eq!(drain_bound(Some(2 * CAP), 0, CAP), Some(2 * CAP));
        assert_eq!(drain_bound(Some(2 * CAP + 1), 0, CAP), None);
        assert_eq!(drain_bound(Some(100 * CAP), 0, CAP), None);
        assert_eq!(drain_bound(Some(1500), CAP + 100, CAP), Some(400));
        // Not declared: up to the bound, counting what was read.
        assert_eq!(drain_bound(None, 0, CAP), Some(2 * CAP));
        assert_eq!(drain_bound(None, CAP + 100, CAP), Some(CAP - 100));
        assert_eq!(drain_bound(None, 2 * CAP, CAP), None);
    }

    #[test]
    fn only_refusals_after_the_budget_was_charged_are_drained() {
        let later = std::time::Duration::from_secs(1);
        assert!(!charged(&Error::RateLimited { retry_after: later }));
        assert!(!charged(&Error::Overloaded { retry_after: later }));
        assert!(charged(&Error::TooLarge("the attachment size limit")));
        assert!(charged(&Error::NotFound("room")));
    }

    #[tokio::test]
    async fn a_drain_stops_past_its_bytes() {
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = read.clone();
        // Endless: only the byte bound ends it.
        let chunks = futures::stream::repeat_with(move || {
            counted.fetch_add(100, Ordering::Relaxed);
            Ok(bytes::Bytes::from_static(&[0u8; 100]))
        });
        drain(chunks, 1000).await;
        assert_eq!(read.load(Ordering::Relaxed), 1100);
    }

    #[test]
    fn a_name_is_given_back_quoted_and_encoded() {
        assert_eq!(
            content_disposition("a \"b\".png", true),
            "inline; filename=\"a _b_.png\"; filename*=UTF-8''a%20%22b%22.png"
        );
        assert_eq!(
            content_disposition("отчёт.pdf", false),
            "attachment; filename=\"_____.pdf\"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf"
        );
    }

    #[test]
    fn an_etag_matches_itself_its_weak_form_and_star() {
        let etag = "\"abc\"";
        let value = |v: &'static str| HeaderValue::from_static(v);
        assert!(matches_etag(Some(&value("\"abc\"")), etag));
        assert!(matches_etag(Some(&value("\"x\", W/\"abc\"")), etag));
        assert!(matches_etag(Some(&value("*")), etag));
        assert!(!matches_etag(Some(&value("\"abd\"")), etag));
        assert!(!matches_etag(None, etag));
    }

    #[test]
    fn uploads_are_the_attachments_posts_of_rooms() {
        use axum::http::Method;
        assert!(is_upload(&Method::POST, "/api/v1/rooms/7/attachments"));
        assert!(!is_upload(&Method::GET, "/api/v1/rooms/7/attachments"));
        assert!(!is_upload(&Method::POST, "/api/v1/rooms/7/messages"));
    }
}
