"""The notifier's deploy entries: the Compose service, the Kubernetes Deployment and its
routes Secret, the Prometheus scrape job, all consistent with each other and with what
the code reads (the generic checks of tests/integration/test_deploy.py cover the rest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from humiao.notifier.routes import parse_routes
from humiao.notifier.settings import NotifierSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def k8s_docs() -> dict[tuple[str, str], dict[str, Any]]:
    """notifier.yaml and the example Secrets (created out of band, never by kustomize)."""
    docs = [*yaml.safe_load_all((DEPLOY / "k8s" / "notifier.yaml").read_text()),
            *yaml.safe_load_all((DEPLOY / "k8s" / "secrets.example.yaml").read_text())]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def test_compose_service_runs_the_notifier_with_its_routes() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    svc = compose["services"]["notifier"]
    assert svc["command"] == ["humiao.notifier"] and svc["profiles"] == ["notify"]
    env = svc["environment"]
    routes = env["HUMIAO_NOTIFY_ROUTES"]
    local = DEPLOY / "compose" / "config" / routes.removeprefix("/etc/humiao/")
    table = parse_routes(local.read_text())
    assert table.routes and all(r.receiver in table.receivers for r in table.routes)
    assert svc["healthcheck"]["test"][-1] == str(env["HUMIAO_GRPC_PORT"])
    ports = {str(s["environment"].get("HUMIAO_METRICS_PORT"))
             for n, s in compose["services"].items() if n != "notifier" and "environment" in s}
    assert str(env["HUMIAO_METRICS_PORT"]) not in ports
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "humiao-notifier"]
    assert job["dns_sd_configs"][0]["names"] == ["notifier"]
    assert str(job["dns_sd_configs"][0]["port"]) == str(env["HUMIAO_METRICS_PORT"])
    NotifierSettings(humiao_console_url="http://localhost:8080")  # the default URL is valid


def test_k8s_deployment_is_one_replica_with_probes_and_a_routes_secret() -> None:
    docs = k8s_docs()
    dep = docs[("Deployment", "humiao-notifier")]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    pod = dep["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["humiao.notifier"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["health"]  # plaintext health only
    assert container["livenessProbe"]["grpc"]["service"] == "liveness"
    assert int(pod["metadata"]["annotations"]["prometheus.io/port"]) == ports["metrics"]
    env = {e["name"]: e for e in container["env"]}
    assert int(env["HUMIAO_METRICS_PORT"]["value"]) == ports["metrics"]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["routes"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "routes")
    (item,) = volume["secret"]["items"]
    assert env["HUMIAO_NOTIFY_ROUTES"]["value"] == f"{mount}/{item['path']}"
    secret = docs[("Secret", volume["secret"]["secretName"])]
    parse_routes(secret["stringData"][item["key"]])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert "notifier.yaml" in kustomization["resources"]
    service = docs[("Service", "humiao-notifier")]
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports) - {"health"}
