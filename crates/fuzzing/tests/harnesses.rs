//! The fuzz harnesses on generated cases (a few thousand per harness) and on
//! every input kept in `fuzz/corpus/` and `fuzz/regressions/`, so a crash the
//! fuzzer once found stays fixed.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

const CASES: u32 = 3000;
const FEWER_CASES: u32 = 2000;

/// JSON-looking text: far likelier than random bytes to get past the parser's
/// first character.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        prop_oneof![
            Just("type"),
            Just("send"),
            Just("edit"),
            Just("delete"),
            Just("typing"),
            Just("read"),
            Just("resume"),
            Just("ping"),
            Just("react"),
            Just("unreact"),
            Just("emoji"),
            Just("auth"),
            Just("room"),
            Just("body"),
            Just("client_id"),
            Just("ref"),
            Just("seq"),
            Just("rooms"),
            Just("username"),
            Just("password"),
            Just("display_name"),
            Just("name"),
            Just("sub"),
            Just("exp"),
            Just("sid"),
            Just("iss"),
            Just("aud"),
            Just("palaver"),
            Just("reply_to"),
            Just("user_id"),
            Just("role"),
        ]
        .prop_map(|word| format!("\"{word}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    (any::<u8>(), prop::collection::vec(token, 0..24)).prop_map(|(first, tokens)| {
        std::iter::once(first)
            .chain(tokens.concat().into_bytes())
            .collect()
    })
}

/// Address-like text: the pieces where Palaver's reading and the mailer's
/// could part (brackets, quotes, comments, IP literals, case, non-ASCII).
fn addressish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop_oneof![
            Just("@"),
            Just("."),
            Just("<"),
            Just(">"),
            Just("\""),
            Just("("),
            Just(")"),
            Just("["),
            Just("]"),
            Just(","),
            Just(";"),
            Just(":"),
            Just("\\"),
            Just(" "),
            Just("+"),
            Just("-"),
            Just("_"),
            Just("'"),
            Just("victim"),
            Just("Alice"),
            Just("example"),
            Just("com"),
            Just("xn--"),
            Just("127.0.0.1"),
            Just("IPv6:::1"),
            Just("ü"),
            Just("İ"),
            Just("ß"),
        ]
        .prop_map(str::to_owned),
        "[a-zA-Z0-9]{1,6}",
        "\\PC{1,3}",
    ];
    prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat().into_bytes())
}

/// Protobuf client frames, encoded: every kind or none, with or without a
/// `ref`, sometimes cut short or followed by a few random bytes (which may
/// read as unknown fields or a second copy of one).
fn protobufish() -> impl Strategy<Value = Vec<u8>> {
    use palaver_grpc::v1;
    use palaver_grpc::v1::client_frame::Frame;
    use prost::Message;

    let text = || prop::option::of("\\PC{0,8}");
    let rooms = || prop::collection::hash_map(any::<i64>(), any::<u64>(), 0..4);
    let frame = prop_oneof![
        rooms().prop_map(|resume| Frame::Hello(v1::Hello { resume })),
        (
            any::<i64>(),
            "\\PC{0,12}",
            text(),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(room, body, client_id, reply_to)| Frame::Send(v1::Send {
                room,
                body,
                client_id,
                reply_to,
                attachments: Vec::new(),
            })),
        (any::<i64>(), any::<u64>(), "\\PC{0,12}")
            .prop_map(|(room, seq, body)| Frame::Edit(v1::Edit { room, seq, body })),
        (any::<i64>(), any::<u64>())
            .prop_map(|(room, seq)| Frame::Delete(v1::Delete { room, seq })),
        any::<i64>().prop_map(|room| Frame::Typing(v1::Typing { room })),
        (any::<i64>(), any::<u64>()).prop_map(|(room, seq)| Frame::Read(v1::Read { room, seq })),
        rooms().prop_map(|rooms| Frame::Resume(v1::Resume { rooms })),
        Just(Frame::Ping(v1::Ping {})),
        (any::<i64>(), any::<u64>(), "\\PC{0,4}")
            .prop_map(|(room, seq, emoji)| Frame::React(v1::React { room, seq, emoji })),
        (any::<i64>(), any::<u64>(), "\\PC{0,4}")
            .prop_map(|(room, seq, emoji)| Frame::Unreact(v1::Unreact { room, seq, emoji })),
    ];
    (
        text(),
        prop::option::of(frame),
        any::<usize>(),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(r#ref, frame, cut, tail)| {
            let mut bytes = v1::ClientFrame { r#ref, frame }.encode_to_vec();
            match cut % 4 {
                0 => bytes.truncate(cut / 4 % (bytes.len() + 1)),
                1 => bytes.extend(tail),
                _ => {}
            }
            bytes
        })
}

/// `X-Forwarded-For` values after a selector byte: addresses the harness
/// trusts and addresses it does not (IPv4, IPv6, IPv4-mapped), with commas,
/// blanks, ports, brackets and newlines (a second header) between them.
fn forwardedish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop_oneof![
            Just(","),
            Just(", "),
            Just(" "),
            Just("\n"),
            Just("\t"),
            Just(":443"),
            Just("["),
            Just("]"),
            Just("unknown"),
            Just("10.0.0.7"),
            Just("10.255.255.255"),
            Just("192.0.2.1"),
            Just("203.0.113.9"),
            Just("1.1.1.1"),
            Just("::ffff:10.0.0.9"),
            Just("::ffff:203.0.113.9"),
            Just("2001:db8::1"),
            Just("2001:db9::1"),
            Just("::1"),
        ]
        .prop_map(str::to_owned),
        any::<std::net::IpAddr>().prop_map(|ip| ip.to_string()),
        "\\PC{1,3}",
    ];
    (any::<u8>(), prop::collection::vec(piece, 0..12)).prop_map(|(mode, pieces)| {
        std::iter::once(mode)
            .chain(pieces.concat().into_bytes())
            .collect()
    })
}

/// Query strings: the names the server reads (secret or paging) in several
/// percent-encodings and cases, separators (`&`, `;`), escapes good and bad,
/// numbers and stray text.
fn queryish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop_oneof![
            Just("access_token"),
            Just("access%5Ftoken"),
            Just("%61ccess_token"),
            Just("ACCESS_TOKEN"),
            Just("Access%5fToken"),
            Just("token"),
            Just("t%6Fken"),
            Just("refresh_token"),
            Just("reset_token"),
            Just("code"),
            Just("before"),
            Just("after"),
            Just("limit"),
            Just("q"),
            Just("erase"),
            Just("true"),
            Just("REDACTED"),
            Just("="),
            Just("="),
            Just("&"),
            Just("&"),
            Just(";"),
            Just("+"),
            Just("%"),
            Just("%2"),
            Just("%3D"),
            Just("%26"),
            Just("%3B"),
            Just("%FF"),
            Just("eyJ.x.y"),
        ]
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "\\PC{1,3}",
    ];
    prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

/// `Cookie` headers after an `X-CSRF-Token` line: the sign-in cookies' names,
/// lookalikes in other case, separators, quotes and blanks.
fn cookieish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop_oneof![
            Just("__Host-palaver-access"),
            Just("__Host-palaver-refresh"),
            Just("__Host-palaver-csrf"),
            Just("__host-palaver-csrf"),
            Just("__Host-palaver-csrf "),
            Just("="),
            Just("="),
            Just(";"),
            Just("; "),
            Just(" "),
            Just("\t"),
            Just("\n"),
            Just("\""),
            Just(","),
            Just("tok"),
            Just("a.b.c"),
        ]
        .prop_map(str::to_owned),
        "\\PC{1,3}",
    ];
    prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat().into_bytes())
}

/// `Origin` and `Host` after a selector byte: listed and own origins and
/// their lookalikes (case, trailing dot, ports, userinfo, paths, `null`,
/// other schemes).
fn originish() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![
        Just("https://"),
        Just("http://"),
        Just("HTTPS://"),
        Just("ftp://"),
        Just("://"),
        Just(""),
    ];
    let userinfo = prop_oneof![Just(""), Just(""), Just("user@"), Just("a:b@")];
    let host = || {
        prop_oneof![
            Just("app.example"),
            Just("APP.example"),
            Just("app.example."),
            Just("chat.example"),
            Just("Chat.example"),
            Just("localhost"),
            Just("xn--bcher-kva.example"),
            Just("127.0.0.1"),
            Just("[::1]"),
            Just("null"),
        ]
    };
    let port = || {
        prop_oneof![
            Just(""),
            Just(""),
            Just(":443"),
            Just(":3000"),
            Just(":8443")
        ]
    };
    let path = prop_oneof![Just(""), Just(""), Just("/"), Just("/x")];
    let sent_to = prop::option::of((host(), port()));
    (any::<u8>(), scheme, userinfo, host(), port(), path, sent_to).prop_map(
        |(mode, scheme, userinfo, host, port, path, sent_to)| {
            let mut text = format!("{scheme}{userinfo}{host}{port}{path}");
            if let Some((host, port)) = sent_to {
                text.push_str(&format!("\n{host}{port}"));
            }
            std::iter::once(mode).chain(text.into_bytes()).collect()
        },
    )
}

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..256), jsonish()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn client_frames(data in inputs()) {
        palaver_fuzzing::client_frame(&data);
        // The frame itself, without the harness's selector byte.
        palaver_fuzzing::client_frame(data.get(1..).unwrap_or_default());
    }

    #[test]
    fn rest_bodies(data in inputs()) {
        palaver_fuzzing::rest_body(&data);
    }

    #[test]
    fn access_tokens(data in inputs()) {
        palaver_fuzzing::access_token(&data);
    }

    #[test]
    fn bus_records(header in prop::collection::vec(any::<u8>(), 3..40), payload in inputs()) {
        palaver_fuzzing::bus_record(&[header, payload].concat());
    }

    #[test]
    fn email_addresses(data in prop_oneof![addressish(), inputs()]) {
        palaver_fuzzing::email_address(&data);
    }
}

proptest! {
    // Fewer cases: these inputs are slower to build (or the harnesses
    // slower to run), and 2,000 keep each test within about two seconds.
    #![proptest_config(ProptestConfig::with_cases(FEWER_CASES))]

    #[test]
    fn proto_client_frames(data in prop_oneof![protobufish(), inputs()]) {
        palaver_fuzzing::proto_client_frame(&data);
    }

    #[test]
    fn forwarded_for_headers(data in prop_oneof![forwardedish(), inputs()]) {
        palaver_fuzzing::forwarded_for(&data);
    }

    #[test]
    fn query_strings(data in prop_oneof![queryish().prop_map(String::into_bytes), inputs()]) {
        palaver_fuzzing::query_string(&data);
    }

    #[test]
    fn cookie_headers(data in prop_oneof![cookieish(), inputs()]) {
        palaver_fuzzing::cookies(&data);
    }

    #[test]
    fn origins(data in prop_oneof![originish(), inputs()]) {
        palaver_fuzzing::origin(&data);
    }

    #[test]
    fn first_frames(data in inputs()) {
        palaver_fuzzing::ws_first_frame(&data);
        palaver_fuzzing::ws_first_frame(data.get(1..).unwrap_or_default());
    }

    #[test]
    fn redacted_targets(mode in any::<u8>(), query in queryish(), data in inputs()) {
        palaver_fuzzing::log_redaction(&[&[mode], query.as_bytes()].concat());
        palaver_fuzzing::log_redaction(&data);
    }
}

fn kept(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    ["corpus", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(root.join(kind).join(target)).ok())
        .flatten()
        .map(|entry| entry.unwrap().path())
        .collect()
}

#[test]
fn every_kept_input_passes() {
    type Harness = fn(&[u8]);
    let targets: [(&str, Harness); 12] = [
        ("client_frame", palaver_fuzzing::client_frame),
        ("bus_record", palaver_fuzzing::bus_record),
        ("rest_body", palaver_fuzzing::rest_body),
        ("access_token", palaver_fuzzing::access_token),
        ("email_address", palaver_fuzzing::email_address),
        ("proto_client_frame", palaver_fuzzing::proto_client_frame),
        ("forwarded_for", palaver_fuzzing::forwarded_for),
        ("query_string", palaver_fuzzing::query_string),
        ("cookies", palaver_fuzzing::cookies),
        ("origin", palaver_fuzzing::origin),
        ("ws_first_frame", palaver_fuzzing::ws_first_frame),
        ("log_redaction", palaver_fuzzing::log_redaction),
    ];
    for (target, harness) in targets {
        let inputs = kept(target);
        assert!(!inputs.is_empty(), "no seed inputs for {target}");
        for path in inputs {
            harness(&std::fs::read(&path).unwrap());
        }
    }
}
