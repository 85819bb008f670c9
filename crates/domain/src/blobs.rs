//! The `Blobs` port: where attachment bytes live (a directory, an object
//! store), written and read as streams so no file is ever held whole in
//! memory. Keys are the attachments' ids: opaque, URL-safe, never chosen by
//! a client.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// A blob's bytes, as they are read.
pub type BlobStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A blob store failed (its cause is logged by the caller, never shown).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob under that key.
    #[error("no such blob")]
    NotFound,
    #[error("blob storage: {0}")]
    Other(String),
}

impl From<std::io::Error> for BlobError {
    fn from(err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::NotFound => BlobError::NotFound,
            _ => BlobError::Other(err.to_string()),
        }
    }
}

/// A blob being written: its bytes arrive chunk by chunk; it exists under
/// its key only once `finish` succeeds, and `abort` (or dropping it)
/// leaves nothing behind that a reader could see.
#[async_trait]
pub trait BlobWriter: Send {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError>;
    async fn finish(self: Box<Self>) -> Result<(), BlobError>;
    async fn abort(self: Box<Self>);
}

/// Bytes `start..end` of a blob (`end` exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// Starts writing the blob `key` (a key is written once).
    async fn create(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError>;
    /// The blob's bytes in `range` (all of them when `None`).
    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<BlobStream, BlobError>;
    /// Removes the blob; removing one that is not there succeeds, so a
    /// removal interrupted and run again (on any node) is harmless.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}
