//! The deploy files cannot run here (no container engine, no cluster), so this
//! reads each one and checks what a typo would break: syntax, the settings
//! names Palaver reads, probe paths, ports and names that must match.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(relative: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn deploy_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["", "kubernetes"] {
        for entry in std::fs::read_dir(deploy_dir().join(dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let name = entry.file_name().into_string().unwrap();
                files.push(if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
    }
    files.sort();
    files
}

/// Every `PALAVER_*` variable `palaver` reads.
fn known_variables() -> BTreeSet<String> {
    palaver_server::config::known_variables()
}

/// `PALAVER_…` words in a text.
fn variables_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("PALAVER_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        found.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    found
}

#[test]
fn every_yaml_file_parses_and_every_setting_is_one_palaver_reads() {
    let known = known_variables();
    assert!(known.contains("PALAVER_KAFKA_BROKERS"), "{known:?}");
    for file in deploy_files() {
        if file.ends_with(".yml") || file.ends_with(".yaml") {
            assert!(!yaml(&file).is_empty(), "{file} is empty");
        }
        for variable in variables_in(&read(&file)) {
            assert!(
                known.contains(&variable),
                "{file}: palaver does not read {variable}"
            );
        }
    }
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    const INSTRUCTIONS: [&str; 18] = [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ];
    let text = read("Dockerfile");
    // Join continuation lines, drop comments.
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut stages = Vec::new();
    let mut user = None;
    for line in &lines {
        let (instruction, args) = line.split_once(' ').unwrap_or((line, ""));
        assert!(
            INSTRUCTIONS.contains(&instruction),
            "unknown instruction: {line}"
        );
        match instruction {
            "FROM" => {
                let words: Vec<&str> = args.split_whitespace().collect();
                assert!(
                    words.len() == 3 && words[1].eq_ignore_ascii_case("AS"),
                    "unnamed stage: {line}"
                );
                stages.push(words[2].to_owned());
                user = None;
            }
            "COPY" => {
                if let Some(from) = args.strip_prefix("--from=") {
                    let stage = from.split_whitespace().next().unwrap();
                    assert!(
                        stages[..stages.len() - 1].iter().any(|s| s == stage),
                        "{line}"
                    );
                }
            }
            "USER" => user = Some(args.to_owned()),
            "EXPOSE" => assert_eq!(args, "8080"),
            _ => {}
        }
    }
    assert!(stages.len() >= 2, "multi-stage build expected: {stages:?}");
    let user = user.expect("the runtime stage sets USER");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "runs as root: {user}"
    );
    assert!(
        joined.contains("PALAVER_LISTEN=0.0.0.0:8080"),
        "listens on the exposed port"
    );
    assert!(
        joined.contains("-p palaver-server"),
        "builds the server package"
    );
}

#[test]
fn compose_runs_postgres_a_broker_two_nodes_and_a_balancer_over_them() {
    let doc = &yaml("docker-compose.yml")[0];
    let services = doc["services"].as_hash().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Yaml::as_str).collect();
    for required in ["postgres", "kafka", "palaver-1", "palaver-2", "balancer"] {
        assert!(
            names.contains(required),
            "missing service {required}: {names:?}"
        );
    }
    let node = &doc["x-palaver-node"];
    let environment = &node["environment"];
    let database = environment["PALAVER_DATABASE_URL"].as_str().unwrap();
    assert!(database.contains("@postgres:5432/"), "{database}");
    assert_eq!(
        environment["PALAVER_KAFKA_BROKERS"].as_str(),
        Some("kafka:9092")
    );
    assert!(
        environment["PALAVER_JWT_SECRET"].is_badvalue(),
        "nodes share their signing keys through the database, not a secret"
    );
    assert_eq!(
        node["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );

    let nginx = read("nginx.conf");
    assert_eq!(
        nginx.matches('{').count(),
        nginx.matches('}').count(),
        "nginx.conf braces"
    );
    for node in ["palaver-1", "palaver-2"] {
        assert!(
            nginx.contains(&format!("server {node}:8080")),
            "balancer misses {node}"
        );
    }
    assert!(
        nginx.contains("proxy_set_header Upgrade"),
        "WebSockets need the upgrade headers"
    );
}

#[test]
fn kubernetes_probes_ports_and_references_line_up() {
    let kustomization = &yaml("kubernetes/kustomization.yaml")[0];
    let mut kinds = std::collections::BTreeMap::new();
    for resource in kustomization["resources"].as_vec().unwrap() {
        let file = resource.as_str().unwrap();
        for doc in yaml(&format!("kubernetes/{file}")) {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: no kind"))
                .to_owned();
            assert!(
                doc["apiVersion"].as_str().is_some(),
                "{file}: no apiVersion"
            );
            kinds.insert(kind, doc);
        }
    }
    let deployment = &kinds["Deployment"];
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"],
        "the selector matches the pods"
    );
    let container = &pod["spec"]["containers"][0];
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"].as_i64(), Some(8080));
    let port_name = port["name"].as_str().unwrap();
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["port"].as_str(),
            Some(port_name)
        );
    }
    assert_eq!(
        pod["spec"]["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );

    let service = &kinds["Service"];
    assert_eq!(service["spec"]["selector"], pod["metadata"]["labels"]);
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_str(),
        Some(port_name)
    );

    let env_from = container["envFrom"].as_vec().unwrap();
    let config_map = env_from
        .iter()
        .find_map(|e| e["configMapRef"]["name"].as_str())
        .unwrap();
    let secret = env_from
        .iter()
        .find_map(|e| e["secretRef"]["name"].as_str())
        .unwrap();
    assert_eq!(
        kinds["ConfigMap"]["metadata"]["name"].as_str(),
        Some(config_map)
    );
    assert_eq!(kinds["Secret"]["metadata"]["name"].as_str(), Some(secret));
    let secret_keys = kinds["Secret"]["stringData"].as_hash().unwrap();
    assert!(
        secret_keys.contains_key(&Yaml::String("PALAVER_DATABASE_URL".into())),
        "the database URL (with its password) lives in the Secret"
    );
}
