//! `tail`: the rooms' messages as they arrive, over a live session that
//! reconnects by itself and resumes each room after the last seq printed, so
//! no message is skipped or printed twice.

use std::collections::BTreeSet;

use palaver_client::frames::ServerFrame;
use palaver_client::live::refused_login;
use palaver_client::{LiveEvent, LiveSession, Transport};

use crate::credentials::SignIn;
use crate::sanitize;
use crate::Failure;

/// One message as a line of text: the body made safe for the terminal, its
/// newlines written `\n` so that each message stays one line.
pub fn line(room: i64, seq: u64, sender: i64, body: &str) -> String {
    format!("[{room}] #{seq} user {sender}: {}", sanitize::line(body))
}

/// Prints until every tailed room is gone (left, removed from or deleted)
/// or the login ends.
pub async fn run(
    sign_in: SignIn,
    transport: Transport,
    rooms: &[i64],
    json: bool,
) -> Result<(), Failure> {
    let me = sign_in.user_id;
    let server = sign_in.server().to_owned();
    let trust = sign_in.trust().clone();
    // No positions to resume: what was there before is history.
    let mut session = LiveSession::connect_with(
        &server,
        transport,
        Box::new(sign_in),
        Default::default(),
        trust,
    )
    .await
    .map_err(|err| {
        if refused_login(&err) {
            Failure::NotSignedIn
        } else {
            err.into()
        }
    })?;
    let mut tailed: BTreeSet<i64> = rooms.iter().copied().collect();
    if let Some(room) = tailed
        .iter()
        .find(|room| !session.positions().contains_key(room))
    {
        return Err(Failure::Other(anyhow::anyhow!(
            "not a member of room {room}"
        )));
    }
    eprintln!("following {} over {transport}", describe(&tailed));
    while !tailed.is_empty() {
        let event = session
            .next_event()
            .await
            .map_err(|err| Failure::Other(anyhow::anyhow!("signed out: {err}")))?;
        match event {
            LiveEvent::Frame(frame) => print_or_forget(frame, me, &mut tailed, json),
            LiveEvent::Disconnected { error, retry_in } => eprintln!(
                "connection lost ({}); reconnecting in {:.1} s",
                sanitize::line(&error.to_string()),
                retry_in.as_secs_f64()
            ),
            LiveEvent::Reconnected { .. } => {
                eprintln!("reconnected; following {}", describe(&tailed))
            }
        }
    }
    Err(Failure::Other(anyhow::anyhow!(
        "no longer in any of the tailed rooms"
    )))
}

/// A tailed room's message as the line printed for it (JSON or text).
fn printed(frame: &ServerFrame, tailed: &BTreeSet<i64>, json: bool) -> Option<String> {
    match frame {
        ServerFrame::Message {
            room,
            seq,
            sender_id,
            body,
            ..
        } if tailed.contains(room) => Some(if json {
            sanitize::json(frame)
        } else {
            line(*room, *seq, *sender_id, body)
        }),
        _ => None,
    }
}

/// Prints a tailed room's message; forgets a room the user is no longer in.
fn print_or_forget(frame: ServerFrame, me: i64, tailed: &mut BTreeSet<i64>, json: bool) {
    if let Some(text) = printed(&frame, tailed, json) {
        println!("{text}");
        return;
    }
    let gone = match &frame {
        ServerFrame::RoomDeleted { room, .. } => Some(*room),
        ServerFrame::MemberLeft { room, user_id }
        | ServerFrame::MemberRemoved { room, user_id, .. }
            if *user_id == me =>
        {
            Some(*room)
        }
        _ => None,
    };
    if let Some(room) = gone.filter(|room| tailed.remove(room)) {
        eprintln!("no longer in room {room}");
    }
}

fn describe(rooms: &BTreeSet<i64>) -> String {
    let list: Vec<String> = rooms.iter().map(|room| format!("room {room}")).collect();
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> ServerFrame {
        ServerFrame::Message {
            room: 7,
            seq: 3,
            sender_id: 2,
            body: body.into(),
            created_at: String::new(),
            client_id: None,
            reply_to: None,
            reactions: Vec::new(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn a_message_is_printed_as_one_line_with_no_control_sequence_in_either_format() {
        let tailed = BTreeSet::from([7]);
        let hostile = message("hi\u{1b}[2J\u{1b}]0;pwned\u{7}\nfake line\u{202e}");
        let text = printed(&hostile, &tailed, false).unwrap();
        assert_eq!(
            text,
            "[7] #3 user 2: hi\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\nfake line\\u{202e}"
        );
        let json = printed(&hostile, &tailed, true).unwrap();
        for shown in [&text, &json] {
            assert!(
                !shown.contains(['\u{1b}', '\u{7}', '\n', '\u{202e}']),
                "{shown:?}"
            );
        }
        let back: ServerFrame = serde_json::from_str(&json).unwrap();
        assert_eq!(back, hostile, "the JSON still says the same");
        assert_eq!(printed(&hostile, &BTreeSet::from([8]), false), None);
    }
}
