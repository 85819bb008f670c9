//! Uploading files into a room and downloading them.

use palaver_protocol::rest::attachments::Attachment;
use palaver_protocol::rest::{Message, PostMessageRequest};
use reqwest::Method;

use super::{checked, url_with_query, Client};
use crate::tls::describe;
use crate::{ClientError, Result};

impl Client {
    /// Uploads `bytes` as the file `name` into `room`; a message carries it
    /// by listing the returned id in its `attachments`.
    pub async fn upload_attachment(
        &self,
        room: i64,
        name: &str,
        bytes: impl Into<reqwest::Body>,
    ) -> Result<Attachment> {
        let path = url_with_query(
            &format!("/api/v1/rooms/{room}/attachments"),
            &[("name", name)],
        );
        let response = self
            .request(Method::POST, &path)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .map_err(|e| ClientError::Transport(describe(&e)))?;
        checked(response)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Posts a message carrying the uploads `attachments` (ids returned by
    /// [`Client::upload_attachment`] into the same room).
    pub async fn post_with_attachments(
        &self,
        room: i64,
        body: &str,
        attachments: &[String],
    ) -> Result<Message> {
        let request = PostMessageRequest {
            body: body.into(),
            client_id: None,
            reply_to: None,
            attachments: attachments.to_vec(),
        };
        self.call(
            Method::POST,
            &format!("/api/v1/rooms/{room}/messages"),
            Some(&request),
        )
        .await
    }

    /// The response to `GET /api/v1/attachments/{id}` (headers and all),
    /// once it succeeded.
    pub async fn download_attachment(&self, id: &str) -> Result<reqwest::Response> {
        let response = self
            .request(Method::GET, &format!("/api/v1/attachments/{id}"))
            .send()
            .await
            .map_err(|e| ClientError::Transport(describe(&e)))?;
        checked(response).await
    }

    /// The thumbnail of an image attachment (fits 320×320; PNG, or JPEG
    /// for a JPEG).
    pub async fn download_thumbnail(&self, id: &str) -> Result<reqwest::Response> {
        let response = self
            .request(Method::GET, &format!("/api/v1/attachments/{id}/thumbnail"))
            .send()
            .await
            .map_err(|e| ClientError::Transport(describe(&e)))?;
        checked(response).await
    }
}
