"""Metrics that tell the truth: start ingest, verifier, desk, notifier and console as
processes against the real broker and PostgreSQL, push a little traffic through them
(events with real-looking ID numbers, a duplicate, an invalid event, a desk query, console
pages), scrape every /metrics endpoint and check that

(a) the catalogue in deploy/OPERATIONS.md is exactly what the services export, with the
    same types and label names;
(b) no label value carries personal data: nothing shaped like a citizen ID (valid GB 11643
    check digit), no 32-hex child key, and none of the submitted ID numbers or their
    pseudonyms anywhere in the scrape;
(c) every metric the alert rules and the Grafana dashboard use exists in the scrapes.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import httpx
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from faults.fault_support import (
    ServiceProcess,
    bearer,
    citizen_ids_in_value,
    service_env,
    source_credentials,
    staff_credentials,
    start_serving,
    stop_all,
    wait_until,
)
from humiao.adapters.codec import envelope_to_proto
from humiao.api.desk.v1 import desk_pb2, desk_pb2_grpc
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.config import KafkaSettings
from humiao.domain.identity import looks_like_citizen_id, pseudonym
from strategies import random_envelope

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ingest", "verifier", "desk", "notifier", "console")
SOURCE_TOKEN = "scrape-test-source-token"
STAFF_TOKEN = "scrape-test-staff-token"
PSEUDONYM_KEY = "scrape-test-pseudonym-key"
HEX32 = re.compile(r"[0-9a-f]{32}")


def load_lint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("humiao_deploy_lint", ROOT / "deploy" / "lint.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lint = load_lint()


@pytest.fixture
def services(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> Iterator[dict[str, ServiceProcess]]:
    """The services as processes, each with its ready file and log; the console, the
    desk's client, once the desk serves."""
    kafka = KafkaSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        humiao_topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        humiao_partitions=3,
    )
    env = service_env(
        kafka,
        database_url,
        HUMIAO_PSEUDONYM_KEY=PSEUDONYM_KEY,
        HUMIAO_VERIFIER_GROUP=f"scrape-{uuid.uuid4().hex[:8]}",
        HUMIAO_VERIFIER_LINGER_MS="10",
        HUMIAO_DESK_GAUGE_SECONDS="0.3",
        HUMIAO_SOURCE_CREDENTIALS=source_credentials(**{SOURCE_TOKEN: ("scrape-test", "*", "*")}),
        HUMIAO_STAFF_CREDENTIALS=staff_credentials(**{STAFF_TOKEN: ("scraper", "supervisor", "*")}),
        HUMIAO_NOTIFY_ROUTES=notify_routes(tmp_path),
    )
    running = start_serving([s for s in SERVICES if s != "console"], env, tmp_path)
    try:
        running.update(start_serving(["console"], {
            **env, "HUMIAO_DESK_TARGET": running["desk"].target,
            "HUMIAO_CONSOLE_PORT": "0", "HUMIAO_CONSOLE_COOKIE_SECURE": "false"}, tmp_path))
    except BaseException:
        stop_all(running.values())
        raise
    try:
        yield running
    finally:
        stop_all(running.values())


def notify_routes(directory: Path) -> str:
    """A notifier routes file whose one receiver answers nothing (its failures are counted)."""
    path = directory / "notify-routes.toml"
    path.write_text('[receivers.scrape-hook]\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n'
                    '[[routes]]\nreceiver = "scrape-hook"\ngroup_wait = "100ms"\n')
    return str(path)


def drive_traffic(running: dict[str, ServiceProcess]) -> tuple[list[str], int]:
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
    ids = set().union(*(citizen_ids_in_value(e.body) for e in envelopes))
    # a child ID number with a wrong check digit: rejected, and never echoed in a label
    child_fact = next(e for e in envelopes if hasattr(e.body, "child_id"))
    good = child_fact.body.child_id  # type: ignore[union-attr]
    bad_id = good[:17] + ("0" if good[17] != "0" else "1")
    invalid = replace(
        child_fact, event_id="scrape-invalid", body=replace(child_fact.body, child_id=bad_id)
    )
    ids.add(bad_id)
    protos = [envelope_to_proto(e) for e in envelopes]
    metadata = bearer(SOURCE_TOKEN)
    with grpc.insecure_channel(running["ingest"].target) as channel:
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
    with grpc.insecure_channel(running["desk"].target) as channel:
        desk = desk_pb2_grpc.AlertDeskStub(channel)
        desk.ListAlerts(
            desk_pb2.ListAlertsRequest(page_size=10),
            metadata=bearer(STAFF_TOKEN),
            timeout=10,
        )
    # the console: a sign-in, the queue, an alert page of nobody, and a filter holding an ID
    assert running["console"].info is not None
    with httpx.Client(base_url=running["console"].info["http"], timeout=10) as console:
        assert console.get(f"/login?token={STAFF_TOKEN}").status_code == 303
        assert console.get("/alerts").status_code == 200
        assert console.get(f"/alerts/A{'0' * 24}").status_code == 404
        assert console.get(f"/alerts?child={good}").status_code == 400
    assert all(len(i) == 18 for i in ids) and len(ids) >= 10
    return sorted(ids), first.accepted


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
    services: dict[str, ServiceProcess],
) -> None:
    ids, accepted = drive_traffic(services)

    def verifier_caught_up() -> bool:
        fams = families(services["verifier"].scrape())
        processed = sum(
            s.value for s in fams["humiao_verifier_events"].samples if s.name.endswith("_total")
        )
        return processed >= accepted

    wait_until("the verifier to process the accepted events", verifier_caught_up, 45)

    def desk_counted_alerts() -> bool:
        return any(
            s.name == "humiao_desk_open_alerts"
            for s in families(services["desk"].scrape())["humiao_desk_open_alerts"].samples
        )

    wait_until("the desk's open-alerts gauge", desk_counted_alerts, 45)

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
