//! Attachments: files uploaded into a room, streamed to the `Blobs` port
//! (never held whole in memory), typed by their content (never by what the
//! uploader says), and readable only by the room's members.
//!
//! An upload belongs to its uploader and its room until a message claims it
//! (`attachments` on send); until then only the uploader may read it, and
//! past `AttachmentLimits::claim_within` no message may claim it and the
//! collector removes it. A claimed file lives as long as its message: a
//! deleted message, an erased account's messages, a deleted room leave
//! their files to the collector (`collect`), which removes each blob before
//! its row, so an interrupted collection leaves nothing unreachable behind
//! and one run again (on any node) is harmless.

mod sniff;
mod thumbnail;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

pub use sniff::{is_inline, Sniffed};
pub use thumbnail::{thumbnail_type, MAX_PIXELS, MAX_SIDE, THUMBNAIL_SIDE};

use crate::blobs::{BlobError, BlobStream, Blobs, ByteRange};
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::store::{AttachmentInsert, NewAttachment, Store};
use crate::throttle::{Caller, ClientAddr, Operation, Throttles};
use crate::time::Timestamp;
use thumbnail::Thumbnailer;

/// The most attachments one message carries.
pub const MAX_PER_MESSAGE: usize = 10;
/// The longest file name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// How much of a file's start is kept for sniffing its type and reading an
/// image's size (a JPEG's frame header may follow its EXIF block).
const HEAD_BYTES: usize = 64 * 1024;
/// Orphans removed per collector pass, each one store round trip.
const COLLECT_BATCH: u32 = 100;

/// A stored attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// 22 URL-safe characters (128 random bits): also its blob's key.
    pub id: String,
    pub room_id: RoomId,
    pub uploader_id: UserId,
    pub name: String,
    pub size: u64,
    /// Sniffed from the content.
    pub content_type: String,
    /// Hex SHA-256 of the content (its ETag).
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created_at: Timestamp,
    /// The seq of the (live) message that carries it, once one does.
    pub message_seq: Option<u64>,
}

/// The bounds on attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachmentLimits {
    /// The largest file (`--max-attachment-bytes`).
    pub max_bytes: u64,
    /// The most bytes one user's attachments may hold together.
    pub quota_bytes: u64,
    /// How long an upload may wait for a message to claim it.
    pub claim_within: Duration,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 25 * 1024 * 1024,
            quota_bytes: 1024 * 1024 * 1024,
            claim_within: Duration::from_secs(3600),
        }
    }
}

impl AttachmentLimits {
    /// Unclaimed uploads older than this (at `now`) are collected: the
    /// claim window and a sixth of it again, so a node whose clock runs
    /// somewhat behind never claims a file another node is removing.
    pub fn collect_before(&self, now: Timestamp) -> Timestamp {
        now.minus(self.claim_within + self.claim_within / 6)
    }
}

/// A file name as given (`?name=`): 1 to 255 characters, no control
/// characters, no path separators, and no direction override, embedding or
/// isolate (which would show `exe.txt` for `txt.exe`). Kept as given
/// otherwise: it is only ever shown as text and sent back quoted in
/// `Content-Disposition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentName(String);

impl AttachmentName {
    /// The rules of every name people read (`values::parse_label`: the
    /// room sees it), and no path separator.
    pub fn parse(name: &str) -> Result<Self> {
        let name = crate::values::parse_label("name", name, MAX_NAME_CHARS)?;
        if name.contains(['/', '\\']) {
            return Err(Error::invalid("name", "must not contain `/` or `\\`"));
        }
        Ok(Self(name))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Whether `id` has the shape of an attachment id (anything else is no
/// attachment, and never reaches the store or the blobs).
pub fn is_attachment_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The blob key of attachment `id`'s thumbnail: its own key and a suffix
/// no attachment id has.
pub fn thumbnail_key(id: &str) -> String {
    format!("{id}.thumbnail")
}

/// Whether `key` has the shape of a blob key: an attachment id, or its
/// thumbnail's key.
pub fn is_blob_key(key: &str) -> bool {
    is_attachment_id(key.strip_suffix(".thumbnail").unwrap_or(key))
}

fn new_id() -> String {
    use base64::Engine as _;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An attachment its reader may read: what `open` hands out, and the only
/// way to its bytes.
pub struct Download {
    pub attachment: Attachment,
    blobs: Arc<dyn Blobs>,
}

impl Download {
    /// Its bytes in `range` (all of them when `None`).
    pub async fn bytes(&self, range: Option<ByteRange>) -> Result<BlobStream> {
        self.blobs
            .read(&self.attachment.id, range)
            .await
            .map_err(|err| blob_failed("read", err))
    }
}

/// The thumbnail of an image attachment its reader may read: what
/// `open_thumbnail` hands out.
pub struct ThumbnailDownload<'a> {
    pub attachment: Attachment,
    /// The thumbnail's type: `image/png` or `image/jpeg`.
    pub content_type: &'static str,
    attachments: &'a Attachments,
}

impl ThumbnailDownload<'_> {
    /// Its ETag's value: the image's hash, marked as its thumbnail's (the
    /// thumbnail is made from it alone).
    pub fn etag(&self) -> String {
        format!("{}.thumbnail", self.attachment.sha256)
    }

    /// Its bytes: read when made before, else made now and kept.
    pub async fn bytes(&self) -> Result<Bytes> {
        self.attachments.thumbnail_bytes(&self.attachment).await
    }
}

pub struct Attachments {
    store: Arc<dyn Store>,
    blobs: Arc<dyn Blobs>,
    throttles: Arc<Throttles>,
    limits: AttachmentLimits,
    thumbnailer: Thumbnailer,
}

impl Attachments {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn Blobs>,
        throttles: Arc<Throttles>,
        limits: AttachmentLimits,
    ) -> Self {
        Self {
            store,
            blobs,
            throttles,
            limits,
            thumbnailer: Thumbnailer::default(),
        }
    }

    pub fn limits(&self) -> AttachmentLimits {
        self.limits
    }

    /// Streams `body` (of `declared` bytes, when the client said) into a new
    /// attachment of `room`. Refused before a byte is read when the budget
    /// is spent, the name is bad, the uploader is no member, or the declared
    /// size (at least one byte) is past the cap or what the uploader's quota
    /// still holds; `TooLarge` as soon as the bytes pass the cap, or when the
    /// quota cannot hold them (checked again in the storing transaction, which
    /// decides). Whatever fails, no blob stays behind.
    pub async fn upload<S>(
        &self,
        uploader: UserId,
        room: RoomId,
        name: &str,
        declared: Option<u64>,
        body: S,
        from: ClientAddr,
    ) -> Result<Attachment>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        self.throttles.charge(
            Operation::AttachmentUpload,
            Caller::user(uploader).from(from),
        )?;
        let name = AttachmentName::parse(name)?;
        if self.store.member_role(room, uploader).await?.is_none() {
            return Err(Error::NotFound("room"));
        }
        let at_least = declared.unwrap_or(1);
        if at_least > self.limits.max_bytes {
            return Err(Error::TooLarge("the attachment size limit"));
        }
        // An uploader at their quota is refused before a byte is stored.
        let held = self.store.attachment_bytes_held(uploader).await?;
        if held.saturating_add(at_least) > self.limits.quota_bytes {
            return Err(Error::TooLarge("the uploader's storage quota"));
        }
        let id = new_id();
        let written = self.write(&id, body).await?;
        let sniffed = Sniffed::from_head(&written.head);
        let new = NewAttachment {
            id,
            room_id: room,
            uploader_id: uploader,
            name: name.into_inner(),
            size: written.size,
            content_type: sniffed.content_type.to_owned(),
            sha256: written.sha256,
            width: sniffed.width,
            height: sniffed.height,
            created_at: Timestamp::now(),
        };
        let refusal = match self
            .store
            .insert_attachment(&new, self.limits.quota_bytes)
            .await
        {
            Ok(AttachmentInsert::Stored(attachment)) => return Ok(attachment),
            Ok(AttachmentInsert::NotMember) => Error::NotFound("room"),
            Ok(AttachmentInsert::OverQuota) => Error::TooLarge("the uploader's storage quota"),
            Err(err) => err.into(),
        };
        self.remove_blob(&new.id).await;
        Err(refusal)
    }

    /// Writes `body` under `id`, within the size cap, hashing it and keeping
    /// its head as it goes.
    async fn write<S>(&self, id: &str, body: S) -> Result<Written>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let mut writer = self
            .blobs
            .create(id)
            .await
            .map_err(|err| blob_failed("create", err))?;
        let mut body = std::pin::pin!(body);
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut size = 0u64;
        let failed = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Err(err)) => break Some(err),
                Some(Ok(chunk)) => chunk,
            };
            size += chunk.len() as u64;
            if size > self.limits.max_bytes {
                metrics::counter!("palaver_attachments_refused_total", "reason" => "too_large")
                    .increment(1);
                break Some(Error::TooLarge("the attachment size limit"));
            }
            hasher.update(&chunk);
            if head.len() < HEAD_BYTES {
                let take = (HEAD_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            if let Err(err) = writer.write(chunk).await {
                break Some(blob_failed("write", err));
            }
        };
        let failed = failed.or_else(|| (size == 0).then(|| Error::invalid("body", "is empty")));
        if let Some(err) = failed {
            writer.abort().await;
            return Err(err);
        }
        writer
            .finish()
            .await
            .map_err(|err| blob_failed("finish", err))?;
        Ok(Written {
            size,
            sha256: hex(&hasher.finalize()),
            head,
        })
    }

    /// The attachment `id` for `reader`: `NotFound` unless they are a member
    /// of its room, and, while no message carries it, its uploader. Whoever
    /// may not read it learns nothing, not even that it exists.
    pub async fn open(&self, reader: UserId, id: &str) -> Result<Download> {
        self.throttles
            .charge(Operation::AttachmentDownload, Caller::user(reader))?;
        let attachment = self.readable(reader, id).await?;
        Ok(Download {
            attachment,
            blobs: self.blobs.clone(),
        })
    }

    /// The thumbnail of the image `id` for `reader`: who may read the
    /// image may read its thumbnail, and anyone else, or any other file,
    /// gets `NotFound`. An image past the size bounds is refused
    /// (`Invalid`) here from its stated size, before its bytes are read.
    pub async fn open_thumbnail(&self, reader: UserId, id: &str) -> Result<ThumbnailDownload<'_>> {
        self.throttles
            .charge(Operation::AttachmentThumbnail, Caller::user(reader))?;
        let attachment = self.readable(reader, id).await?;
        let Some(content_type) = thumbnail_type(&attachment.content_type) else {
            return Err(Error::NotFound("attachment"));
        };
        if let (Some(width), Some(height)) = (attachment.width, attachment.height) {
            thumbnail::check_size(width, height)?;
        }
        Ok(ThumbnailDownload {
            attachment,
            content_type,
            attachments: self,
        })
    }

    async fn thumbnail_bytes(&self, attachment: &Attachment) -> Result<Bytes> {
        let key = thumbnail_key(&attachment.id);
        match self.blobs.read(&key, None).await {
            Ok(stream) => return read_whole(stream).await,
            Err(BlobError::NotFound) => {}
            Err(err) => return Err(blob_failed("read", err)),
        }
        let image = async {
            let stream = self
                .blobs
                .read(&attachment.id, None)
                .await
                .map_err(|err| blob_failed("read", err))?;
            read_whole(stream).await
        };
        let made = Bytes::from(
            self.thumbnailer
                .make(&attachment.content_type, image)
                .await?,
        );
        metrics::counter!("palaver_thumbnails_made_total").increment(1);
        self.keep_thumbnail(&attachment.id, &key, made.clone())
            .await;
        Ok(made)
    }

    /// Stores a thumbnail made so it is served thereafter. Failing to is
    /// no failure of the request (the next one makes it again): another
    /// request may have stored it first.
    async fn keep_thumbnail(&self, id: &str, key: &str, bytes: Bytes) {
        let kept = async {
            let mut writer = self.blobs.create(key).await?;
            writer.write(bytes).await?;
            writer.finish().await
        };
        if let Err(err) = kept.await {
            tracing::debug!(%err, key, "a thumbnail was not kept");
            return;
        }
        // Its attachment collected while it was made: nothing will
        // collect it again, so it goes now.
        if matches!(self.store.attachment(id).await, Ok(None)) {
            let _ = self.blobs.delete(key).await;
        }
    }

    /// The attachment `id` if `reader` may read it; else `NotFound`.
    async fn readable(&self, reader: UserId, id: &str) -> Result<Attachment> {
        let not_found = Error::NotFound("attachment");
        if !is_attachment_id(id) {
            return Err(not_found);
        }
        let Some(attachment) = self.store.attachment(id).await? else {
            return Err(not_found);
        };
        if attachment.message_seq.is_none() && attachment.uploader_id != reader {
            return Err(not_found);
        }
        if self
            .store
            .member_role(attachment.room_id, reader)
            .await?
            .is_none()
        {
            return Err(not_found);
        }
        Ok(attachment)
    }

    /// Removes the files no live message carries: unclaimed past the
    /// claim window, or whose message or room was deleted. Each blob goes
    /// before its row; returns how many were removed.
    pub async fn collect(&self, now: Timestamp) -> Result<u64> {
        let before = self.limits.collect_before(now);
        let mut removed = 0;
        loop {
            let orphans = self
                .store
                .orphaned_attachments(before, COLLECT_BATCH)
                .await?;
            let last_batch = orphans.len() < COLLECT_BATCH as usize;
            for id in orphans {
                self.blobs
                    .delete(&thumbnail_key(&id))
                    .await
                    .map_err(|err| blob_failed("delete", err))?;
                self.blobs
                    .delete(&id)
                    .await
                    .map_err(|err| blob_failed("delete", err))?;
                if self.store.delete_orphaned_attachment(&id, before).await? {
                    removed += 1;
                }
            }
            if last_batch {
                break;
            }
        }
        metrics::counter!("palaver_attachments_collected_total").increment(removed);
        Ok(removed)
    }

    /// Collects every `every` until the attachments are dropped.
    pub fn spawn_collecting(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let attachments = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(attachments) = attachments.upgrade() else {
                    return;
                };
                if let Err(err) = attachments.collect(Timestamp::now()).await {
                    tracing::warn!(%err, "collecting orphaned attachments failed; retried next time");
                }
            }
        })
    }

    async fn remove_blob(&self, id: &str) {
        if let Err(err) = self.blobs.delete(id).await {
            // The row was never stored, so no collector will find it.
            tracing::error!(%err, id, "an upload's blob could not be removed");
        }
    }
}

struct Written {
    size: u64,
    sha256: String,
    head: Vec<u8>,
}

/// All of a blob's bytes (a thumbnail's, or an image's being
/// thumbnailed: within `--max-attachment-bytes`).
async fn read_whole(mut stream: BlobStream) -> Result<Bytes> {
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| blob_failed("read", err.into()))?;
        all.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(all))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn blob_failed(step: &'static str, err: BlobError) -> Error {
    tracing::error!(%err, step, "blob storage failed");
    match err {
        BlobError::NotFound => Error::NotFound("attachment"),
        BlobError::Other(_) => Error::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_line_without_separators() {
        assert_eq!(
            AttachmentName::parse("a b.png").unwrap().into_inner(),
            "a b.png"
        );
        assert_eq!(
            AttachmentName::parse("отчёт.pdf").unwrap().into_inner(),
            "отчёт.pdf"
        );
        for bad in [
            "",
            "a/b",
            "a\\b",
            "a\nb",
            "txt\u{202E}.exe",
            &"x".repeat(256),
        ] {
            assert!(AttachmentName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_22_url_safe_characters() {
        let id = new_id();
        assert!(is_attachment_id(&id), "{id}");
        assert_ne!(id, new_id());
        assert!(!is_attachment_id("../../etc/passwd"));
        assert!(!is_attachment_id(&"a".repeat(23)));
        assert!(is_blob_key(&id));
        assert!(is_blob_key(&thumbnail_key(&id)));
        assert!(!is_blob_key(&thumbnail_key("../../etc/passwd")));
        assert!(!is_blob_key(&format!("{id}.other")));
    }

    #[test]
    fn unclaimed_uploads_are_collected_a_sixth_past_the_window() {
        let limits = AttachmentLimits::default();
        let now = Timestamp(10_000_000);
        assert_eq!(
            limits.collect_before(now),
            Timestamp(10_000_000 - 4_200_000)
        );
    }
}
