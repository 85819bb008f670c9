//! Accepting connections: how many may be open (in total and per address),
//! how long a client has to send its request headers (with TLS, to finish
//! its handshake too), how long a connection may stay open with no request
//! in flight, and serving each connection (HTTP/1, HTTP/2 with gRPC,
//! WebSocket upgrades) with hyper, over TLS when it is configured.
//!
//! A connection counts until its socket closes, upgraded WebSockets
//! included: the count travels with the socket (`Counted`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use governor::{Quota, RateLimiter};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use palaver_domain::throttle::ClientAddr;
use parking_lot::Mutex;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::client_addr::{is_trusted, ProxyNet};
use crate::tls::Tls;

#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_total: usize,
    pub max_per_address: usize,
    pub header_timeout: Duration,
    /// How long a connection may have no request (an HTTP/2 stream) open
    /// before it is closed (GOAWAY on HTTP/2): pings alone keep nothing open.
    pub idle_timeout: Duration,
    /// How long a write may wait on a client that reads nothing before the
    /// connection is dropped: a slow reader holds no response (a download,
    /// its open file) for long.
    pub write_stall_timeout: Duration,
    /// Exempt from the per-address limit: every client behind them shares
    /// their address.
    pub trusted_proxies: Vec<ProxyNet>,
}

/// How long a refused connection may take to send its request head before
/// it is answered anyway.
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_secs(1);
/// The most of a refused connection's request that is read (and discarded).
const REFUSAL_READ_BYTES: usize = 8 * 1024;
/// Refused connections being answered at once; past that, a refused
/// connection is closed unanswered, so a flood of them cannot hold more
/// sockets than this.
const MAX_ANSWERING_REFUSALS: usize = 256;

/// Refused connections over TLS answered per second (and at once): each
/// answer costs the server a handshake, so a flood of refused connections
/// past this is closed unanswered.
const TLS_REFUSALS_ANSWERED_PER_SEC: NonZeroU32 = NonZeroU32::new(20).unwrap();
/// Of those, the most one address (an IPv6 /64) is answered: one address
/// flooding refused connections spends its own share, not everyone's.
const TLS_REFUSALS_ANSWERED_PER_ADDRESS_PER_SEC: NonZeroU32 = NonZeroU32::new(2).unwrap();
/// Addresses idle in that keyed limiter are forgotten every this many refusals.
const TLS_REFUSAL_KEYS_SWEEP_EVERY: u64 = 1024;

/// Concurrent HTTP/2 streams (gRPC calls) on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 100;
/// How often an HTTP/2 connection is pinged, and how long its answer may take.
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `router` on `listener` (over `tls`, if given: every response then
/// carries its `Strict-Transport-Security`) until `shutdown`, then lets open
/// HTTP connections finish their requests and returns once they have closed
/// (upgraded WebSockets are the sessions' to close).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<Arc<Tls>>,
    shutdown: CancellationToken,
) {
    let admission = Arc::new(Admission::new(limits.clone()));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // HTTP/2 multiplexes: each gRPC stream is a session, so one connection's
    // streams are bounded like connections are. Pings find a peer that
    // vanished without closing (an idle stream would otherwise never write).
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .keep_alive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .keep_alive_timeout(HTTP2_KEEPALIVE_TIMEOUT);
    let connections = TaskTracker::new();
    let refusing = Arc::new(AtomicUsize::new(0));
    let tls_refusals = RateLimiter::direct(Quota::per_second(TLS_REFUSALS_ANSWERED_PER_SEC));
    let tls_refusals_per_address =
        RateLimiter::keyed(Quota::per_second(TLS_REFUSALS_ANSWERED_PER_ADDRESS_PER_SEC));
    let mut tls_refused: u64 = 0;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    pause_after_accept_error(err).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Frames are small and each is due now: without TCP_NODELAY, a frame
        // written while the previous one is unacknowledged (an ack, then the
        // sender's own copy of its message) waits for the client's delayed
        // ACK, up to 40 ms. Palaver coalesces a connection's queued frames
        // into one write itself.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let ticket = match admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                metrics::counter!("palaver_connections_refused_total", "reason" => refusal.reason())
                    .increment(1);
                let unanswered = tls.is_some() && {
                    tls_refused += 1;
                    if tls_refused.is_multiple_of(TLS_REFUSAL_KEYS_SWEEP_EVERY) {
                        tls_refusals_per_address.retain_recent();
                        tls_refusals_per_address.shrink_to_fit();
                    }
                    // The address's share first, so a flood from one spends
                    // nothing of the others'.
                    tls_refusals_per_address
                        .check_key(&ClientAddr::new(peer.ip()))
                        .is_err()
                        || tls_refusals.check().is_err()
                };
                if unanswered {
                    metrics::counter!("palaver_refusals_unanswered_total").increment(1);
                } else if refusing.fetch_add(1, Ordering::Relaxed) < MAX_ANSWERING_REFUSALS {
                    let refusing = refusing.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            None => refuse(tcp, refusal).await,
                            Some(tls) => {
                                let handshake = tls.refusal_acceptor.accept(tcp);
                                if let Ok(Ok(stream)) =
                                    tokio::time::timeout(REFUSAL_READ_TIMEOUT, handshake).await
                                {
                                    refuse(stream, refusal).await;
                                }
                            }
                        }
                        refusing.fetch_sub(1, Ordering::Relaxed);
                    });
                } else {
                    refusing.fetch_sub(1, Ordering::Relaxed);
                    metrics::counter!("palaver_refusals_unanswered_total").increment(1);
                }
                continue;
            }
        };
        // Each request counts as open until its response body is done (a
        // gRPC stream's body lasts as long as the stream).
        let streams = Arc::new(OpenStreams::default());
        let service = {
            let (router, streams) = (router.clone(), streams.clone());
            let hsts = tls.as_ref().map(|tls| tls.hsts.clone());
            tower::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                let open = streams.open();
                let router = router.clone();
                let hsts = hsts.clone();
                async move {
                    let mut response = router.oneshot(request).await?;
                    if let Some(hsts) = hsts {
                        response
                            .headers_mut()
                            .insert(hyper::header::STRICT_TRANSPORT_SECURITY, hsts);
                    }
                    Ok::<_, Infallible>(
                        response
                            .map(|body| axum::body::Body::new(TrackedBody { body, _open: open })),
                    )
                }
            })
        };
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let header_timeout = limits.header_timeout;
        let idle_timeout = limits.idle_timeout;
        let write_stall_timeout = limits.write_stall_timeout;
        let tls = tls.clone();
        connections.spawn(async move {
            // hyper's header timeout starts with the first byte: a client
            // that sends nothing at all (or never finishes its handshake)
            // is dropped here.
            let socket = tokio::select! {
                opened = tokio::time::timeout(header_timeout, Socket::open(tcp, tls.as_deref())) => {
                    match opened {
                        Ok(Ok(socket)) => socket,
                        Ok(Err(NotOpened::Gone)) => return,
                        Ok(Err(NotOpened::Handshake(err))) => {
                            metrics::counter!("palaver_tls_handshakes_failed_total", "reason" => "error")
                                .increment(1);
                            tracing::debug!(error = %err, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            if tls.is_some() {
                                metrics::counter!("palaver_tls_handshakes_failed_total", "reason" => "timeout")
                                    .increment(1);
                            }
                            return;
                        }
                    }
                }
                _ = shutdown.cancelled() => return,
            };
            let io = TokioIo::new(Counted {
                socket,
                _ticket: ticket,
                write_stall_timeout,
                stalled_since: None,
            });
            let connection = builder
                .serve_connection_with_upgrades(io, TowerToHyperService::new(service))
                .into_owned();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => return log_end(result),
                _ = shutdown.cancelled() => connection.as_mut().graceful_shutdown(),
                _ = streams.idle_for(idle_timeout) => {
                    metrics::counter!("palaver_connections_idle_closed_total").increment(1);
                    connection.as_mut().graceful_shutdown();
                }
            }
            log_end(connection.await);
        });
    }
    connections.close();
    connections.wait().await;
}

/// The requests in flight on one connection, and a wakeup whenever that
/// count leaves or reaches zero.
#[derive(Default)]
struct OpenStreams {
    count: AtomicUsize,
    changed: tokio::sync::Notify,
}

impl OpenStreams {
    fn open(self: &Arc<Self>) -> OpenStream {
        if self.count.fetch_add(1, Ordering::AcqRel) == 0 {
            self.changed.notify_waiters();
        }
        OpenStream(self.clone())
    }

    /// Resolves once no request has been open for `timeout` without a break.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the count is read: no change slips between.
            changed.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(timeout) => return,
                    _ = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

/// One request in flight; dropped with its response body (or its handler,
/// if the client reset the stream first).
struct OpenStream(Arc<OpenStreams>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// A response body that holds its request's place among the open ones.
struct TrackedBody {
    body: axum::body::Body,
    _open: OpenStream,
}

impl hyper::body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(err) = result {
        tracing::trace!(error = %err, "connection ended with an error");
    }
}

/// Accept fails for one connection (it was reset before being accepted) or
/// for all (out of file descriptors); the latter would spin, so wait a little.
async fn pause_after_accept_error(err: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(error = %err, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NodeFull,
    AddressFull,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::NodeFull => "node_full",
            Refusal::AddressFull => "address_full",
        }
    }

    fn response(self) -> String {
        let (status, message) = match self {
            Refusal::NodeFull => (
                "503 Service Unavailable",
                "the server has too many open connections",
            ),
            Refusal::AddressFull => (
                "429 Too Many Requests",
                "too many open connections from your address",
            ),
        };
        let body =
            format!(r#"{{"error":{{"code":"too_many_connections","message":"{message}"}}}}"#);
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             retry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

/// Reads (briefly, boundedly) what the client sent, so that it is not reset
/// before it reads the answer, then answers and closes.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, refusal: Refusal) {
    let mut head = Vec::with_capacity(1024);
    let _ = tokio::time::timeout(REFUSAL_READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        while head.len() < REFUSAL_READ_BYTES && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(REFUSAL_READ_TIMEOUT, async {
        stream.write_all(refusal.response().as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// The open connections, counted in total and per address.
struct Admission {
    limits: ConnectionLimits,
    open: AtomicUsize,
    /// Only addresses with open connections (the accept path takes this lock,
    /// never a request or a message).
    per_address: Mutex<HashMap<ClientAddr, usize>>,
}

impl Admission {
    fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            open: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
        }
    }

    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.limits.max_total {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::NodeFull);
        }
        let address =
            (!is_trusted(peer, &self.limits.trusted_proxies)).then(|| ClientAddr::new(peer));
        if let Some(address) = address {
            let mut per_address = self.per_address.lock();
            let count = per_address.entry(address).or_insert(0);
            if *count >= self.limits.max_per_address {
                drop(per_address);
                self.open.fetch_sub(1, Ordering::Relaxed);
                return Err(Refusal::AddressFull);
            }
            *count += 1;
        }
        metrics::gauge!("palaver_connections_open").increment(1.0);
        Ok(Ticket {
            admission: self.clone(),
            address,
        })
    }
}

/// One admitted connection; dropping it (the socket closes) frees its place.
struct Ticket {
    admission: Arc<Admission>,
    address: Option<ClientAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(address) = self.address {
            let mut per_address = self.admission.per_address.lock();
            if let Some(count) = per_address.get_mut(&address) {
                *count -= 1;
                if *count == 0 {
                    per_address.remove(&address);
                }
            }
        }
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("palaver_connections_open").decrement(1.0);
    }
}

/// A connection's socket, once its client has sent something: plain TCP,
/// or TLS after the handshake (its first plaintext byte waiting in a
/// one-byte buffer, which later reads bypass).
enum Socket {
    Plain(TcpStream),
    Tls(Box<BufReader<TlsStream<TcpStream>>>),
}

/// Why a connection ended before its first request.
enum NotOpened {
    Handshake(io::Error),
    /// The client closed (or reset) the connection: after a handshake, a
    /// browser's speculative connection it did not need, say.
    Gone,
}

impl Socket {
    /// Waits for the client's first byte of HTTP, through the TLS handshake
    /// if `tls`.
    async fn open(tcp: TcpStream, tls: Option<&Tls>) -> Result<Self, NotOpened> {
        let Some(tls) = tls else {
            tcp.readable().await.map_err(|_| NotOpened::Gone)?;
            return Ok(Socket::Plain(tcp));
        };
        let handshake = tls.acceptor.accept(tcp).await;
        let mut stream = BufReader::with_capacity(1, handshake.map_err(NotOpened::Handshake)?);
        match stream.fill_buf().await {
            Ok(first) if !first.is_empty() => Ok(Socket::Tls(Box::new(stream))),
            _ => Err(NotOpened::Gone),
        }
    }
}

/// The same call on whichever socket it is.
macro_rules! on_socket {
    ($socket:expr, $s:ident => $call:expr) => {
        match $socket {
            Socket::Plain($s) => $call,
            Socket::Tls($s) => $call,
        }
    };
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_socket!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_socket!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_socket!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        on_socket!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_socket!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_socket!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

/// A socket that holds its connection's place until it is dropped, and
/// fails a write that waits `write_stall_timeout` without the client reading.
struct Counted {
    socket: Socket,
    _ticket: Ticket,
    write_stall_timeout: Duration,
    /// Armed while writes wait (boxed: a connection whose writes never
    /// wait keeps one pointer for it).
    stalled_since: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Counted {
    /// `result` of a write or flush, failed once writes have waited too long.
    fn within_stall<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.stalled_since = None;
            return result;
        }
        let timeout = self.write_stall_timeout;
        let deadline =
            (self.stalled_since).get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        // Polled with the write's context: the connection's task wakes when
        // the time is up, and its next write fails.
        if deadline.as_mut().poll(cx).is_ready() {
            metrics::counter!("palaver_connections_write_stalled_total").increment(1);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for the write stall timeout",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.socket).poll_write(cx, buf);
        self.within_stall(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.socket).poll_write_vectored(cx, bufs);
        self.within_stall(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.socket).poll_flush(cx);
        self.within_stall(cx, flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max_total: usize, max_per_address: usize) -> Arc<Admission> {
        Arc::new(Admission::new(ConnectionLimits {
            max_total,
            max_per_address,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            write_stall_timeout: Duration::from_secs(1),
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
        }))
    }

    #[test]
    fn connections_are_limited_per_address_and_in_total_until_they_close() {
        let admission = admission(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).err(), Some(Refusal::AddressFull));
        let _third = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).err(), Some(Refusal::NodeFull));
        drop(first);
        let _again = admission.admit(a).unwrap();
        assert_eq!(admission.per_address.lock().len(), 2);
    }

    #[test]
    fn a_trusted_proxy_is_held_only_to_the_total() {
        let admission = admission(3, 1);
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let tickets: Vec<_> = (0..3).map(|_| admission.admit(proxy).unwrap()).collect();
        assert_eq!(admission.admit(proxy).err(), Some(Refusal::NodeFull));
        drop(tickets);
        assert!(admission.per_address.lock().is_empty());
        assert_eq!(admission.open.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_while_no_request_is_open() {
        let streams = Arc::new(OpenStreams::default());
        let idle = Duration::from_secs(30);
        let open = streams.open();
        let waited = tokio::time::timeout(idle * 3, streams.idle_for(idle)).await;
        assert!(waited.is_err(), "an open request keeps the connection busy");
        let started = tokio::time::Instant::now();
        let waiting = tokio::spawn({
            let streams = streams.clone();
            async move { streams.idle_for(idle).await }
        });
        tokio::time::sleep(idle / 2).await;
        drop(open);
        waiting.await.unwrap();
        // Idle from the moment the request ended, not from when it started.
        assert!(started.elapsed() >= idle + idle / 2);
    }

    #[test]
    fn refusals_are_complete_http_responses_with_the_error_body() {
        let response = Refusal::AddressFull.response();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 429 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "too_many_connections");
    }
}
