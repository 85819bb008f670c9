//! Roles, invitations, removal, bans and room settings — including every denial.

use palaver_client::frames::ServerFrame;
use palaver_client::types::UserRef;

use crate::helpers::*;

fn role_of(members: &[palaver_client::types::Member], user: i64) -> String {
    members
        .iter()
        .find(|m| m.user.id == user)
        .map(|m| m.role.clone())
        .unwrap_or_else(|| "none".into())
}

#[tokio::test]
async fn owners_and_admins_invite_and_remove_but_plain_members_cannot() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let admin = app.signup("admin").await;
    let member = app.signup("member").await;
    let newcomer = app.signup("newcomer").await;
    let stranger = app.signup("stranger").await;
    let room = app.room_with(&owner, &[&admin, &member]).await;
    owner
        .client
        .set_role(room.id, admin.id(), "admin")
        .await
        .unwrap();
    let mut newcomer_ws = newcomer.connect().await;
    let mut member_ws = member.connect().await;

    // A plain member may not invite; a stranger learns nothing.
    assert_eq!(
        status_of(
            member
                .client
                .invite(room.id, UserRef::Id(newcomer.id()))
                .await
        ),
        403
    );
    assert_eq!(
        status_of(
            stranger
                .client
                .invite(room.id, UserRef::Id(newcomer.id()))
                .await
        ),
        404
    );
    // An admin invites by username; the newcomer is told, and is a member
    // only once they accept, when their connection follows at once.
    admin
        .client
        .invite(room.id, UserRef::Username("newcomer".into()))
        .await
        .unwrap();
    let invited = next_matching(&mut newcomer_ws, |f| match f {
        ServerFrame::Invited { room, name, by } => Some((room, name, by)),
        _ => None,
    })
    .await;
    assert_eq!(invited, (room.id, "general".to_owned(), admin.id()));
    assert_eq!(
        status_of(newcomer.client.history(room.id, &Default::default()).await),
        404
    );
    newcomer.client.accept_invitation(room.id).await.unwrap();
    next_matching(&mut newcomer_ws, |f| match f {
        ServerFrame::MemberJoined { room: r, user_id } if user_id == newcomer.id() => Some(r),
        _ => None,
    })
    .await;
    owner
        .client
        .post_message(room.id, "welcome", None)
        .await
        .unwrap();
    assert_eq!(next_message(&mut newcomer_ws).await.body, "welcome");

    // Removing: a member cannot; an admin cannot remove an admin or the owner;
    // nobody removes themselves (that is leaving).
    assert_eq!(
        status_of(member.client.kick(room.id, newcomer.id()).await),
        403
    );
    assert_eq!(status_of(admin.client.kick(room.id, owner.id()).await), 403);
    assert_eq!(status_of(admin.client.kick(room.id, admin.id()).await), 403);
    assert_eq!(
        status_of(admin.client.kick(room.id, stranger.id()).await),
        404
    );
    admin.client.kick(room.id, newcomer.id()).await.unwrap();
    let removed = next_matching(&mut member_ws, |f| match f {
        ServerFrame::MemberRemoved {
            user_id, banned, ..
        } => Some((user_id, banned)),
        _ => None,
    })
    .await;
    assert_eq!(removed, (newcomer.id(), false));
    // The removed member's connection stops receiving the room at once.
    next_matching(&mut newcomer_ws, |f| match f {
        ServerFrame::MemberRemoved { user_id, .. } if user_id == newcomer.id() => Some(()),
        _ => None,
    })
    .await;
    owner
        .client
        .post_message(room.id, "after", None)
        .await
        .unwrap();
    assert_no_message(&mut newcomer_ws).await;
    assert_eq!(status_of(newcomer.client.room(room.id).await), 404);
    // Only the owner removes an admin.
    owner.client.kick(room.id, admin.id()).await.unwrap();
    let members = owner.client.members(room.id).await.unwrap();
    assert_eq!(role_of(&members, admin.id()), "none");
}

#[tokio::test]
async fn a_banned_user_cannot_come_back_until_unbanned() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let troll = app.signup("troll").await;
    let member = app.signup("member").await;
    let room = app.room_with(&owner, &[&troll, &member]).await;
    let mut troll_ws = troll.connect().await;

    assert_eq!(status_of(member.client.ban(room.id, troll.id()).await), 403);
    assert_eq!(status_of(member.client.bans(room.id).await), 403);
    owner.client.ban(room.id, troll.id()).await.unwrap();
    let removed = next_matching(&mut troll_ws, |f| match f {
        ServerFrame::MemberRemoved {
            user_id, banned, ..
        } => Some((user_id, banned)),
        _ => None,
    })
    .await;
    assert_eq!(removed, (troll.id(), true));
    let err = troll.client.join_room(&room.code, None).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("forbidden")));
    assert_eq!(
        status_of(owner.client.invite(room.id, UserRef::Id(troll.id())).await),
        409
    );
    let bans = owner.client.bans(room.id).await.unwrap();
    assert_eq!(
        bans.iter()
            .map(|b| (b.user_id, b.banned_by))
            .collect::<Vec<_>>(),
        [(troll.id(), owner.id())]
    );

    owner.client.unban(room.id, troll.id()).await.unwrap();
    assert_eq!(
        status_of(owner.client.unban(room.id, troll.id()).await),
        404
    );
    troll.client.join_room(&room.code, None).await.unwrap();
    // A ban can also pre-empt someone who never joined.
    let lurker = app.signup("lurker").await;
    owner.client.ban(room.id, lurker.id()).await.unwrap();
    assert_eq!(
        status_of(lurker.client.join_room(&room.code, None).await),
        403
    );
    assert_eq!(status_of(owner.client.ban(room.id, 9999).await), 404);
}

#[tokio::test]
async fn only_the_owner_manages_roles_settings_and_ownership() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let admin = app.signup("admin").await;
    let member = app.signup("member").await;
    let room = app.room_with(&owner, &[&admin, &member]).await;
    let mut member_ws = member.connect().await;

    owner
        .client
        .set_role(room.id, admin.id(), "admin")
        .await
        .unwrap();
    let changed = next_matching(&mut member_ws, |f| match f {
        ServerFrame::RoleChanged { user_id, role, .. } => Some((user_id, role)),
        _ => None,
    })
    .await;
    assert_eq!(changed, (admin.id(), "admin".into()));
    assert_eq!(
        status_of(admin.client.set_role(room.id, member.id(), "admin").await),
        403
    );
    assert_eq!(
        status_of(owner.client.set_role(room.id, member.id(), "owner").await),
        422
    );
    assert_eq!(
        status_of(owner.client.set_role(room.id, member.id(), "king").await),
        422
    );

    // Settings: rename, password, new code — owner only.
    assert_eq!(
        status_of(admin.client.update_room(room.id, Some("mine"), None).await),
        403
    );
    let renamed = owner
        .client
        .update_room(room.id, Some("renamed"), Some("secret"))
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.has_password),
        ("renamed", true)
    );
    let updated = next_matching(&mut member_ws, |f| match f {
        ServerFrame::RoomUpdated { room } => Some(room),
        _ => None,
    })
    .await;
    assert_eq!(
        (updated.name.as_str(), updated.has_password),
        ("renamed", true)
    );
    assert_eq!(
        status_of(owner.client.update_room(room.id, Some(""), None).await),
        422
    );
    let open_again = owner
        .client
        .update_room(room.id, None, Some(""))
        .await
        .unwrap();
    assert!(!open_again.has_password);
    assert_eq!(open_again.name, "renamed");
    let rotated = owner.client.rotate_code(room.id).await.unwrap();
    assert_ne!(rotated.code, room.code);
    let latecomer = app.signup("latecomer").await;
    assert_eq!(
        status_of(latecomer.client.join_room(&room.code, None).await),
        404
    );
    latecomer
        .client
        .join_room(&rotated.code, None)
        .await
        .unwrap();
    assert_eq!(status_of(member.client.rotate_code(room.id).await), 403);

    // Ownership moves to a member; the old owner becomes an admin.
    assert_eq!(
        status_of(admin.client.transfer_ownership(room.id, member.id()).await),
        403
    );
    assert_eq!(
        status_of(owner.client.transfer_ownership(room.id, 9999).await),
        404
    );
    owner
        .client
        .transfer_ownership(room.id, member.id())
        .await
        .unwrap();
    let members = member.client.members(room.id).await.unwrap();
    assert_eq!(role_of(&members, member.id()), "owner");
    assert_eq!(role_of(&members, owner.id()), "admin");
    assert_eq!(
        member.client.room(room.id).await.unwrap().owner_id,
        member.id()
    );
    assert_eq!(status_of(owner.client.delete_room(room.id).await), 403);
}

#[tokio::test]
async fn an_owner_who_leaves_hands_the_room_to_the_oldest_admin_else_the_oldest_member() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let first = app.signup("first").await;
    let second = app.signup("second").await;
    let room = app.room_with(&owner, &[&first, &second]).await;
    owner
        .client
        .set_role(room.id, second.id(), "admin")
        .await
        .unwrap();

    owner.client.leave(room.id).await.unwrap();
    let members = first.client.members(room.id).await.unwrap();
    assert_eq!(
        role_of(&members, second.id()),
        "owner",
        "the admin, though younger"
    );
    assert_eq!(
        first.client.room(room.id).await.unwrap().owner_id,
        second.id()
    );

    second.client.leave(room.id).await.unwrap();
    let members = first.client.members(room.id).await.unwrap();
    assert_eq!(
        role_of(&members, first.id()),
        "owner",
        "no admin left: the oldest member"
    );
    // The last member leaving deletes nothing but the membership.
    first.client.leave(room.id).await.unwrap();
    owner.client.join_room(&room.code, None).await.unwrap();
    assert_eq!(owner.client.members(room.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn deleting_a_room_ends_it_for_every_member_at_once() {
    let app = spawn_app().await;
    let owner = app.signup("owner").await;
    let member = app.signup("member").await;
    let room = app.room_with(&owner, &[&member]).await;
    owner
        .client
        .post_message(room.id, "soon gone", None)
        .await
        .unwrap();
    let mut member_ws = member.connect().await;

    assert_eq!(status_of(member.client.delete_room(room.id).await), 403);
    owner.client.delete_room(room.id).await.unwrap();
    let gone = next_matching(&mut member_ws, |f| match f {
        ServerFrame::RoomDeleted { room, .. } => Some(room),
        _ => None,
    })
    .await;
    assert_eq!(gone, room.id);
    assert_eq!(status_of(member.client.room(room.id).await), 404);
    assert_eq!(status_of(owner.client.room(room.id).await), 404);
    assert!(member.client.rooms().await.unwrap().is_empty());
    assert_eq!(
        status_of(member.client.join_room(&room.code, None).await),
        404
    );
}

#[tokio::test]
async fn direct_rooms_have_no_moderation() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let dm = alice
        .client
        .direct_room(UserRef::Id(bob.id()))
        .await
        .unwrap();
    assert_eq!(
        status_of(alice.client.invite(dm.id, UserRef::Id(carol.id())).await),
        403
    );
    assert_eq!(status_of(alice.client.kick(dm.id, bob.id()).await), 403);
    assert_eq!(status_of(alice.client.delete_room(dm.id).await), 403);
    assert_eq!(
        status_of(alice.client.update_room(dm.id, Some("x"), None).await),
        403
    );
}
