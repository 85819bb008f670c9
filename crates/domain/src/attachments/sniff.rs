//! What a file is, from its first bytes alone: the type it is served as
//! (never the one its uploader claimed) and, for an image, its size.

/// Served inline (shown by the browser) only these: raster images a
/// browser decodes without running anything. SVG is not among them: it
/// may hold scripts.
const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Whether a file of this (sniffed) type may be shown inline rather than
/// only downloaded.
pub fn is_inline(content_type: &str) -> bool {
    INLINE_TYPES.contains(&content_type)
}

/// A file's type and, for an inline image, its size in pixels as its
/// header states it (nothing is decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub content_type: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl Sniffed {
    pub fn from_head(head: &[u8]) -> Self {
        let content_type = match infer::get(head) {
            Some(kind) => kind.mime_type(),
            None if looks_like_text(head) => "text/plain; charset=utf-8",
            None => "application/octet-stream",
        };
        let (width, height) = if is_inline(content_type) {
            match imagesize::blob_size(head) {
                Ok(size) => (
                    u32::try_from(size.width).ok(),
                    u32::try_from(size.height).ok(),
                ),
                Err(_) => (None, None),
            }
        } else {
            (None, None)
        };
        Self {
            content_type,
            width,
            height,
        }
    }
}

/// UTF-8 without NULs (a character cut at the head's end allowed).
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(err) => err.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 PNG's signature and header chunk.
    const PNG_HEAD: [u8; 33] = [
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 3, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0x1d, 0x8f, 0xec, 0x79,
    ];

    #[test]
    fn an_image_is_typed_by_its_bytes_with_its_size() {
        let sniffed = Sniffed::from_head(&PNG_HEAD);
        assert_eq!(sniffed.content_type, "image/png");
        assert_eq!((sniffed.width, sniffed.height), (Some(3), Some(2)));
        assert!(is_inline(sniffed.content_type));
    }

    #[test]
    fn markup_is_text_and_never_inline() {
        let sniffed = Sniffed::from_head(b"<html><script>alert(1)</script></html>");
        assert!(!is_inline(sniffed.content_type), "{sniffed:?}");
        assert_eq!(sniffed.width, None);
        let svg = Sniffed::from_head(b"<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>");
        assert!(!is_inline(svg.content_type), "{svg:?}");
    }

    #[test]
    fn unknown_bytes_are_octet_stream() {
        let sniffed = Sniffed::from_head(&[0, 1, 2, 3, 0xff, 0xfe]);
        assert_eq!(sniffed.content_type, "application/octet-stream");
        assert_eq!(
            Sniffed::from_head("héllo".as_bytes()).content_type,
            "text/plain; charset=utf-8"
        );
    }
}
