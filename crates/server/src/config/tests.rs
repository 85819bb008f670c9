use std::path::Path;

use clap::{CommandFactory, Parser};
use palaver_domain::throttle::{Limit, RateLimit};

use super::layers::FLAT;
use super::*;

fn parse(args: &[&str]) -> ServeArgs {
    Cli::try_parse_from(std::iter::once("palaver").chain(args.iter().copied()))
        .unwrap()
        .serve
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Settings from `file` (if any), `env` and `flags`.
fn load(file: Option<&str>, env: &[(&str, &str)], flags: &[&str]) -> anyhow::Result<Settings> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.toml");
    let mut args: Vec<&str> = flags.to_vec();
    let path_text = path.to_str().unwrap().to_owned();
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
        args.extend(["--config", &path_text]);
    }
    Settings::load_from(&parse(&args), vars(env))
}

#[test]
fn defaults_listen_locally_with_data_in_palaver_data() {
    let settings = load(None, &[], &[]).unwrap();
    assert_eq!(settings.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        settings.database_path(),
        PathBuf::from("palaver-data/palaver.db")
    );
    assert!(settings.tokens.jwt_secret.is_none());
    assert_eq!(settings.max_frame_bytes(), 4 * 4096 + 1024);
    assert_eq!(settings.limits, RateLimits::default());
    // `with_data_dir` is the defaults, and the defaults pass the checks.
    let built = Settings::with_data_dir("palaver-data");
    assert_eq!(
        format!("{built:?}"),
        format!("{:?}", built.clone().checked().unwrap())
    );
}

/// One setting of each section, set by each layer in turn: the file, then a
/// variable, then a flag, each over the one before.
#[test]
fn each_section_layers_default_then_file_then_environment_then_flag() {
    type Read = fn(&Settings) -> String;
    struct Case {
        file: &'static str,
        variable: (&'static str, &'static str),
        flag: [&'static str; 2],
        read: Read,
        expected: [&'static str; 4],
    }
    let cases = [
        Case {
            file: "[http]\nheader_timeout = \"2s\"",
            variable: ("PALAVER_HTTP_HEADER_TIMEOUT_MS", "3000"),
            flag: ["--http-header-timeout-ms", "4000"],
            read: |s| format!("{:?}", s.http.header_timeout),
            expected: ["10s", "2s", "3s", "4s"],
        },
        Case {
            file: "[realtime]\nqueue_capacity = 2",
            variable: ("PALAVER_WS_QUEUE_CAPACITY", "3"),
            flag: ["--ws-queue-capacity", "4"],
            read: |s| s.realtime.queue_capacity.to_string(),
            expected: ["1024", "2", "3", "4"],
        },
        Case {
            file: "[messages]\nmax_body_bytes = 200",
            variable: ("PALAVER_MAX_BODY_BYTES", "300"),
            flag: ["--max-body-bytes", "400"],
            read: |s| s.messages.max_body_bytes.to_string(),
            expected: ["4096", "200", "300", "400"],
        },
        Case {
            file: "[database]\nacquire_timeout = \"2s\"",
            variable: ("PALAVER_DB_ACQUIRE_TIMEOUT_MS", "2500"),
            flag: ["--db-acquire-timeout-ms", "4000"],
            read: |s| format!("{:?}", s.database.acquire_timeout),
            expected: ["3s", "2s", "2.5s", "4s"],
        },
        Case {
            file: "[tokens]\nissuer = \"file\"",
            variable: ("PALAVER_JWT_ISSUER", "environment"),
            flag: ["--jwt-issuer", "flag"],
            read: |s| s.tokens.issuer.clone(),
            expected: ["palaver", "file", "environment", "flag"],
        },
        Case {
            file: "[passwords]\nqueue = 2",
            variable: ("PALAVER_ARGON2_QUEUE", "3"),
            flag: ["--argon2-queue", "4"],
            read: |s| s.passwords.queue.to_string(),
            expected: ["64", "2", "3", "4"],
        },
        Case {
            file: "[accounts]\nusername_hold = \"2days\"",
            variable: ("PALAVER_USERNAME_HOLD_DAYS", "3"),
            flag: ["--username-hold-days", "4"],
            read: |s| (s.accounts.username_hold.as_secs() / 86_400).to_string(),
            expected: ["30", "2", "3", "4"],
        },
        Case {
            file: "[mail]\nfrom = \"File <file@example.com>\"",
            variable: ("PALAVER_MAIL_FROM", "Env <env@example.com>"),
            flag: ["--mail-from", "Flag <flag@example.com>"],
            read: |s| s.mail.from.clone(),
            expected: [
                "Palaver <palaver@localhost>",
                "File <file@example.com>",
                "Env <env@example.com>",
                "Flag <flag@example.com>",
            ],
        },
        Case {
            file: "[limits]\nlogin_backoff_max = \"2m\"",
            variable: ("PALAVER_LOGIN_BACKOFF_MAX_SECS", "180"),
            flag: ["--login-backoff-max-secs", "240"],
            read: |s| s.limits.login_backoff.max.as_secs().to_string(),
            expected: ["300", "120", "180", "240"],
        },
        Case {
            file: "[limits]\nsend_per_user = \"2/s\"",
            variable: ("PALAVER_LIMIT_SEND_PER_USER", "3/s"),
            flag: ["--limit", "send_per_user=4/s"],
            read: |s| s.limits.get(Limit::SendPerUser).to_string(),
            expected: ["10/s burst 30", "2/s", "3/s", "4/s"],
        },
        Case {
            file: "[kafka]\nfetch_wait = \"20ms\"",
            variable: ("PALAVER_KAFKA_FETCH_WAIT_MS", "30"),
            flag: ["--kafka-fetch-wait-ms", "40"],
            read: |s| format!("{:?}", s.kafka.fetch_wait),
            expected: ["5ms", "20ms", "30ms", "40ms"],
        },
        Case {
            file: "[metrics]\nlisten = \"10.0.0.5:9100\"",
            variable: ("PALAVER_METRICS_LISTEN", "off"),
            flag: ["--metrics-listen", "127.0.0.1:9300"],
            read: |s| format!("{:?}", s.metrics.listen),
            expected: [
                "Some(127.0.0.1:9090)",
                "Some(10.0.0.5:9100)",
                "None",
                "Some(127.0.0.1:9300)",
            ],
        },
        Case {
            file: "[log]\nformat = \"json\"",
            variable: ("PALAVER_LOG_FORMAT", "text"),
            flag: ["--log-format", "json"],
            read: |s| format!("{:?}", s.log.format),
            expected: ["Text", "Json", "Text", "Json"],
        },
        Case {
            file: "data_dir = \"from-file\"",
            variable: ("PALAVER_DATA_DIR", "from-environment"),
            flag: ["--data-dir", "from-flag"],
            read: |s| s.data_dir.display().to_string(),
            expected: ["palaver-data", "from-file", "from-environment", "from-flag"],
        },
    ];
    for case in cases {
        let env = [case.variable];
        let layers = [
            load(None, &[], &[]),
            load(Some(case.file), &[], &[]),
            load(Some(case.file), &env, &[]),
            load(Some(case.file), &env, &case.flag),
        ];
        let seen: Vec<String> = layers
            .into_iter()
            .map(|settings| (case.read)(&settings.unwrap()))
            .collect();
        assert_eq!(seen, case.expected, "{}", case.file);
    }
}

#[test]
fn durations_are_written_as_durations_in_the_file_and_in_units_elsewhere() {
    let file = "[realtime]\nwrite_timeout = \"1m 30s\"\nauth_timeout = \"250ms\"\n\
                [tokens]\naccess_ttl = \"1h\"\n";
    let settings = load(Some(file), &[], &[]).unwrap();
    assert_eq!(settings.realtime.write_timeout, Duration::from_secs(90));
    assert_eq!(settings.realtime.auth_timeout, Duration::from_millis(250));
    assert_eq!(settings.tokens.access_ttl, Duration::from_secs(3600));
    let flagged = load(None, &[], &["--access-token-ttl-secs", "60"]).unwrap();
    assert_eq!(flagged.tokens.access_ttl, Duration::from_secs(60));
    // A bare number in the file has no unit; a unit in a flat variable, a second one.
    let unitless = load(Some("[realtime]\nwrite_timeout = 10\n"), &[], &[]).unwrap_err();
    assert!(
        format!("{unitless:#}").contains("realtime.write_timeout"),
        "{unitless:#}"
    );
    let bad = load(None, &[("PALAVER_WS_WRITE_TIMEOUT_MS", "10s")], &[]).unwrap_err();
    assert!(
        format!("{bad:#}").contains("PALAVER_WS_WRITE_TIMEOUT_MS"),
        "{bad:#}"
    );
    assert!(load(Some("[http]\nbody_timeout = \"0s\"\n"), &[], &[]).is_err());
    assert!(load(None, &[], &["--code-ttl-secs", "29"]).is_err());
}

#[test]
fn unknown_file_keys_are_errors_naming_the_key() {
    for (file, named) in [
        ("lisen = \"127.0.0.1:9000\"\n", "lisen"),
        ("[http]\nlisen = \"127.0.0.1:9000\"\n", "lisen"),
        ("[htp]\nlisten = \"127.0.0.1:9000\"\n", "htp"),
    ] {
        let err = load(Some(file), &[], &[]).unwrap_err();
        assert!(format!("{err:#}").contains(named), "{file}: {err:#}");
    }
    // The flat spelling of the flags is not the file's, and the error says where it went.
    let err = load(Some("ws_write_timeout_ms = 5000\n"), &[], &[]).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("ws_write_timeout_ms")
            && message.contains("write_timeout under [realtime]"),
        "{message}"
    );
    let missing = Settings::load_from(
        &parse(&["--config", "/nonexistent/palaver.toml"]),
        vars(&[]),
    );
    assert!(format!("{:#}", missing.unwrap_err()).contains("/nonexistent/palaver.toml"));
}

#[test]
fn the_config_file_may_be_named_by_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palaver.toml");
    std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
    let env = vars(&[("PALAVER_CONFIG", path.to_str().unwrap())]);
    let settings = Settings::load_from(&parse(&[]), env).unwrap();
    assert_eq!(settings.http.listen.to_string(), "127.0.0.1:9000");
}

#[test]
fn limits_come_from_the_file_the_environment_and_flags_in_that_order() {
    let file = "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\n\
                [limits]\nsend_per_user = \"5/s burst 10\"\nedit_per_user = \"1/min\"\n";
    let env = [
        ("PALAVER_LIMIT_EDIT_PER_USER", "2/min"),
        ("PALAVER_LIMIT_TYPING_PER_USER", "off"),
        ("PALAVER_MAX_CONNECTIONS_PER_ADDRESS", "9"),
    ];
    let flags = [
        "--limit",
        "login_per_address=off",
        "--limit=typing_per_user=1/s",
        "--max-connections-per-address",
        "8",
    ];
    let settings = load(Some(file), &env, &flags).unwrap();
    let rates = &settings.limits;
    assert_eq!(rates.get(Limit::SendPerUser).to_string(), "5/s burst 10");
    assert_eq!(rates.get(Limit::EditPerUser).to_string(), "2/min");
    assert_eq!(rates.get(Limit::TypingPerUser).to_string(), "1/s");
    assert_eq!(rates.get(Limit::LoginPerAddress), RateLimit(None));
    assert_eq!(
        rates.get(Limit::RegisterPerAddress),
        Limit::RegisterPerAddress.default_rate()
    );
    assert_eq!(settings.http.trusted_proxies.len(), 2);
    assert_eq!(settings.http.max_connections_per_address, 8);

    // `all` then exceptions, within a layer whatever the order; a later
    // layer's `all` overrides what an earlier one named.
    let all_off = load(
        None,
        &[],
        &["--limit", "all=off", "--limit", "send_per_user=1/s"],
    )
    .unwrap()
    .limits;
    assert_eq!(all_off.get(Limit::JoinPerAddress), RateLimit(None));
    assert_eq!(all_off.get(Limit::SendPerUser).to_string(), "1/s");
    let file_all = "[limits]\nsend_per_user = \"1/s\"\nall = \"off\"\n";
    let in_file = load(Some(file_all), &[], &[]).unwrap().limits;
    assert_eq!(in_file.get(Limit::JoinPerAddress), RateLimit(None));
    assert_eq!(in_file.get(Limit::SendPerUser).to_string(), "1/s");
    let over_file = load(Some(file_all), &[("PALAVER_LIMIT_ALL", "2/s")], &[]).unwrap();
    assert_eq!(over_file.limits.get(Limit::SendPerUser).to_string(), "2/s");
    let env_all = [
        ("PALAVER_LIMIT_SEND_PER_USER", "3/s"),
        ("PALAVER_LIMIT_ALL", "off"),
    ];
    let in_env = load(None, &env_all, &[]).unwrap().limits;
    assert_eq!(in_env.get(Limit::SendPerUser).to_string(), "3/s");
    assert_eq!(in_env.get(Limit::EditPerUser), RateLimit(None));

    for bad in ["send_per_user=5 per second", "sends=1/s", "send_per_user"] {
        assert!(
            Cli::try_parse_from(["palaver", "--limit", bad]).is_err(),
            "{bad}"
        );
    }
    let err = load(None, &[("PALAVER_LIMIT_SENDS", "1/s")], &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains("PALAVER_LIMIT_SENDS"),
        "{err:#}"
    );
    let err = load(Some("[limits]\nsends = \"1/s\"\n"), &[], &[]).unwrap_err();
    assert!(format!("{err:#}").contains("sends"), "{err:#}");
    let err = load(Some("[limits]\nsend_per_user = \"fast\"\n"), &[], &[]).unwrap_err();
    assert!(format!("{err:#}").contains("fast"), "{err:#}");
    let proxies = parse(&["--trusted-proxies", "10.0.0.0/8,::1"]).trusted_proxies;
    assert_eq!(proxies.map(|p| p.len()), Some(2));
    let listed = load(None, &[("PALAVER_TRUSTED_PROXIES", "10.0.0.0/8, ::1")], &[]).unwrap();
    assert_eq!(listed.http.trusted_proxies.len(), 2);
}

#[test]
fn unknown_palaver_variables_are_reported() {
    let vars = [
        "PALAVER_LISTEN",
        "PALAVER_LISEN",
        "PALAVER_CONFIG",
        "PALAVER_LIMIT_SEND_PER_USER",
        "PALAVER_LIMIT_ALL",
        "PALAVER_LIMIT_SENDS",
        "PALAVER_TEST_STORE",
        "HOME",
    ]
    .map(String::from);
    assert_eq!(
        unknown_variables(vars.into_iter()),
        ["PALAVER_LISEN", "PALAVER_LIMIT_SENDS"]
    );
    // Unknown variables are reported, never read: they break nothing.
    assert!(load(None, &[("PALAVER_LISEN", "nonsense")], &[]).is_ok());
}

#[test]
fn metrics_listen_on_loopback_by_default_elsewhere_or_nowhere() {
    let default = load(None, &[], &[]).unwrap();
    assert_eq!(
        default.metrics.listen,
        Some("127.0.0.1:9090".parse().unwrap())
    );
    let off = load(None, &[], &["--metrics-listen", "off"]).unwrap();
    assert_eq!(off.metrics.listen, None);
    let in_file = load(Some("[metrics]\nlisten = \"off\"\n"), &[], &[]).unwrap();
    assert_eq!(in_file.metrics.listen, None);
    assert!(Cli::try_parse_from(["palaver", "--metrics-listen", "public"]).is_err());
    assert!(load(None, &[("PALAVER_METRICS_LISTEN", "public")], &[]).is_err());
    let same = [
        "--listen",
        "127.0.0.1:9000",
        "--metrics-listen",
        "127.0.0.1:9000",
    ];
    assert!(load(None, &[], &same).is_err());
}

#[test]
fn invalid_values_are_refused_at_start() {
    assert!(load(None, &[], &["--jwt-secret", "short"]).is_err());
    assert!(load(None, &[], &["--jwt-algorithm", "HS256"]).is_err());
    assert!(load(
        None,
        &[],
        &["--max-body-bytes", "100", "--max-frame-bytes", "100"]
    )
    .is_err());
    assert!(load(None, &[], &["--cors-origins", "app.example.com"]).is_err());
    assert!(load(None, &[("PALAVER_WS_QUEUE_CAPACITY", "many")], &[]).is_err());
    let origins = load(None, &[], &["--cors-origins", "HTTPS://App.Example/"]).unwrap();
    assert_eq!(origins.http.cors_origins, ["https://app.example"]);
    let frames = load(None, &[], &["--max-body-bytes", "100"]).unwrap();
    assert_eq!(frames.max_frame_bytes(), 1424);
}

#[test]
fn tls_takes_both_files_and_the_redirect_listener_takes_tls() {
    let defaults = load(None, &[], &[]).unwrap();
    assert!(!defaults.http.tls());
    assert_eq!(
        defaults.http.hsts_max_age,
        Duration::from_secs(365 * 86_400)
    );
    let both = load(
        None,
        &[("PALAVER_TLS_KEY", "/etc/palaver/privkey.pem")],
        &["--tls-cert", "/etc/palaver/fullchain.pem"],
    )
    .unwrap();
    assert!(both.http.tls());
    let file = "[http]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n\
                tls_redirect_listen = \"0.0.0.0:80\"\ntls_redirect_port = 443\n\
                hsts_max_age = \"1day\"\n";
    let from_file = load(Some(file), &[], &["--hsts-max-age-secs", "0"]).unwrap();
    assert_eq!(
        from_file.http.tls_redirect_listen,
        Some("0.0.0.0:80".parse().unwrap())
    );
    assert_eq!(from_file.http.tls_redirect_port, Some(443));
    assert_eq!(from_file.http.hsts_max_age, Duration::ZERO);

    let tls = ["--tls-cert", "/c.pem", "--tls-key", "/k.pem"];
    let with_tls = |more: &[&'static str]| {
        let flags: Vec<&str> = tls.iter().chain(more).copied().collect();
        load(None, &[], &flags)
    };
    for (flags, named) in [
        (&["--tls-cert", "/c.pem"][..], "--tls-key"),
        (&["--tls-key", "/k.pem"][..], "--tls-cert"),
        (&["--tls-redirect-listen", "0.0.0.0:80"][..], "needs TLS"),
        (&["--tls-redirect-port", "443"][..], "needs TLS"),
    ] {
        let err = load(None, &[], flags).unwrap_err();
        assert!(format!("{err:#}").contains(named), "{flags:?}: {err:#}");
    }
    for more in [
        &["--tls-redirect-port", "0"][..],
        &[
            "--listen",
            "127.0.0.1:8443",
            "--tls-redirect-listen",
            "127.0.0.1:8443",
        ][..],
    ] {
        assert!(with_tls(more).is_err(), "{more:?}");
    }
    assert!(with_tls(&["--tls-redirect-listen", "127.0.0.1:0"]).is_ok());
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let secret = "x".repeat(40);
    let url = "postgres://palaver:hunter2@db/palaver";
    let settings = load(None, &[], &["--jwt-secret", &secret, "--database-url", url]).unwrap();
    assert_eq!(settings.database_url().as_deref(), Some(url));
    let shown = format!("{settings:?}");
    assert!(!shown.contains(&secret));
    assert!(!shown.contains("hunter2"));
    let serialized = format!("{:?}", figment::value::Value::serialize(&settings).unwrap());
    assert!(!serialized.contains("hunter2"), "{serialized}");
}

#[test]
fn kafka_security_settings_resolve_and_their_passwords_stay_hidden() {
    let settings = load(
        None,
        &[("PALAVER_KAFKA_SASL_PASSWORD", "kafka-hunter2")],
        &[
            "--kafka-brokers",
            "kafka-1:9093",
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-512",
            "--kafka-sasl-username",
            "palaver-node",
            "--kafka-ssl-ca-location",
            "/etc/palaver/kafka-ca.pem",
        ],
    )
    .unwrap();
    let security = settings.kafka.security().unwrap();
    assert_eq!(security.protocol, palaver_bus::SecurityProtocol::SaslSsl);
    let sasl = security.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, palaver_bus::SaslMechanism::ScramSha512);
    assert_eq!(sasl.password, "kafka-hunter2");
    assert_eq!(
        security.ssl_ca_location.as_deref(),
        Some(Path::new("/etc/palaver/kafka-ca.pem"))
    );
    let shown = format!("{settings:?}");
    assert!(!shown.contains("kafka-hunter2"), "{shown}");
    assert!(shown.contains("palaver-node"));
    // SASL credentials over plaintext by omission are refused, not ignored.
    assert!(load(None, &[], &["--kafka-sasl-username", "palaver-node"]).is_err());
}

#[test]
fn unsupported_database_urls_are_rejected_at_start() {
    assert!(load(None, &[], &["--database-url", "mysql://db/palaver"]).is_err());
    assert!(load(None, &[], &["--database-url", "sqlite://x.db"]).is_ok());
}

#[test]
fn every_serve_flag_has_one_place_in_the_sections() {
    let flags = cli::serve_arg_ids();
    let table: Vec<&str> = FLAT.iter().map(|flat| flat.name).collect();
    assert_eq!(flags, table, "the table follows the flags, in their order");
    let defaults = figment::value::Value::serialize(Settings::default()).unwrap();
    for flat in FLAT {
        assert!(
            defaults.find_ref(flat.path).is_some(),
            "{} goes to {}, which no section has",
            flat.name,
            flat.path
        );
        let paths = FLAT.iter().filter(|other| other.path == flat.path).count();
        assert_eq!(paths, 1, "{} is set by two flags", flat.path);
    }
}

#[test]
fn help_shows_each_default_from_the_one_default_and_each_variable() {
    let mut command = command();
    let help = command.render_long_help().to_string();
    for expected in [
        "[default: 127.0.0.1:8080] [env: PALAVER_LISTEN]",
        "[default: 10000] [env: PALAVER_WS_WRITE_TIMEOUT_MS]",
        "[default: 30] [env: PALAVER_HTTP2_IDLE_TIMEOUT_SECS]",
        "[default: 30] [env: PALAVER_USERNAME_HOLD_DAYS]",
        "[default: 127.0.0.1:9090] [env: PALAVER_METRICS_LISTEN]",
        "[default: EdDSA] [env: PALAVER_JWT_ALGORITHM]",
        "[default: text] [env: PALAVER_LOG_FORMAT]",
        "[default: 5] [env: PALAVER_KAFKA_FETCH_WAIT_MS]",
        "[default: 4096] [env: PALAVER_MAX_BODY_BYTES]",
        "[default: 8] [env: PALAVER_KAFKA_PARTITIONS]",
        "[env: PALAVER_JWT_SECRET]",
    ] {
        assert!(help.contains(expected), "{expected}\n{help}");
    }
    assert!(!help.contains("[default: [redacted]]"));
    // Each default shown, read back through its flag, is the default.
    let defaults = figment::value::Value::serialize(Settings::default()).unwrap();
    for flat in FLAT {
        let default = defaults.find_ref(flat.path).unwrap();
        let Some(shown) = flat.unit.render(default) else {
            let none = match default {
                figment::value::Value::Empty(..) => true,
                figment::value::Value::Array(_, items) => items.is_empty(),
                _ => false,
            };
            assert!(
                none,
                "{} has a default that --help does not show",
                flat.name
            );
            continue;
        };
        let flag = flat.flag();
        let read = Settings::load_from(&parse(&[&flag, &shown]), vars(&[])).unwrap();
        assert_eq!(
            format!("{:?}", read),
            format!("{:?}", load(None, &[], &[]).unwrap()),
            "{flag} {shown}"
        );
    }
    // The subcommands that serve show them too.
    let migrate = command
        .find_subcommand_mut("migrate")
        .unwrap()
        .render_long_help()
        .to_string();
    assert!(migrate.contains("[env: PALAVER_DATABASE_URL]"), "{migrate}");
}

#[test]
fn the_reference_lists_every_flag_with_its_file_key() {
    let reference = include_str!("../../../../docs/configuration.md");
    for flat in FLAT {
        let row = format!("| `{}` | `{}` |", flat.flag(), flat.path);
        assert!(
            reference.contains(&row),
            "docs/configuration.md lacks {row}"
        );
    }
    // Its example file is one Palaver reads.
    let example = reference
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an example file");
    load(Some(example), &[], &[]).unwrap();
}

#[test]
fn subcommands_parse() {
    let cli = Cli::try_parse_from([
        "palaver",
        "db",
        "copy",
        "--from",
        "sqlite://a.db",
        "--to",
        "postgres://b",
    ])
    .unwrap();
    assert!(matches!(
        cli.command,
        Some(Command::Db(DbCommand::Copy { .. }))
    ));
    let cli =
        Cli::try_parse_from(["palaver", "migrate", "--database-url", "sqlite://a.db"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Migrate(_))));
    Cli::command().debug_assert();
}

#[test]
fn an_attachments_url_is_an_s3_bucket_and_prefix_from_any_layer_and_excludes_the_dir() {
    let url = "s3://palaver-files/attachments";
    let from_file = load(Some(&format!("[attachments]\nurl = \"{url}\"\n")), &[], &[]).unwrap();
    assert_eq!(from_file.attachments.url.as_deref(), Some(url));
    let from_env = load(None, &[("PALAVER_ATTACHMENTS_URL", url)], &[]).unwrap();
    assert_eq!(from_env.attachments.url.as_deref(), Some(url));
    let from_flag = load(None, &[], &["--attachments-url", url]).unwrap();
    assert_eq!(from_flag.attachments.url.as_deref(), Some(url));
    for bad in [
        "https://palaver-files/attachments",
        "s3://Palaver_Files/x",
        "s3://key:hidden@palaver-files/x",
    ] {
        let refused = load(None, &[], &["--attachments-url", bad]).unwrap_err();
        let said = format!("{refused:#}");
        assert!(said.contains("--attachments-url"), "{bad}: {said}");
        assert!(!said.contains("hidden"), "{bad}: {said}");
    }
    let both = load(
        None,
        &[],
        &["--attachments-url", url, "--attachments-dir", "/srv/files"],
    );
    assert!(both.is_err());
}
