"""deploy/ checked without Docker or a cluster: every file parses, the Compose and
Kubernetes files have what deploy/OPERATIONS.md promises and reference each other
consistently, the Prometheus rules pass promtool (when installed) and a structural check
(always), and every metric the rules and the dashboard use is in the documented catalogue
(tests/e2e/test_metrics_scrape.py compares that catalogue with real scrapes)."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
PROM = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
SERVICES = ("ingest", "verifier", "desk")


def load_lint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("humiao_deploy_lint", DEPLOY / "lint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lint = load_lint()


def interpolate(value: Any) -> Any:
    """Compose variable interpolation with an empty environment: ${X:-default} -> default."""
    if isinstance(value, str):
        text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
        text = re.sub(r"\$\{\w+\}", "", text)
        return text.replace("$$", "$")
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text(encoding="utf-8"))
    return interpolate(data)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def k8s_docs() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / resource).read_text(encoding="utf-8")) if d]
    return docs


def example_secrets() -> dict[str, dict[str, Any]]:
    """The Secrets a deployment creates out of band, from the example file kustomize
    never applies (so a placeholder cannot overwrite a real secret)."""
    text = (K8S / "secrets.example.yaml").read_text(encoding="utf-8")
    return of_kind([d for d in yaml.safe_load_all(text) if d], "Secret")


def test_kustomize_applies_no_secret(k8s_docs: list[dict[str, Any]]) -> None:
    assert of_kind(k8s_docs, "Secret") == {}
    assert {"humiao-database", "humiao-pseudonym-key", "humiao-record-signing-key",
            "humiao-credentials"} <= set(example_secrets())


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_names_read_by_services() -> set[str]:
    """Every environment variable the code can read: pydantic settings fields and literals."""
    names: set[str] = set()
    for path in (ROOT / "services" / "humiao").rglob("*.py"):
        if "api" in path.relative_to(ROOT / "services" / "humiao").parts[:1]:
            continue
        text = path.read_text(encoding="utf-8")
        names |= {m.upper() for m in re.findall(r"\b(humiao_[a-z0-9_]+)\s*:", text)}
        names |= set(re.findall(r"\b(HUMIAO_[A-Z0-9_]+)\b", text))
        names |= {
            m.upper() for m in re.findall(r"\b(kafka_bootstrap_servers|database_url)\s*:", text)
        }
    return names


# --------------------------------------------------------------------------- every file


def deploy_files() -> Iterator[Path]:
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path


def test_every_yaml_and_json_file_parses() -> None:
    parsed = 0
    for path in deploy_files():
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yml", ".yaml"):
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
            assert docs, f"{path} has no YAML document"
            assert all(isinstance(d, dict) for d in docs), f"{path}: a document is not a mapping"
            parsed += 1
        elif path.suffix == ".json":
            assert isinstance(json.loads(text), dict), path
            parsed += 1
    assert parsed >= 18  # compose, 11 k8s, 3 prometheus, 3 grafana, 2 credential files


def test_operations_guide_names_every_file_in_deploy() -> None:
    guide = lint.OPERATIONS.read_text(encoding="utf-8")
    guides = "".join(g.read_text(encoding="utf-8") for g in lint.GUIDES if g.is_file())
    unnamed = [
        str(p.relative_to(ROOT)) for p in deploy_files() if f"`{p.relative_to(ROOT)}`" not in guides
    ]
    assert not unnamed, f"deploy/OPERATIONS.md does not name: {unnamed}"
    for topic in (
        "Partitions and scaling",
        "Rotating a token",
        "Replaying history",
        "Backup",
        "consumer_offsets",
        "pg_dump",
        "sha256sum",
    ):
        assert topic in guide, topic


def test_python_files_in_deploy_compile() -> None:
    for path in DEPLOY.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


# --------------------------------------------------------------------------- Compose


def test_compose_runs_three_kraft_brokers_with_rf3_and_min_isr2(compose: dict[str, Any]) -> None:
    services = compose["services"]
    brokers = {
        n: s
        for n, s in services.items()
        if str(s.get("image", "")).startswith("apache/kafka")
        and "KAFKA_NODE_ID" in s.get("environment", {})
    }
    assert len(brokers) == 3, sorted(brokers)
    node_ids = {int(s["environment"]["KAFKA_NODE_ID"]) for s in brokers.values()}
    assert len(node_ids) == 3
    cluster_ids = {s["environment"]["CLUSTER_ID"] for s in brokers.values()}
    assert len(cluster_ids) == 1
    cluster_id = cluster_ids.pop()  # kafka-storage.sh format: base64url of a 16-byte UUID
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 and len(cluster_id) == 22
    for name, svc in brokers.items():
        env = svc["environment"]
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, name
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert sorted(voters) == sorted(
            f"{i}@{n}:9093"
            for n, i in ((n, int(b["environment"]["KAFKA_NODE_ID"])) for n, b in brokers.items())
        ), name
        assert f"PLAINTEXT://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"], name
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        data_dir = env["KAFKA_LOG_DIRS"]
        assert any(v.split(":")[1] == data_dir for v in svc["volumes"]), (
            f"{name}: data not on a volume"
        )
        assert svc["volumes"][0].split(":")[0] in compose["volumes"]
        assert "healthcheck" in svc


def test_compose_topic_init_creates_every_topic_replicated(compose: dict[str, Any]) -> None:
    init = compose["services"]["topic-init"]
    script = "\n".join(init["command"])
    assert "--replication-factor 3" in script
    assert "min.insync.replicas=2" in script
    assert "--if-not-exists" in script
    for topic in ("humiao.events", "humiao.alerts", "humiao.deadletter"):
        assert re.search(rf"create {re.escape(topic)} ", script), topic
    assert re.search(r"create humiao\.events [^\n]*retention\.ms=-1", script), "history kept"
    assert init["environment"]["EVENTS_PARTITIONS"] == "12"
    assert all(cond == {"condition": "service_healthy"} for cond in init["depends_on"].values())
    assert len(init["depends_on"]) == 3


def test_compose_humiao_services_are_wired_to_cluster_database_and_topics(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    brokers = sorted(
        f"{n}:19092" for n, s in services.items() if "KAFKA_NODE_ID" in s.get("environment", {})
    )
    pg = services["postgres"]["environment"]
    known_env = env_names_read_by_services()
    grpc_ports = set()
    for name in SERVICES:
        svc = services[name]
        env = svc["environment"]
        assert svc["command"] == [f"humiao.{name}"]
        assert importlib.util.find_spec(f"humiao.{name}.__main__") is not None, name
        build = svc["build"]
        assert (COMPOSE_DIR / build["context"]).resolve() == ROOT
        assert (ROOT / build["dockerfile"]).is_file()
        assert svc["depends_on"]["topic-init"] == {"condition": "service_completed_successfully"}
        assert svc["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert sorted(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == brokers
        assert env["DATABASE_URL"] == (
            f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
        )
        assert int(env["HUMIAO_REPLICATION_FACTOR"]) == 3
        assert (
            env["HUMIAO_PARTITIONS"] == services["topic-init"]["environment"]["EVENTS_PARTITIONS"]
        )
        assert env["HUMIAO_GRPC_HOST"] == "0.0.0.0"  # metrics bind there too
        assert env["HUMIAO_PSEUDONYM_KEY"]
        unknown = sorted(set(env) - known_env)
        assert not unknown, f"{name}: environment variables no service reads: {unknown}"
        port = str(env["HUMIAO_GRPC_PORT"])
        grpc_ports.add(port)
        assert svc["healthcheck"]["test"][-1] == port, f"{name}: health check on the gRPC port"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            assert (COMPOSE_DIR / source).exists(), f"{name}: {source} missing"
        for key in ("HUMIAO_SOURCE_CREDENTIALS", "HUMIAO_STAFF_CREDENTIALS", "HUMIAO_POLICY_FILE"):
            if key in env:
                assert env[key].startswith("/etc/humiao/")
                assert (COMPOSE_DIR / "config" / env[key].removeprefix("/etc/humiao/")).is_file()
    assert len(grpc_ports) == 3
    assert "HUMIAO_SOURCE_CREDENTIALS" in services["ingest"]["environment"]
    assert "HUMIAO_STAFF_CREDENTIALS" in services["desk"]["environment"]
    verifier = services["verifier"]
    replicas = int(verifier["deploy"]["replicas"])
    assert 2 <= replicas <= int(services["topic-init"]["environment"]["EVENTS_PARTITIONS"])
    assert "ports" not in verifier and "container_name" not in verifier  # replicas must not clash


def test_compose_credentials_and_policy_load_with_the_services_parsers() -> None:
    from humiao.desk.auth import hash_token
    from humiao.desk.auth import parse_credentials as parse_staff
    from humiao.domain.policy import PolicyBook
    from humiao.ingest.credentials import load_credentials

    config = COMPOSE_DIR / "config"
    sources = load_credentials(str(config / "source-credentials.json"))
    source = sources.authenticate("dev-source-token-change-me")
    assert source is not None and source.regions is None and source.kinds is None
    assert sources.authenticate("dev-source-token-change-mE") is None
    staff = parse_staff(str(config / "staff-credentials.json"))
    member = staff[hash_token("dev-supervisor-token-change-me")]
    assert member.role.name == "SUPERVISOR" and member.regions is None
    guide = lint.OPERATIONS.read_text(encoding="utf-8")
    assert "dev-source-token-change-me" in guide and "dev-supervisor-token-change-me" in guide
    assert PolicyBook.load(config / "policy.toml") == PolicyBook.default()
    assert PolicyBook.load(K8S / "policy.toml") == PolicyBook.default()


def test_compose_monitoring_mounts_the_deploy_files(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prom_mounts = dict(
        v.split(":")[:2] for v in services["prometheus"]["volumes"] if v.startswith(".")
    )
    assert (COMPOSE_DIR / "../prometheus/prometheus.yml").resolve() == PROM / "prometheus.yml"
    assert prom_mounts["../prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert prom_mounts["../prometheus/rules.yml"] == "/etc/prometheus/rules.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    graf = dict(v.split(":")[:2] for v in services["grafana"]["volumes"] if v.startswith("."))
    for source in graf:
        assert (COMPOSE_DIR / source).is_dir(), source
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/humiao.yml").read_text())
    dash_path = provider["providers"][0]["options"]["path"]
    assert graf["../grafana/dashboards"] == dash_path
    assert graf["../grafana/provisioning"] == "/etc/grafana/provisioning"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dash_path}/humiao.json"


def test_dockerfile_generates_code_and_installs_the_package() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    assert "python -m humiao_dev.tools.genproto" in text and "grpcio-tools" in text
    assert "pip wheel" in text and "pip install /wheels/" in text
    assert re.search(r"^USER 10001", text, re.M)
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), f"COPY source {source} missing"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for kept in (
        "!pyproject.toml",
        "!README.md",
        "!protos/",
        "!services/",
        "!deploy/healthcheck.py",
    ):
        assert kept in ignore
    assert "services/humiao/api/" in ignore  # regenerated in the image, never copied stale


async def test_container_healthcheck_follows_grpc_health() -> None:
    """deploy/healthcheck.py exits 0 only for SERVING, 1 otherwise (also with no server)."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()

    async def run() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(DEPLOY / "healthcheck.py"),
            str(port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(proc.wait(), timeout=30)

    try:
        await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await run() == 1
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert await run() == 0
    finally:
        await server.stop(None)
    assert await run() == 1


# --------------------------------------------------------------------------- Kubernetes


def test_kustomization_resources_exist_and_kubectl_renders_them() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    for generator in kustomization.get("configMapGenerator", []):
        for file in generator["files"]:
            assert (K8S / file).is_file(), file
    monitoring = yaml.safe_load((K8S / "monitoring/kustomization.yaml").read_text())
    for resource in monitoring["resources"]:
        assert (K8S / "monitoring" / resource).is_file()
    kubectl = shutil.which("kubectl")
    if kubectl is None:  # CI without kubectl: the structural tests below still run
        return
    for target, expected in (
        (
            K8S,
            {
                "Namespace",
                "ConfigMap",
                "Deployment",
                "Service",
                "Job",
                "PodDisruptionBudget",
            },
        ),
        (K8S / "monitoring", {"ServiceMonitor"}),
    ):
        rendered = subprocess.run(
            [kubectl, "kustomize", str(target)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rendered.returncode == 0, rendered.stderr
        docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
        assert {d["kind"] for d in docs} == expected
        assert all(
            d["metadata"].get("namespace") == "humiao" for d in docs if d["kind"] != "Namespace"
        )


def test_k8s_deployments_have_grpc_probes_resources_and_secrets(
    k8s_docs: list[dict[str, Any]],
) -> None:
    # the notifier's and the console's Deployments have checks of their own
    # (tests/notifier/test_notifier_deploy.py, tests/console/test_console_deploy.py)
    deployments = {
        n: d for n, d in of_kind(k8s_docs, "Deployment").items()
        if n not in ("humiao-notifier", "humiao-console")
    }
    secrets = example_secrets()
    configmaps = of_kind(k8s_docs, "ConfigMap")
    config = configmaps["humiao-config"]["data"]
    generated = {
        g["name"]
        for g in yaml.safe_load((K8S / "kustomization.yaml").read_text()).get(
            "configMapGenerator", []
        )
    }
    known_env = env_names_read_by_services()
    assert not set(config) - known_env, set(config) - known_env
    assert not [k for k in config if re.search(r"PASSWORD|TOKEN|PSEUDONYM|DATABASE_URL", k)]
    assert sorted(deployments) == [f"humiao-{s}" for s in sorted(SERVICES)]
    for name, dep in deployments.items():
        component = name.removeprefix("humiao-")
        pod = dep["spec"]["template"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "humiao" and container["args"] == [f"humiao.{component}"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = {e["name"]: e for e in container["env"]}
        assert int(env["HUMIAO_GRPC_PORT"]["value"]) == ports["grpc"]
        assert int(env["HUMIAO_METRICS_PORT"]["value"]) == ports["metrics"]
        # probes on the plaintext health-only port; the gRPC port speaks TLS
        assert int(config["HUMIAO_GRPC_HEALTH_PORT"]) == ports["health"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert container[probe]["grpc"]["port"] == ports["health"], f"{name} {probe}"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert config["HUMIAO_TLS_CERT_FILE"].startswith(mounts["tls"] + "/")
        assert config["HUMIAO_TLS_KEY_FILE"].startswith(mounts["tls"] + "/")
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == "humiao-tls"
        assert (
            container["livenessProbe"]["periodSeconds"]
            * container["livenessProbe"]["failureThreshold"]
            >= 120
        ), "liveness must outlast a dependency outage"
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{name} {kind}"
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == ports["metrics"]
        assert container["envFrom"] == [{"configMapRef": {"name": "humiao-config"}}]
        refs = [
            e["valueFrom"]["secretKeyRef"]
            for e in env.values()
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        signs = component in ("ingest", "verifier")  # they share the record signing key
        assert {r["name"] for r in refs} == {"humiao-database", "humiao-pseudonym-key"} | (
            {"humiao-record-signing-key"} if signs else set())
        assert "DATABASE_URL" in env and "HUMIAO_PSEUDONYM_KEY" in env
        for ref in refs:
            assert ref["key"] in secrets[ref["name"]]["stringData"], ref
        assert not set(env) - known_env, set(env) - known_env
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        for volume in pod["spec"].get("volumes", []):
            assert volume["name"] in mounts
            if "secret" in volume:
                data = secrets[volume["secret"]["secretName"]]["stringData"]
                if volume["name"] == "tls":  # the whole kubernetes.io/tls Secret
                    assert {"tls.crt", "tls.key"} <= set(data)
                    continue
                for item in volume["secret"]["items"]:
                    assert item["key"] in data
                    path = f"{mounts[volume['name']]}/{item['path']}"
                    assert path in (
                        config.get("HUMIAO_SOURCE_CREDENTIALS"),
                        config.get("HUMIAO_STAFF_CREDENTIALS"),
                    ), path
            if "configMap" in volume:
                assert volume["configMap"]["name"] in generated | set(configmaps)
    verifier = deployments["humiao-verifier"]
    assert 2 <= verifier["spec"]["replicas"] <= int(config["HUMIAO_PARTITIONS"])
    policy = {
        e["name"]: e.get("value")
        for e in verifier["spec"]["template"]["spec"]["containers"][0]["env"]
    }["HUMIAO_POLICY_FILE"]
    assert policy == "/etc/humiao/policy/policy.toml"


def test_k8s_secrets_hold_parseable_credential_files(k8s_docs: list[dict[str, Any]]) -> None:
    from humiao.desk.auth import parse_credentials as parse_staff
    from humiao.ingest.credentials import parse_credentials as parse_sources

    data = example_secrets()["humiao-credentials"]["stringData"]
    assert len(parse_sources(json.loads(data["source-credentials.json"]))) == 0
    assert parse_staff(data["staff-credentials.json"]) == {}
    url = example_secrets()["humiao-database"]["stringData"]["url"]
    assert url.startswith("postgresql://")


def test_k8s_services_select_pods_and_name_their_ports(k8s_docs: list[dict[str, Any]]) -> None:
    deployments = of_kind(k8s_docs, "Deployment")
    for name, svc in of_kind(k8s_docs, "Service").items():
        dep = deployments[name]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items(), name
        port_names = {
            p["name"] for c in dep["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        web = {"http"} if name == "humiao-console" else set()  # the console's pages
        assert port_names == {"grpc", "health", "metrics"} | web
        # the Service offers gRPC (the console: its pages) and metrics; the health port is
        # for the kubelet alone
        offered = {p["targetPort"] for p in svc["spec"]["ports"]}
        assert offered == ({"http", "metrics"} if web else {"grpc", "metrics"})
        assert svc["metadata"]["labels"]["app.kubernetes.io/name"] == "humiao"
    assert of_kind(k8s_docs, "Service")["humiao-verifier"]["spec"]["clusterIP"] == "None"
    for name, pdb in of_kind(k8s_docs, "PodDisruptionBudget").items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    monitor = yaml.safe_load((K8S / "monitoring/servicemonitor.yaml").read_text())
    selected = [
        s
        for s in of_kind(k8s_docs, "Service").values()
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert len(selected) == len(deployments)  # every service's metrics are scraped
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


def test_k8s_topic_job_creates_replicated_topics(k8s_docs: list[dict[str, Any]]) -> None:
    config = of_kind(k8s_docs, "ConfigMap")["humiao-config"]["data"]
    job = of_kind(k8s_docs, "Job")["humiao-topics"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("apache/kafka:")
    assert container["envFrom"] == [{"configMapRef": {"name": "humiao-config"}}]
    script = "\n".join(container["args"])
    assert '--replication-factor "$HUMIAO_REPLICATION_FACTOR"' in script
    assert config["HUMIAO_REPLICATION_FACTOR"] == "3"
    assert "min.insync.replicas=2" in script and "--if-not-exists" in script
    assert re.search(r'create events "\$HUMIAO_PARTITIONS" [^\n]*retention\.ms=-1', script)
    for topic in ("alerts", "deadletter"):
        assert re.search(rf"create {topic} \d+", script), topic
    assert '"${HUMIAO_TOPIC_PREFIX}$1"' in script
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert "resources" in container


# --------------------------------------------------------------------------- Prometheus

REQUIRED_ALERTS = {
    "HumiaoServiceDown",
    "HumiaoVerifierLagGrowing",
    "HumiaoDeadLetters",
    "HumiaoOutboxBacklog",
    "HumiaoNoDisbursementsInPayingWindow",
    "HumiaoIngestRejectionRatioHigh",
}


def test_rules_have_the_required_alerts_and_a_sound_structure() -> None:
    data = lint.load_rules()
    assert set(data) == {"groups"}
    groups = data["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    documented = lint.documented_metrics()
    names = []
    for group in groups:
        assert set(group) <= {"name", "rules", "interval"} and group["rules"], group["name"]
        for rule in group["rules"]:
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule
            names.append(rule["alert"])
            assert re.fullmatch(r"Humiao[A-Z][A-Za-z]+", rule["alert"])
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert (
                rule["annotations"]["summary"].strip()
                and rule["annotations"]["description"].strip()
            )
            expr = rule["expr"]
            assert lint.balanced(expr), rule["alert"]
            used = lint.promql_metric_names(expr)
            assert used, f"{rule['alert']} selects no metric"
            unknown = [m for m in used if not lint.resolvable(m, documented)]
            assert not unknown, f"{rule['alert']} uses undocumented metrics {unknown}"
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    text = json.dumps(data)
    assert 'up{job=~\\"humiao-.*\\"} == 0' in text


def test_promtool_checks_config_rules_and_rule_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        # No promtool (a fresh CI machine without the Debian `prometheus` package): the
        # structural test above is the check; assert here what promtool would have caught
        # most often: YAML that is not a rule file, durations and templates.
        for rule in lint.iter_rules():
            assert "{{" not in rule["expr"]
            for text in rule["annotations"].values():
                assert text.count("{{") == text.count("}}")
        config = yaml.safe_load((PROM / "prometheus.yml").read_text())
        assert all((PROM / f).is_file() for f in config["rule_files"])
        return
    for args in (
        ["check", "config", str(PROM / "prometheus.yml")],
        ["check", "rules", str(PROM / "rules.yml")],
        ["test", "rules", "rules.test.yml"],
    ):
        done = subprocess.run(
            [promtool, *args], cwd=PROM, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    tested = yaml.safe_load((PROM / "rules.test.yml").read_text())
    covered = {t["alertname"] for case in tested["tests"] for t in case["alert_rule_test"]}
    assert covered >= REQUIRED_ALERTS


def test_prometheus_scrapes_every_service_on_its_compose_metrics_port(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    for name in SERVICES:
        job = jobs[f"humiao-{name}"]
        (sd,) = job["dns_sd_configs"]
        assert sd["names"] == [name] and sd["type"] == "A"
        assert str(sd["port"]) == str(
            compose["services"][name]["environment"]["HUMIAO_METRICS_PORT"]
        )


# --------------------------------------------------------------------------- Grafana


def test_dashboard_panels_use_documented_metrics_and_the_provisioned_datasource() -> None:
    board = json.loads(lint.DASHBOARD.read_text(encoding="utf-8"))
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (ds,) = datasource["datasources"]
    assert ds["url"] == "http://prometheus:9090" and ds["type"] == "prometheus"
    assert board["uid"] and board["title"]
    panels = list(lint.iter_panels(board["panels"]))
    assert len({p["id"] for p in panels}) == len(panels)
    documented = lint.documented_metrics()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == ds["uid"], panel["title"]
            assert lint.balanced(target["expr"]), panel["title"]
    used = lint.dashboard_metric_names()
    assert len(used) >= 20
    for title, names in used.items():
        assert names, f"panel {title!r} selects no metric"
        unknown = [m for m in names if not lint.resolvable(m, documented)]
        assert not unknown, f"panel {title!r} uses undocumented metrics {unknown}"
    exprs = "\n".join(e for es in lint.dashboard_exprs().values() for e in es)
    assert re.search(r"sum by \(kind\) \(rate\(humiao_ingest_events_total", exprs)  # events in
    assert "humiao_verifier_consumer_lag_records" in exprs  # lag
    assert re.search(r"by \(code\) \(increase\(humiao_verifier_alerts_raised_total", exprs)
    assert "humiao_desk_open_alerts" in exprs  # alerts by code and status over time
    assert "humiao_verifier_amount_at_risk_fen_total" in exprs
    assert exprs.count("histogram_quantile(") >= 5  # latency percentiles
    assert "humiao_verifier_deadletters_total" in exprs


# --------------------------------------------------------------------------- catalogue


FORBIDDEN_LABELS = {
    "id",
    "child",
    "child_id",
    "child_key",
    "alert_id",
    "person",
    "person_id",
    "payee",
    "payee_id",
    "guardian",
    "name",
    "event_id",
    "disbursement_id",
    "token",
}


def test_metrics_catalogue_follows_the_naming_conventions() -> None:
    documented = lint.documented_metrics()
    services = {d.service for d in documented.values()}
    assert {"ingest", "verifier", "desk"} <= services
    for doc in documented.values():
        assert doc.type in ("counter", "gauge", "histogram", "info"), doc
        assert not doc.labels & FORBIDDEN_LABELS, doc
        if doc.service in SERVICES:
            assert doc.name.startswith(f"humiao_{doc.service}_"), doc.name
        assert (doc.type == "counter") == doc.name.endswith("_total"), doc.name
        assert (doc.type == "info") == doc.name.endswith("_info"), doc.name
        if re.search(r"(duration|latency|seconds|lateness)", doc.name):
            assert doc.name.endswith(("_seconds", "_seconds_total")), doc.name
