//! One real-time connection, over either transport, so the conformance
//! checks (`realtime.rs`) are written once and run on both.

use std::collections::BTreeMap;
use std::time::Duration;

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::live::Connection;
use palaver_client::{ClientError, Transport, WsAuth};

use crate::helpers::{ReadFrames, TestApp, TestUser, WAIT};

pub const BOTH: [Transport; 2] = [Transport::WebSocket, Transport::Grpc];

/// A client's connection, with the tests' expectations about it.
pub struct Live(pub Connection);

impl TestUser {
    /// A real-time connection over `via`, resuming `resume` from the start.
    pub async fn live(
        &self,
        app: &TestApp,
        via: Transport,
        resume: Option<BTreeMap<String, u64>>,
    ) -> Live {
        Live(match via {
            Transport::WebSocket => {
                let auth = WsAuth::Frame {
                    token: self.access_token.clone(),
                    resume,
                };
                Connection::WebSocket(app.connect_raw(auth).await.expect("websocket connects"))
            }
            Transport::Grpc => Connection::Grpc(
                self.grpc()
                    .await
                    .stream(resume)
                    .await
                    .expect("grpc stream opens"),
            ),
        })
    }
}

impl Live {
    pub async fn send(&mut self, frame: &ClientFrame) {
        self.0.send(frame).await.expect("frame sent")
    }

    pub fn ready(&self) -> &ServerFrame {
        self.0.ready().expect("ready received")
    }

    /// How the server ended the connection, in one vocabulary: the machine
    /// code a gRPC status carries, or what a WebSocket close code means.
    pub async fn ended(&mut self) -> String {
        let err = tokio::time::timeout(WAIT, async {
            loop {
                if let Err(err) = self.next_frame().await {
                    return err;
                }
            }
        })
        .await
        .expect("the server ends the connection in time");
        match err {
            ClientError::Status { code, .. } => code,
            ClientError::Closed { code, .. } => match code {
                1001 => "shutting_down".into(),
                1009 => "frame_too_large".into(),
                1013 => "slow_consumer".into(),
                4001 => "unauthorized".into(),
                4002 => "session_ended".into(),
                4500 => "too_many_sessions".into(),
                other => format!("close {other}"),
            },
            other => panic!("ended by {other}"),
        }
    }
}

impl ReadFrames for Live {
    async fn next_frame(&mut self) -> palaver_client::Result<ServerFrame> {
        self.0.next_frame().await
    }

    async fn next_frame_within(
        &mut self,
        wait: Duration,
    ) -> palaver_client::Result<Option<ServerFrame>> {
        self.0.next_frame_within(wait).await
    }
}
