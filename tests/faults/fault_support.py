"""Tools of the fault suite (and of the e2e metrics test): service processes started from
env vars (ready file, log file, health, metrics), topics and databases of a test's own, a
loopback TCP proxy that can cut and restore every connection through it, database reads
the fault tests share, and scanners for citizen ID numbers.

Everything here polls with deadlines; nothing sleeps blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from humiao.adapters.topics import ensure_topics, log_end_offsets
from humiao.config import KafkaSettings
from humiao.domain.identity import looks_like_citizen_id
from humiao_dev.stack.broker import free_port
from humiao_dev.stack.database import drop_database, ensure_database

T = TypeVar("T")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
#: 17 digits and a check character, not inside a longer run of digits.
CITIZEN_ID_PATTERN = re.compile(r"(?<![0-9])[0-9]{17}[0-9X](?![0-9X])")
CITIZEN_ID_BYTES = re.compile(rb"(?<![0-9])[0-9]{17}[0-9X](?![0-9X])")


# --- waiting ---------------------------------------------------------------------------


def wait_until(what: str, check: Callable[[], T | None], timeout: float,
               interval: float = 0.05) -> T:
    """Poll a blocking `check` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


async def await_until(what: str, check: Callable[[], Awaitable[T | None]], timeout: float,
                      interval: float = 0.1) -> T:
    """The asyncio twin of wait_until."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


# --- service processes ------------------------------------------------------------------


def service_env(kafka: KafkaSettings | None, dsn: str | None, **extra: str) -> dict[str, str]:
    """The environment of one service process: ports chosen by the OS, short grace."""
    env = {
        **os.environ,
        "HUMIAO_GRPC_HOST": "127.0.0.1",
        "HUMIAO_GRPC_PORT": "0",
        "HUMIAO_METRICS_PORT": "0",
        "HUMIAO_SHUTDOWN_GRACE_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    if kafka is not None:
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "HUMIAO_TOPIC_PREFIX": kafka.humiao_topic_prefix,
            "HUMIAO_PARTITIONS": str(kafka.humiao_partitions),
        })
    if dsn is not None:
        env["DATABASE_URL"] = dsn
    env.update(extra)
    return env


@dataclass
class ServiceProcess:
    """One `python -m humiao.<name>` process with its ready file and its log."""

    name: str
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] | None = None
    starts: int = 0
    log: Path = field(init=False)
    ready_file: Path = field(init=False)

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.log = self.workdir / f"{self.name}-{tag}.log"
        self.ready_file = self.workdir / f"{self.name}-{tag}.ready.json"

    def start(self) -> ServiceProcess:
        """Start (again); the log is appended to across restarts."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.ready_file.unlink(missing_ok=True)
        self.info = None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"humiao.{self.name}"],
                env={**self.env, "HUMIAO_READY_FILE": str(self.ready_file)},
                stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self) -> None:
        assert self.alive(), (
            f"{self.name} exited with {self.proc.returncode if self.proc else None}:\n"
            f"{self.tail()}"
        )

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def read_ready(self) -> dict[str, Any] | None:
        self.assert_alive()
        if not self.ready_file.exists():
            return None
        self.info = json.loads(self.ready_file.read_text())
        return self.info

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        info = wait_until(f"{self.name} ready file", self.read_ready, timeout)
        assert info["service"] == self.name and info["pid"] == self.pid
        return info

    @property
    def target(self) -> str:
        assert self.info is not None, f"{self.name} is not ready"
        return str(self.info["grpc"])

    def health(self, service: str = "", timeout: float = 2.0) -> int | None:
        """The gRPC health status, None when the process does not answer (asked on the
        plaintext health port when the service has one: its main port may speak TLS)."""
        target = (self.info or {}).get("health") or self.target
        with grpc.insecure_channel(target) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=timeout)
            except grpc.RpcError:
                return None
        return int(answer.status)

    def wait_health(self, status: int, timeout: float = 60.0) -> None:
        def check() -> bool:
            self.assert_alive()
            return self.health() == status
        name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        wait_until(f"{self.name} health {name}", check, timeout)

    def scrape(self) -> str:
        assert self.info is not None
        with urllib.request.urlopen(self.info["metrics"], timeout=5) as answer:
            return str(answer.read().decode())

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it hangs. The exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"{self.name} ignored SIGTERM:\n{self.tail()}") from None
        return self.proc.returncode


def stop_all(services: Iterable[ServiceProcess]) -> dict[str, int | None]:
    """SIGTERM every service at once, then reap them (kill any that hangs)."""
    services = list(services)
    for svc in services:
        if svc.alive():
            assert svc.proc is not None
            svc.proc.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for svc in services:
        if svc.proc is None:
            continue
        try:
            codes[svc.name] = svc.proc.wait(25)
        except subprocess.TimeoutExpired:
            svc.proc.kill()
            svc.proc.wait(10)
            codes[svc.name] = None
    return codes


def start_serving(names: Iterable[str], env: dict[str, str], workdir: Path,
                  timeout: float = 60.0) -> dict[str, ServiceProcess]:
    """Start every named service, then wait until each is ready and SERVING; if one is
    not, stop them all before failing (no process outlives a failed setup)."""
    services = {name: ServiceProcess(name, env, workdir).start() for name in names}
    try:
        for svc in services.values():
            svc.wait_ready(timeout)
            svc.wait_health(SERVING, timeout)
    except BaseException:
        stop_all(services.values())
        raise
    return services


# --- topics and databases of a test's own ------------------------------------------------


def new_topics(bootstrap: str, partitions: int = 4) -> KafkaSettings:
    """Fresh topics (events, alerts, dead letters) under a prefix of their own."""
    settings = KafkaSettings(
        kafka_bootstrap_servers=bootstrap,
        humiao_topic_prefix=f"f{uuid.uuid4().hex[:10]}.",
        humiao_partitions=partitions,
    )
    ensure_topics(settings)
    return settings


def database_name() -> str:
    return f"humiao_fault_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def migrated_database(admin_dsn: str) -> Iterator[str]:
    """A fresh database with the schema in place, for a module's stack; dropped after."""
    name = database_name()
    dsn = asyncio.run(ensure_database(admin_dsn, name))
    try:
        yield asyncio.run(migrate(dsn))
    finally:
        asyncio.run(drop_database(admin_dsn, name))


# --- a loopback TCP proxy that can be cut ------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target. `cut()` closes every connection and stops
    listening (new connections are refused); `restore()` listens again on the same port.

    Two threads per connection (one per direction) keep it simple and deadlock-free;
    `close()` joins every thread it started.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self.refused_while_cut = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,),
                                          name=f"proxy-accept-{self.port}")
        self._acceptor.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: cut() or close()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.accepted += 1
                self._conns += [client, upstream]
                for src, dst in ((client, upstream), (upstream, client)):
                    t = threading.Thread(target=self._pump, args=(src, dst),
                                         name=f"proxy-pump-{self.port}")
                    self._threads.append(t)
                    t.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _stop_listening(self) -> None:
        listener, acceptor = self._listener, self._acceptor
        self._listener = self._acceptor = None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        if acceptor is not None:
            acceptor.join(5)

    def cut(self) -> int:
        """Refuse new connections and reset every open one; returns how many were open."""
        self._stop_listening()
        with self._lock:
            conns, self._conns = self._conns, []
            threads, self._threads = self._threads, []
        for s in conns:
            with contextlib.suppress(OSError):  # RST, not FIN: the peer sees the link die
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(5)
        for s in conns:
            s.close()
        return len(conns) // 2

    def refuses(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return True
        return False

    def restore(self) -> None:
        assert self._listener is None, "not cut"
        self.start()

    def close(self) -> None:
        self.cut()


# --- topic ends, read the way that is right on the embedded broker ---------------------


def true_end_offsets(bootstrap: str, topic: str, timeout: float = 15.0) -> dict[int, int]:
    """The next offset of every partition of `topic` (not ListOffsets: see the adapter)."""
    return log_end_offsets(bootstrap, topic, timeout)


def read_all(bootstrap: str, topic: str, timeout: float = 20.0) -> list[Any]:
    """Every record now on `topic` (all partitions, up to the true ends), without a group."""
    from kafka import KafkaConsumer, TopicPartition

    ends = true_end_offsets(bootstrap, topic)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             client_id="fault-suite-reader",
                             max_partition_fetch_bytes=16 * 1024 * 1024,
                             fetch_max_bytes=64 * 1024 * 1024)
    try:
        tps = [TopicPartition(topic, p) for p, end in sorted(ends.items()) if end > 0]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        remaining = set(tps)
        deadline = time.monotonic() + timeout
        while remaining and time.monotonic() < deadline:
            for tp, recs in consumer.poll(timeout_ms=200).items():
                out.extend(r for r in recs if r.offset < ends[tp.partition])
                if recs and recs[-1].offset + 1 >= ends[tp.partition]:
                    remaining.discard(tp)
        assert not remaining, f"could not read {topic} to its end"
        return out
    finally:
        consumer.close()


async def wait_committed(dsn: str, group: str, ends: Mapping[int, int], timeout: float,
                         alive: Callable[[], None] | None = None) -> dict[int, int]:
    """Until the verifier's offsets stored in PostgreSQL reach `ends` on every partition."""
    async def check() -> dict[int, int] | None:
        if alive is not None:
            alive()
        stored = await committed_offsets(dsn, group)
        done = all(stored.get(p, -1) >= end for p, end in ends.items() if end > 0)
        return stored if done else None
    return await await_until("the verifier to commit every record", check, timeout, 0.2)


async def wait_settled(dsn: str, group: str, ends: Mapping[int, int], timeout: float,
                       alive: Callable[[], None] | None = None) -> None:
    """Until the verifier has committed up to `ends` and its outbox is empty (every
    alert version it wrote is on the wire)."""
    await wait_committed(dsn, group, ends, timeout, alive)

    async def drained() -> bool:
        if alive is not None:
            alive()
        return await outbox_backlog(dsn) == 0

    await await_until("the outbox to drain", drained, 30)


def wire_versions(kafka: KafkaSettings) -> tuple[dict[tuple[str, int], bytes], int]:
    """(alert id, version) -> payload as found on the alerts topic; plus how many records
    were repeats. A repeat must carry the same bytes (at-least-once, deduplicable)."""
    seen: dict[tuple[str, int], bytes] = {}
    repeats = 0
    for rec in read_all(kafka.bootstrap, kafka.alerts_topic):
        headers = {k: v.decode() for k, v in rec.headers}
        key = (rec.key.decode(), int(headers["version"]))
        assert headers["alert-id"] == key[0]
        if key in seen:
            repeats += 1
            assert seen[key] == rec.value, f"{key} published twice with different payloads"
        seen[key] = rec.value
    return seen, repeats


# --- reading what the verifier committed -----------------------------------------------


async def migrate(dsn: str) -> str:
    """Put the schema in place (as any service would at start), so tests can watch it."""
    from humiao.adapters.db import create_pool

    await (await create_pool(dsn, min_size=1, max_size=1)).close()
    return dsn


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def committed_offsets(dsn: str, group: str) -> dict[int, int]:
    rows = await fetch(dsn, "SELECT part, next_offset FROM consumer_offsets"
                            " WHERE consumer_group = $1", group)
    return {r["part"]: r["next_offset"] for r in rows}


async def committed_total(dsn: str, group: str) -> int:
    return sum(max(0, v) for v in (await committed_offsets(dsn, group)).values())


async def outbox_backlog(dsn: str) -> int:
    rows = await fetch(dsn, "SELECT count(*) AS n FROM alert_versions WHERE published_at IS NULL")
    return int(rows[0]["n"])


async def version_history(dsn: str) -> dict[str, list[tuple[int, str]]]:
    """alert id -> [(version, status)] in version order, as the database recorded them."""
    rows = await fetch(dsn, "SELECT alert_id, version, status FROM alert_versions"
                            " ORDER BY alert_id, version")
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in rows:
        out[r["alert_id"]].append((r["version"], r["status"]))
    return dict(out)


async def stored_payloads(dsn: str) -> dict[tuple[str, int], bytes]:
    """(alert id, version) -> payload, as the database recorded every version."""
    rows = await fetch(dsn, "SELECT alert_id, version, payload FROM alert_versions")
    return {(r["alert_id"], r["version"]): bytes(r["payload"]) for r in rows}


def assert_contiguous(history: Mapping[str, list[tuple[int, str]]]) -> None:
    """Versions of every alert run 1..n: none missing, none twice."""
    for aid, versions in history.items():
        numbers = [v for v, _ in versions]
        assert numbers == list(range(1, len(numbers) + 1)), (aid, numbers)


# --- privacy scanning -------------------------------------------------------------------


def citizen_ids_in_text(text: str) -> list[str]:
    """Every 18-character run shaped like a citizen ID number with a valid check digit."""
    return [m for m in CITIZEN_ID_PATTERN.findall(text) if looks_like_citizen_id(m)]


def citizen_ids_in_value(value: Any) -> set[str]:
    """Every citizen ID number inside an event body (parents and nested tuples included)."""
    found: set[str] = set()
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            found |= citizen_ids_in_value(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            found |= citizen_ids_in_value(item)
    elif isinstance(value, str) and looks_like_citizen_id(value):
        found.add(value)
    return found


def citizen_ids_in_bytes(data: bytes) -> list[str]:
    found = [m.decode() for m in CITIZEN_ID_BYTES.findall(data)]
    return [m for m in found if looks_like_citizen_id(m)]


# --- clients ---------------------------------------------------------------------------


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def sha256(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def source_credentials(**tokens: tuple[str, Any, Any]) -> str:
    """HUMIAO_SOURCE_CREDENTIALS: token -> (source, regions, kinds), hashes only."""
    return json.dumps({sha256(t): {"source": s, "regions": r, "kinds": k}
                       for t, (s, r, k) in tokens.items()})


def staff_credentials(**tokens: tuple[str, str, Any]) -> str:
    """HUMIAO_STAFF_CREDENTIALS: token -> (name, role, regions), hashes only."""
    return json.dumps({sha256(t): {"name": n, "role": r, "regions": g}
                       for t, (n, r, g) in tokens.items()})


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                total += sample.value
    return total


def via_proxy(dsn: str, port: int) -> str:
    """The same DSN with its host and port replaced by 127.0.0.1:<port>."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def host_port(dsn: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    return parts.hostname or "127.0.0.1", parts.port or 5432
