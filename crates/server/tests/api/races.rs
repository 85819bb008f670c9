//! Checks made where the write happens: requests sent at the same time must
//! never both pass a check that only one of them may pass (the login
//! back-off, the owner's role, a ban, the account being alive).

use palaver_client::types::Member;
use palaver_client::ClientError;
use palaver_domain::throttle::LoginBackoff;

use crate::helpers::*;

/// Rounds of each race: one round may miss the window, several rarely all do.
const ROUNDS: usize = 6;

fn owners(members: &[Member]) -> Vec<i64> {
    members
        .iter()
        .filter(|m| m.role == "owner")
        .map(|m| m.user.id)
        .collect()
}

#[tokio::test]
async fn wrong_passwords_sent_at_once_are_each_counted_before_any_is_checked() {
    let app = spawn_app_with(|s| {
        s.limits.login_backoff = LoginBackoff::default();
        // Hashing slow enough that every attempt reads the streak before
        // the first one's hash is done, as with production settings.
        s.passwords.memory_kib = 8 * 1024;
    })
    .await;
    app.client.register("alice", PASSWORD, None).await.unwrap();

    let attempts = (0..25).map(|i| {
        let client = app.client.clone();
        async move { client.login("alice", &format!("wrong password {i}")).await }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let mut looked_at = 0;
    let mut refused = 0;
    for outcome in outcomes {
        match status_and_code(outcome) {
            (401, _) => looked_at += 1,
            (429, code) if code == "rate_limited" => refused += 1,
            other => panic!("neither a wrong login nor a refusal: {other:?}"),
        }
    }
    // Five failures are free; each later one waits 1 s, 2 s, 4 s… after the
    // last, so ten could be looked at only if the attempts took over 30 s.
    assert!(
        refused > 0 && looked_at <= 10,
        "{looked_at} wrong passwords looked at, {refused} refused"
    );
}

#[tokio::test]
async fn two_transfers_at_once_leave_exactly_one_owner() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    for _ in 0..ROUNDS {
        let room = app.room_with(&alice, &[&bob, &carol]).await;
        let (to_bob, to_carol) = tokio::join!(
            alice.client.transfer_ownership(room.id, bob.id()),
            alice.client.transfer_ownership(room.id, carol.id()),
        );
        let members = alice.client.members(room.id).await.unwrap();
        let owners = owners(&members);
        assert_eq!(owners.len(), 1, "owners after two transfers: {members:?}");
        // The transfer that lost found alice no longer the owner.
        let (won, lost) = match (to_bob, to_carol) {
            (Ok(()), lost) => (bob.id(), lost),
            (lost, Ok(())) => (carol.id(), lost),
            (a, b) => panic!("neither transfer went through: {a:?} {b:?}"),
        };
        assert_eq!(status_and_code(lost), (403, "forbidden".into()));
        assert_eq!(owners, [won]);
        assert!(members
            .iter()
            .any(|m| m.user.id == alice.id() && m.role == "admin"));
    }
}

#[tokio::test]
async fn an_owner_demoted_by_a_transfer_cannot_still_demote_the_new_owner() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    for _ in 0..ROUNDS {
        let room = app.room_with(&alice, &[&bob]).await;
        alice
            .client
            .set_role(room.id, bob.id(), "admin")
            .await
            .unwrap();
        // Alice hands the room to bob and, at the same time, makes him a
        // plain member: had both passed, the room would have no owner.
        let (transfer, demote) = tokio::join!(
            alice.client.transfer_ownership(room.id, bob.id()),
            alice.client.set_role(room.id, bob.id(), "member"),
        );
        transfer.unwrap();
        if let Err(err) = demote {
            assert_eq!(status_and_code::<()>(Err(err)), (403, "forbidden".into()));
        }
        let members = bob.client.members(room.id).await.unwrap();
        assert_eq!(owners(&members), [bob.id()], "{members:?}");
    }
}

#[tokio::test]
async fn a_join_racing_a_ban_never_leaves_a_banned_member() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    for _ in 0..ROUNDS {
        let room = alice.client.create_room("general", None).await.unwrap();
        let (ban, join) = tokio::join!(
            alice.client.ban(room.id, bob.id()),
            bob.client.join_room(&room.code, None),
        );
        ban.unwrap();
        if let Err(err) = join {
            assert_eq!(
                status_and_code::<()>(Err(err)),
                (403, "forbidden".into()),
                "a join the ban went before is refused as banned"
            );
        }
        let members = alice.client.members(room.id).await.unwrap();
        assert!(
            members.iter().all(|m| m.user.id != bob.id()),
            "bob is banned and still a member: {members:?}"
        );
        let bans = alice.client.bans(room.id).await.unwrap();
        assert!(bans.iter().any(|b| b.user_id == bob.id()), "{bans:?}");
    }
}

#[tokio::test]
async fn a_login_or_refresh_racing_the_account_deletion_leaves_no_working_session() {
    let app = spawn_app().await;
    for round in 0..ROUNDS {
        let name = format!("doomed{round}");
        let doomed = app.signup(&name).await;
        let (deleted, login, refresh) = tokio::join!(
            doomed.client.delete_account(PASSWORD, false),
            app.client.login(&name, PASSWORD),
            app.client.refresh(&doomed.refresh_token),
        );
        deleted.unwrap();
        // A login or refresh that lost the race fails as a wrong one does;
        // whatever came out of one that won is refused now.
        let mut won = Vec::new();
        for outcome in [login, refresh] {
            match outcome {
                Ok(tokens) => won.push(tokens),
                Err(ClientError::Api {
                    status,
                    code,
                    message,
                }) => {
                    assert_eq!((status, code.as_str()), (401, "unauthorized"), "{message}");
                }
                Err(other) => panic!("not an API error: {other}"),
            }
        }
        for tokens in won {
            let client = app.client.with_token(&tokens.access_token);
            assert_eq!(
                status_and_code(client.create_room("after death", None).await),
                (401, "unauthorized".into()),
                "the deleted account's login still acts"
            );
            assert_eq!(
                status_and_code(app.client.refresh(&tokens.refresh_token).await),
                (401, "unauthorized".into()),
                "the deleted account's login still refreshes"
            );
        }
        // And a login after the deletion is a wrong login.
        assert_eq!(
            status_and_code(app.client.login(&name, PASSWORD).await),
            (401, "unauthorized".into())
        );
    }
}
