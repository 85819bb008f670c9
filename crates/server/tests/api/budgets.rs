//! Every operation of the domain with a budget draws from the limits table: with
//! only its own budgets switched on, repeating it is refused with
//! `rate_limited`. The match in `attempt` is exhaustive, so an operation
//! added to the domain does not compile here until it is driven too.

use palaver_client::frames::{ClientFrame, ServerFrame};
use palaver_client::types::UserRef;
use palaver_client::ClientError;
use palaver_domain::throttle::Operation;
use strum::IntoEnumIterator;

use crate::helpers::*;

/// Each budget under test allows this many in a burst.
const BUDGET: &str = "3/h";
/// Setup spends at most two units of a budget; by then it must have refused.
const TRIES: usize = 6;

/// What one attempt came to: passed (or refused for another reason, such as
/// a wrong password), or refused by a limit with this code.
enum Outcome {
    NotLimited,
    Limited(String),
}

fn outcome<T: std::fmt::Debug>(result: palaver_client::Result<T>) -> Outcome {
    match result {
        Err(ClientError::Api {
            status: 429, code, ..
        }) => Outcome::Limited(code),
        _ => Outcome::NotLimited,
    }
}

/// Two users and a room of theirs, with a message in it; a third user outside.
struct Scene {
    app: TestApp,
    alice: TestUser,
    bob: TestUser,
    /// Absent where signing up would spend the budget under test.
    carol: Option<TestUser>,
    room: i64,
    code: String,
}

impl Scene {
    async fn new(operation: Operation) -> Self {
        let app = spawn_app_with(|settings| {
            for &limit in operation.limits() {
                settings.limits.set(limit, BUDGET.parse().unwrap());
            }
        })
        .await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let carol = match operation {
            // A third sign-up would spend the whole budget under test.
            Operation::Register | Operation::Login => None,
            _ => Some(app.signup("carol").await),
        };
        if matches!(operation, Operation::AdminAction | Operation::AdminRead) {
            app.grant_admin("alice").await;
        }
        let room = alice.client.create_room("general", None).await.unwrap();
        if operation != Operation::Join {
            bob.client.join_room(&room.code, None).await.unwrap();
        }
        if operation != Operation::Send {
            alice
                .client
                .post_message(room.id, "first", None)
                .await
                .unwrap();
        }
        Self {
            app,
            alice,
            bob,
            carol,
            room: room.id,
            code: room.code,
        }
    }

    async fn attempt(&self, operation: Operation, n: usize) -> Outcome {
        let (app, alice, room) = (&self.app, &self.alice.client, self.room);
        let bob_id = self.bob.user.id;
        let carol = || self.carol.as_ref().expect("carol signed up");
        let carol_id = || carol().user.id;
        match operation {
            Operation::Register => outcome(
                app.client
                    .register(&format!("newcomer{n}"), PASSWORD, None)
                    .await,
            ),
            Operation::Login => outcome(app.client.login("alice", PASSWORD).await),
            Operation::Refresh => outcome(app.client.refresh("not-a-token").await),
            Operation::Logout => outcome(app.client.logout("not-a-token").await),
            Operation::PasswordResetRequest => {
                outcome(app.client.request_password_reset("alice").await)
            }
            Operation::PasswordResetConfirm => {
                outcome(app.client.confirm_password_reset("alice", "000000").await)
            }
            Operation::PasswordResetComplete => outcome(
                app.client
                    .complete_password_reset("not-a-token", "a new password 1")
                    .await,
            ),
            Operation::PasswordChange => outcome(
                alice
                    .change_password("not the password", "a new password 1")
                    .await,
            ),
            Operation::AccountDelete => {
                outcome(alice.delete_account("not the password", false).await)
            }
            Operation::SessionEnd => outcome(alice.end_session("no-such-session").await),
            Operation::ProfileUpdate => {
                outcome(alice.update_display_name(&format!("Alice {n}")).await)
            }
            Operation::EmailChange => {
                outcome(alice.set_email(&format!("alice{n}@example.com")).await)
            }
            Operation::EmailVerify => outcome(alice.verify_email("000000").await),
            Operation::RoomCreate => outcome(alice.create_room(&format!("room {n}"), None).await),
            Operation::RoomUpdate => outcome(
                alice
                    .update_room(room, Some(&format!("name {n}")), None)
                    .await,
            ),
            Operation::RoomCodeRotate => outcome(alice.rotate_code(room).await),
            Operation::RoomDelete => {
                let spare = alice.create_room("spare", None).await.unwrap();
                outcome(alice.delete_room(spare.id).await)
            }
            Operation::RoleChange => {
                let role = if n.is_multiple_of(2) {
                    "admin"
                } else {
                    "member"
                };
                outcome(alice.set_role(room, bob_id, role).await)
            }
            Operation::OwnershipTransfer => {
                outcome(alice.transfer_ownership(room, self.alice.user.id).await)
            }
            Operation::Kick => outcome(alice.kick(room, carol_id()).await),
            Operation::Ban => outcome(alice.ban(room, carol_id()).await),
            Operation::Unban => outcome(alice.unban(room, carol_id()).await),
            Operation::Join => outcome(self.bob.client.join_room(&self.code, None).await),
            Operation::Leave => outcome(carol().client.leave(room).await),
            Operation::Invite => outcome(alice.invite(room, UserRef::Id(carol_id())).await),
            Operation::InvitationAccept | Operation::InvitationDecline => {
                // Each try answers an invitation of its own (or finds none: 404).
                let spare = alice
                    .create_room(&format!("invited {n}"), None)
                    .await
                    .unwrap();
                alice
                    .invite(spare.id, UserRef::Id(self.bob.user.id))
                    .await
                    .unwrap();
                let bob = &self.bob.client;
                outcome(match operation {
                    Operation::InvitationAccept => bob.accept_invitation(spare.id).await.map(drop),
                    _ => bob.decline_invitation(spare.id).await,
                })
            }
            Operation::DirectRoom => outcome(alice.direct_room(UserRef::Id(bob_id)).await),
            Operation::Send => outcome(
                alice
                    .post_message(room, "hello", Some(&format!("c{n}")))
                    .await,
            ),
            Operation::Edit => outcome(alice.edit_message(room, 1, &format!("edit {n}")).await),
            Operation::MessageDelete => {
                let posted = alice.post_message(room, "doomed", None).await.unwrap();
                outcome(alice.delete_message(room, posted.seq).await)
            }
            Operation::MarkRead => outcome(alice.mark_read(room, 1).await),
            Operation::Typing => self.typing(n).await,
            // Reporting again while one's report is open answers it again:
            // each try is charged all the same.
            Operation::Search => outcome(
                alice
                    .search(&palaver_protocol::rest::search::SearchQuery {
                        q: "hello".into(),
                        ..Default::default()
                    })
                    .await,
            ),
            Operation::Report => outcome(alice.report_message(room, 1, "spam").await),
            // Suspending again replaces the suspension: each try is an action.
            Operation::AdminAction => outcome(
                alice
                    .suspend_user(carol_id(), &format!("spam {n}"), None)
                    .await,
            ),
            Operation::AdminRead => outcome(alice.admin_users("", None, None).await),
            // Charged whether or not it changes anything: repeating one is
            // the flood.
            Operation::React => outcome(alice.react(room, 1, "👍").await),
            Operation::Unreact => outcome(alice.unreact(room, 1, "👍").await),
            // Only a message naming someone draws it (the send budget is off).
            Operation::Mention => outcome(
                alice
                    .post_message(room, &format!("@bob look {n}"), None)
                    .await,
            ),
            Operation::AttachmentUpload => outcome(
                alice
                    .upload_attachment(room, "note.txt", format!("note {n}"))
                    .await,
            ),
            Operation::AttachmentDownload => {
                outcome(alice.download_attachment("AAAAAAAAAAAAAAAAAAAAAA").await)
            }
            Operation::AttachmentThumbnail => {
                outcome(alice.download_thumbnail("AAAAAAAAAAAAAAAAAAAAAA").await)
            }
            Operation::SessionOpen => match self.alice.client.connect().await {
                Err(ClientError::Closed { code: 4501, .. }) => {
                    Outcome::Limited("rate_limited".into())
                }
                Err(other) => panic!("a session refused otherwise: {other}"),
                Ok(_) => Outcome::NotLimited,
            },
        }
    }

    /// Typing is a frame only: sent in a room of its own each time (a
    /// connection repeats typing in one room at most every 1.5 s), followed
    /// by a ping, so the pong says it went through.
    async fn typing(&self, n: usize) -> Outcome {
        let room = self
            .alice
            .client
            .create_room(&format!("typing {n}"), None)
            .await
            .unwrap();
        let mut ws = self.alice.connect().await;
        let typing = ClientFrame::Typing {
            room: room.id,
            reference: Some("t".into()),
        };
        ws.send(&typing).await.unwrap();
        let ping = ClientFrame::Ping {
            reference: Some("p".into()),
        };
        ws.send(&ping).await.unwrap();
        next_matching(&mut ws, |frame| match frame {
            ServerFrame::Error {
                code, reference, ..
            } if reference.as_deref() == Some("t") => Some(Outcome::Limited(code)),
            ServerFrame::Pong { .. } => Some(Outcome::NotLimited),
            _ => None,
        })
        .await
    }
}

#[tokio::test]
async fn every_operation_is_refused_once_its_own_budget_is_spent() {
    for operation in Operation::iter() {
        let scene = Scene::new(operation).await;
        let mut refused = None;
        for n in 0..TRIES {
            if let Outcome::Limited(code) = scene.attempt(operation, n).await {
                refused = Some(code);
                break;
            }
        }
        assert_eq!(
            refused.as_deref(),
            Some("rate_limited"),
            "{operation:?} was not refused after {TRIES} tries with its budgets at {BUDGET}"
        );
    }
}
