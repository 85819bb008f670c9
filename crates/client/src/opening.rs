//! A session's opening: `ready`, then a `rooms` frame per further page of
//! positions, gathered into one `ready` holding them all.

use palaver_protocol::ws::ServerFrame;

use crate::{ClientError, Result};

/// The opening frames read so far.
#[derive(Default)]
pub(crate) struct Opening {
    ready: Option<ServerFrame>,
}

impl Opening {
    /// Takes the next frame of the opening; once it is complete, one `ready`
    /// frame with every room's position (and `more: false`).
    pub(crate) fn add(&mut self, frame: ServerFrame) -> Result<Option<ServerFrame>> {
        let more = match (&mut self.ready, frame) {
            (None, ready @ ServerFrame::Ready { .. }) => {
                let more = matches!(ready, ServerFrame::Ready { more: true, .. });
                self.ready = Some(ready);
                more
            }
            (Some(ServerFrame::Ready { rooms, .. }), ServerFrame::Rooms { rooms: page, more }) => {
                rooms.extend(page);
                more
            }
            (ready, other) => {
                let expected = if ready.is_some() { "rooms" } else { "ready" };
                return Err(ClientError::Protocol(format!(
                    "expected {expected}, got {other:?}"
                )));
            }
        };
        if more {
            return Ok(None);
        }
        let mut ready = self.ready.take();
        if let Some(ServerFrame::Ready { more, .. }) = &mut ready {
            *more = false;
        }
        Ok(ready)
    }
}

#[cfg(test)]
mod tests {
    use palaver_protocol::rest::User;
    use palaver_protocol::ws::RoomPosition;

    use super::*;

    fn position(id: i64) -> RoomPosition {
        RoomPosition { id, last_seq: 0 }
    }

    #[test]
    fn pages_are_gathered_into_one_ready() {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": 1, "username": "a", "display_name": "a", "created_at": "2026-12-07T00:00:00Z"
        }))
        .unwrap();
        let mut opening = Opening::default();
        let first = ServerFrame::Ready {
            user,
            rooms: vec![position(1)],
            more: true,
        };
        assert!(opening.add(first).unwrap().is_none());
        let middle = ServerFrame::Rooms {
            rooms: vec![position(2)],
            more: true,
        };
        assert!(opening.add(middle).unwrap().is_none());
        let last = ServerFrame::Rooms {
            rooms: vec![position(3)],
            more: false,
        };
        let Some(ServerFrame::Ready { rooms, more, .. }) = opening.add(last).unwrap() else {
            panic!("no ready")
        };
        assert_eq!(rooms, vec![position(1), position(2), position(3)]);
        assert!(!more);
    }

    #[test]
    fn anything_else_is_a_protocol_error() {
        let pong = ServerFrame::Pong { reference: None };
        assert!(Opening::default().add(pong).is_err());
    }
}
