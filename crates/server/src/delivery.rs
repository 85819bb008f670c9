//! Where the bus delivers on this node: each domain event becomes a frame
//! (`frames.rs`), encoded once, and the hub operation that event calls for.
//!
//! Must not block: it runs on the bus's delivery path (the message writer's,
//! on a single node). Every hub operation only `try_send`s.

use std::sync::Arc;

use palaver_domain::bus::EventSink;
use palaver_domain::events::DomainEvent;

use crate::frames;
use crate::hub::{Hub, Outbound, SequencedFrame};
use crate::presence::RemotePresence;

pub struct LocalDelivery {
    hub: Arc<Hub>,
    presence: RemotePresence,
}

impl LocalDelivery {
    pub fn new(hub: Arc<Hub>, presence: RemotePresence) -> Self {
        Self { hub, presence }
    }
}

impl EventSink for LocalDelivery {
    fn deliver(&self, event: &DomainEvent) {
        let room = event.room_id();
        let hub = &self.hub;
        match event {
            DomainEvent::Presence { .. } | DomainEvent::NodeHeartbeat { .. } => {
                self.presence.send(Arc::new(event.clone()));
                return;
            }
            // The audit log's: for other services on the bus, no one's frame.
            DomainEvent::AdminAction(_) => return,
            // No frame: the connections of those logins close (4002).
            DomainEvent::SessionsEnded { user_id, sessions } => {
                hub.end_sessions(*user_id, sessions);
                return;
            }
            // Every room the account was in, before its `member_left`.
            DomainEvent::UserDeleted {
                user_id,
                rooms,
                erased,
            } => {
                for &room in rooms.iter().filter(|room| hub.has_followers(**room)) {
                    let frame = frames::user_deleted(room, *user_id, *erased);
                    hub.broadcast(room, Outbound::Frame(Arc::new(frames::encode(&frame))));
                }
                return;
            }
            // To the invitee alone: the room is not theirs yet.
            DomainEvent::Invited { user_id, .. } => {
                if let Some(frame) = frames::for_event(event) {
                    hub.offer_to_user(*user_id, Arc::new(frames::encode(&frame)));
                }
                return;
            }
            // To each member it names alone, on all their connections, one
            // frame for them all.
            DomainEvent::Mentioned { user_ids, .. } => {
                if let Some(frame) = frames::for_event(event) {
                    let frame = Arc::new(frames::encode(&frame));
                    for user in user_ids {
                        hub.offer_to_user(*user, frame.clone());
                    }
                }
                return;
            }
            // Follow first, then announce: the new member's connections see
            // their own join and everything after it.
            DomainEvent::MemberJoined {
                user_id, last_seq, ..
            } => hub.join(*user_id, room, *last_seq),
            _ => {}
        }
        // Nobody here: nothing to encode. (Messages, the hot path, skip the
        // check: `broadcast` finds the room's followers once anyway.)
        let interested = matches!(
            event,
            DomainEvent::MessagePosted(_)
                | DomainEvent::MemberLeft { .. }
                | DomainEvent::MemberRemoved { .. }
        ) || hub.has_followers(room);
        if !interested {
            return;
        }
        let Some(frame) = frames::for_event(event) else {
            return;
        };
        let encoded = frames::encode(&frame);
        match event {
            DomainEvent::MessagePosted(message) => {
                let frame = Arc::new(SequencedFrame {
                    room,
                    seq: message.seq,
                    frame: encoded,
                    reached_hub: std::time::Instant::now(),
                });
                let delivered = hub.broadcast(room, Outbound::Sequenced(frame));
                metrics::counter!("palaver_deliveries_total").increment(delivered as u64);
            }
            DomainEvent::MemberLeft { user_id, .. }
            | DomainEvent::MemberRemoved { user_id, .. } => {
                hub.depart(room, *user_id, Arc::new(encoded));
            }
            DomainEvent::RoomDeleted { .. } => hub.close_room(room, Arc::new(encoded)),
            // Not to the typer's own connections.
            DomainEvent::Typing { user_id, .. } => {
                hub.broadcast_to_others(room, *user_id, Arc::new(encoded))
            }
            _ => {
                hub.broadcast(room, Outbound::Frame(Arc::new(encoded)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use palaver_domain::model::Message;
    use palaver_domain::time::Timestamp;
    use palaver_domain::{RoomId, UserId};
    use palaver_protocol::ws::ServerFrame;

    use super::*;
    use crate::outgoing::QueueReceiver;
    use crate::presence::Presence;
    use crate::stop::StopReason;

    fn delivery() -> (Arc<Hub>, LocalDelivery, Presence) {
        let hub = Arc::new(Hub::new(8));
        let (presence, _inbox) = Presence::channel();
        let delivery = LocalDelivery::new(hub.clone(), presence.remote());
        (hub, delivery, presence)
    }

    fn posted(room: i64, seq: u64) -> DomainEvent {
        DomainEvent::MessagePosted(Message {
            room_id: RoomId(room),
            seq,
            sender_id: UserId(1),
            body: "hi".into(),
            created_at: Timestamp(0),
            client_id: None,
            reply_to: None,
            edited_at: None,
            deleted_at: None,
            attachments: Vec::new(),
        })
    }

    fn frames(rx: &mut QueueReceiver<Outbound>) -> Vec<ServerFrame> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|item| match item {
                Outbound::Sequenced(frame) => Some(frame.frame.json().to_string()),
                Outbound::Frame(frame) => Some(frame.json().to_string()),
                Outbound::Joined(_) | Outbound::Left(_) => None,
            })
            .map(|json| serde_json::from_str(&json).unwrap())
            .collect()
    }

    #[test]
    fn an_ended_login_stops_only_its_own_connections() {
        let (hub, delivery, _presence) = delivery();
        let (ended, _rx) = hub.register(UserId(1), "ended");
        let (other_login, _rx) = hub.register(UserId(1), "kept");
        let (other_user, _rx) = hub.register(UserId(2), "ended");
        delivery.deliver(&DomainEvent::SessionsEnded {
            user_id: UserId(1),
            sessions: vec!["ended".into()],
        });
        assert!(ended.stop.is_raised(StopReason::SessionEnded));
        assert!(!other_login.stop.is_raised(StopReason::SessionEnded));
        assert!(!other_user.stop.is_raised(StopReason::SessionEnded));
    }

    #[test]
    fn a_message_is_one_sequenced_frame_shared_by_its_followers() {
        let (hub, delivery, _presence) = delivery();
        let (a, mut rx_a) = hub.register(UserId(1), "s");
        let (b, mut rx_b) = hub.register(UserId(2), "s");
        hub.follow(&a, RoomId(10));
        hub.follow(&b, RoomId(10));
        delivery.deliver(&posted(10, 1));
        let (Ok(Outbound::Sequenced(fa)), Ok(Outbound::Sequenced(fb))) =
            (rx_a.try_recv(), rx_b.try_recv())
        else {
            panic!("followers did not receive the message")
        };
        assert!(Arc::ptr_eq(&fa, &fb), "serialized once, shared");
        assert_eq!((fa.room, fa.seq), (RoomId(10), 1));
        let frame: ServerFrame = serde_json::from_str(fa.frame.json()).unwrap();
        assert!(matches!(frame, ServerFrame::Message { seq: 1, .. }));
    }

    #[test]
    fn a_join_is_followed_before_it_is_announced_and_a_leave_is_heard_by_the_leaver() {
        let (hub, delivery, _presence) = delivery();
        let (_a, mut rx) = hub.register(UserId(1), "s");
        delivery.deliver(&DomainEvent::MemberJoined {
            room_id: RoomId(5),
            user_id: UserId(1),
            last_seq: 7,
        });
        assert!(matches!(rx.try_recv(), Ok(Outbound::Joined(_))));
        assert_eq!(
            frames(&mut rx),
            [ServerFrame::MemberJoined {
                room: 5,
                user_id: 1
            }]
        );
        delivery.deliver(&DomainEvent::MemberLeft {
            room_id: RoomId(5),
            user_id: UserId(1),
        });
        assert_eq!(hub.followers(RoomId(5)), 0);
        assert_eq!(
            frames(&mut rx),
            [ServerFrame::MemberLeft {
                room: 5,
                user_id: 1
            }]
        );
    }

    #[test]
    fn typing_reaches_everyone_but_the_typer() {
        let (hub, delivery, _presence) = delivery();
        let (typer, mut typer_rx) = hub.register(UserId(1), "s");
        let (other, mut other_rx) = hub.register(UserId(2), "s");
        hub.follow(&typer, RoomId(3));
        hub.follow(&other, RoomId(3));
        delivery.deliver(&DomainEvent::Typing {
            room_id: RoomId(3),
            user_id: UserId(1),
        });
        assert!(frames(&mut typer_rx).is_empty());
        assert_eq!(
            frames(&mut other_rx),
            [ServerFrame::Typing {
                room: 3,
                user_id: 1,
                expires_in_ms: frames::TYPING_EXPIRES_MS
            }]
        );
    }

    #[test]
    fn a_deleted_room_is_unfollowed_after_its_last_frame() {
        let (hub, delivery, _presence) = delivery();
        let (a, mut rx) = hub.register(UserId(1), "s");
        hub.follow(&a, RoomId(4));
        delivery.deliver(&DomainEvent::RoomDeleted {
            room_id: RoomId(4),
            reason: Some("spam".into()),
        });
        assert!(matches!(rx.try_recv(), Ok(Outbound::Left(RoomId(4)))));
        assert_eq!(
            frames(&mut rx),
            [ServerFrame::RoomDeleted {
                room: 4,
                reason: Some("spam".into())
            }]
        );
        assert_eq!(hub.followers(RoomId(4)), 0);
    }
}
