//! `/api/v1/rooms/{id}/attachments` and `/api/v1/attachments/{id}`: files
//! uploaded into a room, carried by messages as their ids.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Query of `POST /rooms/{id}/attachments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, shown to the room and given back on download: 1 to
    /// 255 characters, the rules of every name people read (as a room's
    /// name: no control character, no direction control, no line or
    /// paragraph separator, something visible), and no `/` or `\\`.
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069/\\\\]*[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000\\u00AD\\u0300-\\u036F\\u0483-\\u0489\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u1AB0-\\u1AFF\\u1DC0-\\u1DFF\\u200B-\\u200D\\u2060-\\u2065\\u206A-\\u206F\\u20D0-\\u20FF\\u2800\\u3164\\uFE00-\\uFE0F\\uFE20-\\uFE2F\\uFEFF\\uFFA0\\uFFF0-\\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}/\\\\][^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200E\\u200F\\u2028-\\u202E\\u2066-\\u2069/\\\\]*$"
    )]
    pub name: String,
}

/// A stored attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    /// 22 URL-safe characters; what a message's `attachments` lists.
    pub id: String,
    pub name: String,
    /// In bytes.
    pub size: u64,
    /// The type its content was sniffed as (never what the uploader said).
    pub content_type: String,
    /// Hex SHA-256 of the content (also its download's ETag).
    pub sha256: String,
    /// An image's size in pixels, as its header states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_states_the_pattern_of_every_name_without_path_separators() {
        let params = UploadQuery::into_params(|| None);
        let schema = serde_json::to_value(&params[0]).unwrap();
        let expected = super::super::NAME_PATTERN
            .replace("\\u2066-\\u2069]", "\\u2066-\\u2069/\\\\]")
            .replace("\u{E0FFF}]", "\u{E0FFF}/\\\\]");
        assert_eq!(
            schema["schema"]["pattern"].as_str(),
            Some(expected.as_str())
        );
    }
}
