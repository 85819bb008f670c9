//! The `Mailer`s: SMTP (`--smtp-url`), or, without one, files under
//! `<data-dir>/mail/` (development: every mail is kept, none is lost).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use palaver_domain::mail::{Mail, MailError, Mailer};

/// `from` and `mail` as a MIME message. The recipient is read as a bare
/// address, the grammar `Email` parses with (never as a mailbox, whose
/// `Name <address>` would deliver somewhere other than what was stored); one
/// that does not parse is refused for good, never retried.
fn message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Address = mail
        .to
        .parse()
        .map_err(|e| MailError::Permanent(format!("recipient {:?}: {e}", mail.to)))?;
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to))
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| MailError::Permanent(e.to_string()))
}

/// Through an SMTP server: `smtp://` (plain, or STARTTLS with `?tls=required`)
/// or `smtps://`, with `user:password@` for authentication.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: Mailbox) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?
            .build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = message(&self.from, mail)?;
        self.transport.send(message).await.map(drop).map_err(|e| {
            // A 5xx answer will not change on a retry; anything else
            // (no connection, a timeout, a 4xx) may.
            if e.is_permanent() {
                MailError::Permanent(e.to_string())
            } else {
                MailError::Transient(e.to_string())
            }
        })
    }
}

/// Each mail as a `.eml` file in a directory.
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
    written: AtomicU64,
}

impl FileMailer {
    pub fn new(dir: PathBuf, from: Mailbox) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
        Ok(Self {
            dir,
            from,
            written: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = message(&self.from, mail)?;
        let name = format!(
            "{}-{}.eml",
            palaver_domain::time::Timestamp::now().0,
            self.written.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        tokio::fs::write(&path, message.formatted())
            .await
            .map_err(|e| MailError::Transient(format!("writing {}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), "mail written (no SMTP server configured)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use palaver_domain::mail::MailKind;

    use super::*;

    #[tokio::test]
    async fn without_smtp_each_mail_is_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(
            dir.path().join("mail"),
            "Palaver <palaver@localhost>".parse().unwrap(),
        )
        .unwrap();
        let mail = Mail {
            to: "alice@example.com".into(),
            subject: "Hello".into(),
            body: "code 123456\n".into(),
            kind: MailKind::Verification,
        };
        mailer.send(&mail).await.unwrap();
        mailer.send(&mail).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 2);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(text.contains("To: alice@example.com"), "{text}");
        assert!(text.contains("code 123456"), "{text}");
    }

    #[tokio::test]
    async fn an_address_that_is_not_one_is_refused_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        let mailer =
            FileMailer::new(dir.path().into(), "palaver@localhost".parse().unwrap()).unwrap();
        for to in [
            "not an address",
            "<victim@example.com>",
            "Name <victim@example.com>",
        ] {
            let mail = Mail {
                to: to.into(),
                subject: String::new(),
                body: String::new(),
                kind: MailKind::Verification,
            };
            let refused = mailer.send(&mail).await;
            assert!(
                matches!(refused, Err(MailError::Permanent(_))),
                "{to}: {refused:?}"
            );
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
