//! A minimal STOMP 1.2 client over a WebSocket, following what a client of
//! the Spring design does: at connect it subscribes to the topics of each of
//! its rooms (`x-after-seq` where it resumes) and to `/user/topic/rooms`,
//! then sends to the `/app/...` destinations. Receipts stand in for the
//! `ack` frame, an `ERROR` for the `error` frame (then the connection ends,
//! as STOMP requires).

use std::collections::{BTreeMap, HashMap, VecDeque};

use futures::{SinkExt, StreamExt};
use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::ClientError;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::Socket;
use crate::helpers::TestApp;

/// One STOMP frame as the server wrote it.
#[derive(Debug)]
pub struct Frame {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Frame {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// What a frame that asked for a receipt was.
enum Receipted {
    Send { client_id: Option<String> },
    Other { reference: Option<String> },
}

/// The subscription of the user's room list: its `message` and `read`
/// frames repeat what the rooms' own topics carry, so they are left out.
const USER_TOPIC_ID: &str = "user-rooms";

pub struct StompClient {
    socket: Socket,
    /// Text received after the last complete frame.
    partial: String,
    frames: VecDeque<Frame>,
    receipts: HashMap<String, Receipted>,
    next_receipt: u64,
    /// The `ERROR` frame's machine code, once the server sent one.
    closing: Option<String>,
}

impl StompClient {
    /// Connects with `Authorization: Bearer <token>` and subscribes to what
    /// a chat client follows for each of `rooms`; a refusal is the `ERROR`'s
    /// machine code.
    pub async fn connect(
        app: &TestApp,
        token: Option<&str>,
        rooms: &[i64],
        resume: Option<BTreeMap<String, u64>>,
    ) -> Result<Self, String> {
        let url = format!("{}/stomp", app.base_url.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "v12.stomp".parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        let mut client = StompClient {
            socket,
            partial: String::new(),
            frames: VecDeque::new(),
            receipts: HashMap::new(),
            next_receipt: 0,
            closing: None,
        };
        let bearer = token.map(|token| format!("Bearer {token}"));
        let mut headers = vec![("accept-version", "1.2"), ("host", "palaver")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        client.write("CONNECT", &headers, "").await;
        let connected = client.next_stomp_frame().await.map_err(|e| e.to_string())?;
        if connected.command == "ERROR" {
            return Err(connected.header("message").unwrap().to_owned());
        }
        assert_eq!(connected.command, "CONNECTED", "{connected:?}");

        let resume = resume.unwrap_or_default();
        for (n, &id) in rooms.iter().enumerate() {
            let after = resume.get(&id.to_string()).map(u64::to_string);
            let mut headers = vec![];
            if let Some(after) = &after {
                headers.push(("x-after-seq", after.as_str()));
            }
            client
                .subscribe(&format!("/topic/message/roomId/{id}"), &headers)
                .await;
            client
                .subscribe(&format!("/topic/typing/roomId/{id}"), &[])
                .await;
            client
                .subscribe(&format!("/topic/readMarkers/roomId/{id}"), &[])
                .await;
            if n == 0 {
                client
                    .subscribe(&format!("/topic/onlineStatus/roomId/{id}"), &[])
                    .await;
            }
        }
        // Receipts come in order: once this one is back, every
        // subscription above is in place (and replays are on their way).
        let receipt = "subscribed";
        let subscribe = [
            ("id", USER_TOPIC_ID),
            ("destination", "/user/topic/rooms"),
            ("receipt", receipt),
        ];
        client.write("SUBSCRIBE", &subscribe, "").await;
        let mut before = VecDeque::new();
        loop {
            let frame = client.next_stomp_frame().await.map_err(|e| e.to_string())?;
            match frame.command.as_str() {
                "RECEIPT" if frame.header("receipt-id") == Some(receipt) => break,
                "ERROR" => return Err(frame.header("message").unwrap().to_owned()),
                _ => before.push_back(frame),
            }
        }
        client.frames = before;
        Ok(client)
    }

    async fn subscribe(&mut self, destination: &str, extra: &[(&str, &str)]) {
        let id = destination.to_owned();
        let mut headers = vec![("id", id.as_str()), ("destination", destination)];
        headers.extend_from_slice(extra);
        self.write("SUBSCRIBE", &headers, "").await;
    }

    /// Sends `frame` to its `/app/...` destination, with a receipt for a
    /// message (its `ack`) or a frame an answer names.
    pub async fn send(&mut self, frame: &ClientFrame) -> palaver_client::Result<()> {
        let (destination, body, receipted) = match frame {
            ClientFrame::Send {
                room,
                body,
                client_id,
                reply_to,
                attachments,
            } => (
                format!("/app/message/roomId/{room}"),
                json!({"body": body, "client_id": client_id, "reply_to": reply_to,
                       "attachments": attachments}),
                Some(Receipted::Send {
                    client_id: client_id.clone(),
                }),
            ),
            ClientFrame::Typing { room, reference } => (
                "/app/typing".to_owned(),
                json!({"roomId": room}),
                reference
                    .clone()
                    .map(|r| Receipted::Other { reference: Some(r) }),
            ),
            ClientFrame::Read {
                room,
                seq,
                reference,
            } => (
                "/app/read".to_owned(),
                json!({"roomId": room, "seq": seq}),
                reference
                    .clone()
                    .map(|r| Receipted::Other { reference: Some(r) }),
            ),
            ClientFrame::React {
                room,
                seq,
                emoji,
                reference,
            }
            | ClientFrame::Unreact {
                room,
                seq,
                emoji,
                reference,
            } => (
                "/app/reaction".to_owned(),
                json!({
                    "roomId": room, "seq": seq, "emoji": emoji,
                    "remove": matches!(frame, ClientFrame::Unreact { .. }),
                }),
                reference
                    .clone()
                    .map(|r| Receipted::Other { reference: Some(r) }),
            ),
            other => panic!("STOMP has no destination for {other:?}"),
        };
        let mut headers = vec![("destination", destination.as_str())];
        let receipt = receipted.map(|receipted| {
            self.next_receipt += 1;
            let id = format!("r-{}", self.next_receipt);
            self.receipts.insert(id.clone(), receipted);
            id
        });
        if let Some(receipt) = &receipt {
            headers.push(("receipt", receipt));
        }
        self.write("SEND", &headers, &body.to_string()).await;
        Ok(())
    }

    pub async fn next_frame(&mut self) -> palaver_client::Result<ServerFrame> {
        loop {
            let frame = self.next_stomp_frame().await?;
            match frame.command.as_str() {
                "MESSAGE" => {
                    let server_frame: ServerFrame = serde_json::from_str(&frame.body).unwrap();
                    let repeated = matches!(
                        server_frame,
                        ServerFrame::Message { .. } | ServerFrame::Read { .. }
                    );
                    if repeated && frame.header("subscription") == Some(USER_TOPIC_ID) {
                        continue;
                    }
                    return Ok(server_frame);
                }
                "RECEIPT" => {
                    let id = frame.header("receipt-id").unwrap();
                    if let Some(Receipted::Send { client_id }) = self.receipts.remove(id) {
                        return Ok(ServerFrame::Ack {
                            client_id,
                            room: frame.header("room").unwrap().parse().unwrap(),
                            seq: frame.header("seq").unwrap().parse().unwrap(),
                            created_at: String::new(),
                        });
                    }
                }
                "ERROR" => {
                    let code = frame.header("message").unwrap().to_owned();
                    self.closing = Some(code.clone());
                    let reference = match frame
                        .header("receipt-id")
                        .and_then(|id| self.receipts.remove(id))
                    {
                        Some(Receipted::Send { client_id }) => client_id,
                        Some(Receipted::Other { reference }) => reference,
                        None => None,
                    };
                    return Ok(ServerFrame::Error {
                        code,
                        message: frame.body,
                        reference,
                        retry_after_ms: None,
                    });
                }
                other => panic!("unexpected {other} frame"),
            }
        }
    }

    /// The next frame, however the server split or joined them across
    /// WebSocket messages; heart-beats skipped.
    async fn next_stomp_frame(&mut self) -> palaver_client::Result<Frame> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(frame);
            }
            let text = match self.socket.next().await {
                Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                Some(Ok(Message::Binary(bytes))) => String::from_utf8(bytes.to_vec()).unwrap(),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| f.code.into());
                    return Err(self.ended(code));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(self.ended(1006)),
            };
            self.partial.push_str(&text);
            while let Some(end) = self.partial.find('\0') {
                let raw: String = self.partial.drain(..=end).collect();
                let raw = raw.trim_start_matches(['\r', '\n']).trim_end_matches('\0');
                self.frames.push_back(parse(raw));
            }
            // Whatever is left is heart-beat EOLs or the start of a frame.
            if self.partial.trim_start_matches(['\r', '\n']).is_empty() {
                self.partial.clear();
            }
        }
    }

    fn ended(&self, code: u16) -> ClientError {
        let reason = self
            .closing
            .clone()
            .unwrap_or_else(|| "closed without an ERROR frame".into());
        ClientError::Closed { code, reason }
    }

    async fn write(&mut self, command: &str, headers: &[(&str, &str)], body: &str) {
        let text = frame_text(command, headers, body);
        // A write to a socket the server already closed shows as the end
        // of the stream on the next read.
        let _ = self.socket.send(Message::Text(text.into())).await;
    }
}

/// A client frame's text (no header here needs escaping).
pub fn frame_text(command: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("{command}\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}:{value}\n"));
    }
    text.push('\n');
    text.push_str(body);
    text.push('\0');
    text
}

/// One frame's text (without its NUL): command, headers (escapes undone),
/// body.
pub fn parse(raw: &str) -> Frame {
    let (head, body) = raw
        .split_once("\n\n")
        .expect("a blank line ends the headers");
    let mut lines = head.lines();
    let command = lines.next().unwrap().to_owned();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (unescape(name), unescape(value))
        })
        .collect();
    Frame {
        command,
        headers,
        body: body.to_owned(),
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            other => panic!("bad escape \\{other:?}"),
        }
    }
    out
}
