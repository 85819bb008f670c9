//! Invitations need the invitee's consent: nothing lands in their room list
//! until they accept, and what anyone can send them is bounded.

use palaver_client::frames::ServerFrame;
use palaver_client::grpc::proto;
use palaver_client::types::UserRef;
use palaver_domain::rooms::MAX_PENDING_INVITATIONS;
use palaver_domain::throttle::Limit;

use crate::helpers::*;

#[tokio::test]
async fn an_invitation_makes_no_one_a_member_until_they_accept() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&owner, &[]).await;
    let mut bob_ws = bob.connect().await;

    owner
        .client
        .invite(room.id, UserRef::Id(bob.id()))
        .await
        .unwrap();
    let invited = next_matching(&mut bob_ws, |f| match f {
        ServerFrame::Invited { room, by, .. } => Some((room, by)),
        _ => None,
    })
    .await;
    assert_eq!(invited, (room.id, owner.id()));
    // Not a member: the room is neither in Bob's list nor readable by him.
    assert!(bob.client.rooms().await.unwrap().is_empty());
    let members = owner.client.members(room.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        status_of(bob.client.history(room.id, &Default::default()).await),
        404
    );
    let page = bob.client.invitations(None, 50).await.unwrap();
    assert_eq!(page.invitations.len(), 1);
    assert_eq!(
        (page.invitations[0].room, page.invitations[0].by, page.next),
        (room.id, owner.id(), None)
    );
    // Inviting again while it waits tells Bob nothing new.
    owner
        .client
        .invite(room.id, UserRef::Id(bob.id()))
        .await
        .unwrap();
    assert_no_frame(&mut bob_ws, |f| matches!(f, ServerFrame::Invited { .. })).await;

    // Declined: gone, and nothing to accept any more.
    bob.client.decline_invitation(room.id).await.unwrap();
    assert!(bob
        .client
        .invitations(None, 50)
        .await
        .unwrap()
        .invitations
        .is_empty());
    assert_eq!(status_of(bob.client.accept_invitation(room.id).await), 404);
    assert!(bob.client.rooms().await.unwrap().is_empty());

    // Invited again and accepted: a member, following the room live.
    owner
        .client
        .invite(room.id, UserRef::Id(bob.id()))
        .await
        .unwrap();
    let joined = bob.client.accept_invitation(room.id).await.unwrap();
    assert_eq!(joined.id, room.id);
    next_matching(&mut bob_ws, |f| match f {
        ServerFrame::MemberJoined { room: r, user_id } if user_id == bob.id() => Some(r),
        _ => None,
    })
    .await;
    owner
        .client
        .post_message(room.id, "welcome", None)
        .await
        .unwrap();
    assert_eq!(next_message(&mut bob_ws).await.body, "welcome");
    assert!(bob
        .client
        .invitations(None, 50)
        .await
        .unwrap()
        .invitations
        .is_empty());
}

#[tokio::test]
async fn only_the_invitee_answers_and_a_ban_ends_the_invitation() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let bob = app.signup("bob").await;
    let mallory = app.signup("mallory").await;
    let room = app.room_with(&owner, &[]).await;
    owner
        .client
        .invite(room.id, UserRef::Id(bob.id()))
        .await
        .unwrap();
    // Someone else cannot take up or throw away Bob's invitation.
    assert_eq!(
        status_of(mallory.client.accept_invitation(room.id).await),
        404
    );
    assert_eq!(
        status_of(mallory.client.decline_invitation(room.id).await),
        404
    );
    assert_eq!(
        bob.client
            .invitations(None, 50)
            .await
            .unwrap()
            .invitations
            .len(),
        1
    );

    // Banned after the invitation: it is no longer offered, and cannot be accepted.
    owner.client.ban(room.id, bob.id()).await.unwrap();
    assert!(bob
        .client
        .invitations(None, 50)
        .await
        .unwrap()
        .invitations
        .is_empty());
    let (status, code) = status_and_code(bob.client.accept_invitation(room.id).await);
    assert!(matches!(
        (status, code.as_str()),
        (403, "forbidden") | (404, "not_found")
    ));
    assert_eq!(owner.client.members(room.id).await.unwrap().len(), 1);
    // And a banned user cannot be invited until unbanned.
    assert_eq!(
        status_of(owner.client.invite(room.id, UserRef::Id(bob.id())).await),
        409
    );
}

#[tokio::test]
async fn many_inviters_cannot_flood_one_user() {
    let app = spawn_app_with(|s| {
        s.limits
            .set(Limit::InvitePerInvitee, "3/h".parse().unwrap());
    })
    .await;
    let victim = app.signup("victim").await;
    let mut refused = None;
    for n in 0..5 {
        let inviter = app.signup(&format!("inviter{n}")).await;
        let room = app.room_with(&inviter, &[]).await;
        if let Err(err) = inviter
            .client
            .invite(room.id, UserRef::Id(victim.id()))
            .await
        {
            refused = Some((n, err.status(), err.code().map(str::to_owned)));
            break;
        }
    }
    assert_eq!(refused, Some((3, Some(429), Some("rate_limited".into()))));
    assert_eq!(
        victim
            .client
            .invitations(None, 50)
            .await
            .unwrap()
            .invitations
            .len(),
        3
    );
}

#[tokio::test]
async fn invitations_waiting_are_capped_and_listed_in_pages() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let bob = app.signup("bob").await;
    let mut rooms = Vec::new();
    for n in 0..=MAX_PENDING_INVITATIONS {
        let room = owner
            .client
            .create_room(&format!("room {n}"), None)
            .await
            .unwrap();
        rooms.push(room.id);
    }
    for &room in &rooms[..MAX_PENDING_INVITATIONS as usize] {
        owner
            .client
            .invite(room, UserRef::Id(bob.id()))
            .await
            .unwrap();
    }
    let last = *rooms.last().unwrap();
    assert_eq!(
        status_and_code(owner.client.invite(last, UserRef::Id(bob.id())).await),
        (409, "conflict".into())
    );

    // Every invitation, once, in pages of 30.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = bob.client.invitations(after, 30).await.unwrap();
        assert!(page.invitations.len() <= 30);
        seen.extend(page.invitations.iter().map(|i| i.room));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, rooms[..MAX_PENDING_INVITATIONS as usize]);

    // Answering one makes room for another.
    bob.client.decline_invitation(rooms[0]).await.unwrap();
    owner
        .client
        .invite(last, UserRef::Id(bob.id()))
        .await
        .unwrap();
}

#[tokio::test]
async fn invitations_are_answered_over_grpc_too() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&owner, &[]).await;
    let mut stream = bob.grpc().await.stream(None).await.unwrap();
    owner
        .client
        .invite(room.id, UserRef::Id(bob.id()))
        .await
        .unwrap();
    let invited = next_matching(&mut stream, |f| match f {
        ServerFrame::Invited { room, .. } => Some(room),
        _ => None,
    })
    .await;
    assert_eq!(invited, room.id);
    let mut rooms = bob.grpc().await.rooms();
    let list = rooms
        .list_invitations(proto::InvitationsRequest {
            after: None,
            limit: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        list.invitations
            .iter()
            .map(|i| (i.room_id, i.by))
            .collect::<Vec<_>>(),
        [(room.id, owner.id())]
    );
    let joined = rooms
        .accept_invitation(proto::RoomRequest { room_id: room.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(joined.id, room.id);
    assert_eq!(owner.client.members(room.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn nobody_is_put_in_more_rooms_than_the_cap_by_any_way_in() {
    use palaver_domain::rooms::MAX_ROOMS_PER_USER;
    let app = spawn_app().await;
    let busy = app.signup("busy").await;
    let other = app.signup("other").await;
    let open = other.client.create_room("open", None).await.unwrap();
    let inviting = other.client.create_room("inviting", None).await.unwrap();
    other
        .client
        .invite(inviting.id, UserRef::Id(busy.id()))
        .await
        .unwrap();
    let created = futures::future::join_all((0..8).map(|worker| {
        let client = busy.client.clone();
        async move {
            let mut ids = Vec::new();
            for n in (worker..MAX_ROOMS_PER_USER).step_by(8) {
                ids.push(
                    client
                        .create_room(&format!("room {n}"), None)
                        .await
                        .unwrap()
                        .id,
                );
            }
            ids
        }
    }))
    .await;
    let first = created[0][0];
    let full =
        |result: palaver_client::Result<_>| status_and_code(result) == (409, "conflict".into());
    assert_eq!(
        status_and_code(busy.client.create_room("one more", None).await),
        (409, "conflict".into())
    );
    assert!(full(
        busy.client.join_room(&open.code, None).await.map(drop)
    ));
    assert!(full(
        busy.client.accept_invitation(inviting.id).await.map(drop)
    ));
    assert!(full(
        other
            .client
            .direct_room(UserRef::Id(busy.id()))
            .await
            .map(drop)
    ));
    assert_eq!(
        busy.client.rooms().await.unwrap().len(),
        MAX_ROOMS_PER_USER as usize
    );
    // Leaving one makes room for one.
    busy.client.leave(first).await.unwrap();
    busy.client.join_room(&open.code, None).await.unwrap();
}

#[tokio::test]
async fn attempts_that_land_nothing_spend_none_of_the_targets_budget() {
    let app = spawn_app_with(|s| {
        s.limits
            .set(Limit::InvitePerInvitee, "2/h".parse().unwrap());
        s.limits.set(Limit::DirectPerTarget, "2/h".parse().unwrap());
    })
    .await;
    let owner = app.signup("owner").await;
    let mallory = app.signup("mallory").await;
    let victim = app.signup("victim").await;
    let room = app.room_with(&owner, &[&mallory]).await;
    // A plain member is refused, however often, and spends nothing of the victim's.
    for _ in 0..5 {
        let refused = mallory
            .client
            .invite(room.id, UserRef::Id(victim.id()))
            .await;
        assert_eq!(status_of(refused), 403);
    }
    // Re-opening an existing direct room lands nothing new on the victim either.
    mallory
        .client
        .direct_room(UserRef::Id(victim.id()))
        .await
        .unwrap();
    for _ in 0..5 {
        mallory
            .client
            .direct_room(UserRef::Id(victim.id()))
            .await
            .unwrap();
    }
    owner
        .client
        .invite(room.id, UserRef::Id(victim.id()))
        .await
        .unwrap();
    owner
        .client
        .direct_room(UserRef::Id(victim.id()))
        .await
        .unwrap();
}

#[tokio::test]
async fn someone_who_left_a_direct_room_is_not_put_back_by_the_other() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let dm = alice
        .client
        .direct_room(UserRef::Id(bob.id()))
        .await
        .unwrap();
    bob.client.leave(dm.id).await.unwrap();
    let again = alice
        .client
        .direct_room(UserRef::Id(bob.id()))
        .await
        .unwrap();
    assert_eq!(again.id, dm.id);
    alice
        .client
        .post_message(dm.id, "come back", None)
        .await
        .unwrap();
    assert!(bob
        .client
        .rooms()
        .await
        .unwrap()
        .iter()
        .all(|r| r.room.id != dm.id));
    assert_eq!(
        status_of(bob.client.history(dm.id, &Default::default()).await),
        404
    );
    // Bob comes back by opening it himself, and finds the message.
    let back = bob
        .client
        .direct_room(UserRef::Id(alice.id()))
        .await
        .unwrap();
    assert_eq!(back.id, dm.id);
    let page = bob
        .client
        .history(dm.id, &Default::default())
        .await
        .unwrap();
    assert_eq!(page.messages.last().unwrap().body, "come back");
}
