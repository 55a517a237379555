"""Every metric of the desk, in one place. Labels are method names, status codes,
alert codes and age buckets only: never a person, child or alert id."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import prometheus_client as prom

from humiao.desk import queries

log = logging.getLogger(__name__)

CALLS = prom.Counter(
    "humiao_desk_calls_total", "Desk calls by method and gRPC status code", ["method", "code"]
)
#: Buckets from a millisecond (an indexed page) to seconds (a summary over years).
CALL_SECONDS = prom.Histogram(
    "humiao_desk_call_duration_seconds",
    "Time to answer a desk call (streams: to open)",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WATCHERS = prom.Gauge("humiao_desk_watch_subscribers", "WatchAlerts streams open now")
WATCH_SENT = prom.Counter("humiao_desk_watch_changes_sent_total", "Alert changes sent to watchers")
FEED_HORIZON = prom.Gauge(
    "humiao_desk_feed_horizon_seq", "alert_versions.seq below which the live feed is final"
)
OPEN_ALERTS = prom.Gauge(
    "humiao_desk_open_alerts",
    "Alerts still to work (OPEN, ACKNOWLEDGED, REOPENED) by code and age",
    ["code", "age"],
)
WHOLE_ID_READS = prom.Counter(
    "humiao_desk_whole_id_reads_total", "Reads of whole ID numbers (each also audited)", ["method"]
)


async def refresh_open_alerts(pool: asyncpg.Pool) -> None:
    """One query sets the whole gauge; combinations that vanished drop to zero."""
    rows = await queries.open_alerts_by_code_and_age(pool)
    seen = {(r["code"], r["age"]): r["alerts"] for r in rows}
    for labels in list(OPEN_ALERTS._metrics):  # reset series that are no longer present
        if labels not in seen:
            OPEN_ALERTS.labels(*labels).set(0)
    for (code, age), count in seen.items():
        OPEN_ALERTS.labels(code, age).set(count)


async def refresh_loop(pool: asyncpg.Pool, stop: asyncio.Event, interval: float = 30.0) -> None:
    while not stop.is_set():
        try:
            await refresh_open_alerts(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("open alerts gauge refresh failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
