//! Searching the messages of one's rooms.

use palaver_protocol::rest::search::{SearchPage, SearchQuery};
use reqwest::Method;

use super::{url_with_query, Client};
use crate::Result;

impl Client {
    /// Messages of the caller's rooms holding every word of `query.q`,
    /// best match first.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        let room = query.room.map(|room| room.to_string());
        let limit = query.limit.map(|limit| limit.to_string());
        let mut pairs = vec![("q", query.q.as_str())];
        pairs.extend(room.as_deref().map(|room| ("room", room)));
        pairs.extend(query.before.as_deref().map(|before| ("before", before)));
        pairs.extend(query.cursor.as_deref().map(|cursor| ("cursor", cursor)));
        pairs.extend(limit.as_deref().map(|limit| ("limit", limit)));
        let path = url_with_query("/api/v1/search", &pairs);
        self.call::<(), _>(Method::GET, &path, None).await
    }
}
