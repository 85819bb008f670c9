//! The gRPC API's own surface: unary calls, metadata auth, statuses carrying
//! REST's machine codes, health, reflection, the stream's first frame and
//! size limit, and gRPC-Web over HTTP/1.1. (What the stream shares with the
//! WebSocket is checked on both in `realtime.rs`.)

use palaver_client::frames::ServerFrame;
use palaver_client::grpc::{error_code, proto, GrpcClient};
use palaver_client::ClientError;
use tonic::Code;

use crate::helpers::*;

fn failure<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> (Code, String) {
    let status = result.expect_err("expected a failing call");
    (status.code(), error_code(&status))
}

#[tokio::test]
async fn the_seeds_flow_register_login_create_join_list_send_and_page() {
    let app = spawn_app().await;
    let anonymous = GrpcClient::connect(&app.base_url).await.unwrap();
    for name in ["alice", "bob"] {
        let registered = anonymous
            .accounts()
            .register(proto::RegisterRequest {
                username: name.into(),
                password: PASSWORD.into(),
                display_name: None,
                email: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(registered.username, name);
    }
    let login = |name: &str| {
        let accounts = anonymous.accounts();
        let name = name.to_owned();
        async move {
            let mut accounts = accounts;
            accounts
                .login(proto::LoginRequest {
                    username: name,
                    password: PASSWORD.into(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let alice_tokens = login("alice").await;
    let bob_tokens = login("bob").await;
    assert!(alice_tokens.expires_in > 0);
    let alice = anonymous.with_token(&alice_tokens.access_token).unwrap();
    let bob = anonymous.with_token(&bob_tokens.access_token).unwrap();
    let me = alice
        .accounts()
        .me(proto::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.username, "alice");

    let room = alice
        .rooms()
        .create_room(proto::CreateRoomRequest {
            name: "den".into(),
            password: Some("sesame".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(room.has_password && room.code.len() == 8);
    let wrong = bob
        .rooms()
        .join_room(proto::JoinRoomRequest {
            code: room.code.clone(),
            password: Some("nope".into()),
        })
        .await;
    assert_eq!(failure(wrong), (Code::PermissionDenied, "forbidden".into()));
    let joined = bob
        .rooms()
        .join_room(proto::JoinRoomRequest {
            code: room.code.clone(),
            password: Some("sesame".into()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(joined.id, room.id);

    // Bob listens; who is online now is him.
    let mut at_bob = bob.stream(None).await.unwrap();
    let online = alice
        .rooms()
        .list_online(proto::MembersRequest {
            room_id: room.id,
            after: None,
            limit: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        online
            .users
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
    let members = alice
        .rooms()
        .list_members(proto::MembersRequest {
            room_id: room.id,
            after: None,
            limit: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.members.len(), 2);

    for n in 1..=3 {
        let sent = alice
            .messages()
            .send(proto::SendRequest {
                room_id: room.id,
                body: format!("m{n}"),
                client_id: Some(format!("c{n}")),
                reply_to: None,
                attachments: Vec::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(sent.seq, n);
        assert_eq!(next_message(&mut at_bob).await.body, format!("m{n}"));
    }
    let page = bob
        .messages()
        .history(proto::HistoryRequest {
            room_id: room.id,
            before_seq: Some(3),
            after_seq: None,
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (page.messages.len(), page.messages[0].seq, page.has_more),
        (1, 2, true)
    );
    let marker = bob
        .messages()
        .mark_read(proto::MessageRef {
            room_id: room.id,
            seq: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marker.seq, 3);
    let listed = bob
        .rooms()
        .list_rooms(proto::Empty {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (listed.rooms[0].last_seq, listed.rooms[0].unread_count),
        (3, 0)
    );
    let edit_by_bob = bob
        .messages()
        .edit(proto::EditRequest {
            room_id: room.id,
            seq: 1,
            body: "mine now".into(),
        })
        .await;
    assert_eq!(
        failure(edit_by_bob),
        (Code::PermissionDenied, "forbidden".into())
    );
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated_and_the_token_key_is_an_alias() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let anonymous = GrpcClient::connect(&app.base_url).await.unwrap();
    let refused = anonymous.rooms().list_rooms(proto::Empty {}).await;
    assert_eq!(
        failure(refused),
        (Code::Unauthenticated, "unauthorized".into())
    );
    let forged = anonymous.with_token("not.a.token").unwrap();
    let refused = forged.rooms().list_rooms(proto::Empty {}).await;
    assert_eq!(failure(refused).0, Code::Unauthenticated);
    let refused = forged.stream(None).await.err().expect("refused");
    assert!(
        matches!(refused, ClientError::Status { grpc, .. } if grpc == Code::Unauthenticated as i32)
    );

    let mut rooms = proto::rooms_client::RoomsClient::new(anonymous.channel());
    let mut request = tonic::Request::new(proto::Empty {});
    request
        .metadata_mut()
        .insert("token", alice.access_token.parse().unwrap());
    assert!(rooms.list_rooms(request).await.is_ok());
}

#[tokio::test]
async fn a_private_room_answers_a_stranger_as_if_it_did_not_exist() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let mallory = app.signup("mallory").await;
    let room = alice.client.create_room("private", None).await.unwrap();
    let grpc = mallory.grpc().await;
    for room_id in [room.id, room.id + 1000] {
        let get = grpc.rooms().get_room(proto::RoomRequest { room_id }).await;
        assert_eq!(failure(get), (Code::NotFound, "not_found".into()));
        let history = grpc
            .messages()
            .history(proto::HistoryRequest {
                room_id,
                ..Default::default()
            })
            .await;
        assert_eq!(failure(history), (Code::NotFound, "not_found".into()));
        let kick = grpc
            .rooms()
            .kick(proto::MemberRequest {
                room_id,
                user_id: alice.id(),
            })
            .await;
        assert_eq!(failure(kick), (Code::NotFound, "not_found".into()));
    }
    let invalid = grpc
        .rooms()
        .create_room(proto::CreateRoomRequest {
            name: String::new(),
            password: None,
        })
        .await;
    assert_eq!(failure(invalid).0, Code::InvalidArgument);
}

#[tokio::test]
async fn health_and_reflection_answer_generic_tools() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let app = spawn_app().await;
    let channel = GrpcClient::connect(&app.base_url).await.unwrap().channel();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "palaver.v1.Realtime", "palaver.v1.Rooms"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    let expected = [
        "palaver.v1.Accounts",
        "palaver.v1.Rooms",
        "palaver.v1.Messages",
        "palaver.v1.Realtime",
        "grpc.health.v1.Health",
    ];
    for service in expected {
        assert!(names.iter().any(|n| n == service), "{service} in {names:?}");
    }

    // The older spelling, which most tools still speak, answers the same.
    use tonic_reflection::pb::v1alpha;
    let mut reflection = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no v1alpha service list")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for service in expected {
        assert!(
            names.iter().any(|n| n == service),
            "v1alpha: {service} in {names:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_must_open_with_hello_and_bad_frames_are_answered_not_fatal() {
    let app = spawn_app_with(|s| s.realtime.max_frame_bytes = Some(16 * 1024)).await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    let grpc = alice.grpc().await;

    // Not hello first: refused.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(palaver_grpc::client_frame_to_proto(
        palaver_client::frames::ClientFrame::Ping { reference: None },
    ))
    .await
    .unwrap();
    let refused = grpc
        .realtime()
        .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    assert_eq!(
        failure(refused),
        (Code::InvalidArgument, "invalid_frame".into())
    );

    let mut live = grpc.stream(None).await.unwrap();
    // A frame with nothing in it, and a second hello: error frames.
    live.send_proto(proto::ClientFrame {
        r#ref: Some("empty".into()),
        frame: None,
    })
    .await
    .unwrap();
    assert_eq!(
        next_error(&mut live).await,
        ("invalid_frame".into(), Some("empty".into()))
    );
    live.send_proto(proto::ClientFrame {
        r#ref: None,
        frame: Some(proto::client_frame::Frame::Hello(proto::Hello::default())),
    })
    .await
    .unwrap();
    assert_eq!(next_error(&mut live).await.0, "invalid_frame");
    // Still usable.
    live.send(&send_frame(room.id, "fine", Some("ok")))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut live).await.1, 1);

    // Half-closed: nothing more is sent, messages still arrive.
    live.finish();
    alice
        .client
        .post_message(room.id, "still here", None)
        .await
        .unwrap();
    let arrived = next_matching(&mut live, |f| match f {
        ServerFrame::Message { body, .. } if body == "still here" => Some(()),
        _ => None,
    });
    arrived.await;

    // Over the frame limit: the stream ends.
    let mut live = grpc.stream(None).await.unwrap();
    live.send(&send_frame(room.id, &"x".repeat(32 * 1024), None))
        .await
        .unwrap();
    let ended = live.ended().await;
    assert!(
        matches!(&ended, ClientError::Status { grpc, code, .. }
            if *grpc == Code::ResourceExhausted as i32 && code == "frame_too_large"),
        "{ended}"
    );
}

#[tokio::test]
async fn subscribe_delivers_over_grpc_web_on_http1() {
    use futures::StreamExt;
    use prost::Message;

    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = alice.client.create_room("r", None).await.unwrap();
    alice
        .client
        .post_message(room.id, "missed", None)
        .await
        .unwrap();

    let request = proto::SubscribeRequest {
        resume: [(room.id, 0)].into(),
    };
    let mut body = vec![0u8];
    body.extend_from_slice(&(request.encoded_len() as u32).to_be_bytes());
    body.extend_from_slice(&request.encode_to_vec());
    let http1 = reqwest::Client::builder().http1_only().build().unwrap();
    let response = http1
        .post(format!("{}/palaver.v1.Realtime/Subscribe", app.base_url))
        .header("content-type", "application/grpc-web+proto")
        .header("authorization", format!("Bearer {}", alice.access_token))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let mut chunks = response.bytes_stream();
    let mut buffered = Vec::new();
    // Presence frames come and go as they like: skipped.
    let mut next_frame = async move || -> ServerFrame {
        loop {
            if buffered.len() >= 5 {
                let len = u32::from_be_bytes(buffered[1..5].try_into().unwrap()) as usize;
                if buffered.len() >= 5 + len {
                    assert_eq!(buffered[0], 0, "a data frame, not trailers");
                    let frame = proto::ServerFrame::decode(&buffered[5..5 + len]).unwrap();
                    buffered.drain(..5 + len);
                    match palaver_grpc::frame_to_ws(frame).expect("a known frame") {
                        ServerFrame::Presence { .. } => continue,
                        frame => return frame,
                    }
                }
            }
            let chunk = tokio::time::timeout(WAIT, chunks.next())
                .await
                .expect("a frame in time")
                .expect("the stream goes on")
                .unwrap();
            buffered.extend_from_slice(&chunk);
        }
    };
    assert!(matches!(next_frame().await, ServerFrame::Ready { .. }));
    assert!(matches!(
        next_frame().await,
        ServerFrame::Message { seq: 1, .. }
    ));
    alice
        .client
        .post_message(room.id, "live", None)
        .await
        .unwrap();
    let live = next_frame().await;
    assert!(
        matches!(&live, ServerFrame::Message { seq: 2, body, .. } if body == "live"),
        "{live:?}"
    );
}
