//! `tail`: the rooms' messages as they arrive, over a WebSocket that
//! reconnects by itself (jittered exponential back-off) and resumes each room
//! from the last seq printed, so no message is skipped or printed twice.

use std::collections::BTreeMap;
use std::path::Path;

use palaver_client::frames::ServerFrame;
use palaver_client::live::Backoff;
use palaver_client::{ClientError, WsAuth, WsConnection};

use crate::credentials::{self, Credentials};
use crate::Failure;

/// One message as a line of text.
pub fn line(room: i64, seq: u64, sender: i64, body: &str) -> String {
    format!("[{room}] #{seq} user {sender}: {body}")
}

pub async fn run(
    signed_in: &Credentials,
    path: &Path,
    rooms: &[i64],
    json: bool,
) -> Result<(), Failure> {
    let mut signed_in = signed_in.clone();
    // Resume from the first connection's `ready` on: what was there before is history.
    let mut seen: Option<BTreeMap<i64, u64>> = None;
    let mut backoff = Backoff::default();
    loop {
        if signed_in.needs_refresh() {
            signed_in = signed_in.refreshed().await?;
            credentials::save(path, &signed_in)?;
        }
        let resume = seen.as_ref().map(|seen| {
            seen.iter()
                .map(|(room, seq)| (room.to_string(), *seq))
                .collect()
        });
        let auth = WsAuth::Frame {
            token: signed_in.access_token.clone(),
            resume,
        };
        match WsConnection::connect(&signed_in.server, auth).await {
            Ok(mut ws) => {
                if seen.is_none() {
                    seen = Some(start_positions(&ws, rooms)?);
                }
                backoff.reset();
                let positions = seen.as_mut().expect("set above");
                match follow(&mut ws, positions, json).await {
                    // A login that ended will not come back.
                    ClientError::Closed {
                        code: 4001 | 4002,
                        reason,
                    } => return Err(Failure::Other(anyhow::anyhow!("signed out: {reason}"))),
                    err => eprintln!("connection lost ({err}); reconnecting"),
                }
            }
            Err(ClientError::Closed {
                code: 4001 | 4002, ..
            }) => return Err(Failure::NotSignedIn),
            Err(err) => eprintln!("cannot connect ({err}); retrying"),
        }
        tokio::time::sleep(backoff.delay()).await;
    }
}

/// Each tailed room's newest seq at the first `ready`; a room the user is not
/// in is an error.
fn start_positions(ws: &WsConnection, rooms: &[i64]) -> Result<BTreeMap<i64, u64>, Failure> {
    let Some(ServerFrame::Ready {
        rooms: positions, ..
    }) = &ws.ready
    else {
        return Err(Failure::Other(anyhow::anyhow!("no ready frame")));
    };
    rooms
        .iter()
        .map(|room| {
            positions
                .iter()
                .find(|p| p.id == *room)
                .map(|p| (*room, p.last_seq))
                .ok_or_else(|| Failure::Other(anyhow::anyhow!("not a member of room {room}")))
        })
        .collect()
}

/// Prints messages of the tailed rooms until the connection ends.
async fn follow(ws: &mut WsConnection, seen: &mut BTreeMap<i64, u64>, json: bool) -> ClientError {
    loop {
        let frame = match ws.next_frame().await {
            Ok(frame) => frame,
            Err(err) => return err,
        };
        let ServerFrame::Message {
            room,
            seq,
            sender_id,
            ref body,
            ..
        } = frame
        else {
            continue;
        };
        let Some(last) = seen.get_mut(&room) else {
            continue;
        };
        if seq <= *last {
            continue;
        }
        *last = seq;
        if json {
            println!("{}", serde_json::to_string(&frame).expect("serializable"));
        } else {
            println!("{}", line(room, seq, sender_id, body));
        }
    }
}
