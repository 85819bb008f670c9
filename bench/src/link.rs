//! One member's live connection to a server, over any of Palaver's real-time
//! transports, reduced to what the scenarios need: send a message, and read
//! deliveries and acks. Each protocol is spoken directly (Engine.IO and
//! Socket.IO packets, STOMP frames, SignalR records, protobuf on gRPC), not
//! through a client library, so the load generator does about the same work
//! per frame on every transport, and the same client drives Palaver and
//! Node's socket.io server.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use palaver_client::grpc::{proto, GrpcClient};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::members::{connect, open_url, Member, Socket};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Palaver's own JSON frames at `/api/v1/ws`.
    WebSocket,
    /// `Realtime.Connect`, one HTTP/2 connection per member.
    Grpc,
    /// Engine.IO v4 / Socket.IO v5 over the WebSocket at `/socket.io/`.
    SocketIo,
    /// STOMP 1.2 over the WebSocket at `/stomp`, subscribed to the room.
    Stomp,
    /// SignalR's JSON hub protocol over the WebSocket at `/hubs/chat`.
    SignalR,
}

impl Transport {
    /// Every transport Palaver serves.
    pub const ALL: [Transport; 5] = [
        Transport::WebSocket,
        Transport::Grpc,
        Transport::SocketIo,
        Transport::Stomp,
        Transport::SignalR,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Grpc => "grpc",
            Transport::SocketIo => "socketio",
            Transport::Stomp => "stomp",
            Transport::SignalR => "signalr",
        }
    }
}

/// Frames the client may have queued for its gRPC stream before sending waits.
const GRPC_SEND_QUEUE: usize = 64;
/// SignalR's record separator.
const RS: char = '\u{1e}';

pub enum Link {
    /// A WebSocket speaking `transport`'s text protocol.
    Text {
        socket: Socket,
        transport: Transport,
    },
    Grpc {
        outgoing: mpsc::Sender<proto::ClientFrame>,
        incoming: tonic::Streaming<proto::ServerFrame>,
    },
}

/// What the traffic engine reads.
#[derive(Debug)]
pub enum Incoming {
    /// A message; when the caller asked for it, the send time its body
    /// starts with (`t<16 digits of microseconds>…`).
    Message(Option<u64>),
    /// A send acknowledged (a refusal is `Other`).
    Ack,
    /// A keep-alive the client answers with [`LinkSink::pong`] (Engine.IO's
    /// ping; SignalR's, which a client silent for 30 s must send back).
    Ping,
    Other,
}

impl Link {
    /// Connects `member` and waits until its session is ready: `ready` (on
    /// STOMP: `CONNECTED`, then the receipt of its room's subscription).
    /// WebSockets connect from `source`.
    pub async fn connect(
        member: &Member,
        transport: Transport,
        source: Option<Ipv4Addr>,
    ) -> anyhow::Result<Link> {
        let text = |socket| Ok(Link::Text { socket, transport });
        match transport {
            Transport::WebSocket => text(connect(member, source).await?),
            Transport::SocketIo => text(socketio_connect(member, source).await?),
            Transport::Stomp => text(stomp_connect(member, source).await?),
            Transport::SignalR => text(signalr_connect(member, source).await?),
            Transport::Grpc => {
                let token = token_of(member)?;
                let client = GrpcClient::connect(&member.base_url)
                    .await?
                    .with_token(token)?;
                let (mut outgoing, queue) = mpsc::channel(GRPC_SEND_QUEUE);
                outgoing
                    .send(proto::ClientFrame {
                        r#ref: None,
                        frame: Some(proto::client_frame::Frame::Hello(proto::Hello::default())),
                    })
                    .await?;
                let mut incoming = client.realtime().connect(queue).await?.into_inner();
                match incoming.message().await? {
                    Some(proto::ServerFrame {
                        frame: Some(proto::server_frame::Frame::Ready(_)),
                    }) => Ok(Link::Grpc { outgoing, incoming }),
                    other => anyhow::bail!("expected ready, got {other:?}"),
                }
            }
        }
    }

    /// The sending and the receiving half, to be driven side by side.
    pub fn split(self) -> (LinkSink, LinkStream) {
        match self {
            Link::Text { socket, transport } => {
                let (sink, stream) = socket.split();
                (
                    LinkSink::Text {
                        sink,
                        transport,
                        requests: 0,
                    },
                    LinkStream::Text {
                        stream,
                        transport,
                        pending: VecDeque::new(),
                    },
                )
            }
            Link::Grpc { outgoing, incoming } => (
                LinkSink::Grpc(outgoing),
                LinkStream::Grpc(Box::new(incoming)),
            ),
        }
    }
}

fn token_of(member: &Member) -> anyhow::Result<&str> {
    member
        .token
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("the baseline has no accounts: WebSocket only"))
}

/// `member`'s server as a `ws://` URL, no path.
fn ws_base(member: &Member) -> String {
    member.base_url.replacen("http", "ws", 1)
}

/// The next text message, `None` once the connection has ended.
async fn next_text(socket: &mut Socket) -> anyhow::Result<Option<String>> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return Ok(Some(text.as_str().to_owned())),
            Some(Ok(Message::Close(_))) | None => return Ok(None),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.into()),
        }
    }
}

/// Engine.IO's open packet, Socket.IO's connect to `/` with `auth: {token,
/// room}` (Palaver reads the token; Node's server joins the room), then
/// `ready`. Either server sends `ready` first of its events.
async fn socketio_connect(member: &Member, source: Option<Ipv4Addr>) -> anyhow::Result<Socket> {
    let url = format!("{}/socket.io/?EIO=4&transport=websocket", ws_base(member));
    let mut socket = open_url(&url, None, source).await?;
    match next_text(&mut socket).await? {
        Some(open) if open.starts_with('0') => {}
        other => anyhow::bail!("expected Engine.IO's open packet, got {other:?}"),
    }
    let auth = serde_json::json!({"token": token_of(member)?, "room": member.room});
    socket.send(Message::text(format!("40{auth}"))).await?;
    loop {
        let Some(packet) = next_text(&mut socket).await? else {
            anyhow::bail!("closed before ready");
        };
        if packet == "2" {
            socket.send(Message::text("3")).await?;
        } else if packet.starts_with("44") {
            anyhow::bail!("connect_error: {packet}");
        } else if packet.starts_with(r#"42["ready""#) {
            return Ok(socket);
        }
    }
}

/// `CONNECT` with the token as `Authorization: Bearer`, no heart-beats;
/// then `SUBSCRIBE` to the member's room with a receipt, awaited.
async fn stomp_connect(member: &Member, source: Option<Ipv4Addr>) -> anyhow::Result<Socket> {
    let url = format!("{}/stomp", ws_base(member));
    let mut socket = open_url(&url, None, source).await?;
    let token = token_of(member)?;
    socket
        .send(Message::text(format!(
            "CONNECT\naccept-version:1.2\nhost:palaver\nheart-beat:0,0\nAuthorization:Bearer {token}\n\n\0"
        )))
        .await?;
    let mut subscribed = false;
    loop {
        let Some(text) = next_text(&mut socket).await? else {
            anyhow::bail!("closed before CONNECTED");
        };
        for frame in stomp_frames(&text) {
            let command = frame.lines().next().unwrap_or_default();
            match command {
                "CONNECTED" => {
                    socket
                        .send(Message::text(format!(
                            "SUBSCRIBE\nid:0\ndestination:/topic/message/roomId/{}\nreceipt:subscribed\n\n\0",
                            member.room
                        )))
                        .await?;
                    subscribed = true;
                }
                "RECEIPT" if subscribed => return Ok(socket),
                "ERROR" => anyhow::bail!("STOMP ERROR: {frame:?}"),
                _ => {}
            }
        }
    }
}

/// The frames of one WebSocket message (several may share one), heart-beat
/// EOLs left out.
fn stomp_frames(text: &str) -> impl Iterator<Item = &str> {
    text.split('\0')
        .map(|frame| frame.trim_start_matches(['\r', '\n']))
        .filter(|frame| !frame.is_empty())
}

/// The HTTP client of every SignalR negotiation (one connection pool).
fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

/// Negotiate (version 1), the WebSocket with the connection token and the
/// access token in the query, the JSON protocol's handshake and its empty
/// answer, then the `ready` invocation.
async fn signalr_connect(member: &Member, source: Option<Ipv4Addr>) -> anyhow::Result<Socket> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Negotiated {
        connection_token: String,
    }
    let token = token_of(member)?;
    let negotiated: Negotiated = http()
        .post(format!(
            "{}/hubs/chat/negotiate?negotiateVersion=1",
            member.base_url
        ))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let url = format!(
        "{}/hubs/chat?id={}&access_token={token}",
        ws_base(member),
        negotiated.connection_token
    );
    let mut socket = open_url(&url, None, source).await?;
    socket
        .send(Message::text(format!(
            r#"{{"protocol":"json","version":1}}{RS}"#
        )))
        .await?;
    let mut handshaken = false;
    loop {
        let Some(text) = next_text(&mut socket).await? else {
            anyhow::bail!("closed before ready");
        };
        for record in text.split(RS).filter(|r| !r.is_empty()) {
            let record: Value = serde_json::from_str(record)?;
            if !handshaken {
                anyhow::ensure!(record == serde_json::json!({}), "handshake: {record}");
                handshaken = true;
            } else if record["type"] == 1 && record["target"] == "ready" {
                return Ok(socket);
            } else if record["type"] == 7 {
                anyhow::bail!("closed by the server: {record}");
            }
        }
    }
}

pub enum LinkSink {
    Text {
        sink: futures::stream::SplitSink<Socket, Message>,
        transport: Transport,
        /// Requests sent: each `send` gets the next number as its ack id,
        /// receipt or invocation id.
        requests: u64,
    },
    Grpc(mpsc::Sender<proto::ClientFrame>),
}

impl LinkSink {
    /// Queues a `send` without flushing.
    pub async fn feed(&mut self, room: i64, body: String, client_id: String) -> anyhow::Result<()> {
        match self {
            LinkSink::Text {
                sink,
                transport,
                requests,
            } => {
                *requests += 1;
                let n = *requests;
                let fields = format!(r#""body":"{body}","client_id":"{client_id}""#);
                let text = match transport {
                    Transport::WebSocket => {
                        format!(r#"{{"type":"send","room":{room},{fields}}}"#)
                    }
                    Transport::SocketIo => format!(r#"42{n}["send",{{"room":{room},{fields}}}]"#),
                    Transport::Stomp => format!(
                        "SEND\ndestination:/app/message/roomId/{room}\nreceipt:{n}\ncontent-type:application/json\n\n{{{fields}}}\0"
                    ),
                    Transport::SignalR => format!(
                        r#"{{"type":1,"invocationId":"{n}","target":"send","arguments":[{{"room":{room},{fields}}}]}}{RS}"#
                    ),
                    Transport::Grpc => unreachable!("gRPC links are not text"),
                };
                Ok(sink.feed(Message::text(text)).await?)
            }
            LinkSink::Grpc(sink) => Ok(sink
                .feed(proto::ClientFrame {
                    r#ref: None,
                    frame: Some(proto::client_frame::Frame::Send(proto::Send {
                        room,
                        body,
                        client_id: Some(client_id),
                        reply_to: None,
                        attachments: Vec::new(),
                    })),
                })
                .await?),
        }
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            LinkSink::Text { sink, .. } => Ok(sink.flush().await?),
            LinkSink::Grpc(sink) => Ok(sink.flush().await?),
        }
    }

    /// Answers an [`Incoming::Ping`], flushed.
    pub async fn pong(&mut self) -> anyhow::Result<()> {
        let LinkSink::Text {
            sink, transport, ..
        } = self
        else {
            return Ok(());
        };
        match transport {
            Transport::SocketIo => Ok(sink.send(Message::text("3")).await?),
            Transport::SignalR => Ok(sink
                .send(Message::text(format!(r#"{{"type":6}}{RS}"#)))
                .await?),
            _ => Ok(()),
        }
    }
}

pub enum LinkStream {
    Text {
        stream: futures::stream::SplitStream<Socket>,
        transport: Transport,
        /// What the last message held beyond its first item (STOMP frames
        /// and SignalR records may share a WebSocket message).
        pending: VecDeque<Incoming>,
    },
    // Boxed: the gRPC stream is many times the size of the WebSocket half.
    Grpc(Box<tonic::Streaming<proto::ServerFrame>>),
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    body: &'a str,
}

impl LinkStream {
    /// The next frame; `None` once the connection has ended. A message's body
    /// is read only `with_body`, as the engine times only measured messages.
    pub async fn next(&mut self, with_body: bool) -> Option<Incoming> {
        match self {
            LinkStream::Text {
                stream,
                transport,
                pending,
            } => loop {
                if let Some(incoming) = pending.pop_front() {
                    return Some(incoming);
                }
                let text = match stream.next().await? {
                    Ok(Message::Text(text)) => text,
                    Ok(_) => continue,
                    Err(_) => return None,
                };
                decode(*transport, text.as_str(), with_body, pending);
            },
            LinkStream::Grpc(stream) => {
                let frame = stream.message().await.ok()??;
                Some(match frame.frame {
                    Some(proto::server_frame::Frame::Message(message)) => {
                        Incoming::Message(with_body.then(|| sent_at(&message.body)).flatten())
                    }
                    Some(proto::server_frame::Frame::Ack(_)) => Incoming::Ack,
                    _ => Incoming::Other,
                })
            }
        }
    }
}

/// What one WebSocket text message of `transport` holds, appended to `out`.
fn decode(transport: Transport, text: &str, with_body: bool, out: &mut VecDeque<Incoming>) {
    let message = |json: &str| {
        Incoming::Message(
            with_body
                .then(|| serde_json::from_str::<Body>(json).ok())
                .flatten()
                .and_then(|b| sent_at(b.body)),
        )
    };
    match transport {
        Transport::WebSocket => out.push_back(if text.starts_with(r#"{"type":"message""#) {
            message(text)
        } else if text.starts_with(r#"{"type":"ack""#) {
            Incoming::Ack
        } else {
            Incoming::Other
        }),
        Transport::SocketIo => out.push_back(if text == "2" {
            Incoming::Ping
        } else if text.starts_with(r#"42["message","#) {
            // `42["message",{…}]`: the event's name, then its argument.
            Incoming::Message(
                with_body
                    .then(|| serde_json::from_str::<(IgnoredAny, Body)>(&text[2..]).ok())
                    .flatten()
                    .and_then(|(_, b)| sent_at(b.body)),
            )
        } else if let Some(ack) = text.strip_prefix("43") {
            // `43<id>[answer]`: a refusal's answer is `{"error":…}`.
            let answer = ack.trim_start_matches(|c: char| c.is_ascii_digit());
            if answer.starts_with(r#"[{"error""#) {
                Incoming::Other
            } else {
                Incoming::Ack
            }
        } else {
            Incoming::Other
        }),
        Transport::Stomp => {
            for frame in stomp_frames(text) {
                let (head, body) = frame.split_once("\n\n").unwrap_or((frame, ""));
                out.push_back(match head.lines().next().unwrap_or_default() {
                    "MESSAGE" => message(body),
                    "RECEIPT" => Incoming::Ack,
                    _ => Incoming::Other,
                });
            }
        }
        Transport::SignalR => {
            for record in text.split(RS).filter(|r| !r.is_empty()) {
                let Ok(record) = serde_json::from_str::<Value>(record) else {
                    out.push_back(Incoming::Other);
                    continue;
                };
                out.push_back(match record["type"].as_u64() {
                    Some(1) if record["target"] == "message" => Incoming::Message(
                        with_body
                            .then(|| record["arguments"][0]["body"].as_str().and_then(sent_at))
                            .flatten(),
                    ),
                    Some(3) if record.get("error").is_none() => Incoming::Ack,
                    Some(6) => Incoming::Ping,
                    _ => Incoming::Other,
                });
            }
        }
        Transport::Grpc => out.push_back(Incoming::Other),
    }
}

/// The send time a benchmark body starts with.
fn sent_at(body: &str) -> Option<u64> {
    body.get(1..17)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(transport: Transport, text: &str) -> Vec<String> {
        let mut out = VecDeque::new();
        decode(transport, text, true, &mut out);
        out.iter().map(|incoming| format!("{incoming:?}")).collect()
    }

    #[test]
    fn socketio_packets_are_messages_acks_and_pings_but_a_refusal_is_no_ack() {
        let message = r#"42["message",{"type":"message","room":7,"body":"t0000000000001234xx"}]"#;
        assert_eq!(
            decoded(Transport::SocketIo, message),
            ["Message(Some(1234))"]
        );
        assert_eq!(
            decoded(Transport::SocketIo, r#"4312[{"type":"ack","seq":3}]"#),
            ["Ack"]
        );
        let refused = r#"4313[{"error":{"code":"rate_limited"}}]"#;
        assert_eq!(decoded(Transport::SocketIo, refused), ["Other"]);
        assert_eq!(decoded(Transport::SocketIo, "2"), ["Ping"]);
        assert_eq!(
            decoded(Transport::SocketIo, r#"42["typing",{}]"#),
            ["Other"]
        );
    }

    #[test]
    fn stomp_frames_sharing_a_message_are_each_read() {
        let text = "MESSAGE\ndestination:/topic/message/roomId/7\n\n{\"type\":\"message\",\"body\":\"t0000000000000042\"}\0\nRECEIPT\nreceipt-id:3\n\n\0\n";
        assert_eq!(
            decoded(Transport::Stomp, text),
            ["Message(Some(42))", "Ack"]
        );
    }

    #[test]
    fn signalr_records_sharing_a_message_are_each_read() {
        let text = concat!(
            r#"{"type":1,"target":"message","arguments":[{"body":"t0000000000000007"}]}"#,
            "\u{1e}",
            r#"{"type":3,"invocationId":"1","result":{"seq":1}}"#,
            "\u{1e}",
            r#"{"type":3,"invocationId":"2","error":"rate_limited: slow down"}"#,
            "\u{1e}",
            r#"{"type":6}"#,
            "\u{1e}"
        );
        assert_eq!(
            decoded(Transport::SignalR, text),
            ["Message(Some(7))", "Ack", "Other", "Ping"]
        );
    }
}
