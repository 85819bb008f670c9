//! `GET /api/v1/search`: messages of the caller's rooms, best match first.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Message;

/// Query of `GET /search`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words every message found holds, in any case: letters and digits,
    /// anything else separates them; a word ending in `*` matches the words
    /// it starts (2 characters before it at least). At most 200 characters
    /// and 8 words; no leading or inner `*`.
    #[param(min_length = 1, max_length = 200)]
    pub q: String,
    /// Only this room (one the caller is a member of).
    pub room: Option<i64>,
    /// Only messages sent before this time (RFC 3339).
    #[param(format = DateTime)]
    pub before: Option<String>,
    /// The `next` of the previous page.
    #[param(pattern = "^[0-9]{1,9}$")]
    pub cursor: Option<String>,
    /// Page size: default 20, at most 50.
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u32>,
}

/// Search results, best match first (newest first among equals).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchPage {
    pub results: Vec<SearchResult>,
    /// Pass as `cursor` for the next page; absent on the last page (results
    /// past the 500th are not searched: narrow the query instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A message found, and its body cut into runs: joined, the runs are the
/// body; `matched` marks the words the query matched (plain text, never
/// markup: show them as text).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    pub message: Message,
    pub parts: Vec<TextPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TextPart {
    pub text: String,
    #[serde(default)]
    pub matched: bool,
}
