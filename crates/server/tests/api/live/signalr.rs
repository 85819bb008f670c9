//! A minimal SignalR client (negotiate, then the JSON hub protocol over a
//! WebSocket) speaking the frames of protocol.md through Palaver's mapping:
//! a hub method per frame `type`, and every request that an answer names
//! sent as an invocation whose completion stands in for the `ack`, `pong`
//! or `error` frame the WebSocket would have sent.

use std::collections::{BTreeMap, HashMap, VecDeque};

use futures::{SinkExt, StreamExt};
use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::ClientError;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{answered, request_parts, Socket};
use crate::helpers::TestApp;

const RECORD_SEPARATOR: char = '\u{1e}';

pub struct SignalRClient {
    socket: Socket,
    /// Invocations awaiting their completion: id → (method, reference).
    awaiting: HashMap<String, (String, Option<String>)>,
    next_id: u64,
    ready: Option<ServerFrame>,
    records: VecDeque<Value>,
    /// The machine code of the Close message, once the server sent it.
    closing: Option<String>,
}

impl SignalRClient {
    /// Negotiates, opens the hub, shakes hands and, given `resume`, invokes
    /// `resume` and awaits its completion (the missed messages come before
    /// it); a refusal is its machine code (negotiate's error body, or the
    /// handshake's `error`).
    pub async fn connect(
        app: &TestApp,
        token: Option<&str>,
        resume: Option<BTreeMap<String, u64>>,
    ) -> Result<Self, String> {
        let mut negotiate = reqwest::Client::new().post(format!(
            "{}/hubs/chat/negotiate?negotiateVersion=1",
            app.base_url
        ));
        if let Some(token) = token {
            negotiate = negotiate.bearer_auth(token);
        }
        let negotiated = negotiate.send().await.map_err(|e| e.to_string())?;
        let status = negotiated.status();
        let negotiated: Value = negotiated.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(negotiated["error"]["code"].as_str().unwrap().to_owned());
        }
        let url = format!(
            "{}/hubs/chat?id={}&access_token={}",
            app.base_url.replacen("http", "ws", 1),
            negotiated["connectionToken"].as_str().unwrap(),
            token.unwrap_or_default()
        );
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| e.to_string())?;
        let mut client = SignalRClient {
            socket,
            awaiting: HashMap::new(),
            next_id: 0,
            ready: None,
            records: VecDeque::new(),
            closing: None,
        };
        client
            .write(json!({"protocol": "json", "version": 1}))
            .await;
        let answer = client.next_record().await.map_err(|e| e.to_string())?;
        if let Some(error) = answer["error"].as_str() {
            return Err(machine_code(error));
        }
        assert_eq!(answer, json!({}), "the handshake's answer");
        match client.next_frame().await.map_err(|e| e.to_string())? {
            ready @ ServerFrame::Ready { .. } => client.ready = Some(ready),
            other => panic!("{other:?} before ready"),
        }
        if let Some(rooms) = resume {
            let id = "connect-resume";
            let invocation = json!({"type": 1, "target": "resume", "invocationId": id,
                                    "arguments": [{"rooms": rooms}]});
            client.write(invocation).await;
            let mut before = VecDeque::new();
            loop {
                let record = client.next_record().await.map_err(|e| e.to_string())?;
                if record["invocationId"] == id {
                    if let Some(error) = record["error"].as_str() {
                        return Err(machine_code(error));
                    }
                    break;
                }
                before.push_back(record);
            }
            before.append(&mut client.records);
            client.records = before;
        }
        Ok(client)
    }

    pub fn ready(&self) -> Option<&ServerFrame> {
        self.ready.as_ref()
    }

    /// Invokes the method `frame`'s `type` names, awaiting its completion
    /// when an answer names it (a `send` always: its `client_id`).
    pub async fn send(&mut self, frame: &ClientFrame) -> palaver_client::Result<()> {
        let (method, fields, reference) = request_parts(frame);
        let mut invocation = json!({"type": 1, "target": method, "arguments": [fields]});
        if method == "send" || reference.is_some() {
            self.next_id += 1;
            let id = self.next_id.to_string();
            invocation["invocationId"] = json!(id);
            self.awaiting.insert(id, (method, reference));
        }
        self.write(invocation).await;
        Ok(())
    }

    pub async fn next_frame(&mut self) -> palaver_client::Result<ServerFrame> {
        loop {
            let record = self.next_record().await?;
            match record["type"].as_u64() {
                Some(1) => {
                    let [arg]: [Value; 1] =
                        serde_json::from_value(record["arguments"].clone()).unwrap();
                    let frame: ServerFrame = serde_json::from_value(arg).unwrap();
                    assert_eq!(json!(frame)["type"], record["target"]);
                    return Ok(frame);
                }
                Some(3) => {
                    let id = record["invocationId"].as_str().unwrap();
                    let (method, reference) =
                        self.awaiting.remove(id).expect("an awaited completion");
                    let frame = match record["error"].as_str() {
                        Some(error) => Some(ServerFrame::Error {
                            code: machine_code(error),
                            message: error.to_owned(),
                            reference,
                            retry_after_ms: None,
                        }),
                        None => answered(&method, record["result"].clone(), reference),
                    };
                    if let Some(frame) = frame {
                        return Ok(frame);
                    }
                }
                Some(7) => self.closing = Some(machine_code(record["error"].as_str().unwrap())),
                _ => {} // pings
            }
        }
    }

    async fn next_record(&mut self) -> palaver_client::Result<Value> {
        loop {
            if let Some(record) = self.records.pop_front() {
                return Ok(record);
            }
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let records = text.as_str().strip_suffix(RECORD_SEPARATOR).unwrap();
                    for record in records.split(RECORD_SEPARATOR) {
                        self.records
                            .push_back(serde_json::from_str(record).unwrap());
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| f.code.into());
                    return Err(self.ended(code));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(self.ended(1006)),
            }
        }
    }

    fn ended(&self, code: u16) -> ClientError {
        let reason = self
            .closing
            .clone()
            .unwrap_or_else(|| "closed without a Close message".into());
        ClientError::Closed { code, reason }
    }

    async fn write(&mut self, record: Value) {
        let text = format!("{record}{RECORD_SEPARATOR}");
        // A write to a socket the server already closed shows as the end
        // of the stream on the next read.
        let _ = self.socket.send(Message::Text(text.into())).await;
    }
}

/// The machine code an error text starts with (`"<code>: <message>"`).
fn machine_code(error: &str) -> String {
    error.split(':').next().unwrap().to_owned()
}
