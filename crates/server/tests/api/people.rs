//! Profiles, finding people, and direct rooms.

use palaver_client::frames::ServerFrame;
use palaver_client::types::UserRef;

use crate::helpers::*;

#[tokio::test]
async fn a_direct_room_is_one_private_room_whatever_side_opens_it() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let mut bob_ws = bob.connect().await;

    let opened = alice
        .client
        .direct_room(UserRef::Username("Bob".into()))
        .await
        .unwrap();
    assert_eq!(opened.kind, "direct");
    // Bob's open connection follows it at once.
    let joined = next_matching(&mut bob_ws, |f| match f {
        ServerFrame::MemberJoined { room, user_id } => Some((room, user_id)),
        _ => None,
    })
    .await;
    assert_eq!(joined.0, opened.id);
    let again = bob
        .client
        .direct_room(UserRef::Id(alice.id()))
        .await
        .unwrap();
    assert_eq!(again.id, opened.id, "the same room from the other side");
    assert_eq!(
        alice
            .client
            .direct_room(UserRef::Id(bob.id()))
            .await
            .unwrap()
            .id,
        opened.id
    );

    alice
        .client
        .post_message(opened.id, "psst", None)
        .await
        .unwrap();
    assert_eq!(next_message(&mut bob_ws).await.body, "psst");
    let members = bob.client.members(opened.id).await.unwrap();
    assert_eq!(members.len(), 2);
    // Private: no one joins it by code, and outsiders learn nothing.
    assert_eq!(
        status_of(carol.client.join_room(&opened.code, None).await),
        404
    );
    assert_eq!(status_of(carol.client.room(opened.id).await), 404);
    // Oneself, or nobody.
    assert_eq!(
        status_of(alice.client.direct_room(UserRef::Id(alice.id())).await),
        403
    );
    assert_eq!(
        status_of(
            alice
                .client
                .direct_room(UserRef::Username("nobody".into()))
                .await
        ),
        404
    );

    // Leaving and coming back: the same room, with its history.
    bob.client.leave(opened.id).await.unwrap();
    let back = bob
        .client
        .direct_room(UserRef::Id(alice.id()))
        .await
        .unwrap();
    assert_eq!(back.id, opened.id);
    assert_eq!(bob.client.room(opened.id).await.unwrap().id, opened.id);
}

#[tokio::test]
async fn people_are_found_by_name_prefix_in_pages_and_can_rename_themselves() {
    let app = spawn_app().await;
    for name in ["anna", "annabel", "anne", "bob", "an_na"] {
        app.signup(name).await;
    }
    let zed = app.signup("zed").await;
    let renamed = zed.client.update_display_name("Annika Z").await.unwrap();
    assert_eq!(renamed.display_name, "Annika Z");
    assert_eq!(
        zed.client.user(zed.id()).await.unwrap().display_name,
        "Annika Z"
    );
    assert_eq!(status_of(zed.client.update_display_name("").await), 422);
    assert_eq!(status_of(zed.client.user(9999).await), 404);

    let first = zed.client.search_users("ANN", None, Some(2)).await.unwrap();
    let names = |page: &palaver_client::types::UserPage| {
        page.users
            .iter()
            .map(|u| u.username.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["anna", "annabel"]);
    let second = zed
        .client
        .search_users("ANN", first.next.as_deref(), Some(2))
        .await
        .unwrap();
    // "zed" matches by display name.
    assert_eq!(names(&second), ["anne", "zed"]);
    assert!(second.next.is_none());
    // `_` is a character, not a wildcard.
    let literal = zed.client.search_users("an_", None, None).await.unwrap();
    assert_eq!(names(&literal), ["an_na"]);
    assert_eq!(
        status_of(zed.client.search_users("a", None, Some(0)).await),
        422
    );
    // Only for signed-in users.
    let anonymous = palaver_client::Client::new(&app.base_url);
    assert_eq!(
        status_of(anonymous.search_users("a", None, None).await),
        401
    );
}
