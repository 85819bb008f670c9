//! The Grafana dashboard (`deploy/grafana/palaver.json`) and the Prometheus
//! alerts (`deploy/prometheus/alerts.yaml`) name only metrics a live node
//! exports, each used as its type allows: `rate` and `increase` over counters
//! (a summary's `_sum` and `_count` among them), `deriv` over gauges, a
//! `quantile` selector on a summary, and only labels the metric carries. The
//! node runs in cluster mode on a tansu broker, so the bus and outbox metrics
//! are there too; the metrics of TLS (`palaver_tls_*`), which only a node
//! serving TLS exports, are checked by the `tls` tests through
//! `tls_problems`. (`scripts/test` checks the rules themselves with promtool.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use palaver_client::grpc::proto;
use palaver_client::types::RegisterRequest;
use palaver_client::{ClientError, WsAuth};
use palaver_domain::throttle::Limit;
use yaml_rust2::YamlLoader;

use crate::helpers::*;

#[path = "../support/node.rs"]
mod node;

const DASHBOARD: &str = "grafana/palaver.json";
const ALERTS: &str = "prometheus/alerts.yaml";
/// Metrics only a node serving TLS exports.
const TLS_PREFIX: &str = "palaver_tls_";

/// Every expression of the dashboard and the alerts, and whether it needs a
/// node serving TLS.
fn expressions(tls: bool) -> Vec<Expression> {
    dashboard_expressions()
        .into_iter()
        .chain(alert_expressions())
        .filter(|expression| {
            let uses_tls =
                (expression.parsed.uses.iter()).any(|used| used.name.starts_with(TLS_PREFIX));
            uses_tls == tls
        })
        .collect()
}

/// What is wrong with the expressions that need TLS, against the metrics
/// text of a node serving it.
pub fn tls_problems(metrics_text: &str) -> Vec<String> {
    let expressions = expressions(true);
    assert!(!expressions.is_empty(), "the alerts watch the certificate");
    problems(&expressions, &Exported::parse(metrics_text))
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_name_is_exported_by_a_live_node() {
    let expressions = expressions(false);
    let broker = node::Broker::start().await;
    let app = spawn_app_with(|s| {
        s.kafka.brokers = Some(broker.addr.clone());
        s.kafka.topic = "palaver.dashboards".into();
        s.kafka.fetch_wait = Duration::from_millis(2);
        // One send, then every transport's refusal of the next.
        s.limits.set(Limit::SendPerUser, "1/h".parse().unwrap());
        s.realtime.max_sessions_per_user = 1;
    })
    .await;
    wait_for_bus(&app).await;
    drive_every_counted_path(&app).await;

    // What the node counts after an answer (a mail sent, a Kafka
    // acknowledgement, a cleared outbox row) may land just after it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let exported = Exported::parse(&app.metrics_text().await);
        let problems = problems(&expressions, &exported);
        if problems.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dashboard and the alerts do not match the node's metrics:\n{}",
            problems.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sessions, a message sent and delivered (through Kafka's producer and the
/// outbox), a mail, and a refusal on every transport.
async fn drive_every_counted_path(app: &TestApp) {
    let alice = app.signup("alice").await;
    let bob = app.signup("bob").await;
    let room = app.room_with(&alice, &[&bob]).await;
    let mut at_bob = bob.connect().await;
    let mut at_alice = alice.connect().await;
    at_alice
        .send(&send_frame(room.id, "hello", Some("c1")))
        .await
        .unwrap();
    assert_eq!(next_ack(&mut at_alice).await, (Some("c1".into()), 1));
    assert_eq!(next_message(&mut at_bob).await.body, "hello");

    let (status, code) = status_and_code(alice.client.post_message(room.id, "again", None).await);
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let refused = alice
        .grpc()
        .await
        .messages()
        .send(proto::SendRequest {
            room_id: room.id,
            body: "again".into(),
            client_id: None,
            reply_to: None,
            attachments: Vec::new(),
        })
        .await
        .expect_err("past the send budget");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    let second = WsAuth::Frame {
        token: bob.access_token.clone(),
        resume: None,
    };
    match app.connect_raw(second).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, 4500),
        other => panic!("a second session of bob's: {:?}", other.map(|_| ())),
    }

    app.client
        .register_with(RegisterRequest {
            username: "carol".into(),
            password: PASSWORD.into(),
            display_name: None,
            email: Some("carol@example.com".into()),
        })
        .await
        .unwrap();
    app.mail.nth_to("carol@example.com", 1).await;
}

/// Waits until the node reads the Kafka topic (`/readyz`: `bus: ok`).
async fn wait_for_bus(app: &TestApp) {
    tokio::time::timeout(WAIT * 3, async {
        loop {
            let health: serde_json::Value = app
                .client
                .request(reqwest::Method::GET, "/readyz")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if health["bus"] == "ok" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the node's Kafka bus becomes ready");
}

#[test]
fn a_misspelled_metric_a_wrong_function_or_an_unknown_label_is_reported() {
    let exported = Exported::parse(
        "# TYPE palaver_x_total counter\n\
         palaver_x_total{limit=\"send_per_user\"} 3\n\
         \n\
         # TYPE palaver_up gauge\n\
         palaver_up 1\n\
         \n\
         # TYPE palaver_s_seconds summary\n\
         palaver_s_seconds{quantile=\"0.99\"} 0.1\n\
         palaver_s_seconds_sum 2\n\
         palaver_s_seconds_count 7\n",
    );
    let check = |expr: &str| problems(&[Expression::promql("test", expr)], &exported);
    for fine in [
        r#"sum by (limit) (rate(palaver_x_total{instance=~"$instance"}[$__rate_interval]))"#,
        "rate(palaver_s_seconds_sum[5m]) / on (job) rate(palaver_s_seconds_count[5m]) > 2",
        r#"max by (instance) (palaver_s_seconds{quantile="0.99"}) and palaver_up == 0"#,
        "deriv(palaver_up[10m]) > 0 # a comment naming palaver_nothing",
    ] {
        assert_eq!(check(fine), Vec::<String>::new(), "{fine}");
    }
    for wrong in [
        "rate(palaver_y_total[5m])",
        "rate(palaver_up[5m])",
        "deriv(palaver_x_total[5m])",
        "palaver_x_total > 0",
        "palaver_s_seconds > 0",
        r#"rate(palaver_x_total{limt="send_per_user"}[5m])"#,
        "sum by (limt) (rate(palaver_x_total[5m]))",
        "rate(palaver_s_seconds_bucket[5m])",
    ] {
        assert_eq!(check(wrong).len(), 1, "{wrong}: {:?}", check(wrong));
    }
    let variable = Expression::label_values("test", "label_values(palaver_up, instance)");
    assert!(problems(&[variable], &exported).is_empty());
    let variable = Expression::label_values("test", "label_values(palaver_up, limit)");
    assert_eq!(problems(&[variable], &exported).len(), 1);
}

/// Where an expression is, and what it selects.
struct Expression {
    place: String,
    text: String,
    parsed: Parsed,
}

impl Expression {
    fn promql(place: &str, text: &str) -> Self {
        Self {
            place: place.to_owned(),
            text: text.to_owned(),
            parsed: parse(text),
        }
    }

    /// A Grafana variable's `label_values(metric, label)`.
    fn label_values(place: &str, text: &str) -> Self {
        let args = text
            .trim()
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{place}: not label_values(metric, label): {text}"));
        let (metric, label) = args.split_once(',').expect("two arguments");
        Self {
            place: place.to_owned(),
            text: text.to_owned(),
            parsed: Parsed {
                uses: vec![Use {
                    name: metric.trim().to_owned(),
                    function: Some("label_values".into()),
                    matchers: vec![label.trim().to_owned()],
                }],
                grouping: Vec::new(),
            },
        }
    }
}

fn deploy_file(relative: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

/// Every panel's queries and every variable's `label_values`.
fn dashboard_expressions() -> Vec<Expression> {
    let (_, text) = deploy_file(DASHBOARD);
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        let title = panel["title"].as_str().expect("every panel has a title");
        let targets = panel["targets"].as_array().map(Vec::as_slice);
        assert!(
            targets.is_some_and(|targets| !targets.is_empty()),
            "{DASHBOARD}: panel {title:?} queries nothing"
        );
        for target in targets.unwrap_or_default() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            found.push(Expression::promql(&format!("{DASHBOARD} {title:?}"), expr));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] == "query" {
            let name = variable["name"].as_str().unwrap_or_default();
            let query = variable["definition"]
                .as_str()
                .expect("a query's definition");
            found.push(Expression::label_values(
                &format!("{DASHBOARD} ${name}"),
                query,
            ));
        }
    }
    assert!(
        found.len() >= 20,
        "{DASHBOARD}: only {} queries",
        found.len()
    );
    found
}

/// Every rule's `expr`.
fn alert_expressions() -> Vec<Expression> {
    let (_, text) = deploy_file(ALERTS);
    let docs = YamlLoader::load_from_str(&text).expect("the alerts are YAML");
    let mut found = Vec::new();
    for group in docs[0]["groups"].as_vec().expect("groups") {
        for rule in group["rules"].as_vec().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            let expr = rule["expr"].as_str().expect("every alert has an expr");
            found.push(Expression::promql(&format!("{ALERTS} {name}"), expr));
        }
    }
    assert!(found.len() >= 6, "{ALERTS}: only {} alerts", found.len());
    found
}

/// One metric an expression selects.
#[derive(Debug)]
struct Use {
    name: String,
    /// The function whose argument it is (`rate`, `deriv`, `max`…).
    function: Option<String>,
    /// The label names its selector matches on.
    matchers: Vec<String>,
}

#[derive(Debug, Default)]
struct Parsed {
    uses: Vec<Use>,
    /// Labels named in `by`, `without`, `on`, `ignoring`, `group_left/right`.
    grouping: Vec<String>,
}

const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: [&str; 7] = ["and", "or", "unless", "bool", "offset", "inf", "nan"];

/// The metrics a PromQL expression selects (not its functions, label names,
/// strings, durations, numbers or Grafana `$variables`), each with the
/// function it is passed to, and the labels it groups or matches by.
fn parse(expr: &str) -> Parsed {
    let s: Vec<char> = expr.chars().collect();
    let mut parsed = Parsed::default();
    // For each open parenthesis, the function or aggregation it calls.
    let mut open: Vec<Option<String>> = Vec::new();
    // A function name whose `(` has not come yet (an aggregation's comes
    // after its `by (…)`).
    let mut calling: Option<String> = None;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == '#' {
            i = skip_until(&s, i, |c| c == '\n');
        } else if matches!(c, '"' | '\'' | '`') {
            i = skip_string(&s, i);
        } else if c == '[' {
            i = skip_until(&s, i, |c| c == ']') + 1;
        } else if c == '$' {
            i += 1;
            if s.get(i) == Some(&'{') {
                i = skip_until(&s, i, |c| c == '}') + 1;
            } else {
                i = skip_until(&s, i, |c| !is_ident(c));
            }
        } else if c.is_ascii_digit() || (c == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            i = skip_until(&s, i, |c| !(c.is_ascii_alphanumeric() || c == '.'));
        } else if c == '(' {
            open.push(calling.take());
            i += 1;
        } else if c == ')' {
            open.pop();
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let end = skip_until(&s, i, |c| !is_ident(c));
            let word: String = s[i..end].iter().collect();
            let next = skip_until(&s, end, |c| !c.is_whitespace());
            i = end;
            if GROUPING.contains(&word.as_str()) {
                if s.get(next) == Some(&'(') {
                    let close = skip_until(&s, next, |c| c == ')');
                    parsed.grouping.extend(names_in(&s[next + 1..close]));
                    i = close + 1;
                }
            } else if KEYWORDS.contains(&word.as_str()) {
            } else if AGGREGATIONS.contains(&word.as_str()) || s.get(next) == Some(&'(') {
                calling = Some(word);
            } else {
                let mut matchers = Vec::new();
                if s.get(next) == Some(&'{') {
                    let close = skip_selector(&s, next);
                    matchers = names_in(&s[next + 1..close]);
                    i = close + 1;
                }
                parsed.uses.push(Use {
                    name: word,
                    function: open.last().cloned().flatten(),
                    matchers,
                });
            }
        } else {
            i += 1;
        }
    }
    parsed
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The first index from `from` whose char is `stop` (or the end).
fn skip_until(s: &[char], from: usize, stop: impl Fn(char) -> bool) -> usize {
    (from..s.len()).find(|&i| stop(s[i])).unwrap_or(s.len())
}

/// The index just past the string literal opening at `from`.
fn skip_string(s: &[char], from: usize) -> usize {
    let quote = s[from];
    let mut i = from + 1;
    while i < s.len() && s[i] != quote {
        i += if s[i] == '\\' && quote != '`' { 2 } else { 1 };
    }
    i + 1
}

/// The index of the `}` closing the selector opening at `from`.
fn skip_selector(s: &[char], from: usize) -> usize {
    let mut i = from + 1;
    while i < s.len() && s[i] != '}' {
        i = if matches!(s[i], '"' | '\'' | '`') {
            skip_string(s, i)
        } else {
            i + 1
        };
    }
    i
}

/// The label names of a selector's matchers or a grouping list: each
/// comma-separated item's leading name (its quoted values never contain a
/// comma in these files).
fn names_in(s: &[char]) -> Vec<String> {
    let text: String = s.iter().collect();
    text.split(',')
        .map(|item| {
            item.trim()
                .chars()
                .take_while(|&c| is_ident(c))
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// What `/metrics` serves: each sample name with the label names it
/// carries, and each family's `# TYPE`.
struct Exported {
    samples: BTreeMap<String, BTreeSet<String>>,
    types: BTreeMap<String, String>,
}

impl Exported {
    fn parse(text: &str) -> Self {
        let mut samples: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (name, kind) = declared.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_owned(), kind.trim().to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let chars: Vec<char> = line.chars().collect();
            let end = skip_until(&chars, 0, |c| c == '{' || c == ' ');
            let name: String = chars[..end].iter().collect();
            let labels = if chars.get(end) == Some(&'{') {
                names_in(&chars[end + 1..skip_selector(&chars, end)])
            } else {
                Vec::new()
            };
            samples.entry(name).or_default().extend(labels);
        }
        Self { samples, types }
    }

    /// `counter`, `gauge`, `summary`, `histogram`; a summary's or a
    /// histogram's `_sum`, `_count` and `_bucket` are counters.
    fn kind(&self, name: &str) -> Option<&str> {
        if let Some(kind) = self.types.get(name) {
            return Some(kind);
        }
        ["_sum", "_count", "_bucket"].iter().find_map(|suffix| {
            let family = name.strip_suffix(suffix)?;
            match self.types.get(family)?.as_str() {
                "summary" if *suffix != "_bucket" => Some("counter"),
                "histogram" => Some("counter"),
                _ => None,
            }
        })
    }
}

/// Labels Prometheus adds to every scraped sample.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

/// Everything in `expressions` that does not fit `exported`, one line each.
fn problems(expressions: &[Expression], exported: &Exported) -> Vec<String> {
    let mut found = Vec::new();
    for expression in expressions {
        let mut say = |what: String| {
            found.push(format!(
                "{}: {what}\n    in {}",
                expression.place,
                expression.text.replace('\n', " ")
            ))
        };
        if expression.parsed.uses.is_empty() {
            say("selects no metric".into());
        }
        for used in &expression.parsed.uses {
            let name = &used.name;
            let Some(labels) = exported.samples.get(name) else {
                say(format!("{name} is not exported"));
                continue;
            };
            let kind = exported.kind(name).unwrap_or("untyped");
            let function = used.function.as_deref().unwrap_or("");
            match (kind, function) {
                ("counter", "rate" | "irate" | "increase") => {}
                (_, "rate" | "irate" | "increase") => {
                    say(format!("{function}() over {name}, a {kind}"))
                }
                ("gauge", "deriv" | "delta" | "predict_linear") => {}
                (_, "deriv" | "delta" | "predict_linear") => {
                    say(format!("{function}() over {name}, a {kind}"))
                }
                ("counter", _) => say(format!("{name} is a counter: rate() or increase() it")),
                ("summary", _) if !used.matchers.iter().any(|m| m == "quantile") => {
                    say(format!("{name} is a summary: select a quantile"))
                }
                ("gauge" | "summary", _) => {}
                _ => say(format!("{name} is a {kind}")),
            }
            for label in &used.matchers {
                if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                    say(format!("{name} has no label {label}"));
                }
            }
        }
        for label in &expression.parsed.grouping {
            let carried = expression.parsed.uses.iter().any(|used| {
                exported
                    .samples
                    .get(&used.name)
                    .is_some_and(|labels| labels.contains(label))
            });
            if !carried && !TARGET_LABELS.contains(&label.as_str()) {
                say(format!("no metric here has the label {label}"));
            }
        }
    }
    found
}
