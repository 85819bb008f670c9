//! Differential: Palaver's e-mail address (`Email::parse`) against the
//! mailer's own reading of it (lettre), so that no stored address is one the
//! mailer refuses (and retries) or delivers somewhere else.

use lettre::message::Mailbox;
use lettre::Address;
use palaver_domain::values::Email;

/// An address as a registration or `PATCH /users/me` sends it.
pub fn email_address(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let canonical = text.to_lowercase();
    let mailer = canonical.parse::<Address>();
    let Ok(email) = Email::parse(text) else {
        // Refused: only what the mailer refuses too, or one of the narrower
        // rules Palaver documents (no display name or brackets, no quoted
        // local part, no IP literal, a dotted domain, 254 characters).
        if let Ok(address) = mailer {
            let plain = |part: &str| {
                part.chars()
                    .all(|c| !(c.is_whitespace() || c.is_control() || "\"[]<>".contains(c)))
            };
            let narrower = text.chars().count() > 254
                || canonical.chars().count() > 254
                || !plain(address.user())
                || !plain(address.domain())
                || !address.domain().contains('.')
                || address.domain().split('.').any(str::is_empty);
            assert!(narrower, "{text:?}: refused, though the mailer takes it");
        }
        return;
    };
    let stored = email.as_str();
    // The mailer takes the stored form as it is, and reads the same address.
    let address: Address = stored
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} stored as {stored:?}, which the mailer refuses: {e}"));
    assert_eq!(address.to_string(), stored, "{text:?}");
    assert_eq!(mailer.as_ref().ok(), Some(&address), "{text:?}");
    // Read as a mailbox (`Name <address>` included), it is still that address.
    let mailbox: Mailbox = stored
        .parse()
        .unwrap_or_else(|e| panic!("{stored:?} is no mailbox: {e}"));
    assert_eq!(mailbox.email, address, "{text:?}");
    // The `To:` the mailer writes reads back as the same address.
    let header: Mailbox = Mailbox::new(None, address.clone())
        .to_string()
        .parse()
        .unwrap_or_else(|e| panic!("the To: of {stored:?} does not read back: {e}"));
    assert_eq!(header.email, address, "{text:?}");
    // One canonical form: it parses as itself, and spellings that differ
    // only in the case of ASCII letters are one address.
    assert_eq!(Email::parse(stored).ok().as_ref(), Some(&email), "{text:?}");
    if text.is_ascii() {
        assert_eq!(
            Email::parse(&text.to_ascii_uppercase()).ok().as_ref(),
            Some(&email),
            "{text:?}"
        );
    }
}
