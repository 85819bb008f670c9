//! Attachments in S3-compatible object storage: a real `palaver` process
//! with `--attachments-url s3://bucket/prefix` and the `AWS_*` variables
//! pointed at a real S3 API (moto in server mode, on 127.0.0.1), on either
//! store. What the bucket holds is listed over S3's own API, so a refused
//! upload or a collected file is seen to leave nothing behind.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use palaver_client::frames::ServerFrame;
use palaver_client::Client;
use reqwest::header;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;

const PASSWORD: &str = "correct horse battery";
const BUCKET: &str = "palaver-files";
const PREFIX: &str = "node/attachments";
/// The largest attachment the node takes: more than one 5 MiB part.
const MAX_BYTES: usize = 8 * 1024 * 1024;

/// `PALAVER_TEST_MOTO` (what scripts/test sets), else the venv that
/// scripts/s3-server makes under target/; a test that needs it fails
/// without it, never skips.
fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PALAVER_TEST_MOTO") {
        return path.into();
    }
    let known = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/s3-venv/bin/moto_server"
    ));
    assert!(
        known.exists(),
        "no S3 API server for the attachments-on-S3 tests: run ./scripts/s3-server \
         (scripts/test does) or set PALAVER_TEST_MOTO to a moto_server"
    );
    known
}

/// moto in server mode on a free loopback port; killed when dropped.
struct S3Server {
    endpoint: String,
    http: reqwest::Client,
    _child: Child,
}

impl S3Server {
    async fn start() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        tokio::time::timeout(WAIT * 3, async {
            while http.get(&endpoint).send().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("moto_server answers in time");
        S3Server {
            endpoint,
            http,
            _child: child,
        }
    }

    /// Makes `bucket` (moto takes unsigned requests).
    async fn create_bucket(&self, bucket: &str) {
        let made = self
            .http
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .unwrap();
        assert!(made.status().is_success(), "bucket not made: {made:?}");
    }

    async fn get_xml(&self, query: &str) -> String {
        let url = format!("{}/{BUCKET}?{query}", self.endpoint);
        let listed = self.http.get(url).send().await.unwrap();
        assert!(listed.status().is_success());
        listed.text().await.unwrap()
    }

    /// The keys of the objects in the bucket.
    async fn objects(&self) -> Vec<String> {
        elements(&self.get_xml("list-type=2").await, "Key")
    }

    /// The multipart uploads begun and neither completed nor aborted.
    async fn open_uploads(&self) -> Vec<String> {
        elements(&self.get_xml("uploads").await, "UploadId")
    }
}

/// The text of every `<name>` element of an S3 answer.
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open)
        .skip(1)
        .map(|rest| rest.split(&close).next().unwrap().to_owned())
        .collect()
}

/// A `palaver` process; killed when dropped.
struct S3Node {
    client: Client,
    _child: Child,
    _data_dir: tempfile::TempDir,
    _database: TestDatabase,
}

/// The command of a node on this test's store whose attachments are at
/// `url`, with the S3 server's endpoint and moto's dummy credentials, and
/// none of this process's `PALAVER_*` or `AWS_*` variables.
async fn node_command(s3: &S3Server, url: &str) -> (Command, tempfile::TempDir, TestDatabase) {
    let data_dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::fresh().await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_palaver"));
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("PALAVER_") || name_text.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--metrics-listen", "off"])
        .args(["--argon2-memory-kib", "256", "--argon2-iterations", "1"])
        .args(["--limit=all=off", "--login-backoff-free=4294967295"])
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--attachments-url", url])
        .args(["--max-attachment-bytes", &MAX_BYTES.to_string()])
        .args(["--attachment-claim-secs", "1"])
        .args(["--attachment-collect-every-ms", "100"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env("RUST_LOG", "info")
        .kill_on_drop(true);
    if let Some(url) = &database.url {
        command.args(["--database-url", url]);
    }
    (command, data_dir, database)
}

impl S3Node {
    async fn start(s3: &S3Server) -> S3Node {
        let url = format!("s3://{BUCKET}/{PREFIX}");
        let (mut command, data_dir, database) = node_command(s3, &url).await;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("palaver starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(WAIT * 3, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if entry["fields"]["message"] == "palaver listening" {
                    return entry["fields"]["addr"].as_str().unwrap().to_owned();
                }
            }
            panic!("palaver exited before listening")
        })
        .await
        .expect("palaver listens in time");
        // Keep reading so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        S3Node {
            client: Client::new(format!("http://{addr}")),
            _child: child,
            _data_dir: data_dir,
            _database: database,
        }
    }

    async fn signup(&self, name: &str) -> Client {
        self.client.register(name, PASSWORD, None).await.unwrap();
        let tokens = self.client.login(name, PASSWORD).await.unwrap();
        self.client.with_token(&tokens.access_token)
    }
}

/// Bytes that differ from one position to the next, so a misplaced range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Waits until `check` holds (the collector and aborts run on their own clock).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn attachments_live_in_the_bucket_streamed_in_parts_and_leave_nothing_when_refused_or_collected(
) {
    let s3 = S3Server::start().await;
    s3.create_bucket(BUCKET).await;
    let node = S3Node::start(&s3).await;
    let alice = node.signup("alice").await;
    let bob = node.signup("bob").await;
    let room = alice.create_room("files", None).await.unwrap();
    bob.join_room(&room.code, None).await.unwrap();
    // Connected once `ready` has come: it sees every later message.
    let mut bobs_socket = bob.connect().await.unwrap();

    // Two parts: one whole 5 MiB part and the rest.
    let big = pattern(6 * 1024 * 1024 + 123);
    let uploaded = alice
        .upload_attachment(room.id, "big.bin", big.clone())
        .await
        .unwrap();
    assert_eq!(uploaded.size, big.len() as u64);
    assert_eq!(
        s3.objects().await,
        [format!("{PREFIX}/{}", uploaded.id)],
        "the upload is one object under the prefix"
    );
    assert!(s3.open_uploads().await.is_empty());

    // A message carries it to bob's WebSocket; then bob may read it.
    let posted = alice
        .post_with_attachments(room.id, "the big one", std::slice::from_ref(&uploaded.id))
        .await
        .unwrap();
    let carried = next_matching(&mut bobs_socket, |frame| match frame {
        ServerFrame::Message {
            seq, attachments, ..
        } if seq == posted.seq => Some(attachments),
        _ => None,
    })
    .await;
    assert_eq!(carried, std::slice::from_ref(&uploaded));

    let path = format!("/api/v1/attachments/{}", uploaded.id);
    let whole = bob
        .request(reqwest::Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    let etag = whole.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(whole.bytes().await.unwrap().as_ref(), big.as_slice());
    // A range across the parts' seam.
    let (start, end) = (5 * 1024 * 1024 - 10, 5 * 1024 * 1024 + 9);
    let ranged = bob
        .request(reqwest::Method::GET, &path)
        .header(header::RANGE, format!("bytes={start}-{end}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.headers()[header::CONTENT_RANGE],
        format!("bytes {start}-{end}/{}", big.len()).as_str()
    );
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &big[start..=end]);
    let unchanged = bob
        .request(reqwest::Method::GET, &path)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);

    // Past the cap, with no length given: a part is sent before the bytes
    // pass the cap; then the upload is refused and its parts aborted. The
    // bytes pass it in the last chunk: the server stops reading there and
    // closes, and bytes still unread would reset the connection under the
    // client's writes before it reads the answer.
    let chunks = futures::stream::iter(
        (0..MAX_BYTES / (1024 * 1024))
            .map(|_| pattern(1024 * 1024))
            .chain([pattern(1024)])
            .map(|chunk| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))),
    );
    let refused = alice
        .upload_attachment(room.id, "huge.bin", reqwest::Body::wrap_stream(chunks))
        .await;
    assert_eq!(status_and_code(refused), (413, "too_large".into()));
    eventually("the refused upload's parts were not aborted", async || {
        s3.open_uploads().await.is_empty()
    })
    .await;
    assert_eq!(s3.objects().await, [format!("{PREFIX}/{}", uploaded.id)]);

    // An upload no message claims is collected from the bucket.
    let lost = alice
        .upload_attachment(room.id, "lost.txt", b"forgotten".to_vec())
        .await
        .unwrap();
    assert_eq!(s3.objects().await.len(), 2);
    eventually("the unclaimed upload stayed in the bucket", async || {
        s3.objects().await == [format!("{PREFIX}/{}", uploaded.id)]
    })
    .await;
    assert_eq!(status_of(bob.download_attachment(&lost.id).await), 404);
    let still = bob.download_attachment(&uploaded.id).await.unwrap();
    assert_eq!(still.bytes().await.unwrap().len(), big.len());

    // An image's thumbnail is made once and kept in the bucket beside it.
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(640, 480, image::Rgb([200, 40, 40]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let picture = alice
        .upload_attachment(room.id, "red.png", png.into_inner())
        .await
        .unwrap();
    let thumbnail = alice.download_thumbnail(&picture.id).await.unwrap();
    assert_eq!(thumbnail.headers()[header::CONTENT_TYPE], "image/png");
    let small = image::load_from_memory(&thumbnail.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (320, 240));
    assert!(s3
        .objects()
        .await
        .contains(&format!("{PREFIX}/{}.thumbnail", picture.id)));
}

#[tokio::test]
async fn a_node_whose_bucket_does_not_answer_or_whose_url_is_bad_does_not_start() {
    let s3 = S3Server::start().await;
    for (url, said) in [
        ("s3://no-such-bucket/files", "does not answer"),
        (
            "s3://key:secret@palaver-files/x",
            "a bucket and a prefix only",
        ),
        ("https://palaver-files/x", "s3://bucket/prefix"),
    ] {
        let (mut command, _data_dir, _database) = node_command(&s3, url).await;
        let output = tokio::time::timeout(WAIT * 6, command.output())
            .await
            .expect("the node gives up in time")
            .unwrap();
        // Logs (where a failed start is told) go to stdout, usage errors to stderr.
        let said_all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.status.success(), "{url} started");
        assert!(said_all.contains(said), "{url}: {said_all}");
        assert!(!said_all.contains("secret"), "{url}: {said_all}");
    }
}
