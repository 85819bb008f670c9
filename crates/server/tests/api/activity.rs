//! Typing indicators and presence on one node.

use palaver_client::frames::{ClientFrame, ServerFrame};

use crate::helpers::*;

fn typing(frame: ServerFrame) -> Option<(i64, i64, u64)> {
    match frame {
        ServerFrame::Typing {
            room,
            user_id,
            expires_in_ms,
        } => Some((room, user_id, expires_in_ms)),
        _ => None,
    }
}

fn presence(frame: ServerFrame) -> Option<(i64, String)> {
    match frame {
        ServerFrame::Presence {
            user_id, status, ..
        } => Some((user_id, status)),
        _ => None,
    }
}

fn typing_frame(room: i64, reference: Option<&str>) -> ClientFrame {
    ClientFrame::Typing {
        room,
        reference: reference.map(Into::into),
    }
}

#[tokio::test]
async fn typing_reaches_the_other_members_rate_limited_and_never_strangers() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;

    alice_ws.send(&typing_frame(room.id, None)).await.unwrap();
    assert_eq!(
        next_matching(&mut bob_ws, typing).await,
        (room.id, alice.id(), 3000)
    );
    // A repeat within the rate limit is not forwarded; the typer hears nothing.
    alice_ws.send(&typing_frame(room.id, None)).await.unwrap();
    assert_no_frame(&mut bob_ws, |f| typing(f.clone()).is_some()).await;
    assert_no_frame(&mut alice_ws, |f| typing(f.clone()).is_some()).await;

    let mut carol_ws = carol.connect().await;
    carol_ws
        .send(&typing_frame(room.id, Some("t1")))
        .await
        .unwrap();
    assert_eq!(
        next_error(&mut carol_ws).await,
        ("not_found".into(), Some("t1".into()))
    );
    assert_no_frame(&mut bob_ws, |f| typing(f.clone()).is_some()).await;
}

#[tokio::test]
async fn presence_follows_connections_and_reaches_only_people_sharing_a_room() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut bob_ws = bob.connect().await;
    let mut carol_ws = carol.connect().await;

    let first = alice.connect().await;
    let second = alice.connect().await;
    assert_eq!(
        next_matching(&mut bob_ws, |f| presence(f)
            .filter(|(id, _)| *id == alice.id()))
        .await,
        (alice.id(), "online".into())
    );
    let members = bob.client.members(room.id).await.unwrap();
    let alice_entry = members.iter().find(|m| m.user.id == alice.id()).unwrap();
    assert!(alice_entry.online);
    let online = bob.client.online(room.id).await.unwrap();
    let mut ids: Vec<i64> = online.iter().map(|m| m.user.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [alice.id(), bob.id()]);

    // One of two connections closing changes nothing; the last one does.
    first.close().await;
    assert_no_frame(
        &mut bob_ws,
        |f| matches!(presence(f.clone()), Some((id, _)) if id == alice.id()),
    )
    .await;
    second.close().await;
    assert_eq!(
        next_matching(&mut bob_ws, |f| presence(f)
            .filter(|(id, _)| *id == alice.id()))
        .await,
        (alice.id(), "offline".into())
    );
    // last_seen is stored when the last connection closes (asynchronously).
    tokio::time::timeout(WAIT, async {
        loop {
            let members = bob.client.members(room.id).await.unwrap();
            let alice_entry = members.iter().find(|m| m.user.id == alice.id()).unwrap();
            if !alice_entry.online && alice_entry.last_seen.is_some() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("alice shows as offline with a last_seen");
    // Carol shares no room with alice: she heard nothing about her.
    assert_no_frame(
        &mut carol_ws,
        |f| matches!(presence(f.clone()), Some((id, _)) if id == alice.id()),
    )
    .await;
    assert_eq!(status_of(carol.client.online(room.id).await), 404);
}
