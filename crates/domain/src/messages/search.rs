//! Full-text search over the messages of the caller's rooms: what a query
//! may ask (bounded, so one query cannot make the store rank the whole
//! server), and which parts of a found body match it.
//!
//! A query is words, all of which a message must hold (in any case). A word
//! ending in `*` matches the words it starts. Everything but letters and
//! digits separates words, combining marks included, as SQLite's unicode61
//! tokenizer has it (`is_word_char`); a `*` anywhere but
//! at a word's end is refused, so no query asks for every word that ends or
//! contains something (an index cannot answer that without reading all of it).

use unicode_normalization::char::is_combining_mark;

use crate::error::{Error, Result};

/// Letters and digits, not combining marks: what SQLite's unicode61
/// tokenizer keeps in a word (a mark is a separator there, so `t` plus a
/// mark is the one-letter word `t`).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_combining_mark(c)
}

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most words a query may hold.
pub const MAX_TERMS: usize = 8;
/// The longest word, in characters.
pub const MAX_TERM_CHARS: usize = 64;
/// The fewest characters before a prefix's `*`: shorter prefixes match a
/// large part of every index.
pub const MIN_PREFIX_CHARS: usize = 2;
/// Results per page by default, and at most.
pub const DEFAULT_RESULTS: u32 = 20;
pub const MAX_RESULTS: u32 = 50;
/// How deep paging may go: results past this are never ranked.
pub const MAX_OFFSET: u32 = 500;

/// One word of a query, lower-case; `prefix` when it ended in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub word: String,
    pub prefix: bool,
}

/// A parsed query: 1 to `MAX_TERMS` distinct words of letters and digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<Term>);

impl SearchTerms {
    pub fn parse(query: &str) -> Result<Self> {
        let invalid = |reason| Err(Error::invalid("q", reason));
        if query.chars().count() > MAX_QUERY_CHARS {
            return invalid("must be at most 200 characters");
        }
        let mut terms: Vec<Term> = Vec::new();
        let mut word = String::new();
        let mut chars = query.chars().peekable();
        while let Some(c) = chars.next() {
            if is_word_char(c) {
                word.extend(c.to_lowercase());
                continue;
            }
            let prefix = c == '*';
            if prefix && (word.is_empty() || chars.peek().is_some_and(|n| is_word_char(*n))) {
                return invalid("a * may only end a word (no leading or inner wildcards)");
            }
            if !word.is_empty() {
                push_term(&mut terms, std::mem::take(&mut word), prefix)?;
            }
        }
        if !word.is_empty() {
            push_term(&mut terms, word, false)?;
        }
        if terms.is_empty() {
            return invalid("must hold a word of letters or digits");
        }
        Ok(Self(terms))
    }

    pub fn terms(&self) -> &[Term] {
        &self.0
    }

    /// `body` cut into runs that match a term and runs that do not, in
    /// order; joined, they are `body` again.
    pub fn highlight(&self, body: &str) -> Vec<Part> {
        let mut parts: Vec<Part> = Vec::new();
        let mut push = |text: &str, matched: bool| match parts.last_mut() {
            Some(last) if last.matched == matched => last.text.push_str(text),
            _ => parts.push(Part {
                text: text.to_owned(),
                matched,
            }),
        };
        let mut rest = body;
        while !rest.is_empty() {
            let start = rest.find(is_word_char).unwrap_or(rest.len());
            if start > 0 {
                push(&rest[..start], false);
                rest = &rest[start..];
                continue;
            }
            let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
            let word = &rest[..end];
            push(word, self.matches(word));
            rest = &rest[end..];
        }
        parts
    }

    fn matches(&self, word: &str) -> bool {
        let word = word.to_lowercase();
        self.0.iter().any(|term| {
            if term.prefix {
                word.starts_with(&term.word)
            } else {
                word == term.word
            }
        })
    }
}

fn push_term(terms: &mut Vec<Term>, word: String, prefix: bool) -> Result<()> {
    let chars = word.chars().count();
    if chars > MAX_TERM_CHARS {
        return Err(Error::invalid("q", "words must be at most 64 characters"));
    }
    if prefix && chars < MIN_PREFIX_CHARS {
        return Err(Error::invalid(
            "q",
            "a * must follow at least 2 letters or digits",
        ));
    }
    let term = Term { word, prefix };
    if !terms.contains(&term) {
        if terms.len() == MAX_TERMS {
            return Err(Error::invalid("q", "must hold at most 8 words"));
        }
        terms.push(term);
    }
    Ok(())
}

/// A run of a found message's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub text: String,
    /// Whether the run is a word the query matched.
    pub matched: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(query: &str) -> Vec<(String, bool)> {
        SearchTerms::parse(query)
            .unwrap()
            .terms()
            .iter()
            .map(|t| (t.word.clone(), t.prefix))
            .collect()
    }

    fn refused(query: &str) -> String {
        match SearchTerms::parse(query) {
            Err(Error::Invalid { field, reason }) => {
                assert_eq!(field, "q");
                reason.to_string()
            }
            other => panic!("{query:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn words_are_letters_and_digits_lower_cased_and_deduplicated() {
        assert_eq!(
            words("Hello, WORLD! hello-42 \"Zoë\""),
            [
                ("hello".into(), false),
                ("world".into(), false),
                ("42".into(), false),
                ("zoë".into(), false)
            ]
        );
        assert_eq!(
            words("deploy* tonight"),
            [("deploy".into(), true), ("tonight".into(), false)]
        );
        // Operators of the stores' query languages are only separators here.
        assert_eq!(
            words("a OR b NEAR(c) \"d\" -e ^f:"),
            ["a", "or", "b", "near", "c", "d", "e", "f"].map(|w| (w.to_string(), false))
        );
    }

    #[test]
    fn what_would_cost_the_index_a_full_read_is_refused() {
        for query in ["*ing", "de*ploy", "foo **", "*", "a*"] {
            refused(query);
        }
        refused("");
        refused("  ,.;  ");
        refused(&"a ".repeat(101));
        refused("one two three four five six seven eight nine");
        refused(&"x".repeat(65));
        // A combining mark separates words: this is the one-letter prefix t*.
        refused("t\u{0345}*");
        assert_eq!(words(&"x".repeat(64)).len(), 1);
        assert_eq!(
            words("one two three four five six seven eight one").len(),
            8
        );
    }

    #[test]
    fn highlighting_marks_whole_words_and_prefixes_and_keeps_the_text() {
        let terms = SearchTerms::parse("deploy* friday").unwrap();
        let body = "Deploying on Friday? No: friday's deployment, not fridays.";
        let parts = terms.highlight(body);
        assert_eq!(
            parts.iter().map(|p| p.text.as_str()).collect::<String>(),
            body
        );
        let matched: Vec<&str> = parts
            .iter()
            .filter(|p| p.matched)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(matched, ["Deploying", "Friday", "friday", "deployment"]);
        assert_eq!(terms.highlight(""), []);
        let none = terms.highlight("nothing here");
        assert_eq!(none.len(), 1);
        assert!(!none[0].matched);
    }
}
