"""The console over the real desk and PostgreSQL: a city of alerts in two regions, the
app under httpx, and helpers to sign in and post forms as a browser would."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from desk_support import (
    REGION_A,
    REGION_B,
    Desk,
    died,
    enrolled,
    guardian,
    paid,
    person,
    unenrolled_payments,
)
from humiao.console.app import create_app
from humiao.console.desk_client import DeskClient
from humiao.console.settings import ConsoleSettings

BASE = "http://console.test"
#: Whole citizen ID numbers: never in a page unless revealed, never in a URL.
WHOLE_ID = re.compile(r"(?<!\d)\d{17}[\dX](?![\dX])")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class City:
    """What the scenario fed: the dead child of region A and its whole ID."""

    dead_child: str
    dead_guardian: str
    a_alerts: int
    b_alerts: int
    deaths: int  # PAID_AFTER_DEATH alerts (one per month paid after the death)


async def feed_city(desk: Desk) -> City:
    child, keeper = person(REGION_A), person(REGION_A, born=dt.date(1970, 5, 6))
    story = [enrolled(child, REGION_A), guardian(child, keeper)]
    story += [paid(child, f"2024-0{m}", REGION_A, payee=keeper) for m in (1, 2, 3, 4)]
    story.append(died(child, "2024-02-15"))
    await desk.verifier.feed(story)
    await desk.verifier.feed(unenrolled_payments(REGION_A, 30))
    await desk.verifier.feed(unenrolled_payments(REGION_B, 4))
    a = await desk.pool.fetchval("SELECT count(*) FROM alerts WHERE region = $1", REGION_A)
    b = await desk.pool.fetchval("SELECT count(*) FROM alerts WHERE region = $1", REGION_B)
    deaths = await desk.pool.fetchval("SELECT count(*) FROM alerts WHERE code = 'PAID_AFTER_DEATH'")
    return City(child, keeper, a, b, deaths)


@asynccontextmanager
async def console_app(desk: Desk, *, development: bool = True, **settings: object
                      ) -> AsyncIterator[httpx.AsyncClient]:
    config = ConsoleSettings(humiao_console_cookie_secure=False, **settings)  # type: ignore[arg-type]
    app = create_app(DeskClient(desk.channel), config, development=development)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@asynccontextmanager
async def served_console(desk: Desk, app: Any = None) -> AsyncIterator[str]:
    """The console (or another ASGI `app`) on a real port, served by uvicorn in this
    loop, for streams, the browser and an OIDC provider."""
    import asyncio
    import socket

    import uvicorn

    from humiao.console.main import _Server

    if app is None:
        app = create_app(DeskClient(desk.channel),
                         ConsoleSettings(humiao_console_cookie_secure=False), development=True)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                                    timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.get(f"/login?token={token}")
    assert answer.status_code == 303, answer.text
    assert "humiao_session" in client.cookies


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def post_form(client: httpx.AsyncClient, url: str, data: dict[str, object],
                    *, origin: str | None = BASE) -> httpx.Response:
    headers = {"origin": origin} if origin else {}
    return await client.post(url, data=data, headers=headers)  # type: ignore[arg-type]
