//! Palaver over gRPC: a channel to the server, the access token on every
//! call, and the `Realtime.Connect` stream speaking the same frames as the
//! WebSocket (`palaver_protocol::ws`), translated by `palaver-grpc`.

use std::collections::BTreeMap;
use std::time::Duration;

use palaver_grpc::v1;
use palaver_protocol::ws::{ClientFrame, ServerFrame};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};

use crate::tls::{describe, Trust};
use crate::{ClientError, Result};

pub use palaver_grpc::v1 as proto;

/// Frames waiting to be sent on a stream.
const SEND_QUEUE: usize = 64;

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

pub type Authed = InterceptedService<Channel, BearerToken>;

/// A connection to the server's gRPC endpoint (the HTTP listener's address).
#[derive(Clone)]
pub struct GrpcClient {
    channel: Channel,
    token: BearerToken,
}

impl GrpcClient {
    /// Connects to `base` (`http://host:port`, or `https://…` trusting the
    /// system's roots), with HTTP/2 keepalive pings (the server answers them;
    /// they find a dead link on an idle stream).
    pub async fn connect(base: &str) -> Result<Self> {
        Self::connect_with(base, &Trust::default()).await
    }

    /// [`GrpcClient::connect`], trusting `trust` over TLS (`https://`).
    pub async fn connect_with(base: &str, trust: &Trust) -> Result<Self> {
        let mut endpoint = Endpoint::from_shared(base.to_owned())
            .map_err(|e| ClientError::Transport(describe(&e)))?;
        if endpoint.uri().scheme_str() == Some("https") {
            // ALPN `h2`, and the certificate checked against the URL's host.
            endpoint = endpoint
                .tls_config(trust.grpc())
                .map_err(|e| ClientError::Transport(describe(&e)))?;
        }
        let channel = endpoint
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .connect()
            .await
            .map_err(|e| ClientError::Transport(describe(&e)))?;
        Ok(Self {
            channel,
            token: BearerToken(None),
        })
    }

    /// The same connection, sending `token` on every call.
    pub fn with_token(&self, token: &str) -> Result<Self> {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::Protocol("the token is not valid metadata".into()))?;
        Ok(Self {
            channel: self.channel.clone(),
            token: BearerToken(Some(value)),
        })
    }

    /// The underlying channel, for other services' clients (health, reflection).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn accounts(&self) -> v1::accounts_client::AccountsClient<Authed> {
        v1::accounts_client::AccountsClient::with_interceptor(
            self.channel.clone(),
            self.token.clone(),
        )
    }

    pub fn rooms(&self) -> v1::rooms_client::RoomsClient<Authed> {
        v1::rooms_client::RoomsClient::with_interceptor(self.channel.clone(), self.token.clone())
    }

    pub fn messages(&self) -> v1::messages_client::MessagesClient<Authed> {
        v1::messages_client::MessagesClient::with_interceptor(
            self.channel.clone(),
            self.token.clone(),
        )
    }

    pub fn realtime(&self) -> v1::realtime_client::RealtimeClient<Authed> {
        v1::realtime_client::RealtimeClient::with_interceptor(
            self.channel.clone(),
            self.token.clone(),
        )
    }

    /// Opens `Realtime.Connect`: sends `hello` (with `resume`) and waits for `ready`.
    pub async fn stream(&self, resume: Option<BTreeMap<String, u64>>) -> Result<GrpcConnection> {
        let (outgoing, queue) = mpsc::channel(SEND_QUEUE);
        let hello = palaver_grpc::client_frame_to_proto(ClientFrame::Auth {
            token: None,
            resume,
        });
        outgoing
            .send(hello)
            .await
            .map_err(|_| ClientError::Transport("stream closed".into()))?;
        let response = self
            .realtime()
            .connect(ReceiverStream::new(queue))
            .await
            .map_err(|status| error_of(&status))?;
        let mut conn = GrpcConnection {
            outgoing: Some(outgoing),
            incoming: response.into_inner(),
            ready: None,
        };
        conn.expect_ready().await?;
        Ok(conn)
    }

    /// Opens `Realtime.Subscribe` (server to client only) and waits for `ready`.
    pub async fn subscribe(&self, resume: BTreeMap<String, u64>) -> Result<GrpcConnection> {
        let request = v1::SubscribeRequest {
            resume: resume
                .into_iter()
                .filter_map(|(room, seq)| Some((room.parse().ok()?, seq)))
                .collect(),
        };
        let response = self
            .realtime()
            .subscribe(request)
            .await
            .map_err(|status| error_of(&status))?;
        let mut conn = GrpcConnection {
            outgoing: None,
            incoming: response.into_inner(),
            ready: None,
        };
        conn.expect_ready().await?;
        Ok(conn)
    }
}

/// The machine code a status carries (`palaver-error-code`), or its gRPC code's name.
pub fn error_code(status: &Status) -> String {
    status
        .metadata()
        .get("palaver-error-code")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:?}", status.code()))
}

/// A status as a client error: its gRPC code, its machine code, its message.
pub fn error_of(status: &Status) -> ClientError {
    ClientError::Status {
        grpc: status.code() as i32,
        code: error_code(status),
        message: status.message().to_owned(),
    }
}

/// A `Realtime` stream.
pub struct GrpcConnection {
    /// `None` on a `Subscribe` stream, or once `finish` half-closed it.
    outgoing: Option<mpsc::Sender<v1::ClientFrame>>,
    incoming: Streaming<v1::ServerFrame>,
    /// The `ready` frame.
    pub ready: Option<ServerFrame>,
}

impl GrpcConnection {
    async fn expect_ready(&mut self) -> Result<()> {
        let mut opening = crate::opening::Opening::default();
        while self.ready.is_none() {
            self.ready = opening.add(self.next_frame().await?)?;
        }
        Ok(())
    }

    pub async fn send(&mut self, frame: &ClientFrame) -> Result<()> {
        self.send_proto(palaver_grpc::client_frame_to_proto(frame.clone()))
            .await
    }

    /// Sends a protobuf frame as it is, for tests that build frames by hand.
    pub async fn send_proto(&mut self, frame: v1::ClientFrame) -> Result<()> {
        let outgoing = self
            .outgoing
            .as_ref()
            .ok_or_else(|| ClientError::Protocol("this stream only receives".into()))?;
        outgoing
            .send(frame)
            .await
            .map_err(|_| ClientError::Transport("stream closed".into()))
    }

    /// Half-closes the stream: nothing more is sent, frames still arrive.
    pub fn finish(&mut self) {
        self.outgoing = None;
    }

    /// The next server frame; the stream's end becomes `ClientError::Status`
    /// (`Closed` when it ended with OK).
    pub async fn next_frame(&mut self) -> Result<ServerFrame> {
        loop {
            match self.incoming.message().await {
                Ok(Some(frame)) => {
                    if let Some(frame) = palaver_grpc::frame_to_ws(frame) {
                        return Ok(frame);
                    }
                    // A frame type newer than this client: skipped.
                }
                Ok(None) => {
                    return Err(ClientError::Closed {
                        code: 1000,
                        reason: "the stream ended".into(),
                    })
                }
                Err(status) => return Err(error_of(&status)),
            }
        }
    }

    /// The next frame, or `None` if none arrives within `wait`.
    pub async fn next_frame_within(&mut self, wait: Duration) -> Result<Option<ServerFrame>> {
        match tokio::time::timeout(wait, self.next_frame()).await {
            Ok(frame) => frame.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Reads until the stream ends; returns the error it ended with.
    pub async fn ended(&mut self) -> ClientError {
        loop {
            match self.next_frame().await {
                Ok(_) => continue,
                Err(err) => return err,
            }
        }
    }
}
