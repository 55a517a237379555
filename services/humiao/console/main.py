"""`python -m humiao.console`: the staff console (composition root).

The HTTP server (uvicorn) runs inside the usual service frame (humiao.runtime): gRPC
health and reflection on HUMIAO_GRPC_PORT (SERVING while the desk answers its health),
Prometheus metrics on HUMIAO_METRICS_PORT, and a clean stop on SIGTERM that lets
requests in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from grpc_health.v1 import health_pb2, health_pb2_grpc

from humiao.config import DevelopmentSettings, ServiceSettings
from humiao.console.app import create_app, json_staff_map
from humiao.console.desk_client import DeskClient, open_desk_channel
from humiao.console.settings import ConsoleSettings
from humiao.runtime import run_grpc_service, setup_logging

log = logging.getLogger("humiao.console")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service frame owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def oidc_router(settings: ConsoleSettings, app: FastAPI) -> Any:
    """Authlib's Starlette client for the configured issuer, and its routes."""
    from authlib.integrations.starlette_client import OAuth
    from starlette.middleware.sessions import SessionMiddleware

    from humiao.console.routes_auth import oidc_routes

    secret = settings.humiao_console_secret_key
    staff = settings.humiao_console_oidc_staff
    if not (secret and settings.humiao_oidc_client_id and settings.humiao_oidc_client_secret
            and staff):
        raise SystemExit("refusing to start: OIDC needs HUMIAO_OIDC_CLIENT_ID, "
                         "HUMIAO_OIDC_CLIENT_SECRET, HUMIAO_CONSOLE_SECRET_KEY and "
                         "HUMIAO_CONSOLE_OIDC_STAFF")
    app.add_middleware(SessionMiddleware, secret_key=secret.get_secret_value(),
                       session_cookie="humiao_oidc", max_age=600, same_site="lax",
                       https_only=settings.humiao_console_cookie_secure)
    oauth = OAuth()
    issuer = (settings.humiao_oidc_issuer or "").rstrip("/")
    client = oauth.register(
        "staff", client_id=settings.humiao_oidc_client_id,
        client_secret=settings.humiao_oidc_client_secret.get_secret_value(),
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile"})
    return oidc_routes(client, settings.humiao_oidc_claim,
                       json_staff_map(staff.get_secret_value()))


def build(settings: ConsoleSettings, desk: DeskClient, development: bool) -> FastAPI:
    app = create_app(desk, settings, development=development)
    if settings.oidc_enabled:
        app.include_router(oidc_router(settings, app))
    return app


async def serve() -> None:
    service = ServiceSettings()
    setup_logging(service.humiao_log_level)
    settings = ConsoleSettings()
    development = DevelopmentSettings().humiao_development
    channel = open_desk_channel(settings.humiao_desk_target, os.environ)
    desk = DeskClient(channel, settings.humiao_console_desk_timeout_seconds)
    app = build(settings, desk, development)
    listener = socket.create_server((settings.humiao_console_host, settings.humiao_console_port))
    host, port = listener.getsockname()[:2]
    server = _Server(uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", server_header=False,
        timeout_graceful_shutdown=int(service.humiao_shutdown_grace_seconds)))
    health = health_pb2_grpc.HealthStub(channel)

    async def probe() -> bool:
        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def http(stop: asyncio.Event) -> None:
        task = asyncio.create_task(server.serve(sockets=[listener]))
        await stop.wait()
        server.should_exit = True
        await task

    async def close() -> None:
        await channel.close()

    log.info("console http://%s:%d desk=%s oidc=%s", host, port, settings.humiao_desk_target,
             settings.oidc_enabled)
    await run_grpc_service("console", service, [], probe, background=[http], on_stop=close,
                           ready={"http": f"http://{host}:{port}"})


def main() -> None:
    try:
        asyncio.run(serve())
    except OSError as exc:
        raise SystemExit(f"console: cannot start: {type(exc).__name__}: {exc}") from None


if __name__ == "__main__":
    main()
