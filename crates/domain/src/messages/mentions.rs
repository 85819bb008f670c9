//! Mentions: which usernames a message body names with `@`.
//!
//! `@` followed by a username (the `Username` grammar: 3 to 32 of a–z, 0–9,
//! `_`, `.`, `-`, in any case) is a mention when the `@` does not continue a
//! word (`bob@example.com` names no one) and the name is not followed by
//! more of a word (`@alicé` names no one). A name's trailing dots end the
//! sentence, not the name (`thanks @alice.` names `alice`). Names are
//! lower-cased and kept once each, in order of first appearance, at most
//! `MAX_MENTIONS` of them: the rest of the body names no one more.
//!
//! Whether a name is someone, and a member of the room, the store decides in
//! the transaction that stores the message; a name that is not a member is
//! just text, and the sender's own name is not a mention of anyone.

use crate::error::{Error, Result};
use crate::ids::RoomId;
use crate::store::MentionCursor;
use crate::time::Timestamp;

/// Mentions per page by default, and at most.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 100;

/// The most distinct names one message may mention.
pub const MAX_MENTIONS: usize = 20;

const MIN_NAME: usize = 3;
const MAX_NAME: usize = 32;

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.-".contains(&b)
}

/// The lower-case usernames `body` mentions, each once, in order, at most
/// `MAX_MENTIONS`. Empty, without scanning further, for a body with no `@`.
pub fn parse(body: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if !body.contains('@') {
        return names;
    }
    let bytes = body.as_bytes();
    let mut at = 0;
    while let Some(found) = body[at..].find('@') {
        let start = at + found;
        at = start + 1;
        // Inside a word (an address, `@@name`): not a mention.
        let before = body[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || "_.-@".contains(c)) {
            continue;
        }
        let mut end = at;
        while end < bytes.len() && is_name_byte(bytes[end]) {
            end += 1;
        }
        // Followed by more of a word (a letter outside the grammar).
        if body[end..]
            .chars()
            .next()
            .is_some_and(char::is_alphanumeric)
        {
            at = end;
            continue;
        }
        let name = body[at..end].trim_end_matches('.');
        at = end;
        if !(MIN_NAME..=MAX_NAME).contains(&name.len()) {
            continue;
        }
        let name = name.to_ascii_lowercase();
        if !names.contains(&name) {
            names.push(name);
            if names.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    names
}

/// A page of mentions' cursor as clients pass it: the last mention of the
/// page before, `{created_at}-{room}-{seq}`.
pub fn encode_cursor(cursor: MentionCursor) -> String {
    format!("{}-{}-{}", cursor.created_at.0, cursor.room.0, cursor.seq)
}

pub fn parse_cursor(raw: &str) -> Result<MentionCursor> {
    let invalid = || Error::invalid("cursor", "must be the `next` of a page of mentions");
    let mut parts = raw.splitn(3, '-');
    let mut number = || -> Result<i64> {
        (parts.next().and_then(|part| part.parse::<i64>().ok()))
            .filter(|n| *n >= 0)
            .ok_or_else(invalid)
    };
    Ok(MentionCursor {
        created_at: Timestamp(number()?),
        room: RoomId(number()?),
        seq: number()? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written_and_nothing_else_reads() {
        let cursor = MentionCursor {
            created_at: Timestamp(1_700_000_000_123),
            room: RoomId(7),
            seq: 42,
        };
        assert_eq!(parse_cursor(&encode_cursor(cursor)).unwrap(), cursor);
        for bad in ["", "1-2", "1-2-x", "-1-2-3", "1-2-3-4", "a-b-c"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_after_an_at_sign_are_mentions_lower_cased_in_order() {
        assert_eq!(parse("hi @Alice and @bob_2"), ["alice", "bob_2"]);
        assert_eq!(parse("@carol: look"), ["carol"]);
        assert_eq!(parse("(@dave) [@erin]"), ["dave", "erin"]);
        assert_eq!(parse("line\n@frank"), ["frank"]);
        assert_eq!(parse("a.b-c_d @a.b-c_d"), ["a.b-c_d"]);
    }

    #[test]
    fn a_body_without_an_at_sign_names_no_one() {
        assert!(parse("hello everyone").is_empty());
        assert!(parse("").is_empty());
        assert!(parse("@").is_empty());
    }

    #[test]
    fn an_at_sign_inside_a_word_is_not_a_mention() {
        assert!(parse("mail bob@example.com").is_empty());
        assert!(parse("x.@alice _@alice -@alice").is_empty());
        assert!(parse("@@alice").is_empty());
        assert!(parse("é@alice").is_empty());
    }

    #[test]
    fn a_name_followed_by_more_of_a_word_is_not_a_mention() {
        assert!(parse("@alicé").is_empty());
        assert_eq!(parse("@alice's turn"), ["alice"]);
        assert_eq!(parse("@alice, @bob!"), ["alice", "bob"]);
    }

    #[test]
    fn trailing_dots_end_the_sentence_not_the_name() {
        assert_eq!(parse("thanks @alice."), ["alice"]);
        assert_eq!(parse("thanks @alice..."), ["alice"]);
        assert_eq!(parse("@a.b."), ["a.b"]);
    }

    #[test]
    fn names_outside_the_username_grammar_length_are_not_mentions() {
        assert!(parse("@ab").is_empty());
        assert_eq!(parse(&format!("@{}", "a".repeat(32))), ["a".repeat(32)]);
        assert!(parse(&format!("@{}", "a".repeat(33))).is_empty());
        // The dots trimmed, too short.
        assert!(parse("@ab.").is_empty());
    }

    #[test]
    fn each_name_counts_once_whatever_its_case() {
        assert_eq!(parse("@alice @ALICE @Alice @bob @alice"), ["alice", "bob"]);
    }

    #[test]
    fn at_most_the_cap_of_distinct_names_is_kept() {
        let body: String = (0..30).map(|n| format!("@user{n:02} ")).collect();
        let names = parse(&body);
        assert_eq!(names.len(), MAX_MENTIONS);
        assert_eq!(names[0], "user00");
        assert_eq!(names[MAX_MENTIONS - 1], "user19");
        // Repeats do not use up the cap.
        let repeated = "@same ".repeat(100) + "@other";
        assert_eq!(parse(&repeated), ["same", "other"]);
    }
}
