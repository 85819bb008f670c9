//! E-mail addresses, their verification, and password reset by mailed code,
//! against a real SMTP server.

use palaver_client::types::RegisterRequest;
use palaver_client::{ClientError, WsConnection};
use palaver_protocol::close_code;

use crate::helpers::*;

async fn register_with_email(app: &TestApp, username: &str, email: &str) {
    app.client
        .register_with(RegisterRequest {
            username: username.into(),
            password: PASSWORD.into(),
            display_name: None,
            email: Some(email.into()),
        })
        .await
        .unwrap();
}

/// Registers `username` with `email` and verifies it with the mailed code.
async fn verified_user(app: &TestApp, username: &str, email: &str) -> TestUser {
    register_with_email(app, username, email).await;
    let user = app.signup_existing(username).await;
    let code = app.mail.nth_to(email, 1).await.code();
    assert!(
        user.client
            .verify_email(&code)
            .await
            .unwrap()
            .email_verified
    );
    user
}

#[tokio::test]
async fn registering_with_an_address_mails_a_code_that_verifies_it() {
    let app = spawn_app().await;
    register_with_email(&app, "alice", "Alice@Example.COM").await;
    let alice = app.signup_existing("alice").await;
    let account = alice.client.account().await.unwrap();
    assert_eq!(account.email.as_deref(), Some("alice@example.com"));
    assert!(!account.email_verified);

    let mail = app.mail.nth_to("alice@example.com", 1).await;
    assert!(mail.subject().contains(&mail.code()), "{}", mail.text);
    let wrong = if mail.code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, code) = status_and_code(alice.client.verify_email(wrong).await);
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let verified = alice.client.verify_email(&mail.code()).await.unwrap();
    assert!(verified.email_verified);
    // Spent.
    assert_eq!(
        status_and_code(alice.client.verify_email(&mail.code()).await).0,
        403
    );
}

#[tokio::test]
async fn an_address_belongs_to_one_account_and_nobody_else_sees_it() {
    let app = spawn_app().await;
    register_with_email(&app, "alice", "alice@example.com").await;
    let taken = app
        .client
        .register_with(RegisterRequest {
            username: "mallory".into(),
            password: PASSWORD.into(),
            display_name: None,
            email: Some("ALICE@example.com".into()),
        })
        .await;
    assert_eq!(status_and_code(taken).0, 409);
    let bob = app.signup("bob").await;
    assert_eq!(
        status_and_code(bob.client.set_email("alice@example.com").await).0,
        409
    );
    let (status, _) = status_and_code(bob.client.set_email("not an address").await);
    assert_eq!(status, 422);

    let alice = app.signup_existing("alice").await;
    let profile: serde_json::Value = bob
        .client
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/users/{}", alice.user.id),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["username"], "alice");
    assert!(profile.get("email").is_none(), "{profile}");
}

#[tokio::test]
async fn a_new_address_is_unverified_until_its_own_code_and_the_old_code_stops_working() {
    let app = spawn_app().await;
    let alice = verified_user(&app, "alice", "alice@example.com").await;
    let moved = alice.client.set_email("alice@example.org").await.unwrap();
    assert_eq!(moved.email.as_deref(), Some("alice@example.org"));
    assert!(!moved.email_verified, "a new address starts unverified");
    let first_code = app.mail.nth_to("alice@example.org", 1).await.code();

    // Moved again before verifying: the code mailed to the previous address is dead.
    alice.client.set_email("alice@example.net").await.unwrap();
    let (status, _) = status_and_code(alice.client.verify_email(&first_code).await);
    assert_eq!(status, 403);
    let code = app.mail.nth_to("alice@example.net", 1).await.code();
    let verified = alice.client.verify_email(&code).await.unwrap();
    assert_eq!(verified.email.as_deref(), Some("alice@example.net"));
    assert!(verified.email_verified);
}

#[tokio::test]
async fn five_wrong_codes_end_the_code() {
    let app = spawn_app().await;
    register_with_email(&app, "alice", "alice@example.com").await;
    let alice = app.signup_existing("alice").await;
    let right = app.mail.nth_to("alice@example.com", 1).await.code();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        assert_eq!(
            status_and_code(alice.client.verify_email(wrong).await).0,
            403
        );
    }
    assert_eq!(
        status_and_code(alice.client.verify_email(&right).await).0,
        403,
        "the right code no longer works either"
    );
}

#[tokio::test]
async fn a_password_reset_by_mailed_code_ends_every_login_and_tells_the_address() {
    let app = spawn_app().await;
    let alice = verified_user(&app, "alice", "alice@example.com").await;
    let mut ws = alice.client.connect().await.unwrap();

    // By address, in any case.
    let accepted = app
        .client
        .request_password_reset("ALICE@example.com")
        .await
        .unwrap();
    let mail = app.mail.nth_to("alice@example.com", 2).await;
    assert!(mail.subject().contains("reset"), "{}", mail.text);
    let code = mail.code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, _) = status_and_code(app.client.confirm_password_reset("alice", wrong).await);
    assert_eq!(status, 403);
    let token = app
        .client
        .confirm_password_reset("alice", &code)
        .await
        .unwrap();
    assert!(token.expires_in > 0);
    assert_eq!(
        status_and_code(app.client.confirm_password_reset("alice", &code).await).0,
        403,
        "a code works once"
    );
    let (status, _) = status_and_code(
        app.client
            .complete_password_reset(&token.reset_token, "short")
            .await,
    );
    assert_eq!(status, 422);
    app.client
        .complete_password_reset(&token.reset_token, "a brand new password")
        .await
        .unwrap();

    let (close, _) = tokio::time::timeout(WAIT, ws.closed()).await.unwrap();
    assert_eq!(close, close_code::SESSION_ENDED);
    assert_eq!(status_and_code(alice.client.me().await).0, 401);
    assert_eq!(
        status_and_code(app.client.refresh(&alice.refresh_token).await).0,
        401
    );
    assert_eq!(
        status_and_code(app.client.login("alice", PASSWORD).await).0,
        401
    );
    app.client
        .login("alice", "a brand new password")
        .await
        .unwrap();
    let notice = app.mail.nth_to("alice@example.com", 3).await;
    assert!(notice.subject().contains("changed"), "{}", notice.text);
    assert_eq!(
        status_and_code(
            app.client
                .complete_password_reset(&token.reset_token, "yet another password")
                .await
        )
        .0,
        403,
        "a reset token works once"
    );
    // The answer said nothing about the account.
    let for_nobody = app.client.request_password_reset("nobody").await.unwrap();
    assert_eq!(accepted, for_nobody);
}

#[tokio::test]
async fn nobody_and_unverified_addresses_get_the_same_answer_and_no_mail() {
    let app = spawn_app().await;
    register_with_email(&app, "unverified", "unverified@example.com").await;
    app.mail.nth_to("unverified@example.com", 1).await;
    app.client
        .register("noaddress", PASSWORD, None)
        .await
        .unwrap();
    verified_user(&app, "carol", "carol@example.com").await;

    let answers = [
        app.client.request_password_reset("nobody").await.unwrap(),
        app.client
            .request_password_reset("nobody@example.com")
            .await
            .unwrap(),
        app.client
            .request_password_reset("unverified")
            .await
            .unwrap(),
        app.client
            .request_password_reset("noaddress")
            .await
            .unwrap(),
    ];
    assert!(answers.iter().all(|a| *a == answers[0]));
    // A reset that does mail, after the others: by then they were handled.
    app.client.request_password_reset("carol").await.unwrap();
    app.mail.nth_to("carol@example.com", 2).await;
    assert_eq!(
        app.mail.count_to("unverified@example.com"),
        1,
        "only its verification"
    );
    assert_eq!(app.mail.all().len(), 3, "{:?}", app.mail.all());
    // Nothing to confirm for them either: the same refusal as a wrong code.
    for login in ["nobody", "unverified", "noaddress"] {
        let (status, _) = status_and_code(app.client.confirm_password_reset(login, "123456").await);
        assert_eq!(status, 403, "{login}");
    }
}

#[tokio::test]
async fn a_suspended_account_gets_no_reset_code_and_cannot_finish_a_reset() {
    let app = spawn_app().await;
    let root = app.signup("root").await;
    app.grant_admin("root").await;
    let alice = verified_user(&app, "alice", "alice@example.com").await;
    verified_user(&app, "carol", "carol@example.com").await;

    // A reset begun before the suspension…
    app.client.request_password_reset("alice").await.unwrap();
    let code = app.mail.nth_to("alice@example.com", 2).await.code();
    let token = app
        .client
        .confirm_password_reset("alice", &code)
        .await
        .unwrap();
    root.client
        .suspend_user(alice.id(), "spam", None)
        .await
        .unwrap();
    // …does not finish after it: the password stays.
    let (status, _) = status_and_code(
        app.client
            .complete_password_reset(&token.reset_token, "a brand new password")
            .await,
    );
    assert_eq!(status, 403);
    root.client.unsuspend_user(alice.id(), None).await.unwrap();
    app.client.login("alice", PASSWORD).await.unwrap();
    root.client
        .suspend_user(alice.id(), "spam", None)
        .await
        .unwrap();

    // A suspended account is answered as any other, and mailed nothing.
    let asked = app.client.request_password_reset("alice").await.unwrap();
    assert_eq!(
        asked,
        app.client.request_password_reset("nobody").await.unwrap()
    );
    // A reset that does mail, after: by then alice's was handled.
    app.client.request_password_reset("carol").await.unwrap();
    app.mail.nth_to("carol@example.com", 2).await;
    assert_eq!(
        app.mail.count_to("alice@example.com"),
        2,
        "{:?}",
        app.mail.all()
    );
}

#[tokio::test]
async fn resend_mails_only_for_a_reset_asked_for_and_not_within_the_cool_down() {
    let app = spawn_app().await;
    verified_user(&app, "alice", "alice@example.com").await;
    verified_user(&app, "bob", "bob@example.com").await;
    app.client.resend_password_reset("alice").await.unwrap();
    app.client.request_password_reset("bob").await.unwrap();
    app.mail.nth_to("bob@example.com", 2).await;
    assert_eq!(
        app.mail.count_to("alice@example.com"),
        1,
        "no reset was asked for"
    );

    app.client.request_password_reset("alice").await.unwrap();
    let first = app.mail.nth_to("alice@example.com", 2).await.code();
    app.client.resend_password_reset("alice").await.unwrap();
    app.client.resend_password_reset("bob").await.unwrap();
    app.client.request_password_reset("carol").await.unwrap();
    verified_user(&app, "dave", "dave@example.com").await;
    assert_eq!(
        app.mail.count_to("alice@example.com"),
        2,
        "within the cool-down"
    );
    // The code mailed first still works.
    app.client
        .confirm_password_reset("alice", &first)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_connection_opened_with_a_reset_accounts_old_token_is_refused() {
    let app = spawn_app().await;
    let alice = verified_user(&app, "alice", "alice@example.com").await;
    app.client.request_password_reset("alice").await.unwrap();
    let code = app.mail.nth_to("alice@example.com", 2).await.code();
    let token = app
        .client
        .confirm_password_reset("alice", &code)
        .await
        .unwrap();
    app.client
        .complete_password_reset(&token.reset_token, "a brand new password")
        .await
        .unwrap();
    let refused = WsConnection::connect(
        &app.base_url,
        palaver_client::WsAuth::Header(alice.access_token.clone()),
    )
    .await;
    assert!(
        matches!(refused, Err(ClientError::Closed { code, .. }) if code == close_code::SESSION_ENDED),
        "{:?}",
        refused.map(|_| ())
    );
}

#[tokio::test]
async fn a_code_past_its_lifetime_no_longer_works() {
    // One second, so the test can outlive it; the default is 300.
    let app =
        spawn_app_with(|settings| settings.accounts.code_ttl = std::time::Duration::from_secs(1))
            .await;
    register_with_email(&app, "alice", "alice@example.com").await;
    let alice = app.signup_existing("alice").await;
    let verification = app.mail.nth_to("alice@example.com", 1).await.code();
    // The code was stored before its mail went out: it has expired once a
    // second has passed since the mail arrived.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(
        status_and_code(alice.client.verify_email(&verification).await).0,
        403,
        "an expired verification code"
    );

    // A fresh one works (this test's clock is not the problem).
    alice.client.set_email("alice@example.com").await.unwrap();
    let fresh = app.mail.nth_to("alice@example.com", 2).await.code();
    assert!(
        alice
            .client
            .verify_email(&fresh)
            .await
            .unwrap()
            .email_verified
    );

    app.client.request_password_reset("alice").await.unwrap();
    let reset = app.mail.nth_to("alice@example.com", 3).await.code();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(
        status_and_code(app.client.confirm_password_reset("alice", &reset).await).0,
        403,
        "an expired reset code"
    );
}

/// A reset confirmation from client address `from` (through 127.0.0.1, a
/// trusted proxy): its status.
async fn confirm_from(app: &TestApp, from: &str, login: &str, code: &str) -> u16 {
    reqwest::Client::new()
        .post(format!(
            "{}/api/v1/auth/password-reset/confirm",
            app.base_url
        ))
        .header("x-forwarded-for", from)
        .json(&serde_json::json!({"login": login, "code": code}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn behind_a_proxy(settings: &mut palaver_server::Settings) {
    settings.http.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

/// `alice` with a verified address and a live reset code: the code and a
/// wrong one.
async fn alice_with_a_reset_code(app: &TestApp) -> (String, String) {
    verified_user(app, "alice", "alice@example.com").await;
    app.client.request_password_reset("alice").await.unwrap();
    let right = app.mail.nth_to("alice@example.com", 2).await.code();
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    (right, wrong.to_owned())
}

#[tokio::test]
async fn a_strangers_wrong_guesses_spend_the_strangers_tries_not_the_owners_code() {
    let app = spawn_app_with(behind_a_proxy).await;
    let (right, wrong) = alice_with_a_reset_code(&app).await;
    for _ in 0..5 {
        assert_eq!(
            confirm_from(&app, "203.0.113.5", "alice", &wrong).await,
            403
        );
    }
    // The stranger's tries at this code are spent: not even the right code
    // is compared for them.
    assert_eq!(
        confirm_from(&app, "203.0.113.5", "alice", &right).await,
        403
    );
    // The owner's code still works from the owner's address.
    assert_eq!(
        confirm_from(&app, "198.51.100.7", "alice", &right).await,
        200
    );
}

#[tokio::test]
async fn a_reset_code_ends_after_its_own_ceiling_of_tries_from_every_address() {
    let app = spawn_app_with(behind_a_proxy).await;
    let (right, wrong) = alice_with_a_reset_code(&app).await;
    // Twenty tries in all (five from each of four addresses) end the code.
    for stranger in 1..=4 {
        for _ in 0..5 {
            let from = format!("203.0.113.{stranger}");
            assert_eq!(confirm_from(&app, &from, "alice", &wrong).await, 403);
        }
    }
    assert_eq!(
        confirm_from(&app, "198.51.100.7", "alice", &right).await,
        403
    );
}

#[tokio::test]
async fn switching_to_a_decoy_and_back_mails_the_address_no_fresh_code() {
    let app = spawn_app().await;
    register_with_email(&app, "mallory", "victim@example.com").await;
    let mallory = app.signup_existing("mallory").await;
    app.mail.nth_to("victim@example.com", 1).await;
    for decoy in 0..4 {
        mallory
            .client
            .set_email(&format!("decoy{decoy}@example.com"))
            .await
            .unwrap();
        let back = mallory
            .client
            .set_email("victim@example.com")
            .await
            .unwrap();
        assert_eq!(back.email.as_deref(), Some("victim@example.com"));
    }
    // Queued after all of those: once it is here, they were handled.
    mallory.client.set_email("last@example.com").await.unwrap();
    app.mail.nth_to("last@example.com", 1).await;
    assert_eq!(
        app.mail.count_to("victim@example.com"),
        1,
        "the address's cool-down survived the switches"
    );
}

#[tokio::test]
async fn asking_about_taken_addresses_draws_from_the_accounts_daily_allowance() {
    let app = spawn_app().await;
    register_with_email(&app, "alice", "alice@example.com").await;
    let bob = app.signup("bob").await;
    for _ in 0..10 {
        assert_eq!(
            status_and_code(bob.client.set_email("alice@example.com").await).0,
            409
        );
    }
    let (status, code) = status_and_code(bob.client.set_email("alice@example.com").await);
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    // The allowance is the account's, whatever the address.
    assert_eq!(
        status_and_code(bob.client.set_email("bob@example.com").await).0,
        429
    );
    assert_eq!(app.mail.count_to("bob@example.com"), 0);
}

#[tokio::test]
async fn one_address_gets_at_most_its_daily_mail_whichever_accounts_ask() {
    let app = spawn_app().await;
    for i in 0..11 {
        let user = app.signup(&format!("user{i}")).await;
        user.client.set_email("victim@example.com").await.unwrap();
        // Gives the address up for the next account.
        user.client
            .set_email(&format!("away{i}@example.com"))
            .await
            .unwrap();
    }
    app.mail.nth_to("away10@example.com", 1).await;
    assert_eq!(app.mail.count_to("victim@example.com"), 10);
}

#[tokio::test]
async fn spellings_the_mailer_reads_otherwise_are_refused_and_case_is_one_address() {
    let app = spawn_app().await;
    register_with_email(&app, "alice", "Victim@EXAMPLE.com").await;
    let bob = app.signup("bob").await;
    for spelling in [
        "<victim@example.com>",
        "Victim <victim@example.com>",
        "a)b@example.com",
        "\"victim\"@example.com",
    ] {
        assert_eq!(
            status_and_code(bob.client.set_email(spelling).await).0,
            422,
            "{spelling}"
        );
    }
    assert_eq!(
        status_and_code(bob.client.set_email("victim@example.com").await).0,
        409,
        "one address, whatever its case"
    );
    app.mail.nth_to("victim@example.com", 1).await;
    assert_eq!(app.mail.all().len(), 1, "{:?}", app.mail.all());
}

#[tokio::test]
async fn a_refused_reset_confirmation_takes_as_long_whether_or_not_the_account_exists() {
    let app = spawn_app_with(behind_a_proxy).await;
    let (_, wrong) = alice_with_a_reset_code(&app).await;
    verified_user(&app, "bob", "bob@example.com").await;
    // No account, an account without a code, an account with a live code:
    // each refusal waits out the same floor, so none answers sooner.
    for (n, login) in ["nobody", "bob", "alice"].into_iter().enumerate() {
        let started = std::time::Instant::now();
        let status = confirm_from(&app, &format!("192.0.2.{n}"), login, &wrong).await;
        assert_eq!(status, 403, "{login}");
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(50),
            "{login}: refused after {:?}",
            started.elapsed()
        );
    }
}
