//! `Emoji`: what a reaction is, parsed: one emoji (a single extended
//! grapheme cluster made of emoji characters), or a short name `:name:`.

use unicode_properties::emoji::{self, UnicodeEmoji};
use unicode_segmentation::UnicodeSegmentation;

use crate::error::{Error, Result};

/// The longest emoji sequence accepted, in UTF-8 bytes: a couple with two
/// skin tones joined by ZWJs is 35; subdivision flags with tags are 28.
pub const MAX_EMOJI_BYTES: usize = 64;
/// The longest `:name:`, without its colons.
pub const MAX_NAME_CHARS: usize = 32;

/// A reaction's emoji, as stored and shown: exactly what the client sent
/// (no variation selector is added or dropped, so `❤` and `❤️` are two).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Emoji(String);

impl Emoji {
    pub fn parse(raw: &str) -> Result<Emoji> {
        let valid = if raw.starts_with(':') {
            is_short_name(raw)
        } else {
            is_one_emoji(raw)
        };
        if !valid {
            return Err(Error::invalid(
                "emoji",
                format!(
                    "must be one emoji (at most {MAX_EMOJI_BYTES} bytes) \
                     or :name: of 1 to {MAX_NAME_CHARS} characters a-z 0-9 _ + -"
                ),
            ));
        }
        Ok(Emoji(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Emoji {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `:name:` with 1–32 of `[a-z0-9_+-]` between the colons.
fn is_short_name(raw: &str) -> bool {
    let Some(name) = raw
        .strip_prefix(':')
        .and_then(|rest| rest.strip_suffix(':'))
    else {
        return false;
    };
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'+' | b'-'))
}

/// One extended grapheme cluster, every character of which belongs in an
/// emoji sequence, starting with an emoji character. ASCII digits, `#`
/// and `*` are emoji characters only as keycaps (followed by U+20E3).
fn is_one_emoji(raw: &str) -> bool {
    if raw.is_empty() || raw.len() > MAX_EMOJI_BYTES {
        return false;
    }
    let mut clusters = raw.graphemes(true);
    if clusters.next() != Some(raw) || clusters.next().is_some() {
        return false;
    }
    let Some(first) = raw.chars().next() else {
        return false;
    };
    if !first.is_emoji_char() {
        return false;
    }
    if first.is_ascii() && !raw.ends_with('\u{20E3}') {
        return false;
    }
    raw.split('\u{200D}').all(is_emoji_element)
}

/// One element of a ZWJ sequence (UTS #51): a keycap, a flag (two regional
/// indicators), a tag sequence (a black flag, tags, a cancel tag), or an
/// emoji character followed by at most one presentation selector, or by one
/// skin tone when it takes one. Nothing else: a repeated selector or skin
/// tone, or a tag outside a flag, would make a look-alike of a reaction
/// already there, counted apart.
fn is_emoji_element(element: &str) -> bool {
    let mut chars = element.chars();
    let Some(base) = chars.next() else {
        return false;
    };
    let rest: Vec<char> = chars.collect();
    if emoji::is_regional_indicator(base) {
        return matches!(rest.as_slice(), [second] if emoji::is_regional_indicator(*second));
    }
    if base.is_ascii() {
        return matches!(base, '0'..='9' | '#' | '*')
            && matches!(rest.as_slice(), ['\u{FE0F}', '\u{20E3}'] | ['\u{20E3}']);
    }
    if !base.is_emoji_char() || is_skin_tone(base) {
        return false;
    }
    match rest.as_slice() {
        [] => true,
        ['\u{FE0E}' | '\u{FE0F}'] => true,
        [tone] if is_skin_tone(*tone) => matches!(
            base.emoji_status(),
            emoji::EmojiStatus::EmojiModifierBase
                | emoji::EmojiStatus::EmojiPresentationAndModifierBase
        ),
        [tags @ .., '\u{E007F}'] if base == '\u{1F3F4}' && !tags.is_empty() => {
            (tags.iter()).all(|tag| ('\u{E0020}'..='\u{E007E}').contains(tag))
        }
        _ => false,
    }
}

/// The five skin tones (Emoji_Modifier).
fn is_skin_tone(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_emoji_sequences_and_short_names() {
        for ok in [
            "👍",
            "👍🏽",
            "❤️",
            "❤",
            "🇫🇷",
            "👨‍👩‍👧‍👦",
            "🧑🏻‍❤️‍💋‍🧑🏼",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "1️⃣",
            "#️⃣",
            "🏳️\u{200D}🌈",
            "🏴\u{200D}☠️",
            "👁️\u{200D}🗨️",
            "🤝🏻",
            ":+1:",
            ":party_parrot:",
            ":a:",
            ":abcdefghijklmnopqrstuvwxyz012345:",
        ] {
            assert_eq!(Emoji::parse(ok).unwrap().as_str(), ok, "{ok:?}");
        }
    }

    #[test]
    fn refuses_text_several_emoji_and_bad_names() {
        for bad in [
            "",
            "a",
            "1",
            "#",
            "ok",
            "👍👍",
            "👍 ",
            " 👍",
            "👍a",
            "\u{200D}",
            "é",
            "::",
            ":Caps:",
            ":a b:",
            ":abcdefghijklmnopqrstuvwxyz0123456:",
            ":x",
            "x:",
            ":é:",
            "<b>",
            // Look-alikes of a reaction that is there already.
            "👍\u{E0041}\u{E0041}",
            "❤️\u{FE0F}\u{FE0F}",
            "👍🏽🏽🏽",
            "❤🏽",
            "🏴\u{E0067}\u{E0062}",
            "👍\u{200D}",
        ] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_sequences_past_the_byte_bound() {
        // One cluster (a long ZWJ chain) that is still too long to store.
        let chain = ["👨"; 12].join("\u{200D}");
        assert!(chain.len() > MAX_EMOJI_BYTES);
        assert!(Emoji::parse(&chain).is_err());
    }
}
