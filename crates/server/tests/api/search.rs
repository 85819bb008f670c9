//! `GET /api/v1/search`: messages of the caller's rooms only, best match
//! first, in step with every edit, deletion and erasure, on both stores.

use palaver_client::grpc::proto;
use palaver_client::types::search::{SearchPage, SearchQuery};
use palaver_client::types::Message;

use crate::helpers::*;

fn query(q: &str) -> SearchQuery {
    SearchQuery {
        q: q.into(),
        ..SearchQuery::default()
    }
}

async fn search(user: &TestUser, query: SearchQuery) -> SearchPage {
    user.client.search(&query).await.unwrap()
}

/// (room, seq) of each result, in order.
fn found(page: &SearchPage) -> Vec<(i64, u64)> {
    (page.results.iter())
        .map(|result| (result.message.room_id, result.message.seq))
        .collect()
}

async fn post(user: &TestUser, room: i64, body: &str) -> Message {
    user.client.post_message(room, body, None).await.unwrap()
}

#[tokio::test]
async fn only_the_callers_rooms_are_searched_best_match_first_with_the_words_marked() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let ours = app.room_with(&alice, &[&bob]).await;
    let theirs = app.room_with(&carol, &[]).await;
    let once = post(
        &bob,
        ours.id,
        "we will deploy the new build on the staging servers tonight",
    )
    .await;
    let thrice = post(&alice, ours.id, "Deploy, deploy, DEPLOY!").await;
    post(&alice, ours.id, "lunch at noon?").await;
    post(&carol, theirs.id, "deploy the secret project").await;

    let page = search(&alice, query("deploy")).await;
    assert_eq!(
        found(&page),
        [(ours.id, thrice.seq), (ours.id, once.seq)],
        "the message saying it most comes first; carol's room is not alice's"
    );
    assert!(page.next.is_none());
    let parts = &page.results[0].parts;
    let text: String = parts.iter().map(|part| part.text.as_str()).collect();
    assert_eq!(text, "Deploy, deploy, DEPLOY!");
    let marked: Vec<&str> = (parts.iter())
        .filter(|part| part.matched)
        .map(|part| part.text.as_str())
        .collect();
    assert_eq!(marked, ["Deploy", "deploy", "DEPLOY"]);

    // Every word must be there; a word ending in * matches what it starts.
    assert_eq!(
        found(&search(&alice, query("deploy staging")).await),
        [(ours.id, once.seq)]
    );
    assert_eq!(
        found(&search(&alice, query("stag*")).await),
        [(ours.id, once.seq)]
    );
    assert!(search(&alice, query("stag")).await.results.is_empty());

    // Carol finds her own room's message, and only it.
    let theirs_found = found(&search(&carol, query("deploy")).await);
    assert_eq!(theirs_found.len(), 1);
    assert_eq!(theirs_found[0].0, theirs.id);

    // A room named that the caller is not in is a room that does not exist.
    let mut in_theirs = query("deploy");
    in_theirs.room = Some(theirs.id);
    let mut in_none = query("deploy");
    in_none.room = Some(987_654_321);
    let refusal = |q: SearchQuery| {
        let client = alice.client.clone();
        async move {
            let err = client.search(&q).await.unwrap_err();
            (err.status(), err.code().map(str::to_owned), err.to_string())
        }
    };
    let stranger = refusal(in_theirs).await;
    assert_eq!(stranger.0, Some(404));
    assert_eq!(stranger, refusal(in_none).await);
    let mut in_ours = query("deploy");
    in_ours.room = Some(ours.id);
    assert_eq!(search(&alice, in_ours).await.results.len(), 2);

    // Leaving a room leaves its messages behind.
    alice.client.leave(ours.id).await.unwrap();
    assert!(search(&alice, query("deploy")).await.results.is_empty());
}

#[tokio::test]
async fn edits_deletions_and_erasure_change_what_is_found_at_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let typo = post(&alice, room.id, "meet at the harbuor").await;
    let doomed = post(&alice, room.id, "the harbour gate code is 4711").await;
    let bobs = post(&bob, room.id, "harbour at six, then").await;

    assert!(search(&alice, query("harbour")).await.results.len() == 2);
    alice
        .client
        .edit_message(room.id, typo.seq, "meet at the harbour")
        .await
        .unwrap();
    assert!(search(&alice, query("harbuor")).await.results.is_empty());
    assert_eq!(search(&alice, query("harbour")).await.results.len(), 3);

    alice
        .client
        .delete_message(room.id, doomed.seq)
        .await
        .unwrap();
    assert!(search(&alice, query("4711")).await.results.is_empty());
    let left = found(&search(&alice, query("harbour")).await);
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&(room.id, doomed.seq)));

    // A deleted room's messages go with it, and a room made after it does
    // not inherit them.
    let doomed_room = app.room_with(&alice, &[]).await;
    post(&alice, doomed_room.id, "zebra crossing").await;
    assert_eq!(search(&alice, query("zebra")).await.results.len(), 1);
    alice.client.delete_room(doomed_room.id).await.unwrap();
    assert!(search(&alice, query("zebra")).await.results.is_empty());
    let next_room = app.room_with(&alice, &[]).await;
    post(&alice, next_room.id, "no animals here").await;
    assert!(search(&alice, query("zebra")).await.results.is_empty());

    // Bob erases what he wrote as he deletes his account.
    bob.client.delete_account(PASSWORD, true).await.unwrap();
    let left = found(&search(&alice, query("harbour")).await);
    assert_eq!(left, [(room.id, typo.seq)]);
    assert!(!left.contains(&(room.id, bobs.seq)));
}

#[tokio::test]
async fn results_page_by_cursor_and_stop_at_a_time() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    let mut posted = Vec::new();
    for n in 0..25 {
        posted.push(post(&alice, room.id, &format!("status report {n}")).await);
    }
    let mut seen = Vec::new();
    let mut page_query = query("report");
    page_query.limit = Some(10);
    let mut pages = 0;
    loop {
        let page = search(&alice, page_query.clone()).await;
        pages += 1;
        assert!(page.results.len() <= 10);
        seen.extend(found(&page));
        match page.next {
            Some(next) => page_query.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25, "every match once");

    // Only what was sent before a time.
    let cut = &posted[10];
    let mut older = query("report");
    older.before = Some(cut.created_at.clone());
    older.limit = Some(50);
    let older = found(&search(&alice, older).await);
    assert!(!older.is_empty() && older.len() <= 10, "{older:?}");
    assert!(older.iter().all(|(_, seq)| *seq < cut.seq));
}

#[tokio::test]
async fn queries_that_would_cost_the_index_a_full_read_are_refused() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    app.room_with(&alice, &[]).await;
    let too_many = "one two three four five six seven eight nine";
    let long = "word ".repeat(41);
    for q in ["*ploy", "de*ploy", "d*", "", " ,;", too_many, long.as_str()] {
        let err = alice.client.search(&query(q)).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(422), Some("invalid_input")),
            "{q:?}"
        );
    }
    for (limit, cursor, before) in [
        (Some(51), None, None),
        (Some(0), None, None),
        (None, Some("ten"), None),
        (None, Some("500"), None),
        (None, None, Some("yesterday")),
    ] {
        let mut q = query("deploy");
        q.limit = limit;
        q.cursor = cursor.map(Into::into);
        q.before = before.map(Into::into);
        let err = alice.client.search(&q).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(422), Some("invalid_input")),
            "{limit:?} {cursor:?} {before:?}"
        );
    }
    // The stores' own query syntax is only words here.
    for q in [
        "deploy OR x",
        "NEAR(a b)",
        "a & b | !c",
        "\"deploy\"",
        "a:b",
    ] {
        alice.client.search(&query(q)).await.unwrap();
    }
}

#[tokio::test]
async fn grpc_search_answers_as_rest_does() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let carol = app.signup("carol").await;
    let ours = app.room_with(&alice, &[]).await;
    let theirs = app.room_with(&carol, &[]).await;
    let posted = post(&alice, ours.id, "Deploy tonight").await;
    post(&carol, theirs.id, "deploy elsewhere").await;
    let grpc = alice.grpc().await;
    let request = |query: &str, room: Option<i64>| proto::SearchRequest {
        query: query.into(),
        room_id: room,
        before: None,
        cursor: None,
        limit: 0,
    };

    let found = grpc
        .messages()
        .search(request("deploy", None))
        .await
        .unwrap()
        .into_inner();
    let rest = search(&alice, query("deploy")).await;
    assert_eq!(found.results.len(), 1);
    let hit = &found.results[0];
    let message = hit.message.as_ref().unwrap();
    assert_eq!((message.room_id, message.seq), (ours.id, posted.seq));
    let parts: Vec<(&str, bool)> = (hit.parts.iter())
        .map(|part| (part.text.as_str(), part.matched))
        .collect();
    let rest_parts: Vec<(&str, bool)> = (rest.results[0].parts.iter())
        .map(|part| (part.text.as_str(), part.matched))
        .collect();
    assert_eq!(parts, rest_parts);
    assert_eq!(parts, [("Deploy", true), (" tonight", false)]);

    let stranger = grpc
        .messages()
        .search(request("deploy", Some(theirs.id)))
        .await
        .unwrap_err();
    let missing = grpc
        .messages()
        .search(request("deploy", Some(987_654_321)))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), tonic::Code::NotFound);
    assert_eq!(
        (stranger.code(), stranger.message()),
        (missing.code(), missing.message())
    );
    let wildcard = grpc
        .messages()
        .search(request("*ploy", None))
        .await
        .unwrap_err();
    assert_eq!(wildcard.code(), tonic::Code::InvalidArgument);
}
