//! Input newtypes that parse, not validate: holding one proves the value is valid.

use crate::error::{Error, Result};

/// 3–32 of `[A-Za-z0-9_.-]`, exactly as given; upper-case input is folded to
/// lower case, which is how "unique ignoring case" is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self> {
        let name = raw.to_ascii_lowercase();
        let len = name.chars().count();
        if !(3..=32).contains(&len) {
            return Err(Error::invalid("username", "must be 3 to 32 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        {
            return Err(Error::invalid(
                "username",
                "may contain only a-z, 0-9, '_', '.' and '-'",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address, parsed with the grammar of the mailer (lettre's
/// `Address`, itself RFC 5321/6531 through `email_address`), so that every
/// address Palaver stores is one the mailer takes as it is, and delivers to
/// that address and no other. Narrower than the mailer: a bare `local@domain`
/// (no display name, no angle brackets, no quoted local part, no IP literal),
/// the domain with a dot, at most 254 characters.
///
/// Stored in one canonical form, lower case (how mail systems treat it in
/// practice), so that uniqueness holds on the address, not on its spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        const INVALID: &str = "must be an address like name@example.com";
        if raw.chars().count() > 254 {
            return Err(Error::invalid("email", "must be at most 254 characters"));
        }
        let canonical = raw.to_lowercase();
        // The canonical form is what is checked: lower-casing may change a
        // character's length, and the mailer only ever sees this form.
        let Ok(address) = canonical.parse::<lettre::Address>() else {
            return Err(Error::invalid("email", INVALID));
        };
        let (local, domain) = (address.user(), address.domain());
        let plain = |c: char| !(c.is_whitespace() || c.is_control() || "\"[]<>".contains(c));
        if canonical.chars().count() > 254
            || !local.chars().all(plain)
            || !domain.chars().all(plain)
            || !domain.contains('.')
            || domain.split('.').any(str::is_empty)
        {
            return Err(Error::invalid("email", INVALID));
        }
        Ok(Self(address.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8 to 1024 characters (the upper bound bounds hashing work).
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self> {
        if raw.chars().count() < 8 {
            return Err(Error::invalid("password", "must be at least 8 characters"));
        }
        if raw.chars().count() > 1024 {
            return Err(Error::invalid(
                "password",
                "must be at most 1024 characters",
            ));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Up to `max_chars` characters, kept with the surrounding white space
/// trimmed. A name is read by others where they cannot tell what it hides, so
/// it must not mislead them: no control character, no direction control
/// (`is_direction_control`: a name is short, and a mark or isolate in it
/// reorders the text around it wherever it is shown), no line or paragraph
/// separator (a name that seems to end a line and start another), and at
/// least one character that shows something (`is_invisible`: a name made of
/// zero-width or filler characters impersonates no one, or everyone). Zero-width
/// joiners, variation selectors and tag characters stay legitimate inside a
/// name beside what they join or modify (a family emoji, a red heart, the
/// flag of Scotland).
///
/// The OpenAPI document states exactly these rules as the fields' `pattern`
/// (`palaver_protocol::rest::NAME_PATTERN`); the `rest_body` fuzz harness
/// checks that the two agree.
pub(crate) fn parse_label(field: &'static str, raw: &str, max_chars: usize) -> Result<String> {
    if raw.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    if raw.chars().any(is_direction_control) {
        return Err(Error::invalid(
            field,
            "must not contain direction controls (U+061C, U+200E, U+200F, \
             U+202A to U+202E, U+2066 to U+2069)",
        ));
    }
    if raw.contains(['\u{2028}', '\u{2029}']) {
        return Err(Error::invalid(
            field,
            "must not contain line or paragraph separators",
        ));
    }
    let text = raw.trim();
    if text.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if text.chars().all(is_invisible) {
        return Err(Error::invalid(
            field,
            "must contain a visible character, not only invisible ones",
        ));
    }
    Ok(text.to_owned())
}

/// The characters of Unicode's bidirectional algorithm (UAX #9) that change
/// the order or direction of the text around them: the Arabic letter mark,
/// the left-to-right and right-to-left marks, the embeddings, overrides and
/// their pop (U+202A to U+202E), the isolates and their pop (U+2066 to U+2069).
pub fn is_direction_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters that show nothing by themselves: white space; Unicode's
/// default-ignorable code points (zero-width space, joiners, word joiner and
/// invisible operators, soft hyphen, the BOM, variation selectors, tag
/// characters, the Hangul and Mongolian fillers, the direction controls…);
/// the fillers drawn blank (the braille blank U+2800); and the combining marks
/// that belong to no script (U+0300 to U+036F and the other "combining
/// diacritical marks" blocks), which draw on the character before them and so
/// on nothing in a name made of them alone.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0300}'..='\u{036F}'
                | '\u{0483}'..='\u{0489}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{1AB0}'..='\u{1AFF}'
                | '\u{1DC0}'..='\u{1DFF}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{20D0}'..='\u{20FF}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FE20}'..='\u{FE2F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// 1–64 characters, the rules of every name people read (`parse_label`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self> {
        parse_label("display_name", raw, 64).map(Self)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// 1–100 characters, the rules of every name people read (`parse_label`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

impl RoomName {
    pub fn parse(raw: &str) -> Result<Self> {
        parse_label("name", raw, 100).map(Self)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Why: a report's or an admin action's reason, 1–500 characters, one
/// line, the rules of every name people read (`parse_label`): others read it
/// (admins, and a room's members when it is taken down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

impl Reason {
    pub fn parse(raw: &str) -> Result<Self> {
        parse_label("reason", raw, MAX_REASON_CHARS).map(Self)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A message body: 1 byte up to the configured maximum, kept exactly as sent.
///
/// Text that would mislead its readers is refused, not cleaned: no control
/// character but newline and tab (a carriage return, a backspace or an escape
/// sequence rewrites what a terminal already shows); no direction override
/// (U+202D, U+202E: they reverse the letters inside them, so `txt.exe` reads
/// as something else); and each embedding or isolate (U+202A, U+202B, U+2066
/// to U+2068) closed on the line it opens (U+202C, U+2069), not nested, so
/// none reorders what follows the message. The marks (U+200E, U+200F, U+061C)
/// are ordinary right-to-left writing and stay. Refused rather than stripped:
/// the sender learns at once what was wrong, and the stored text is what they
/// sent and saw, where stripping would silently change it (removing one
/// control of a pair reorders the text differently from what was written).
///
/// The OpenAPI document states exactly these rules as the field's `pattern`
/// (`palaver_protocol::rest::BODY_PATTERN`); the `rest_body` fuzz harness
/// checks that the two agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(raw: String, max_bytes: usize) -> Result<Self> {
        if raw.is_empty() {
            return Err(Error::invalid("body", "must not be empty"));
        }
        if raw.len() > max_bytes {
            return Err(Error::invalid(
                "body",
                format!("must be at most {max_bytes} bytes"),
            ));
        }
        check_body_text(&raw)?;
        Ok(Self(raw))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

fn check_body_text(raw: &str) -> Result<()> {
    const UNBALANCED: &str = "must close each direction embedding or isolate \
         (U+202A, U+202B, U+2066 to U+2068) on the line it opens, with U+202C or \
         U+2069, without nesting";
    // A paragraph separator ends every embedding and isolate (UAX #9), as a
    // newline does.
    for line in raw.split(['\n', '\u{2029}']) {
        let mut open: Option<char> = None;
        for c in line.chars() {
            match c {
                '\t' => {}
                c if c.is_control() => {
                    return Err(Error::invalid(
                        "body",
                        "must not contain control characters other than newline and tab",
                    ))
                }
                '\u{202D}' | '\u{202E}' => {
                    return Err(Error::invalid(
                        "body",
                        "must not contain direction overrides (U+202D, U+202E)",
                    ))
                }
                '\u{202A}' | '\u{202B}' | '\u{2066}'..='\u{2068}' if open.is_none() => {
                    open = Some(c)
                }
                '\u{202C}' if matches!(open, Some('\u{202A}' | '\u{202B}')) => open = None,
                '\u{2069}' if matches!(open, Some('\u{2066}'..='\u{2068}')) => open = None,
                '\u{202A}'..='\u{202C}' | '\u{2066}'..='\u{2069}' => {
                    return Err(Error::invalid("body", UNBALANCED))
                }
                _ => {}
            }
        }
        if open.is_some() {
            return Err(Error::invalid("body", UNBALANCED));
        }
    }
    Ok(())
}

/// A sender's idempotency key: 1–64 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(raw: String) -> Result<Self> {
        if raw.is_empty() || raw.len() > 64 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "client_id",
                "must be 1 to 64 printable ASCII characters",
            ));
        }
        Ok(Self(raw))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Alphabet for join codes: no 0/O, 1/I/L, so codes survive being read aloud.
pub const JOIN_CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const JOIN_CODE_LEN: usize = 8;

/// A room's join code; input is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinCode(String);

impl JoinCode {
    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        let code = (0..JOIN_CODE_LEN)
            .map(|_| JOIN_CODE_ALPHABET[rng.gen_range(0..JOIN_CODE_ALPHABET.len())] as char)
            .collect();
        Self(code)
    }

    pub fn parse(raw: &str) -> Result<Self> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() != JOIN_CODE_LEN || !code.bytes().all(|b| JOIN_CODE_ALPHABET.contains(&b)) {
            // Unknown and malformed codes are the same to the caller.
            return Err(Error::NotFound("room"));
        }
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_folds_case_and_rejects_bad_characters_and_lengths() {
        assert_eq!(Username::parse("Alice_1").unwrap().as_str(), "alice_1");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("álice").is_err());
        assert!(Username::parse("a.b-c_d").is_ok());
    }

    #[test]
    fn password_needs_eight_characters() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("eight888".into()).is_ok());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pass".into()).unwrap()),
            "Password(..)"
        );
    }

    #[test]
    fn message_body_is_bounded_in_bytes() {
        assert!(MessageBody::parse(String::new(), 10).is_err());
        assert!(MessageBody::parse("x".repeat(10), 10).is_ok());
        assert!(MessageBody::parse("x".repeat(11), 10).is_err());
        // Four bytes of UTF-8 count as four.
        assert!(MessageBody::parse("🦀🦀🦀".into(), 10).is_err());
    }

    #[test]
    fn room_name_is_trimmed_and_must_not_be_blank() {
        assert_eq!(
            RoomName::parse("  general ").unwrap().into_inner(),
            "general"
        );
        assert!(RoomName::parse("   ").is_err());
        assert!(RoomName::parse("a\u{7}b").is_err());
    }

    /// Ordinary text in many scripts, as people write it.
    const ORDINARY: &[&str] = &[
        "Zoë Ångström",
        "مرحبا بالعالم",
        "שלום עולם, hello",
        "日本語のチャット",
        "한국어 대화방",
        "Ελληνικά и русский",
        "हिन्दी",
        // Emoji sequences: zero-width joiners, a variation selector, a
        // keycap, regional indicators, a subdivision flag's tag characters.
        "family \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
        "\u{2764}\u{FE0F} \u{0031}\u{FE0F}\u{20E3}",
        "\u{1F1EB}\u{1F1F7}\u{1F1EF}\u{1F1F5}",
        "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
        // A combining accent on its letter.
        "Cafe\u{0301}",
    ];

    #[test]
    fn names_in_every_script_and_emoji_sequences_are_kept() {
        for text in ORDINARY {
            assert_eq!(RoomName::parse(text).unwrap().into_inner(), *text);
            assert_eq!(DisplayName::parse(text).unwrap().into_inner(), *text);
        }
    }

    fn refusal(result: Result<impl std::fmt::Debug>) -> String {
        match result {
            Err(Error::Invalid { reason, .. }) => reason,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn names_refuse_direction_controls_each_with_a_reason() {
        for c in [
            '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let name = format!("invoice{c}fdp.exe");
            let reason = refusal(RoomName::parse(&name));
            assert!(reason.contains("direction controls"), "{c:?}: {reason}");
            let Err(Error::Invalid { field, .. }) = DisplayName::parse(&name) else {
                panic!("{c:?} in a display name");
            };
            assert_eq!(field, "display_name");
        }
    }

    #[test]
    fn names_refuse_control_characters_and_line_separators() {
        for c in [
            '\0', '\u{7}', '\t', '\n', '\r', '\u{1B}', '\u{7F}', '\u{85}', '\u{9B}',
        ] {
            let reason = refusal(DisplayName::parse(&format!("ali{c}ce")));
            assert!(reason.contains("control characters"), "{c:?}: {reason}");
        }
        for c in ['\u{2028}', '\u{2029}'] {
            let reason = refusal(RoomName::parse(&format!("general{c}random")));
            assert!(reason.contains("separators"), "{c:?}: {reason}");
        }
    }

    #[test]
    fn names_made_only_of_invisible_characters_are_refused() {
        for name in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}",
            "\u{2060}\u{FEFF}",
            " \u{3164} ",
            "\u{115F}\u{1160}",
            "\u{FFA0}",
            "\u{180E}",
            "\u{FE0F}\u{FE0E}",
            "\u{E0100}",
            "\u{E0041}\u{E0042}\u{E007F}",
            "\u{00AD}",
            "\u{034F}",
            "\u{0301}\u{0302}\u{20DD}",
            "\u{2800}\u{2800}",
            "\u{2063}",
            "\u{00A0}\u{3000}\u{200B}",
        ] {
            let reason = refusal(RoomName::parse(name));
            assert!(
                reason.contains("visible") || reason.contains("empty"),
                "{name:?}: {reason}"
            );
            assert!(DisplayName::parse(name).is_err(), "{name:?}");
        }
        // One visible character among them is a name.
        assert!(DisplayName::parse("\u{200B}x\u{200B}").is_ok());
    }

    #[test]
    fn bodies_keep_every_script_emoji_sequences_newlines_and_tabs() {
        for text in ORDINARY {
            assert_eq!(
                MessageBody::parse(text.to_string(), 4096)
                    .unwrap()
                    .into_inner(),
                *text
            );
        }
        // Right-to-left text with the marks that place its punctuation, an
        // isolate and an embedding each closed on its line.
        let body = "line one\n\tindented\n\n\u{200F}שלום!\u{200F} (Dana) \u{2067}עולם\u{2069} \
                    \u{202B}x\u{202C}\u{2029}end";
        assert_eq!(
            MessageBody::parse(body.into(), 4096).unwrap().into_inner(),
            body,
            "kept exactly as sent"
        );
        // Invisible characters alone are not refused in a body: nothing in it
        // poses as anything else.
        assert!(MessageBody::parse("\u{200B}".into(), 4096).is_ok());
    }

    #[test]
    fn bodies_refuse_control_characters_but_newline_and_tab() {
        for c in [
            '\0', '\u{7}', '\u{8}', '\r', '\u{B}', '\u{C}', '\u{1B}', '\u{7F}', '\u{85}', '\u{9B}',
        ] {
            let reason = refusal(MessageBody::parse(format!("a{c}b"), 4096));
            assert!(reason.contains("control characters"), "{c:?}: {reason}");
        }
        assert!(MessageBody::parse("\u{1b}[2J\u{1b}]0;pwned\u{7}".into(), 4096).is_err());
    }

    #[test]
    fn bodies_refuse_direction_overrides_and_unclosed_or_nested_isolates() {
        for body in ["invoice\u{202E}fdp.exe", "\u{202D}abc\u{202C}"] {
            let reason = refusal(MessageBody::parse(body.into(), 4096));
            assert!(reason.contains("overrides"), "{body:?}: {reason}");
        }
        for body in [
            "\u{2067}open",
            "\u{202B}open",
            "close\u{2069}",
            "close\u{202C}",
            // Closed on another line: the line in between is reordered.
            "\u{2066}one\ntwo\u{2069}",
            "\u{2066}one\u{2029}two\u{2069}",
            // An isolate closed as an embedding, and the other way round.
            "\u{2066}x\u{202C}",
            "\u{202A}x\u{2069}",
            // Nested.
            "\u{2066}a\u{2067}b\u{2069}c\u{2069}",
        ] {
            let reason = refusal(MessageBody::parse(body.into(), 4096));
            assert!(reason.contains("close each"), "{body:?}: {reason}");
        }
    }

    #[test]
    fn join_codes_round_trip_case_insensitively() {
        let code = JoinCode::generate();
        assert_eq!(code.as_str().len(), JOIN_CODE_LEN);
        let again = JoinCode::parse(&code.as_str().to_ascii_lowercase()).unwrap();
        assert_eq!(again, code);
        assert!(JoinCode::parse("O0I1L000").is_err());
    }

    #[test]
    fn client_id_is_printable_ascii() {
        assert!(ClientId::parse("abc-123".into()).is_ok());
        assert!(ClientId::parse(String::new()).is_err());
        assert!(ClientId::parse("has space".into()).is_err());
        assert!(ClientId::parse("x".repeat(65)).is_err());
    }

    #[test]
    fn email_addresses_fold_to_lower_case_and_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(
            Email::parse("Alice@Example.COM").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a@b@c.d",
            "a b@c.d",
            "a@.com",
            "a@b..c",
            "a\u{7}@b.c",
            // Spellings the mailer would read as another address.
            "<victim@example.com>",
            "Victim <victim@example.com>",
            "\"victim\"@example.com",
            "victim@[127.0.0.1]",
            // Spellings the mailer refuses: never stored, never queued.
            "a)b@example.com",
            "a(b@example.com",
            "a,b@example.com",
            "a:b@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a@-example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
        for good in [
            "a+tag@example.com",
            "o'brien@example.co.uk",
            "x_y-z.w@sub.example.org",
        ] {
            assert_eq!(Email::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn every_stored_address_is_one_the_mailer_takes_as_it_is() {
        for raw in ["Alice@Example.COM", "a+tag@Example.com", "ünï@exämple.com"] {
            let email = Email::parse(raw).unwrap();
            let mailer: lettre::Address = email.as_str().parse().unwrap();
            assert_eq!(mailer.to_string(), email.as_str());
            assert_eq!(Email::parse(email.as_str()).unwrap(), email, "canonical");
        }
    }
}
