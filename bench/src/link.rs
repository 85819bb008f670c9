//! One member's live connection to the server, over the WebSocket or over
//! gRPC's `Realtime.Connect`, reduced to what the traffic engine needs: send
//! a message, and read deliveries and acks. The gRPC side speaks protobuf
//! directly (no translation into JSON frames), so the load generator does no
//! more work per frame on one transport than on the other.

use std::net::Ipv4Addr;

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use palaver_client::grpc::{proto, GrpcClient};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use crate::members::{connect, Member, Socket};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    Grpc,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Grpc => "grpc",
        }
    }
}

/// Frames the client may have queued for its gRPC stream before sending waits.
const GRPC_SEND_QUEUE: usize = 64;

pub enum Link {
    WebSocket(Socket),
    Grpc {
        outgoing: mpsc::Sender<proto::ClientFrame>,
        incoming: tonic::Streaming<proto::ServerFrame>,
    },
}

/// What the traffic engine reads.
pub enum Incoming {
    /// A message; when the caller asked for it, the send time its body
    /// starts with (`t<16 digits of microseconds>…`).
    Message(Option<u64>),
    Ack,
    Other,
}

impl Link {
    /// Connects `member` and waits for `ready`; WebSockets from `source`.
    pub async fn connect(
        member: &Member,
        transport: Transport,
        source: Option<Ipv4Addr>,
    ) -> anyhow::Result<Link> {
        match transport {
            Transport::WebSocket => Ok(Link::WebSocket(connect(member, source).await?)),
            Transport::Grpc => {
                let token = member
                    .token
                    .as_deref()
                    .ok_or_else(|| anyhow::anyhow!("the baseline speaks no gRPC"))?;
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
            Link::WebSocket(socket) => {
                let (sink, stream) = socket.split();
                (LinkSink::WebSocket(sink), LinkStream::WebSocket(stream))
            }
            Link::Grpc { outgoing, incoming } => (
                LinkSink::Grpc(outgoing),
                LinkStream::Grpc(Box::new(incoming)),
            ),
        }
    }
}

pub enum LinkSink {
    WebSocket(futures::stream::SplitSink<Socket, Message>),
    Grpc(mpsc::Sender<proto::ClientFrame>),
}

impl LinkSink {
    /// Queues a `send` without flushing.
    pub async fn feed(&mut self, room: i64, body: String, client_id: String) -> anyhow::Result<()> {
        match self {
            LinkSink::WebSocket(sink) => Ok(sink
                .feed(Message::text(format!(
                    r#"{{"type":"send","room":{room},"body":"{body}","client_id":"{client_id}"}}"#
                )))
                .await?),
            LinkSink::Grpc(sink) => Ok(sink
                .feed(proto::ClientFrame {
                    r#ref: None,
                    frame: Some(proto::client_frame::Frame::Send(proto::Send {
                        room,
                        body,
                        client_id: Some(client_id),
                        reply_to: None,
                    })),
                })
                .await?),
        }
    }

    pub async fn flush(&mut self) -> anyhow::Result<()> {
        match self {
            LinkSink::WebSocket(sink) => Ok(sink.flush().await?),
            LinkSink::Grpc(sink) => Ok(sink.flush().await?),
        }
    }
}

pub enum LinkStream {
    WebSocket(futures::stream::SplitStream<Socket>),
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
            LinkStream::WebSocket(stream) => loop {
                let text = match stream.next().await? {
                    Ok(Message::Text(text)) => text,
                    Ok(_) => continue,
                    Err(_) => return None,
                };
                let text = text.as_str();
                return Some(if text.starts_with(r#"{"type":"message""#) {
                    Incoming::Message(
                        with_body
                            .then(|| serde_json::from_str::<Body>(text).ok())
                            .flatten()
                            .and_then(|b| sent_at(b.body)),
                    )
                } else if text.starts_with(r#"{"type":"ack""#) {
                    Incoming::Ack
                } else {
                    Incoming::Other
                });
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

/// The send time a benchmark body starts with.
fn sent_at(body: &str) -> Option<u64> {
    body.get(1..17)?.parse().ok()
}
