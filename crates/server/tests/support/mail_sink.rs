//! A real SMTP server (mailin-embedded) on a random port, keeping every mail
//! it receives for the test to read.

// Shared by several test binaries; each uses only part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use mailin_embedded::{response, Handler, Response, Server};
use tokio::sync::watch;

use crate::helpers::WAIT;

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    /// The whole message: headers, a blank line, the body.
    pub text: String,
}

impl ReceivedMail {
    pub fn subject(&self) -> &str {
        self.text
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default()
    }

    /// The body, its quoted-printable soft line breaks undone.
    pub fn body(&self) -> String {
        let (_, body) = self.text.split_once("\r\n\r\n").unwrap_or(("", &self.text));
        body.replace("=\r\n", "")
    }

    /// The first run of exactly six digits in the body: the code it carries.
    pub fn code(&self) -> String {
        let digits: Vec<char> = self.body().chars().collect();
        digits
            .windows(6)
            .enumerate()
            .find(|(at, w)| {
                w.iter().all(char::is_ascii_digit)
                    && !digits.get(at + 6).is_some_and(char::is_ascii_digit)
                    && (*at == 0 || !digits[at - 1].is_ascii_digit())
            })
            .map(|(_, w)| w.iter().collect())
            .unwrap_or_else(|| panic!("no code in {:?}", self.text))
    }
}

#[derive(Clone)]
struct Collector {
    to: Vec<String>,
    data: Vec<u8>,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    count: Arc<watch::Sender<usize>>,
}

impl Handler for Collector {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = ReceivedMail {
            to: std::mem::take(&mut self.to),
            text: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        };
        let mut mails = self.mails.lock().unwrap();
        mails.push(mail);
        self.count.send_replace(mails.len());
        response::OK
    }
}

pub struct MailSink {
    /// For `--smtp-url`.
    pub url: String,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    count: watch::Receiver<usize>,
}

impl MailSink {
    pub fn start() -> MailSink {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let mails = Arc::new(Mutex::new(Vec::new()));
        let (count, receiver) = watch::channel(0);
        let mut server = Server::new(Collector {
            to: Vec::new(),
            data: Vec::new(),
            mails: mails.clone(),
            count: Arc::new(count),
        });
        server.with_num_threads(1).with_tcp_listener(listener);
        // Runs until the test process ends.
        std::thread::spawn(move || {
            if let Err(err) = server.serve() {
                panic!("the SMTP sink stopped: {err}");
            }
        });
        MailSink {
            url,
            mails,
            count: receiver,
        }
    }

    /// Every mail received so far.
    pub fn all(&self) -> Vec<ReceivedMail> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits for the `nth` mail (from 1) sent to `to`.
    pub async fn nth_to(&self, to: &str, nth: usize) -> ReceivedMail {
        let mut count = self.count.clone();
        tokio::time::timeout(WAIT, async {
            loop {
                let found: Vec<_> = self
                    .all()
                    .into_iter()
                    .filter(|m| m.to.iter().any(|t| t == to))
                    .collect();
                if let Some(mail) = found.get(nth - 1) {
                    return mail.clone();
                }
                count.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no mail number {nth} to {to} arrived; got {:?}", self.all()))
    }

    /// How many mails went to `to`.
    pub fn count_to(&self, to: &str) -> usize {
        self.all()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .count()
    }
}
