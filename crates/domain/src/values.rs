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

/// An e-mail address: `local@domain`, at most 254 characters, no white space
/// or control characters, the domain with a dot. Folded to lower case, which
/// is how "unique ignoring case" is kept (and how mail systems treat it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        const INVALID: &str = "must be an address like name@example.com";
        let address = raw.to_lowercase();
        if address.chars().count() > 254 {
            return Err(Error::invalid("email", "must be at most 254 characters"));
        }
        if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid("email", INVALID));
        }
        let Some((local, domain)) = address.split_once('@') else {
            return Err(Error::invalid("email", INVALID));
        };
        let domain_ok = domain.split('.').all(|label| !label.is_empty()) && domain.contains('.');
        if local.is_empty() || domain.contains('@') || !domain_ok {
            return Err(Error::invalid("email", INVALID));
        }
        Ok(Self(address))
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

/// Up to `max_chars` characters as given, none of them a control character,
/// not all of them white space; kept with the surrounding white space trimmed.
/// (Each rule is one the OpenAPI document states as it is: `LABEL_PATTERN`.)
fn parse_label(field: &'static str, raw: &str, max_chars: usize) -> Result<String> {
    if raw.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    let text = raw.trim();
    if text.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(text.to_owned())
}

/// 1–64 characters, no control characters.
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

/// 1–100 characters, no control characters.
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

/// A message body: 1 byte up to the configured maximum, kept exactly as sent.
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
        Ok(Self(raw))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
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
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
