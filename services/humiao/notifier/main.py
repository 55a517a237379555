"""Composition root of the notifier: settings, pool, routes, the alerts feed, the
engine's loop (consume, flush due groups, queue digests) and the dispatcher, served by
`run_grpc_service` (health, reflection, metrics, SIGTERM; no API of its own).

`NotifierService` is also what tests run in-process, with a clock of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from humiao.adapters import offsets
from humiao.adapters.alert_feed import AlertFeed
from humiao.adapters.db import create_pool
from humiao.adapters.topics import ensure_topics
from humiao.config import DatabaseSettings, KafkaSettings, ServiceSettings
from humiao.notifier import store
from humiao.notifier.clock import Clock, SystemClock
from humiao.notifier.dispatch import Dispatcher
from humiao.notifier.engine import Fenced, Notifier
from humiao.notifier.metrics import NotifierMetrics
from humiao.notifier.receivers import build_senders
from humiao.notifier.routes import RoutingTable, load_routes
from humiao.notifier.settings import NotifierSettings
from humiao.runtime import run_grpc_service, setup_logging, start_when_reachable

log = logging.getLogger("humiao.notifier")
#: Seconds between refreshes of the backlog gauges (one grouped count).
BACKLOG_SECONDS = 5.0


class NotifierService:
    def __init__(
        self, *, kafka: KafkaSettings, dsn: str, table: RoutingTable,
        settings: NotifierSettings | None = None, clock: Clock | None = None,
        metrics: NotifierMetrics | None = None,
    ) -> None:
        self.kafka = kafka
        self.dsn = dsn
        self.table = table
        self.settings = settings or NotifierSettings()
        self.clock = clock or SystemClock()
        self.metrics = metrics or NotifierMetrics()
        self.pool: asyncpg.Pool | None = None
        self.http: httpx.AsyncClient | None = None
        self.feed: AlertFeed | None = None
        self.engine: Notifier | None = None
        self.dispatcher: Dispatcher | None = None

    async def start(self) -> None:
        s = self.settings
        # one connection per receiver while it sends, one for the engine's loop, one spare
        self.pool = await create_pool(self.dsn, min_size=1,
                                      max_size=min(32, len(self.table.receivers) + 2))
        self.http = httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        console = s.humiao_console_url or ""
        senders = build_senders(self.table.receivers, client=self.http, console=console)
        self.metrics.know(sorted(senders))
        self.engine = Notifier(
            self.pool, self.table, self.clock, self.metrics, s.humiao_notify_group,
            self.kafka.alerts_topic, {n: snd.max_bytes for n, snd in senders.items()},
            console or None, ZoneInfo(s.humiao_notify_timezone),
        )
        self.dispatcher = Dispatcher(self.pool, senders, self.clock, self.metrics)
        pool = self.pool

        async def positions() -> dict[int, int]:
            async with pool.acquire() as conn:
                return await offsets.stored_offsets(conn, s.humiao_notify_group,
                                                  self.kafka.alerts_topic)

        self.feed = AlertFeed(
            bootstrap=self.kafka.bootstrap, topic=self.kafka.alerts_topic,
            group=s.humiao_notify_group, positions=positions,
            max_records=s.humiao_notify_batch_max,
            session_timeout_ms=s.humiao_notify_session_timeout_ms,
            deadletter_topic=self.kafka.deadletter_topic,
            start_from_latest=s.humiao_notify_start == "latest",
        )
        self.engine.dead_letter = self.feed.dead_letter
        await self.feed.start()
        log.info("notifier started receivers=%d routes=%d", len(senders), len(self.table.routes))

    async def pipeline(self, stop: asyncio.Event) -> None:
        """Consume, flush and queue digests until stop; failures back off and rewind."""
        assert self.feed is not None and self.engine is not None and self.dispatcher
        backoff, last_gauge = 0.0, 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                batch = await self.feed.next_batch(timeout=0.5)
                if batch.records:
                    await self.engine.ingest(batch)
                    self.feed.committed(batch)
                if await self.engine.flush_due() + await self.engine.digests_due():
                    self.dispatcher.nudge.set()
                if loop.time() - last_gauge > BACKLOG_SECONDS:
                    await self.refresh_backlog()
                    last_gauge = loop.time()
                backoff = 0.0
            except Fenced:
                log.info("offsets moved under this member; rewinding")
                await self.feed.rewind()
            except Exception as exc:  # the broker or PostgreSQL away, or a bug: never die
                backoff = min(10.0, max(0.5, backoff * 2))
                log.warning("notifier step failed (%s); retrying in %.1fs",
                            type(exc).__name__, backoff)
                with contextlib.suppress(Exception):
                    await self.feed.rewind()
                await self.clock.sleep(backoff, stop)

    async def refresh_backlog(self) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            queued = await store.backlog(conn)
        self.metrics.backlog(self.clock.now(), sorted(self.table.receivers), queued)

    async def ready(self) -> bool:
        if self.pool is None:
            return False
        async with self.pool.acquire(timeout=2) as conn:
            return bool(await conn.fetchval("SELECT 1") == 1)

    async def dispatch(self, stop: asyncio.Event) -> None:
        assert self.dispatcher is not None
        await self.dispatcher.run(stop)

    async def stop(self) -> None:
        """Leave the group, close the HTTP client and the pool (also undoes a failed start)."""
        feed, http, pool = self.feed, self.http, self.pool
        self.feed, self.http, self.pool = None, None, None
        if feed is not None:
            await feed.close()
        if http is not None:
            await http.aclose()
        if pool is not None:
            await pool.close()
        log.info("notifier stopped")


async def serve() -> int:
    svc = ServiceSettings()
    setup_logging(svc.humiao_log_level)
    settings, kafka, db = NotifierSettings(), KafkaSettings(), DatabaseSettings()
    if not settings.humiao_notify_routes:
        raise SystemExit("humiao.notifier: HUMIAO_NOTIFY_ROUTES is not set")
    if not kafka.kafka_bootstrap_servers:
        raise SystemExit("humiao.notifier: KAFKA_BOOTSTRAP_SERVERS is not set")
    dsn = db.required_dsn("notifier")
    table = load_routes(settings.humiao_notify_routes)
    ensure_topics(kafka)
    service = NotifierService(kafka=kafka, dsn=dsn,
                              table=table, settings=settings)
    await start_when_reachable("notifier", service.start, service.stop)
    await run_grpc_service("notifier", svc, [], service.ready,
                           background=[service.pipeline, service.dispatch],
                           on_stop=service.stop)
    return 0


def main() -> int:
    from humiao.notifier.routes import RouteError

    try:
        return asyncio.run(serve())
    except RouteError as exc:
        raise SystemExit(f"humiao.notifier: routes file: {exc}") from None
