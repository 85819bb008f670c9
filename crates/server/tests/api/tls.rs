//! TLS on the public listener, with a CA and server certificates made at
//! run time (rcgen): stock clients over it (curl over HTTP/1.1 and HTTP/2,
//! Python's `ssl`, grpcio, tokio-tungstenite and hyper on rustls), HSTS on
//! every response, the certificate replaced while a WebSocket stays open,
//! the plain-HTTP listener that only redirects, and handshakes that never
//! finish.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use crate::helpers::*;

/// The name clients ask for; it resolves to 127.0.0.1 (curl `--resolve`,
/// or a socket opened to the address with this name as SNI).
const HOST: &str = "palaver.test";
/// What `Strict-Transport-Security` says by default.
const HSTS_DEFAULT: &str = "max-age=31536000";

/// A CA that exists for one test, and the files the node reads.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: TempDir,
}

/// A server certificate and its key.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Palaver test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Self { ca, dir }
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("fullchain.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("privkey.pem")
    }

    /// A certificate for `names` (DNS names or addresses), signed by the CA.
    fn issue(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.ca).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn write_cert(&self, leaf: &Leaf) {
        std::fs::write(self.cert_path(), &leaf.cert_pem).unwrap();
    }

    fn write_key(&self, leaf: &Leaf) {
        std::fs::write(self.key_path(), &leaf.key_pem).unwrap();
    }
}

/// A node serving TLS with a certificate of the test's CA.
struct TlsNode {
    app: TestApp,
    pki: Pki,
    leaf: Leaf,
    addr: SocketAddr,
}

async fn spawn_tls(configure: impl FnOnce(&mut palaver_server::Settings)) -> TlsNode {
    let pki = Pki::new();
    let leaf = pki.issue(&[HOST, "localhost", "127.0.0.1"]);
    pki.write_cert(&leaf);
    pki.write_key(&leaf);
    let (cert, key) = (pki.cert_path(), pki.key_path());
    // TLS is the same on either store: SQLite keeps these tests light.
    let app = spawn_app_on(TestDatabase::sqlite(), |s| {
        s.http.tls_cert = Some(cert);
        s.http.tls_key = Some(key);
        configure(s);
    })
    .await;
    let addr = app
        .base_url
        .strip_prefix("https://")
        .expect("a TLS node's URL is https")
        .parse()
        .unwrap();
    TlsNode {
        app,
        pki,
        leaf,
        addr,
    }
}

/// Trusts the test's CA only.
fn client_config(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Each connection a full handshake, so each sees the current certificate.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

impl TlsNode {
    fn https_url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.addr.port())
    }

    /// A verified TLS connection asking for `alpn`.
    async fn connect(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        TlsConnector::from(client_config(&self.pki.ca_path(), alpn))
            .connect(ServerName::try_from(HOST).unwrap(), tcp)
            .await
            .expect("a TLS handshake the test's CA vouches for")
    }

    /// The certificate a new handshake presents.
    async fn served_certificate(&self) -> CertificateDer<'static> {
        let tls = self.connect(&[b"http/1.1"]).await;
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    }

    /// One request over a connection of its own (HTTP/2 when `alpn` is `h2`).
    async fn request(
        &self,
        alpn: &[u8],
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (hyper::http::response::Parts, Value) {
        let tls = self.connect(&[alpn]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(self.https_url(path));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body.to_string())),
            None => request.body(axum::body::Body::empty()),
        }
        .unwrap();
        let response = if alpn == b"h2" {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            sender.send_request(request).await.unwrap()
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(connection);
            let (mut parts, body) = request.into_parts();
            // HTTP/1.1 names the host in a header, HTTP/2 in the URI.
            parts.uri = path.parse().unwrap();
            let host = format!("{HOST}:{}", self.addr.port()).parse().unwrap();
            parts.headers.insert("host", host);
            sender
                .send_request(hyper::Request::from_parts(parts, body))
                .await
                .unwrap()
        };
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (parts, json)
    }

    /// Registers and logs in `username` over TLS; its access token.
    async fn sign_up(&self, username: &str) -> String {
        let account = json!({"username": username, "password": PASSWORD});
        let (registered, _) = self
            .request(
                b"http/1.1",
                "POST",
                "/api/v1/auth/register",
                None,
                Some(account.clone()),
            )
            .await;
        assert_eq!(registered.status, 201);
        let (logged_in, tokens) = self
            .request(b"h2", "POST", "/api/v1/auth/login", None, Some(account))
            .await;
        assert_eq!(logged_in.status, 200);
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    async fn create_room(&self, token: &str) -> i64 {
        let (created, room) = self
            .request(
                b"h2",
                "POST",
                "/api/v1/rooms",
                Some(token),
                Some(json!({"name": "over tls"})),
            )
            .await;
        assert_eq!(created.status, 201);
        room["id"].as_i64().unwrap()
    }

    /// A `wss://` WebSocket (tokio-tungstenite over rustls), once `ready`.
    async fn websocket(&self, token: &str) -> WebSocketStream<TlsStream<TcpStream>> {
        let tls = self.connect(&[b"http/1.1"]).await;
        let url = self.https_url(&format!("/api/v1/ws?access_token={token}"));
        let (mut ws, response) =
            tokio_tungstenite::client_async(url.replacen("https", "wss", 1), tls)
                .await
                .expect("the WebSocket upgrade over TLS");
        assert_eq!(
            response.headers()["strict-transport-security"],
            HSTS_DEFAULT
        );
        assert_eq!(next_json(&mut ws).await["type"], "ready");
        ws
    }

    /// The value of a metric sample on the node.
    async fn metric(&self, sample: &str) -> f64 {
        self.app.metric(sample).await
    }
}

/// The next text frame, as JSON.
async fn next_json(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await.expect("the WebSocket is open").unwrap() {
                WsMessage::Text(text) => return serde_json::from_str(&text).unwrap(),
                WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                other => panic!("unexpected WebSocket message {other:?}"),
            }
        }
    })
    .await
    .expect("a frame in time")
}

/// Sends `body` to `room` and waits for its `ack` and its `message`.
async fn send_and_see(ws: &mut WebSocketStream<TlsStream<TcpStream>>, room: i64, body: &str) {
    let client_id = body.replace(' ', "-");
    let frame = json!({"type": "send", "room": room, "body": body, "client_id": client_id});
    ws.send(WsMessage::text(frame.to_string())).await.unwrap();
    let (mut acked, mut seen) = (false, false);
    while !(acked && seen) {
        let frame = next_json(ws).await;
        match frame["type"].as_str() {
            Some("ack") if frame["client_id"] == client_id => acked = true,
            Some("message") if frame["body"] == body => seen = true,
            Some("error") => panic!("sending {body:?} was refused: {frame}"),
            _ => {}
        }
    }
}

/// Runs a program to its end (at most `WAIT` × 3).
async fn run(program: impl AsRef<std::ffi::OsStr>, args: &[String]) -> std::process::Output {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tokio::time::timeout(WAIT * 3, command.output())
        .await
        .expect("the client finished in time")
        .expect("the client runs (curl: scripts/test installs it)")
}

/// curl with the test's CA and `HOST` at the node's address.
async fn curl(node: &TlsNode, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "--silent".to_owned(),
        "--show-error".to_owned(),
        "--max-time".to_owned(),
        "10".to_owned(),
        "--resolve".to_owned(),
        format!("{HOST}:{}:127.0.0.1", node.addr.port()),
    ];
    all.extend(args.iter().map(|arg| arg.to_string()));
    run("curl", &all).await
}

#[tokio::test]
async fn curl_gets_200_and_hsts_over_http1_and_http2_and_refuses_an_unknown_ca() {
    let node = spawn_tls(|_| {}).await;
    let ca = node.pki.ca_path();
    let url = node.https_url("/healthz");
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let out = curl(
            &node,
            &[
                flag,
                "--cacert",
                ca.to_str().unwrap(),
                "--dump-header",
                "-",
                "--output",
                "/dev/null",
                "--write-out",
                "%{http_version}",
                &url,
            ],
        )
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{flag}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status_line = stdout.lines().next().unwrap();
        assert!(
            status_line.starts_with(&format!("HTTP/{version} 200")),
            "{status_line}"
        );
        assert!(
            stdout
                .to_ascii_lowercase()
                .contains(&format!("strict-transport-security: {HSTS_DEFAULT}\r\n")),
            "{stdout}"
        );
        assert!(stdout.ends_with(version), "{flag} negotiated {stdout}");
    }
    // Without the CA, the same certificate is not trusted: verification is
    // real, and the node counts the handshake the client gave up.
    let failed = r#"palaver_tls_handshakes_failed_total{reason="error"}"#;
    let before = node.metric(failed).await;
    let out = curl(&node, &["--output", "/dev/null", &url]).await;
    assert_eq!(
        out.status.code(),
        Some(60),
        "curl exits 60 on an untrusted certificate"
    );
    eventually("the failed handshake to be counted", || async {
        node.metric(failed).await > before
    })
    .await;
}

/// `tests/contract/tls_clients.py` with the contract test's Python (its
/// virtual environment, where grpcio is installed).
#[tokio::test]
async fn python_ssl_and_grpcio_talk_to_the_node_over_tls() {
    let node = spawn_tls(|s| s.http.hsts_max_age = Duration::from_secs(600)).await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::env::var("PALAVER_VENV").unwrap_or_else(|_| "target/contract-venv".into());
    let python = root.join(venv).join("bin/python");
    assert!(
        python.is_file(),
        "grpcio is not installed: run scripts/contract-venv (scripts/test does)"
    );
    let out = run(
        &python,
        &[
            root.join("tests/contract/tls_clients.py")
                .display()
                .to_string(),
            node.addr.port().to_string(),
            node.pki.ca_path().display().to_string(),
            HOST.to_owned(),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(seen["http"]["status"], 200, "{seen}");
    assert_eq!(seen["http"]["alpn"], "http/1.1", "{seen}");
    assert_eq!(seen["http"]["hsts"], "max-age=600", "{seen}");
    assert_eq!(seen["http"]["body"]["status"], "ok", "{seen}");
    assert_eq!(seen["untrusted"], "CERTIFICATE_VERIFY_FAILED", "{seen}");
    assert_eq!(seen["grpc"]["health"], "SERVING", "{seen}");
}

#[tokio::test]
async fn rust_clients_use_rest_over_http1_and_http2_and_a_websocket_over_wss() {
    let node = spawn_tls(|_| {}).await;
    let token = node.sign_up("alice").await;
    let room = node.create_room(&token).await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let (response, rooms) = node
            .request(alpn, "GET", "/api/v1/rooms", Some(&token), None)
            .await;
        assert_eq!(response.status, 200);
        let version = if alpn == b"h2" {
            hyper::Version::HTTP_2
        } else {
            hyper::Version::HTTP_11
        };
        assert_eq!(response.version, version);
        assert_eq!(response.headers["strict-transport-security"], HSTS_DEFAULT);
        assert_eq!(rooms[0]["id"], room);
    }
    let mut ws = node.websocket(&token).await;
    send_and_see(&mut ws, room, "hello over wss").await;
}

/// A renewal: the certificate file replaced first, the key after it. Until
/// the key follows, the files do not fit and the old certificate is served;
/// then new handshakes get the new one, and a WebSocket opened before goes
/// on as it was.
#[tokio::test]
async fn a_renewed_certificate_is_served_to_new_handshakes_while_open_connections_go_on() {
    let node = spawn_tls(|_| {}).await;
    let token = node.sign_up("alice").await;
    let room = node.create_room(&token).await;
    let mut ws = node.websocket(&token).await;
    send_and_see(&mut ws, room, "before the renewal").await;
    assert_eq!(node.served_certificate().await, node.leaf.der);
    // Every test's certificate ends on one date (rcgen's default), so nodes
    // of tests running beside this one set the gauge to the same value.
    let expiry = "palaver_tls_certificate_expiry_timestamp_seconds";
    assert_eq!(node.metric(expiry).await, not_after(&node.leaf.der));

    let renewed = node.pki.issue(&["renewed.palaver.test", HOST, "127.0.0.1"]);
    let failed = r#"palaver_tls_reloads_total{result="failed"}"#;
    let loaded = r#"palaver_tls_reloads_total{result="loaded"}"#;
    let (failed_before, loaded_before) = (node.metric(failed).await, node.metric(loaded).await);
    node.pki.write_cert(&renewed);
    eventually("the mismatched files to be tried and refused", || async {
        node.metric(failed).await > failed_before
    })
    .await;
    assert_eq!(
        node.served_certificate().await,
        node.leaf.der,
        "a certificate without its key is not served"
    );

    node.pki.write_key(&renewed);
    eventually("new handshakes to get the renewed certificate", || async {
        node.served_certificate().await == renewed.der
    })
    .await;
    assert!(node.metric(loaded).await > loaded_before);
    send_and_see(&mut ws, room, "after the renewal").await;
    let mut fresh = node.websocket(&token).await;
    send_and_see(&mut fresh, room, "on a new connection").await;
}

/// The certificate's end, in seconds since the Unix epoch.
fn not_after(der: &CertificateDer<'_>) -> f64 {
    let (_, parsed) = x509_parser::parse_x509_certificate(der).unwrap();
    parsed.validity().not_after.timestamp() as f64
}

/// Polls `check` until it holds, failing after a generous deadline (the
/// files are looked at every second and read once they held still).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + palaver_server::tls::RELOAD_CHECK_EVERY * 10;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited in vain for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads one HTTP response head from a plain connection to `addr`.
async fn plain_request(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(WAIT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed before the response head");
            head.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("a response in time");
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}

#[tokio::test]
async fn the_plain_listener_redirects_every_request_to_https_and_serves_nothing_else() {
    let node =
        spawn_tls(|s| s.http.tls_redirect_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let redirect = node.app.redirect_addr.expect("a redirect listener");
    let port = node.addr.port();
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/api/v1/rooms?limit=5&x=%20y"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/healthz"),
    ] {
        let head = plain_request(
            redirect,
            &format!(
                "{method} {path} HTTP/1.1\r\nhost: {HOST}:{}\r\ncontent-length: 0\r\n\r\n",
                redirect.port()
            ),
        )
        .await;
        assert!(head.starts_with("http/1.1 308 "), "{method} {path}: {head}");
        assert!(
            head.contains(&format!(
                "\r\nlocation: https://{HOST}:{port}{}\r\n",
                path.to_ascii_lowercase()
            )),
            "{method} {path}: {head}"
        );
        // Browsers take HSTS only over https.
        assert!(!head.contains("strict-transport-security"), "{head}");
    }
    let head = plain_request(redirect, "GET / HTTP/1.0\r\n\r\n").await;
    let status = head.lines().next().unwrap_or_default();
    assert!(status.contains(" 400 "), "no Host, no redirect: {head}");

    // curl follows it to the https listener.
    let ca = node.pki.ca_path();
    let out = curl(
        &node,
        &[
            "--location",
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            &format!("{HOST}:{}:127.0.0.1", redirect.port()),
            "--write-out",
            "%{http_code} %{url_effective}",
            "--output",
            "/dev/null",
            &format!("http://{HOST}:{}/healthz", redirect.port()),
        ],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("200 {}", node.https_url("/healthz")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_redirect_names_the_configured_https_port() {
    let node = spawn_tls(|s| {
        s.http.tls_redirect_listen = Some("127.0.0.1:0".parse().unwrap());
        s.http.tls_redirect_port = Some(443);
    })
    .await;
    let redirect = node.app.redirect_addr.unwrap();
    let head = plain_request(
        redirect,
        &format!("GET /rooms HTTP/1.1\r\nhost: {HOST}\r\n\r\n"),
    )
    .await;
    assert!(
        head.contains(&format!("\r\nlocation: https://{HOST}/rooms\r\n")),
        "{head}"
    );
}

/// A client that opens TCP and never finishes its handshake (sending
/// nothing, or half a ClientHello) holds its connection's place only until
/// the header timeout; meanwhile its address's next connection is refused
/// with a proper answer over TLS.
#[tokio::test]
async fn a_handshake_that_never_finishes_is_dropped_within_the_header_timeout() {
    let node = spawn_tls(|s| {
        s.http.header_timeout = Duration::from_millis(500);
        s.http.max_connections_per_address = 1;
    })
    .await;
    let timeouts = r#"palaver_tls_handshakes_failed_total{reason="timeout"}"#;
    let before = node.metric(timeouts).await;
    let first_bytes_of_a_client_hello: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
    for sent in [&[][..], first_bytes_of_a_client_hello] {
        let mut stalled = TcpStream::connect(node.addr).await.unwrap();
        stalled.write_all(sent).await.unwrap();
        // The address's one place is taken: the next connection is answered
        // 429 (over TLS, in HTTP/1.1) and closed.
        let (refused, body) = node
            .request(b"http/1.1", "GET", "/healthz", None, None)
            .await;
        assert_eq!(refused.status, 429);
        assert_eq!(body["error"]["code"], "too_many_connections");
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(WAIT, stalled.read(&mut buf))
            .await
            .expect("the server drops a stalled handshake");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(started.elapsed() < WAIT);
    }
    assert!(node.metric(timeouts).await >= before + 2.0);
    // The place is free again.
    let (response, _) = node.request(b"h2", "GET", "/healthz", None, None).await;
    assert_eq!(response.status, 200);
}

/// Answering a refused connection over TLS costs a handshake: past a small
/// rate, refused connections are closed before it, and one address's flood
/// spends its own share of that rate, not another address's.
#[tokio::test]
async fn a_flood_of_refused_connections_is_not_answered_with_a_handshake_each() {
    let node = spawn_tls(|s| s.http.max_connections_per_address = 1).await;
    let held = node.connect(&[b"http/1.1"]).await;
    let unanswered = "palaver_refusals_unanswered_total";
    let before = node.metric(unanswered).await;
    // The server decides when it accepts, before the client says anything:
    // all of them are accepted before any handshake begins.
    const FLOOD: usize = 200;
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(TcpStream::connect(node.addr).await.unwrap());
    }
    // Another address over its own limit meanwhile is still told why.
    let other = "127.0.0.2".parse().unwrap();
    let other_held = connect_from(&node, other).await;
    let mut refused = connect_from(&node, other).await;
    refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: palaver.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, refused.read_to_string(&mut answer))
        .await
        .unwrap()
        .ok();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    drop(other_held);

    let config = client_config(&node.pki.ca_path(), &[b"http/1.1"]);
    let mut answered = 0;
    for tcp in flood {
        let connector = TlsConnector::from(config.clone());
        let handshake = connector.connect(ServerName::try_from(HOST).unwrap(), tcp);
        if let Ok(Ok(_)) = tokio::time::timeout(WAIT, handshake).await {
            answered += 1;
        }
    }
    assert!(answered >= 1, "the first refusals are answered");
    assert!(
        answered <= FLOOD / 2,
        "{answered} of {FLOOD} refused connections got a handshake"
    );
    assert!(node.metric(unanswered).await >= before + (FLOOD / 2) as f64);
    drop(held);
}

/// A verified TLS connection from the local address `from`.
async fn connect_from(node: &TlsNode, from: std::net::IpAddr) -> TlsStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    let tcp = socket.connect(node.addr).await.unwrap();
    TlsConnector::from(client_config(&node.pki.ca_path(), &[b"http/1.1"]))
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
        .expect("a TLS handshake the test's CA vouches for")
}

/// Every metric the dashboard and the alerts name that only a node serving
/// TLS exports (the `dashboards` test checks the rest on a plain node).
#[tokio::test]
async fn the_dashboards_tls_metrics_are_exported_by_a_tls_node() {
    let node = spawn_tls(|_| {}).await;
    let problems = crate::dashboards::tls_problems(&node.app.metrics_text().await);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn mismatched_or_missing_files_stop_the_node_at_start_naming_the_file() {
    let pki = Pki::new();
    let leaf = pki.issue(&[HOST]);
    let other = pki.issue(&[HOST]);
    pki.write_cert(&leaf);
    pki.write_key(&other);
    let data = tempfile::tempdir().unwrap();
    let mut settings = palaver_server::Settings::with_data_dir(data.path());
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    settings.metrics.listen = None;
    settings.http.tls_cert = Some(pki.cert_path());
    settings.http.tls_key = Some(pki.key_path());
    let err = palaver_server::Application::build(settings.clone())
        .await
        .err()
        .expect("a key that is not the certificate's is refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("does not fit the certificate"),
        "{message}"
    );
    assert!(message.contains("privkey.pem"), "{message}");

    settings.http.tls_key = Some(pki.dir.path().join("missing.pem"));
    let err = palaver_server::Application::build(settings)
        .await
        .err()
        .expect("a missing key is refused");
    assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");
}

/// The client library (what the CLI, the benches and these tests use) over
/// `https://`: trusting the test's CA, it registers and logs in over REST,
/// opens a WebSocket and a gRPC live session, and a message sent on one is
/// delivered on both. Trusting the system's roots only, each of REST, the
/// WebSocket and gRPC fails its handshake, at once, as a transport error.
#[tokio::test]
async fn the_client_library_speaks_rest_websocket_and_grpc_over_tls_trusting_the_ca_given() {
    use palaver_client::frames::{ClientFrame, ServerFrame};
    use palaver_client::{Client, LiveEvent, LiveSession, Transport, Trust};

    let node = spawn_tls(|_| {}).await;
    let base = node.app.base_url.clone();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let trust = Trust::with_ca_file(node.pki.ca_path()).unwrap();
    let anonymous = Client::with_trust(&base, trust.clone());
    anonymous.register("alice", PASSWORD, None).await.unwrap();
    let tokens = anonymous.login("alice", PASSWORD).await.unwrap();
    let alice = anonymous.with_token(&tokens.access_token);
    let room = alice.create_room("over tls", None).await.unwrap().id;

    let mut ws = alice.connect().await.expect("a wss:// WebSocket");
    let mut grpc = LiveSession::connect_with(
        &base,
        Transport::Grpc,
        Box::new(tokens.access_token.clone()),
        Default::default(),
        trust.clone(),
    )
    .await
    .expect("a gRPC live session over TLS");
    let body = "hello over tls";
    ws.send(&ClientFrame::Send {
        room,
        body: body.into(),
        client_id: Some("tls-1".into()),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await
    .unwrap();
    let delivered = |frame: &ServerFrame| matches!(frame, ServerFrame::Message { room: r, body: b, .. } if *r == room && b == body);
    tokio::time::timeout(WAIT, async {
        while !delivered(&ws.next_frame().await.unwrap()) {}
    })
    .await
    .expect("the message on the WebSocket");
    tokio::time::timeout(WAIT, async {
        loop {
            match grpc.next_event().await.unwrap() {
                LiveEvent::Frame(frame) if delivered(&frame) => break,
                LiveEvent::Frame(_) => {}
                other => panic!("the gRPC session did not stay up: {other:?}"),
            }
        }
    })
    .await
    .expect("the message on the gRPC stream");
    let history = alice.history(room, &Default::default()).await.unwrap();
    assert_eq!(history.messages.last().unwrap().body, body);

    every_stack_refuses(&base, &Trust::system(), &tokens.access_token).await;
}

/// A certificate the client's CA vouches for, but not for the name the
/// client asked for, is refused by every stack.
#[tokio::test]
async fn the_client_library_refuses_a_certificate_for_another_name() {
    use palaver_client::Trust;

    let node = spawn_tls(|_| {}).await;
    let token = node.sign_up("alice").await;
    // Served from now on: the name `HOST`, not the address clients dial.
    let elsewhere = node.pki.issue(&[HOST]);
    node.pki.write_cert(&elsewhere);
    node.pki.write_key(&elsewhere);
    eventually(
        "new handshakes to get the other name's certificate",
        || async { node.served_certificate().await == elsewhere.der },
    )
    .await;
    let trust = Trust::with_ca_file(node.pki.ca_path()).unwrap();
    every_stack_refuses(&node.app.base_url, &trust, &token).await;
}

/// REST, a WebSocket and a gRPC stream to `base`, trusting `trust`, each
/// fail the TLS handshake with a transport error saying why, in time.
async fn every_stack_refuses(base: &str, trust: &palaver_client::Trust, token: &str) {
    use palaver_client::live::Connection;
    use palaver_client::{Client, ClientError, Transport};

    fn refused(stack: &str, err: ClientError) {
        match err {
            ClientError::Transport(reason) => assert!(
                reason.contains("certificate"),
                "{stack}: the reason is not the certificate: {reason}"
            ),
            other => panic!("{stack}: not a transport error: {other}"),
        }
    }
    let rest = tokio::time::timeout(WAIT, Client::with_trust(base, trust.clone()).jwks())
        .await
        .expect("REST fails in time");
    refused("REST", rest.expect_err("REST is refused"));
    for transport in [Transport::WebSocket, Transport::Grpc] {
        let opened = tokio::time::timeout(
            WAIT,
            Connection::open_with(base, transport, token, None, trust),
        )
        .await
        .unwrap_or_else(|_| panic!("{transport} fails in time"));
        match opened {
            Ok(_) => panic!("{transport} connected"),
            Err(err) => refused(&transport.to_string(), err),
        }
    }
}
