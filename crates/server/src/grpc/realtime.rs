//! `palaver.v1.Realtime`: the session core (`crate::session`) over a gRPC
//! call — both ways (`Connect`) or server to client only (`Subscribe`) — with
//! the WebSocket's frames, order and guarantees.

mod stream;

use std::collections::BTreeMap;

use palaver_domain::throttle::ClientAddr;
use palaver_domain::tokens::Bearer;
use palaver_grpc::v1::{self, client_frame::Frame};
use palaver_grpc::{encoded::realtime_server::Realtime, resume_from_map};
use tonic::{Code, Request, Response, Status, Streaming};

use self::stream::ResponseStream;
use super::auth::Caller;
use super::status;
use crate::node::AppState;
use crate::session;

pub struct RealtimeApi {
    state: AppState,
}

impl RealtimeApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Admits a session and runs it over the call until either side ends
    /// it; a refusal is the call's status.
    async fn start(
        &self,
        request: Option<Streaming<v1::ClientFrame>>,
        bearer: Bearer,
        from: ClientAddr,
        resume: BTreeMap<String, u64>,
    ) -> Result<Response<ResponseStream>, Status> {
        let deps = self.state.session_deps();
        let (transport, response) = stream::pair(request, &bearer);
        let admission = session::admit(&deps, bearer, from, session::TransportKind::Grpc)
            .await
            .map_err(stream::status_of_close)?;
        let resume = (!resume.is_empty()).then_some(resume);
        self.state
            .sessions
            .spawn(session::run(transport, deps, admission, resume));
        Ok(Response::new(response))
    }

    /// The positions of the `hello` that must open a `Connect` stream.
    async fn hello(
        &self,
        request: &mut Streaming<v1::ClientFrame>,
    ) -> Result<BTreeMap<String, u64>, Status> {
        let timeout = self.state.settings.realtime.auth_timeout;
        let first = tokio::select! {
            _ = self.state.shutdown.cancelled() => {
                return Err(status::with_code(Code::Unavailable, "shutting_down", "server shutting down"));
            }
            first = tokio::time::timeout(timeout, request.message()) => first,
        };
        let not_hello = || {
            status::with_code(
                Code::InvalidArgument,
                "invalid_frame",
                "the first frame must be `hello`",
            )
        };
        match first {
            Err(_) => Err(status::with_code(
                Code::DeadlineExceeded,
                "hello_timeout",
                "no `hello` in time: send it as the first frame",
            )),
            Ok(Err(status)) => Err(status),
            Ok(Ok(None)) => Err(not_hello()),
            Ok(Ok(Some(frame))) => match frame.frame {
                Some(Frame::Hello(hello)) => Ok(resume_from_map(hello.resume)),
                _ => Err(not_hello()),
            },
        }
    }
}

#[tonic::async_trait]
impl Realtime for RealtimeApi {
    type ConnectStream = ResponseStream;
    type SubscribeStream = ResponseStream;

    async fn connect(
        &self,
        request: Request<Streaming<v1::ClientFrame>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let bearer = Caller::bearer(&request)?.clone();
        let from = Caller::of(&request)?.from;
        let mut request = request.into_inner();
        let resume = self.hello(&mut request).await?;
        self.start(Some(request), bearer, from, resume).await
    }

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<ResponseStream>, Status> {
        let bearer = Caller::bearer(&request)?.clone();
        let from = Caller::of(&request)?.from;
        let resume = resume_from_map(request.into_inner().resume);
        self.start(None, bearer, from, resume).await
    }
}
