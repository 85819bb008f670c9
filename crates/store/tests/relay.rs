//! What a node does with events after the commit, on a real store: the outbox
//! relay (re-sending rows left behind) and `still_true` (checking other nodes'
//! membership events).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palaver_domain::bus::{delivered, Bus, BusError, Delivery, Publication};
use palaver_domain::events::{DomainEvent, OutboxEntry};
use palaver_domain::model::Role;
use palaver_domain::outbox::{relay_once, Publisher, RelayConfig};
use palaver_domain::remote::still_true;
use palaver_domain::store::{AccountStore, NewRoom, NewUser, OutboxStore, Removal, RoomStore};
use palaver_domain::time::Timestamp;
use palaver_domain::{RoomId, UserId};
use palaver_store::{SqliteStore, StoreOptions};

/// A bus that records what it is asked to re-send, and can be down or failing.
#[derive(Default)]
struct RecordingBus {
    republished: Mutex<Vec<OutboxEntry>>,
    unhealthy: AtomicBool,
    failing: AtomicBool,
}

impl Bus for RecordingBus {
    fn publish(&self, _events: Vec<Publication>) -> Delivery {
        if self.failing.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Err(BusError("broker down".into()))));
        }
        delivered()
    }

    fn republish(&self, entries: &[OutboxEntry]) -> Delivery {
        if self.failing.load(Ordering::SeqCst) {
            return Box::pin(std::future::ready(Err(BusError("broker down".into()))));
        }
        self.republished.lock().unwrap().extend_from_slice(entries);
        delivered()
    }

    fn is_healthy(&self) -> bool {
        !self.unhealthy.load(Ordering::SeqCst)
    }
}

async fn store_with_outbox() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        outbox_origin: Some("node-a".into()),
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(&dir.path().join("p.db"), &options)
        .await
        .unwrap();
    (dir, store)
}

async fn user(store: &SqliteStore, name: &str) -> UserId {
    store
        .insert_user(NewUser {
            username: name.into(),
            email: None,
            display_name: name.into(),
            password_hash: "x".into(),
            created_at: Timestamp(0),
        })
        .await
        .unwrap()
        .id
}

/// A room of `owner`, created (with its outbox row) at `at`.
async fn room(store: &SqliteStore, owner: UserId, at: Timestamp) -> RoomId {
    store
        .insert_room(NewRoom {
            name: "r".into(),
            code: "ABCDEFGH".into(),
            password_hash: None,
            owner_id: owner,
            created_at: at,
        })
        .await
        .unwrap()
        .value
        .id
}

fn relay_after(after: Duration) -> RelayConfig {
    RelayConfig {
        relay_after: after,
        ..RelayConfig::default()
    }
}

#[tokio::test]
async fn the_relay_resends_rows_left_behind_once_and_leaves_young_ones_to_their_publisher() {
    let (_dir, store) = store_with_outbox().await;
    let alice = user(&store, "alice").await;
    let old = room(&store, alice, Timestamp(0)).await;
    let bus = RecordingBus::default();
    // The row from 1970 is old; none is young yet.
    assert_eq!(
        relay_once(&store, &bus, relay_after(Duration::from_secs(5)))
            .await
            .unwrap(),
        1
    );
    let sent = bus.republished.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].room_id, sent[0].origin.as_str()), (old, "node-a"));
    // Deleted once the bus holds it: nothing to send again.
    assert_eq!(
        relay_once(&store, &bus, relay_after(Duration::from_secs(5)))
            .await
            .unwrap(),
        0
    );

    // A row written just now belongs to its publisher for `relay_after`.
    let bob = user(&store, "bob").await;
    let just_now = Timestamp::now().minus(Duration::from_millis(1));
    store
        .add_member(old, bob, Role::Member, just_now)
        .await
        .unwrap();
    assert_eq!(
        relay_once(&store, &bus, relay_after(Duration::from_secs(3600)))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        relay_once(&store, &bus, relay_after(Duration::ZERO))
            .await
            .unwrap(),
        1
    );
}

/// The rooms whose outbox rows are there now. Claiming leases them, so this
/// is read once, after the outbox has settled.
async fn rooms_in_outbox(store: &SqliteStore) -> Vec<RoomId> {
    let now = Timestamp::now();
    let rows = store
        .claim_outbox(now.plus(Duration::from_secs(3600)), now, now, 1000)
        .await
        .unwrap();
    rows.iter().map(|row| row.room_id).collect()
}

#[tokio::test]
async fn the_publisher_clears_the_rows_the_bus_took_and_keeps_the_others() {
    let (_dir, store) = store_with_outbox().await;
    let store = Arc::new(store);
    let bus = Arc::new(RecordingBus::default());
    let publisher = Publisher::new(bus.clone(), store.clone());
    let alice = user(&store, "alice").await;
    let new_room = |code: &str| NewRoom {
        name: "r".into(),
        code: code.into(),
        password_hash: None,
        owner_id: alice,
        created_at: Timestamp::now(),
    };
    // The bus refuses the first change's events, takes the second's.
    bus.failing.store(true, Ordering::SeqCst);
    let refused = store.insert_room(new_room("AAAAAAAA")).await.unwrap();
    let kept = refused.value.id;
    publisher.publish_committed(refused);
    bus.failing.store(false, Ordering::SeqCst);
    let taken = store.insert_room(new_room("BBBBBBBB")).await.unwrap();
    publisher.publish_committed(taken);

    // Counting leases nothing, so waiting this way cannot hide a row.
    tokio::time::timeout(Duration::from_secs(10), async {
        while store.outbox_backlog().await.unwrap() != 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the delivered rows are cleared");
    let left = rooms_in_outbox(&store).await;
    assert_eq!(left, [kept], "the refused change's row waits for the relay");
}

#[tokio::test]
async fn an_unhealthy_bus_claims_nothing_and_a_failed_send_keeps_the_rows() {
    let (_dir, store) = store_with_outbox().await;
    let alice = user(&store, "alice").await;
    room(&store, alice, Timestamp(0)).await;
    let bus = RecordingBus::default();
    let config = RelayConfig {
        relay_after: Duration::from_secs(5),
        lease: Duration::ZERO,
        ..RelayConfig::default()
    };

    bus.unhealthy.store(true, Ordering::SeqCst);
    assert_eq!(
        relay_once(&store, &bus, config).await.unwrap(),
        0,
        "nothing claimed"
    );
    bus.unhealthy.store(false, Ordering::SeqCst);

    bus.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        relay_once(&store, &bus, config).await.unwrap(),
        1,
        "claimed, not sent"
    );
    assert!(bus.republished.lock().unwrap().is_empty());
    bus.failing.store(false, Ordering::SeqCst);

    // The row is still there and goes once its lease (none here) has run
    // out, which is the next millisecond.
    tokio::time::timeout(Duration::from_secs(5), async {
        while relay_once(&store, &bus, config).await.unwrap() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the row is sent again after its lease");
    assert_eq!(bus.republished.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn membership_events_from_other_nodes_hold_only_while_the_store_agrees() {
    let (_dir, store) = store_with_outbox().await;
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    let room = room(&store, alice, Timestamp(0)).await;
    let joined = DomainEvent::MemberJoined {
        room_id: room,
        user_id: bob,
        last_seq: 0,
    };
    let left = DomainEvent::MemberLeft {
        room_id: room,
        user_id: bob,
    };
    let removed = DomainEvent::MemberRemoved {
        room_id: room,
        user_id: bob,
        banned: false,
    };
    let admin = DomainEvent::RoleChanged {
        room_id: room,
        user_id: bob,
        role: Role::Admin,
    };
    let deleted = DomainEvent::RoomDeleted {
        room_id: room,
        reason: None,
    };
    let holds = |event: &DomainEvent| {
        let (store, event) = (&store, event.clone());
        async move { still_true(store, &event).await.unwrap() }
    };

    assert!(!holds(&joined).await, "a join the store does not know of");
    assert!(holds(&left).await && holds(&removed).await);
    store
        .add_member(room, bob, Role::Member, Timestamp(1))
        .await
        .unwrap();
    assert!(holds(&joined).await);
    assert!(!holds(&left).await, "a late leave from before this join");
    assert!(!holds(&admin).await, "bob is a member, not an admin");
    store
        .set_role(room, alice, bob, Role::Admin, Timestamp(2))
        .await
        .unwrap()
        .unwrap();
    assert!(holds(&admin).await);
    store
        .remove_member(room, bob, Removal::Kicked { by: alice }, Timestamp(3))
        .await
        .unwrap()
        .unwrap();
    assert!(!holds(&joined).await, "a replayed join after the removal");
    assert!(holds(&removed).await);
    assert!(!holds(&deleted).await, "the room still exists");
    store
        .delete_room(room, alice, Timestamp(4))
        .await
        .unwrap()
        .unwrap();
    assert!(holds(&deleted).await);
}
