"""What every service process shares: logging, a grpc.aio server with health and
reflection, a Prometheus endpoint, readiness probing and a clean SIGTERM.

A service's `main` builds its dependencies, then hands its servicers and a readiness
probe to `run_grpc_service`. Health says SERVING only while the probe passes (Kafka
and PostgreSQL reachable), so orchestrators route nothing to a service that can't work.
The health service name `liveness` is SERVING from start to shutdown, whatever the
dependencies do: a liveness probe asks it, so an outage never causes a restart loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import prometheus_client
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from humiao import __version__
from humiao.config import ServiceSettings
from humiao.edge import (
    EdgeConfigError,
    EdgeInterceptor,
    TokenCheck,
    is_loopback,
    server_credentials,
)
from humiao.observability import CallMetrics

log = logging.getLogger(__name__)

#: Health service name that answers SERVING while the event loop runs (k8s liveness).
LIVENESS = "liveness"

BUILD_INFO = prometheus_client.Info("humiao_build", "Version of the running Humiao build")
BUILD_INFO.info({"version": __version__, "python": sys.version.split()[0]})


def setup_logging(level: str) -> None:
    """Plain key=value lines on stderr. Never log an ID number: log pseudonyms or counts."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Registration:
    """One servicer: the generated `add_XServicer_to_server` function and its full name."""

    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    service_name: str


ReadinessProbe = Callable[[], Awaitable[bool]]


def write_ready_file(info: dict[str, Any]) -> None:
    """Tell whoever started us where we listen (ports may be chosen by the OS)."""
    target = os.environ.get("HUMIAO_READY_FILE")
    if target:
        tmp = Path(target + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(target)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def watch_readiness(
    probe: ReadinessProbe,
    health_servicer: health.aio.HealthServicer,
    names: Sequence[str],
    stop: asyncio.Event,
    interval: float = 2.0,
) -> None:
    """Keep the health status in step with the probe until stop is set."""
    last: bool | None = None
    while not stop.is_set():
        try:
            ok = await asyncio.wait_for(probe(), timeout=interval * 2)
        except Exception as exc:  # a failing dependency is a status, not a crash
            log.warning("readiness probe failed: %s", type(exc).__name__)
            ok = False
        if ok != last:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if ok
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in ("", *names):
                await health_servicer.set(name, status)
            log.info("health=%s", "SERVING" if ok else "NOT_SERVING")
            last = ok
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def run_grpc_service(
    name: str,
    settings: ServiceSettings,
    registrations: Sequence[Registration],
    probe: ReadinessProbe,
    *,
    known_token: TokenCheck | None = None,
    refusal: str = "a valid token is required (metadata 'authorization: Bearer <token>')",
    calls: CallMetrics | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    background: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
    on_stop: Callable[[], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    ready: Mapping[str, Any] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`), then drain calls and stop cleanly.
    `ready` adds to what the ready file says (e.g. the console's HTTP address).

    Every call passes the edge first (humiao.edge): `known_token`, when given, turns away
    callers without a known token before their message is parsed."""
    stop = stop or asyncio.Event()
    install_stop_signals(stop)
    credentials = listener_credentials(settings)
    server = grpc.aio.server(
        interceptors=[EdgeInterceptor(known_token, refusal,
                                      calls.record if calls is not None else None),
                      *interceptors],
        options=[("grpc.max_receive_message_length", settings.humiao_grpc_max_receive_bytes)],
        maximum_concurrent_rpcs=settings.humiao_grpc_max_concurrent_calls,
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [r.service_name for r in registrations]
    for reg in registrations:
        reg.add_to_server(reg.servicer, server)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    address = f"{settings.humiao_grpc_host}:{settings.humiao_grpc_port}"
    port = (server.add_insecure_port(address) if credentials is None
            else server.add_secure_port(address, credentials))
    health_only = await _health_only_server(settings, health_servicer)
    metrics_server, _ = prometheus_client.start_http_server(
        settings.humiao_metrics_port, addr=settings.metrics_host
    )
    metrics_port = metrics_server.server_port
    for svc_name in ("", *names):
        await health_servicer.set(svc_name, health_pb2.HealthCheckResponse.NOT_SERVING)
    # Answered by the event loop itself: if this stops answering, the process is stuck.
    await health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    log.info("service=%s grpc_port=%d metrics_port=%d started", name, port, metrics_port)
    write_ready_file(
        {"service": name, "grpc": f"{settings.humiao_grpc_host}:{port}",
         "tls": credentials is not None,
         "health": (f"{settings.humiao_grpc_host}:{health_only[1]}" if health_only else None),
         "metrics": f"http://{settings.metrics_host}:{metrics_port}/metrics", "pid": os.getpid(),
         **(ready or {})}
    )
    tasks = [asyncio.create_task(watch_readiness(probe, health_servicer, names, stop))]
    tasks += [asyncio.create_task(job(stop)) for job in background]
    try:
        await stop.wait()
        log.info("service=%s stopping", name)
        await health_servicer.enter_graceful_shutdown()
        await server.stop(settings.humiao_shutdown_grace_seconds)
        if health_only is not None:
            await health_only[0].stop(0)
        for task in tasks:
            task.cancel() if task is tasks[0] else None
        await asyncio.gather(*tasks, return_exceptions=True)
        if on_stop is not None:
            await on_stop()
    finally:
        metrics_server.shutdown()
        log.info("service=%s stopped", name)


def listener_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """TLS credentials for the listener, or None for plaintext, which is refused on an
    address other machines reach unless HUMIAO_GRPC_ALLOW_PLAINTEXT says something else
    encrypts (bearer tokens must not cross a network in clear)."""
    try:
        credentials = server_credentials(settings.humiao_tls_cert_file,
                                         settings.humiao_tls_key_file,
                                         settings.humiao_tls_client_ca_file)
    except EdgeConfigError as exc:
        raise SystemExit(f"refusing to start: {exc}") from None
    host = settings.humiao_grpc_host
    if credentials is None and not is_loopback(host) and not settings.humiao_grpc_allow_plaintext:
        raise SystemExit(
            f"refusing to start: HUMIAO_GRPC_HOST={host} without TLS would carry tokens in "
            "clear; set HUMIAO_TLS_CERT_FILE and HUMIAO_TLS_KEY_FILE, or "
            "HUMIAO_GRPC_ALLOW_PLAINTEXT=true where a mesh or a single-host network encrypts"
        )
    return credentials


async def _health_only_server(
    settings: ServiceSettings, health_servicer: health.aio.HealthServicer
) -> tuple[grpc.aio.Server, int] | None:
    """The plaintext health port for probes that cannot speak TLS (kubelet's gRPC probe);
    it serves nothing else, so no token or data ever crosses it."""
    if settings.humiao_grpc_health_port is None:
        return None
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4096)],
                             maximum_concurrent_rpcs=16)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(
        f"{settings.humiao_grpc_host}:{settings.humiao_grpc_health_port}")
    await server.start()
    return server, port


async def start_when_reachable(
    name: str,
    start: Callable[[], Awaitable[None]],
    undo: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Call `start` until its dependencies answer (PostgreSQL or the broker may come up
    after us: wait for them rather than crash), undoing a half-done start each time."""
    import asyncpg  # only this helper needs them
    from kafka.errors import KafkaError

    unavailable = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError,
                   KafkaError)
    delay = 0.5
    while True:
        try:
            await start()
            return
        except unavailable as exc:
            log.warning("%s: dependency unavailable at start (%s); retrying",
                        name, type(exc).__name__)
            if undo is not None:
                await undo()
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)
