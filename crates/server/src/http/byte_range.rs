//! `Range: bytes=…` of a download, for a file of known size: one range
//! served (206), none or several answered with the whole file (which RFC
//! 9110 allows), one that misses the file answered 416.

use palaver_domain::blobs::ByteRange;

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// The whole file (no header, a unit other than bytes, several ranges,
    /// or one that cannot be read).
    Whole,
    Part(ByteRange),
    /// A range that begins past the end.
    Unsatisfiable,
}

pub fn asked(header: Option<&str>, size: u64) -> Asked {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Asked::Whole;
    };
    if spec.contains(',') {
        return Asked::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Asked::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (number(first), number(last), last.trim().is_empty()) {
        // bytes=-N: the last N bytes.
        (None, Some(suffix), _) if first.trim().is_empty() => {
            if suffix == 0 || size == 0 {
                return Asked::Unsatisfiable;
            }
            Asked::Part(ByteRange {
                start: size.saturating_sub(suffix),
                end: size,
            })
        }
        // bytes=N- and bytes=N-M (M inclusive, cut at the end).
        (Some(start), end, open) if end.is_some() || open => {
            if start >= size {
                return Asked::Unsatisfiable;
            }
            let end = match end {
                Some(last) if last < start => return Asked::Whole,
                Some(last) => last.saturating_add(1).min(size),
                None => size,
            };
            Asked::Part(ByteRange { start, end })
        }
        _ => Asked::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64, end: u64) -> Asked {
        Asked::Part(ByteRange { start, end })
    }

    #[test]
    fn one_range_in_each_spelling() {
        assert_eq!(asked(Some("bytes=0-9"), 100), part(0, 10));
        assert_eq!(asked(Some("bytes=90-"), 100), part(90, 100));
        assert_eq!(asked(Some("bytes=-10"), 100), part(90, 100));
        assert_eq!(asked(Some("bytes=-1000"), 100), part(0, 100));
        assert_eq!(asked(Some("bytes=95-1000"), 100), part(95, 100));
    }

    #[test]
    fn past_the_end_is_unsatisfiable_and_anything_odd_is_the_whole() {
        assert_eq!(asked(Some("bytes=100-"), 100), Asked::Unsatisfiable);
        assert_eq!(asked(Some("bytes=-0"), 100), Asked::Unsatisfiable);
        for odd in [
            None,
            Some("items=0-1"),
            Some("bytes=0-1,5-6"),
            Some("bytes=5-1"),
            Some("bytes=x-"),
            Some("bytes=-"),
        ] {
            assert_eq!(asked(odd, 100), Asked::Whole, "{odd:?}");
        }
    }
}
