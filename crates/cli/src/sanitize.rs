//! What the terminal is given of text from the server: every character that
//! could act on the terminal or reorder what it shows, written as a visible
//! escape instead.
//!
//! The server refuses such characters in what it stores today, but a body, a
//! name or an error message is still input to this program: an older
//! server, a copied database or a hostile one may hold anything, and one ESC
//! printed raw can clear the screen, retitle the window or fake a prompt.

use std::borrow::Cow;
use std::fmt::Write;

use serde::Serialize;

/// Characters never given to the terminal as they are: the controls (C0,
/// DEL, C1: ESC starts every escape sequence, CSI U+009B is one on its own,
/// a carriage return or backspace overwrites what is shown), the direction
/// controls of Unicode's bidirectional algorithm (a terminal that applies it
/// would reorder the text after them) and the line and paragraph separators.
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` as one line for the terminal: a newline written `\n`, a tab `\t`,
/// any other character that acts on the terminal `\u{1b}` (its code point);
/// the rest as it is. Ordinary text comes back borrowed.
pub fn line(text: &str) -> Cow<'_, str> {
    if !text.contains(acts_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => shown.push_str("\\n"),
            '\t' => shown.push_str("\\t"),
            c if acts_on_terminal(c) => {
                let _ = write!(shown, "\\u{{{:x}}}", c as u32);
            }
            c => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

/// `text` as the lines it has (split at its newlines), each made safe as by
/// `line`: for a screen where a message may take several rows.
pub fn lines(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.split('\n').map(line)
}

/// `value` as one line of JSON for the terminal: the same JSON value, with
/// every character that acts on the terminal (serde_json escapes only the C0
/// ones) written as a `\uXXXX` escape. Outside strings JSON is ASCII without
/// controls, so every such character is inside a string, where the escape
/// means the same character.
pub fn json<T: Serialize>(value: &T) -> String {
    let raw = serde_json::to_string(value).expect("serializable");
    if !raw.contains(acts_on_terminal) {
        return raw;
    }
    let mut shown = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        if acts_on_terminal(c) {
            let _ = write!(shown, "\\u{:04x}", c as u32);
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a hostile message would do to a terminal: clear it, set its
    /// title, ring, move to the line's start, reverse what follows.
    const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\rok\u{9b}31m\u{7f}\u{202e}txt.exe";

    fn harmless(shown: &str) {
        assert!(
            !shown.contains(acts_on_terminal),
            "a control reached the terminal: {shown:?}"
        );
    }

    #[test]
    fn controls_direction_controls_and_separators_are_shown_as_escapes() {
        let shown = line(HOSTILE);
        harmless(&shown);
        assert_eq!(
            shown,
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{d}ok\\u{9b}31m\\u{7f}\\u{202e}txt.exe"
        );
        assert_eq!(line("a\nb\tc\u{2028}d"), "a\\nb\\tc\\u{2028}d");
        for c in ('\0'..='\u{1f}').chain('\u{7f}'..='\u{9f}').chain([
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{2029}', '\u{202A}', '\u{202B}', '\u{202C}',
            '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ]) {
            harmless(&line(&format!("x{c}y")));
        }
    }

    #[test]
    fn ordinary_text_in_any_script_is_shown_as_it_is() {
        for text in [
            "hello, world",
            "שלום עולם",
            "مرحبا",
            "日本語 한국어",
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} \u{1F1EB}\u{1F1F7} \u{2764}\u{FE0F}",
            "C:\\path\\to",
        ] {
            assert!(matches!(line(text), Cow::Borrowed(t) if t == text));
        }
        let rows: Vec<_> = lines("one\ntwo\u{1b}").collect();
        assert_eq!(rows, ["one", "two\\u{1b}"]);
    }

    #[test]
    fn json_keeps_the_value_and_escapes_what_acts_on_the_terminal() {
        let value = serde_json::json!({ "body": HOSTILE, "name": "שלום" });
        let shown = json(&value);
        harmless(&shown);
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
        assert!(shown.contains("שלום"));
    }
}
