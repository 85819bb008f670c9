//! `S3Blobs`: the `Blobs` port over S3-compatible object storage (cluster
//! mode, where every node must read what any node wrote). A blob is one
//! object under `s3://bucket/prefix/<key>`, written by a multipart upload
//! part by part, so an upload holds at most a few parts in memory and an
//! object exists only once the upload completes; a refused or dropped
//! upload is aborted, which leaves no object and no parts behind.
//!
//! The bucket comes from the URL; credentials, region and endpoint from the
//! usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, ...). Plain HTTP is allowed only when the endpoint
//! itself is an `http://` URL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{BackoffConfig, GetOptions, GetRange, ObjectStore, RetryConfig, WriteMultipart};
use palaver_domain::attachments::is_blob_key;
use palaver_domain::blobs::{BlobError, BlobStream, BlobWriter, Blobs, ByteRange};

/// Bytes sent as one part: S3's smallest part but the last is 5 MiB.
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts of one upload in flight at once; with the one being filled, an
/// upload holds at most `(PARTS_IN_FLIGHT + 1) * PART_BYTES` in memory.
const PARTS_IN_FLIGHT: usize = 2;

/// Where blobs go: `s3://bucket/prefix`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Keys' common prefix, without slashes at its ends (may be empty).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket` or `s3://bucket/some/prefix`; the error says
    /// what is wrong in words fit for an operator.
    pub fn parse(url: &str) -> Result<Self, String> {
        // Nothing of the URL is echoed but the bucket and prefix, once they
        // are known to hold no credentials.
        let rest = url
            .strip_prefix("s3://")
            .ok_or("it must have the form s3://bucket/prefix")?;
        if rest.contains(['?', '#', '@', ':']) {
            return Err("an s3:// URL holds a bucket and a prefix only \
                 (credentials and endpoint come from the AWS_* environment variables)"
                .into());
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return Err(format!(
                "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' and '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && Path::parse(prefix).is_err() {
            return Err(format!("{prefix:?} is not an object key prefix"));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

#[derive(Debug, Clone)]
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl S3Blobs {
    /// Blobs under `location`, with credentials, region and endpoint from
    /// the `AWS_*` environment variables; fails unless the bucket answers
    /// (a node that cannot keep files should not start).
    pub async fn open(location: &S3Location) -> Result<Self, BlobError> {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&location.bucket);
        let plain_http = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .is_some_and(|endpoint| endpoint.starts_with("http://"));
        builder = builder.with_allow_http(plain_http).with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
        });
        let store = builder.build().map_err(describe)?;
        let blobs = Self {
            store: Arc::new(store),
            prefix: Path::from(location.prefix.as_str()),
        };
        // One listing page: it fails on a missing bucket, bad credentials
        // or an endpoint that does not answer.
        blobs
            .store
            .list_with_delimiter(Some(&blobs.prefix))
            .await
            .map_err(|err| BlobError::Other(format!("the bucket does not answer: {err}")))?;
        Ok(blobs)
    }

    /// The object of the blob `key`: only blob keys (an attachment's id, or
    /// its thumbnail's) are ever turned into object paths.
    fn path(&self, key: &str) -> Result<Path, BlobError> {
        if !is_blob_key(key) {
            return Err(BlobError::Other(format!("not a blob key: {key:?}")));
        }
        Ok(self.prefix.child(key))
    }
}

fn describe(err: object_store::Error) -> BlobError {
    match err {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        other => BlobError::Other(other.to_string()),
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn create(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        let upload = self
            .store
            .put_multipart(&self.path(key)?)
            .await
            .map_err(describe)?;
        Ok(Box::new(S3Writer {
            upload: Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES)),
        }))
    }

    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<BlobStream, BlobError> {
        let path = self.path(key)?;
        let range = match range {
            // S3 has no empty range: the object must exist, and no byte is read.
            Some(range) if range.end <= range.start => {
                self.store.head(&path).await.map_err(describe)?;
                return Ok(futures::stream::empty().boxed());
            }
            Some(range) => Some(GetRange::Bounded(range.start..range.end)),
            None => None,
        };
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        let found = self
            .store
            .get_opts(&path, options)
            .await
            .map_err(describe)?;
        Ok(found
            .into_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(describe(err)),
        }
    }
}

/// A multipart upload on its way: aborted on `abort`, on an error, or when
/// dropped unfinished, so S3 keeps neither an object nor its parts.
struct S3Writer {
    upload: Option<WriteMultipart>,
}

#[async_trait]
impl BlobWriter for S3Writer {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let upload = self.upload.as_mut().ok_or(BlobError::NotFound)?;
        // Waits while too many parts are in flight: the upload's sender is
        // slowed to S3's pace rather than its parts piling up in memory.
        if let Err(err) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
            if let Some(upload) = self.upload.take() {
                let _ = upload.abort().await;
            }
            return Err(describe(err));
        }
        upload.put(chunk);
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), BlobError> {
        let upload = self.upload.take().ok_or(BlobError::NotFound)?;
        // `finish` aborts the upload itself when completing it fails.
        upload.finish().await.map(drop).map_err(describe)
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(upload) = self.upload.take() {
            let _ = upload.abort().await;
        }
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        // Dropped mid-write (the upload's request went away): abort it on
        // the runtime, as a drop cannot wait.
        if let Some(upload) = self.upload.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = upload.abort().await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_a_bucket_and_a_prefix_and_nothing_else() {
        let parsed = S3Location::parse("s3://palaver-files/node/a/").unwrap();
        assert_eq!(parsed.bucket, "palaver-files");
        assert_eq!(parsed.prefix, "node/a");
        assert_eq!(S3Location::parse("s3://files").unwrap().prefix, "");
        for bad in [
            "https://files/x",
            "s3://",
            "s3://Files/x",
            "s3://-files",
            "s3://files/a/../b",
            "s3://key:secret@files/x",
            "s3://files/x?endpoint=y",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
