//! Setting up rooms full of members on any server under test, and
//! connecting them. Palaver's setup uses its real REST API (register, login,
//! create, join); the baseline and Node's socket.io and ws servers have no
//! accounts, so members just name their room.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use futures::{StreamExt, TryStreamExt};
use palaver_client::Client;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::server::{Kind, ServerProcess};

#[derive(Debug, Clone)]
pub struct Member {
    pub room: i64,
    /// The WebSocket endpoint.
    pub url: String,
    /// The server's HTTP (and gRPC) address.
    pub base_url: String,
    pub token: Option<String>,
}

pub type Socket = WebSocketStream<TcpStream>;

const SETUP_CONCURRENCY: usize = 16;
/// tungstenite zeroes its whole read buffer before every read (128 KiB by
/// default, snapview/tungstenite-rs#547): with the default, a third of the
/// load generator's CPU went to `memset`, and the generator, not the servers,
/// set the ceiling. Frames here are a few hundred bytes.
const READ_BUFFER_BYTES: usize = 4096;

/// `rooms` rooms of `members` members each; `tag` keeps names unique per scenario.
pub async fn setup(
    server: &ServerProcess,
    tag: &str,
    rooms: usize,
    members: usize,
) -> anyhow::Result<Vec<Member>> {
    let ws_url = format!("{}/api/v1/ws", server.base_url.replacen("http", "ws", 1));
    match server.kind {
        Kind::NodeSocketIo => {
            // Any token is accepted; the handshake names the room to join.
            let offset = room_offset_for(tag);
            Ok((0..rooms * members)
                .map(|n| Member {
                    room: offset + (n / members) as i64,
                    url: format!("{}/socket.io/", server.base_url.replacen("http", "ws", 1)),
                    base_url: server.base_url.clone(),
                    token: Some(format!("unchecked-{n}")),
                })
                .collect())
        }
        Kind::Baseline | Kind::NodeWs => {
            let offset = room_offset_for(tag);
            Ok((0..rooms * members)
                .map(|n| {
                    let room = offset + (n / members) as i64;
                    Member {
                        room,
                        url: format!("{ws_url}?room={room}&user={n}"),
                        base_url: server.base_url.clone(),
                        token: None,
                    }
                })
                .collect())
        }
        Kind::Palaver => {
            let client = Client::new(&server.base_url);
            let tokens: Vec<String> = futures::stream::iter(0..rooms * members)
                .map(|n| {
                    let client = client.clone();
                    let name = format!("{tag}-{n}");
                    async move {
                        client.register(&name, "benchmark password", None).await?;
                        Ok::<_, anyhow::Error>(
                            client
                                .login(&name, "benchmark password")
                                .await?
                                .access_token,
                        )
                    }
                })
                .buffered(SETUP_CONCURRENCY)
                .try_collect()
                .await?;
            let mut all = Vec::with_capacity(tokens.len());
            for room_tokens in tokens.chunks(members) {
                let owner = client.with_token(&room_tokens[0]);
                let room = owner.create_room(tag, None).await?;
                futures::stream::iter(&room_tokens[1..])
                    .map(|token| {
                        let member = client.with_token(token);
                        let code = room.code.clone();
                        async move { member.join_room(&code, None).await.map(drop) }
                    })
                    .buffer_unordered(SETUP_CONCURRENCY)
                    .try_collect::<Vec<()>>()
                    .await?;
                all.extend(room_tokens.iter().map(|token| Member {
                    room: room.id,
                    url: ws_url.clone(),
                    base_url: server.base_url.clone(),
                    token: Some(token.clone()),
                }));
            }
            Ok(all)
        }
    }
}

fn room_offset_for(tag: &str) -> i64 {
    // Distinct room ids per scenario on a long-lived baseline server.
    tag.bytes()
        .fold(0i64, |h, b| h.wrapping_mul(31).wrapping_add(b as i64))
        .rem_euclid(1 << 40)
        * 1000
}

/// Opens a WebSocket to `member`'s server, from local address `source`
/// (127.0.0.x, so that many connections do not exhaust one address's
/// ephemeral ports). With `bearer`, the upgrade carries the member's token;
/// without, the caller authenticates with an `auth` frame.
pub async fn open(
    member: &Member,
    source: Option<Ipv4Addr>,
    bearer: bool,
) -> anyhow::Result<Socket> {
    let token = member.token.as_deref().filter(|_| bearer);
    open_url(&member.url, token, source).await
}

/// Opens a WebSocket to `url` from local address `source`, its upgrade
/// carrying `bearer` as an `Authorization` header when given.
pub async fn open_url(
    url: &str,
    bearer: Option<&str>,
    source: Option<Ipv4Addr>,
) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let uri = request.uri().clone();
    let host = uri.host().unwrap_or("127.0.0.1");
    let server: SocketAddr = format!("{host}:{}", uri.port_u16().unwrap_or(80)).parse()?;
    let socket = TcpSocket::new_v4()?;
    if let Some(source) = source {
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(ws)
}

/// Connects with the member's token and waits for `ready`.
pub async fn connect(member: &Member, source: Option<Ipv4Addr>) -> anyhow::Result<Socket> {
    ready(open(member, source, true).await?).await
}

/// `ws` once its `ready` frame has arrived.
pub async fn ready(mut ws: Socket) -> anyhow::Result<Socket> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.as_str().starts_with(r#"{"type":"ready""#) => {
                return Ok(ws)
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.into()),
            None => anyhow::bail!("closed before ready"),
        }
    }
}
