//! The authorization matrix: one table of actions, each with the rule of who
//! may do it, and one list of actors; every (actor × action) cell is a test
//! case generated from them. Someone outside a room (never in it, banned,
//! removed) must get exactly the answer a room that does not exist gets.
//! Each transport has its actions in `ACTIONS`: REST routes, WebSocket
//! frames, gRPC calls, gRPC stream frames, Socket.IO events, SignalR
//! invocations and STOMP `SEND`s.

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::grpc::{error_code, proto, GrpcClient};
use palaver_client::live::Connection;
use palaver_client::{ClientError, WsAuth, WsConnection};
use palaver_domain::time::Timestamp;
use palaver_domain::tokens::{AccessTokens, TokenSettings};
use palaver_domain::UserId;
use reqwest::Method;
use serde_json::Value;
use tonic::Code;

use crate::helpers::*;
use crate::live::{Live, Via};

const JWT_SECRET: &str = "the authorization matrix's secret, long enough";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Anonymous,
    MalformedToken,
    ExpiredToken,
    DeletedUser,
    NonMember,
    Banned,
    Removed,
    Member,
    Admin,
    Owner,
}

const ACTORS: [Actor; 10] = [
    Actor::Anonymous,
    Actor::MalformedToken,
    Actor::ExpiredToken,
    Actor::DeletedUser,
    Actor::NonMember,
    Actor::Banned,
    Actor::Removed,
    Actor::Member,
    Actor::Admin,
    Actor::Owner,
];

/// Who may do an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Any signed-in user; nothing about a room.
    SignedIn,
    /// Anyone signed in who is not banned from the room (joining by code).
    NotBanned,
    /// Members with at least this role; everyone else learns nothing.
    Member(Role),
    /// No member may (editing someone else's message).
    NoMember,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Member,
    Admin,
    Owner,
}

/// What an actor gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allowed,
    Unauthorized,
    Forbidden,
    /// Exactly what the same request about a room that does not exist gets.
    AsIfNoSuchRoom,
}

fn expected(rule: Rule, actor: Actor) -> Answer {
    use Actor::*;
    let role = match actor {
        Anonymous | MalformedToken | ExpiredToken | DeletedUser => return Answer::Unauthorized,
        NonMember | Removed => None,
        Banned => {
            return match rule {
                Rule::SignedIn => Answer::Allowed,
                Rule::NotBanned => Answer::Forbidden,
                _ => Answer::AsIfNoSuchRoom,
            }
        }
        Member => Some(Role::Member),
        Admin => Some(Role::Admin),
        Owner => Some(Role::Owner),
    };
    match (rule, role) {
        (Rule::SignedIn | Rule::NotBanned, _) => Answer::Allowed,
        (_, None) => Answer::AsIfNoSuchRoom,
        (Rule::Member(needed), Some(role)) if role >= needed => Answer::Allowed,
        (Rule::Member(_) | Rule::NoMember, Some(_)) => Answer::Forbidden,
    }
}

/// How an action is asked for. `{room}`, `{target}`, `{banned}` in paths and
/// bodies are the cell's room, a plain member the action is done to, and the
/// banned user.
#[derive(Debug, Clone, Copy)]
enum Call {
    Rest(&'static str, &'static str, Option<&'static str>),
    Ws(WsAction),
    /// The same frame on a gRPC `Realtime.Connect` stream.
    GrpcStream(WsAction),
    /// The same request over Socket.IO, STOMP or SignalR.
    Stream(Via, WsAction),
    Grpc(GrpcCall),
}

/// The unary gRPC calls (`palaver.v1`) about a room or an account.
#[derive(Debug, Clone, Copy)]
enum GrpcCall {
    GetRoom,
    RenameRoom,
    DeleteRoom,
    ListMembers,
    Invite,
    Kick,
    MakeAdmin,
    TransferOwnership,
    Ban,
    Unban,
    RotateCode,
    ListOnline,
    Leave,
    History,
    Send,
    EditOthers,
    DeleteOthers,
    MarkRead,
    CreateRoom,
    JoinRoom,
    ListRooms,
    Me,
    DirectRoom,
    React,
    Unreact,
}

#[derive(Debug, Clone, Copy)]
enum WsAction {
    Send,
    EditOthers,
    DeleteOthers,
    Typing,
    Read,
    Resume,
    React,
}

struct Action {
    name: &'static str,
    rule: Rule,
    call: Call,
}

const fn rest(
    name: &'static str,
    rule: Rule,
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
) -> Action {
    Action {
        name,
        rule,
        call: Call::Rest(method, path, body),
    }
}

const fn ws(name: &'static str, rule: Rule, action: WsAction) -> Action {
    Action {
        name,
        rule,
        call: Call::Ws(action),
    }
}

const fn grpc(name: &'static str, rule: Rule, call: GrpcCall) -> Action {
    Action {
        name,
        rule,
        call: Call::Grpc(call),
    }
}

const fn grpc_stream(name: &'static str, rule: Rule, action: WsAction) -> Action {
    Action {
        name,
        rule,
        call: Call::GrpcStream(action),
    }
}

const fn stream(name: &'static str, rule: Rule, via: Via, action: WsAction) -> Action {
    Action {
        name,
        rule,
        call: Call::Stream(via, action),
    }
}

const ANY_MEMBER: Rule = Rule::Member(Role::Member);
const ADMIN: Rule = Rule::Member(Role::Admin);
const OWNER: Rule = Rule::Member(Role::Owner);

const ACTIONS: &[Action] = &[
    rest("get room", ANY_MEMBER, "GET", "/api/v1/rooms/{room}", None),
    rest(
        "rename room",
        OWNER,
        "PATCH",
        "/api/v1/rooms/{room}",
        Some(r#"{"name":"renamed"}"#),
    ),
    rest("delete room", OWNER, "DELETE", "/api/v1/rooms/{room}", None),
    rest(
        "list members",
        ANY_MEMBER,
        "GET",
        "/api/v1/rooms/{room}/members",
        None,
    ),
    rest(
        "invite",
        ADMIN,
        "POST",
        "/api/v1/rooms/{room}/invitations",
        Some(r#"{"user":"invitee"}"#),
    ),
    rest(
        "remove a member",
        ADMIN,
        "DELETE",
        "/api/v1/rooms/{room}/members/{target}",
        None,
    ),
    rest(
        "make admin",
        OWNER,
        "PUT",
        "/api/v1/rooms/{room}/members/{target}/role",
        Some(r#"{"role":"admin"}"#),
    ),
    rest(
        "transfer ownership",
        OWNER,
        "POST",
        "/api/v1/rooms/{room}/owner",
        Some(r#"{"user_id":{target}}"#),
    ),
    rest(
        "ban",
        ADMIN,
        "POST",
        "/api/v1/rooms/{room}/bans",
        Some(r#"{"user_id":{target}}"#),
    ),
    rest("list bans", ADMIN, "GET", "/api/v1/rooms/{room}/bans", None),
    rest(
        "unban",
        ADMIN,
        "DELETE",
        "/api/v1/rooms/{room}/bans/{banned}",
        None,
    ),
    rest(
        "new join code",
        OWNER,
        "POST",
        "/api/v1/rooms/{room}/code",
        None,
    ),
    rest(
        "who is online",
        ANY_MEMBER,
        "GET",
        "/api/v1/rooms/{room}/online",
        None,
    ),
    rest(
        "leave",
        ANY_MEMBER,
        "POST",
        "/api/v1/rooms/{room}/leave",
        None,
    ),
    rest(
        "history",
        ANY_MEMBER,
        "GET",
        "/api/v1/rooms/{room}/messages",
        None,
    ),
    rest(
        "post",
        ANY_MEMBER,
        "POST",
        "/api/v1/rooms/{room}/messages",
        Some(r#"{"body":"hi"}"#),
    ),
    rest(
        "edit someone else's message",
        Rule::NoMember,
        "PATCH",
        "/api/v1/rooms/{room}/messages/1",
        Some(r#"{"body":"mine now"}"#),
    ),
    rest(
        "delete someone else's message",
        ADMIN,
        "DELETE",
        "/api/v1/rooms/{room}/messages/1",
        None,
    ),
    rest(
        "mark read",
        ANY_MEMBER,
        "PUT",
        "/api/v1/rooms/{room}/read",
        Some(r#"{"seq":1}"#),
    ),
    rest(
        "report a message",
        ANY_MEMBER,
        "POST",
        "/api/v1/rooms/{room}/messages/1/report",
        Some(r#"{"reason":"spam"}"#),
    ),
    rest(
        "search one room",
        ANY_MEMBER,
        "GET",
        "/api/v1/search?q=hello&room={room}",
        None,
    ),
    rest(
        "read markers",
        ANY_MEMBER,
        "GET",
        "/api/v1/rooms/{room}/read-markers",
        None,
    ),
    rest(
        "create a room",
        Rule::SignedIn,
        "POST",
        "/api/v1/rooms",
        Some(r#"{"name":"mine"}"#),
    ),
    rest(
        "join by code",
        Rule::NotBanned,
        "POST",
        "/api/v1/rooms/join",
        Some(r#"{"code":"{code}"}"#),
    ),
    rest(
        "list one's rooms",
        Rule::SignedIn,
        "GET",
        "/api/v1/rooms",
        None,
    ),
    rest(
        "own profile",
        Rule::SignedIn,
        "GET",
        "/api/v1/users/me",
        None,
    ),
    rest(
        "change display name",
        Rule::SignedIn,
        "PATCH",
        "/api/v1/users/me",
        Some(r#"{"display_name":"New Name"}"#),
    ),
    rest(
        "search people",
        Rule::SignedIn,
        "GET",
        "/api/v1/users?q=t",
        None,
    ),
    rest(
        "someone's profile",
        Rule::SignedIn,
        "GET",
        "/api/v1/users/{target}",
        None,
    ),
    rest(
        "open a direct room",
        Rule::SignedIn,
        "POST",
        "/api/v1/dms",
        Some(r#"{"user":{target}}"#),
    ),
    rest(
        "one's mentions",
        Rule::SignedIn,
        "GET",
        "/api/v1/users/me/mentions",
        None,
    ),
    rest(
        "upload an attachment",
        ANY_MEMBER,
        "POST",
        "/api/v1/rooms/{room}/attachments?name=notes.txt",
        Some("the notes"),
    ),
    rest(
        "download an attachment",
        ANY_MEMBER,
        "GET",
        "/api/v1/attachments/{attachment}",
        None,
    ),
    rest(
        "an image attachment's thumbnail",
        ANY_MEMBER,
        "GET",
        "/api/v1/attachments/{attachment}/thumbnail",
        None,
    ),
    ws("send (WebSocket)", ANY_MEMBER, WsAction::Send),
    ws(
        "edit someone else's message (WebSocket)",
        Rule::NoMember,
        WsAction::EditOthers,
    ),
    ws(
        "delete someone else's message (WebSocket)",
        ADMIN,
        WsAction::DeleteOthers,
    ),
    ws("typing (WebSocket)", ANY_MEMBER, WsAction::Typing),
    ws("mark read (WebSocket)", ANY_MEMBER, WsAction::Read),
    ws("resume (WebSocket)", ANY_MEMBER, WsAction::Resume),
    grpc("GetRoom (gRPC)", ANY_MEMBER, GrpcCall::GetRoom),
    grpc("UpdateRoom (gRPC)", OWNER, GrpcCall::RenameRoom),
    grpc("DeleteRoom (gRPC)", OWNER, GrpcCall::DeleteRoom),
    grpc("ListMembers (gRPC)", ANY_MEMBER, GrpcCall::ListMembers),
    grpc("Invite (gRPC)", ADMIN, GrpcCall::Invite),
    grpc("Kick (gRPC)", ADMIN, GrpcCall::Kick),
    grpc("SetRole (gRPC)", OWNER, GrpcCall::MakeAdmin),
    grpc(
        "TransferOwnership (gRPC)",
        OWNER,
        GrpcCall::TransferOwnership,
    ),
    grpc("Ban (gRPC)", ADMIN, GrpcCall::Ban),
    grpc("Unban (gRPC)", ADMIN, GrpcCall::Unban),
    grpc("RotateCode (gRPC)", OWNER, GrpcCall::RotateCode),
    grpc("ListOnline (gRPC)", ANY_MEMBER, GrpcCall::ListOnline),
    grpc("Leave (gRPC)", ANY_MEMBER, GrpcCall::Leave),
    grpc("History (gRPC)", ANY_MEMBER, GrpcCall::History),
    grpc("Send (gRPC)", ANY_MEMBER, GrpcCall::Send),
    grpc(
        "Edit someone else's (gRPC)",
        Rule::NoMember,
        GrpcCall::EditOthers,
    ),
    grpc(
        "Delete someone else's (gRPC)",
        ADMIN,
        GrpcCall::DeleteOthers,
    ),
    grpc("MarkRead (gRPC)", ANY_MEMBER, GrpcCall::MarkRead),
    grpc("CreateRoom (gRPC)", Rule::SignedIn, GrpcCall::CreateRoom),
    grpc("JoinRoom (gRPC)", Rule::NotBanned, GrpcCall::JoinRoom),
    grpc("ListRooms (gRPC)", Rule::SignedIn, GrpcCall::ListRooms),
    grpc("Me (gRPC)", Rule::SignedIn, GrpcCall::Me),
    grpc("DirectRoom (gRPC)", Rule::SignedIn, GrpcCall::DirectRoom),
    grpc_stream("send (gRPC stream)", ANY_MEMBER, WsAction::Send),
    grpc_stream(
        "edit someone else's message (gRPC stream)",
        Rule::NoMember,
        WsAction::EditOthers,
    ),
    grpc_stream(
        "delete someone else's message (gRPC stream)",
        ADMIN,
        WsAction::DeleteOthers,
    ),
    grpc_stream("typing (gRPC stream)", ANY_MEMBER, WsAction::Typing),
    grpc_stream("mark read (gRPC stream)", ANY_MEMBER, WsAction::Read),
    grpc_stream("resume (gRPC stream)", ANY_MEMBER, WsAction::Resume),
    stream(
        "send (Socket.IO)",
        ANY_MEMBER,
        Via::SocketIo,
        WsAction::Send,
    ),
    stream(
        "edit someone else's message (Socket.IO)",
        Rule::NoMember,
        Via::SocketIo,
        WsAction::EditOthers,
    ),
    stream(
        "delete someone else's message (Socket.IO)",
        ADMIN,
        Via::SocketIo,
        WsAction::DeleteOthers,
    ),
    stream(
        "typing (Socket.IO)",
        ANY_MEMBER,
        Via::SocketIo,
        WsAction::Typing,
    ),
    stream(
        "mark read (Socket.IO)",
        ANY_MEMBER,
        Via::SocketIo,
        WsAction::Read,
    ),
    stream(
        "resume (Socket.IO)",
        ANY_MEMBER,
        Via::SocketIo,
        WsAction::Resume,
    ),
    stream("send (SignalR)", ANY_MEMBER, Via::SignalR, WsAction::Send),
    stream(
        "edit someone else's message (SignalR)",
        Rule::NoMember,
        Via::SignalR,
        WsAction::EditOthers,
    ),
    stream(
        "delete someone else's message (SignalR)",
        ADMIN,
        Via::SignalR,
        WsAction::DeleteOthers,
    ),
    stream(
        "typing (SignalR)",
        ANY_MEMBER,
        Via::SignalR,
        WsAction::Typing,
    ),
    stream(
        "mark read (SignalR)",
        ANY_MEMBER,
        Via::SignalR,
        WsAction::Read,
    ),
    stream(
        "resume (SignalR)",
        ANY_MEMBER,
        Via::SignalR,
        WsAction::Resume,
    ),
    // STOMP's destinations: no edit, delete or resume frame.
    stream("send (STOMP)", ANY_MEMBER, Via::Stomp, WsAction::Send),
    stream("typing (STOMP)", ANY_MEMBER, Via::Stomp, WsAction::Typing),
    stream("mark read (STOMP)", ANY_MEMBER, Via::Stomp, WsAction::Read),
    rest(
        "react to a message",
        ANY_MEMBER,
        "PUT",
        "/api/v1/rooms/{room}/messages/1/reactions/%F0%9F%91%8D",
        None,
    ),
    rest(
        "take a reaction back",
        ANY_MEMBER,
        "DELETE",
        "/api/v1/rooms/{room}/messages/1/reactions/%3Atada%3A",
        None,
    ),
    grpc("React (gRPC)", ANY_MEMBER, GrpcCall::React),
    grpc("Unreact (gRPC)", ANY_MEMBER, GrpcCall::Unreact),
    ws("react (WebSocket)", ANY_MEMBER, WsAction::React),
    grpc_stream("react (gRPC stream)", ANY_MEMBER, WsAction::React),
    stream(
        "react (Socket.IO)",
        ANY_MEMBER,
        Via::SocketIo,
        WsAction::React,
    ),
    stream("react (SignalR)", ANY_MEMBER, Via::SignalR, WsAction::React),
    stream("react (STOMP)", ANY_MEMBER, Via::Stomp, WsAction::React),
];

/// The people of every cell; each cell gets a fresh room.
struct Cast {
    owner: TestUser,
    admin: TestUser,
    member: TestUser,
    target: TestUser,
    non_member: TestUser,
    banned: TestUser,
    removed: TestUser,
    deleted_user_token: String,
    expired_token: String,
}

/// One cell's room: everyone in their place, and `target`'s message at seq 1
/// carrying an image.
struct Scene {
    room: i64,
    code: String,
    attachment: String,
}

/// A well-formed attachment id no file has: what a call about the scene's
/// attachment is compared with when it must learn nothing.
const NO_SUCH_ATTACHMENT: &str = "AAAAAAAAAAAAAAAAAAAAAA";

async fn cast(app: &TestApp) -> Cast {
    app.client
        .register("invitee", PASSWORD, None)
        .await
        .unwrap();
    let tokens = AccessTokens::shared_secret(
        JWT_SECRET.as_bytes(),
        TokenSettings {
            issuer: "palaver".into(),
            audience: "palaver".into(),
            ttl_secs: 900,
        },
    );
    let long_ago = Timestamp::now().minus(std::time::Duration::from_secs(3600));
    let owner = app.signup("owner").await;
    // A login of an account deleted since: its token is still signed and unexpired.
    let deleted = app.signup("deleted").await;
    deleted
        .client
        .delete_account(PASSWORD, false)
        .await
        .unwrap();
    Cast {
        expired_token: tokens
            .issue(UserId(owner.id()), "a login", long_ago)
            .unwrap(),
        deleted_user_token: deleted.access_token,
        owner,
        admin: app.signup("admin").await,
        member: app.signup("member").await,
        target: app.signup("target").await,
        non_member: app.signup("outsider").await,
        banned: app.signup("banned").await,
        removed: app.signup("removed").await,
    }
}

async fn scene(cast: &Cast) -> Scene {
    let owner = &cast.owner.client;
    let room = owner.create_room("matrix", None).await.unwrap();
    for user in [
        &cast.admin,
        &cast.member,
        &cast.target,
        &cast.banned,
        &cast.removed,
    ] {
        user.client.join_room(&room.code, None).await.unwrap();
    }
    owner
        .set_role(room.id, cast.admin.id(), "admin")
        .await
        .unwrap();
    owner.ban(room.id, cast.banned.id()).await.unwrap();
    owner.kick(room.id, cast.removed.id()).await.unwrap();
    let image = crate::thumbnails::picture(32, 32, image::ImageFormat::Png);
    let attachment = crate::attachments::upload(&cast.target, room.id, "matrix.png", &image).await;
    cast.target
        .client
        .post_with_attachments(
            room.id,
            "target's words",
            std::slice::from_ref(&attachment.id),
        )
        .await
        .unwrap();
    Scene {
        room: room.id,
        code: room.code,
        attachment: attachment.id,
    }
}

/// The `Authorization` header value `actor` sends, if any.
fn credentials(cast: &Cast, actor: Actor) -> Option<String> {
    let token = match actor {
        Actor::Anonymous => return None,
        Actor::MalformedToken => "not-a-jwt".to_owned(),
        Actor::ExpiredToken => cast.expired_token.clone(),
        Actor::DeletedUser => cast.deleted_user_token.clone(),
        Actor::NonMember => cast.non_member.access_token.clone(),
        Actor::Banned => cast.banned.access_token.clone(),
        Actor::Removed => cast.removed.access_token.clone(),
        Actor::Member => cast.member.access_token.clone(),
        Actor::Admin => cast.admin.access_token.clone(),
        Actor::Owner => cast.owner.access_token.clone(),
    };
    Some(token)
}

/// `template` about `room`; about the scene's attachment when that is the
/// scene's room, and about one that does not exist when the room does not.
fn fill(template: &str, cast: &Cast, room: i64, scene: &Scene) -> String {
    let attachment = match room == scene.room {
        true => scene.attachment.as_str(),
        false => NO_SUCH_ATTACHMENT,
    };
    let code = scene.code.as_str();
    template
        .replace("{room}", &room.to_string())
        .replace("{attachment}", attachment)
        .replace("{target}", &cast.target.id().to_string())
        .replace("{banned}", &cast.banned.id().to_string())
        .replace("{code}", code)
}

/// Status and body of a REST call about `room`.
async fn rest_answer(
    app: &TestApp,
    cast: &Cast,
    actor: Actor,
    (method, path, body): (&str, &str, Option<&str>),
    room: i64,
    scene: &Scene,
) -> (u16, Value) {
    let url = format!("{}{}", app.base_url, fill(path, cast, room, scene));
    let mut request =
        reqwest::Client::new().request(Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(token) = credentials(cast, actor) {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(fill(body, cast, room, scene));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What a WebSocket frame about `room` gets: `Ok(())` when its effect is
/// seen, `Err(error frame)` when refused, or the close code when the
/// connection is refused.
async fn ws_answer(
    app: &TestApp,
    cast: &Cast,
    actor: Actor,
    action: WsAction,
    room: i64,
) -> Result<(), Result<(String, String), u16>> {
    let auth = WsAuth::Frame {
        token: credentials(cast, actor).unwrap_or_default(),
        resume: None,
    };
    let ws = match WsConnection::connect(&app.base_url, auth).await {
        Ok(ws) => ws,
        Err(ClientError::Closed { code, .. }) => return Err(Err(code)),
        Err(other) => panic!("connecting: {other}"),
    };
    stream_answer(cast, Live::Library(Connection::WebSocket(ws)), action, room).await
}

/// As `ws_answer`, on a gRPC stream; a refused stream gives its status's
/// machine code as `Err(Err(..))`.
async fn grpc_stream_answer(
    app: &TestApp,
    cast: &Cast,
    actor: Actor,
    action: WsAction,
    room: i64,
) -> Result<(), Result<(String, String), String>> {
    let client = grpc_client(app, cast, actor).await;
    let live = match client.stream(None).await {
        Ok(live) => live,
        Err(ClientError::Status { code, .. }) => return Err(Err(code)),
        Err(other) => panic!("connecting: {other}"),
    };
    stream_answer(cast, Live::Library(Connection::Grpc(live)), action, room)
        .await
        .map_err(|refused| refused.map_err(|close| format!("close {close}")))
}

/// As `ws_answer`, over Socket.IO, STOMP or SignalR; a refused connection
/// gives the machine code that protocol refused it with as `Err(Err(..))`.
async fn live_answer(
    app: &TestApp,
    cast: &Cast,
    actor: Actor,
    via: Via,
    action: WsAction,
    room: i64,
) -> Result<(), Result<(String, String), String>> {
    let token = credentials(cast, actor);
    let live = match Live::connect(app, via, token.as_deref(), &[], None).await {
        Ok(live) => live,
        Err(code) => return Err(Err(code)),
    };
    stream_answer(cast, live, action, room)
        .await
        .map_err(|refused| refused.map_err(|close| format!("close {close}")))
}

async fn grpc_client(app: &TestApp, cast: &Cast, actor: Actor) -> GrpcClient {
    let client = GrpcClient::connect(&app.base_url).await.unwrap();
    match credentials(cast, actor) {
        Some(token) => client.with_token(&token).unwrap(),
        None => client,
    }
}

/// What a frame about `room` gets on an open stream.
async fn stream_answer(
    cast: &Cast,
    mut ws: Live,
    action: WsAction,
    room: i64,
) -> Result<(), Result<(String, String), u16>> {
    // Typing and read markers reach the others: the target watches for
    // them (a STOMP actor here follows no room of its own).
    let mut observer = match action {
        WsAction::Typing | WsAction::Read | WsAction::React => Some(cast.target.connect().await),
        _ => None,
    };
    let reference = Some("cell".to_owned());
    let frame = match action {
        WsAction::Send => send_frame(room, "hello", Some("cell")),
        WsAction::EditOthers => ClientFrame::Edit {
            room,
            seq: 1,
            body: "mine now".into(),
            reference,
        },
        WsAction::DeleteOthers => ClientFrame::Delete {
            room,
            seq: 1,
            reference,
        },
        WsAction::Typing => ClientFrame::Typing { room, reference },
        WsAction::Read => ClientFrame::Read {
            room,
            seq: 1,
            reference,
        },
        WsAction::Resume => ClientFrame::Resume {
            rooms: [(room.to_string(), 0)].into(),
            reference,
        },
        WsAction::React => ClientFrame::React {
            room,
            seq: 1,
            emoji: "👍".into(),
            reference,
        },
    };
    ws.send(&frame).await;
    if let Some(observer) = &mut observer {
        // The effect, or the actor's refusal, whichever comes first.
        tokio::select! {
            _ = next_matching(observer, |f| matches!(f, ServerFrame::Typing { .. } | ServerFrame::Read { .. } | ServerFrame::ReactionAdded { .. }).then_some(())) => return Ok(()),
            refused = next_error_frame(&mut ws) => return Err(Ok(refused)),
        }
    }
    next_matching(&mut ws, |frame| match (action, frame) {
        (_, ServerFrame::Error { code, message, .. }) => Some(Err(Ok((code, message)))),
        (WsAction::Send, ServerFrame::Ack { .. })
        | (WsAction::EditOthers, ServerFrame::MessageEdited { .. })
        | (WsAction::DeleteOthers, ServerFrame::MessageDeleted { .. })
        | (WsAction::Read, ServerFrame::Read { .. })
        | (WsAction::Resume, ServerFrame::Message { seq: 1, .. }) => Some(Ok(())),
        _ => None,
    })
    .await
}

async fn next_error_frame(ws: &mut impl ReadFrames) -> (String, String) {
    next_matching(ws, |frame| match frame {
        ServerFrame::Error { code, message, .. } => Some((code, message)),
        _ => None,
    })
    .await
}

/// What a unary gRPC call about `room` gets: `Ok` or its status's gRPC code,
/// machine code and message.
async fn grpc_answer(
    app: &TestApp,
    cast: &Cast,
    actor: Actor,
    call: GrpcCall,
    room: i64,
    code: &str,
) -> Result<(), (Code, String, String)> {
    let client = grpc_client(app, cast, actor).await;
    let (mut rooms, mut messages) = (client.rooms(), client.messages());
    let target = cast.target.id();
    let of_room = proto::RoomRequest { room_id: room };
    let members_of = proto::MembersRequest {
        room_id: room,
        after: None,
        limit: None,
    };
    let member = proto::MemberRequest {
        room_id: room,
        user_id: target,
    };
    let first = proto::MessageRef {
        room_id: room,
        seq: 1,
    };
    let result = match call {
        GrpcCall::GetRoom => rooms.get_room(of_room).await.map(drop),
        GrpcCall::RenameRoom => rooms
            .update_room(proto::UpdateRoomRequest {
                room_id: room,
                name: Some("renamed".into()),
                password: None,
            })
            .await
            .map(drop),
        GrpcCall::DeleteRoom => rooms.delete_room(of_room).await.map(drop),
        GrpcCall::ListMembers => rooms.list_members(members_of).await.map(drop),
        GrpcCall::Invite => rooms
            .invite(proto::InviteRequest {
                room_id: room,
                user: Some(proto::UserRef {
                    user: Some(proto::user_ref::User::Username("invitee".into())),
                }),
            })
            .await
            .map(drop),
        GrpcCall::Kick => rooms.kick(member).await.map(drop),
        GrpcCall::MakeAdmin => rooms
            .set_role(proto::SetRoleRequest {
                room_id: room,
                user_id: target,
                role: "admin".into(),
            })
            .await
            .map(drop),
        GrpcCall::TransferOwnership => rooms.transfer_ownership(member).await.map(drop),
        GrpcCall::Ban => rooms.ban(member).await.map(drop),
        GrpcCall::Unban => rooms
            .unban(proto::MemberRequest {
                room_id: room,
                user_id: cast.banned.id(),
            })
            .await
            .map(drop),
        GrpcCall::RotateCode => rooms.rotate_code(of_room).await.map(drop),
        GrpcCall::ListOnline => rooms.list_online(members_of).await.map(drop),
        GrpcCall::Leave => rooms.leave(of_room).await.map(drop),
        GrpcCall::History => messages
            .history(proto::HistoryRequest {
                room_id: room,
                ..Default::default()
            })
            .await
            .map(drop),
        GrpcCall::Send => messages
            .send(proto::SendRequest {
                room_id: room,
                body: "hi".into(),
                client_id: None,
                reply_to: None,
                attachments: Vec::new(),
            })
            .await
            .map(drop),
        GrpcCall::EditOthers => messages
            .edit(proto::EditRequest {
                room_id: room,
                seq: 1,
                body: "mine now".into(),
            })
            .await
            .map(drop),
        GrpcCall::DeleteOthers => messages.delete(first).await.map(drop),
        GrpcCall::MarkRead => messages.mark_read(first).await.map(drop),
        GrpcCall::CreateRoom => rooms
            .create_room(proto::CreateRoomRequest {
                name: "mine".into(),
                password: None,
            })
            .await
            .map(drop),
        GrpcCall::JoinRoom => rooms
            .join_room(proto::JoinRoomRequest {
                code: code.into(),
                password: None,
            })
            .await
            .map(drop),
        GrpcCall::ListRooms => rooms.list_rooms(proto::Empty {}).await.map(drop),
        GrpcCall::Me => client.accounts().me(proto::Empty {}).await.map(drop),
        GrpcCall::DirectRoom => rooms
            .direct_room(proto::DirectRoomRequest {
                user: Some(proto::UserRef {
                    user: Some(proto::user_ref::User::Id(target)),
                }),
            })
            .await
            .map(drop),
        GrpcCall::React => messages
            .react(proto::ReactionRequest {
                room_id: room,
                seq: 1,
                emoji: "👍".into(),
            })
            .await
            .map(drop),
        GrpcCall::Unreact => messages
            .unreact(proto::ReactionRequest {
                room_id: room,
                seq: 1,
                emoji: ":tada:".into(),
            })
            .await
            .map(drop),
    };
    result.map_err(|status| {
        let machine = error_code(&status);
        (status.code(), machine, status.message().to_owned())
    })
}

/// A room id no room has.
const NO_SUCH_ROOM: i64 = 987_654_321;

#[tokio::test]
async fn every_actor_gets_exactly_the_answer_the_matrix_gives_for_every_action() {
    let app = spawn_app_with(|s| {
        s.tokens.jwt_secret = Some(palaver_server::config::Secret::new(JWT_SECRET.into()));
    })
    .await;
    let cast = cast(&app).await;
    let mut wrong = Vec::new();
    for action in ACTIONS {
        for actor in ACTORS {
            let want = expected(action.rule, actor);
            let scene = scene(&cast).await;
            let cell = format!("{actor:?} × {}", action.name);
            match action.call {
                Call::Rest(method, path, body) => {
                    let call = (method, path, body);
                    let got = rest_answer(&app, &cast, actor, call, scene.room, &scene).await;
                    let ok = match want {
                        Answer::Allowed => (200..300).contains(&got.0),
                        Answer::Unauthorized => got.0 == 401,
                        Answer::Forbidden => got.0 == 403,
                        Answer::AsIfNoSuchRoom => {
                            let missing =
                                rest_answer(&app, &cast, actor, call, NO_SUCH_ROOM, &scene).await;
                            got.0 == 404 && got == missing
                        }
                    };
                    if !ok {
                        wrong.push(format!(
                            "{cell}: expected {want:?}, got {} {}",
                            got.0, got.1
                        ));
                    }
                }
                Call::Grpc(call) => {
                    let got = grpc_answer(&app, &cast, actor, call, scene.room, &scene.code).await;
                    let ok = match (want, &got) {
                        (Answer::Allowed, Ok(())) => true,
                        (Answer::Unauthorized, Err((code, _, _))) => *code == Code::Unauthenticated,
                        (Answer::Forbidden, Err((code, machine, _))) => {
                            *code == Code::PermissionDenied && machine == "forbidden"
                        }
                        (Answer::AsIfNoSuchRoom, Err(refused)) => {
                            let missing =
                                grpc_answer(&app, &cast, actor, call, NO_SUCH_ROOM, &scene.code)
                                    .await;
                            refused.0 == Code::NotFound && missing == Err(refused.clone())
                        }
                        _ => false,
                    };
                    if !ok {
                        wrong.push(format!("{cell}: expected {want:?}, got {got:?}"));
                    }
                }
                Call::GrpcStream(action) => {
                    let got = grpc_stream_answer(&app, &cast, actor, action, scene.room).await;
                    let ok = match (want, &got) {
                        (Answer::Allowed, Ok(())) => true,
                        (Answer::Unauthorized, Err(Err(code))) => {
                            matches!(code.as_str(), "unauthorized" | "session_ended")
                        }
                        (Answer::Forbidden, Err(Ok((code, _)))) => code == "forbidden",
                        (Answer::AsIfNoSuchRoom, Err(Ok(refused))) => {
                            let missing =
                                grpc_stream_answer(&app, &cast, actor, action, NO_SUCH_ROOM).await;
                            refused.0 == "not_found" && missing == Err(Ok(refused.clone()))
                        }
                        _ => false,
                    };
                    if !ok {
                        wrong.push(format!("{cell}: expected {want:?}, got {got:?}"));
                    }
                }
                Call::Stream(via, action) => {
                    let got = live_answer(&app, &cast, actor, via, action, scene.room).await;
                    let ok = match (want, &got) {
                        (Answer::Allowed, Ok(())) => true,
                        (Answer::Unauthorized, Err(Err(code))) => {
                            matches!(code.as_str(), "unauthorized" | "session_ended")
                        }
                        (Answer::Forbidden, Err(Ok((code, _)))) => code == "forbidden",
                        (Answer::AsIfNoSuchRoom, Err(Ok(refused))) => {
                            let missing =
                                live_answer(&app, &cast, actor, via, action, NO_SUCH_ROOM).await;
                            refused.0 == "not_found" && missing == Err(Ok(refused.clone()))
                        }
                        _ => false,
                    };
                    if !ok {
                        wrong.push(format!("{cell}: expected {want:?}, got {got:?}"));
                    }
                }
                Call::Ws(ws_action) => {
                    let got = ws_answer(&app, &cast, actor, ws_action, scene.room).await;
                    let ok = match (want, &got) {
                        (Answer::Allowed, Ok(())) => true,
                        // A well-signed token whose login is gone (its account
                        // too) is told not to come back with it: 4002.
                        (Answer::Unauthorized, Err(Err(close))) => {
                            *close
                                == if actor == Actor::DeletedUser {
                                    4002
                                } else {
                                    4001
                                }
                        }
                        (Answer::Forbidden, Err(Ok((code, _)))) => code == "forbidden",
                        (Answer::AsIfNoSuchRoom, Err(Ok(refused))) => {
                            let missing =
                                ws_answer(&app, &cast, actor, ws_action, NO_SUCH_ROOM).await;
                            refused.0 == "not_found" && missing == Err(Ok(refused.clone()))
                        }
                        _ => false,
                    };
                    if !ok {
                        wrong.push(format!("{cell}: expected {want:?}, got {got:?}"));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
