"""Steps 1, 2, 5 and 6: the raw kafka-python limit, the verifier as one and as two
processes from offset zero into an empty database, and its peak memory.

Clocks: the raw consumer's starts when the group assigns its partitions; a verifier
run's starts when every partition's offset row exists (the processes were assigned and
seeked) and stops when every stored offset reached the end of the topic. Process start
(imports, migrations, group join) is reported apart, as `startup_seconds`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from humiao.adapters.topics import log_end_offsets
from humiao.config import KafkaSettings
from humiao_dev.bench.context import BenchContext
from humiao_dev.bench.processes import RssSampler, Service, ServiceFailed, spawn
from humiao_dev.bench.profile import ProfileSummary, Sampler


def consumer_settings(batch_max: int) -> dict[str, Any]:
    """The verifier consumer's settings (humiao.verifier.consumer.ConsumerLoop.
    _make_consumer) that shape fetching, so the raw measurement reads the same way."""
    return {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": batch_max,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        "fetch_max_wait_ms": 100,
        "session_timeout_ms": 10_000,
        "heartbeat_interval_ms": 2_500,
    }


def end_offsets(kafka: KafkaSettings, timeout: float = 30.0) -> dict[int, int]:
    """The true log end of every partition of the events topic."""
    return log_end_offsets(kafka.bootstrap, kafka.events_topic, timeout)


class _Clock(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.assigned: float | None = None

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self.assigned is None and assigned:
            self.assigned = time.perf_counter()

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass


def _timed_read(bootstrap: str, topic: str, expected: int, batch_max: int, timeout: float,
                name: str, each: Callable[[list[Any]], int] | None = None) -> dict[str, Any]:
    """Read `expected` records as a fresh group member from assignment on, handing each
    poll's records to `each` (which answers how many it found invalid)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap,
                             group_id=f"bench-{name}-{uuid.uuid4().hex}",
                             client_id=f"humiao-bench-{name}", **consumer_settings(batch_max))
    clock = _Clock()
    got = invalid = 0
    try:
        consumer.subscribe([topic], listener=clock)
        deadline = time.monotonic() + timeout
        while got < expected:
            for records in consumer.poll(timeout_ms=200, max_records=batch_max).values():
                got += len(records)
                if each is not None:
                    invalid += each(records)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} consumer read {got} of {expected} records")
        done = time.perf_counter()
    finally:
        consumer.close(autocommit=False)
    assert clock.assigned is not None
    seconds = done - clock.assigned
    return {"records": got, "invalid": invalid, "seconds": round(seconds, 3),
            "records_per_s": got / seconds}


def raw_consume(bootstrap: str, topic: str, expected: int, batch_max: int,
                timeout: float = 600.0) -> dict[str, Any]:
    """Read `expected` records as a fresh group member, counting them and nothing else."""
    return _timed_read(bootstrap, topic, expected, batch_max, timeout, "raw")


def decode_consume(bootstrap: str, topic: str, expected: int, batch_max: int,
                   timeout: float = 600.0) -> dict[str, Any]:
    """The raw read plus what every verifier must do to each record before any state:
    decode and validate it into a domain envelope. No database, no evaluation: the
    ceiling of a Python verifier on this machine, reported beside the raw limit."""
    from humiao.adapters.codec import envelope_from_bytes
    from humiao.domain.validation import ValidationFailed

    def decode(records: list[Any]) -> int:
        invalid = 0
        for rec in records:
            try:
                envelope_from_bytes(rec.value)
            except ValidationFailed:
                invalid += 1
        return invalid

    return _timed_read(bootstrap, topic, expected, batch_max, timeout, "decode", decode)


@dataclass
class VerifierRun:
    processes: int
    records: int
    seconds: float
    startup_seconds: float
    peak_rss_mb: list[float]
    cpu_seconds: list[float]
    alerts: int
    alert_versions: int
    outbox_backlog: int
    implied_by_code: dict[str, int]
    withdrawn_by_code: dict[str, int]
    profile: ProfileSummary | None = None
    code: str = ""

    @property
    def implied(self) -> int:
        return sum(self.implied_by_code.values())

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "records_per_s": round(self.records_per_s),
            "startup_seconds": round(self.startup_seconds, 2),
            "peak_rss_mb": [round(x, 1) for x in self.peak_rss_mb],
            "cpu_seconds": [round(x, 1) for x in self.cpu_seconds],
            "cpu_per_wall": round(sum(self.cpu_seconds) / self.seconds, 2)
            if self.seconds else None,
            "alerts": self.alerts,
            "alert_versions": self.alert_versions,
            "outbox_backlog_at_end": self.outbox_backlog,
            "implied_alerts": self.implied,
            "implied_by_code": self.implied_by_code,
            "withdrawn_by_code": self.withdrawn_by_code,
            "code_fingerprint": self.code,
        }


def code_fingerprint() -> str:
    """Short hash of the verifier's and the domain's source as this run spawned them (the
    code under test changes while people work; this tells runs apart)."""
    import hashlib

    import humiao

    root = Path(humiao.__file__).parent
    digest = hashlib.sha256()
    for sub in ("verifier", "domain", "adapters"):
        for path in sorted((root / sub).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), 0 if unavailable."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


async def _progress(conn: asyncpg.Connection, group: str, topic: str) -> dict[int, int]:
    try:
        rows = await conn.fetch("SELECT part, next_offset FROM consumer_offsets"
                                " WHERE consumer_group = $1 AND topic = $2", group, topic)
    except asyncpg.UndefinedTableError:
        return {}  # not migrated yet
    return {r["part"]: r["next_offset"] for r in rows}


async def _watch(dsn: str, group: str, topic: str, end: dict[int, int],
                 services: list[Service], timeout: float,
                 cpu_at_start: dict[int, float]) -> tuple[float, float]:
    """(time every partition was assigned, time every offset reached its end); fills
    `cpu_at_start` with each process's CPU seconds when the clock started."""
    conn = await asyncpg.connect(dsn)
    try:
        assigned: float | None = None
        deadline = time.monotonic() + timeout
        while True:
            for s in services:
                s.check()
            stored = await _progress(conn, group, topic)
            now = time.perf_counter()
            if assigned is None and all(p in stored for p in end if end[p] > 0):
                assigned = now
                cpu_at_start.update({s.pid: cpu_seconds(s.pid) for s in services})
            if assigned is not None and all(stored.get(p, -1) >= n for p, n in end.items()
                                            if n > 0):
                return assigned, now
            if time.monotonic() > deadline:
                left = sum(max(0, n - max(0, stored.get(p, 0))) for p, n in end.items())
                raise TimeoutError(f"verifier not done after {timeout:.0f}s: {left} records left")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def _counts(dsn: str) -> tuple[int, int, int, dict[str, int], dict[str, int]]:
    """(alerts, versions, versions unpublished, implied alerts by code, withdrawn alerts
    by code: the facts took them back, or a replay raised them before it got there)."""
    conn = await asyncpg.connect(dsn)
    try:
        alerts = await conn.fetchval("SELECT count(*) FROM alerts")
        versions = await conn.fetchval("SELECT count(*) FROM alert_versions")
        backlog = await conn.fetchval(
            "SELECT count(*) FROM alert_versions WHERE published_at IS NULL")
        rows = await conn.fetch("SELECT code, count(*) AS n FROM alerts WHERE implied"
                                " GROUP BY code ORDER BY code")
        gone = await conn.fetch("SELECT code, count(*) AS n FROM alerts"
                                " WHERE status = 'WITHDRAWN' GROUP BY code ORDER BY code")
        return (int(alerts), int(versions), int(backlog), {r["code"]: r["n"] for r in rows},
                {r["code"]: r["n"] for r in gone})
    finally:
        await conn.close()


def run_verifiers(ctx: BenchContext, kafka: KafkaSettings, processes: int, tag: str,
                  end: dict[int, int], *, profile: Path | None = None,
                  timeout: float = 1800.0) -> VerifierRun:
    """`processes` verifier processes, one group, a fresh database, until all committed."""
    dsn = ctx.new_database(tag)
    group = f"bench-{tag}"
    env = ctx.service_env(kafka, dsn, HUMIAO_VERIFIER_GROUP=group, **ctx.verifier_env)
    services: list[Service] = []
    sampler: Sampler | None = None
    summary: ProfileSummary | None = None
    try:
        code = code_fingerprint()
        spawned = time.perf_counter()
        for i in range(processes):
            services.append(spawn(f"verifier-{tag}-{i}", "humiao.verifier",
                                  {**env, "HUMIAO_VERIFIER_CLIENT_ID": f"bench-{tag}-{i}"},
                                  ctx.workdir))
        if profile is not None:
            sampler = Sampler(services[0].pid, profile)
        cpu_start: dict[int, float] = {}
        with RssSampler([s.pid for s in services]) as rss:
            assigned, done = asyncio.run(
                _watch(dsn, group, kafka.events_topic, end, services, timeout, cpu_start))
            rss.sample()
            cpu = [cpu_seconds(s.pid) - cpu_start.get(s.pid, 0.0) for s in services]
        if sampler is not None:
            summary = sampler.stop()
            sampler = None
        alerts, versions, backlog, implied, withdrawn = asyncio.run(_counts(dsn))
        return VerifierRun(
            processes=processes,
            records=sum(end.values()),
            seconds=done - assigned,
            startup_seconds=assigned - spawned,
            peak_rss_mb=[rss.peak_mb(s.pid) for s in services],
            cpu_seconds=cpu,
            alerts=alerts,
            alert_versions=versions,
            outbox_backlog=backlog,
            implied_by_code=implied,
            withdrawn_by_code=withdrawn,
            profile=summary,
            code=code,
        )
    finally:
        if sampler is not None:
            sampler.stop()
        failed = [s for s in services if s.stop() not in (0, None, -15)]
        ctx.drop_database(dsn)
        if failed:
            raise ServiceFailed(f"{failed[0].name} exited with {failed[0].process.returncode}; "
                                f"see {failed[0].log}")


def memory_run(ctx: BenchContext, children: int, *, guardians: bool,
               timeout: float = 1800.0) -> dict[str, Any]:
    """Produce the minimal history of `children` children; one verifier through it."""
    from humiao_dev.bench.workload import memory_records, produce

    kafka = ctx.kafka(f"mem{children}")
    started = time.perf_counter()
    events, records = produce(ctx.bootstrap, kafka.events_topic, kafka.humiao_partitions,
                              memory_records(children, ctx.secret, guardians=guardians))
    produce_s = time.perf_counter() - started
    end = end_offsets(kafka)
    assert sum(end.values()) == records, (end, records)
    run = run_verifiers(ctx, kafka, 1, f"mem{children}", end, timeout=timeout)
    ctx.delete_topics([kafka.events_topic, kafka.alerts_topic, kafka.deadletter_topic])
    return {
        "children": children,
        "events": events,
        "records": records,
        "produce_seconds": round(produce_s, 2),
        "peak_rss_mb": round(run.peak_rss_mb[0], 1),
        "verifier": run.to_json(),
    }
