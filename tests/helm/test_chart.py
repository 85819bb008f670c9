"""Checks the Helm chart in deploy/helm/palaver with Helm's own Go library.

No helm binary and no cluster are reachable where this runs, so the chart is
linted and rendered by helm-sdkpy (Helm v4's library behind a C interface):
`Lint` for the linter, and `Install` against a fake Kubernetes API server on
loopback for rendering. The fake server answers discovery (so the chart sees
a Kubernetes version and, when asked, the Prometheus operator's API) and takes
every object Helm creates; releases are kept in memory (HELM_DRIVER=memory).
An install runs exactly what `helm template` runs (the values schema, the
templates, `fail`), then hands back the rendered manifest.

Every rendered object is validated with kubernetes-validate (strict: unknown
fields are errors) against fixed Kubernetes versions. Each value of the schema
is set once and its effect checked, and the list of checked values must equal
the schema's.

Run by scripts/helm-test, which makes the virtual environment.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "palaver"

# Helm's Go runtime reads the environment the process started with, so the
# storage driver and Helm's own directories are set before it loads.
if os.environ.get("HELM_DRIVER") != "memory":
    home = ROOT / "target" / "helm-home"
    env = dict(os.environ, HELM_DRIVER="memory")
    for name, sub in [("HELM_CACHE_HOME", "cache"), ("HELM_CONFIG_HOME", "config"),
                      ("HELM_DATA_HOME", "data")]:
        env[name] = str(home / sub)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import helm_sdkpy  # noqa: E402
import kubernetes_validate  # noqa: E402
import yaml  # noqa: E402

# The chart's oldest Kubernetes (Chart.yaml kubeVersion) and the newest that
# the pinned kubernetes-validate knows: every object must be valid on both.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
RELEASE = "chat"
NAMESPACE = "palaver"
FULLNAME = "chat-palaver"

# Values that make cluster mode render.
CLUSTER = {
    "mode": "cluster",
    "cluster": {
        "database": {"url": "postgres://palaver:db-password-sentinel@db:5432/palaver"},
        "kafka": {"brokers": "kafka-1:9092,kafka-2:9092"},
    },
    "attachments": {"url": "s3://palaver-files/attachments"},
}

# --- the fake Kubernetes API server ------------------------------------------

# group/version -> [(kind, plural)]
BUILT_IN = {
    "v1": [("ConfigMap", "configmaps"), ("Secret", "secrets"), ("Service", "services"),
           ("PersistentVolumeClaim", "persistentvolumeclaims"), ("Namespace", "namespaces")],
    "apps/v1": [("StatefulSet", "statefulsets"), ("Deployment", "deployments")],
    "autoscaling/v2": [("HorizontalPodAutoscaler", "horizontalpodautoscalers")],
    "policy/v1": [("PodDisruptionBudget", "poddisruptionbudgets")],
    "networking.k8s.io/v1": [("Ingress", "ingresses")],
}
PROMETHEUS_OPERATOR = {"monitoring.coreos.com/v1": [("ServiceMonitor", "servicemonitors"),
                                                     ("PrometheusRule", "prometheusrules")]}


class FakeCluster:
    """A Kubernetes API server that answers discovery and accepts every object."""

    def __init__(self, version: str, groups: dict[str, list[tuple[str, str]]]):
        self.version = version
        self.groups = groups
        self.created: list[dict] = []
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = self.path.split("?")[0]
                answer = cluster.discovery(path)
                if answer is None:
                    self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                     "reason": "NotFound", "code": 404, "message": "not found"})
                else:
                    self.reply(200, answer)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                cluster.created.append(body)
                self.reply(201, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        port = self.server.server_address[1]
        self.kubeconfig = yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        })

    def discovery(self, path: str) -> dict | None:
        major, minor, _ = self.version.split(".")
        if path == "/version":
            return {"major": major, "minor": minor, "gitVersion": f"v{self.version}",
                    "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups = []
            for gv in self.groups:
                if "/" in gv:
                    group, version = gv.split("/")
                    entry = {"groupVersion": gv, "version": version}
                    groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        gv = path.removeprefix("/api/").removeprefix("/apis/")
        if gv in self.groups:
            return {"kind": "APIResourceList", "groupVersion": gv, "resources": [
                {"name": plural, "singularName": kind.lower(), "kind": kind,
                 "namespaced": kind != "Namespace",
                 "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                for kind, plural in self.groups[gv]]}
        return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- rendering ----------------------------------------------------------------


class Refused(Exception):
    """Helm refused the values (schema, `fail`, or the cluster's version)."""


class Rendered:
    def __init__(self, manifest: str, notes: str):
        self.docs = [doc for doc in yaml.safe_load_all(manifest) if doc]
        self.notes = notes

    def of_kind(self, kind: str) -> list[dict]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = [doc for doc in self.of_kind(kind)
                 if name is None or doc["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def kinds(self) -> list[str]:
        return sorted(doc["kind"] for doc in self.docs)

    def workload(self) -> dict:
        found = self.of_kind("StatefulSet") + self.of_kind("Deployment")
        assert len(found) == 1, f"expected one workload, found {len(found)}"
        return found[0]

    def pod(self) -> dict:
        return self.workload()["spec"]["template"]["spec"]

    def container(self) -> dict:
        containers = self.pod()["containers"]
        assert len(containers) == 1
        return containers[0]

    def config(self) -> dict:
        return self.one("ConfigMap")["data"]

    def secret(self) -> dict | None:
        secrets = self.of_kind("Secret")
        if not secrets:
            return None
        assert len(secrets) == 1
        return {k: base64.b64decode(v).decode() for k, v in secrets[0]["data"].items()}


CLUSTERS: dict[tuple[str, bool], FakeCluster] = {}
RENDERED: dict[str, Rendered] = {}
RENDERS = itertools.count()


def fake_cluster(version: str = KUBERNETES_VERSIONS[0], prometheus: bool = False) -> FakeCluster:
    key = (version, prometheus)
    if key not in CLUSTERS:
        groups = dict(BUILT_IN, **(PROMETHEUS_OPERATOR if prometheus else {}))
        CLUSTERS[key] = FakeCluster(version, groups)
    return CLUSTERS[key]


def render(values: dict, prometheus: bool = False,
           version: str = KUBERNETES_VERSIONS[0], chart: Path = CHART) -> Rendered:
    """Installs the chart into a fake cluster and returns what Helm rendered."""
    key = json.dumps([values, prometheus, version, str(chart)], sort_keys=True)
    if key in RENDERED:
        return RENDERED[key]
    cluster = fake_cluster(version, prometheus)
    # A configuration of its own: each keeps its releases in its own memory.
    config = helm_sdkpy.Configuration(namespace=NAMESPACE, kubeconfig=cluster.kubeconfig)
    next(RENDERS)
    try:
        release = asyncio.run(helm_sdkpy.Install(config).run(
            RELEASE, str(chart), values=copy.deepcopy(values) or None, wait=False, timeout=60))
    except helm_sdkpy.InstallError as error:
        raise Refused(str(error)) from None
    rendered = Rendered(release["manifest"], release["info"].get("notes", ""))
    RENDERED[key] = rendered
    return rendered


def refused(values: dict, **kwargs) -> str:
    try:
        render(values, **kwargs)
    except Refused as refusal:
        return str(refusal)
    raise AssertionError(f"Helm accepted {json.dumps(values)}")


def merged(*layers: dict) -> dict:
    out: dict = {}
    for layer in layers:
        out = merge(out, layer)
    return out


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and value:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def at(path: str, value) -> dict:
    """{"a": {"b": value}} from "a.b"."""
    out = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return out


# --- facts read from the rest of the repository --------------------------------


def drain_seconds() -> int:
    """The longest Palaver waits while stopping: every bounded wait of
    Application::run in crates/server/src/app.rs, one after another."""
    source = (ROOT / "crates/server/src/app.rs").read_text()
    constants = {name: int(seconds) for name, seconds in re.findall(
        r"const (\w+_GRACE): Duration = Duration::from_secs\((\d+)\);", source)}
    assert constants, "no *_GRACE constants in app.rs"
    run = source[source.index("pub async fn run(self)"):]
    uses = re.findall(r"(?:timeout|flush)\((\w+_GRACE)\b", run)
    assert set(uses) == set(constants), f"grace constants {constants} vs uses {uses}"
    return sum(constants[name] for name in uses)


def documented_variables() -> dict[str, str]:
    """docs/configuration.md's table: file key -> PALAVER_* variable."""
    table = {}
    for line in (ROOT / "docs/configuration.md").read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.split("|")[1:-1]]
        if len(cells) == 4 and cells[2].startswith("PALAVER_"):
            table[cells[1]] = cells[2]
    assert len(table) > 40, table
    return table


def documented_secret_variables() -> set[str]:
    text = (ROOT / "docs/configuration.md").read_text()
    sentence = re.search(r"Secrets \(([^)]*)\) never show", text, re.S)
    assert sentence, "docs/configuration.md no longer lists the secret settings"
    keys = re.findall(r"`([a-z_.]+)`", sentence.group(1))
    table = documented_variables()
    return {table[key] for key in keys}


def documented_aws_variables() -> set[str]:
    """The AWS_* variables docs/configuration.md says Palaver reads (S3)."""
    text = (ROOT / "docs/configuration.md").read_text()
    names = set(re.findall(r"`(AWS_[A-Z_]+)`", text))
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= names, names
    return names


# The AWS_* variables that are credentials: never in a ConfigMap.
AWS_SECRETS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


def schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def drain_in_chart() -> int:
    helpers = (CHART / "templates/_helpers.tpl").read_text()
    return int(re.search(r'define "palaver.drainSeconds" -}}(\d+){{', helpers).group(1))


# --- checks on every rendering ----------------------------------------------------


def check_pod(r: Rendered) -> None:
    """What every pod must have, whatever the values."""
    pod, container = r.pod(), r.container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["http"] == 8080, ports
    tls = "PALAVER_TLS_CERT" in r.config()
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                        ("startupProbe", "/healthz")]:
        expected = {"path": path, "port": "http", **({"scheme": "HTTPS"} if tls else {})}
        assert container[probe]["httpGet"] == expected, container[probe]
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001, security
    own = container["securityContext"]
    assert own["readOnlyRootFilesystem"] is True, own
    assert own["allowPrivilegeEscalation"] is False, own
    assert own["capabilities"]["drop"] == ["ALL"], own
    assert pod["enableServiceLinks"] is False, "Service links put PALAVER_* variables in the pod"
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"], resources
    assert resources["limits"]["memory"], resources
    sleep = 0
    if "lifecycle" in container:
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep", command
        sleep = int(command[1])
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > sleep + drain_seconds(), (
        f"grace period {grace}s is not longer than preStop {sleep}s + drain {drain_seconds()}s")
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    data_dir = r.config()["PALAVER_DATA_DIR"]
    assert mounts.get(data_dir) == "data", (data_dir, mounts)
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp"
    labels = r.workload()["spec"]["template"]["metadata"]["labels"]
    assert r.workload()["spec"]["selector"]["matchLabels"].items() <= labels.items()


def check_settings(r: Rendered) -> None:
    """Every PALAVER_* variable is one Palaver reads; secrets only in Secrets."""
    known = set(documented_variables().values()) | {"PALAVER_CONFIG"} | documented_aws_variables()
    secrets = documented_secret_variables() | AWS_SECRETS
    config = r.config()
    names = set(config) - {"palaver.toml"}
    names |= set(r.secret() or {})
    names |= {entry["name"] for entry in r.container().get("env", [])}
    for name in names:
        assert name in known or name.startswith("PALAVER_LIMIT_"), f"palaver reads no {name}"
    leaked = secrets & set(config)
    assert not leaked, f"secret settings in the ConfigMap: {leaked}"
    for entry in r.container().get("env", []):
        if entry["name"] in secrets:
            assert "secretKeyRef" in entry.get("valueFrom", {}), entry


def check_references(r: Rendered) -> None:
    """Names one object gives another exist, and selectors select the pods."""
    pod_labels = r.workload()["spec"]["template"]["metadata"]["labels"]
    services = {doc["metadata"]["name"]: doc for doc in r.of_kind("Service")}
    for service in services.values():
        assert service["spec"]["selector"].items() <= pod_labels.items()
        pod_ports = {port["name"] for port in r.container()["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in pod_ports, (service["metadata"]["name"], port)
    for source in r.container()["envFrom"]:
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == r.one("ConfigMap")["metadata"]["name"]
    for ingress in r.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = [p["port"] for p in services[backend["name"]]["spec"]["ports"]]
                assert backend["port"]["number"] in ports, backend
    for hpa in r.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", r.workload()["metadata"]["name"])
        assert "replicas" not in r.workload()["spec"], "the autoscaler owns the replica count"
    for pdb in r.of_kind("PodDisruptionBudget"):
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    for monitor in r.of_kind("ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        chosen = [s for s in services.values() if selector.items() <= s["metadata"]["labels"].items()]
        assert len(chosen) == 1, f"the ServiceMonitor selects {len(chosen)} Services"
        names = {port["name"] for port in chosen[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in names, (endpoint, names)
    if r.workload()["kind"] == "StatefulSet":
        governing = r.workload()["spec"]["serviceName"]
        assert services[governing]["spec"]["clusterIP"] == "None"


def check_every_rendering() -> int:
    checked = 0
    for key, r in RENDERED.items():
        values = json.loads(key)[0]
        try:
            check_pod(r)
            check_settings(r)
            check_references(r)
        except AssertionError as error:
            raise AssertionError(f"with values {json.dumps(values)}: {error}") from error
        checked += 1
    return checked


# --- the tests ------------------------------------------------------------------

TESTS = []


def test(function):
    TESTS.append(function)
    return function


@test
def the_linter_finds_nothing_and_catches_a_broken_chart():
    config = helm_sdkpy.Configuration(namespace=NAMESPACE,
                                      kubeconfig=fake_cluster().kubeconfig)
    result = asyncio.run(helm_sdkpy.Lint(config).run(str(CHART)))
    # Severities: 1 info, 2 warning, 3 error. helm-sdkpy hands back each
    # message's file, not its text: render() below names the reason.
    bad = [m for m in result["Messages"] if m["Severity"] >= 2]
    assert not bad and not result["Errors"], f"lint: {result}"
    assert result["TotalChartsLinted"] == 1
    with tempfile.TemporaryDirectory() as scratch:
        broken = Path(scratch) / "palaver"
        shutil.copytree(CHART, broken)
        values = (broken / "values.yaml").read_text()
        (broken / "values.yaml").write_text(values.replace("mode: embedded", "mode: both"))
        result = asyncio.run(helm_sdkpy.Lint(config).run(str(broken)))
        assert "values.yaml" in [m["Path"] for m in result["Messages"] if m["Severity"] == 3], result


@test
def embedded_mode_is_one_pod_of_a_stateful_set_with_its_volume():
    r = render({})
    assert r.kinds() == ["ConfigMap", "Service", "Service", "StatefulSet"], r.kinds()
    workload = r.one("StatefulSet", FULLNAME)
    assert workload["spec"]["replicas"] == 1
    (claim,) = workload["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "data" not in {v["name"] for v in r.pod()["volumes"]}, "data comes from the claim"
    assert "PALAVER_DATABASE_URL" not in r.config() and "PALAVER_KAFKA_BROKERS" not in r.config()
    assert r.secret() is None, "nothing secret to keep in embedded mode by default"
    assert "StatefulSet" in r.notes or "embedded" in r.notes, r.notes


@test
def embedded_mode_refuses_more_than_one_pod():
    for values in [{"replicaCount": 3}, {"embedded": {"replicas": 2}},
                   {"cluster": {"database": {"url": "postgres://db/palaver"}}}]:
        message = refused(values)
        assert "values don't meet the specifications of the schema" in message, message


@test
def cluster_mode_is_a_deployment_with_an_autoscaler_and_a_disruption_budget():
    r = render(CLUSTER)
    assert r.kinds() == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler",
                         "PodDisruptionBudget", "Secret", "Service", "Service"], r.kinds()
    assert r.secret() == {"PALAVER_DATABASE_URL": CLUSTER["cluster"]["database"]["url"]}
    assert r.config()["PALAVER_KAFKA_BROKERS"] == "kafka-1:9092,kafka-2:9092"
    assert r.config()["PALAVER_KAFKA_TOPIC"] == "palaver.events"
    assert r.config()["PALAVER_ATTACHMENTS_URL"] == "s3://palaver-files/attachments"
    hpa = r.one("HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert r.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert {"secretRef": {"name": FULLNAME}} in r.container()["envFrom"]
    assert not any(v.get("persistentVolumeClaim") for v in r.pod()["volumes"])
    assert r.workload()["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@test
def cluster_mode_without_postgresql_or_kafka_fails_to_render():
    no_database = merged(CLUSTER, {"cluster": {"database": {"url": ""}}})
    assert "cluster mode needs PostgreSQL" in refused(no_database)
    no_kafka = merged(CLUSTER, {"cluster": {"kafka": {"brokers": ""}}})
    assert "cluster mode needs Kafka" in refused(no_kafka)
    # Files on one pod's disk would be missing on every other.
    no_bucket = merged(CLUSTER, {"attachments": {"url": ""}})
    assert "cluster mode needs attachments in storage every pod reaches" in refused(no_bucket)
    from_secrets = merged(CLUSTER, {"cluster": {
        "database": {"url": "", "existingSecret": "palaver-db"},
        "kafka": {"brokers": "", "existingSecret": "palaver-kafka", "existingSecretKey": "brokers"}}})
    r = render(from_secrets)
    env = {entry["name"]: entry["valueFrom"]["secretKeyRef"] for entry in r.container()["env"]}
    assert env == {"PALAVER_DATABASE_URL": {"name": "palaver-db", "key": "PALAVER_DATABASE_URL"},
                   "PALAVER_KAFKA_BROKERS": {"name": "palaver-kafka", "key": "brokers"}}, env
    assert r.secret() is None and "PALAVER_KAFKA_BROKERS" not in r.config()


@test
def secrets_never_reach_a_config_map():
    sentinel = "secret-sentinel-4711"
    values = merged(CLUSTER, {
        "cluster": {"database": {"url": f"postgres://palaver:{sentinel}@db/palaver"}},
        "secretEnv": {"PALAVER_SMTP_URL": f"smtps://u:{sentinel}@mail:465",
                      "PALAVER_KAFKA_SASL_PASSWORD": sentinel,
                      "PALAVER_JWT_SECRET": sentinel},
        "attachments": {"env": {"AWS_REGION": "eu-west-1"},
                        "secretEnv": {"AWS_SECRET_ACCESS_KEY": sentinel}},
        "env": {"PALAVER_CORS_ORIGINS": "https://chat.example.com"},
        "configFile": '[http]\ncors_origins = ["https://chat.example.com"]\n',
    })
    r = render(values)
    for doc in r.docs:
        if doc["kind"] != "Secret":
            assert sentinel not in json.dumps(doc), f"a secret in {doc['kind']} {doc['metadata']['name']}"
    assert set(r.secret()) == {"PALAVER_DATABASE_URL", "PALAVER_SMTP_URL",
                               "PALAVER_KAFKA_SASL_PASSWORD", "PALAVER_JWT_SECRET",
                               "AWS_SECRET_ACCESS_KEY"}
    # Only the S3 settings that are not secret are kept in the open: the
    # credentials, their aliases (object_store reads AWS_TOKEN as the session
    # token) and an endpoint holding a password are refused there.
    for variable in sorted(AWS_SECRETS | {"AWS_TOKEN", "AWS_SOMETHING_NEW"}):
        message = refused({"attachments": {"env": {variable: "x"}}})
        assert "/attachments/env" in message, message
    message = refused({"attachments": {"env": {"AWS_ENDPOINT_URL": "https://u:p@minio:9000"}}})
    assert "/attachments/env/AWS_ENDPOINT_URL" in message, message
    # The schema keeps every secret setting out of env and of the TOML file.
    for variable in sorted(documented_secret_variables()):
        message = refused({"env": {variable: "x"}})
        assert f"/env/{variable}" in message, message
    for toml in ['[database]\nurl = "postgres://u:p@db/palaver"\n',
                 'database.url = "postgres://u:p@db/palaver"\n',
                 '[mail]\n  smtp_url = "smtps://u:p@mail"\n',
                 'kafka = { brokers = "k:9092", sasl_password = "p" }\n',
                 '[tokens]\n"jwt_secret" = "p"\n',
                 '[kafka]\nssl_key_password="p"\n']:
        message = refused({"configFile": toml})
        assert "/configFile" in message, (toml, message)


@test
def the_schemas_secret_list_is_the_documented_one():
    properties = schema()["properties"]
    refused_in_env = {name for name, rule in properties["env"]["properties"].items()
                      if rule == {"not": {}, "description": rule["description"]}}
    assert documented_secret_variables() <= refused_in_env, refused_in_env
    pattern = properties["configFile"]["not"]["pattern"]
    table = documented_variables()
    for variable in documented_secret_variables():
        key = next(k for k, v in table.items() if v == variable).split(".")[-1]
        assert f"|{key}|" in pattern.replace("(", "|").replace(")", "|"), (key, pattern)


@test
def the_grace_period_outlasts_palavers_drain():
    assert drain_in_chart() == drain_seconds(), (
        f"_helpers.tpl says Palaver drains in {drain_in_chart()} s, app.rs in {drain_seconds()} s")
    values = chart_values()
    assert values["terminationGracePeriodSeconds"] > values["preStopSleepSeconds"] + drain_seconds()
    message = refused({"terminationGracePeriodSeconds": 40, "preStopSleepSeconds": 10})
    assert "must exceed preStopSleepSeconds (10) plus Palaver's drain (35 s)" in message, message
    message = refused({"terminationGracePeriodSeconds": 30, "preStopSleepSeconds": 0})
    assert "/terminationGracePeriodSeconds" in message, message
    r = render({"terminationGracePeriodSeconds": 36, "preStopSleepSeconds": 0})
    assert r.pod()["terminationGracePeriodSeconds"] == 36


@test
def a_service_monitor_only_where_the_prometheus_operator_is():
    assert not render(CLUSTER).of_kind("ServiceMonitor")
    assert "No ServiceMonitor" in render(CLUSTER).notes
    monitor = render(CLUSTER, prometheus=True).one("ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert "No ServiceMonitor" not in render(CLUSTER, prometheus=True).notes
    off = merged(CLUSTER, {"metrics": {"serviceMonitor": {"enabled": False}}})
    assert not render(off, prometheus=True).of_kind("ServiceMonitor")
    no_metrics = merged(CLUSTER, {"metrics": {"enabled": False}})
    assert not render(no_metrics, prometheus=True).of_kind("ServiceMonitor")
    # The public Service never carries the metrics port.
    public = render(CLUSTER, prometheus=True).one("Service", FULLNAME)
    assert [p["name"] for p in public["spec"]["ports"]] == ["http"]


@test
def the_ingress_gives_websockets_and_grpc_what_they_need():
    values = merged(CLUSTER, {"ingress": {"enabled": True, "host": "chat.example.com",
                                          "tlsSecretName": "chat-tls"}})
    r = render(values)
    http = r.one("Ingress", FULLNAME)
    grpc = r.one("Ingress", f"{FULLNAME}-grpc")
    notes = http["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600", notes
    assert notes["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600", notes
    assert "nginx.ingress.kubernetes.io/backend-protocol" not in notes, "WebSockets need HTTP/1.1"
    assert [p["path"] for p in http["spec"]["rules"][0]["http"]["paths"]] == ["/"]
    grpc_notes = grpc["metadata"]["annotations"]
    assert grpc_notes["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC", grpc_notes
    assert grpc_notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600", grpc_notes
    assert grpc_notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "0", grpc_notes
    paths = {p["path"] for p in grpc["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/" + service for service in grpc_services()}, paths
    for ingress in (http, grpc):
        assert ingress["spec"]["tls"] == [{"hosts": ["chat.example.com"], "secretName": "chat-tls"}]
        assert ingress["spec"]["ingressClassName"] == "nginx"
    no_tls = merged(values, {"ingress": {"tlsSecretName": ""}})
    assert "gRPC through ingress-nginx needs TLS" in render(no_tls).notes


@test
def tls_at_the_pod_mounts_the_secret_and_probes_and_proxies_over_https():
    values = merged(CLUSTER, INGRESS, {"tls": {"secretName": "chat-tls"}})
    r = render(values)
    config = r.config()
    assert config["PALAVER_TLS_CERT"] == "/etc/palaver-tls/tls.crt", config
    assert config["PALAVER_TLS_KEY"] == "/etc/palaver-tls/tls.key", config
    (volume,) = [v for v in r.pod()["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == "chat-tls", volume
    # Readable by the pod's group (fsGroup) only, never by others.
    assert volume["secret"]["defaultMode"] & 0o007 == 0, volume
    mount = {"name": "tls", "mountPath": "/etc/palaver-tls", "readOnly": True}
    assert mount in r.container()["volumeMounts"], r.container()["volumeMounts"]
    assert all("subPath" not in m for m in r.container()["volumeMounts"]), "renewals reach no subPath"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert r.container()[probe]["httpGet"]["scheme"] == "HTTPS"
    protocol = "nginx.ingress.kubernetes.io/backend-protocol"
    assert annotation(r, FULLNAME, protocol) == "HTTPS"
    assert annotation(r, f"{FULLNAME}-grpc", protocol) == "GRPCS"
    plain = render(merged(CLUSTER, INGRESS))
    assert "PALAVER_TLS_CERT" not in plain.config()
    assert "tls" not in {v["name"] for v in plain.pod()["volumes"]}
    assert annotation(plain, f"{FULLNAME}-grpc", protocol) == "GRPC"


@test
def the_plain_manifests_are_valid_and_drain_in_time():
    # deploy/kubernetes: the same pod rules as the chart's, without Helm.
    for path in sorted((ROOT / "deploy/kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") == "Kustomization":
                continue
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
            if doc["kind"] == "Deployment":
                pod = doc["spec"]["template"]["spec"]
                (container,) = pod["containers"]
                sleep = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
                assert pod["terminationGracePeriodSeconds"] > sleep + drain_seconds(), pod
                assert pod["enableServiceLinks"] is False
                assert container["securityContext"]["readOnlyRootFilesystem"] is True
                mounts = {m["mountPath"] for m in container["volumeMounts"]}
                assert "/tmp" in mounts, "a read-only root needs a writable /tmp"
            if doc["kind"] == "ConfigMap":
                # Several nodes: their files in a bucket, its credentials not here.
                assert doc["data"]["PALAVER_ATTACHMENTS_URL"].startswith("s3://"), doc
                assert not AWS_SECRETS & set(doc["data"]), doc


@test
def a_prometheus_rule_carries_the_alerts_as_they_are():
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    assert (CHART / "files/alerts.yaml").resolve() == (ROOT / "deploy/prometheus/alerts.yaml"), (
        "the chart's alerts are the deploy/prometheus file itself")
    rule = render(CLUSTER, prometheus=True).one("PrometheusRule")
    assert rule["spec"]["groups"] == alerts["groups"]
    assert not render(CLUSTER).of_kind("PrometheusRule"), "no operator, no PrometheusRule"
    no_metrics = merged(CLUSTER, {"metrics": {"enabled": False}})
    assert not render(no_metrics, prometheus=True).of_kind("PrometheusRule")


def grpc_services() -> set[str]:
    """The services Palaver serves: its protos', then health and reflection."""
    services = set()
    for proto in (ROOT / "proto").rglob("*.proto"):
        text = proto.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
        services |= {f"{package}.{name}" for name in re.findall(r"^service (\w+)", text, re.M)}
    grpc = (ROOT / "crates/server/src/grpc.rs").read_text()
    assert "tonic_health" in grpc and ".build_v1()" in grpc and ".build_v1alpha()" in grpc
    return services | {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                       "grpc.reflection.v1alpha.ServerReflection"}


@test
def a_cluster_older_than_the_chart_supports_is_refused():
    message = refused({}, version="1.29.4")
    assert "kubeVersion" in message or "Kubernetes version" in message, message


@test
def wrong_values_fail_at_install_time():
    schema_cases = [
        ({"mode": "both"}, "/mode"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"image": {"repository": ""}}, "/image/repository"),
        ({"imagePullSecrets": ["regcred"]}, "/imagePullSecrets/0"),
        ({"fullnameOverride": "Chat_Server"}, "/fullnameOverride"),
        ({"embedded": {"persistence": {"size": "ten gigs"}}}, "/embedded/persistence/size"),
        (merged(CLUSTER, {"cluster": {"replicas": 0}}), "/cluster/replicas"),
        (merged(CLUSTER, {"cluster": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}}),
         "/cluster/autoscaling/targetCPUUtilizationPercentage"),
        (merged(CLUSTER, {"cluster": {"podDisruptionBudget": {"maxUnavailable": "half"}}}),
         "/cluster/podDisruptionBudget/maxUnavailable"),
        (merged(CLUSTER, {"cluster": {"database": {"url": "mysql://db/palaver"}}}),
         "/cluster/database/url"),
        (merged(CLUSTER, {"cluster": {"database": {"existingSecret": "db"}}}), "/cluster/database"),
        (merged(CLUSTER, {"cluster": {"kafka": {"brokers": "a:9092, b:9092"}}}),
         "/cluster/kafka/brokers"),
        (merged(CLUSTER, {"cluster": {"kafka": {"topic": ""}}}), "/cluster/kafka/topic"),
        ({"attachments": {"url": "https://bucket.s3.amazonaws.com/x"}}, "/attachments/url"),
        ({"attachments": {"url": "s3://key:secret@bucket/x"}}, "/attachments/url"),
        ({"attachments": {"secretEnv": {"PALAVER_JWT_SECRET": "x"}}}, "/attachments/secretEnv"),
        ({"attachments": {"secretEnv": {"AWS_REGION": "eu-west-1"}}}, "/attachments/secretEnv"),
        ({"env": {"PALAVER_ATTACHMENTS_URL": "s3://b/p"}}, "/env/PALAVER_ATTACHMENTS_URL"),
        ({"logFormat": "yaml"}, "/logFormat"),
        ({"env": {"palaver_cors_origins": "x"}}, "/env"),
        ({"env": {"PALAVER_LISTEN": "0.0.0.0:1"}}, "/env/PALAVER_LISTEN"),
        ({"env": {"PALAVER_MAX_CONNECTIONS": 100}}, "/env/PALAVER_MAX_CONNECTIONS"),
        ({"secretEnv": {"PALAVER_DATABASE_URL": "postgres://x"}}, "/secretEnv/PALAVER_DATABASE_URL"),
        ({"service": {"type": "ExternalName"}}, "/service/type"),
        ({"service": {"port": 70000}}, "/service/port"),
        ({"ingress": {"enabled": True}}, "/ingress/host"),
        ({"ingress": {"controller": "traefik"}}, "/ingress/controller"),
        ({"ingress": {"host": "https://chat.example.com"}}, "/ingress/host"),
        ({"ingress": {"timeoutSeconds": 10}}, "/ingress/timeoutSeconds"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/metrics/serviceMonitor/interval"),
        ({"metrics": {"prometheusRule": {"labels": {"release": 1}}}},
         "/metrics/prometheusRule/labels/release"),
        ({"tls": {"secretName": "Chat_TLS"}}, "/tls/secretName"),
        ({"env": {"PALAVER_TLS_CERT": "/cert.pem"}}, "/env/PALAVER_TLS_CERT"),
        # null removes a default, as on helm's command line.
        ({"resources": {"requests": {"memory": None}}}, "/resources/requests"),
        ({"resources": {"limits": {"memory": None}}}, "/resources/limits"),
        ({"resources": {"requests": {"cpu": "half"}}}, "/resources/requests/cpu"),
        ({"preStopSleepSeconds": -1}, "/preStopSleepSeconds"),
        ({"nodeSelector": {"zone": 1}}, "/nodeSelector/zone"),
        ({"tolerations": ["x"]}, "/tolerations/0"),
        ({"podAnnotations": {"a": True}}, "/podAnnotations/a"),
        ({"unknown": 1}, "unknown"),
    ]
    for values, where in schema_cases:
        message = refused(values)
        assert "values don't meet the specifications of the schema" in message, (values, message)
        assert where in message, (values, where, message)
    fail_cases = [
        (merged(CLUSTER, {"cluster": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}),
         "minReplicas (5) exceeds maxReplicas (2)"),
    ]
    for values, reason in fail_cases:
        message = refused(values)
        assert reason in message, (values, message)
    # And what is right passes: settings in a file that are not secrets.
    r = render({"configFile": '[http]\ntrusted_proxies = ["10.0.0.0/8"]\n[mail]\nfrom = "P <p@x>"\n'})
    assert r.config()["PALAVER_CONFIG"] == "/etc/palaver/palaver.toml"


# Each value of the schema: the values it is set in (beyond the defaults), the
# value, what must hold with it and not without it, and values that must come
# with it.
def image(r):
    return r.container()["image"]


def env_from_secrets(r):
    return [s["secretRef"]["name"] for s in r.container()["envFrom"] if "secretRef" in s]


def secret_ref(r, variable):
    for entry in r.container().get("env", []):
        if entry["name"] == variable:
            return entry["valueFrom"]["secretKeyRef"]
    return None


def annotation(r, name, key):
    for ingress in r.of_kind("Ingress"):
        if ingress["metadata"]["name"] == name:
            return ingress["metadata"].get("annotations", {}).get(key)
    return None


INGRESS = {"ingress": {"enabled": True, "host": "chat.example.com"}}
NO_HPA = merged(CLUSTER, {"cluster": {"autoscaling": {"enabled": False}}})
EFFECTS = [
    ("mode", {}, "cluster", lambda r: r.workload()["kind"] == "Deployment", CLUSTER),
    ("image.repository", {}, "registry.example/palaver",
     lambda r: image(r).startswith("registry.example/palaver:")),
    ("image.tag", {}, "9.9.9", lambda r: image(r) == "palaver:9.9.9"),
    ("image.pullPolicy", {}, "Always", lambda r: r.container()["imagePullPolicy"] == "Always"),
    ("imagePullSecrets", {}, [{"name": "regcred"}],
     lambda r: r.pod().get("imagePullSecrets") == [{"name": "regcred"}]),
    ("nameOverride", {}, "talk",
     lambda r: r.workload()["metadata"]["name"] == "chat-talk"
     and r.workload()["metadata"]["labels"]["app.kubernetes.io/name"] == "talk"),
    ("fullnameOverride", {}, "talk", lambda r: r.workload()["metadata"]["name"] == "talk"),
    ("embedded.persistence.size", {}, "1Gi",
     lambda r: r.workload()["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"),
    ("embedded.persistence.storageClassName", {}, "fast",
     lambda r: r.workload()["spec"]["volumeClaimTemplates"][0]["spec"].get("storageClassName") == "fast"),
    ("cluster.replicas", NO_HPA, 5, lambda r: r.workload()["spec"]["replicas"] == 5),
    ("cluster.autoscaling.enabled", CLUSTER, False,
     lambda r: not r.of_kind("HorizontalPodAutoscaler") and r.workload()["spec"]["replicas"] == 3),
    ("cluster.autoscaling.minReplicas", CLUSTER, 2,
     lambda r: r.one("HorizontalPodAutoscaler")["spec"]["minReplicas"] == 2),
    ("cluster.autoscaling.maxReplicas", CLUSTER, 20,
     lambda r: r.one("HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 20),
    ("cluster.autoscaling.targetCPUUtilizationPercentage", CLUSTER, 50,
     lambda r: r.one("HorizontalPodAutoscaler")["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50),
    ("cluster.podDisruptionBudget.enabled", CLUSTER, False,
     lambda r: not r.of_kind("PodDisruptionBudget")),
    ("cluster.podDisruptionBudget.maxUnavailable", CLUSTER, "50%",
     lambda r: r.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == "50%"),
    ("cluster.database.url", CLUSTER, "postgres://other@db2/palaver",
     lambda r: r.secret()["PALAVER_DATABASE_URL"] == "postgres://other@db2/palaver"),
    ("cluster.database.existingSecret", CLUSTER, "db",
     lambda r: secret_ref(r, "PALAVER_DATABASE_URL") == {"name": "db", "key": "PALAVER_DATABASE_URL"},
     at("cluster.database.url", "")),
    ("cluster.database.existingSecretKey",
     merged(CLUSTER, {"cluster": {"database": {"url": "", "existingSecret": "db"}}}), "url",
     lambda r: secret_ref(r, "PALAVER_DATABASE_URL") == {"name": "db", "key": "url"}),
    ("cluster.kafka.brokers", CLUSTER, "k:9092",
     lambda r: r.config()["PALAVER_KAFKA_BROKERS"] == "k:9092"),
    ("cluster.kafka.existingSecret", CLUSTER, "kafka",
     lambda r: secret_ref(r, "PALAVER_KAFKA_BROKERS") == {"name": "kafka", "key": "PALAVER_KAFKA_BROKERS"},
     at("cluster.kafka.brokers", "")),
    ("cluster.kafka.existingSecretKey",
     merged(CLUSTER, {"cluster": {"kafka": {"brokers": "", "existingSecret": "kafka"}}}), "brokers",
     lambda r: secret_ref(r, "PALAVER_KAFKA_BROKERS") == {"name": "kafka", "key": "brokers"}),
    ("cluster.kafka.topic", CLUSTER, "chat.events",
     lambda r: r.config()["PALAVER_KAFKA_TOPIC"] == "chat.events"),
    ("attachments.url", {}, "s3://files/palaver",
     lambda r: r.config()["PALAVER_ATTACHMENTS_URL"] == "s3://files/palaver"),
    *[(f"attachments.env.{name}", {}, value, lambda r, name=name, value=value: r.config().get(name) == value)
      for name, value in [("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "eu-west-1"),
                          ("AWS_ENDPOINT_URL", "http://minio.storage:9000")]],
    *[(f"attachments.secretEnv.{name}", {}, "s3-secret",
       lambda r, name=name: (r.secret() or {}).get(name) == "s3-secret" and env_from_secrets(r) == [FULLNAME])
      for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]],
    ("logFormat", {}, "text", lambda r: r.config()["PALAVER_LOG_FORMAT"] == "text"),
    ("env", {}, {"PALAVER_CORS_ORIGINS": "https://chat.example.com"},
     lambda r: r.config().get("PALAVER_CORS_ORIGINS") == "https://chat.example.com"),
    ("secretEnv", {}, {"PALAVER_SMTP_URL": "smtps://u:p@mail:465"},
     lambda r: (r.secret() or {}).get("PALAVER_SMTP_URL") == "smtps://u:p@mail:465"
     and env_from_secrets(r) == [FULLNAME]),
    ("existingSecret", {}, "palaver-secrets", lambda r: env_from_secrets(r) == ["palaver-secrets"]),
    ("configFile", {}, "[realtime]\nmax_sessions_per_user = 8\n",
     lambda r: r.config().get("palaver.toml") == "[realtime]\nmax_sessions_per_user = 8\n"
     and r.config().get("PALAVER_CONFIG") == "/etc/palaver/palaver.toml"
     and {"name": "config", "mountPath": "/etc/palaver", "readOnly": True} in r.container()["volumeMounts"]),
    ("service.type", {}, "LoadBalancer",
     lambda r: r.one("Service", FULLNAME)["spec"]["type"] == "LoadBalancer"),
    ("service.port", INGRESS, 8081,
     lambda r: r.one("Service", FULLNAME)["spec"]["ports"][0]["port"] == 8081
     and r.one("Ingress", FULLNAME)["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"] == 8081),
    ("ingress.enabled", at("ingress.host", "chat.example.com"), True,
     lambda r: len(r.of_kind("Ingress")) == 2),
    ("ingress.className", INGRESS, "public",
     lambda r: {i["spec"].get("ingressClassName") for i in r.of_kind("Ingress")} == {"public"}),
    ("ingress.controller", INGRESS, "other",
     lambda r: len(r.of_kind("Ingress")) == 1 and "annotations" not in r.one("Ingress")["metadata"]),
    ("ingress.host", INGRESS, "talk.example.org",
     lambda r: {i["spec"]["rules"][0]["host"] for i in r.of_kind("Ingress")} == {"talk.example.org"}),
    ("ingress.tlsSecretName", INGRESS, "tls",
     lambda r: all(i["spec"].get("tls") == [{"hosts": ["chat.example.com"], "secretName": "tls"}]
                   for i in r.of_kind("Ingress"))),
    ("ingress.timeoutSeconds", INGRESS, 600,
     lambda r: annotation(r, FULLNAME, "nginx.ingress.kubernetes.io/proxy-read-timeout") == "600"
     and annotation(r, f"{FULLNAME}-grpc", "nginx.ingress.kubernetes.io/proxy-send-timeout") == "600"),
    ("ingress.grpc", INGRESS, False, lambda r: [i["metadata"]["name"] for i in r.of_kind("Ingress")] == [FULLNAME]),
    ("ingress.annotations", INGRESS,
     {"nginx.ingress.kubernetes.io/proxy-read-timeout": "86400", "team": "chat"},
     lambda r: annotation(r, FULLNAME, "nginx.ingress.kubernetes.io/proxy-read-timeout") == "86400"
     and annotation(r, f"{FULLNAME}-grpc", "team") == "chat"),
    ("metrics.enabled", {}, False,
     lambda r: r.config()["PALAVER_METRICS_LISTEN"] == "off"
     and [p["name"] for p in r.container()["ports"]] == ["http"]),
    ("metrics.serviceMonitor.enabled", {}, False, lambda r: not r.of_kind("ServiceMonitor")),
    ("metrics.serviceMonitor.interval", {}, "10s",
     lambda r: r.one("ServiceMonitor")["spec"]["endpoints"][0]["interval"] == "10s"),
    ("metrics.serviceMonitor.labels", {}, {"release": "prometheus"},
     lambda r: r.one("ServiceMonitor")["metadata"]["labels"].get("release") == "prometheus"),
    ("metrics.prometheusRule.enabled", {}, False, lambda r: not r.of_kind("PrometheusRule")),
    ("metrics.prometheusRule.labels", {}, {"release": "prometheus"},
     lambda r: r.one("PrometheusRule")["metadata"]["labels"].get("release") == "prometheus"),
    ("tls.secretName", {}, "chat-tls",
     lambda r: r.config().get("PALAVER_TLS_CERT") == "/etc/palaver-tls/tls.crt"
     and {"name": "tls", "secret": {"secretName": "chat-tls", "defaultMode": 0o440}}
     in r.pod()["volumes"]),
    ("resources.requests.cpu", {}, "2", lambda r: r.container()["resources"]["requests"]["cpu"] == "2"),
    ("resources.requests.memory", {}, "1Gi",
     lambda r: r.container()["resources"]["requests"]["memory"] == "1Gi"),
    ("resources.limits.cpu", {}, "4", lambda r: r.container()["resources"]["limits"].get("cpu") == "4"),
    ("resources.limits.memory", {}, "2Gi",
     lambda r: r.container()["resources"]["limits"]["memory"] == "2Gi"),
    ("terminationGracePeriodSeconds", {}, 90, lambda r: r.pod()["terminationGracePeriodSeconds"] == 90),
    ("preStopSleepSeconds", {}, 0, lambda r: "lifecycle" not in r.container()),
    ("podAnnotations", {}, {"team": "chat"},
     lambda r: r.workload()["spec"]["template"]["metadata"]["annotations"].get("team") == "chat"),
    ("nodeSelector", {}, {"disk": "ssd"}, lambda r: r.pod().get("nodeSelector") == {"disk": "ssd"}),
    ("tolerations", {}, [{"key": "chat", "operator": "Exists", "effect": "NoSchedule"}],
     lambda r: r.pod().get("tolerations") == [{"key": "chat", "operator": "Exists", "effect": "NoSchedule"}]),
    ("affinity", {}, {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}},
     lambda r: "nodeAffinity" in r.pod().get("affinity", {})),
    ("topologySpreadConstraints", {}, [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                        "whenUnsatisfiable": "ScheduleAnyway",
                                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "palaver"}}}],
     lambda r: r.pod().get("topologySpreadConstraints", [{}])[0].get("maxSkew") == 1),
]
# Values whose effect needs the Prometheus operator's API in the cluster.
NEEDS_PROMETHEUS = {"metrics.serviceMonitor.enabled", "metrics.serviceMonitor.interval",
                    "metrics.serviceMonitor.labels", "metrics.prometheusRule.enabled",
                    "metrics.prometheusRule.labels"}


def schema_leaves(node: dict, prefix: str = "") -> set[str]:
    leaves = set()
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        # A map of free keys (env, annotations) is one value.
        if "properties" in child and "patternProperties" not in child:
            leaves |= schema_leaves(child, path + ".")
        else:
            leaves.add(path)
    return leaves


@test
def every_value_in_the_schema_does_what_it_says():
    leaves = schema_leaves(schema()) - {"global"}
    covered = [path for path, *_ in EFFECTS]
    assert len(covered) == len(set(covered)), "a value is listed twice"
    assert set(covered) == leaves, (
        f"values without a check: {sorted(leaves - set(covered))}; "
        f"checks of no value: {sorted(set(covered) - leaves)}")
    values_yaml = chart_values()
    for path, base, value, holds, *company in EFFECTS:
        default = values_yaml
        for part in path.split("."):
            default = (default or {}).get(part)
        assert default != value, f"{path}: the check sets the default"
        prometheus = path in NEEDS_PROMETHEUS
        before = render(base, prometheus=prometheus)
        after = render(merged(base, *company, at(path, value)), prometheus=prometheus)
        try:
            assert holds(after), "not with the value"
            try:
                held_before = holds(before)
            except (AssertionError, KeyError, IndexError, TypeError):
                held_before = False
            assert not held_before, "already without the value"
        except (AssertionError, KeyError, IndexError, TypeError) as error:
            raise AssertionError(f"{path} = {json.dumps(value)}: {error!r}") from error


@test
def every_rendered_object_is_valid_kubernetes():
    # Runs after the others: it checks everything they rendered.
    objects = {}
    for r in RENDERED.values():
        for doc in r.docs:
            objects[json.dumps(doc, sort_keys=True)] = doc
    kinds = {doc["kind"] for doc in objects.values()}
    assert kinds >= {"ConfigMap", "Secret", "Service", "StatefulSet", "Deployment",
                     "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress",
                     "ServiceMonitor", "PrometheusRule"}, kinds
    validated = monitors = 0
    for doc in objects.values():
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            # A custom resource: kubernetes-validate has no schema for it; the
            # reference checks hold it to the Service it selects.
            assert doc["kind"] in ("ServiceMonitor", "PrometheusRule")
            monitors += 1
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.path)
                raise AssertionError(f"{doc['kind']} {doc['metadata']['name']} on Kubernetes "
                                     f"{version}: {path}: {error.message}") from None
            validated += 1
    print(f"    {len(objects)} distinct objects from {len(RENDERED)} renderings: "
          f"{validated} validations (Kubernetes {', '.join(KUBERNETES_VERSIONS)}); "
          f"{monitors} ServiceMonitors and PrometheusRules not validated (no schema), "
          f"only their references and contents")


@test
def every_rendering_keeps_the_pod_safe_and_its_references_whole():
    # Runs after the others: it checks everything they rendered.
    print(f"    {check_every_rendering()} renderings checked")


def main() -> int:
    started = time.monotonic()
    print(f"helm-sdkpy {helm_sdkpy.__version__} ({helm_sdkpy.get_version()}), "
          f"kubernetes-validate {kubernetes_validate.__version__}")
    passed = failed = 0
    for function in TESTS:
        try:
            function()
        except Exception:
            failed += 1
            print(f"FAIL {function.__name__}")
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {function.__name__}")
    for cluster in CLUSTERS.values():
        cluster.close()
    print(f"helm: {next(RENDERS)} Helm installs into fake clusters in "
          f"{time.monotonic() - started:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
