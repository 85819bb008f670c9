//! Attachments over REST: uploads streamed within their caps, downloads
//! for those who may read them only (anyone else learns nothing), served
//! as their sniffed type with the headers that keep a file from acting as
//! a page, and orphans collected; on both stores.

use std::time::Duration;

use palaver_client::types::attachments::Attachment;
use reqwest::header;

use crate::helpers::*;

/// A 3×2 PNG's signature and header chunk: enough to be sniffed and measured.
const PNG: [u8; 33] = [
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0,
    3, 0, 0, 0, 2, 8, 6, 0, 0, 0, 0x1d, 0x8f, 0xec, 0x79,
];

pub(crate) async fn upload(user: &TestUser, room: i64, name: &str, bytes: &[u8]) -> Attachment {
    user.client
        .upload_attachment(room, name, bytes.to_vec())
        .await
        .unwrap()
}

/// A raw download request, headers included.
fn download(user: &TestUser, id: &str) -> reqwest::RequestBuilder {
    user.client
        .request(reqwest::Method::GET, &format!("/api/v1/attachments/{id}"))
}

/// The files kept under the node's attachments directory.
pub(crate) fn stored_files(app: &TestApp) -> usize {
    let root = app.data_dir().join("attachments");
    let mut count = 0;
    for dir in std::fs::read_dir(root).unwrap() {
        let dir = dir.unwrap().path();
        count += std::fs::read_dir(dir).unwrap().count();
    }
    count
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn an_image_is_stored_typed_by_its_bytes_and_served_inline_with_every_header() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    // The declared type is ignored: the bytes say PNG.
    let attachment = alice
        .client
        .request(
            reqwest::Method::POST,
            &format!(
                "/api/v1/rooms/{}/attachments?name=dot%20%22x%22.png",
                room.id
            ),
        )
        .header(header::CONTENT_TYPE, "text/html")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(attachment.status(), 201);
    let attachment: Attachment = attachment.json().await.unwrap();
    assert_eq!(attachment.name, "dot \"x\".png");
    assert_eq!(attachment.size, PNG.len() as u64);
    assert_eq!(attachment.content_type, "image/png");
    assert_eq!(attachment.sha256, sha256_hex(&PNG));
    assert_eq!((attachment.width, attachment.height), (Some(3), Some(2)));
    assert_eq!(attachment.id.len(), 22);

    let response = download(&alice, &attachment.id).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("etag"), format!("\"{}\"", attachment.sha256));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-security-policy").starts_with("sandbox"));
    assert_eq!(
        header("content-disposition"),
        "inline; filename=\"dot _x_.png\"; filename*=UTF-8''dot%20%22x%22.png"
    );
    assert_eq!(header("accept-ranges"), "bytes");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);

    let part = download(&alice, &attachment.id)
        .header(header::RANGE, "bytes=1-3")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 1-3/33");
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"PNG");
    let past = download(&alice, &attachment.id)
        .header(header::RANGE, "bytes=33-")
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], "bytes */33");
    let cached = download(&alice, &attachment.id)
        .header(header::IF_NONE_MATCH, format!("\"{}\"", attachment.sha256))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
}

#[tokio::test]
async fn markup_is_never_served_inline_whatever_it_was_declared_as() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    let page = b"<html><script>alert(document.cookie)</script></html>";
    let attachment = alice
        .client
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/rooms/{}/attachments?name=cat.png", room.id),
        )
        .header(header::CONTENT_TYPE, "image/png")
        .body(page.to_vec())
        .send()
        .await
        .unwrap()
        .json::<Attachment>()
        .await
        .unwrap();
    assert_ne!(attachment.content_type, "image/png");
    assert_eq!(attachment.width, None);
    let response = download(&alice, &attachment.id).send().await.unwrap();
    let headers = response.headers();
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;"),
        "{headers:?}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // Opened anyway, it is a sandboxed page that runs nothing.
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("sandbox;") && policy.contains("default-src 'none'"));
}

#[tokio::test]
async fn no_one_else_can_read_an_upload_or_learn_that_it_exists() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let attachment = upload(&alice, room.id, "plan.txt", b"the plan").await;

    let missing = status_and_code(
        bob.client
            .download_attachment("AAAAAAAAAAAAAAAAAAAAAA")
            .await,
    );
    assert_eq!(missing, (404, "not_found".into()));
    // A stranger to the room, and (until a message carries it) another
    // member, get exactly what a file that does not exist gets.
    for reader in [&carol, &bob] {
        let refused = status_and_code(reader.client.download_attachment(&attachment.id).await);
        assert_eq!(refused, missing);
    }
    // Nor may a stranger upload into the room.
    let refused = status_and_code(
        carol
            .client
            .upload_attachment(room.id, "x.txt", b"x".to_vec())
            .await,
    );
    assert_eq!(refused, (404, "not_found".into()));
    let odd = status_and_code(
        alice
            .client
            .download_attachment("..%2F..%2Fetc%2Fpasswd")
            .await,
    );
    assert_eq!(odd.0, 404); // The refusal, as every answer, states its type and nothing sniffs it.
    let refused = download(&carol, &attachment.id).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn bad_names_and_empty_bodies_are_refused() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    for name in [
        "",
        "a/b.txt",
        "line\nbreak",
        "gnp\u{202E}.exe",
        "a\\b.txt",
        &"x".repeat(256),
        // The rules of every name others read, as for a room's name.
        "report\u{2028}invoice.pdf",
        "\u{200F}cod.exe",
        "\u{200B}\u{3164}",
        " \u{00A0} ",
    ] {
        let refused = alice
            .client
            .upload_attachment(room.id, name, b"x".to_vec())
            .await;
        assert_eq!(
            status_and_code(refused),
            (422, "invalid_input".into()),
            "{name:?}"
        );
    }
    let empty = alice
        .client
        .upload_attachment(room.id, "e.txt", Vec::new())
        .await;
    assert_eq!(status_and_code(empty), (422, "invalid_input".into()));
    assert_eq!(stored_files(&app), 0);
}

#[tokio::test]
async fn an_oversized_upload_is_refused_whether_declared_or_streamed_and_leaves_nothing() {
    let app = spawn_app_with(|settings| settings.attachments.max_bytes = 1000).await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    let declared = alice
        .client
        .upload_attachment(room.id, "big.bin", vec![7u8; 1001])
        .await;
    assert_eq!(status_and_code(declared), (413, "too_large".into()));
    // No length given: refused as the bytes pass the cap.
    let chunks = futures::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 100]))),
    );
    let streamed = alice
        .client
        .upload_attachment(room.id, "big.bin", reqwest::Body::wrap_stream(chunks))
        .await;
    assert_eq!(status_and_code(streamed), (413, "too_large".into()));
    upload(&alice, room.id, "fits.bin", &[1u8; 1000]).await;
    assert_eq!(stored_files(&app), 1);
}

/// A client that writes its whole body before it reads the answer reads the
/// refusal, not a reset: the node reads what is left of a refused body while
/// it answers (closing with bytes unread would make the kernel reset the
/// connection under the client's writes).
#[tokio::test]
async fn a_client_that_sends_a_refused_upload_whole_reads_the_refusal() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CAP: u64 = 8 << 20;
    let app = spawn_app_with(|settings| settings.attachments.max_bytes = CAP).await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    let stranger = app.signup("stranger").await;
    // Declared past the cap (refused before a byte is read), and refused
    // for the room (not the stranger's): far more than the kernel's buffers
    // hold is still to come in both.
    for (user, length, status) in [(&alice, CAP + 1, "413"), (&stranger, CAP, "404")] {
        let addr = app.base_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/v1/rooms/{}/attachments?name=big.bin HTTP/1.1\r\nhost: palaver\r\n\
             authorization: Bearer {}\r\ncontent-length: {length}\r\n\r\n",
            room.id, user.access_token
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![7u8; 64 << 10];
        let mut left = length as usize;
        while left > 0 {
            let n = left.min(chunk.len());
            tokio::time::timeout(WAIT, stream.write_all(&chunk[..n]))
                .await
                .expect("the node reads the body")
                .expect("the body is written whole, not reset");
            left -= n;
        }
        let mut answer = vec![0u8; 12];
        tokio::time::timeout(WAIT, stream.read_exact(&mut answer))
            .await
            .expect("answered")
            .unwrap();
        assert_eq!(answer, format!("HTTP/1.1 {status}").into_bytes());
    }
    assert_eq!(stored_files(&app), 0);
}

#[tokio::test]
async fn an_uploader_cannot_store_past_their_quota() {
    let app = spawn_app_with(|settings| settings.attachments.quota_bytes = 100).await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    upload(&alice, room.id, "one.bin", &[1u8; 60]).await;
    let over = alice
        .client
        .upload_attachment(room.id, "two.bin", vec![2u8; 60])
        .await;
    assert_eq!(status_and_code(over), (413, "too_large".into()));
    // The quota is alice's: bob's uploads do not count against it.
    upload(&bob, room.id, "bobs.bin", &[3u8; 60]).await;
    upload(&alice, room.id, "three.bin", &[4u8; 40]).await;
    assert_eq!(stored_files(&app), 3);

    // At her quota, an upload is refused before its body is read: the node
    // answers while the client still holds back all but a few bytes.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/rooms/{}/attachments?name=four.bin HTTP/1.1\r\nhost: palaver\r\n\
         authorization: Bearer {}\r\ncontent-length: 90\r\n\r\nabc",
        room.id, alice.access_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(WAIT, stream.read_exact(&mut answer))
        .await
        .expect("answered before the body came")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
}

#[tokio::test]
async fn an_upload_no_message_claims_is_collected() {
    let app = spawn_app_with(|settings| {
        settings.attachments.claim_within = Duration::from_secs(1);
        settings.attachments.collect_every = Duration::from_millis(100);
    })
    .await;
    let alice = app.signup("alice").await;
    let room = app.room_with(&alice, &[]).await;
    let attachment = upload(&alice, room.id, "lost.txt", b"forgotten").await;
    assert_eq!(stored_files(&app), 1);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let read = alice.client.download_attachment(&attachment.id).await;
        if read
            .is_err_and(|err| matches!(err, palaver_client::ClientError::Api { status: 404, .. }))
            && stored_files(&app) == 0
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the unclaimed upload was not collected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `check` holds (the collector runs on its own clock).
pub(crate) async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn refused_404(result: palaver_client::Result<reqwest::Response>) -> bool {
    matches!(
        result,
        Err(palaver_client::ClientError::Api { status: 404, .. })
    )
}

#[tokio::test]
async fn a_message_carries_its_senders_uploads_to_every_member_and_no_one_else() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let carol = app.signup("carol").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let image = upload(&alice, room.id, "dot.png", &PNG).await;
    let notes = upload(&alice, room.id, "notes.txt", b"the notes").await;

    let ids = vec![image.id.clone(), notes.id.clone()];
    let posted = alice
        .client
        .post_with_attachments(room.id, "two files", &ids)
        .await
        .unwrap();
    let carried: Vec<&str> = posted.attachments.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(carried, [image.id.as_str(), notes.id.as_str()]);
    assert_eq!(posted.attachments[0], image);

    let history = bob
        .client
        .history(room.id, &Default::default())
        .await
        .unwrap();
    let shown = history
        .messages
        .iter()
        .find(|m| m.seq == posted.seq)
        .unwrap();
    assert_eq!(shown.attachments, posted.attachments);
    let read = bob.client.download_attachment(&notes.id).await.unwrap();
    assert_eq!(read.bytes().await.unwrap().as_ref(), b"the notes");

    let missing = status_and_code(
        carol
            .client
            .download_attachment("AAAAAAAAAAAAAAAAAAAAAA")
            .await,
    );
    let refused = status_and_code(carol.client.download_attachment(&notes.id).await);
    assert_eq!(refused, missing);
    assert_eq!(refused.0, 404);
}

#[tokio::test]
async fn only_the_uploader_may_attach_an_upload_only_in_its_room_and_only_once() {
    let app = spawn_app().await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let other = app.room_with(&alice, &[&bob]).await;
    let upload = upload(&alice, room.id, "mine.txt", b"mine").await;
    let ids = vec![upload.id.clone()];

    let by_bob = bob
        .client
        .post_with_attachments(room.id, "stolen", &ids)
        .await;
    assert_eq!(status_and_code(by_bob), (404, "not_found".into()));
    let elsewhere = alice
        .client
        .post_with_attachments(other.id, "moved", &ids)
        .await;
    assert_eq!(status_and_code(elsewhere), (404, "not_found".into()));
    alice
        .client
        .post_with_attachments(room.id, "mine", &ids)
        .await
        .unwrap();
    let again = alice
        .client
        .post_with_attachments(room.id, "mine again", &ids)
        .await;
    assert_eq!(status_and_code(again), (404, "not_found".into()));
    // A refused message is not stored: the room holds the one message.
    let history = alice
        .client
        .history(room.id, &Default::default())
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 1);

    let eleven: Vec<String> = (0..11).map(|n| format!("{n:0>22}")).collect();
    let too_many = alice
        .client
        .post_with_attachments(room.id, "many", &eleven)
        .await;
    assert_eq!(status_and_code(too_many), (422, "invalid_input".into()));
    // Listing it twice is listing it once: already carried, so refused.
    let twice = vec![upload.id.clone(), upload.id.clone()];
    let repeated = alice
        .client
        .post_with_attachments(room.id, "twice", &twice)
        .await;
    assert_eq!(status_and_code(repeated), (404, "not_found".into()));
    let odd = vec!["../../etc/passwd".to_owned()];
    let malformed = alice
        .client
        .post_with_attachments(room.id, "odd", &odd)
        .await;
    assert_eq!(status_and_code(malformed), (404, "not_found".into()));
}

#[tokio::test]
async fn deleting_a_message_removes_its_files() {
    let app = spawn_app_with(|settings| {
        settings.attachments.collect_every = Duration::from_millis(100);
    })
    .await;
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let kept = upload(&alice, room.id, "kept.txt", b"kept").await;
    let gone = upload(&alice, room.id, "gone.txt", b"gone").await;
    alice
        .client
        .post_with_attachments(room.id, "kept", std::slice::from_ref(&kept.id))
        .await
        .unwrap();
    let message = alice
        .client
        .post_with_attachments(room.id, "gone", std::slice::from_ref(&gone.id))
        .await
        .unwrap();
    alice
        .client
        .delete_message(room.id, message.seq)
        .await
        .unwrap();
    // At once unreadable, to its sender too; then its file is removed.
    assert!(refused_404(
        alice.client.download_attachment(&gone.id).await
    ));
    assert!(refused_404(bob.client.download_attachment(&gone.id).await));
    eventually("the deleted message's file was not removed", async || {
        stored_files(&app) == 1
    })
    .await;
    let history = bob
        .client
        .history(room.id, &Default::default())
        .await
        .unwrap();
    let deleted = history
        .messages
        .iter()
        .find(|m| m.seq == message.seq)
        .unwrap();
    assert!(deleted.attachments.is_empty());
    let read = bob.client.download_attachment(&kept.id).await.unwrap();
    assert_eq!(read.bytes().await.unwrap().as_ref(), b"kept");
}

#[tokio::test]
async fn every_real_time_transport_sends_attachments_and_shows_them_in_message_frames() {
    use palaver_client::frames::{ClientFrame, ServerFrame};

    use crate::live::EVERY;

    for via in EVERY {
        let app = spawn_app().await;
        let alice = app.signup("alice").await;
        let bob = app.signup("bob").await;
        let carol = app.signup("carol").await;
        let room = app.room_with(&alice, &[&bob]).await;
        let file = upload(&alice, room.id, "dot.png", &PNG).await;
        let mut at_alice = alice.live(&app, via, None).await;
        let mut at_bob = bob.live(&app, via, None).await;
        at_alice
            .send(&ClientFrame::Send {
                room: room.id,
                body: "a picture".into(),
                client_id: Some("p-1".into()),
                reply_to: None,
                attachments: vec![file.id.clone()],
            })
            .await;
        assert_eq!(
            next_ack(&mut at_alice).await,
            (Some("p-1".into()), 1),
            "{via:?}"
        );
        let carried = next_matching(&mut at_bob, |frame| match frame {
            ServerFrame::Message { attachments, .. } => Some(attachments),
            _ => None,
        })
        .await;
        assert_eq!(
            carried,
            std::slice::from_ref(&file),
            "{via:?}: the frame carries its metadata"
        );
        let read = bob.client.download_attachment(&file.id).await.unwrap();
        assert_eq!(read.bytes().await.unwrap().as_ref(), PNG, "{via:?}");
        let refused = status_of(carol.client.download_attachment(&file.id).await);
        assert_eq!(refused, 404, "{via:?}");

        // Someone else's upload refuses the whole send, told as not found.
        let theirs = upload(&bob, room.id, "theirs.txt", b"theirs").await;
        at_alice
            .send(&ClientFrame::Send {
                room: room.id,
                body: "not mine".into(),
                client_id: Some("p-2".into()),
                reply_to: None,
                attachments: vec![theirs.id.clone()],
            })
            .await;
        let (code, _) = next_error(&mut at_alice).await;
        assert_eq!(code, "not_found", "{via:?}");
    }
}
