//! WebSocket frames in their protobuf spelling. Every field keeps its name and
//! meaning (docs/protocol.md); a `ref` is one field of the client frame rather
//! than one per type, and `hello` stands for the WebSocket's `auth` (the token
//! travels in the call's metadata).

use std::collections::{BTreeMap, HashMap};

use palaver_protocol::rest;
use palaver_protocol::ws::{ClientFrame, FrameError, RoomPosition, ServerFrame};

use crate::records::{room, user};
use crate::v1;
use crate::v1::client_frame::Frame as In;
use crate::v1::server_frame::Frame as Out;

/// The WebSocket resume map (room ids as strings) of a protobuf one.
pub fn resume_from_map(rooms: HashMap<i64, u64>) -> BTreeMap<String, u64> {
    rooms
        .into_iter()
        .map(|(room, seq)| (room.to_string(), seq))
        .collect()
}

/// The client frame a protobuf one stands for; `hello` becomes `auth` with no
/// token (only a stream's first frame may be one).
pub fn client_frame(frame: v1::ClientFrame) -> Result<ClientFrame, FrameError> {
    let reference = frame.r#ref;
    let Some(inner) = frame.frame else {
        return Err(FrameError {
            code: "invalid_frame",
            message:
                "a client frame needs one of hello, send, edit, delete, typing, read, resume, \
                 ping, react, unreact"
                    .into(),
            reference,
        });
    };
    Ok(match inner {
        In::Hello(hello) => ClientFrame::Auth {
            token: None,
            resume: Some(resume_from_map(hello.resume)),
        },
        In::Send(send) => ClientFrame::Send {
            room: send.room,
            body: send.body,
            client_id: send.client_id.or(reference),
            reply_to: send.reply_to,
            attachments: send.attachments,
        },
        In::Edit(edit) => ClientFrame::Edit {
            room: edit.room,
            seq: edit.seq,
            body: edit.body,
            reference,
        },
        In::Delete(delete) => ClientFrame::Delete {
            room: delete.room,
            seq: delete.seq,
            reference,
        },
        In::Typing(typing) => ClientFrame::Typing {
            room: typing.room,
            reference,
        },
        In::Read(read) => ClientFrame::Read {
            room: read.room,
            seq: read.seq,
            reference,
        },
        In::Resume(resume) => ClientFrame::Resume {
            rooms: resume_from_map(resume.rooms),
            reference,
        },
        In::Ping(_) => ClientFrame::Ping { reference },
        In::React(react) => ClientFrame::React {
            room: react.room,
            seq: react.seq,
            emoji: react.emoji,
            reference,
        },
        In::Unreact(unreact) => ClientFrame::Unreact {
            room: unreact.room,
            seq: unreact.seq,
            emoji: unreact.emoji,
            reference,
        },
    })
}

/// The protobuf spelling of a client frame (what a gRPC client sends).
pub fn client_frame_to_proto(frame: ClientFrame) -> v1::ClientFrame {
    let parse_rooms = |rooms: BTreeMap<String, u64>| -> HashMap<i64, u64> {
        rooms
            .into_iter()
            .filter_map(|(room, seq)| Some((room.parse().ok()?, seq)))
            .collect()
    };
    let (reference, inner) = match frame {
        ClientFrame::Auth { resume, .. } => (
            None,
            In::Hello(v1::Hello {
                resume: resume.map(parse_rooms).unwrap_or_default(),
            }),
        ),
        ClientFrame::Send {
            room,
            body,
            client_id,
            reply_to,
            attachments,
        } => (
            None,
            In::Send(v1::Send {
                room,
                body,
                client_id,
                reply_to,
                attachments,
            }),
        ),
        ClientFrame::Edit {
            room,
            seq,
            body,
            reference,
        } => (reference, In::Edit(v1::Edit { room, seq, body })),
        ClientFrame::Delete {
            room,
            seq,
            reference,
        } => (reference, In::Delete(v1::Delete { room, seq })),
        ClientFrame::Typing { room, reference } => (reference, In::Typing(v1::Typing { room })),
        ClientFrame::Read {
            room,
            seq,
            reference,
        } => (reference, In::Read(v1::Read { room, seq })),
        ClientFrame::Resume { rooms, reference } => (
            reference,
            In::Resume(v1::Resume {
                rooms: parse_rooms(rooms),
            }),
        ),
        ClientFrame::Ping { reference } => (reference, In::Ping(v1::Ping {})),
        ClientFrame::React {
            room,
            seq,
            emoji,
            reference,
        } => (reference, In::React(v1::React { room, seq, emoji })),
        ClientFrame::Unreact {
            room,
            seq,
            emoji,
            reference,
        } => (reference, In::Unreact(v1::Unreact { room, seq, emoji })),
    };
    v1::ClientFrame {
        r#ref: reference,
        frame: Some(inner),
    }
}

fn user_to_ws(user: v1::User) -> rest::User {
    rest::User {
        id: user.id,
        username: (!user.deleted).then_some(user.username),
        display_name: user.display_name,
        created_at: user.created_at,
        deleted: user.deleted,
    }
}

fn room_to_ws(room: v1::Room) -> rest::Room {
    rest::Room {
        id: room.id,
        name: room.name,
        code: room.code,
        owner_id: room.owner_id,
        created_at: room.created_at,
        has_password: room.has_password,
        kind: room.kind,
    }
}

fn positions(rooms: Vec<RoomPosition>) -> Vec<v1::RoomPosition> {
    rooms
        .into_iter()
        .map(|p| v1::RoomPosition {
            id: p.id,
            last_seq: p.last_seq,
        })
        .collect()
}

fn positions_to_ws(rooms: Vec<v1::RoomPosition>) -> Vec<RoomPosition> {
    rooms
        .into_iter()
        .map(|p| RoomPosition {
            id: p.id,
            last_seq: p.last_seq,
        })
        .collect()
}

/// The protobuf spelling of a server frame.
pub fn frame_from_ws(frame: &ServerFrame) -> v1::ServerFrame {
    let inner = match frame.clone() {
        ServerFrame::Ready {
            user: who,
            rooms,
            more,
        } => Out::Ready(v1::Ready {
            user: Some(user(&who)),
            rooms: positions(rooms),
            more,
        }),
        ServerFrame::Rooms { rooms, more } => Out::Rooms(v1::ReadyRooms {
            rooms: positions(rooms),
            more,
        }),
        ServerFrame::Ack {
            client_id,
            room,
            seq,
            created_at,
        } => Out::Ack(v1::Ack {
            client_id,
            room,
            seq,
            created_at,
        }),
        ServerFrame::Message {
            room,
            seq,
            sender_id,
            body,
            created_at,
            client_id,
            reply_to,
            reactions,
            attachments,
        } => Out::Message(v1::Message {
            room_id: room,
            seq,
            sender_id,
            body,
            created_at,
            client_id,
            reply_to,
            edited_at: None,
            deleted: false,
            reactions: reactions.iter().map(reaction_count).collect(),
            attachments: attachments
                .into_iter()
                .map(crate::records::attachment)
                .collect(),
        }),
        ServerFrame::MessageEdited {
            room,
            seq,
            body,
            edited_at,
        } => Out::MessageEdited(v1::MessageEdited {
            room,
            seq,
            body,
            edited_at,
        }),
        ServerFrame::MessageDeleted { room, seq } => {
            Out::MessageDeleted(v1::MessageDeleted { room, seq })
        }
        ServerFrame::Read { room, user_id, seq } => Out::Read(v1::ReadMoved { room, user_id, seq }),
        ServerFrame::MemberJoined { room, user_id } => {
            Out::MemberJoined(v1::MemberJoined { room, user_id })
        }
        ServerFrame::MemberLeft { room, user_id } => {
            Out::MemberLeft(v1::MemberLeft { room, user_id })
        }
        ServerFrame::MemberRemoved {
            room,
            user_id,
            banned,
        } => Out::MemberRemoved(v1::MemberRemoved {
            room,
            user_id,
            banned,
        }),
        ServerFrame::UserDeleted {
            room,
            user_id,
            erased,
        } => Out::UserDeleted(v1::UserDeleted {
            room,
            user_id,
            erased,
        }),
        ServerFrame::RoleChanged {
            room,
            user_id,
            role,
        } => Out::RoleChanged(v1::RoleChanged {
            room,
            user_id,
            role,
        }),
        ServerFrame::RoomUpdated { room: updated } => Out::RoomUpdated(v1::RoomUpdated {
            room: Some(room(&updated)),
        }),
        ServerFrame::RoomDeleted { room, reason } => {
            Out::RoomDeleted(v1::RoomDeleted { room, reason })
        }
        ServerFrame::Invited { room, name, by } => Out::Invited(v1::Invited { room, name, by }),
        ServerFrame::Typing {
            room,
            user_id,
            expires_in_ms,
        } => Out::Typing(v1::TypingStarted {
            room,
            user_id,
            expires_in_ms,
        }),
        ServerFrame::Presence {
            user_id,
            status,
            last_seen,
        } => Out::Presence(v1::PresenceChanged {
            user_id,
            status,
            last_seen,
        }),
        ServerFrame::Pong { reference } => Out::Pong(v1::Pong { r#ref: reference }),
        ServerFrame::Error {
            code,
            message,
            reference,
            retry_after_ms,
        } => Out::Error(v1::Error {
            code,
            message,
            r#ref: reference,
            retry_after_ms,
        }),
        ServerFrame::ReactionAdded {
            room,
            seq,
            user_id,
            emoji,
        } => Out::ReactionAdded(v1::ReactionChanged {
            room,
            seq,
            user_id,
            emoji,
        }),
        ServerFrame::ReactionRemoved {
            room,
            seq,
            user_id,
            emoji,
        } => Out::ReactionRemoved(v1::ReactionChanged {
            room,
            seq,
            user_id,
            emoji,
        }),
        ServerFrame::Mentioned {
            room,
            seq,
            sender_id,
        } => Out::Mentioned(v1::Mentioned {
            room,
            seq,
            sender_id,
        }),
    };
    v1::ServerFrame { frame: Some(inner) }
}

fn reaction_count(count: &rest::ReactionCount) -> v1::ReactionCount {
    v1::ReactionCount {
        emoji: count.emoji.clone(),
        count: count.count,
        me: count.me,
    }
}

fn reaction_count_to_ws(count: v1::ReactionCount) -> rest::ReactionCount {
    rest::ReactionCount {
        emoji: count.emoji,
        count: count.count,
        me: count.me,
    }
}

/// The server frame a protobuf one spells; `None` for one without a frame
/// (from a newer server).
pub fn frame_to_ws(frame: v1::ServerFrame) -> Option<ServerFrame> {
    Some(match frame.frame? {
        Out::Ready(ready) => ServerFrame::Ready {
            user: user_to_ws(ready.user?),
            rooms: positions_to_ws(ready.rooms),
            more: ready.more,
        },
        Out::Rooms(page) => ServerFrame::Rooms {
            rooms: positions_to_ws(page.rooms),
            more: page.more,
        },
        Out::Ack(ack) => ServerFrame::Ack {
            client_id: ack.client_id,
            room: ack.room,
            seq: ack.seq,
            created_at: ack.created_at,
        },
        Out::Message(m) => ServerFrame::Message {
            room: m.room_id,
            seq: m.seq,
            sender_id: m.sender_id,
            body: m.body,
            created_at: m.created_at,
            client_id: m.client_id,
            reply_to: m.reply_to,
            reactions: m.reactions.into_iter().map(reaction_count_to_ws).collect(),
            attachments: m
                .attachments
                .into_iter()
                .map(crate::records::attachment_back)
                .collect(),
        },
        Out::MessageEdited(e) => ServerFrame::MessageEdited {
            room: e.room,
            seq: e.seq,
            body: e.body,
            edited_at: e.edited_at,
        },
        Out::MessageDeleted(d) => ServerFrame::MessageDeleted {
            room: d.room,
            seq: d.seq,
        },
        Out::Read(r) => ServerFrame::Read {
            room: r.room,
            user_id: r.user_id,
            seq: r.seq,
        },
        Out::MemberJoined(m) => ServerFrame::MemberJoined {
            room: m.room,
            user_id: m.user_id,
        },
        Out::MemberLeft(m) => ServerFrame::MemberLeft {
            room: m.room,
            user_id: m.user_id,
        },
        Out::MemberRemoved(m) => ServerFrame::MemberRemoved {
            room: m.room,
            user_id: m.user_id,
            banned: m.banned,
        },
        Out::UserDeleted(u) => ServerFrame::UserDeleted {
            room: u.room,
            user_id: u.user_id,
            erased: u.erased,
        },
        Out::RoleChanged(r) => ServerFrame::RoleChanged {
            room: r.room,
            user_id: r.user_id,
            role: r.role,
        },
        Out::RoomUpdated(r) => ServerFrame::RoomUpdated {
            room: room_to_ws(r.room?),
        },
        Out::RoomDeleted(r) => ServerFrame::RoomDeleted {
            room: r.room,
            reason: r.reason,
        },
        Out::Invited(i) => ServerFrame::Invited {
            room: i.room,
            name: i.name,
            by: i.by,
        },
        Out::Typing(t) => ServerFrame::Typing {
            room: t.room,
            user_id: t.user_id,
            expires_in_ms: t.expires_in_ms,
        },
        Out::Presence(p) => ServerFrame::Presence {
            user_id: p.user_id,
            status: p.status,
            last_seen: p.last_seen,
        },
        Out::Pong(p) => ServerFrame::Pong { reference: p.r#ref },
        Out::Error(e) => ServerFrame::Error {
            code: e.code,
            message: e.message,
            reference: e.r#ref,
            retry_after_ms: e.retry_after_ms,
        },
        Out::ReactionAdded(r) => ServerFrame::ReactionAdded {
            room: r.room,
            seq: r.seq,
            user_id: r.user_id,
            emoji: r.emoji,
        },
        Out::ReactionRemoved(r) => ServerFrame::ReactionRemoved {
            room: r.room,
            seq: r.seq,
            user_id: r.user_id,
            emoji: r.emoji,
        },
        Out::Mentioned(m) => ServerFrame::Mentioned {
            room: m.room,
            seq: m.seq,
            sender_id: m.sender_id,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_frame_reads_back_as_itself() {
        let frames = [
            ServerFrame::Message {
                room: 7,
                seq: 3,
                sender_id: 1,
                body: "hi".into(),
                created_at: "2026-12-02T10:00:00.000Z".into(),
                client_id: Some("c1".into()),
                reply_to: Some(2),
                reactions: vec![rest::ReactionCount {
                    emoji: "👍".into(),
                    count: 2,
                    me: true,
                }],
                attachments: Vec::new(),
            },
            ServerFrame::ReactionAdded {
                room: 7,
                seq: 3,
                user_id: 1,
                emoji: ":tada:".into(),
            },
            ServerFrame::ReactionRemoved {
                room: 7,
                seq: 3,
                user_id: 1,
                emoji: "👍".into(),
            },
            ServerFrame::Error {
                code: "rate_limited".into(),
                message: "slow down".into(),
                reference: Some("r".into()),
                retry_after_ms: Some(250),
            },
            ServerFrame::Pong { reference: None },
            ServerFrame::Rooms {
                rooms: vec![RoomPosition { id: 3, last_seq: 9 }],
                more: true,
            },
            ServerFrame::Invited {
                room: 7,
                name: "general".into(),
                by: 2,
            },
            ServerFrame::Mentioned {
                room: 7,
                seq: 42,
                sender_id: 2,
            },
        ];
        for frame in frames {
            assert_eq!(frame_to_ws(frame_from_ws(&frame)), Some(frame));
        }
    }

    #[test]
    fn a_client_frame_without_a_frame_is_invalid_and_keeps_its_ref() {
        let err = client_frame(v1::ClientFrame {
            r#ref: Some("r1".into()),
            frame: None,
        })
        .unwrap_err();
        assert_eq!(
            (err.code, err.reference.as_deref()),
            ("invalid_frame", Some("r1"))
        );
    }

    #[test]
    fn a_send_is_named_by_its_client_id() {
        let sent = ClientFrame::Send {
            room: 1,
            body: "x".into(),
            client_id: Some("c9".into()),
            reply_to: None,
            attachments: vec!["AAAAAAAAAAAAAAAAAAAAAA".into()],
        };
        let back = client_frame(client_frame_to_proto(sent.clone())).unwrap();
        assert_eq!(back, sent);
    }
}
