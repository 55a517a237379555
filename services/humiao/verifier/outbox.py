"""The outbox relay: alert versions written by the verifier (and the desk) reach the
`alerts` topic, each version once from the database's point of view.

A round locks the oldest unpublished `alert_versions` rows, produces them keyed by alert
id (headers alert-id, version), waits until the broker acknowledged every one, and
stamps `published_at` in the same transaction. A crash between the acknowledgement and
the commit publishes those versions again: at-least-once on the wire, deduplicable by
(alert id, version). One relay works at a time per database (an advisory lock), so the
versions of one alert leave in version order even with several verifier processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import asyncpg
from kafka import KafkaProducer

from humiao.verifier import store
from humiao.verifier.metrics import VerifierMetrics

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        bootstrap: str,
        topic: str,
        metrics: VerifierMetrics,
        batch: int = 1000,
        idle_seconds: float = 0.5,
    ) -> None:
        self.pool = pool
        self.bootstrap = bootstrap
        self.topic = topic
        self.metrics = metrics
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.nudge = asyncio.Event()
        # kafka-python blocks: its calls run on one thread of our own (shut down in close()).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="humiao-outbox")
        self._producer: KafkaProducer | None = None
        self.published = 0

    def wake(self) -> None:
        """Thread-safe nudge after a commit (called via loop.call_soon_threadsafe)."""
        self.nudge.set()

    def _send_all(self, rows: Sequence[asyncpg.Record]) -> None:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id="humiao-verifier-outbox",
                acks="all",
                linger_ms=5,
                # Keep the versions of one alert in order through retries.
                max_in_flight_requests_per_connection=1,
            )
        producer = self._producer
        futures = [
            producer.send(
                self.topic,
                key=r["alert_id"].encode(),
                value=bytes(r["payload"]),
                headers=[
                    ("alert-id", r["alert_id"].encode()),
                    ("version", str(r["version"]).encode()),
                ],
            )
            for r in rows
        ]
        producer.flush()
        for fut in futures:
            fut.get(timeout=30)

    async def relay_once(self) -> int:
        """Publish one round; returns how many versions were published."""
        loop = asyncio.get_running_loop()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await store.take_unpublished(conn, self.batch)
            if not rows:
                return 0
            await loop.run_in_executor(self._executor, self._send_all, rows)
            await store.mark_published(conn, [r["seq"] for r in rows])
        self.published += len(rows)
        self.metrics.outbox(published=len(rows))
        return len(rows)

    async def backlog(self) -> int:
        async with self.pool.acquire() as conn:
            return await store.outbox_backlog(conn)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop`; failures (broker or database away) back off and retry."""
        delay = 0.0
        while not stop.is_set():
            self.nudge.clear()  # a commit after this point wakes the wait below
            try:
                n = await self.relay_once()
                if n < self.batch:
                    self.metrics.outbox(backlog=await self.backlog())
                delay = 0.0
            except Exception as exc:
                delay = min(10.0, max(0.2, delay * 2))
                log.warning(
                    "outbox relay failed (%s); retrying in %.1fs", type(exc).__name__, delay
                )
                n = 0
            if n >= self.batch and delay == 0.0:
                continue
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.nudge.wait())]
            _, pending = await asyncio.wait(
                waits, timeout=delay or self.idle_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()

        def _close() -> None:
            if self._producer is not None:
                self._producer.close(timeout=10)
                self._producer = None

        await loop.run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)
