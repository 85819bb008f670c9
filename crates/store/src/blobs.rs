//! `LocalBlobs`: the `Blobs` port over a directory (the embedded default,
//! under the data directory). A blob is written to `incoming/` and renamed
//! into place once whole, so a reader never sees half a file; blobs are
//! spread over 64 subdirectories by their key's first character.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use palaver_domain::attachments::is_blob_key;
use palaver_domain::blobs::{BlobError, BlobStream, BlobWriter, Blobs, ByteRange};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Bytes read from a blob at a time.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    /// Blobs under `root`, which is made if missing.
    pub async fn open(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join("incoming")).await?;
        Ok(Self { root })
    }

    /// Where the blob `key` lives: only keys shaped as attachment ids (or
    /// their thumbnails' keys) are ever turned into paths, so none can
    /// leave the root.
    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        if !is_blob_key(key) {
            return Err(BlobError::Other(format!("not a blob key: {key:?}")));
        }
        Ok(self.root.join(&key[..1]).join(key))
    }
}

#[async_trait]
impl Blobs for LocalBlobs {
    async fn create(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        let target = self.path(key)?;
        let incoming = self.root.join("incoming").join(key);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&incoming)
            .await?;
        Ok(Box::new(LocalWriter {
            file: Some(file),
            incoming,
            target,
        }))
    }

    async fn read(&self, key: &str, range: Option<ByteRange>) -> Result<BlobStream, BlobError> {
        let mut file = tokio::fs::File::open(self.path(key)?).await?;
        let length = match range {
            Some(range) => {
                file.seek(SeekFrom::Start(range.start)).await?;
                range.end.saturating_sub(range.start)
            }
            None => file.metadata().await?.len(),
        };
        let reader = tokio_util::io::ReaderStream::with_capacity(file.take(length), READ_CHUNK);
        Ok(reader.boxed())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

/// A blob on its way in: removed on `abort` or when dropped unfinished.
struct LocalWriter {
    file: Option<tokio::fs::File>,
    incoming: PathBuf,
    target: PathBuf,
}

#[async_trait]
impl BlobWriter for LocalWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let file = self.file.as_mut().ok_or(BlobError::NotFound)?;
        file.write_all(&chunk).await?;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), BlobError> {
        let mut file = self.file.take().ok_or(BlobError::NotFound)?;
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        if let Some(dir) = self.target.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let renamed = tokio::fs::rename(&self.incoming, &self.target).await;
        if renamed.is_err() {
            remove_quietly(&self.incoming);
        }
        renamed?;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) {
        self.file.take();
        let _ = tokio::fs::remove_file(&self.incoming).await;
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // Dropped mid-write (the upload's request went away): leave nothing.
        if self.file.take().is_some() {
            remove_quietly(&self.incoming);
        }
    }
}

fn remove_quietly(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    async fn read_all(blobs: &LocalBlobs, range: Option<ByteRange>) -> Vec<u8> {
        let mut stream = blobs.read(KEY, range).await.unwrap();
        let mut all = Vec::new();
        while let Some(chunk) = stream.next().await {
            all.extend_from_slice(&chunk.unwrap());
        }
        all
    }

    #[tokio::test]
    async fn a_blob_is_seen_whole_or_not_at_all_and_removed_twice_harmlessly() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).await.unwrap();
        let mut writer = blobs.create(KEY).await.unwrap();
        writer.write(Bytes::from_static(b"hello ")).await.unwrap();
        assert!(matches!(
            blobs.read(KEY, None).await,
            Err(BlobError::NotFound)
        ));
        writer.write(Bytes::from_static(b"world")).await.unwrap();
        writer.finish().await.unwrap();
        assert_eq!(read_all(&blobs, None).await, b"hello world");
        let range = ByteRange { start: 6, end: 9 };
        assert_eq!(read_all(&blobs, Some(range)).await, b"wor");
        blobs.delete(KEY).await.unwrap();
        blobs.delete(KEY).await.unwrap();
        assert!(matches!(
            blobs.read(KEY, None).await,
            Err(BlobError::NotFound)
        ));
    }

    #[tokio::test]
    async fn an_unfinished_blob_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobs::open(dir.path()).await.unwrap();
        let mut writer = blobs.create(KEY).await.unwrap();
        writer.write(Bytes::from_static(b"half")).await.unwrap();
        drop(writer);
        let aborted = blobs.create(KEY).await.unwrap();
        aborted.abort().await;
        let left = std::fs::read_dir(dir.path().join("incoming"))
            .unwrap()
            .count();
        assert_eq!(left, 0);
        assert!(blobs.read("../../etc/passwd", None).await.is_err());
    }
}
