//! The messages that mention the caller.

use palaver_protocol::rest::mentions::{MentionPage, MentionQuery};
use reqwest::Method;

use super::{url_with_query, Client};
use crate::Result;

impl Client {
    /// The caller's mentions, newest first, from `query.cursor` on.
    pub async fn mentions(&self, query: &MentionQuery) -> Result<MentionPage> {
        let limit = query.limit.map(|limit| limit.to_string());
        let mut pairs = Vec::new();
        pairs.extend(query.cursor.as_deref().map(|cursor| ("cursor", cursor)));
        pairs.extend(limit.as_deref().map(|limit| ("limit", limit)));
        let path = url_with_query("/api/v1/users/me/mentions", &pairs);
        self.call::<(), _>(Method::GET, &path, None).await
    }
}
