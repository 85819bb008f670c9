//! The server admin API (docs/admin.md): who may use it (no one but an
//! admin, whatever else they are), suspensions, reports, take-downs and the
//! audit log, and `palaver admin` on the command line.

use palaver_client::frames::ServerFrame;
use palaver_domain::throttle::Limit;
use palaver_domain::time::Timestamp;
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;
use crate::live::EVERY;

/// Every admin route, with a body where it takes one. `{user}`, `{suspended}`,
/// `{room}`, `{member}`, `{seq}` and `{report}` are a fresh scene's.
const OPERATIONS: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/v1/admin/admins", None),
    ("GET", "/api/v1/admin/users?q=v", None),
    (
        "POST",
        "/api/v1/admin/users/{user}/suspend",
        Some(r#"{"reason":"spam"}"#),
    ),
    (
        "POST",
        "/api/v1/admin/users/{suspended}/unsuspend",
        Some("{}"),
    ),
    (
        "POST",
        "/api/v1/admin/users/{user}/delete",
        Some(r#"{"reason":"spam","erase":true}"#),
    ),
    (
        "POST",
        "/api/v1/admin/users/{user}/erase-messages",
        Some("{}"),
    ),
    ("GET", "/api/v1/admin/rooms", None),
    (
        "POST",
        "/api/v1/admin/rooms/{room}/take-down",
        Some(r#"{"reason":"illegal"}"#),
    ),
    (
        "POST",
        "/api/v1/admin/rooms/{room}/owner",
        Some(r#"{"user_id":{member}}"#),
    ),
    (
        "POST",
        "/api/v1/admin/rooms/{room}/messages/{seq}/delete",
        Some("{}"),
    ),
    ("GET", "/api/v1/admin/reports?status=all", None),
    (
        "POST",
        "/api/v1/admin/reports/{report}/resolve",
        Some(r#"{"action":"dismiss"}"#),
    ),
    ("GET", "/api/v1/admin/audit", None),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Anonymous,
    User,
    RevokedAdmin,
    SuspendedAdmin,
    Admin,
}

/// What each operation acts on: made afresh for every call, so what one
/// call changed never decides another's answer.
struct Scene {
    user: i64,
    suspended: i64,
    room: i64,
    member: i64,
    seq: u64,
    report: i64,
}

async fn scene(app: &TestApp, admin: &TestUser, n: usize) -> Scene {
    let owner = app.signup(&format!("owner{n}")).await;
    let victim = app.signup(&format!("victim{n}")).await;
    let suspended = app.signup(&format!("suspended{n}")).await;
    let room = app.room_with(&owner, &[&victim]).await;
    let posted = victim
        .client
        .post_message(room.id, "rude", None)
        .await
        .unwrap();
    owner
        .client
        .report_message(room.id, posted.seq, "rude")
        .await
        .unwrap();
    let report = open_report_of(admin, room.id, posted.seq).await;
    admin
        .client
        .suspend_user(suspended.id(), "spam", None)
        .await
        .unwrap();
    Scene {
        user: victim.id(),
        suspended: suspended.id(),
        room: room.id,
        member: victim.id(),
        seq: posted.seq,
        report,
    }
}

/// The id of the open report of message `seq` of `room`, as admins see it
/// (the reporter is told no id).
async fn open_report_of(admin: &TestUser, room: i64, seq: u64) -> i64 {
    let mut after = None;
    loop {
        let page = admin.client.reports("open", after, None).await.unwrap();
        let found = (page.reports.iter()).find(|report| report.room == room && report.seq == seq);
        if let Some(report) = found {
            return report.id;
        }
        after = Some(page.next.expect("the report is open"));
    }
}

async fn call(app: &TestApp, token: Option<&str>, operation: usize, scene: &Scene) -> (u16, Value) {
    let (method, path, body) = OPERATIONS[operation];
    let fill = |text: &str| {
        text.replace("{user}", &scene.user.to_string())
            .replace("{suspended}", &scene.suspended.to_string())
            .replace("{room}", &scene.room.to_string())
            .replace("{member}", &scene.member.to_string())
            .replace("{seq}", &scene.seq.to_string())
            .replace("{report}", &scene.report.to_string())
    };
    let client = match token {
        Some(token) => app.client.with_token(token),
        None => app.client.clone(),
    };
    let mut request = client.request(Method::from_bytes(method.as_bytes()).unwrap(), &fill(path));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(fill(body));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn every_admin_operation_is_refused_to_all_but_admins_whatever_else_they_are() {
    // Authorization, not budgets: each call comes with a scene of its own.
    let app = spawn_app_with(|settings| {
        for limit in [Limit::AdminPerUser, Limit::AdminReadPerUser] {
            settings.limits.set(limit, "off".parse().unwrap());
        }
    })
    .await;
    let admin = app.signup("root").await;
    app.grant_admin("root").await;
    let other_admin = app.signup("deputy").await;
    app.grant_admin("deputy").await;
    let user = app.signup("ordinary").await;
    let revoked = app.signup("revoked").await;
    app.grant_admin("revoked").await;
    palaver_server::operator::revoke(app.settings(), "revoked", None)
        .await
        .unwrap();
    // An admin cannot be suspended through the API: one suspended before
    // the operator made them an admin.
    let suspended = app.signup("fallen").await;
    other_admin
        .client
        .suspend_user(suspended.id(), "abuse of power", None)
        .await
        .unwrap();
    app.grant_admin("fallen").await;
    // Nor can one admin suspend or delete another (a stolen admin login
    // must not lock the others out).
    let refused = other_admin
        .client
        .suspend_user(admin.id(), "coup", None)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (Some(403), Some("forbidden"))
    );
    let audited = app.client.with_token(&admin.access_token);
    let entries_before = audited.audit(None, Some(100)).await.unwrap().entries.len();

    let mut wrong = Vec::new();
    let mut n = 0;
    for (operation, (method, path, _)) in OPERATIONS.iter().enumerate() {
        for actor in [
            Actor::Anonymous,
            Actor::User,
            Actor::RevokedAdmin,
            Actor::SuspendedAdmin,
            Actor::Admin,
        ] {
            n += 1;
            let scene = scene(&app, &other_admin, n).await;
            let token = match actor {
                Actor::Anonymous => None,
                Actor::User => Some(user.access_token.as_str()),
                Actor::RevokedAdmin => Some(revoked.access_token.as_str()),
                // Their login ended with the suspension.
                Actor::SuspendedAdmin => Some(suspended.access_token.as_str()),
                Actor::Admin => Some(admin.access_token.as_str()),
            };
            let (status, body) = call(&app, token, operation, &scene).await;
            let code = body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let ok = match actor {
                Actor::Anonymous | Actor::SuspendedAdmin => status == 401,
                Actor::User | Actor::RevokedAdmin => {
                    status == 403
                        && code == "forbidden"
                        && body["error"]["message"] == "only server admins may do this"
                }
                Actor::Admin => status == 200,
            };
            if !ok {
                wrong.push(format!("{actor:?} × {method} {path}: {status} {body}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Refused calls changed nothing: the log holds the scenes' suspensions
    // and the admin's own calls, nothing else.
    let entries = audited.audit(None, Some(100)).await.unwrap().entries;
    let admins_own = entries
        .iter()
        .filter(|e| e.admin_id == Some(admin.id()))
        .count();
    let changes = OPERATIONS.iter().filter(|(m, _, _)| *m == "POST").count();
    assert_eq!(admins_own, changes);
    assert_eq!(entries.len(), entries_before + n + changes);

    // Suspended, the admin is told so at login, after the right password.
    let (status, code) = status_and_code(app.client.login("fallen", PASSWORD).await);
    assert_eq!((status, code.as_str()), (403, "account_suspended"));
}

#[tokio::test]
async fn every_documented_admin_route_is_in_the_matrix() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .request(Method::GET, "/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/api/v1/admin/"))
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    documented.sort();
    let placeholders = spelled_as_documented(&[
        ("{user}", "{id}"),
        ("{suspended}", "{id}"),
        ("{room}", "{id}"),
        ("{report}", "{id}"),
    ]);
    let mut tested: Vec<(String, String)> = OPERATIONS
        .iter()
        .map(|(method, path, _)| {
            let path = path.split('?').next().unwrap();
            (method.to_string(), placeholders(path))
        })
        .collect();
    tested.sort();
    assert_eq!(tested, documented);
}

/// `path` with each placeholder of the matrix spelled as the document does.
fn spelled_as_documented(pairs: &'static [(&str, &str)]) -> impl Fn(&str) -> String {
    move |path: &str| {
        pairs
            .iter()
            .fold(path.to_owned(), |path, (from, to)| path.replace(from, to))
    }
}

#[tokio::test]
async fn a_suspension_closes_live_sessions_at_once_and_refuses_login_refresh_and_requests() {
    let app = spawn_app().await;
    let admin = app.signup("root").await;
    app.grant_admin("root").await;
    let bob = app.signup("bob").await;
    let mut connections = Vec::new();
    for via in EVERY {
        connections.push((via, bob.live(&app, via, None).await));
    }

    let until = Timestamp::now().plus_seconds(3600).to_rfc3339();
    let entry = admin
        .client
        .suspend_user(bob.id(), "spam in every room", Some(&until))
        .await
        .unwrap();
    assert_eq!(entry.action, "suspend_user");
    assert_eq!(entry.detail.until.as_deref(), Some(until.as_str()));

    // Every transport's connection ends at once (WebSocket: close 4002).
    for (via, mut live) in connections {
        assert_eq!(live.ended().await, "session_ended", "{via:?}");
    }
    assert_eq!(status_of(bob.client.me().await), 401);
    assert_eq!(status_of(app.client.refresh(&bob.refresh_token).await), 401);

    // A wrong password learns nothing of the suspension.
    let (status, code) = status_and_code(app.client.login("bob", "not the password").await);
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    let refused = app
        .client
        .request(Method::POST, "/api/v1/auth/login")
        .json(&serde_json::json!({"username": "bob", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "account_suspended");
    assert_eq!(body["error"]["suspension"]["reason"], "spam in every room");
    assert_eq!(body["error"]["suspension"]["until"], until.as_str());

    // The admins' list shows it; lifting it lets bob in again.
    let listed = admin.client.admin_users("bob", None, None).await.unwrap();
    let shown = listed.users[0]
        .suspension
        .as_ref()
        .expect("shown suspended");
    assert_eq!(shown.reason, "spam in every room");
    assert_eq!(shown.by, Some(admin.id()));
    admin.client.unsuspend_user(bob.id(), None).await.unwrap();
    app.client.login("bob", PASSWORD).await.unwrap();
}

#[tokio::test]
async fn a_suspension_no_longer_applies_once_it_has_ended() {
    let app = spawn_app().await;
    let admin = app.signup("root").await;
    app.grant_admin("root").await;
    let bob = app.signup("bob").await;
    let ends = Timestamp::now().plus(std::time::Duration::from_millis(1500));
    admin
        .client
        .suspend_user(bob.id(), "cool down", Some(&ends.to_rfc3339()))
        .await
        .unwrap();
    let (status, code) = status_and_code(app.client.login("bob", PASSWORD).await);
    assert_eq!((status, code.as_str()), (403, "account_suspended"));
    // Past its end (a known instant, not a guess): no longer applied.
    let left = ends.0 + 1 - Timestamp::now().0;
    tokio::time::sleep(std::time::Duration::from_millis(left.max(0) as u64)).await;
    app.client.login("bob", PASSWORD).await.unwrap();
    let listed = admin.client.admin_users("bob", None, None).await.unwrap();
    assert!(listed.users[0].suspension.is_none());
    // An end in the past is refused.
    let (status, code) = status_and_code(
        admin
            .client
            .suspend_user(bob.id(), "late", Some("2001-01-01T00:00:00Z"))
            .await,
    );
    assert_eq!((status, code.as_str()), (422, "invalid_input"));
}

#[tokio::test]
async fn members_report_messages_and_strangers_learn_what_a_missing_room_tells() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let stranger = app.signup("stranger").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let posted = bob
        .client
        .post_message(room.id, "rude", None)
        .await
        .unwrap();

    let filed = alice
        .client
        .report_message(room.id, posted.seq, "insults")
        .await
        .unwrap();
    let response = alice
        .client
        .request(
            Method::POST,
            &format!("/api/v1/rooms/{}/messages/{}/report", room.id, posted.seq),
        )
        .json(&serde_json::json!({"reason": "insults, again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "already reported: the open report");
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["created_at"], filed.created_at.as_str());
    assert_eq!(again["reason"], "insults");
    assert!(
        again.get("id").is_none(),
        "a report id counts the server's reports: {again}"
    );

    let answer = |client: palaver_client::Client, room: i64, seq: u64| async move {
        let response = client
            .request(
                Method::POST,
                &format!("/api/v1/rooms/{room}/messages/{seq}/report"),
            )
            .json(&serde_json::json!({"reason": "spam"}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let strangers = answer(stranger.client.clone(), room.id, posted.seq).await;
    let missing = answer(stranger.client.clone(), 987_654_321, posted.seq).await;
    assert_eq!(strangers.0, 404);
    assert_eq!(strangers, missing);
    assert_eq!(answer(stranger.client.clone(), room.id, 999).await, missing);
    let (status, body) = answer(alice.client.clone(), room.id, 999).await;
    assert_eq!(status, 404);
    assert!(body.contains("message not found"), "{body}");
    assert_eq!(
        answer(alice.client.clone(), room.id, posted.seq).await.0,
        200
    );
    let (status, code) = status_and_code(alice.client.report_message(room.id, 1, " ").await);
    assert_eq!((status, code.as_str()), (422, "invalid_input"));
}

#[tokio::test]
async fn reports_per_user_are_limited() {
    let app = spawn_app_with(|settings| {
        settings
            .limits
            .set(Limit::ReportPerUser, "2/h".parse().unwrap());
    })
    .await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    for n in 1..=3 {
        alice
            .client
            .post_message(room.id, &format!("m{n}"), None)
            .await
            .unwrap();
    }
    for seq in 1..=2 {
        alice
            .client
            .report_message(room.id, seq, "spam")
            .await
            .unwrap();
    }
    let (status, code) = status_and_code(alice.client.report_message(room.id, 3, "spam").await);
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
}

#[tokio::test]
async fn reports_per_address_are_limited_whatever_the_account() {
    let app = spawn_app_with(|settings| {
        settings
            .limits
            .set(Limit::ReportPerAddress, "2/h".parse().unwrap());
    })
    .await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob, &carol]).await;
    let posted = alice
        .client
        .post_message(room.id, "hello", None)
        .await
        .unwrap();
    // Reports of what is not there spend nothing of the address's budget.
    for (room, seq) in [(room.id, 999), (987_654_321, 1), (room.id, 998)] {
        let (status, _) = status_and_code(alice.client.report_message(room, seq, "spam").await);
        assert_eq!(status, 404);
    }
    for reporter in [&alice, &bob] {
        reporter
            .client
            .report_message(room.id, posted.seq, "spam")
            .await
            .unwrap();
    }
    // A fresh account from the same address finds the address's budget spent.
    let (status, code) = status_and_code(
        carol
            .client
            .report_message(room.id, posted.seq, "spam")
            .await,
    );
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
}

#[tokio::test]
async fn admins_resolve_reports_with_each_action() {
    let app = spawn_app().await;
    let admin = app.signup("root").await;
    app.grant_admin("root").await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob, &carol]).await;
    let mut watching = alice.connect().await;
    let mut seqs = Vec::new();
    for body in ["first", "second", "third"] {
        seqs.push(
            bob.client
                .post_message(room.id, body, None)
                .await
                .unwrap()
                .seq,
        );
    }
    // Two members report the second message: one resolution answers both.
    for (reporter, seq) in [
        (&alice, seqs[0]),
        (&alice, seqs[1]),
        (&carol, seqs[1]),
        (&alice, seqs[2]),
    ] {
        reporter
            .client
            .report_message(room.id, seq, "rude")
            .await
            .unwrap();
    }
    let open = admin.client.reports("open", None, None).await.unwrap();
    let reports: Vec<i64> = open.reports.iter().map(|report| report.id).collect();
    assert_eq!(open.reports.len(), 4);
    assert_eq!(open.reports[0].message.as_ref().unwrap().body, "first");
    assert_eq!(open.reports[0].reporter_id, alice.id());

    // dismiss: the message stays.
    let entry = admin
        .client
        .resolve_report(reports[0], "dismiss", Some("banter"), None)
        .await
        .unwrap();
    assert_eq!(entry.detail.outcome.as_deref(), Some("dismissed"));
    assert!(bob
        .client
        .history(room.id, &Default::default())
        .await
        .unwrap()
        .messages
        .iter()
        .all(|m| !m.deleted));

    // delete_message: gone for the members, both reports of it resolved.
    let entry = admin
        .client
        .resolve_report(reports[1], "delete_message", None, None)
        .await
        .unwrap();
    assert_eq!(entry.detail.resolved, Some(2));
    let deleted = next_matching(&mut watching, |frame| match frame {
        ServerFrame::MessageDeleted { room: r, seq } if r == room.id => Some(seq),
        _ => None,
    })
    .await;
    assert_eq!(deleted, seqs[1]);
    let (status, code) = status_and_code(
        admin
            .client
            .resolve_report(reports[2], "dismiss", None, None)
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (409, "conflict"),
        "resolved with its twin"
    );

    // suspend_sender: bob is out; without an admin's reason he reads a
    // fixed one, never the reporter's words.
    let mut bobs = bob.connect().await;
    let entry = admin
        .client
        .resolve_report(reports[3], "suspend_sender", None, None)
        .await
        .unwrap();
    assert_eq!(entry.detail.sender, Some(bob.id()));
    assert_eq!(expect_close(&mut bobs).await.0, 4002);
    let refused = app
        .client
        .request(Method::POST, "/api/v1/auth/login")
        .json(&serde_json::json!({"username": "bob", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"]["suspension"]["reason"],
        "suspended after a report"
    );

    assert!(admin
        .client
        .reports("open", None, None)
        .await
        .unwrap()
        .reports
        .is_empty());
    let resolved = admin.client.reports("resolved", None, None).await.unwrap();
    let outcomes: Vec<_> = resolved
        .reports
        .iter()
        .map(|r| r.resolution.clone().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "dismissed",
            "message_deleted",
            "message_deleted",
            "sender_suspended"
        ]
    );
    assert!(resolved
        .reports
        .iter()
        .all(|r| r.resolved_by == Some(admin.id())));
}

#[tokio::test]
async fn a_room_taken_down_tells_its_members_why() {
    let app = spawn_app().await;
    let admin = app.signup("root").await;
    app.grant_admin("root").await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut ws = bob.connect().await;
    admin
        .client
        .take_down_room(room.id, "illegal content")
        .await
        .unwrap();
    let reason = next_matching(&mut ws, |frame| match frame {
        ServerFrame::RoomDeleted { room: r, reason } if r == room.id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason.as_deref(), Some("illegal content"));
    assert_eq!(status_of(alice.client.room(room.id).await), 404);

    // Deleted by its owner, a room has no reason to give.
    let other = app.room_with(&alice, &[&bob]).await;
    alice.client.delete_room(other.id).await.unwrap();
    let reason = next_matching(&mut ws, |frame| match frame {
        ServerFrame::RoomDeleted { room: r, reason } if r == other.id => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, None);
}

#[tokio::test]
async fn admins_act_on_users_rooms_and_messages_and_every_action_is_audited() {
    let app = spawn_app().await;
    let admin = app.signup("root").await;
    app.grant_admin("root").await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut watching = alice.connect().await;
    for n in 0..3 {
        bob.client
            .post_message(room.id, &format!("bob {n}"), None)
            .await
            .unwrap();
    }

    // The lists: users with their sessions and rooms, rooms with members.
    let users = admin.client.admin_users("", None, Some(2)).await.unwrap();
    assert_eq!(users.users.len(), 2);
    let rest = admin
        .client
        .admin_users("", users.next, None)
        .await
        .unwrap();
    assert_eq!(rest.users.len(), 1);
    assert_eq!(rest.next, None);
    let shown = &admin
        .client
        .admin_users("ali", None, None)
        .await
        .unwrap()
        .users[0];
    assert_eq!(
        (shown.rooms, shown.live_sessions, shown.admin),
        (1, 1, false)
    );
    let rooms = admin.client.admin_rooms("gen", None, None).await.unwrap();
    assert_eq!(rooms.rooms[0].members, 2);
    assert_eq!(rooms.rooms[0].last_seq, 3);

    admin
        .client
        .admin_delete_message(room.id, 1, Some("off topic"))
        .await
        .unwrap();
    let (status, code) = status_and_code(admin.client.admin_delete_message(room.id, 1, None).await);
    assert_eq!((status, code.as_str()), (409, "conflict"));
    let erased = admin.client.erase_messages(bob.id(), None).await.unwrap();
    assert_eq!((erased.erased, erased.more), (2, false));
    let mut deleted = Vec::new();
    while deleted.len() < 3 {
        deleted.push(
            next_matching(&mut watching, |frame| match frame {
                ServerFrame::MessageDeleted { seq, .. } => Some(seq),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(deleted, [1, 2, 3]);

    admin
        .client
        .admin_transfer_room(room.id, bob.id(), Some("alice left the project"))
        .await
        .unwrap();
    assert_eq!(alice.client.room(room.id).await.unwrap().owner_id, bob.id());
    // Bob owns a room with others: deleting him waits for a transfer.
    let (status, code) = status_and_code(
        admin
            .client
            .admin_delete_user(bob.id(), "spam", false)
            .await,
    );
    assert_eq!((status, code.as_str()), (409, "last_owner"));
    admin
        .client
        .admin_transfer_room(room.id, alice.id(), None)
        .await
        .unwrap();
    admin
        .client
        .admin_delete_user(bob.id(), "spam", false)
        .await
        .unwrap();
    assert_eq!(status_of(app.client.login("bob", PASSWORD).await), 401);
    // An admin deletes neither themselves nor suspends themselves here.
    assert_eq!(
        status_of(
            admin
                .client
                .admin_delete_user(admin.id(), "oops", false)
                .await
        ),
        403
    );

    // The audit log: newest first, with who, what, whom and why.
    let log = admin.client.audit(None, None).await.unwrap();
    let actions: Vec<&str> = log.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "delete_user",
            "transfer_room",
            "transfer_room",
            "erase_messages",
            "delete_message",
            "grant_admin"
        ]
    );
    let transfer = &log.entries[2];
    assert_eq!(transfer.admin_id, Some(admin.id()));
    assert_eq!(transfer.target.kind, "room");
    assert_eq!(transfer.target.id, room.id);
    assert_eq!(transfer.reason.as_deref(), Some("alice left the project"));
    assert_eq!(
        (transfer.detail.from, transfer.detail.to),
        (Some(alice.id()), Some(bob.id()))
    );
    let deletion = &log.entries[4];
    assert_eq!(
        (deletion.target.kind.as_str(), deletion.target.seq),
        ("message", Some(1))
    );
    assert_eq!(log.entries[5].admin_id, None, "granted on the command line");
    let page = admin.client.audit(None, Some(2)).await.unwrap();
    let older = admin.client.audit(page.next, Some(10)).await.unwrap();
    assert_eq!(older.entries, log.entries[2..]);
}

/// `palaver admin grant|list|revoke` on the store a running node uses.
#[tokio::test]
async fn the_command_line_grants_lists_and_revokes_admins() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let palaver = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_palaver"));
        command.args(["admin"]).args(args);
        command.arg("--data-dir").arg(app.data_dir());
        if let Some(url) = app.settings().database_url() {
            command.args(["--database-url", &url]);
        }
        let output = command.output().expect("palaver runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(status_of(alice.client.admin_admins().await), 403);
    palaver(&["grant", "alice", "--reason", "runs the place"]);
    let admins = alice.client.admin_admins().await.unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(
        (admins[0].user.id, admins[0].granted_by),
        (alice.id(), None)
    );
    assert!(palaver(&["list"]).contains("alice"));
    palaver(&["revoke", "alice"]);
    assert_eq!(status_of(alice.client.admin_admins().await), 403);
    assert!(!palaver(&["list"]).contains("alice"));
}
