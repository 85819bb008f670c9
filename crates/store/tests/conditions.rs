//! Writes that check their own condition, on both engines: what the domain
//! checked before may have changed when the write commits, so the store
//! checks it again in the write's transaction (a login's back-off, the
//! owner's or an admin's role, a ban, the account being alive). The PostgreSQL runs need a
//! server (`./scripts/test` provides one; see `PALAVER_TEST_POSTGRES_URL`).

use std::sync::Arc;

use palaver_domain::model::Role;
use palaver_domain::store::{
    AccountRemoval, LoginFailures, NewSession, Refusal, Removal, Rotation, SessionsToEnd, Store,
    StoreError,
};
use palaver_domain::time::Timestamp;
use palaver_domain::UserId;

mod common;

use common::{on_both_engines, room, session, user};

on_both_engines!(
    "palaver_conditions":
    each_login_attempt_is_counted_and_sees_its_own_predecessor,
    of_two_transfers_at_once_one_is_refused,
    a_banned_or_deleted_user_is_not_added,
    a_join_racing_a_ban_is_refused_or_undone,
    an_admin_demoted_or_removed_before_the_write_lifts_no_ban,
    no_session_is_made_or_refreshed_for_a_deleted_account,
    a_login_is_live_for_its_own_user_until_it_ends_or_expires,
);

async fn each_login_attempt_is_counted_and_sees_its_own_predecessor(store: Arc<dyn Store>) {
    let subject = "alice 192.0.2.1";
    let forget_before = Timestamp(0);
    let charge = |at: i64, forget: i64| {
        let store = store.clone();
        async move {
            store
                .charge_login_attempt(subject, Timestamp(at), Timestamp(forget))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        charge(10, forget_before.0).await,
        None,
        "the first of a streak"
    );
    let first = LoginFailures {
        count: 1,
        last_failed_at: Timestamp(10),
    };
    assert_eq!(charge(12, 0).await, Some(first));
    assert_eq!(
        store.login_failures(subject).await.unwrap(),
        Some(LoginFailures {
            count: 2,
            last_failed_at: Timestamp(12),
        })
    );
    // A streak older than `forget_before` starts again.
    assert_eq!(charge(100, 50).await, None);
    assert_eq!(
        store
            .login_failures(subject)
            .await
            .unwrap()
            .map(|s| s.count),
        Some(1)
    );

    // Many attempts at once: every one is counted, and each sees a different
    // predecessor, so no two are judged on the same streak.
    let attempts: Vec<_> = (0..16).map(|i| tokio::spawn(charge(200 + i, 50))).collect();
    let mut seen = Vec::new();
    for attempt in attempts {
        seen.push(attempt.await.unwrap().expect("a streak before it").count);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=16).collect::<Vec<u32>>());
    assert_eq!(
        store
            .login_failures(subject)
            .await
            .unwrap()
            .map(|s| s.count),
        Some(17)
    );
}

async fn of_two_transfers_at_once_one_is_refused(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    let carol = user(&*store, "carol").await.id;
    for round in 0..10 {
        let room = room(&*store, alice, &format!("TRANSF{round:02}")).await;
        for member in [bob, carol] {
            store
                .add_member(room, member, Role::Member, Timestamp(1))
                .await
                .unwrap();
        }
        let transfer = |to: UserId| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .transfer_ownership(room, alice, to, Timestamp(2))
                    .await
                    .unwrap()
                    .map(|_| ())
            })
        };
        let (to_bob, to_carol) = (transfer(bob), transfer(carol));
        let outcomes = [to_bob.await.unwrap(), to_carol.await.unwrap()];
        assert!(
            outcomes.contains(&Ok(())) && outcomes.contains(&Err(Refusal::Outranked)),
            "{outcomes:?}"
        );
        let owners: Vec<_> = store
            .members(room, UserId(0), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.role == Role::Owner)
            .collect();
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert_eq!(
            store.room_by_id(room).await.unwrap().unwrap().owner_id,
            owners[0].user.id
        );
    }
    // A demoted owner sets no role and deletes nothing.
    let room = room(&*store, alice, "DEMOTED1").await;
    store
        .add_member(room, bob, Role::Member, Timestamp(1))
        .await
        .unwrap();
    store
        .transfer_ownership(room, alice, bob, Timestamp(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .set_role(room, alice, bob, Role::Member, Timestamp(3))
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::Outranked
    );
    assert_eq!(
        store
            .delete_room(room, alice, Timestamp(3))
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::Outranked
    );
    assert_eq!(
        store
            .remove_member(room, bob, Removal::Kicked { by: alice }, Timestamp(3))
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::Outranked
    );
}

async fn a_banned_or_deleted_user_is_not_added(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    let carol = user(&*store, "carol").await.id;
    let room = room(&*store, alice, "BANNED01").await;
    let ban = Removal::Banned {
        by: alice,
        at: Timestamp(1),
    };
    store
        .remove_member(room, bob, ban, Timestamp(1))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store
            .add_member(room, bob, Role::Member, Timestamp(2))
            .await,
        Err(StoreError::Conflict("banned"))
    ));
    let removal = AccountRemoval {
        user: carol,
        erase: false,
        username_free_at: Timestamp(10),
        now: Timestamp(3),
    };
    store.delete_account(removal).await.unwrap().unwrap();
    assert!(matches!(
        store
            .add_member(room, carol, Role::Member, Timestamp(4))
            .await,
        Err(StoreError::Conflict("deleted"))
    ));
    let members: Vec<UserId> = store
        .members(room, UserId(0), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user.id)
        .collect();
    assert_eq!(members, [alice]);
}

/// Neither waits for the other forever (no deadlock on PostgreSQL: the ban's
/// row refers to the joining user's, which the join holds shared).
async fn a_join_racing_a_ban_is_refused_or_undone(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    for round in 0..10 {
        let room = room(&*store, alice, &format!("RACING{round:02}")).await;
        let join = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .add_member(room, bob, Role::Member, Timestamp(1))
                    .await
                    .map(|_| ())
            })
        };
        let ban = Removal::Banned {
            by: alice,
            at: Timestamp(1),
        };
        store
            .remove_member(room, bob, ban, Timestamp(1))
            .await
            .unwrap()
            .unwrap();
        match join.await.unwrap() {
            Ok(()) | Err(StoreError::Conflict("banned")) => {}
            Err(other) => panic!("{other}"),
        }
        assert_eq!(store.member_role(room, bob).await.unwrap(), None);
        assert!(store.is_banned(room, bob).await.unwrap());
    }
}

/// What the domain's `authorize` saw (an admin) no longer holds when the
/// unban commits: the store refuses it, and the ban stays.
async fn an_admin_demoted_or_removed_before_the_write_lifts_no_ban(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    let carol = user(&*store, "carol").await.id;
    let room = room(&*store, alice, "UNBAN001").await;
    store
        .add_member(room, bob, Role::Member, Timestamp(1))
        .await
        .unwrap();
    store
        .set_role(room, alice, bob, Role::Admin, Timestamp(1))
        .await
        .unwrap()
        .unwrap();
    let ban = Removal::Banned {
        by: bob,
        at: Timestamp(2),
    };
    store
        .remove_member(room, carol, ban, Timestamp(2))
        .await
        .unwrap()
        .unwrap();

    store
        .set_role(room, alice, bob, Role::Member, Timestamp(3))
        .await
        .unwrap()
        .unwrap();
    let refusal = store.unban(room, bob, carol).await.unwrap().unwrap_err();
    assert_eq!(refusal, Refusal::Outranked);
    assert!(store.is_banned(room, carol).await.unwrap());

    store
        .remove_member(room, bob, Removal::Kicked { by: alice }, Timestamp(4))
        .await
        .unwrap()
        .unwrap();
    let refusal = store.unban(room, bob, carol).await.unwrap().unwrap_err();
    assert_eq!(refusal, Refusal::NotMember);
    assert!(store.is_banned(room, carol).await.unwrap());

    // The owner still may; a second unban finds no ban.
    let lifted = store.unban(room, alice, carol).await.unwrap().unwrap();
    assert!(lifted.value);
    assert!(!store.is_banned(room, carol).await.unwrap());
    let again = store.unban(room, alice, carol).await.unwrap().unwrap();
    assert!(!again.value);
}

async fn no_session_is_made_or_refreshed_for_a_deleted_account(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    assert!(store
        .insert_session(session("before", alice, 1))
        .await
        .unwrap());
    let removal = AccountRemoval {
        user: alice,
        erase: false,
        username_free_at: Timestamp(10),
        now: Timestamp(3),
    };
    store.delete_account(removal).await.unwrap().unwrap();
    assert!(!store
        .insert_session(session("after", alice, 1))
        .await
        .unwrap());
    assert!(!store
        .session_is_live(alice, "after", Timestamp(4))
        .await
        .unwrap());
    assert_eq!(
        store
            .rotate_refresh_token(
                "hash of before",
                "next",
                Timestamp(i64::MAX / 2),
                Timestamp(4)
            )
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert!(!store
        .session_is_live(alice, "before", Timestamp(4))
        .await
        .unwrap());
}

async fn a_login_is_live_for_its_own_user_until_it_ends_or_expires(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    for id in ["ends", "expires"] {
        let login = NewSession {
            expires_at: Timestamp(100),
            ..session(id, alice, 1)
        };
        assert!(store.insert_session(login).await.unwrap());
    }
    let live = |who: UserId, id: &'static str, at: i64| {
        let store = store.clone();
        async move { store.session_is_live(who, id, Timestamp(at)).await.unwrap() }
    };
    assert!(live(alice, "expires", 99).await);
    assert!(!live(alice, "expires", 100).await, "expired");
    assert!(!live(bob, "expires", 99).await, "another user's login");
    assert!(!live(alice, "nobody's", 99).await);
    assert!(live(alice, "ends", 50).await);
    store
        .end_sessions(alice, SessionsToEnd::One("ends".into()), Timestamp(60))
        .await
        .unwrap();
    assert!(!live(alice, "ends", 61).await, "ended");
    assert!(live(alice, "expires", 61).await, "the other login stays");
}
