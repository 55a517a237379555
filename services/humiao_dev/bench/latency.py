"""Step 4: at a steady rate through the ingest gateway, with the verifier running, the
delay from ingest acceptance to the alert version on the alerts topic.

A watcher reads both topics from the start: the events topic gives each fact's record
timestamp (set by the gateway at acceptance), the alerts topic each alert version's
record timestamp (set by the outbox relay when it publishes). A version's latency is
its timestamp minus the latest acceptance among the facts it rests on (its evidence):
the fact that completed the evidence is what made the verifier decide. When the trigger
is not in the evidence (a withdrawal by a reversal) that under-counts nothing: it
over-counts, so the figure is conservative. The verifier's own histogram (acceptance
to committed verdict, every record) is reported beside it, by bucket upper bounds.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from humiao.config import KafkaSettings
from humiao.domain.events import Envelope
from humiao_dev.bench.context import BenchContext
from humiao_dev.bench.ingest_runs import gateway, requests_of
from humiao_dev.bench.processes import Service, spawn
from humiao_dev.bench.report import histogram_delta, histogram_quantile, percentile
from humiao_dev.bench.verifier_runs import _progress, end_offsets

E2E_METRIC = "humiao_verifier_end_to_end_latency_seconds"


@dataclass
class Seen:
    #: event id -> earliest record timestamp (ms) on the events topic
    accepted: dict[str, int] = field(default_factory=dict)
    #: (alert id, version) -> (record ts ms, changed_at ms, evidence ids)
    versions: dict[tuple[str, int], tuple[int, int, tuple[str, ...]]] = field(
        default_factory=dict)


class Watcher:
    """Reads the events and alerts topics from the beginning on a thread."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.seen = Seen()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watcher")
        self.error: BaseException | None = None

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from humiao.api.alerts.v1 import alerts_pb2
        from humiao.api.events.v1 import events_pb2

        k = self.kafka
        consumer = KafkaConsumer(bootstrap_servers=k.bootstrap, enable_auto_commit=False,
                                 fetch_max_wait_ms=10, client_id="humiao-bench-watcher")
        try:
            tps = [TopicPartition(t, p) for t in (k.events_topic, k.alerts_topic)
                   for p in range(k.humiao_partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            while not self._stop.is_set():
                for tp, records in consumer.poll(timeout_ms=50).items():
                    with self.lock:
                        if tp.topic == k.events_topic:
                            for r in records:
                                eid = events_pb2.Envelope.FromString(r.value).event_id
                                old = self.seen.accepted.get(eid)
                                if old is None or r.timestamp < old:
                                    self.seen.accepted[eid] = r.timestamp
                        else:
                            for r in records:
                                v = alerts_pb2.AlertVersion.FromString(r.value)
                                changed = v.changed_at.seconds * 1000 + v.changed_at.nanos // 10**6
                                self.seen.versions[(v.alert_id, v.version)] = (
                                    r.timestamp, changed, tuple(v.evidence_event_ids))
        except BaseException as exc:
            self.error = exc
        finally:
            consumer.close(autocommit=False)

    def version_count(self) -> int:
        with self.lock:
            return len(self.seen.versions)


def e2e_buckets(service: Service) -> dict[float, float]:
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[float, float] = {}
    for family in text_string_to_metric_families(service.scrape()):
        if family.name != E2E_METRIC:
            continue
        for s in family.samples:
            if s.name.endswith("_bucket"):
                out[float(s.labels["le"])] = s.value
    return out


def feed_steadily(target: str, token: str, envelopes: Sequence[Envelope], rate: int,
                  tick: float = 0.1, max_in_flight: int = 50) -> dict[str, Any]:
    """SubmitBatch calls of rate*tick events every tick, on a fixed schedule."""
    from humiao.cli.ingest_cmd import open_stub

    per_call = max(1, int(rate * tick))
    requests = requests_of(envelopes, per_call)
    channel, stub = open_stub(target)
    metadata = (("authorization", f"Bearer {token}"),)
    calls: list[Any] = []
    behind = 0.0
    accepted = rejected = 0
    try:
        start = time.perf_counter()
        for i, request in enumerate(requests):
            due = start + i * tick
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            else:
                behind = max(behind, now - due)
            calls.append(stub.SubmitBatch.future(request, metadata=metadata, timeout=60))
            while sum(1 for c in calls[-max_in_flight:] if not c.done()) >= max_in_flight:
                time.sleep(0.001)
        for c in calls:
            answer = c.result()
            accepted += answer.accepted
            rejected += answer.rejected
        seconds = time.perf_counter() - start
    finally:
        channel.close()
    return {"events": len(envelopes), "seconds": round(seconds, 2),
            "events_per_s": round(len(envelopes) / seconds), "accepted": accepted,
            "rejected": rejected, "max_behind_schedule_ms": round(behind * 1000, 1)}


async def _wait_assigned(dsn: str, group: str, kafka: KafkaSettings, service: Service,
                         timeout: float = 60.0) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while len(await _progress(conn, group, kafka.events_topic)) < kafka.humiao_partitions:
            service.check()
            if time.monotonic() > deadline:
                raise TimeoutError("the verifier was not assigned its partitions")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def _settled(dsn: str, group: str, kafka: KafkaSettings, end: dict[int, int]) -> int:
    """Records not yet committed plus alert versions not yet published; and the count
    of versions written."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        stored = await _progress(conn, group, kafka.events_topic)
        left = sum(max(0, n - max(0, stored.get(p, 0))) for p, n in end.items())
        backlog = await conn.fetchval(
            "SELECT count(*) FROM alert_versions WHERE published_at IS NULL")
        return int(left + backlog)
    finally:
        await conn.close()


async def _versions(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM alert_versions"))
    finally:
        await conn.close()


def latencies(seen: Seen) -> tuple[list[float], list[float], int]:
    """(publication latencies ms, verdict latencies ms, versions skipped)."""
    published: list[float] = []
    verdict: list[float] = []
    skipped = 0
    for record_ts, changed_ms, evidence in seen.versions.values():
        times = [seen.accepted[e] for e in evidence if e in seen.accepted]
        if not times or len(times) != len(evidence):
            skipped += 1
            continue
        trigger = max(times)
        published.append(float(record_ts - trigger))
        verdict.append(float(changed_ms - trigger))
    return published, verdict, skipped


def latency_phase(ctx: BenchContext, envelopes: Sequence[Envelope], source: str, rate: int,
                  timeout: float = 300.0) -> dict[str, Any]:
    kafka = ctx.kafka("latency")
    group = "bench-latency"
    with gateway(ctx, "latencyingest", source, kafka) as gw:
        dsn = ctx.new_database("latencyverifier")
        verifier = spawn("verifier-latency", "humiao.verifier",
                         ctx.service_env(kafka, dsn, HUMIAO_VERIFIER_GROUP=group,
                                         **ctx.verifier_env), ctx.workdir)
        try:
            verifier.wait_ready()
            asyncio.run(_wait_assigned(dsn, group, kafka, verifier))
            with Watcher(kafka) as watcher:
                before = e2e_buckets(verifier)
                fed = feed_steadily(gw.service.grpc, gw.token, envelopes, rate)
                end = end_offsets(kafka)
                deadline = time.monotonic() + timeout
                while True:
                    verifier.check()
                    if watcher.error is not None:
                        raise watcher.error
                    if asyncio.run(_settled(dsn, group, kafka, end)) == 0:
                        written = asyncio.run(_versions(dsn))
                        if watcher.version_count() >= written:
                            break
                    if time.monotonic() > deadline:
                        raise TimeoutError("the verifier did not settle after the feed")
                    time.sleep(0.1)
                after = e2e_buckets(verifier)
            published, verdict, skipped = latencies(watcher.seen)
        finally:
            verifier.stop()
            ctx.drop_database(dsn)
    e2e = histogram_delta(after, before)

    def pct(values: list[float], q: float) -> float:
        return round(percentile(values, q), 1) if values else math.nan

    def bucket_ms(q: float) -> float:
        value = histogram_quantile(e2e, q)
        return value * 1000 if math.isfinite(value) else value

    ctx.delete_topics([kafka.events_topic, kafka.alerts_topic, kafka.deadletter_topic])
    return {
        "feed": fed,
        "alert_versions": len(published),
        "versions_skipped": skipped,
        "p50_ms": pct(published, 50),
        "p95_ms": pct(published, 95),
        "p99_ms": pct(published, 99),
        "max_ms": pct(published, 100),
        "verdict_p50_ms": pct(verdict, 50),
        "verdict_p99_ms": pct(verdict, 99),
        "verifier_histogram_records": int(max(e2e.values(), default=0)),
        "verifier_histogram_p50_le_ms": bucket_ms(0.50),
        "verifier_histogram_p99_le_ms": bucket_ms(0.99),
    }
