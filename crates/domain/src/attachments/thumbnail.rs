//! Thumbnails of image attachments: an image fitted into 320×320 (its
//! aspect kept, never enlarged), made once from its bytes and kept beside
//! them as a blob of its own.
//!
//! Decoding is what a hostile file makes expensive, so it is bounded before
//! a pixel is decoded and while decoding: the size its header states (at
//! most `MAX_SIDE` a side and `MAX_PIXELS` in all, else `Invalid`), the
//! memory the decoder may take (`image::Limits`), how many decode at once
//! on a node (`AT_ONCE`, a short wait, then `Overloaded`) and how long one
//! may take (`MAX_TIME`, then `Overloaded`).

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// The box a thumbnail fits in, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// The widest or tallest image thumbnailed.
pub const MAX_SIDE: u32 = 16_384;
/// The most pixels an image thumbnailed may have (40 megapixels: a large
/// camera's photo).
pub const MAX_PIXELS: u64 = 40_000_000;
/// The most memory one decode may allocate: 40 megapixels of 8-bit RGBA
/// and room to spare, not 16-bit RGBA of the same.
const MAX_ALLOC: u64 = 256 * 1024 * 1024;
/// Decodes running at once on one node.
const AT_ONCE: usize = 2;
/// How long a request waits for a turn before it is refused.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// How long one decode may take before its request is refused (the decode
/// runs on to its end, holding its turn, so no more than `AT_ONCE` run).
const MAX_TIME: Duration = Duration::from_secs(10);
/// What an `Overloaded` answer asks to wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// The quality of a JPEG thumbnail.
const JPEG_QUALITY: u8 = 80;

/// The type a thumbnail of an image of `content_type` is made as, or
/// `None` when there is none (not one of the images decoded): a JPEG's is
/// a JPEG, every other's a PNG (which keeps transparency).
pub fn thumbnail_type(content_type: &str) -> Option<&'static str> {
    match content_type {
        "image/jpeg" => Some("image/jpeg"),
        "image/png" | "image/gif" | "image/webp" => Some("image/png"),
        _ => None,
    }
}

/// Refuses an image whose stated size is past the bounds.
pub fn check_size(width: u32, height: u32) -> Result<()> {
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(refused(
            "too_large",
            format!("is {width}×{height}: at most {MAX_SIDE} pixels a side are thumbnailed"),
        ));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(refused(
            "too_large",
            format!("is {width}×{height}: at most 40 megapixels are thumbnailed"),
        ));
    }
    Ok(())
}

/// The size a `width`×`height` image is shown at in the thumbnail box.
pub fn fitted(width: u32, height: u32) -> (u32, u32) {
    let (width, height) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let side = u64::from(THUMBNAIL_SIDE);
    if width <= side && height <= side {
        return (width as u32, height as u32);
    }
    // Scaled by side / (the longer side), rounded, at least one pixel.
    let longer = width.max(height);
    let scale = |length: u64| ((length * side + longer / 2) / longer).max(1) as u32;
    (scale(width), scale(height))
}

/// The decodes of one node, taking turns.
pub struct Thumbnailer {
    turns: Arc<Semaphore>,
}

impl Default for Thumbnailer {
    fn default() -> Self {
        Self {
            turns: Arc::new(Semaphore::new(AT_ONCE)),
        }
    }
}

impl Thumbnailer {
    /// The thumbnail of the image of `content_type` that `read` reads,
    /// encoded as `thumbnail_type(content_type)`. The image is read only
    /// once its turn came, so no more than `AT_ONCE` are held in memory.
    pub async fn make<F>(&self, content_type: &str, read: F) -> Result<Vec<u8>>
    where
        F: std::future::Future<Output = Result<bytes::Bytes>>,
    {
        let format = match content_type {
            "image/png" => ImageFormat::Png,
            "image/jpeg" => ImageFormat::Jpeg,
            "image/gif" => ImageFormat::Gif,
            "image/webp" => ImageFormat::WebP,
            _ => return Err(Error::NotFound("thumbnail")),
        };
        let turn = match tokio::time::timeout(MAX_WAIT, self.turns.clone().acquire_owned()).await {
            Ok(Ok(turn)) => turn,
            _ => return Err(overloaded("busy")),
        };
        let bytes = read.await?;
        let decoding = tokio::task::spawn_blocking(move || {
            let made = thumbnail_of(&bytes, format);
            drop(turn);
            made
        });
        match tokio::time::timeout(MAX_TIME, decoding).await {
            Ok(Ok(made)) => made,
            Ok(Err(err)) => {
                tracing::error!(%err, "a thumbnail's decoding failed");
                Err(Error::Internal)
            }
            Err(_) => Err(overloaded("slow")),
        }
    }
}

/// Decodes `bytes` within the bounds, fits the image into the box and
/// encodes it (synchronous: run it off the async threads).
pub fn thumbnail_of(bytes: &[u8], format: ImageFormat) -> Result<Vec<u8>> {
    let undecodable = |err: image::ImageError| match err {
        image::ImageError::Limits(_) => refused(
            "too_large",
            "needs more memory to decode than a thumbnail may take".into(),
        ),
        other => refused("undecodable", format!("cannot be decoded ({other})")),
    };
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    // The header's word, checked before a pixel is decoded; then the
    // decoder holds to the same bounds whatever the header said.
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    decoder.set_limits(limits).map_err(undecodable)?;
    let orientation = decoder.orientation().map_err(undecodable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);
    let (width, height) = fitted(image.width(), image.height());
    let small = image.thumbnail_exact(width, height);
    let mut out = Vec::new();
    let encoded = if format == ImageFormat::Jpeg {
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
        small.to_rgb8().write_with_encoder(encoder)
    } else {
        small.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
    };
    encoded.map_err(|err| {
        tracing::error!(%err, "encoding a thumbnail failed");
        Error::Internal
    })?;
    Ok(out)
}

fn refused(reason: &'static str, why: String) -> Error {
    metrics::counter!("palaver_thumbnails_refused_total", "reason" => reason).increment(1);
    Error::invalid("image", why)
}

fn overloaded(reason: &'static str) -> Error {
    metrics::counter!("palaver_thumbnails_refused_total", "reason" => reason).increment(1);
    Error::Overloaded {
        retry_after: RETRY_AFTER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `width`×`height` pixels of one grey, compressed.
    pub(crate) fn grey_png(width: u32, height: u32) -> Vec<u8> {
        let image = image::GrayImage::from_pixel(width, height, image::Luma([128]));
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    /// A PNG of 76 bytes whose header states `width`×`height` (8-bit
    /// RGBA), with an empty data stream: all a bomb needs to ask for memory.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut header = width.to_be_bytes().to_vec();
        header.extend_from_slice(&height.to_be_bytes());
        header.extend_from_slice(&[8, 6, 0, 0, 0]);
        // zlib of no bytes: one stored final block, Adler-32 of nothing.
        let data = [0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1];
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        for (kind, body) in [(b"IHDR", &header[..]), (b"IDAT", &data[..]), (b"IEND", &[])] {
            png.extend_from_slice(&(body.len() as u32).to_be_bytes());
            let mut chunk = kind.to_vec();
            chunk.extend_from_slice(body);
            png.extend_from_slice(&chunk);
            png.extend_from_slice(&crc32(&chunk).to_be_bytes());
        }
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_thumbnail_fits_the_box_keeping_the_aspect_and_never_grows() {
        assert_eq!(fitted(640, 480), (320, 240));
        assert_eq!(fitted(480, 640), (240, 320));
        assert_eq!(fitted(100, 50), (100, 50));
        assert_eq!(fitted(10_000, 1), (320, 1));
        assert_eq!(fitted(320, 320), (320, 320));
    }

    #[test]
    fn a_png_is_made_into_a_png_of_the_fitted_size() {
        let made = thumbnail_of(&grey_png(640, 480), ImageFormat::Png).unwrap();
        let decoded = image::load_from_memory_with_format(&made, ImageFormat::Png).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 240));
    }

    #[test]
    fn a_header_claiming_too_many_pixels_is_refused_before_decoding() {
        // 60000×60000 RGBA would be 14.4 GB; past the side bound.
        let bomb = png_header(60_000, 60_000);
        let refused = thumbnail_of(&bomb, ImageFormat::Png).unwrap_err();
        assert_eq!(refused.code(), "invalid_input");
        assert!(refused.to_string().contains("60000×60000"), "{refused}");
        // Within the side bound, past the pixel bound (268 megapixels).
        let wide = png_header(16_384, 16_384);
        let refused = thumbnail_of(&wide, ImageFormat::Png).unwrap_err();
        assert!(refused.to_string().contains("megapixels"), "{refused}");
    }

    #[test]
    fn the_bounds_are_checked_on_the_stated_size() {
        assert!(check_size(MAX_SIDE, 2000).is_ok());
        assert!(check_size(MAX_SIDE + 1, 1).is_err());
        assert!(check_size(1, MAX_SIDE + 1).is_err());
        assert!(check_size(8000, 5000).is_ok());
        assert!(check_size(8000, 5001).is_err());
    }

    #[test]
    fn a_compressible_image_past_the_pixel_bound_is_refused_undecoded() {
        // 8000×6000 of one grey: a few tens of kilobytes that decode to
        // 48 megapixels.
        let bomb = grey_png(8000, 6000);
        assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
        let refused = thumbnail_of(&bomb, ImageFormat::Png).unwrap_err();
        assert!(refused.to_string().contains("8000×6000"), "{refused}");
    }

    #[test]
    fn bytes_that_are_no_image_are_refused_as_undecodable() {
        let refused = thumbnail_of(b"not a png at all", ImageFormat::Png).unwrap_err();
        assert_eq!(refused.code(), "invalid_input");
    }

    #[test]
    fn only_the_inline_image_types_have_thumbnails() {
        assert_eq!(thumbnail_type("image/jpeg"), Some("image/jpeg"));
        assert_eq!(thumbnail_type("image/gif"), Some("image/png"));
        assert_eq!(thumbnail_type("text/plain; charset=utf-8"), None);
        assert_eq!(thumbnail_type("image/svg+xml"), None);
    }

    #[tokio::test]
    async fn decodes_take_turns_and_the_late_are_refused() {
        let thumbnailer = Thumbnailer::default();
        let _held: Vec<_> = (0..AT_ONCE)
            .map(|_| thumbnailer.turns.clone().try_acquire_owned().unwrap())
            .collect();
        tokio::time::pause();
        let refused = thumbnailer
            .make("image/png", async { Ok(grey_png(4, 4).into()) })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "overloaded");
    }
}
