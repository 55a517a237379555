"""The outbox relay: alert versions written by the verifier (and the desk) reach the
`alerts` topic, each version once from the database's point of view.

A round locks the oldest unpublished `alert_versions` rows, produces them keyed by alert
id (headers alert-id, version), waits until the broker acknowledged every one, and
stamps `published_at` in the same transaction. A crash between the acknowledgement and
the commit publishes those versions again: at-least-once on the wire, deduplicable by
(alert id, version). One relay works at a time per database (an advisory lock), so the
versions of one alert leave in version order even with several verifier processes.

A version the broker can never take (too large, an invalid record: `UNPUBLISHABLE`) goes
to the dead-letter topic with its reason instead, is counted
(humiao_verifier_deadletters_total{reason="unpublishable"}) and stamped like the others, so it never
blocks the versions after it; the alerts table and `alert_versions` still hold it. Any
other error (broker away, timeouts) fails the round, which is retried whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from kafka import KafkaProducer
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from humiao.adapters.deadletter import DeadLetterPublisher, Letter
from humiao.adapters.kafka_bridge import BlockingCalls, new_producer
from humiao.verifier.metrics import VerifierMetrics

log = logging.getLogger(__name__)

#: Errors about the record itself: sent again it fails again, whatever the broker's state.
UNPUBLISHABLE: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError, CorruptRecordError,
    InvalidTimestampError,
)
#: The dead letter's reason (header and metric label) of a version the broker refuses.
UNPUBLISHABLE_REASON = "unpublishable"
#: Serialises relays across processes, so versions of one alert leave in version order.
OUTBOX_LOCK = 7_236_552


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        bootstrap: str,
        topic: str,
        deadletter_topic: str,
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
        # kafka-python blocks: its calls run on one thread of our own (ended in close()).
        self._calls = BlockingCalls("humiao-outbox")
        self._producer: KafkaProducer | None = None
        self._deadletters = DeadLetterPublisher(
            bootstrap, deadletter_topic, metrics, client_id="humiao-verifier-outbox-deadletter"
        )
        self.published = 0

    def wake(self) -> None:
        """Thread-safe nudge after a commit (called via loop.call_soon_threadsafe)."""
        self.nudge.set()

    async def relay_once(self) -> int:
        """Publish one round; returns how many versions left the outbox (published or,
        refused by the broker for good, dead-lettered)."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", OUTBOX_LOCK):
                return 0  # another relay is at work
            rows = await conn.fetch(
                "SELECT seq, alert_id, version, payload FROM alert_versions"
                " WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch,
            )
            if not rows:
                return 0
            refused = await self._calls(self._send_all, rows)
            if refused:
                await self._calls(self._deadletters.produce_all, [
                    _letter(r, refused[r["seq"]]) for r in rows if r["seq"] in refused
                ])
            await conn.execute(
                "UPDATE alert_versions SET published_at = now() WHERE seq = ANY($1::bigint[])",
                [r["seq"] for r in rows],
            )
        self.published += len(rows) - len(refused)
        self.metrics.outbox(published=len(rows) - len(refused))
        for _ in refused:
            self.metrics.deadletter(UNPUBLISHABLE_REASON)
        return len(rows)

    def _producer_now(self) -> KafkaProducer:
        if self._producer is None:
            # max_in_flight 1: the versions of one alert stay in order through retries
            self._producer = new_producer(self.bootstrap, "humiao-verifier-outbox", acks="all",
                                          linger_ms=5, max_in_flight_requests_per_connection=1)
        return self._producer

    def _send_all(self, rows: Sequence[Any]) -> dict[int, str]:
        """Runs on the relay's thread: produce every row and wait for the acks. Returns
        the rows the broker refuses for good (seq -> the error's name); those refused
        together are sent again one by one first, since the broker refuses a whole
        request for one bad record."""
        producer = self._producer_now()
        sent = [(r, self._send(producer, r)) for r in rows]
        producer.flush()
        refused: dict[int, str] = {}
        for r, fut in sent:
            try:
                if isinstance(fut, Exception):
                    raise fut
                fut.get(timeout=30)
            except UNPUBLISHABLE as exc:
                refused[r["seq"]] = type(exc).__name__
        for seq in list(refused):
            row = next(r for r in rows if r["seq"] == seq)
            again = self._send(producer, row)
            producer.flush()
            try:
                if isinstance(again, Exception):
                    raise again
                again.get(timeout=30)
                del refused[seq]
            except UNPUBLISHABLE as exc:
                refused[seq] = type(exc).__name__
        return refused

    def _send(self, producer: KafkaProducer, r: Any) -> Any:
        """The send's future, or the error when the client refuses the record at once."""
        try:
            return producer.send(
                self.topic, key=r["alert_id"].encode(), value=bytes(r["payload"]),
                headers=[("alert-id", r["alert_id"].encode()),
                         ("version", str(r["version"]).encode())],
            )
        except UNPUBLISHABLE as exc:
            return exc

    async def backlog(self) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval(
                "SELECT count(*) FROM alert_versions WHERE published_at IS NULL"))

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
        def _close() -> None:
            self._deadletters.close()
            if self._producer is not None:
                self._producer.close(timeout=10)
                self._producer = None

        await self._calls(_close)
        self._calls.shutdown()


def _letter(row: Any, reason: str) -> Letter:
    """The dead letter of a refused version: its ids and the error, the payload only as
    far as the dead-letter publisher keeps it (the version stays in alert_versions)."""
    return Letter(
        row["alert_id"].encode(),
        bytes(row["payload"]),
        [("reason", UNPUBLISHABLE_REASON.encode()), ("detail", reason.encode()),
         ("origin-topic", b"alert_versions"), ("alert-id", row["alert_id"].encode()),
         ("version", str(row["version"]).encode()), ("outbox-seq", str(row["seq"]).encode())],
    )
