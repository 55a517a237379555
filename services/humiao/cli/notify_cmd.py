"""`humiao notify test RECEIVER` sends a test message through a receiver of the routes
file; `humiao notify preview` prints what each route would send for the alerts open now
(read from the alerts table, the child's ID masked in the database).

The routes file: --routes, else HUMIAO_NOTIFY_ROUTES. The database (preview): DATABASE_URL,
else the state file of `humiao up`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from typing import Any

import asyncpg
import httpx

from humiao.cli.local_state import read_local_state
from humiao.cli.main import CliError
from humiao.domain.notify import Announce, Note, Route, RouteError
from humiao.domain.notify_text import Message, compose_group, compose_test
from humiao.notifier import store
from humiao.notifier.receivers import MAX_BYTES, build_sender
from humiao.notifier.routes import RoutingTable, load_routes


def register(sub: Any) -> None:
    notify = sub.add_parser("notify", help="notifications: test a receiver, preview routes")
    inner = notify.add_subparsers(dest="notify_command", metavar="COMMAND", required=True)
    test = inner.add_parser("test", help="send a test message through one receiver")
    test.add_argument("receiver", help="a receiver name of the routes file")
    test.set_defaults(func=cmd_test)
    preview = inner.add_parser("preview", help="what each route would send for open alerts")
    preview.add_argument("--receiver", help="only the routes of this receiver")
    preview.add_argument("--max-alerts", type=int, default=200,
                         help="alerts per route to render at most (default 200)")
    preview.set_defaults(func=cmd_preview)
    for parser in (test, preview):
        parser.add_argument("--routes", help="routes file (default $HUMIAO_NOTIFY_ROUTES)")


def _table(args: argparse.Namespace) -> RoutingTable:
    path = args.routes or os.environ.get("HUMIAO_NOTIFY_ROUTES")
    if not path:
        raise CliError("no routes file: pass --routes or set HUMIAO_NOTIFY_ROUTES")
    try:
        return load_routes(path)
    except OSError as exc:
        raise CliError(f"routes file {path}: {exc.strerror}") from None
    except RouteError as exc:
        raise CliError(f"routes file {path}: {exc}") from None


def _console() -> str:
    return os.environ.get("HUMIAO_CONSOLE_URL", "")


def cmd_test(args: argparse.Namespace) -> int:
    table = _table(args)
    config = table.receivers.get(args.receiver)
    if config is None:
        raise CliError(f"no receiver named {args.receiver!r} in the routes file")

    async def send() -> Any:
        async with httpx.AsyncClient(timeout=config.timeout_seconds) as client:
            sender = build_sender(args.receiver, config, client=client, console=_console())
            return await sender.send(compose_test(args.receiver, dt.datetime.now(dt.UTC)), 0)

    result = asyncio.run(send())
    if result.outcome.value != "ok":
        raise CliError(f"receiver {args.receiver} ({config.kind}) refused the test message: "
                       f"{result.outcome.value}, code {result.code}")
    print(f"sent a test message to {args.receiver} ({config.kind})")
    return 0


def _dsn() -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    database_url = read_local_state().get("database_url")
    if not database_url:
        raise CliError("no database: set DATABASE_URL or start the stack with `humiao up`")
    return str(database_url)


def cmd_preview(args: argparse.Namespace) -> int:
    table = _table(args)
    routes = [r for r in table.routes if args.receiver in (None, r.receiver)]
    if not routes:
        raise CliError("no route matches" + (f" receiver {args.receiver!r}" if args.receiver
                                             else ": the routes file has none"))

    async def read() -> list[list[asyncpg.Record]]:
        conn = await asyncpg.connect(_dsn())
        try:
            return [await store.open_alerts(conn, r) for r in routes]
        finally:
            await conn.close()

    try:
        per_route = asyncio.run(read())
    except (OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"database: {type(exc).__name__}") from None
    for route, rows in zip(routes, per_route, strict=True):
        print(f"=== route to {route.receiver} ({table.receivers[route.receiver].kind}): "
              f"{len(rows)} open alerts", flush=True)
        kind = table.receivers[route.receiver].kind
        for message in _render(route, rows[: args.max_alerts], MAX_BYTES[kind]):
            print(message.markdown + "\n")
        if len(rows) > args.max_alerts:
            print(f"({len(rows) - args.max_alerts} more not rendered; --max-alerts)",
                  file=sys.stderr)
    return 0


def _render(route: Route, rows: list[asyncpg.Record], max_bytes: int) -> list[Message]:
    groups: dict[tuple[str, str], list[tuple[Note, Announce]]] = {}
    for r in rows:
        note = Note(r["alert_id"], r["version"], r["code"], r["status"], r["region"],
                    r["period"], r["amount_fen"], r["child_mask"], r["changed_at"])
        groups.setdefault((r["region"], r["code"]), []).append((note, Announce.NEW))
    out: list[Message] = []
    for (region, code), said in sorted(groups.items()):
        out += compose_group(route, region, code, said, max_bytes=max_bytes, console=_console())
    return out
