"""Metrics that tell the truth: start ingest, verifier and desk as processes against the
real broker and PostgreSQL, push a little traffic through them (events with real-looking
ID numbers, a duplicate, an invalid event, a desk query), scrape every /metrics endpoint
and check that

(a) the catalogue in deploy/OPERATIONS.md is exactly what the services export, with the
    same types and label names;
(b) no label value carries personal data: nothing shaped like a citizen ID (valid GB 11643
    check digit), no 32-hex child key, and none of the submitted ID numbers or their
    pseudonyms anywhere in the scrape;
(c) every metric the alert rules and the Grafana dashboard use exists in the scrapes.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import grpc
import prometheus_client
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from humiao.adapters.codec import envelope_to_proto
from humiao.api.desk.v1 import desk_pb2, desk_pb2_grpc
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.domain.identity import looks_like_citizen_id, pseudonym
from strategies import random_envelope

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "verifier", "desk")
SOURCE_TOKEN = "scrape-test-source-token"
STAFF_TOKEN = "scrape-test-staff-token"
PSEUDONYM_KEY = "scrape-test-pseudonym-key"
HEX32 = re.compile(r"[0-9a-f]{32}")
T = TypeVar("T")


def load_lint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("humiao_deploy_lint", ROOT / "deploy" / "lint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lint = load_lint()


def sha256(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def wait_for(what: str, check: Callable[[], T | None], deadline: float) -> T:
    """Poll `check` until it returns something truthy, or fail naming `what`."""
    delay = 0.05
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    ready_file: Path
    log: Path
    info: dict[str, Any] | None = None

    def read_ready(self) -> dict[str, Any] | None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
            )
        if not self.ready_file.exists():
            return None
        self.info = json.loads(self.ready_file.read_text())
        return self.info

    def scrape(self) -> str:
        assert self.info is not None
        with urllib.request.urlopen(self.info["metrics"], timeout=5) as answer:
            return str(answer.read().decode())

    def serving(self) -> bool:
        assert self.info is not None
        with grpc.insecure_channel(self.info["grpc"]) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
            except grpc.RpcError:
                return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
def services(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> Iterator[dict[str, Running]]:
    """The three services as processes, each with its ready file and log."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "HUMIAO_TOPIC_PREFIX": prefix,
        "HUMIAO_PARTITIONS": "3",
        "HUMIAO_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "HUMIAO_GRPC_HOST": "127.0.0.1",
        "HUMIAO_GRPC_PORT": "0",
        "HUMIAO_METRICS_PORT": "0",
        "HUMIAO_SHUTDOWN_GRACE_SECONDS": "2",
        "HUMIAO_VERIFIER_GROUP": f"scrape-{uuid.uuid4().hex[:8]}",
        "HUMIAO_VERIFIER_LINGER_MS": "10",
        "HUMIAO_DESK_GAUGE_SECONDS": "0.3",
        "HUMIAO_SOURCE_CREDENTIALS": json.dumps(
            {sha256(SOURCE_TOKEN): {"source": "scrape-test", "regions": "*", "kinds": "*"}}
        ),
        "HUMIAO_STAFF_CREDENTIALS": json.dumps(
            {sha256(STAFF_TOKEN): {"name": "scraper", "role": "supervisor", "regions": "*"}}
        ),
        "PYTHONUNBUFFERED": "1",
    }
    running: dict[str, Running] = {}
    try:
        for name in SERVICES:
            log = tmp_path / f"{name}.log"
            ready = tmp_path / f"{name}.ready.json"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", f"humiao.{name}"],
                    env={**env, "HUMIAO_READY_FILE": str(ready)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                )
            running[name] = Running(name, proc, ready, log)
        deadline = time.monotonic() + 60
        for svc in running.values():
            wait_for(f"{svc.name} ready file", svc.read_ready, deadline)
            assert svc.info is not None and svc.info["service"] == svc.name
            assert svc.info["pid"] == svc.proc.pid
        for svc in running.values():
            wait_for(f"{svc.name} SERVING", svc.serving, deadline)
        yield running
    finally:
        for svc in running.values():
            if svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGTERM)
        for svc in running.values():
            try:
                svc.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                svc.proc.kill()
                svc.proc.wait(timeout=5)


def drive_traffic(running: dict[str, Running]) -> tuple[list[str], int]:
    """Send events (one duplicate, one invalid) and one desk query; return the ID numbers
    used and the number of events accepted."""
    rng = random.Random(20240611)
    envelopes = [
        random_envelope(
            rng,
            event_id=f"scrape-{i}",
            source="scrape-test",
            kinds=("childEnrolled", "disbursement", "guardianAppointed", "personDied"),
        )
        for i in range(24)
    ]
    ids = set().union(*(citizen_ids_in(e.body) for e in envelopes))
    # a child ID number with a wrong check digit: rejected, and never echoed in a label
    child_fact = next(e for e in envelopes if hasattr(e.body, "child_id"))
    good = child_fact.body.child_id  # type: ignore[union-attr]
    bad_id = good[:17] + ("0" if good[17] != "0" else "1")
    invalid = replace(
        child_fact, event_id="scrape-invalid", body=replace(child_fact.body, child_id=bad_id)
    )
    ids.add(bad_id)
    protos = [envelope_to_proto(e) for e in envelopes]
    metadata = (("authorization", f"Bearer {SOURCE_TOKEN}"),)
    with grpc.insecure_channel(running["ingest"].info["grpc"]) as channel:  # type: ignore[index]
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        first = stub.SubmitBatch(
            ingest_pb2.SubmitBatchRequest(events=[*protos, envelope_to_proto(invalid)]),
            metadata=metadata,
            timeout=30,
        )
        again = stub.SubmitBatch(
            ingest_pb2.SubmitBatchRequest(events=protos[:3]), metadata=metadata, timeout=30
        )
    assert first.accepted == len(protos) and first.rejected == 1, first
    assert again.duplicates == 3
    with grpc.insecure_channel(running["desk"].info["grpc"]) as channel:  # type: ignore[index]
        desk = desk_pb2_grpc.AlertDeskStub(channel)
        desk.ListAlerts(
            desk_pb2.ListAlertsRequest(page_size=10),
            metadata=(("authorization", f"Bearer {STAFF_TOKEN}"),),
            timeout=10,
        )
    assert all(len(i) == 18 for i in ids) and len(ids) >= 10
    return sorted(ids), first.accepted


def citizen_ids_in(value: Any) -> set[str]:
    """Every citizen ID number inside an event body (parents included)."""
    found: set[str] = set()
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            found |= citizen_ids_in(getattr(value, field.name))
    elif isinstance(value, tuple):
        for item in value:
            found |= citizen_ids_in(item)
    elif isinstance(value, str) and looks_like_citizen_id(value):
        found.add(value)
    return found


def families(text: str) -> dict[str, Any]:
    """Metric families of a scrape; the `_created` companions of counters and histograms
    (which the text parser reports as gauges of their own) are left out."""
    found = {f.name: f for f in text_string_to_metric_families(text)}
    return {n: f for n, f in found.items() if not (n.endswith("_created") and n[:-8] in found)}


def scraped_name(family: Any) -> str:
    """The name the catalogue uses: counters with _total, info with _info."""
    if family.type == "counter":
        return f"{family.name}_total"
    if family.type == "info":
        return f"{family.name}_info"
    return str(family.name)


def exported_sample_names(family: Any) -> set[str]:
    base = family.name
    if family.type == "counter":
        return {f"{base}_total", f"{base}_created"}
    if family.type == "histogram":
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
    if family.type == "info":
        return {f"{base}_info"}
    return {base}


def declared_label_names(service: str, family_name: str) -> set[str] | None:
    """Label names of a collector as its service module declares them (for metrics that
    have no sample yet: prometheus-client exposes a labelled metric only once used)."""
    importlib.import_module(f"humiao.{service}.metrics")
    collector = prometheus_client.REGISTRY._names_to_collectors.get(family_name)
    return None if collector is None else set(getattr(collector, "_labelnames", ()))


def test_every_service_exports_the_documented_metrics_without_personal_data(
    services: dict[str, Running],
) -> None:
    ids, accepted = drive_traffic(services)

    def verifier_caught_up() -> bool:
        fams = families(services["verifier"].scrape())
        processed = sum(
            s.value for s in fams["humiao_verifier_events"].samples if s.name.endswith("_total")
        )
        return processed >= accepted

    deadline = time.monotonic() + 45
    wait_for("the verifier to process the accepted events", verifier_caught_up, deadline)

    def desk_counted_alerts() -> bool:
        return any(
            s.name == "humiao_desk_open_alerts"
            for s in families(services["desk"].scrape())["humiao_desk_open_alerts"].samples
        )

    wait_for("the desk's open-alerts gauge", desk_counted_alerts, deadline)

    scrapes = {name: svc.scrape() for name, svc in services.items()}
    documented = lint.documented_metrics()

    # (a) the catalogue is exactly what is exported: names, types, label names
    exported_samples: set[str] = set()
    for service, text in scrapes.items():
        fams = {n: f for n, f in families(text).items() if n.startswith("humiao_")}
        for fam in fams.values():
            exported_samples |= exported_sample_names(fam)
        exported = {scraped_name(f): f for f in fams.values()}
        wanted = {n for n, d in documented.items() if d.service in (service, "every")}
        assert sorted(set(exported) - wanted) == [], f"{service} exports undocumented metrics"
        assert sorted(wanted - set(exported)) == [], f"{service} lacks documented metrics"
        for name, fam in exported.items():
            doc = documented[name]
            # the text format has no info type: an Info is a gauge named *_info, valued 1
            expected = "gauge" if doc.type == "info" else doc.type
            assert fam.type == expected, f"{name}: exported {fam.type}, documented {doc.type}"
            labels = {k for s in fam.samples for k in s.labels if k not in ("le", "quantile")}
            if not fam.samples:
                declared = declared_label_names(service, fam.name)
                assert declared is not None, f"{name} has no sample and no collector"
                labels = declared
            assert labels == set(doc.labels), f"{service} {name}: labels {sorted(labels)}"

    # traffic really reached the labelled series
    ingest = families(scrapes["ingest"])
    outcomes = {
        s.labels["outcome"]
        for s in ingest["humiao_ingest_events"].samples
        if s.name.endswith("_total")
    }
    assert {"accepted", "duplicate", "rejected"} <= outcomes
    assert any(
        s.labels.get("reason") == "invalid_field"
        for s in ingest["humiao_ingest_rejections"].samples
    )
    calls = families(scrapes["desk"])["humiao_desk_calls"].samples
    assert any(
        s.labels.get("method") == "ListAlerts" and s.labels.get("code") == "OK" for s in calls
    )

    # (b) no personal data in any label value, nor anywhere in the exposition
    secret = PSEUDONYM_KEY.encode()
    keys = {pseudonym(secret, i) for i in ids}
    for service, text in scrapes.items():
        for fam in text_string_to_metric_families(text):
            for sample in fam.samples:
                for label, value in sample.labels.items():
                    assert not looks_like_citizen_id(value), f"{service} {sample.name} {label}"
                    assert not HEX32.fullmatch(value), f"{service} {sample.name} {label}={value}"
                    assert len(value) <= 64, f"{service} {sample.name} {label}: too long"
        for secret_value in (*ids, *keys):
            assert secret_value not in text, f"{service} exposes an ID number or child key"

    # (c) everything the rules and the dashboard use exists in the scrapes
    used = {n for names in lint.rule_metric_names().values() for n in names}
    used |= {n for names in lint.dashboard_metric_names().values() for n in names}
    missing = sorted(n for n in used - lint.PROMETHEUS_SERIES if n not in exported_samples)
    assert not missing, f"rules or dashboard use metrics no service exports: {missing}"
    assert len(used) >= 20
