"""Step 8: the console's queue page with 100,000 alerts in the database.

The alerts are written straight into a fresh database (COPY: a bench fixture, not a
verifier run), spread over five districts, every code and status and two years; a desk
and a console process serve them. One signed-in supervisor then loads queue pages the
way staff do (the default view, a region, a code, sorted by amount, a status, the next
page), one at a time, and the time from request to the last byte is measured at the
client. Target: p95 below 300 ms (issue 17).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import secrets
import time
from hashlib import sha256
from typing import Any

from humiao_dev.bench.context import BenchContext
from humiao_dev.processes import spawn

REGIONS = ("110101", "110102", "110105", "110106", "110108")
STATUS_MIX = (("OPEN", 60), ("ACKNOWLEDGED", 20), ("RESOLVED", 12), ("WITHDRAWN", 6),
              ("REOPENED", 2))
VIEWS = ("/alerts", "/alerts?region=110105", "/alerts?code=PAID_AFTER_DEATH",
         "/alerts?sort=amount", "/alerts?status=OPEN&status=REOPENED",
         "/alerts?from=2024-01&to=2024-06", "/alerts?region=110108&code=MISSED_PAYMENT")


def alert_rows(count: int, seed: int) -> list[tuple[Any, ...]]:
    from humiao.api.alerts.v1 import alerts_pb2
    from humiao.domain.identity import compose_citizen_id

    rng = random.Random(seed)
    codes = list(alerts_pb2.AlertCode.keys())[1:]
    statuses = [s for s, _ in STATUS_MIX]
    weights = [w for _, w in STATUS_MIX]
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(count):
        region = rng.choice(REGIONS)
        month = rng.randrange(24)
        period = f"{2023 + month // 12}-{month % 12 + 1:02d}"
        child = compose_citizen_id(region, dt.date(2008 + rng.randrange(10), 1 + rng.randrange(12),
                                                   1 + rng.randrange(28)), rng.randrange(1000))
        status = rng.choices(statuses, weights)[0]
        raised = now - dt.timedelta(minutes=rng.randrange(60 * 24 * 400))
        rows.append((f"B{i:024x}", rng.choice(codes), secrets.token_hex(16), child, region,
                     period, "ORPHAN_DISPERSED", f"D-{i}", 10_000 * rng.randint(5, 200),
                     [f"e-{i}"], "儿童已于……", "The child ...", status, status != "WITHDRAWN",
                     "Li" if status in ("ACKNOWLEDGED", "RESOLVED") else None, 1, raised, raised))
    return rows


COLUMNS = ("alert_id", "code", "child_key", "child_id", "region", "period", "program",
           "subject", "amount_at_risk_fen", "evidence_event_ids", "explanation_zh",
           "explanation_en", "status", "implied", "assignee", "version", "raised_at",
           "updated_at")


async def fill(dsn: str, count: int, seed: int) -> None:
    import asyncpg

    from humiao.adapters.db import migrate

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.copy_records_to_table("alerts", records=alert_rows(count, seed),
                                         columns=COLUMNS)
        await conn.execute("ANALYZE alerts")
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def console_phase(ctx: BenchContext, alerts: int, requests: int, seed: int) -> dict[str, Any]:
    import httpx

    dsn = ctx.new_database("console")
    started = time.perf_counter()
    asyncio.run(fill(dsn, alerts, seed))
    fill_s = time.perf_counter() - started
    token = "bench-staff-" + secrets.token_urlsafe(18)
    staff = json.dumps({sha256(token.encode()).hexdigest():
                        {"name": "bench", "role": "supervisor", "regions": "*"}})
    env = {"DATABASE_URL": dsn, "HUMIAO_STAFF_CREDENTIALS": staff, "HUMIAO_LOG_LEVEL": "WARNING"}
    desk = spawn("desk-console-bench", "humiao.desk", env, ctx.workdir)
    console = None
    try:
        desk.wait_ready()
        console = spawn("console-bench", "humiao.console",
                        {**env, "HUMIAO_DESK_TARGET": desk.grpc, "HUMIAO_CONSOLE_PORT": "0",
                         "HUMIAO_CONSOLE_COOKIE_SECURE": "false"}, ctx.workdir)
        console.wait_ready()
        timings: dict[str, list[float]] = {}
        with httpx.Client(base_url=console.http, timeout=30) as client:
            client.get(f"/login?token={token}")
            for view in VIEWS:  # warm the pool, the planner and the templates
                client.get(view).raise_for_status()
            nxt = ""
            for i in range(requests):
                url = nxt or VIEWS[i % len(VIEWS)]
                t = time.perf_counter()
                page = client.get(url)
                took = 1000 * (time.perf_counter() - t)
                page.raise_for_status()
                timings.setdefault("next page" if nxt else url, []).append(took)
                found = page.text.split('rel="next"')[0].rsplit('href="', 1)
                nxt = found[1].split('"')[0].replace("&amp;", "&") if (
                    not nxt and 'rel="next"' in page.text and i % 3 == 0) else ""
        every = [v for vs in timings.values() for v in vs]
        return {"alerts": alerts, "requests": len(every), "fill_seconds": round(fill_s, 1),
                "p50_ms": round(percentile(every, 0.50), 1),
                "p95_ms": round(percentile(every, 0.95), 1),
                "p99_ms": round(percentile(every, 0.99), 1),
                "by_view_p95_ms": {k: round(percentile(v, 0.95), 1) for k, v in timings.items()}}
    finally:
        if console is not None:
            console.stop()
        desk.stop()
        ctx.drop_database(dsn)
