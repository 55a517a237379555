"""Every metric of the desk, in one place. Labels are method names, status codes,
alert codes, alert statuses and age buckets only: never a person, child or alert id."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import prometheus_client as prom

from humiao.desk import queries
from humiao.observability import CALL_BUCKETS, CallMetrics, PoolGauge

log = logging.getLogger(__name__)

#: Every desk method by status code, and unary call durations (shared with ingest).
CALLS = CallMetrics("desk", "desk", buckets=CALL_BUCKETS)
#: Connections of the PostgreSQL pool in use, read at scrape time.
DB_POOL = PoolGauge("desk")
WATCHERS = prom.Gauge("humiao_desk_watch_subscribers", "WatchAlerts streams open now")
WATCH_SENT = prom.Counter("humiao_desk_watch_changes_sent_total", "Alert changes sent to watchers")
FEED_HORIZON = prom.Gauge(
    "humiao_desk_feed_horizon_seq", "alert_versions.seq below which the live feed is final"
)
OPEN_ALERTS = prom.Gauge(
    "humiao_desk_open_alerts",
    "Alerts still to work (OPEN, ACKNOWLEDGED, REOPENED) by code, status and age",
    ["code", "status", "age"],
)
OPEN_AMOUNT = prom.Gauge(
    "humiao_desk_open_amount_at_risk_fen",
    "Fen at risk in alerts still to work (OPEN, ACKNOWLEDGED, REOPENED), by code",
    ["code"],
)
TRANSITIONS = prom.Counter(
    "humiao_desk_transitions_total",
    "Staff transitions of alerts (acknowledge, assign, resolve, reopen), by resulting status",
    ["status"],
)
WHOLE_ID_READS = prom.Counter(
    "humiao_desk_whole_id_reads_total",
    "Whole-ID reads and lookups by whole ID number (each also audited)",
    ["method"],
)


class DeskMetrics:
    """What the desk's business code reports, as events; this class turns them into
    Prometheus series. The servicer and the change feed receive one (tests may pass a
    recording fake), so no business code touches a metric directly."""

    def whole_id_read(self, method: str) -> None:
        WHOLE_ID_READS.labels(method).inc()

    def watch_opened(self) -> None:
        WATCHERS.inc()

    def watch_closed(self) -> None:
        WATCHERS.dec()

    def change_sent(self) -> None:
        WATCH_SENT.inc()

    def transitioned(self, status: str) -> None:
        TRANSITIONS.labels(status).inc()

    def feed_advanced(self, horizon: int) -> None:
        FEED_HORIZON.set(horizon)

    def pool_opened(self, pool: asyncpg.Pool) -> None:
        DB_POOL.track(pool)


class OpenAlertsGauges:
    """Sets both open-alert gauges from one query. Series that vanished since the last
    refresh drop to zero, tracked by the label sets seen (not the client's internals)."""

    def __init__(self) -> None:
        self._alerts_seen: set[tuple[str, str, str]] = set()
        self._amount_seen: set[str] = set()

    async def refresh(self, pool: asyncpg.Pool) -> None:
        rows = await queries.open_alerts_gauge(pool)
        alerts: dict[tuple[str, str, str], int] = {}
        amount: dict[str, int] = {}
        for r in rows:
            alerts[(r["code"], r["status"], r["age"])] = r["alerts"]
            amount[r["code"]] = amount.get(r["code"], 0) + r["amount"]
        for labels in self._alerts_seen - alerts.keys():
            OPEN_ALERTS.labels(*labels).set(0)
        for code in self._amount_seen - amount.keys():
            OPEN_AMOUNT.labels(code).set(0)
        for labels, count in alerts.items():
            OPEN_ALERTS.labels(*labels).set(count)
        for code, fen in amount.items():
            OPEN_AMOUNT.labels(code).set(fen)
        self._alerts_seen = set(alerts)
        self._amount_seen = set(amount)


_OPEN_GAUGES = OpenAlertsGauges()


async def refresh_open_alerts(pool: asyncpg.Pool) -> None:
    """One query sets both open-alert gauges; combinations that vanished drop to zero."""
    await _OPEN_GAUGES.refresh(pool)


async def refresh_loop(pool: asyncpg.Pool, stop: asyncio.Event, interval: float = 30.0) -> None:
    while not stop.is_set():
        try:
            await refresh_open_alerts(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("open alerts gauge refresh failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
