//! `palaver-cli` end to end: the real binary against a real server, each user
//! with a config directory of their own.

use std::process::Stdio;
use std::time::Duration;

use palaver_server::{Application, Settings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(20);

struct Server {
    url: String,
    _data: tempfile::TempDir,
    /// Stops the server when the test ends.
    _shutdown: tokio_util::sync::DropGuard,
}

async fn server() -> Server {
    serve(tempfile::tempdir().unwrap(), |_| {}).await
}

async fn serve(data: tempfile::TempDir, configure: impl FnOnce(&mut Settings)) -> Server {
    let mut settings = Settings::with_data_dir(data.path());
    settings.http.listen = "127.0.0.1:0".parse().unwrap();
    settings.metrics.listen = None;
    settings.passwords.memory_kib = 256;
    settings.passwords.iterations = 1;
    settings.limits = palaver_domain::throttle::RateLimits::off();
    configure(&mut settings);
    let scheme = if settings.http.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let app = Application::build(settings).await.unwrap();
    let url = format!("{scheme}://{}", app.local_addr());
    let token = app.shutdown_token();
    tokio::spawn(app.run());
    Server {
        url,
        _data: data,
        _shutdown: token.drop_guard(),
    }
}

/// One user's shell: the binary with their config directory.
struct Shell {
    server: String,
    config: tempfile::TempDir,
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Shell {
    fn new(server: &Server) -> Self {
        Self {
            server: server.url.clone(),
            config: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_palaver-cli"));
        command
            .args(args)
            .env("PALAVER_SERVER", &self.server)
            .env("PALAVER_CONFIG_DIR", self.config.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self.command(args).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let out = tokio::time::timeout(WAIT, child.wait_with_output())
            .await
            .expect("the command finishes")
            .unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin).await;
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        out.stdout
    }
}

#[tokio::test]
async fn a_shell_user_signs_up_creates_a_room_and_chats_and_tail_prints_rest_messages() {
    let server = server().await;
    let alice = Shell::new(&server);
    let bob = Shell::new(&server);
    for (shell, name) in [(&alice, "alice"), (&bob, "bob")] {
        shell
            .ok(&["register", name], "correct horse battery\n")
            .await;
        let said = shell.ok(&["login", name], "correct horse battery\n").await;
        assert!(said.contains("signed in"), "{said}");
    }
    let kept = alice.config.path().join("palaver/credentials.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the tokens are readable by their owner only"
    );

    let created = alice.ok(&["create", "den"], "").await;
    let code = created.trim().rsplit(' ').next().unwrap().to_owned();
    let room = created.split_whitespace().nth(2).unwrap().to_owned();
    bob.ok(&["join", &code], "").await;
    let members = alice.ok(&["members", &room], "").await;
    assert_eq!(members.lines().count(), 2, "{members}");

    // Bob tails the room over each transport; Alice sends from the arguments
    // and from stdin, and a message arrives over plain REST too.
    let mut tails = Vec::new();
    for (args, over) in [
        (vec!["tail", &room], "WebSocket"),
        (vec!["tail", "--grpc", &room], "gRPC"),
    ] {
        let mut tail = bob.command(&args).spawn().unwrap();
        let mut said = BufReader::new(tail.stderr.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, said.next_line())
            .await
            .expect("tail connects in time")
            .unwrap();
        assert_eq!(
            first.as_deref(),
            Some(format!("following room {room} over {over}").as_str()),
            "{args:?}"
        );
        let lines = BufReader::new(tail.stdout.take().unwrap()).lines();
        tails.push((args, tail, lines));
    }
    assert_eq!(
        alice.ok(&["send", &room, "hello", "bob"], "").await.trim(),
        "stored as #1"
    );
    assert_eq!(
        alice.ok(&["send", &room], "from stdin\n").await.trim(),
        "stored as #2"
    );
    let kept_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    let token = kept_json["access_token"].as_str().unwrap().to_owned();
    let alice_id = kept_json["user_id"].as_i64().unwrap();
    palaver_client::Client::new(&server.url)
        .with_token(token)
        .post_message(room.parse().unwrap(), "over rest", None)
        .await
        .unwrap();
    for (args, mut tail, mut lines) in tails {
        let mut printed = Vec::new();
        for _ in 0..3 {
            let line = tokio::time::timeout(WAIT, lines.next_line())
                .await
                .expect("tail prints in time")
                .unwrap()
                .expect("tail still running");
            printed.push(line);
        }
        assert_eq!(
            printed,
            [
                format!("[{room}] #1 user {alice_id}: hello bob"),
                format!("[{room}] #2 user {alice_id}: from stdin"),
                format!("[{room}] #3 user {alice_id}: over rest"),
            ],
            "{args:?}"
        );
        tail.kill().await.unwrap();
    }

    let history = bob.ok(&["history", &room, "--limit", "2"], "").await;
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(history.ends_with("over rest\n"), "{history}");
    let found = bob.ok(&["search", "STDIN"], "").await;
    assert_eq!(found, format!("[{room}] #2 user {alice_id}: from stdin\n"));
    let refused = bob.run(&["search", "*din"], "").await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("invalid_input"),
        "{}",
        refused.stderr
    );
    let rooms = bob.ok(&["rooms"], "").await;
    assert!(rooms.contains("den"), "{rooms}");
    assert!(rooms.contains("\tmentions 0"), "{rooms}");

    alice.ok(&["send", &room, "@bob over here"], "").await;
    let mentions = bob.ok(&["mentions"], "").await;
    assert_eq!(
        mentions,
        format!("den\t[{room}] #4 user {alice_id}: @bob over here\n")
    );
    let rooms = bob.ok(&["rooms"], "").await;
    assert!(rooms.contains("\tmentions 1"), "{rooms}");

    alice.ok(&["logout"], "").await;
    assert!(!kept.exists(), "signing out forgets the tokens");
    let after = alice.run(&["rooms"], "").await;
    assert_eq!(after.code, 3, "{}", after.stderr);
    assert!(
        after.stderr.contains("palaver-cli login"),
        "{}",
        after.stderr
    );
}

#[tokio::test]
async fn refusals_and_unreachable_servers_have_their_own_exit_codes() {
    let server = server().await;
    let alice = Shell::new(&server);
    alice
        .ok(&["register", "alice"], "correct horse battery\n")
        .await;
    let wrong = alice.run(&["login", "alice"], "not the password\n").await;
    assert_eq!(wrong.code, 1);
    assert!(wrong.stderr.contains("unauthorized"), "{}", wrong.stderr);
    alice
        .ok(&["login", "alice"], "correct horse battery\n")
        .await;
    let stranger = alice.run(&["history", "999"], "").await;
    assert_eq!(stranger.code, 1);
    assert!(stranger.stderr.contains("not_found"), "{}", stranger.stderr);
    let usage = alice.run(&["send"], "").await;
    assert_eq!(usage.code, 2);
    let outsider = alice.run(&["tail", "999"], "").await;
    assert_eq!(outsider.code, 1);
    assert!(
        outsider.stderr.contains("not a member of room 999"),
        "{}",
        outsider.stderr
    );

    // A tail whose room is deleted ends, saying why.
    let created = alice.ok(&["create", "brief"], "").await;
    let room = created.split_whitespace().nth(2).unwrap().to_owned();
    let mut tail = alice.command(&["tail", &room]).spawn().unwrap();
    let mut said = BufReader::new(tail.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, said.next_line()).await.unwrap();
    assert_eq!(
        first.unwrap().unwrap(),
        format!("following room {room} over WebSocket")
    );
    let kept: serde_json::Value = serde_json::from_slice(
        &std::fs::read(alice.config.path().join("palaver/credentials.json")).unwrap(),
    )
    .unwrap();
    palaver_client::Client::new(&server.url)
        .with_token(kept["access_token"].as_str().unwrap())
        .delete_room(room.parse().unwrap())
        .await
        .unwrap();
    let ended = tokio::time::timeout(WAIT, tail.wait())
        .await
        .expect("tail ends once its room is gone")
        .unwrap();
    assert_eq!(ended.code(), Some(1));
    let mut rest = String::new();
    while let Some(line) = said.next_line().await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(
        rest.contains(&format!("no longer in room {room}")),
        "{rest}"
    );

    let mut nowhere = alice.command(&["rooms"]);
    nowhere.env("PALAVER_SERVER", "http://127.0.0.1:9");
    let out = nowhere.output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "tokens are for another server");
    let mut nowhere = alice.command(&["register", "bob"]);
    nowhere.env("PALAVER_SERVER", "http://127.0.0.1:9");
    let out = nowhere.output().await.unwrap();
    assert_eq!(out.status.code(), Some(4));
}

/// Whatever a server holds (here written into its database behind its back,
/// as an older server or a copied database may hold it), no control sequence
/// of it reaches the terminal: not from a body, a room name or a display name.
#[tokio::test]
async fn text_the_server_holds_never_reaches_the_terminal_as_a_control_sequence() {
    const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m\u{202e}exe.txt";
    let server = server().await;
    let alice = Shell::new(&server);
    alice
        .ok(&["register", "alice"], "correct horse battery\n")
        .await;
    alice
        .ok(&["login", "alice"], "correct horse battery\n")
        .await;
    let created = alice.ok(&["create", "den"], "").await;
    let room = created.split_whitespace().nth(2).unwrap().to_owned();
    alice.ok(&["send", &room, "hello"], "").await;

    let db = rusqlite::Connection::open(server._data.path().join("palaver.db")).unwrap();
    db.busy_timeout(WAIT).unwrap();
    db.execute(
        "UPDATE messages SET body = ?1",
        [format!("hi{HOSTILE}\nsecond line")],
    )
    .unwrap();
    db.execute("UPDATE rooms SET name = ?1", [format!("den{HOSTILE}")])
        .unwrap();
    db.execute(
        "UPDATE users SET display_name = ?1",
        [format!("al{HOSTILE}")],
    )
    .unwrap();

    let raw = |out: &str| out.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}']);
    let history = alice.ok(&["history", &room], "").await;
    assert!(!raw(&history), "{history:?}");
    assert_eq!(
        history.lines().count(),
        1,
        "one message, one line: {history:?}"
    );
    assert!(
        history
            .contains("hi\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{9b}31m\\u{202e}exe.txt\\nsecond line"),
        "{history:?}"
    );
    let json = alice.ok(&["history", &room, "--json"], "").await;
    assert!(!raw(&json), "{json:?}");
    let message: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        message["body"],
        format!("hi{HOSTILE}\nsecond line"),
        "the JSON says the same"
    );
    for args in [&["rooms"][..], &["members", &room], &["join", "AAAAAAAA"]] {
        let out = alice.run(args, "").await;
        assert!(
            !raw(&out.stdout) && !raw(&out.stderr),
            "{args:?}: {:?}",
            out.stdout
        );
    }
    let rooms = alice.ok(&["rooms"], "").await;
    assert!(rooms.contains("den\\u{1b}[2J"), "{rooms:?}");
}

/// README's walkthrough, run as written against a live server (its address
/// put where the README says 127.0.0.1:8080, and the `palaver-cli` alias
/// pointed at this build): the curl steps, then the shell steps. Left out:
/// the `chat` example and `palaver-cli chat`, which wait for a person at a
/// terminal, and grpcurl, which is not installed here (gRPC has its suite).
#[tokio::test]
async fn the_readme_walkthrough_runs_as_written() {
    let server = server().await;
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("## Walkthrough: two users chatting")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has its walkthrough");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    let curl = blocks.iter().find(|b| b.contains("curl -s")).unwrap();
    let shell = blocks
        .iter()
        .find(|b| b.contains("alias palaver-cli"))
        .unwrap();
    let shell: Vec<&str> = shell
        .lines()
        .filter(|line| !line.trim_start().starts_with("palaver-cli chat"))
        .collect();
    let script = format!(
        "set -euo pipefail\nshopt -s expand_aliases\n{curl}\n{}\nkill \"$!\"\nwait\n",
        shell.join("\n")
    )
    .replace("http://127.0.0.1:8080", &server.url)
    .replace(
        "cargo run -q -p palaver-cli --",
        env!("CARGO_BIN_EXE_palaver-cli"),
    );
    let config = tempfile::tempdir().unwrap();
    let run = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("PALAVER_SERVER", &server.url)
        .env("PALAVER_CONFIG_DIR", config.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the walkthrough finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walkthrough failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    // Alice's REST hello and Bob's shell hello are both in the history.
    assert!(stdout.contains("hello bob"), "{stdout}");
    assert!(stdout.contains("hello from the shell"), "{stdout}");
    // The file sent with `--file` is listed under its message.
    assert!(stdout.contains("\tCargo.toml\n"), "{stdout}");
}

#[tokio::test]
async fn an_admin_moderates_from_a_shell_and_others_are_refused() {
    let server = server().await;
    let alice = Shell::new(&server);
    let bob = Shell::new(&server);
    for (shell, name) in [(&alice, "alice"), (&bob, "bob")] {
        shell
            .ok(&["register", name], "correct horse battery\n")
            .await;
        shell.ok(&["login", name], "correct horse battery\n").await;
    }
    let created = bob.ok(&["create", "den"], "").await;
    let code = created.trim().rsplit(' ').next().unwrap().to_owned();
    let room = created.split_whitespace().nth(2).unwrap().to_owned();
    alice.ok(&["join", &code], "").await;
    bob.ok(&["send", &room, "rude"], "").await;
    let reported = alice.ok(&["report", &room, "1", "insults"], "").await;
    assert!(
        reported.contains(&format!("reported message #1 of room {room}")),
        "{reported}"
    );

    let refused = alice.run(&["admin", "reports"], "").await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("forbidden"), "{}", refused.stderr);

    let settings = Settings::with_data_dir(server._data.path());
    palaver_server::operator::grant(&settings, "alice", None)
        .await
        .unwrap();
    let reports = alice.ok(&["admin", "reports"], "").await;
    assert!(
        reports.contains("insults") && reports.contains("rude"),
        "{reports}"
    );
    let resolved = alice
        .ok(
            &[
                "admin",
                "resolve",
                "1",
                "suspend_sender",
                "--reason",
                "spam",
            ],
            "",
        )
        .await;
    assert!(resolved.contains("resolve_report"), "{resolved}");
    let users = alice.ok(&["admin", "users", "--q", "bob"], "").await;
    assert!(users.contains("suspended until lifted: spam"), "{users}");
    let audit = alice.ok(&["admin", "audit"], "").await;
    let lines: Vec<&str> = audit.lines().collect();
    assert!(lines[0].contains("resolve_report"), "{audit}");
    assert!(
        lines[1].contains("grant_admin") && lines[1].contains("command line"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_shell_user_reacts_and_history_shows_the_counts_theirs_marked() {
    let server = server().await;
    let alice = Shell::new(&server);
    let bob = Shell::new(&server);
    for (shell, name) in [(&alice, "alice"), (&bob, "bob")] {
        shell
            .ok(&["register", name], "correct horse battery\n")
            .await;
        shell.ok(&["login", name], "correct horse battery\n").await;
    }
    let created = bob.ok(&["create", "den"], "").await;
    let code = created.trim().rsplit(' ').next().unwrap().to_owned();
    let room = created.split_whitespace().nth(2).unwrap().to_owned();
    alice.ok(&["join", &code], "").await;
    bob.ok(&["send", &room, "lunch?"], "").await;
    let reacted = alice.ok(&["react", &room, "1", "👍"], "").await;
    assert!(reacted.contains("reacted 👍 to message #1"), "{reacted}");
    bob.ok(&["react", &room, "1", "👍"], "").await;
    bob.ok(&["react", &room, "1", ":tada:"], "").await;
    let history = alice.ok(&["history", &room], "").await;
    assert!(
        history.contains("lunch?  [👍 2 (you), :tada: 1]"),
        "{history}"
    );
    alice.ok(&["react", &room, "1", "👍", "--remove"], "").await;
    let history = alice.ok(&["history", &room], "").await;
    assert!(history.contains("lunch?  [👍 1, :tada: 1]"), "{history}");
    let refused = alice.run(&["react", &room, "1", "thumbs"], "").await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("invalid_input"),
        "{}",
        refused.stderr
    );
}

/// A server on TLS with a certificate for 127.0.0.1 from a CA made for the
/// test; the CA's PEM file is `ca.pem` in the returned directory.
async fn tls_server() -> (Server, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &*ca)
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let server = serve(data, |s| {
        s.http.tls_cert = Some(dir.join("cert.pem"));
        s.http.tls_key = Some(dir.join("key.pem"));
    })
    .await;
    (server, dir.join("ca.pem"))
}

/// Over `https://`, the CLI trusts the CA of `--ca-file` (or
/// `PALAVER_CA_FILE`) for REST, `tail` over the WebSocket and over gRPC;
/// without it the certificate is not trusted and the server is unreachable
/// (exit 4), saying why.
#[tokio::test]
async fn an_https_server_is_used_with_the_ca_file_and_unreachable_without_it() {
    let (server, ca) = tls_server().await;
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = ca.to_str().unwrap();
    let alice = Shell::new(&server);
    alice
        .ok(
            &["--ca-file", ca, "register", "alice"],
            "correct horse battery\n",
        )
        .await;
    alice
        .ok(
            &["login", "alice", "--ca-file", ca],
            "correct horse battery\n",
        )
        .await;
    let created = alice.ok(&["--ca-file", ca, "create", "vault"], "").await;
    let room = created.split_whitespace().nth(2).unwrap().to_owned();

    let mut tails = Vec::new();
    for (args, over) in [
        (vec!["tail", &room], "WebSocket"),
        (vec!["tail", "--grpc", &room], "gRPC"),
    ] {
        let mut command = alice.command(&args);
        command.env("PALAVER_CA_FILE", ca);
        let mut tail = command.spawn().unwrap();
        let mut said = BufReader::new(tail.stderr.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, said.next_line())
            .await
            .expect("tail connects in time")
            .unwrap();
        assert_eq!(
            first.as_deref(),
            Some(format!("following room {room} over {over}").as_str()),
            "{args:?}"
        );
        let lines = BufReader::new(tail.stdout.take().unwrap()).lines();
        tails.push((tail, lines));
    }
    assert_eq!(
        alice
            .ok(&["--ca-file", ca, "send", &room, "over", "tls"], "")
            .await
            .trim(),
        "stored as #1"
    );
    for (mut tail, mut lines) in tails {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("tail prints in time")
            .unwrap()
            .expect("tail still running");
        assert!(line.ends_with(": over tls"), "{line}");
        tail.kill().await.unwrap();
    }

    // The system's roots alone do not vouch for the test's CA: every
    // command is refused at the handshake, as a server that cannot be reached.
    for args in [
        vec!["rooms"],
        vec!["tail", &room],
        vec!["tail", "--grpc", &room],
        vec!["register", "bob"],
    ] {
        let out = alice.run(&args, "correct horse battery\n").await;
        assert_eq!(out.code, 4, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("cannot reach the server") && out.stderr.contains("certificate"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let missing = alice
        .run(&["--ca-file", "/nonexistent/ca.pem", "rooms"], "")
        .await;
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("/nonexistent/ca.pem"),
        "{}",
        missing.stderr
    );
}

/// A database of its own on the store `PALAVER_TEST_STORE` names: `None`
/// for SQLite (the file in the data directory), or a new PostgreSQL
/// database on `PALAVER_TEST_POSTGRES_URL`, dropped when this is.
struct Database {
    url: Option<String>,
    admin_url: String,
    name: String,
}

impl Database {
    async fn fresh() -> Self {
        use sqlx::Connection;
        let admin_url = std::env::var("PALAVER_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
        let name = format!("palaver_cli_test_{}", std::process::id());
        if std::env::var("PALAVER_TEST_STORE").as_deref() != Ok("postgres") {
            return Self {
                url: None,
                admin_url,
                name,
            };
        }
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL answers at PALAVER_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("an admin URL with a path");
        Self {
            url: Some(format!("{base}/{name}")),
            admin_url,
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.url.is_none() {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Inside the test's runtime: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(&drop).execute(&mut admin).await;
                    }
                });
        })
        .join();
    }
}

/// On the store `PALAVER_TEST_STORE` names (SQLite, or PostgreSQL).
#[tokio::test]
async fn a_shell_user_sends_files_and_another_lists_and_downloads_them() {
    let database = Database::fresh().await;
    let server = serve(tempfile::tempdir().unwrap(), |settings| {
        settings.attachments.max_bytes = 64 * 1024;
        settings.database.url =
            (database.url.clone()).map(|url| palaver_server::config::Secret::new(url.into_bytes()));
    })
    .await;
    let alice = Shell::new(&server);
    let bob = Shell::new(&server);
    for (shell, name) in [(&alice, "alice"), (&bob, "bob")] {
        shell
            .ok(&["register", name], "correct horse battery\n")
            .await;
        shell.ok(&["login", name], "correct horse battery\n").await;
    }
    let created = bob.ok(&["create", "den"], "").await;
    let code = created.trim().rsplit(' ').next().unwrap().to_owned();
    let room = created.split_whitespace().nth(2).unwrap().to_owned();
    alice.ok(&["join", &code], "").await;

    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "minutes of the meeting\n").unwrap();
    let data: Vec<u8> = (0..3000u32).map(|n| (n * 7 % 251) as u8).collect();
    let blob = dir.path().join("data.bin");
    std::fs::write(&blob, &data).unwrap();
    let (notes, blob) = (notes.to_str().unwrap(), blob.to_str().unwrap());
    let sent = alice
        .ok(
            &["send", &room, "the files", "--file", notes, "--file", blob],
            "",
        )
        .await;
    assert!(sent.contains("stored as #1"), "{sent}");

    // Bob's history lists both under the message: id, size, name.
    let history = bob.ok(&["history", &room], "").await;
    let files: Vec<Vec<&str>> = history
        .lines()
        .filter_map(|line| line.strip_prefix("    file "))
        .map(|line| line.split('\t').collect())
        .collect();
    assert_eq!(files.len(), 2, "{history}");
    assert_eq!(files[0][1..], ["23 B", "notes.txt"], "{history}");
    assert_eq!(files[1][1..], ["2.9 KiB", "data.bin"], "{history}");
    assert!(history.lines().next().unwrap().ends_with("the files"));

    // The bytes come back as they went, to a file and to stdout.
    let out = dir.path().join("copy.bin");
    let saved = bob
        .ok(
            &["download", files[1][0], "--out", out.to_str().unwrap()],
            "",
        )
        .await;
    assert!(saved.contains("saved"), "{saved}");
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let printed = bob.ok(&["download", files[0][0]], "").await;
    assert_eq!(printed, "minutes of the meeting\n");

    // A file missing: bad usage, and nothing is sent.
    let missing = alice
        .run(&["send", &room, "nope", "--file", "/no/such/file"], "")
        .await;
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("/no/such/file"),
        "{}",
        missing.stderr
    );
    // More than ten: bad usage before any upload.
    let mut eleven = vec!["send", &room, "many"];
    for _ in 0..11 {
        eleven.extend(["--file", notes]);
    }
    let many = alice.run(&eleven, "").await;
    assert_eq!(many.code, 2, "{}", many.stderr);
    // Past the server's size limit: its refusal, as every refusal.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 64 * 1024 + 1]).unwrap();
    let refused = alice
        .run(&["send", &room, "big", "--file", big.to_str().unwrap()], "")
        .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("too_large"), "{}", refused.stderr);
    // None of the refused sends stored a message.
    let history = bob.ok(&["history", &room], "").await;
    assert!(!history.contains("#2"), "{history}");

    // A file no member of the room may read is not found, as no file.
    let carol = Shell::new(&server);
    carol
        .ok(&["register", "carol"], "correct horse battery\n")
        .await;
    carol
        .ok(&["login", "carol"], "correct horse battery\n")
        .await;
    let stranger = carol.run(&["download", files[0][0]], "").await;
    assert_eq!(stranger.code, 1);
    assert!(stranger.stderr.contains("not_found"), "{}", stranger.stderr);
    let odd = carol.run(&["download", "../users/me"], "").await;
    assert_eq!(odd.code, 2, "{}", odd.stderr);
    drop(server);
    drop(database);
}
