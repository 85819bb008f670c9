use palaver_domain::values::{
    ClientId, DisplayName, JoinCode, MessageBody, Password, RoomName, Username,
};
use palaver_protocol::rest::{
    CreateRoomRequest, DirectRequest, EditMessageRequest, LoginRequest, MarkReadRequest,
    PostMessageRequest, RegisterRequest, RoleRequest, UpdateProfileRequest, UpdateRoomRequest,
    UserIdRequest,
};
use serde::de::DeserializeOwned;

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

/// A display or room name: accepted exactly when the OpenAPI pattern says so.
fn label(parsed: palaver_domain::Result<String>, raw: &str, max_chars: usize) {
    let allowed = raw.chars().count() <= max_chars
        && !raw.chars().any(char::is_control)
        && !raw.trim().is_empty();
    match parsed {
        Ok(kept) => {
            assert!(allowed, "{raw:?} accepted");
            assert_eq!(kept, raw.trim());
        }
        Err(_) => assert!(!allowed, "{raw:?} refused"),
    }
}

fn message_body(raw: String) {
    let len = raw.len();
    match MessageBody::parse(raw, MAX_BODY_BYTES) {
        Ok(body) => assert_eq!(body.into_inner().len(), len),
        Err(_) => assert!(len == 0 || len > MAX_BODY_BYTES),
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
