use palaver_domain::values::{
    ClientId, DisplayName, JoinCode, MessageBody, Password, RoomName, Username,
};
use palaver_protocol::rest::{
    CreateRoomRequest, DirectRequest, EditMessageRequest, LoginRequest, MarkReadRequest,
    PostMessageRequest, RegisterRequest, RoleRequest, UpdateProfileRequest, UpdateRoomRequest,
    UserIdRequest, BODY_PATTERN, NAME_PATTERN,
};
use regex::Regex;
use serde::de::DeserializeOwned;
use std::sync::LazyLock;

const MAX_BODY_BYTES: usize = 4096;

/// A REST request body: the first byte picks the route's request type, the
/// rest is the body. What deserializes is then checked as the domain checks
/// it, and every value the domain accepts must keep its documented rules.
pub fn rest_body(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 11 {
        0 => {
            if let Some(r) = read::<RegisterRequest>(body) {
                username(&r.username);
                password(r.password);
                if let Some(name) = &r.display_name {
                    label(
                        DisplayName::parse(name).map(DisplayName::into_inner),
                        name,
                        64,
                    );
                }
            }
        }
        1 => {
            if let Some(r) = read::<LoginRequest>(body) {
                username(&r.username);
            }
        }
        2 => {
            if let Some(r) = read::<CreateRoomRequest>(body) {
                label(
                    RoomName::parse(&r.name).map(RoomName::into_inner),
                    &r.name,
                    100,
                );
            }
        }
        3 => {
            if let Some(r) = read::<UpdateRoomRequest>(body) {
                if let Some(name) = &r.name {
                    label(RoomName::parse(name).map(RoomName::into_inner), name, 100);
                }
            }
        }
        4 => {
            if let Some(r) = read::<PostMessageRequest>(body) {
                message_body(r.body);
                if let Some(id) = r.client_id {
                    client_id(id);
                }
                assert!(r.reply_to.is_none_or(|seq| seq <= i64::MAX as u64));
            }
        }
        5 => {
            if let Some(r) = read::<EditMessageRequest>(body) {
                message_body(r.body);
            }
        }
        6 => {
            if let Some(r) = read::<MarkReadRequest>(body) {
                assert!(r.seq <= i64::MAX as u64);
            }
        }
        7 => {
            if let Some(r) = read::<UpdateProfileRequest>(body) {
                if let Some(name) = &r.display_name {
                    label(
                        DisplayName::parse(name).map(DisplayName::into_inner),
                        name,
                        64,
                    );
                }
                if let Some(email) = &r.email {
                    email_address(email);
                }
            }
        }
        8 => {
            read::<RoleRequest>(body);
        }
        9 => {
            read::<UserIdRequest>(body);
            read::<DirectRequest>(body);
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                if let Ok(code) = JoinCode::parse(text) {
                    assert_eq!(code.as_str().len(), 8);
                }
            }
        }
    }
}

fn read<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

fn username(raw: &str) {
    if let Ok(name) = Username::parse(raw) {
        let name = name.as_str();
        assert!((3..=32).contains(&name.len()), "{name:?}");
        assert!(name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)));
    }
}

fn password(raw: String) {
    let chars = raw.chars().count();
    match Password::parse(raw) {
        Ok(_) => assert!((8..=1024).contains(&chars)),
        Err(_) => assert!(!(8..=1024).contains(&chars)),
    }
}

/// The OpenAPI patterns as a client's validator reads them.
static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(NAME_PATTERN).unwrap());
static BODY: LazyLock<Regex> = LazyLock::new(|| Regex::new(BODY_PATTERN).unwrap());

/// A display or room name: accepted exactly when the OpenAPI document says
/// so (its length and its `pattern`), and kept trimmed.
fn label(parsed: palaver_domain::Result<String>, raw: &str, max_chars: usize) {
    let allowed = raw.chars().count() <= max_chars && NAME.is_match(raw);
    match parsed {
        Ok(kept) => {
            assert!(allowed, "{raw:?} accepted");
            assert_eq!(kept, raw.trim());
        }
        Err(_) => assert!(!allowed, "{raw:?} refused"),
    }
}

/// A body: accepted exactly when its length fits and the OpenAPI `pattern`
/// says so, and kept exactly as sent.
fn message_body(raw: String) {
    let len = raw.len();
    let allowed = (1..=MAX_BODY_BYTES).contains(&len) && BODY.is_match(&raw);
    match MessageBody::parse(raw.clone(), MAX_BODY_BYTES) {
        Ok(body) => {
            assert!(allowed, "{raw:?} accepted");
            assert_eq!(body.into_inner(), raw);
        }
        Err(_) => assert!(!allowed, "{raw:?} refused"),
    }
}

fn client_id(raw: String) {
    let valid = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
    assert_eq!(ClientId::parse(raw).is_ok(), valid);
}

/// An accepted address is lower case, one `@`, no white space, at most 254
/// characters; parsing it again gives it back.
fn email_address(raw: &str) {
    if let Ok(email) = palaver_domain::values::Email::parse(raw) {
        let text = email.as_str();
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.matches('@').count(), 1, "{text:?}");
        assert!(!text.chars().any(char::is_whitespace), "{text:?}");
        assert!(text.chars().count() <= 254);
        assert_eq!(palaver_domain::values::Email::parse(text).unwrap(), email);
    }
}

#[cfg(test)]
mod tests {
    use palaver_domain::values::{DisplayName, RoomName};

    use super::{label, message_body};

    /// The characters a reader could be deceived by, each alone, among
    /// ordinary text, and in the positions where the two rules differ.
    #[test]
    fn the_openapi_patterns_agree_with_the_parsers_on_deceptive_text() {
        let mut cases: Vec<String> = Vec::new();
        let specials = [
            '\0',
            '\t',
            '\n',
            '\r',
            '\u{1B}',
            '\u{7F}',
            '\u{85}',
            '\u{9B}',
            ' ',
            '\u{A0}',
            '\u{AD}',
            '\u{0301}',
            '\u{034F}',
            '\u{061C}',
            '\u{115F}',
            '\u{180E}',
            '\u{200B}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2060}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{20E3}',
            '\u{2800}',
            '\u{3000}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{FEFF}',
            '\u{FFA0}',
            '\u{1D173}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{E0100}',
        ];
        for a in specials {
            cases.push(a.to_string());
            cases.push(format!("x{a}y"));
            cases.push(format!(" {a} "));
            for b in specials {
                cases.push(format!("{a}{b}"));
                cases.push(format!("{a}x{b}"));
                cases.push(format!("{a}x\n{b}"));
            }
        }
        for text in [
            "general",
            "שלום עולם",
            "مرحبا",
            "日本語",
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "\u{2067}עולם\u{2069} and \u{202B}x\u{202C}\nnext",
        ] {
            cases.push(text.to_owned());
        }
        for raw in cases {
            label(
                DisplayName::parse(&raw).map(DisplayName::into_inner),
                &raw,
                64,
            );
            label(RoomName::parse(&raw).map(RoomName::into_inner), &raw, 100);
            message_body(raw);
        }
    }
}
