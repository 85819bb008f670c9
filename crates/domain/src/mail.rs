//! Mail to account owners: the `Mailer` port (SMTP, or files in development,
//! both in the server), a bounded queue in front of it so that no request
//! waits for a mail server, and the plain-text mails themselves.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

/// One plain-text mail to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

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
        Err(MailError("this process sends no mail".into()))
    }
}

/// Mails waiting for the mailer, at most this many.
const QUEUE: usize = 1024;
/// Tries per mail, `RETRY_AFTER` apart, doubling.
const TRIES: u32 = 3;
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Hands mail to a task that sends it (with retries), so a slow or absent
/// mail server never holds a request, and a flood of requests cannot queue
/// mail without bound.
#[derive(Clone)]
pub struct MailQueue {
    queue: mpsc::Sender<Mail>,
}

impl MailQueue {
    /// Starts the sending task; it ends when every queue handle is dropped.
    pub fn start(mailer: Arc<dyn Mailer>) -> Self {
        let (queue, mut waiting) = mpsc::channel::<Mail>(QUEUE);
        tokio::spawn(async move {
            while let Some(mail) = waiting.recv().await {
                deliver(mailer.as_ref(), &mail).await;
            }
        });
        Self { queue }
    }

    /// Queues `mail`; when the queue is full it is dropped, logged and counted.
    pub fn send(&self, mail: Mail) {
        if self.queue.try_send(mail).is_err() {
            tracing::error!("the mail queue is full; a mail was dropped");
            metrics::counter!("palaver_mail_failed_total", "reason" => "queue_full").increment(1);
        }
    }
}

async fn deliver(mailer: &dyn Mailer, mail: &Mail) {
    let mut wait = RETRY_AFTER;
    for attempt in 1..=TRIES {
        match mailer.send(mail).await {
            Ok(()) => {
                metrics::counter!("palaver_mail_sent_total").increment(1);
                return;
            }
            Err(err) if attempt < TRIES => {
                tracing::warn!(error = %err, attempt, "sending a mail failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(err) => {
                tracing::error!(error = %err, "sending a mail failed; giving up");
                metrics::counter!("palaver_mail_failed_total", "reason" => "mailer").increment(1);
            }
        }
    }
}

/// The mails Palaver sends. Plain text: nothing to render, nothing to inject.
pub mod templates {
    use super::Mail;

    pub fn verify_email(to: &str, username: &str, code: &str, minutes: u64) -> Mail {
        Mail {
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
                return Err(MailError("try again".into()));
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

    #[test]
    fn codes_are_in_the_subject_and_the_body() {
        let mail = templates::password_reset("a@example.com", "alice", "123456", 5);
        assert!(mail.subject.contains("123456") && mail.body.contains("123456"));
        assert!(mail.body.contains("5 minutes"));
    }
}
