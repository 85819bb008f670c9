//! Mail to account owners: the `Mailer` port (SMTP, or files in development,
//! both in the server), a bounded queue in front of it so that no request
//! waits for a mail server, and the plain-text mails themselves.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// One plain-text mail to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub kind: MailKind,
}

/// What a mail is for: the label of `palaver_mail_sent_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Verification,
    PasswordReset,
    PasswordChanged,
}

impl MailKind {
    /// The metric label; `None` for a mail that must not be counted as sent:
    /// a reset code goes out only when the login names an account with a
    /// verified address, which anyone may ask about, so counting those sends
    /// would answer the question the reset's answer does not.
    fn counted_as(self) -> Option<&'static str> {
        match self {
            MailKind::Verification => Some("verification"),
            MailKind::PasswordReset => None,
            MailKind::PasswordChanged => Some("password_changed"),
        }
    }
}

/// Why the mailer did not take a mail: `Permanent` (the recipient or the
/// message is refused as it is, a 5xx) is never retried; `Transient` (the
/// server is away or said 4xx) is, a few times.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
}

/// Where mail goes.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Refuses every mail (which is then logged as failed): for services that
/// are never asked to send one, such as a benchmark's.
pub struct NoMailer;

#[async_trait]
impl Mailer for NoMailer {
    async fn send(&self, _mail: &Mail) -> Result<(), MailError> {
        Err(MailError::Permanent("this process sends no mail".into()))
    }
}

/// Mails waiting for the mailer, at most this many; as many more may be
/// waiting for a retry.
const QUEUE: usize = 1024;
/// Tries per mail, `RETRY_AFTER` apart, doubling.
const TRIES: u32 = 3;
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Mails given up on, by `reason`: one of `FAILURE_REASONS`.
const FAILED: &str = "palaver_mail_failed_total";
/// Refused for good (a 5xx, a recipient that does not parse); tries spent
/// on transient failures; dropped because the queue or the retries were full.
const FAILURE_REASONS: [&str; 3] = ["refused", "mailer", "queue_full"];

/// Hands mail to a task that sends it (with retries), so a slow or absent
/// mail server never holds a request, and a flood of requests cannot queue
/// mail without bound. A mail waiting for its retry waits beside the queue,
/// not in front of it: one bad recipient never holds up the others' mail.
#[derive(Clone)]
pub struct MailQueue {
    queue: mpsc::Sender<Mail>,
}

impl MailQueue {
    /// Starts the sending task; it ends when every queue handle is dropped
    /// and no retry is waiting.
    pub fn start(mailer: Arc<dyn Mailer>) -> Self {
        // Exported from the start: a rate over a counter that appears at its
        // first event misses that event.
        for reason in FAILURE_REASONS {
            metrics::counter!(FAILED, "reason" => reason).increment(0);
        }
        let (queue, mut waiting) = mpsc::channel::<Mail>(QUEUE);
        tokio::spawn(async move {
            let mut retries: JoinSet<(Mail, u32)> = JoinSet::new();
            loop {
                let (mail, attempt) = tokio::select! {
                    Some(mail) = waiting.recv() => (mail, 1),
                    Some(Ok(retry)) = retries.join_next() => retry,
                    else => break,
                };
                if let Some(wait) = deliver(mailer.as_ref(), &mail, attempt).await {
                    if retries.len() >= QUEUE {
                        tracing::error!("too many mails waiting for a retry; one was dropped");
                        metrics::counter!(FAILED, "reason" => "queue_full").increment(1);
                        continue;
                    }
                    retries.spawn(async move {
                        tokio::time::sleep(wait).await;
                        (mail, attempt + 1)
                    });
                }
            }
        });
        Self { queue }
    }

    /// Queues `mail`; when the queue is full it is dropped, logged and counted.
    pub fn send(&self, mail: Mail) {
        if self.queue.try_send(mail).is_err() {
            tracing::error!("the mail queue is full; a mail was dropped");
            metrics::counter!(FAILED, "reason" => "queue_full").increment(1);
        }
    }
}

/// Try `attempt` of `mail`: how long to wait before the next one, if there
/// is to be one.
async fn deliver(mailer: &dyn Mailer, mail: &Mail, attempt: u32) -> Option<Duration> {
    match mailer.send(mail).await {
        Ok(()) => {
            if let Some(kind) = mail.kind.counted_as() {
                metrics::counter!("palaver_mail_sent_total", "kind" => kind).increment(1);
            }
            None
        }
        Err(MailError::Transient(err)) if attempt < TRIES => {
            tracing::warn!(error = %err, attempt, "sending a mail failed; retrying");
            Some(RETRY_AFTER * 2u32.pow(attempt - 1))
        }
        Err(err) => {
            let reason = match err {
                MailError::Permanent(_) => "refused",
                MailError::Transient(_) => "mailer",
            };
            tracing::error!(error = %err, attempt, "sending a mail failed; giving up");
            metrics::counter!(FAILED, "reason" => reason).increment(1);
            None
        }
    }
}

/// The mails Palaver sends. Plain text: nothing to render, nothing to inject.
pub mod templates {
    use super::{Mail, MailKind};

    pub fn verify_email(to: &str, username: &str, code: &str, minutes: u64) -> Mail {
        Mail {
            kind: MailKind::Verification,
            to: to.to_owned(),
            subject: format!("Your Palaver verification code: {code}"),
            body: format!(
                "Hello {username},\n\n\
                 enter this code to confirm that this address belongs to your Palaver account:\n\n\
                 {code}\n\n\
                 It works for {minutes} minutes. If you did not ask for it, ignore this mail.\n"
            ),
        }
    }

    pub fn password_reset(to: &str, username: &str, code: &str, minutes: u64) -> Mail {
        Mail {
            kind: MailKind::PasswordReset,
            to: to.to_owned(),
            subject: format!("Your Palaver password reset code: {code}"),
            body: format!(
                "Hello {username},\n\n\
                 someone asked to reset the password of your Palaver account. The code is:\n\n\
                 {code}\n\n\
                 It works for {minutes} minutes. If it was not you, ignore this mail: your \
                 password stays as it is.\n"
            ),
        }
    }

    pub fn password_changed(to: &str, username: &str) -> Mail {
        Mail {
            kind: MailKind::PasswordChanged,
            to: to.to_owned(),
            subject: "Your Palaver password was changed".to_owned(),
            body: format!(
                "Hello {username},\n\n\
                 the password of your Palaver account was just reset, and every device \
                 signed in to it was signed out. If this was not you, reset it again now \
                 and check the address of your account.\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Fails its first `failures` sends, then hands mails to a channel.
    struct Flaky {
        failures: AtomicU32,
        sent: mpsc::UnboundedSender<Mail>,
    }

    #[async_trait]
    impl Mailer for Flaky {
        async fn send(&self, mail: &Mail) -> Result<(), MailError> {
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(MailError::Transient("try again".into()));
            }
            self.sent.send(mail.clone()).unwrap();
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_mail_is_retried_until_the_mailer_takes_it() {
        let (sent, mut received) = mpsc::unbounded_channel();
        let queue = MailQueue::start(Arc::new(Flaky {
            failures: AtomicU32::new(2),
            sent,
        }));
        let mail = templates::password_changed("a@example.com", "alice");
        queue.send(mail.clone());
        assert_eq!(received.recv().await, Some(mail));
    }

    /// Refuses mail to `bad@example.com` for good, or keeps failing it
    /// (`transient`); hands every other mail to a channel.
    struct OneBadRecipient {
        transient: bool,
        tries_of_bad: Arc<AtomicU32>,
        sent: mpsc::UnboundedSender<Mail>,
    }

    #[async_trait]
    impl Mailer for OneBadRecipient {
        async fn send(&self, mail: &Mail) -> Result<(), MailError> {
            if mail.to == "bad@example.com" {
                self.tries_of_bad.fetch_add(1, Ordering::SeqCst);
                return Err(if self.transient {
                    MailError::Transient("421 try later".into())
                } else {
                    MailError::Permanent("550 no such user".into())
                });
            }
            self.sent.send(mail.clone()).unwrap();
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_refusal_is_not_retried() {
        let (sent, mut received) = mpsc::unbounded_channel();
        let tries_of_bad = Arc::new(AtomicU32::new(0));
        let queue = MailQueue::start(Arc::new(OneBadRecipient {
            transient: false,
            tries_of_bad: tries_of_bad.clone(),
            sent,
        }));
        queue.send(templates::password_changed("bad@example.com", "mallory"));
        // Let every retry there could be come due.
        tokio::time::sleep(RETRY_AFTER * 16).await;
        let good = templates::password_changed("good@example.com", "alice");
        queue.send(good.clone());
        assert_eq!(received.recv().await, Some(good));
        assert_eq!(tries_of_bad.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_recipient_waiting_for_its_retry_holds_up_no_other_mail() {
        let (sent, mut received) = mpsc::unbounded_channel();
        let tries_of_bad = Arc::new(AtomicU32::new(0));
        let queue = MailQueue::start(Arc::new(OneBadRecipient {
            transient: true,
            tries_of_bad: tries_of_bad.clone(),
            sent,
        }));
        let started = tokio::time::Instant::now();
        for _ in 0..10 {
            queue.send(templates::password_changed("bad@example.com", "mallory"));
        }
        let good = templates::password_changed("good@example.com", "alice");
        queue.send(good.clone());
        assert_eq!(received.recv().await, Some(good));
        // Paused time moves only while every task waits: the good mail went
        // out before any retry was due.
        assert!(started.elapsed() < RETRY_AFTER, "{:?}", started.elapsed());
        // Each bad mail is still tried its three times, then given up.
        tokio::time::sleep(RETRY_AFTER * 16).await;
        assert_eq!(tries_of_bad.load(Ordering::SeqCst), 10 * TRIES);
    }

    #[test]
    fn codes_are_in_the_subject_and_the_body() {
        let mail = templates::password_reset("a@example.com", "alice", "123456", 5);
        assert!(mail.subject.contains("123456") && mail.body.contains("123456"));
        assert!(mail.body.contains("5 minutes"));
    }
}
