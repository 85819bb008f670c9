//! Server administration's writes check their own conditions, on both
//! engines (as `conditions.rs`): an admin action re-reads the actor's
//! authority in its transaction, under the account row locks a revocation,
//! a suspension and a login take; a suspension ends every session and no
//! new one can slip past it; a report is filed only by a member. The
//! PostgreSQL runs need a server (`./scripts/test` provides one; see
//! `PALAVER_TEST_POSTGRES_URL`).

use std::sync::Arc;

use palaver_domain::admin::{Actor, AdminAction, AuditTarget, ReportOutcome};
use palaver_domain::events::DomainEvent;
use palaver_domain::model::Role;
use palaver_domain::store::{
    AdminAct, AdminChange, AdminDone, AdminRefusal, NewMessage, NewReport, ReportFiled,
    ReportFilter, Store,
};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};

mod common;

use common::{on_both_engines, room, session, user};

on_both_engines!(
    "palaver_admin":
    a_revoked_or_suspended_admin_acts_no_more,
    a_suspension_ends_every_session_and_admits_none_until_it_ends,
    no_login_racing_a_suspension_leaves_a_live_session,
    two_admins_cannot_suspend_each_other_even_at_once,
    reports_are_filed_by_members_once_and_resolved_together,
    every_action_is_audited_with_its_events_and_a_refused_one_is_not,
);

async fn act(store: &dyn Store, actor: Actor, change: AdminChange, now: i64) -> AdminDone {
    store
        .admin_act(AdminAct {
            actor,
            change,
            reason: Some("because".into()),
            now: Timestamp(now),
        })
        .await
        .unwrap()
}

async fn grant(store: &dyn Store, user: UserId) {
    act(store, Actor::Operator, AdminChange::Grant { user }, 1)
        .await
        .unwrap();
}

fn suspend(user: UserId, ends_at: Option<i64>) -> AdminChange {
    AdminChange::Suspend {
        user,
        ends_at: ends_at.map(Timestamp),
    }
}

async fn post(store: &dyn Store, room: RoomId, sender: UserId, body: &str) -> u64 {
    let message = NewMessage {
        room_id: room,
        sender_id: sender,
        body: body.into(),
        client_id: None,
        reply_to: None,
        created_at: Timestamp(2),
        attachments: None,
    };
    match &store.append_messages(&[message]).await.unwrap().value[0] {
        palaver_domain::store::AppendOutcome::Stored(stored) => stored.seq,
        other => panic!("{other:?}"),
    }
}

async fn a_revoked_or_suspended_admin_acts_no_more(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    let carol = user(&*store, "carol").await.id;
    assert!(!store.is_admin(alice, Timestamp(1)).await.unwrap());
    assert_eq!(
        act(&*store, Actor::Admin(alice), suspend(bob, None), 2)
            .await
            .unwrap_err(),
        AdminRefusal::NotAdmin,
        "no admin exists until one is granted"
    );
    grant(&*store, alice).await;
    assert_eq!(
        act(
            &*store,
            Actor::Operator,
            AdminChange::Grant { user: alice },
            2
        )
        .await
        .unwrap_err(),
        AdminRefusal::Unchanged("the user is already an admin")
    );
    act(&*store, Actor::Admin(alice), suspend(bob, None), 2)
        .await
        .unwrap();

    // Revoked: refused in the write, whatever the domain saw before.
    act(
        &*store,
        Actor::Operator,
        AdminChange::Revoke { user: alice },
        3,
    )
    .await
    .unwrap();
    assert_eq!(
        act(
            &*store,
            Actor::Admin(alice),
            AdminChange::Unsuspend { user: bob },
            4
        )
        .await
        .unwrap_err(),
        AdminRefusal::NotAdmin
    );
    assert!(store.suspension(bob).await.unwrap().is_some());

    // Suspended (by the operator: another admin may not): refused while it
    // applies, not after.
    grant(&*store, alice).await;
    grant(&*store, carol).await;
    assert!(matches!(
        act(&*store, Actor::Admin(carol), suspend(alice, Some(100)), 5).await,
        Err(AdminRefusal::Forbidden(_))
    ));
    act(&*store, Actor::Operator, suspend(alice, Some(100)), 5)
        .await
        .unwrap();
    assert!(!store.is_admin(alice, Timestamp(99)).await.unwrap());
    assert_eq!(
        act(
            &*store,
            Actor::Admin(alice),
            AdminChange::Unsuspend { user: bob },
            99
        )
        .await
        .unwrap_err(),
        AdminRefusal::NotAdmin
    );
    assert!(store.is_admin(alice, Timestamp(100)).await.unwrap());
    act(
        &*store,
        Actor::Admin(alice),
        AdminChange::Unsuspend { user: bob },
        100,
    )
    .await
    .unwrap();
    assert!(store.suspension(bob).await.unwrap().is_none());

    // No one suspends themselves.
    assert!(matches!(
        act(&*store, Actor::Admin(carol), suspend(carol, None), 101).await,
        Err(AdminRefusal::Forbidden(_))
    ));
}

async fn a_suspension_ends_every_session_and_admits_none_until_it_ends(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    for id in ["one", "two"] {
        assert!(store.insert_session(session(id, alice, 1)).await.unwrap());
    }
    let done = act(&*store, Actor::Operator, suspend(alice, Some(100)), 10)
        .await
        .unwrap();
    let ended = done.events.iter().find_map(|event| match event {
        DomainEvent::SessionsEnded { user_id, sessions } if *user_id == alice => {
            Some(sessions.clone())
        }
        _ => None,
    });
    assert_eq!(ended, Some(vec!["one".to_owned(), "two".to_owned()]));
    for id in ["one", "two"] {
        assert!(!store
            .session_is_live(alice, id, Timestamp(11))
            .await
            .unwrap());
    }
    assert!(!store
        .insert_session(session("during", alice, 50))
        .await
        .unwrap());
    assert!(!store
        .session_is_live(alice, "during", Timestamp(51))
        .await
        .unwrap());
    // An ended suspension no longer applies.
    assert!(store
        .insert_session(session("after", alice, 100))
        .await
        .unwrap());
    // Nor one lifted.
    act(&*store, Actor::Operator, suspend(alice, None), 200)
        .await
        .unwrap();
    assert!(!store
        .insert_session(session("again", alice, 300))
        .await
        .unwrap());
    act(
        &*store,
        Actor::Operator,
        AdminChange::Unsuspend { user: alice },
        301,
    )
    .await
    .unwrap();
    assert!(store
        .insert_session(session("lifted", alice, 302))
        .await
        .unwrap());
}

/// A login whose session insert races the suspension: it commits before
/// (and the suspension ends it) or after (and finds the suspension): no
/// session is live once both are done.
async fn no_login_racing_a_suspension_leaves_a_live_session(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    for round in 0..10 {
        let logins: Vec<_> = (0..4)
            .map(|n| {
                let store = store.clone();
                let id = format!("s{round}-{n}");
                tokio::spawn(async move {
                    store
                        .insert_session(session(&id, alice, 1000 * round + 1))
                        .await
                        .unwrap();
                    id
                })
            })
            .collect();
        act(
            &*store,
            Actor::Operator,
            suspend(alice, None),
            1000 * round + 1,
        )
        .await
        .unwrap();
        for login in logins {
            let id = login.await.unwrap();
            assert!(
                !store
                    .session_is_live(alice, &id, Timestamp(1000 * round + 2))
                    .await
                    .unwrap(),
                "{id} outlived the suspension"
            );
        }
        act(
            &*store,
            Actor::Operator,
            AdminChange::Unsuspend { user: alice },
            1000 * round + 3,
        )
        .await
        .unwrap();
    }
}

/// Each takes the other's row lock and its own, in one order: neither waits
/// forever, and each finds the other holds the admin role.
async fn two_admins_cannot_suspend_each_other_even_at_once(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    grant(&*store, alice).await;
    grant(&*store, bob).await;
    for round in 0..10 {
        let now = 10 * round + 10;
        let suspending = |actor: UserId, target: UserId| {
            let store = store.clone();
            tokio::spawn(async move {
                act(&*store, Actor::Admin(actor), suspend(target, None), now)
                    .await
                    .map(drop)
            })
        };
        let (by_alice, by_bob) = (suspending(alice, bob), suspending(bob, alice));
        for outcome in [by_alice.await.unwrap(), by_bob.await.unwrap()] {
            assert!(
                matches!(outcome, Err(AdminRefusal::Forbidden(_))),
                "{outcome:?}"
            );
        }
    }
    assert!(store.suspension(alice).await.unwrap().is_none());
    assert!(store.suspension(bob).await.unwrap().is_none());
}

async fn reports_are_filed_by_members_once_and_resolved_together(store: Arc<dyn Store>) {
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    let carol = user(&*store, "carol").await.id;
    let admin = user(&*store, "admin").await.id;
    grant(&*store, admin).await;
    let room = room(&*store, alice, "REPORT01").await;
    store
        .add_member(room, bob, Role::Member, Timestamp(1))
        .await
        .unwrap();
    let seq = post(&*store, room, alice, "rude").await;
    let report = |reporter: UserId, seq: u64| {
        let store = store.clone();
        async move {
            store
                .file_report(NewReport {
                    room,
                    seq,
                    reporter,
                    reason: "rude".into(),
                    now: Timestamp(3),
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(report(carol, seq).await, ReportFiled::NotMember);
    assert_eq!(report(bob, seq + 1).await, ReportFiled::NoMessage);
    let ReportFiled::Filed(first) = report(bob, seq).await else {
        panic!("a member files a report");
    };
    assert_eq!(
        first.message.as_ref().map(|m| m.body.as_str()),
        Some("rude")
    );
    assert_eq!(
        report(bob, seq).await,
        ReportFiled::AlreadyOpen(first.clone())
    );
    let ReportFiled::Filed(second) = report(alice, seq).await else {
        panic!("another member files one of their own");
    };
    // Removed since: as if no room.
    store
        .remove_member(
            room,
            bob,
            palaver_domain::store::Removal::Kicked { by: alice },
            Timestamp(4),
        )
        .await
        .unwrap()
        .unwrap();
    let other = post(&*store, room, alice, "another").await;
    assert_eq!(report(bob, other).await, ReportFiled::NotMember);

    let resolve = AdminChange::ResolveReport {
        report: first.id,
        outcome: ReportOutcome::MessageDeleted,
        ends_at: None,
    };
    let done = act(&*store, Actor::Admin(admin), resolve.clone(), 5)
        .await
        .unwrap();
    assert!(done
        .events
        .contains(&DomainEvent::MessageDeleted { room_id: room, seq }));
    assert_eq!(done.value.entry.detail.resolved, Some(2));
    let open = store.reports(ReportFilter::Open, 0, 10).await.unwrap();
    assert!(open.is_empty(), "{open:?}");
    let resolved = store.reports(ReportFilter::Resolved, 0, 10).await.unwrap();
    assert_eq!(
        resolved.iter().map(|r| r.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    assert!(resolved[0].message.as_ref().unwrap().deleted_at.is_some());
    assert_eq!(
        act(&*store, Actor::Admin(admin), resolve, 6)
            .await
            .unwrap_err(),
        AdminRefusal::Unchanged("the report was already resolved")
    );
    // A deleted message is not reported.
    assert_eq!(report(alice, seq).await, ReportFiled::NoMessage);
}

async fn every_action_is_audited_with_its_events_and_a_refused_one_is_not(store: Arc<dyn Store>) {
    let admin = user(&*store, "admin").await.id;
    let alice = user(&*store, "alice").await.id;
    let bob = user(&*store, "bob").await.id;
    grant(&*store, admin).await;
    let room = room(&*store, alice, "AUDIT001").await;
    store
        .add_member(room, bob, Role::Member, Timestamp(1))
        .await
        .unwrap();
    for n in 0..3 {
        post(&*store, room, bob, &format!("bob {n}")).await;
    }

    let transfer = AdminChange::TransferRoom { room, to: bob };
    let done = act(&*store, Actor::Admin(admin), transfer, 3)
        .await
        .unwrap();
    assert_eq!(
        store.member_role(room, bob).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(
        store.member_role(room, alice).await.unwrap(),
        Some(Role::Admin)
    );
    assert_eq!(
        (done.value.entry.detail.from, done.value.entry.detail.to),
        (Some(alice.0), Some(bob.0))
    );

    let erase = AdminChange::EraseMessages { user: bob, most: 2 };
    let first = act(&*store, Actor::Admin(admin), erase.clone(), 4)
        .await
        .unwrap();
    assert_eq!((first.value.erased, first.value.more), (2, true));
    let deleted = |events: &[DomainEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, DomainEvent::MessageDeleted { .. }))
            .count()
    };
    assert_eq!(deleted(&first.events), 2);
    let second = act(&*store, Actor::Admin(admin), erase.clone(), 5)
        .await
        .unwrap();
    assert_eq!((second.value.erased, second.value.more), (1, false));
    assert!(matches!(
        act(&*store, Actor::Admin(admin), erase, 6).await,
        Err(AdminRefusal::Unchanged(_))
    ));

    let take_down = AdminChange::TakeDown { room };
    let done = act(&*store, Actor::Admin(admin), take_down.clone(), 7)
        .await
        .unwrap();
    assert!(done.events.contains(&DomainEvent::RoomDeleted {
        room_id: room,
        reason: Some("because".into())
    }));
    assert!(store.room_by_id(room).await.unwrap().is_none());
    assert_eq!(
        act(&*store, Actor::Admin(admin), take_down, 8)
            .await
            .unwrap_err(),
        AdminRefusal::NoTarget("room")
    );

    // The audit log: newest first, each entry also the change's last event.
    let log = store.audit(i64::MAX, 100).await.unwrap();
    let actions: Vec<AdminAction> = log.iter().map(|entry| entry.action).collect();
    assert_eq!(
        actions,
        [
            AdminAction::TakeDownRoom,
            AdminAction::EraseMessages,
            AdminAction::EraseMessages,
            AdminAction::TransferRoom,
            AdminAction::GrantAdmin,
        ]
    );
    assert_eq!(log[0].target, AuditTarget::Room(room));
    assert_eq!(log[0].admin, Some(admin));
    assert_eq!(log[0].reason.as_deref(), Some("because"));
    assert_eq!(log[4].admin, None, "granted by the operator");
    assert_eq!(
        done.events.last(),
        Some(&DomainEvent::AdminAction(log[0].clone()))
    );
    let older = store.audit(log[1].id, 100).await.unwrap();
    assert_eq!(older, log[2..]);
}
