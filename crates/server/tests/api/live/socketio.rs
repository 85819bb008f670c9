//! A minimal Socket.IO v5 client (Engine.IO v4 over a WebSocket) speaking
//! the frames of protocol.md through Palaver's mapping: an event per frame
//! `type`, and every request sent with an acknowledgement callback whose
//! answer stands in for the `ack`, `pong` or `error` frame the WebSocket
//! would have sent.

use std::collections::{BTreeMap, HashMap, VecDeque};

use futures::{SinkExt, StreamExt};
use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::ClientError;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{answered, request_parts, Socket};
use crate::helpers::TestApp;

pub struct SocketIoClient {
    socket: Socket,
    /// Callbacks awaiting their answer: id → (event, reference).
    awaiting: HashMap<u64, (String, Option<String>)>,
    next_id: u64,
    ready: Option<ServerFrame>,
    buffered: VecDeque<ServerFrame>,
    /// The `close` event's code and machine code, once the server sent it.
    closing: Option<(u16, String)>,
}

impl SocketIoClient {
    /// Connects with `auth: {token, resume}` (either may be absent); a refusal is the
    /// `connect_error` message (the machine code).
    pub async fn connect(
        app: &TestApp,
        token: Option<&str>,
        resume: Option<BTreeMap<String, u64>>,
    ) -> Result<Self, String> {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            app.base_url.replacen("http", "ws", 1)
        );
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| e.to_string())?;
        let mut client = SocketIoClient {
            socket,
            awaiting: HashMap::new(),
            next_id: 0,
            ready: None,
            buffered: VecDeque::new(),
            closing: None,
        };
        let open = client.next_packet().await.map_err(|e| e.to_string())?;
        assert!(open.starts_with('0'), "no Engine.IO open packet: {open}");
        let mut auth = json!({});
        if let Some(token) = token {
            auth["token"] = json!(token);
        }
        if let Some(resume) = resume {
            auth["resume"] = json!(resume);
        }
        client.write(format!("40{auth}")).await;
        loop {
            let packet = client.next_packet().await.map_err(|e| e.to_string())?;
            if let Some(refusal) = packet.strip_prefix("44") {
                let refusal: Value = serde_json::from_str(refusal).unwrap();
                return Err(refusal["message"].as_str().unwrap().to_owned());
            }
            if packet.starts_with("40") {
                break;
            }
        }
        // The session's first frame: `ready` (then any `rooms` pages).
        match client.next_frame().await.map_err(|e| e.to_string())? {
            ready @ ServerFrame::Ready { .. } => client.ready = Some(ready),
            other => panic!("{other:?} before ready"),
        }
        Ok(client)
    }

    pub fn ready(&self) -> Option<&ServerFrame> {
        self.ready.as_ref()
    }

    /// Emits `frame` as the event its `type` names, with a callback when an
    /// answer names it (a `send` always has one: its `client_id`).
    pub async fn send(&mut self, frame: &ClientFrame) -> palaver_client::Result<()> {
        let (event, fields, reference) = request_parts(frame);
        let wants_answer = event == "send" || reference.is_some();
        let packet = if wants_answer {
            self.next_id += 1;
            self.awaiting
                .insert(self.next_id, (event.clone(), reference));
            format!("42{}{}", self.next_id, json!([event, fields]))
        } else {
            format!("42{}", json!([event, fields]))
        };
        self.write(packet).await;
        Ok(())
    }

    pub async fn next_frame(&mut self) -> palaver_client::Result<ServerFrame> {
        loop {
            if let Some(frame) = self.buffered.pop_front() {
                return Ok(frame);
            }
            let packet = self.next_packet().await?;
            if let Some(event) = packet.strip_prefix("42") {
                let [name, arg]: [Value; 2] = serde_json::from_str(event).unwrap();
                if name == "close" {
                    let code = arg["code"].as_u64().unwrap() as u16;
                    self.closing = Some((code, arg["error"].as_str().unwrap().to_owned()));
                    continue;
                }
                let frame: ServerFrame = serde_json::from_value(arg).unwrap();
                assert_eq!(
                    json!(frame)["type"],
                    name,
                    "event named by its frame's type"
                );
                return Ok(frame);
            }
            if let Some(answer) = packet.strip_prefix("43") {
                let split = answer.find('[').unwrap();
                let id: u64 = answer[..split].parse().unwrap();
                let [body]: [Value; 1] = serde_json::from_str(&answer[split..]).unwrap();
                let (event, reference) = self.awaiting.remove(&id).expect("an awaited answer");
                let frame = match body.get("error") {
                    Some(error) => {
                        let mut error = error.clone();
                        error["type"] = json!("error");
                        error["ref"] = json!(reference);
                        Some(serde_json::from_value(error).unwrap())
                    }
                    None => answered(&event, body, reference),
                };
                if let Some(frame) = frame {
                    return Ok(frame);
                }
                continue;
            }
            if packet == "41" {
                return Err(self.ended());
            }
        }
    }

    /// The next Engine.IO text packet, pings answered on the way.
    async fn next_packet(&mut self) -> palaver_client::Result<String> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                    self.write("3".into()).await
                }
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(self.ended()),
            }
        }
    }

    fn ended(&self) -> ClientError {
        let (code, reason) = self
            .closing
            .clone()
            .unwrap_or((1006, "dropped without a close event".into()));
        ClientError::Closed { code, reason }
    }

    async fn write(&mut self, packet: String) {
        // A write to a socket the server already closed shows as the end
        // of the stream on the next read.
        let _ = self.socket.send(Message::Text(packet.into())).await;
    }
}
