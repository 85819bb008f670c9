//! The one error body every REST error uses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"error":{"code":"snake_case_code","message":"human sentence"}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_input`.
    pub code: String,
    /// Human-readable sentence; never contains internal details.
    pub message: String,
    /// With `last_owner`: the rooms whose ownership must be handed over first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<RoomRef>>,
    /// With `account_suspended` (told only after the right password): why,
    /// and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<SuspensionInfo>,
}

/// An account's suspension, as its owner is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuspensionInfo {
    pub reason: String,
    /// RFC 3339; absent: until an admin lifts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// A room, named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoomRef {
    pub id: i64,
    pub name: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                rooms: None,
                suspension: None,
            },
        }
    }
}
