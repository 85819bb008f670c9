//! `spawn_app()` and typed helpers shared by the integration tests.

// Shared by two test binaries (`api`, `postgres`); each uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use palaver_client::frames::ServerFrame;
use palaver_client::grpc::{GrpcClient, GrpcConnection};
use palaver_client::types::{Room, User};
use palaver_client::{Client, WsAuth, WsConnection};
use palaver_server::{Application, Settings};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Long enough for a loaded CI machine; only reached when a test fails.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for a frame that must *not* arrive.
pub const QUIET: Duration = Duration::from_millis(300);
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    /// `https://` when the node serves TLS.
    pub base_url: String,
    /// Where plain HTTP is redirected to https (`tls_redirect_listen`).
    pub redirect_addr: Option<std::net::SocketAddr>,
    /// Where the node serves `/metrics` (its own listener, not `base_url`).
    pub metrics_url: String,
    /// The SMTP server the node sends its mail to.
    pub mail: crate::mail_sink::MailSink,
    settings: Settings,
    pub client: Client,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: TempDir,
    // Declared last: dropped after the server was told to stop.
    _database: TestDatabase,
}

/// A fresh database for one test: the SQLite file in the data directory, or,
/// with `PALAVER_TEST_STORE=postgres`, a new PostgreSQL database that is
/// dropped when the test ends.
pub struct TestDatabase {
    pub url: Option<String>,
    _cleanup: Option<PostgresCleanup>,
}

struct PostgresCleanup {
    admin_url: String,
    name: String,
}

/// The server tests create databases on (see scripts/postgres).
pub fn postgres_admin_url() -> String {
    std::env::var("PALAVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// Ends the whole test binary with one message rather than a panic per test:
/// every later test would fail the same way.
fn no_postgres(admin_url: &str, err: &sqlx::Error) -> ! {
    let shown = url::Url::parse(admin_url)
        .map(|mut url| {
            let _ = url.set_password(None);
            url.to_string()
        })
        .unwrap_or_default();
    eprintln!(
        "\nThese tests need PostgreSQL, which does not answer at {shown} ({err}).\n\
         Run ./scripts/test: it starts (or installs) one, or point \
         PALAVER_TEST_POSTGRES_URL at an admin URL of another.\n"
    );
    std::process::exit(2)
}

impl TestDatabase {
    /// The store this test run is parameterised with.
    pub async fn fresh() -> Self {
        match std::env::var("PALAVER_TEST_STORE").as_deref() {
            Ok("postgres") => Self::postgres().await,
            Ok("sqlite") | Err(_) => Self {
                url: None,
                _cleanup: None,
            },
            Ok(other) => panic!("PALAVER_TEST_STORE must be sqlite or postgres, not {other:?}"),
        }
    }

    pub fn sqlite() -> Self {
        Self {
            url: None,
            _cleanup: None,
        }
    }

    pub async fn postgres() -> Self {
        use sqlx::Connection;
        let admin_url = postgres_admin_url();
        let name = format!("palaver_test_{:016x}", rand::random::<u64>());
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(admin) => admin,
            Err(err) => no_postgres(&admin_url, &err),
        };
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).expect("PALAVER_TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        Self {
            url: Some(url.to_string()),
            _cleanup: Some(PostgresCleanup { admin_url, name }),
        }
    }
}

impl Drop for PostgresCleanup {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, so use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                use sqlx::Connection;
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}

pub struct TestUser {
    pub user: User,
    pub client: Client,
    pub access_token: String,
    pub refresh_token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server whose settings `configure` may adjust.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDatabase::fresh().await, configure).await
}

/// Starts a server on `database`.
pub async fn spawn_app_on(
    database: TestDatabase,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        palaver_server::telemetry::init(palaver_server::config::LogFormat::Text);
    }
    let data_dir = tempfile::tempdir().expect("temporary data dir");
    let mail = crate::mail_sink::MailSink::start();
    let mut settings = Settings::with_data_dir(data_dir.path());
    settings.mail.smtp_url = Some(palaver_server::config::Secret::new(
        mail.url.clone().into_bytes(),
    ));
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    // Cheap hashing keeps tests fast; production defaults are tested in the domain.
    settings.passwords.memory_kib = 256;
    settings.passwords.iterations = 1;
    // Every test signs up and logs in from 127.0.0.1; the limits have tests of their own.
    settings.limits = palaver_domain::throttle::RateLimits::off();
    settings.http.max_connections_per_address = 100_000;
    settings.realtime.max_sessions_per_address = 100_000;
    settings.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    settings.database.url = database
        .url
        .clone()
        .map(|url| palaver_server::config::Secret::new(url.into_bytes()));
    configure(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("server builds");
    let scheme = if settings.http.tls() { "https" } else { "http" };
    let base_url = format!("{scheme}://{}", app.local_addr());
    let redirect_addr = app.redirect_addr();
    let metrics_url = metrics_url(&app);
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());
    TestApp {
        client: Client::new(&base_url),
        base_url,
        redirect_addr,
        metrics_url,
        mail,
        settings,
        shutdown,
        server: Some(server),
        _data_dir: data_dir,
        _database: database,
    }
}

fn metrics_url(app: &Application) -> String {
    let addr = app.metrics_addr().expect("tests serve metrics");
    format!("http://{addr}/metrics")
}

impl TestApp {
    /// The node's metrics in the Prometheus text format.
    pub async fn metrics_text(&self) -> String {
        let response = reqwest::get(&self.metrics_url)
            .await
            .expect("the metrics listener answers");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        response.text().await.unwrap()
    }

    /// The value of one sample (`name{labels}` exactly as rendered, or a bare
    /// name), 0 when absent: the recorder is shared by every test in this
    /// process, so compare before and after, never equate.
    pub async fn metric(&self, sample: &str) -> f64 {
        self.metrics_text()
            .await
            .lines()
            .filter_map(|line| line.rsplit_once(' '))
            .filter(|(name, _)| *name == sample)
            .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
            .sum()
    }

    /// Registers and logs in `username`.
    pub async fn signup(&self, username: &str) -> TestUser {
        self.client
            .register(username, PASSWORD, None)
            .await
            .expect("register");
        self.signup_existing(username).await
    }

    /// Logs in a user that already exists.
    pub async fn signup_existing(&self, username: &str) -> TestUser {
        let tokens = self.client.login(username, PASSWORD).await.expect("login");
        TestUser {
            client: self.client.with_token(&tokens.access_token),
            user: tokens.user,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        }
    }

    /// `owner` creates a room and every one of `others` joins it by code.
    pub async fn room_with(&self, owner: &TestUser, others: &[&TestUser]) -> Room {
        let room = owner
            .client
            .create_room("general", None)
            .await
            .expect("create room");
        for user in others {
            user.client
                .join_room(&room.code, None)
                .await
                .expect("join room");
        }
        room
    }

    /// A WebSocket of `user` over a socket with a tiny, fixed receive buffer,
    /// for clients that never read: the server's writes to it get stuck once
    /// a little is in flight. `ready` is left unread.
    pub async fn connect_with_tiny_receive_buffer(
        &self,
        user: &TestUser,
    ) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let addr: std::net::SocketAddr =
            self.base_url.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let mut request = format!("ws://{addr}/api/v1/ws")
            .into_client_request()
            .unwrap();
        let bearer = format!("Bearer {}", user.access_token);
        request
            .headers_mut()
            .insert("authorization", bearer.parse().unwrap());
        let (ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .unwrap();
        ws
    }

    pub async fn connect_raw(&self, auth: WsAuth) -> palaver_client::Result<WsConnection> {
        WsConnection::connect(&self.base_url, auth).await
    }

    /// Shuts the server down gracefully and waits for it to stop.
    pub async fn shutdown(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server exits cleanly");
        }
    }
}

impl TestApp {
    /// The status `GET /readyz` answers with.
    pub async fn readiness(&self) -> u16 {
        let response = self
            .client
            .request(reqwest::Method::GET, "/readyz")
            .send()
            .await
            .expect("readyz answers");
        response.status().as_u16()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    /// The node's settings (its database among them).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Makes `username` a server admin, as `palaver admin grant` does.
    pub async fn grant_admin(&self, username: &str) {
        palaver_server::operator::grant(&self.settings, username, None)
            .await
            .expect("admin granted");
    }

    /// Stops the server gracefully and starts a new one on the same address
    /// and data directory (same database, same JWT secret).
    pub async fn restart(&mut self) {
        self.shutdown().await;
        let mut settings = self.settings.clone();
        settings.http.listen = self.base_url.trim_start_matches("http://").parse().unwrap();
        let app = Application::build(settings).await.expect("server rebuilds");
        self.metrics_url = metrics_url(&app);
        self.shutdown = app.shutdown_token();
        self.server = Some(tokio::spawn(app.run()));
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestUser {
    pub fn id(&self) -> i64 {
        self.user.id
    }

    pub async fn connect(&self) -> WsConnection {
        self.client.connect().await.expect("websocket connects")
    }

    /// A gRPC client of the server `base_url` names, sending this user's token.
    pub async fn grpc(&self) -> GrpcClient {
        let base = self.client.base_url().to_owned();
        GrpcClient::connect(&base)
            .await
            .expect("grpc connects")
            .with_token(&self.access_token)
            .unwrap()
    }
}

/// Anything that delivers server frames: a WebSocket, a gRPC stream.
pub trait ReadFrames {
    fn next_frame(&mut self) -> impl Future<Output = palaver_client::Result<ServerFrame>>;
    fn next_frame_within(
        &mut self,
        wait: Duration,
    ) -> impl Future<Output = palaver_client::Result<Option<ServerFrame>>>;
}

impl ReadFrames for WsConnection {
    async fn next_frame(&mut self) -> palaver_client::Result<ServerFrame> {
        WsConnection::next_frame(self).await
    }
    async fn next_frame_within(
        &mut self,
        wait: Duration,
    ) -> palaver_client::Result<Option<ServerFrame>> {
        WsConnection::next_frame_within(self, wait).await
    }
}

impl ReadFrames for GrpcConnection {
    async fn next_frame(&mut self) -> palaver_client::Result<ServerFrame> {
        GrpcConnection::next_frame(self).await
    }
    async fn next_frame_within(
        &mut self,
        wait: Duration,
    ) -> palaver_client::Result<Option<ServerFrame>> {
        GrpcConnection::next_frame_within(self, wait).await
    }
}

/// Reads frames until one matches `pick`, failing after `WAIT`.
pub async fn next_matching<T>(
    ws: &mut impl ReadFrames,
    mut pick: impl FnMut(ServerFrame) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let frame = ws.next_frame().await.expect("a frame");
            if let Some(found) = pick(frame) {
                return found;
            }
        }
    })
    .await
    .expect("expected frame did not arrive in time")
}

/// Waits for the server to close the connection; returns code and reason.
pub async fn expect_close(ws: &mut WsConnection) -> (u16, String) {
    tokio::time::timeout(WAIT, ws.closed())
        .await
        .expect("server did not close the connection in time")
}

/// A received `message` frame's essentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub room: i64,
    pub seq: u64,
    pub sender_id: i64,
    pub body: String,
}

pub async fn next_message(ws: &mut impl ReadFrames) -> Received {
    next_matching(ws, |frame| match frame {
        ServerFrame::Message {
            room,
            seq,
            sender_id,
            body,
            ..
        } => Some(Received {
            room,
            seq,
            sender_id,
            body,
        }),
        _ => None,
    })
    .await
}

/// Waits for the ack of `client_id`, failing on an error frame.
pub async fn next_ack(ws: &mut impl ReadFrames) -> (Option<String>, u64) {
    next_matching(ws, |frame| match frame {
        ServerFrame::Ack { client_id, seq, .. } => Some((client_id, seq)),
        ServerFrame::Error { code, message, .. } => {
            panic!("error instead of ack: {code}: {message}")
        }
        _ => None,
    })
    .await
}

pub async fn next_error(ws: &mut impl ReadFrames) -> (String, Option<String>) {
    next_matching(ws, |frame| match frame {
        ServerFrame::Error {
            code, reference, ..
        } => Some((code, reference)),
        _ => None,
    })
    .await
}

/// Asserts that no `message` frame arrives within `QUIET`.
pub async fn assert_no_message(ws: &mut impl ReadFrames) {
    assert_no_frame(ws, |frame| matches!(frame, ServerFrame::Message { .. })).await;
}

/// Asserts that no frame `unwanted` accepts arrives within `QUIET`.
pub async fn assert_no_frame(ws: &mut impl ReadFrames, unwanted: impl Fn(&ServerFrame) -> bool) {
    let deadline = tokio::time::Instant::now() + QUIET;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws
            .next_frame_within(left)
            .await
            .expect("connection healthy")
        {
            None => return,
            Some(frame) => assert!(!unwanted(&frame), "unexpected {frame:?}"),
        }
    }
}

pub fn send_frame(
    room: i64,
    body: &str,
    client_id: Option<&str>,
) -> palaver_client::frames::ClientFrame {
    palaver_client::frames::ClientFrame::Send {
        room,
        body: body.into(),
        client_id: client_id.map(Into::into),
        reply_to: None,
        attachments: Vec::new(),
    }
}

/// The status and error code of a call that must fail with an API error.
pub fn status_and_code<T: std::fmt::Debug>(result: palaver_client::Result<T>) -> (u16, String) {
    match result.expect_err("expected an API error") {
        palaver_client::ClientError::Api { status, code, .. } => (status, code),
        other => panic!("not an API error: {other}"),
    }
}

/// The HTTP status of a call that must fail with an API error.
pub fn status_of<T: std::fmt::Debug>(result: palaver_client::Result<T>) -> u16 {
    result
        .expect_err("expected an error")
        .status()
        .expect("an API error")
}

/// `workers` concurrent REST posters each post `per_worker` 4000-byte messages
/// to `room`; returns once all are stored.
pub async fn flood(client: &palaver_client::Client, room: i64, workers: usize, per_worker: usize) {
    let body = "z".repeat(4000);
    let mut posting = Vec::new();
    for worker in 0..workers {
        let client = client.clone();
        let body = body.clone();
        posting.push(tokio::spawn(async move {
            for n in 0..per_worker {
                let client_id = format!("{worker}-{n}");
                client
                    .post_message(room, &body, Some(&client_id))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in posting {
        task.await.unwrap();
    }
}
