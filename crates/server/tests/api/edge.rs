//! What one client can hold or cost at the connection edge, tested at the
//! level it works: HTTP/2 connections kept open with no stream, request
//! bodies that stall (REST and gRPC), real-time connections held by one user
//! or one address over every transport together, oversized calls to the
//! public gRPC services, and refusals that must be counted, not logged.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use palaver_client::{ClientError, WsAuth};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::*;
use crate::live::{Via, EVERY};

fn server_addr(app: &TestApp) -> SocketAddr {
    app.base_url.trim_start_matches("http://").parse().unwrap()
}

/// An HTTP/2 connection (prior knowledge, as gRPC clients open them) and the
/// task driving it, which ends when the connection does.
async fn http2(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<axum::body::Body>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    (sender, tokio::spawn(connection))
}

#[tokio::test]
async fn an_http2_connection_with_no_stream_is_closed_once_idle() {
    let app =
        spawn_app_with(|s| s.http.http2_idle_timeout = std::time::Duration::from_secs(1)).await;
    let before = app.metric("palaver_connections_idle_closed_total").await;
    let (mut sender, connection) = http2(server_addr(&app)).await;
    let request = hyper::Request::get(format!("{}/healthz", app.base_url))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    drop(response);
    // The client keeps its end (and answers the server's pings): only the
    // server can end the connection.
    tokio::time::timeout(WAIT, connection)
        .await
        .expect("the server closes an HTTP/2 connection with no stream")
        .unwrap()
        .expect("closed with GOAWAY, not torn down");
    drop(sender);
    assert!(app.metric("palaver_connections_idle_closed_total").await >= before + 1.0);
}

#[tokio::test]
async fn an_open_session_keeps_its_connection_past_the_idle_timeout() {
    let app =
        spawn_app_with(|s| s.http.http2_idle_timeout = std::time::Duration::from_secs(1)).await;
    let alice = app.signup("alice").await;
    // A gRPC stream, and a WebSocket (an upgraded HTTP/1 connection).
    let mut sessions = Vec::new();
    for via in crate::live::FRAMED {
        sessions.push(alice.live(&app, via, None).await);
    }
    // Longer than the idle timeout: a session is open all along.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for live in &mut sessions {
        live.send(&palaver_client::frames::ClientFrame::Ping {
            reference: Some("p".into()),
        })
        .await;
        next_matching(live, |frame| match frame {
            palaver_client::frames::ServerFrame::Pong { reference } => reference,
            _ => None,
        })
        .await;
    }
}

/// The head of a login request whose body says it is 2 MB long.
fn stalling_login_head(addr: SocketAddr) -> String {
    format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: {addr}\r\n\
         content-type: application/json\r\ncontent-length: 2000000\r\n\r\n"
    )
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_its_http1_connection_closed() {
    let app =
        spawn_app_with(|s| s.http.body_timeout = std::time::Duration::from_millis(1000)).await;
    let addr = server_addr(&app);
    let before = app.metric("palaver_http_body_timeouts_total").await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(stalling_login_head(addr).as_bytes())
        .await
        .unwrap();
    tcp.write_all(&vec![b' '; 1_900_000]).await.unwrap();
    // Then nothing more: the server must answer and close on its own.
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("the connection ends within the bound")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(app.metric("palaver_http_body_timeouts_total").await >= before + 1.0);
}

#[tokio::test]
async fn a_body_that_stalls_on_http2_is_answered_408_in_time() {
    let app =
        spawn_app_with(|s| s.http.body_timeout = std::time::Duration::from_millis(1000)).await;
    let (mut sender, _connection) = http2(server_addr(&app)).await;
    let (chunks, body) =
        futures::channel::mpsc::unbounded::<Result<bytes::Bytes, std::io::Error>>();
    chunks
        .unbounded_send(Ok(bytes::Bytes::from(vec![b' '; 100_000])))
        .unwrap();
    let request = hyper::Request::post(format!("{}/api/v1/auth/login", app.base_url))
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(body))
        .unwrap();
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("answered within the bound")
        .unwrap();
    assert_eq!(response.status(), 408);
    let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 4096)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout");
    drop(chunks);
}

#[tokio::test]
async fn a_grpc_call_whose_request_stalls_is_ended_in_time() {
    let app =
        spawn_app_with(|s| s.http.body_timeout = std::time::Duration::from_millis(1000)).await;
    let (mut sender, _connection) = http2(server_addr(&app)).await;
    let (chunks, body) =
        futures::channel::mpsc::unbounded::<Result<bytes::Bytes, std::io::Error>>();
    // A gRPC message that says 17,000 bytes follow, then 16 KiB of them.
    let mut first = vec![0u8];
    first.extend_from_slice(&17_000u32.to_be_bytes());
    first.extend(vec![0u8; 16 * 1024]);
    chunks
        .unbounded_send(Ok(bytes::Bytes::from(first)))
        .unwrap();
    let request = hyper::Request::post(format!("{}/palaver.v1.Accounts/Login", app.base_url))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(axum::body::Body::from_stream(body))
        .unwrap();
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("answered within the bound")
        .unwrap();
    // The call ends with an error status (trailers-only: in the headers)
    // while the client still holds the rest of its request.
    let status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        matches!(status.as_deref(), Some(code) if code != "0"),
        "{:?}",
        response.headers()
    );
    drop(chunks);
}

#[tokio::test]
async fn a_body_sent_at_once_is_not_cut_by_the_deadline() {
    let app =
        spawn_app_with(|s| s.http.body_timeout = std::time::Duration::from_millis(1000)).await;
    app.client.register("alice", PASSWORD, None).await.unwrap();
    app.signup_existing("alice").await;
}

#[tokio::test]
async fn sessions_per_user_are_bounded_across_websocket_and_grpc_together() {
    let app = spawn_app_with(|s| s.realtime.max_sessions_per_user = 3).await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let refused = || async {
        app.metric(r#"palaver_sessions_refused_total{per="user",transport="websocket"}"#)
            .await
            + app
                .metric(r#"palaver_sessions_refused_total{per="user",transport="grpc"}"#)
                .await
    };
    let before = refused().await;

    let first = alice.live(&app, Via::WebSocket, None).await;
    let _second = alice.live(&app, Via::Grpc, None).await;
    let _third = alice.live(&app, Via::Grpc, None).await;
    let auth = || WsAuth::Frame {
        token: alice.access_token.clone(),
        resume: None,
    };
    match app.connect_raw(auth()).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4500),
        other => panic!("a fourth WebSocket: {:?}", other.map(|_| ())),
    }
    let grpc = alice.grpc().await;
    match grpc.stream(None).await {
        Err(ClientError::Status { grpc, code, .. }) => {
            assert_eq!(grpc, tonic::Code::ResourceExhausted as i32);
            assert_eq!(code, "too_many_sessions");
        }
        other => panic!("a fourth gRPC stream: {:?}", other.map(|_| ())),
    }
    assert!(
        grpc.subscribe(Default::default()).await.is_err(),
        "Subscribe is a session too"
    );
    // Another user is not held to Alice's sessions.
    let _bob = bob.live(&app, Via::Grpc, None).await;

    // A session that ends gives its place back.
    drop(first);
    tokio::time::timeout(WAIT, async {
        while app.connect_raw(auth()).await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a place frees up when a session ends");
    assert!(refused().await >= before + 3.0);
}

/// The session cap counts every transport together, and each refuses a
/// session past it in its own terms (the machine code, and the metric
/// labelled by the transport that refused).
#[tokio::test]
async fn sessions_per_user_are_bounded_across_every_transport() {
    let app = spawn_app_with(|s| s.realtime.max_sessions_per_user = EVERY.len()).await;
    let alice = app.signup("alice").await;
    let mut open = Vec::new();
    for via in EVERY {
        open.push(alice.live(&app, via, None).await);
    }
    for via in EVERY {
        let metric = format!(
            r#"palaver_sessions_refused_total{{per="user",transport="{}"}}"#,
            transport_label(via)
        );
        let before = app.metric(&metric).await;
        match alice.try_live(&app, via, None).await {
            Err(code) => assert_eq!(code, "too_many_sessions", "{via:?}"),
            Ok(_) => panic!("{via:?}: a session past the cap"),
        }
        assert_eq!(app.metric(&metric).await, before + 1.0, "{via:?}");
    }
    // One ends (the STOMP one): its place is free for any transport.
    drop(open.remove(3));
    tokio::time::timeout(WAIT, async {
        while alice.try_live(&app, Via::SignalR, None).await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("a place frees up when a session ends");
}

/// The `transport` label of the node's metrics.
fn transport_label(via: Via) -> &'static str {
    match via {
        Via::WebSocket => "websocket",
        Via::Grpc => "grpc",
        Via::SocketIo => "socketio",
        Via::Stomp => "stomp",
        Via::SignalR => "signalr",
    }
}

/// A WebSocket from `source` (a loopback address of its own) authenticated
/// with `token`: open once `ready` came, or the close code it got instead.
async fn websocket_from(
    server: SocketAddr,
    source: IpAddr,
    token: &str,
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, u16> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let stream = socket.connect(server).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{server}/api/v1/ws"), stream)
        .await
        .unwrap();
    let auth = json!({ "type": "auth", "token": token }).to_string();
    ws.send(WsMessage::Text(auth.into())).await.unwrap();
    let first = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("an answer in time");
    match first {
        Some(Ok(WsMessage::Text(text))) if text.contains(r#""type":"ready""#) => Ok(ws),
        Some(Ok(WsMessage::Close(Some(frame)))) => Err(u16::from(frame.code)),
        other => panic!("neither ready nor a close: {other:?}"),
    }
}

#[tokio::test]
async fn sessions_per_address_are_bounded_whoever_opens_them() {
    let app = spawn_app_with(|s| s.realtime.max_sessions_per_address = 2).await;
    let server = server_addr(&app);
    let mut users = Vec::new();
    for name in ["ann", "ben", "cat"] {
        users.push(app.signup(name).await);
    }
    let here: IpAddr = "127.0.0.2".parse().unwrap();
    let there: IpAddr = "127.0.0.3".parse().unwrap();
    let _ann = websocket_from(server, here, &users[0].access_token)
        .await
        .unwrap();
    let _ben = websocket_from(server, here, &users[1].access_token)
        .await
        .unwrap();
    assert_eq!(
        websocket_from(server, here, &users[2].access_token)
            .await
            .err(),
        Some(4500),
        "a third session from one address, of a third user"
    );
    websocket_from(server, there, &users[2].access_token)
        .await
        .expect("another address has places of its own");
}

#[tokio::test]
async fn health_and_reflection_refuse_a_request_over_the_frame_limit() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let app = spawn_app().await;
    let channel = palaver_client::grpc::GrpcClient::connect(&app.base_url)
        .await
        .unwrap()
        .channel();
    let huge = "x".repeat(3 << 20);
    let refused = |status: tonic::Status| {
        assert!(
            matches!(
                status.code(),
                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
            ),
            "{status:?}"
        );
    };
    let mut health = HealthClient::new(channel.clone());
    refused(
        health
            .check(HealthCheckRequest {
                service: huge.clone(),
            })
            .await
            .unwrap_err(),
    );
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: huge,
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    // The stream fails, or (tonic's reflection ends its answers when a
    // request cannot be decoded) ends without an answer.
    match reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
    {
        Err(status) => refused(status),
        Ok(answers) => match answers.into_inner().message().await {
            Err(status) => refused(status),
            Ok(None) => {}
            Ok(Some(answer)) => panic!("a 3 MiB request was decoded and answered: {answer:?}"),
        },
    }
}

/// A real `palaver` process with small limits, its log lines (JSON, one per
/// line, from its start) and where its metrics are.
struct LoggedNode {
    child: tokio::process::Child,
    addr: SocketAddr,
    metrics_url: String,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    _data_dir: tempfile::TempDir,
    _database: TestDatabase,
}

impl LoggedNode {
    async fn start(args: &[&str]) -> LoggedNode {
        let database = TestDatabase::fresh().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_palaver"));
        command
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = &database.url {
            command.env("PALAVER_DATABASE_URL", url);
        }
        let mut child = command.spawn().expect("palaver starts");
        let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        for output in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut output = BufReader::new(output).lines();
                while let Ok(Some(line)) = output.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        let (mut addr, mut metrics_url) = (None, None);
        tokio::time::timeout(WAIT, async {
            while addr.is_none() {
                let line = lines.recv().await.expect("palaver listens");
                let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let at = entry["fields"]["addr"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                match entry["fields"]["message"].as_str() {
                    Some("metrics listening") => metrics_url = Some(format!("http://{at}/metrics")),
                    Some("palaver listening") => addr = Some(at.parse().unwrap()),
                    _ => {}
                }
            }
        })
        .await
        .expect("palaver listens in time");
        LoggedNode {
            child,
            addr: addr.unwrap(),
            metrics_url: metrics_url.expect("metrics listening is logged first"),
            lines,
            _data_dir: data_dir,
            _database: database,
        }
    }

    async fn metric(&self, sample: &str) -> f64 {
        let text = reqwest::get(&self.metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter_map(|line| line.rsplit_once(' '))
            .filter(|(name, _)| *name == sample)
            .filter_map(|(_, value)| value.parse::<f64>().ok())
            .sum()
    }

    /// Stops the process (SIGTERM: a graceful shutdown) and returns every
    /// line it logged after it started listening.
    async fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().unwrap() as libc::pid_t;
        // SAFETY: signals our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("palaver stops")
            .unwrap();
        let mut lines = Vec::new();
        while let Some(line) = self.lines.recv().await {
            lines.push(line);
        }
        lines
    }
}

#[tokio::test]
async fn a_flood_of_refused_requests_logs_no_error_and_no_warning() {
    // Production hashing, one at a time and none waiting: concurrent
    // registrations are shed (503 `overloaded`); few connections per address.
    let node = LoggedNode::start(&[
        "--argon2-concurrency",
        "1",
        "--argon2-queue",
        "0",
        "--max-connections-per-address",
        "8",
    ])
    .await;
    let base = format!("http://{}", node.addr);
    let http = reqwest::Client::new();

    let register = |n: usize| {
        http.post(format!("{base}/api/v1/auth/register"))
            .json(&json!({ "username": format!("user{n}"), "password": PASSWORD }))
            .send()
    };
    let status = |answer: reqwest::Result<reqwest::Response>| {
        answer.map_or(0, |answer| answer.status().as_u16())
    };
    // Registrations at once: past the hashing, 503 `overloaded`.
    let mut statuses: Vec<u16> = futures::future::join_all((0..6).map(register))
        .await
        .into_iter()
        .map(status)
        .collect();
    // One after another: past the registrations per address, 429.
    for n in 6..20 {
        statuses.push(status(register(n).await));
    }
    for status in [429, 503] {
        assert!(statuses.contains(&status), "no {status} in {statuses:?}");
    }
    // Connections past the per-address limit: answered 429 and closed.
    let mut sockets = Vec::new();
    for _ in 0..24 {
        sockets.push(TcpStream::connect(node.addr).await.unwrap());
    }
    let mut refused_connections = 0;
    for mut socket in sockets {
        let request = format!(
            "GET /healthz HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            node.addr
        );
        let _ = socket.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(WAIT, socket.read_to_end(&mut answer)).await;
        if answer.starts_with(b"HTTP/1.1 429") {
            refused_connections += 1;
        }
    }
    assert!(refused_connections > 0, "no connection was refused");

    for status in ["429", "503"] {
        let sample = format!(r#"palaver_http_refusals_total{{status="{status}"}}"#);
        assert!(node.metric(&sample).await >= 1.0, "{sample} not counted");
    }
    let address_full = r#"palaver_connections_refused_total{reason="address_full"}"#;
    assert!(node.metric(address_full).await >= 1.0);

    let lines = node.stop().await;
    let loud: Vec<&String> = lines
        .iter()
        .filter(|line| {
            let level = serde_json::from_str::<Value>(line)
                .map(|entry| entry["level"].as_str().unwrap_or_default().to_owned())
                .unwrap_or_default();
            // A line that is not a log entry (a panic) counts as loud too.
            matches!(level.as_str(), "ERROR" | "WARN" | "")
        })
        .collect();
    assert!(loud.is_empty(), "refusals were logged loudly: {loud:#?}");
}

#[tokio::test]
async fn a_client_that_reads_nothing_of_a_download_is_dropped_after_the_write_stall_timeout() {
    let app = spawn_app_with(|s| {
        s.http.write_stall_timeout = Duration::from_millis(300);
        s.attachments.max_bytes = 64 * 1024 * 1024;
    })
    .await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    // Far more than the socket buffers on both sides hold.
    const SIZE: usize = 32 * 1024 * 1024;
    let file = alice
        .client
        .upload_attachment(room.id, "big.bin", vec![7u8; SIZE])
        .await
        .unwrap();
    let stalled_before = app.metric("palaver_connections_write_stalled_total").await;

    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server_addr(&app)).await.unwrap();
    let request = format!(
        "GET /api/v1/attachments/{} HTTP/1.1\r\nhost: palaver\r\nauthorization: Bearer {}\r\n\r\n",
        file.id, alice.access_token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Reads nothing until the node says it gave up on this connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.metric("palaver_connections_write_stalled_total").await <= stalled_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a write waiting on a client that reads nothing was never cut off"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received).await;
    assert!(
        received.len() < SIZE,
        "the connection ended before the download did ({} of {SIZE} bytes)",
        received.len()
    );
}
