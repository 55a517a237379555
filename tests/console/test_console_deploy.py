"""The console's deploy entries: Compose service, Kubernetes Deployment and its OIDC
Secret, Prometheus job; consistent with each other and with what the console reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from humiao.console.app import json_staff_map
from humiao.console.settings import ConsoleSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def docs(*names: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = [d for n in names for d in yaml.safe_load_all((DEPLOY / "k8s" / n).read_text())]
    return {(d["kind"], d["metadata"]["name"]): d for d in found if d}


def test_compose_runs_the_console_beside_the_desk_on_loopback() -> None:
    compose = yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text())
    svc = compose["services"]["console"]
    env = svc["environment"]
    assert svc["command"] == ["humiao.console"]
    desk_port = compose["services"]["desk"]["environment"]["HUMIAO_GRPC_PORT"]
    assert env["HUMIAO_DESK_TARGET"] == f"desk:{desk_port}"
    assert svc["ports"] == [f"127.0.0.1:{env['HUMIAO_CONSOLE_PORT']}:{env['HUMIAO_CONSOLE_PORT']}"]
    assert svc["healthcheck"]["test"][-1] == str(env["HUMIAO_GRPC_PORT"])
    settings = ConsoleSettings(**{k.lower(): v for k, v in env.items()
                                  if k.startswith("HUMIAO_CONSOLE_") and "$" not in str(v)})
    assert settings.humiao_console_cookie_secure is False  # plain http on this host only
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in prometheus["scrape_configs"] if j["job_name"] == "humiao-console"]
    assert job["dns_sd_configs"][0]["port"] == env["HUMIAO_METRICS_PORT"]


def test_k8s_console_uses_oidc_secrets_and_reaches_the_desk_over_tls() -> None:
    found = docs("console.yaml", "secrets.example.yaml", "desk.yaml")
    dep = found[("Deployment", "humiao-console")]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HUMIAO_TLS"]["value"] == "true"
    desk = found[("Service", "humiao-desk")]
    desk_port = next(p["port"] for p in desk["spec"]["ports"] if p["name"] == "grpc")
    assert env["HUMIAO_DESK_TARGET"]["value"] == f"humiao-desk:{desk_port}"
    secret = found[("Secret", "humiao-console-oidc")]["stringData"]
    for name in ("HUMIAO_OIDC_CLIENT_SECRET", "HUMIAO_CONSOLE_SECRET_KEY",
                 "HUMIAO_CONSOLE_OIDC_STAFF"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "humiao-console-oidc" and ref["key"] in secret
    assert json_staff_map(secret["staff-map.json"])  # the example parses as the console does
    assert ConsoleSettings(humiao_oidc_issuer=env["HUMIAO_OIDC_ISSUER"]["value"]).oidc_enabled
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert int(env["HUMIAO_CONSOLE_PORT"]["value"]) == ports["http"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == ports["health"]
