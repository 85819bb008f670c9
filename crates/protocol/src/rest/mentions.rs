//! `GET /api/v1/users/me/mentions`: messages that mention the caller.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Message;

/// Query of `GET /users/me/mentions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MentionQuery {
    /// The `next` of the previous page.
    #[param(pattern = "^[0-9]{1,19}-[0-9]{1,19}-[0-9]{1,19}$")]
    pub cursor: Option<String>,
    /// Page size: default 50, at most 100.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The caller's mentions, newest first: live messages of rooms they are
/// a member of.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MentionPage {
    pub mentions: Vec<MentionItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A message that mentions the caller, and its room's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MentionItem {
    pub message: Message,
    pub room_name: String,
}
