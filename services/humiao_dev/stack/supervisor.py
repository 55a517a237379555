"""The local stack as background processes: start, inspect and stop broker and services.

`humiao up` and the demo both use `start_stack`. Each service is a detached process
(its own session, so a Ctrl-C in the terminal is not theirs) logging to
`<state dir>/logs/<service>.log`; it announces where it listens in a ready file
(humiao.runtime.write_ready_file) and is waited for until its gRPC health says SERVING.
What the other commands need (endpoints, development tokens, pids) goes to
`<state dir>/stack.json`; the credential files hold only token hashes.

The embedded broker is Tansu with memory storage: stopping it (or `humiao down`) empties
it. The embedded PostgreSQL, used only where none answers on 127.0.0.1:5432, keeps its
data in `<state dir>/pgdata` and is left running by `stop_stack` (tests share it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from humiao.adapters.progress import DEFAULT_GROUP
from humiao.cli.local_state import STATE_FILE, project_root, state_dir
from humiao.config import KafkaSettings
from humiao_dev.processes import Service, ServiceFailed, health, spawn
from humiao_dev.stack.database import ensure_database, resolve_admin_dsn, with_database

#: Start order; `stop_stack` stops them in this order too: ingest first so nothing new
#: arrives, then the verifier (it finishes and commits its batch), then the desk.
SERVICES: tuple[str, ...] = ("ingest", "verifier", "desk")
MODULES: Mapping[str, str] = {
    "ingest": "humiao.ingest",
    "verifier": "humiao.verifier",
    "desk": "humiao.desk",
    "notifier": "humiao.notifier",
    "console": "humiao.console",
}
#: Started after the others only when their configuration is set (variable named).
OPTIONAL_SERVICES: Mapping[str, str] = {"notifier": "HUMIAO_NOTIFY_ROUTES"}
#: Started once the desk is SERVING, as its client (HUMIAO_DESK_TARGET); stopped first.
CONSOLE = "console"
ALL_SERVICES: tuple[str, ...] = (CONSOLE, *SERVICES, *OPTIONAL_SERVICES)


def services_for(env: Mapping[str, str]) -> tuple[str, ...]:
    """The services `humiao up` starts: the required ones, and the optional configured."""
    return (*SERVICES, *(name for name, var in OPTIONAL_SERVICES.items() if env.get(var)))

#: The source name of the development source credential (and of the demo's city).
DEV_SOURCE = "humiao-dev"
DEV_STAFF = "developer"
DEFAULT_DATABASE = "humiao"

#: Popen objects of the processes this process started, so stopping them also reaps them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    """The stack could not be started or reached; the message says what and where to look."""





@dataclass
class ServiceInfo:
    pid: int
    grpc: str
    metrics: str
    http: str | None = None


@dataclass
class StackState:
    """What `humiao up` leaves for the other commands (and the developer) to read."""

    state_dir: str
    kafka_bootstrap: str
    database_url: str
    topic_prefix: str
    partitions: int
    source_token: str
    staff_token: str
    broker_pid: int | None = None  # None: an external broker (KAFKA_BOOTSTRAP_SERVERS)
    services: dict[str, ServiceInfo] = field(default_factory=dict)
    source: str = DEV_SOURCE
    staff_name: str = DEV_STAFF
    verifier_group: str = DEFAULT_GROUP
    started_at: str = ""

    @property
    def ingest(self) -> str:
        return self.services["ingest"].grpc

    @property
    def desk(self) -> str:
        return self.services["desk"].grpc

    @property
    def console(self) -> str | None:
        info = self.services.get(CONSOLE)
        return info.http if info else None

    @property
    def console_login_url(self) -> str | None:
        """Opens the console signed in as the development supervisor (the token leaves the
        address bar at once: the console turns it into a session and redirects)."""
        return f"{self.console}/login?token={self.staff_token}" if self.console else None

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(
            kafka_bootstrap_servers=self.kafka_bootstrap,
            humiao_topic_prefix=self.topic_prefix,
            humiao_partitions=self.partitions,
        )

    def to_json(self) -> dict[str, Any]:
        """The state file: flat endpoint names first (what scripts read), then details."""
        doc: dict[str, Any] = {}
        for name, info in self.services.items():
            if name not in ("verifier", CONSOLE):
                doc[name] = info.grpc
        if self.console:
            doc["console"] = self.console
            doc["console_login_url"] = self.console_login_url
        for name, info in self.services.items():
            doc[f"{name}_metrics"] = info.metrics
        doc.update(
            source_token=self.source_token,
            source=self.source,
            staff_token=self.staff_token,
            staff_name=self.staff_name,
            database_url=self.database_url,
            kafka_bootstrap=self.kafka_bootstrap,
            topic_prefix=self.topic_prefix,
            partitions=self.partitions,
            verifier_group=self.verifier_group,
            pids={"broker": self.broker_pid, **{n: i.pid for n, i in self.services.items()}},
            services={n: asdict(i) for n, i in self.services.items()},
            state_dir=self.state_dir,
            logs=str(Path(self.state_dir) / "logs"),
            started_at=self.started_at,
        )
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StackState:
        return cls(
            state_dir=doc["state_dir"],
            kafka_bootstrap=doc["kafka_bootstrap"],
            database_url=doc["database_url"],
            topic_prefix=doc["topic_prefix"],
            partitions=int(doc["partitions"]),
            source_token=doc["source_token"],
            staff_token=doc["staff_token"],
            broker_pid=doc.get("pids", {}).get("broker"),
            services={n: ServiceInfo(**i) for n, i in doc.get("services", {}).items()},
            source=doc.get("source", DEV_SOURCE),
            staff_name=doc.get("staff_name", DEV_STAFF),
            verifier_group=doc.get("verifier_group", DEFAULT_GROUP),
            started_at=doc.get("started_at", ""),
        )


def load_state(directory: Path | None = None) -> StackState | None:
    """The state `humiao up` wrote, or None when there is none (or it is unreadable)."""
    path = (directory or state_dir()) / STATE_FILE
    try:
        return StackState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_state(state: StackState) -> Path:
    path = Path(state.state_dir) / STATE_FILE
    write_private(path, json.dumps(state.to_json(), indent=2))  # it holds the dev tokens
    return path


# --- processes -------------------------------------------------------------------------


def process_alive(pid: int | None) -> bool:
    """True while `pid` runs (a zombie child of ours is reaped and counts as gone)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_ours(pid: int | None, marker: str) -> bool:
    """Alive and its command line names `marker`: never signal a reused pid."""
    if not process_alive(pid):
        return False
    assert pid is not None
    cmd = _cmdline(pid)
    return not cmd or marker in cmd  # no /proc (not Linux): trust the pid


def terminate(pid: int, marker: str, timeout: float = 20.0) -> bool:
    """SIGTERM `pid` (if it is the process we started), wait, SIGKILL if it will not go."""
    if not is_ours(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            timeout_kill = time.monotonic() + 5
            while process_alive(pid) and time.monotonic() < timeout_kill:
                time.sleep(0.05)
            break
        time.sleep(0.05)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(1)
    return True


def release_children() -> None:
    """Forget the Popen objects of processes meant to outlive us (`humiao up` exits)."""
    for proc in _CHILDREN.values():
        proc.returncode = proc.returncode if proc.returncode is not None else 0
    _CHILDREN.clear()


# --- the stack -------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, private from its creation (it holds tokens)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)


def _configured_credentials(variable: str) -> dict[str, Any]:
    """The user's own credentials (inline JSON, or a .json/.toml file) from `variable`,
    added to the stack's development ones so several sources and staff can be tried."""
    import tomllib

    spec = (os.environ.get(variable) or "").strip()
    if not spec:
        return {}
    try:
        if spec.startswith("{"):
            document = json.loads(spec)
        else:
            raw = Path(spec).read_text(encoding="utf-8")
            document = tomllib.loads(raw) if spec.endswith(".toml") else json.loads(raw)
    except (OSError, ValueError) as exc:
        raise StackError(f"{variable}: cannot read credentials ({exc})") from None
    if not isinstance(document, dict):
        raise StackError(f"{variable}: must map token hashes to credentials")
    return document


def _credentials(directory: Path, source_token: str, staff_token: str) -> tuple[Path, Path]:
    """Credential files with token hashes only (the tokens go to the state file): the
    development ones (any source name, region and kind; a supervisor of every region)
    plus HUMIAO_SOURCE_CREDENTIALS and HUMIAO_STAFF_CREDENTIALS when they are set."""
    from hashlib import sha256

    source_file = directory / "source-credentials.json"
    staff_file = directory / "staff-credentials.json"
    for path, doc in (
        (source_file, {**_configured_credentials("HUMIAO_SOURCE_CREDENTIALS"),
                       sha256(source_token.encode()).hexdigest():
                       {"source": "*", "regions": "*", "kinds": "*"}}),
        (staff_file, {**_configured_credentials("HUMIAO_STAFF_CREDENTIALS"),
                      sha256(staff_token.encode()).hexdigest():
                      {"name": DEV_STAFF, "role": "supervisor", "regions": "*"}}),
    ):
        write_private(path, json.dumps(doc, indent=2))
    return source_file, staff_file


def resolve_database(directory: Path, database: str = DEFAULT_DATABASE, *,
                     fresh: bool = False) -> str:
    """DATABASE_URL as given; else database `database` on the local or embedded server.

    `fresh` (the demo): drop and recreate it, on whichever server, so runs never mix.
    """
    configured = os.environ.get("DATABASE_URL")
    admin = resolve_admin_dsn(configured, directory / "pgdata")
    if configured and not fresh:
        return configured
    if fresh:
        from humiao_dev.stack.database import drop_database

        asyncio.run(drop_database(admin, database))
    return asyncio.run(ensure_database(admin, database))


def start_stack(
    directory: Path | None = None,
    *,
    topic_prefix: str | None = None,
    partitions: int | None = None,
    database_url: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 90.0,
    progress: Callable[[str], None] = lambda _msg: None,
) -> StackState:
    """Start broker (unless KAFKA_BOOTSTRAP_SERVERS), database and services; save the state.

    Reuses a live broker and the tokens of an earlier start in the same state dir. On
    failure everything this call started is stopped again and StackError says why.
    """
    directory = (directory or state_dir()).resolve()
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    (directory / "run").mkdir(parents=True, exist_ok=True)
    previous = load_state(directory)
    kafka_env = KafkaSettings()
    prefix = topic_prefix or (previous.topic_prefix if previous else kafka_env.humiao_topic_prefix)
    parts = partitions or (previous.partitions if previous else kafka_env.humiao_partitions)
    started: list[tuple[int, str]] = []
    try:
        bootstrap, broker_pid = _broker(directory, previous, started, progress)
        dsn = database_url or resolve_database(directory)
        progress("database: ready")
        # A new, empty broker: offsets stored against the old one mean nothing.
        fresh_broker = bool(started)
        if fresh_broker and asyncio.run(_forget_offsets(dsn, f"{prefix}events")):
            progress("database: verifier offsets of the previous broker reset")
        source_token = previous.source_token if previous else "src-" + secrets.token_urlsafe(24)
        staff_token = previous.staff_token if previous else "staff-" + secrets.token_urlsafe(24)
        source_file, staff_file = _credentials(directory, source_token, staff_token)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": dsn,
            "HUMIAO_TOPIC_PREFIX": prefix,
            "HUMIAO_PARTITIONS": str(parts),
            "HUMIAO_GRPC_HOST": "127.0.0.1",
            "HUMIAO_GRPC_PORT": "0",
            "HUMIAO_METRICS_PORT": "0",
            "HUMIAO_SOURCE_CREDENTIALS": str(source_file),
            "HUMIAO_STAFF_CREDENTIALS": str(staff_file),
            "HUMIAO_DEVELOPMENT": "true",  # the local stack runs on development secrets
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        services = _start_services(directory, env, started, timeout, progress)
        state = StackState(
            state_dir=str(directory),
            kafka_bootstrap=bootstrap,
            database_url=dsn,
            topic_prefix=prefix,
            partitions=parts,
            source_token=source_token,
            staff_token=staff_token,
            broker_pid=broker_pid,
            services=services,
            verifier_group=env.get("HUMIAO_VERIFIER_GROUP", DEFAULT_GROUP),
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        save_state(state)
        return state
    except BaseException:
        for pid, marker in reversed(started):
            terminate(pid, marker, timeout=10)
        raise


def _broker(directory: Path, previous: StackState | None, started: list[tuple[int, str]],
            progress: Callable[[str], None]) -> tuple[str, int | None]:
    """KAFKA_BOOTSTRAP_SERVERS when set; else the earlier start's live broker; else a new
    one (added to `started`)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        return bootstrap, None
    if previous and previous.broker_pid and is_ours(previous.broker_pid, "broker"):
        progress(f"broker: reusing pid {previous.broker_pid} at {previous.kafka_bootstrap}")
        return previous.kafka_bootstrap, previous.broker_pid
    bootstrap, broker_pid = _start_broker(directory)
    started.append((broker_pid, "broker"))
    progress(f"broker: Tansu (memory storage) at {bootstrap}, pid {broker_pid}")
    return bootstrap, broker_pid


def _start_services(directory: Path, env: Mapping[str, str], started: list[tuple[int, str]],
                    timeout: float, progress: Callable[[str], None]) -> dict[str, ServiceInfo]:
    """Spawn every service the environment asks for and wait until each is SERVING; then
    the console, the desk's client, pointed at the desk."""
    deadline = time.monotonic() + timeout
    services = _spawn_and_wait(directory, env, services_for(env), started, deadline, progress)
    console_env = {**env, "HUMIAO_DESK_TARGET": services["desk"].grpc,
                   "HUMIAO_CONSOLE_HOST": "127.0.0.1",
                   "HUMIAO_CONSOLE_PORT": env.get("HUMIAO_CONSOLE_PORT", "0"),
                   "HUMIAO_CONSOLE_COOKIE_SECURE": "false"}  # plain http on 127.0.0.1
    services.update(_spawn_and_wait(directory, console_env, (CONSOLE,), started, deadline,
                                    progress))
    return services


def _spawn_and_wait(directory: Path, env: Mapping[str, str], names: Iterable[str],
                    started: list[tuple[int, str]], deadline: float,
                    progress: Callable[[str], None]) -> dict[str, ServiceInfo]:
    pending: dict[str, Service] = {}
    for name in names:
        service = spawn(name, MODULES[name], env, directory, cwd=project_root())
        _CHILDREN[service.pid] = service.process
        started.append((service.pid, MODULES[name]))
        pending[name] = service
    services: dict[str, ServiceInfo] = {}
    for name, service in pending.items():
        try:
            service.wait_ready(max(5.0, deadline - time.monotonic()))
        except ServiceFailed as exc:
            raise StackError(str(exc)) from None
        services[name] = ServiceInfo(pid=service.pid, grpc=service.grpc, metrics=service.metrics,
                                     http=service.http or None)
        where = f", web {service.http}" if service.http else ""
        progress(f"{name}: SERVING on {service.grpc}{where}, metrics {service.metrics}")
    return services


async def _forget_offsets(dsn: str, topic: str) -> bool:
    """Drop the verifier's stored offsets for `topic` (the broker restarted empty).

    The facts and alerts stay; the verifier reads the new topic from its start, and
    facts seen before are recognised by event id.
    """
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('consumer_offsets') IS NOT NULL"):
            return False
        result = await conn.execute("DELETE FROM consumer_offsets WHERE topic = $1", topic)
    finally:
        await conn.close()
    return not result.endswith(" 0")


def _start_broker(directory: Path) -> tuple[str, int]:
    from humiao_dev.stack.broker import start_broker

    broker = start_broker(log_file=directory / "logs" / "broker.log")
    _CHILDREN[broker.process.pid] = broker.process
    return broker.bootstrap, broker.process.pid


def stack_health(state: StackState) -> dict[str, str]:
    """Each part's status: SERVING / NOT_SERVING / UNREACHABLE / STOPPED."""
    out: dict[str, str] = {}
    if state.broker_pid is not None:
        out["broker"] = "RUNNING" if is_ours(state.broker_pid, "broker") else "STOPPED"
    for name, info in state.services.items():
        out[name] = health(info.grpc) if is_ours(info.pid, MODULES[name]) else "STOPPED"
    return out


def stack_is_live(state: StackState) -> bool:
    status = stack_health(state)
    return bool(status) and all(s in ("SERVING", "RUNNING") for s in status.values()) and all(
        name in state.services for name in SERVICES
    )


def stop_stack(state: StackState, progress: Callable[[str], None] = lambda _m: None,
               *, remove_state: bool = True) -> None:
    """SIGTERM the console, ingest, then the verifier, then the desk, each waited for;
    then the broker."""
    for name in ALL_SERVICES:
        info = state.services.get(name)
        if info and terminate(info.pid, MODULES[name]):
            progress(f"{name}: stopped (pid {info.pid})")
    if state.broker_pid is not None and terminate(state.broker_pid, "broker"):
        progress(f"broker: stopped (pid {state.broker_pid}); its topics are gone")
    if remove_state:
        (Path(state.state_dir) / STATE_FILE).unlink(missing_ok=True)
        for name in ALL_SERVICES:
            (Path(state.state_dir) / "run" / f"{name}.ready").unlink(missing_ok=True)


def stop_leftovers(state: StackState, keep_broker: bool) -> None:
    """Stop what still runs of a broken stack before starting again."""
    for name in ALL_SERVICES:
        info = state.services.get(name)
        if info:
            terminate(info.pid, MODULES[name], timeout=15)
    if not keep_broker and state.broker_pid is not None:
        terminate(state.broker_pid, "broker")


# --- progress and alerts (for status, ingest --wait and the demo) ----------------------


def verifier_lag(state: StackState) -> list[Any]:
    """Per partition: committed and end offsets of the events topic (PartitionProgress)."""
    from humiao.adapters.progress import lag_sync

    return list(lag_sync(state.database_url, state.kafka, state.verifier_group))


def wait_until_processed(
    database_url: str,
    kafka: KafkaSettings,
    *,
    group: str = DEFAULT_GROUP,
    timeout: float = 600.0,
    interval: float = 0.25,
    on_progress: Callable[[int, int], None] | None = None,
) -> float:
    """Block until the verifier has committed everything now on the events topic.

    The end offsets are taken once, at the call: later publishers do not move the goal.
    Returns the seconds waited; raises TimeoutError naming the remaining lag.
    """
    from humiao.adapters.progress import lag, topic_bounds

    started = time.monotonic()
    _, goal = topic_bounds(kafka)

    async def poll() -> None:
        last_remaining = -1
        while True:
            progress = {p.partition: p.committed for p in await lag(database_url, kafka, group)}
            remaining = sum(max(0, end - progress.get(p, 0)) for p, end in goal.items())
            if on_progress is not None and remaining != last_remaining:
                on_progress(sum(goal.values()) - remaining, sum(goal.values()))
                last_remaining = remaining
            if remaining == 0:
                return
            if time.monotonic() - started > timeout:
                raise TimeoutError(
                    f"the verifier has not caught up after {timeout:.0f}s: "
                    f"{remaining} records still to process"
                )
            await asyncio.sleep(interval)

    asyncio.run(poll())
    return time.monotonic() - started


async def alert_counts(database_url: str) -> list[tuple[str, str, int, int]]:
    """(code, status, alerts, amount at risk in fen) from the alerts table."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        if not await conn.fetchval("SELECT to_regclass('alerts') IS NOT NULL"):
            return []
        rows = await conn.fetch(
            "SELECT code, status, count(*) AS n, coalesce(sum(amount_at_risk_fen), 0) AS fen "
            "FROM alerts GROUP BY code, status ORDER BY code, status"
        )
    finally:
        await conn.close()
    return [(r["code"], r["status"], int(r["n"]), int(r["fen"])) for r in rows]


def describe(state: StackState) -> Iterable[str]:
    """The lines `humiao up` prints: endpoints, tokens, where to look."""
    yield f"ingest    {state.ingest}   (gRPC; source token below, source '{state.source}')"
    yield f"desk      {state.desk}   (gRPC; staff token below, '{state.staff_name}', supervisor)"
    if state.console_login_url:
        yield f"console   {state.console}   sign in: {state.console_login_url}"
    for name, info in state.services.items():
        yield f"metrics   {name:<9} {info.metrics}"
    yield f"kafka     {state.kafka_bootstrap}   topics {state.topic_prefix}events/alerts/" \
          f"deadletter, {state.partitions} partitions"
    yield f"database  {_redact(state.database_url)}"
    yield f"source token  {state.source_token}"
    yield f"staff token   {state.staff_token}"
    yield f"state file    {Path(state.state_dir) / STATE_FILE}   logs {state.state_dir}/logs/"


def _redact(dsn: str) -> str:
    """A DSN without its password, for printing."""
    scheme, sep, rest = dsn.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{creds}{at}{host}" if sep else dsn


def metrics_urls(state: StackState) -> dict[str, str]:
    return {name: info.metrics for name, info in state.services.items()}


def with_db(dsn: str, database: str) -> str:
    return with_database(dsn, database)
