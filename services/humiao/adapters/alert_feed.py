"""A consumer-group member on the alerts topic whose offsets live in PostgreSQL.

The notifier's one meeting point of kafka-python and asyncio: every kafka-python call
runs on one thread of this adapter (a single-worker executor), the caller stays async.
The interface is small on purpose (`next_batch`, `committed`, `rewind`, `close`) so it can
move onto a shared bridge later.

Offsets: `enable_auto_commit=False`. A newly assigned partition is paused until its
stored position has been read (through the `positions` callable the caller gives) and
sought; each batch says which stored positions it continues from (`start`, -1: none
stored) and where it ends (`end`), so the caller's transaction can check the first and
store the second with the state (a fence against a member that lost the partition).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from humiao.adapters.kafka_bridge import new_producer
from humiao.adapters.topics import log_end_offsets
from humiao.config import kafka_security

T = TypeVar("T")
#: An alert version is a few KB; a dead letter keeps at most this much of a record.
_MAX_LETTER = 1024 * 1024
Positions = Callable[[], Awaitable[dict[int, int]]]


@dataclass(frozen=True, slots=True)
class FeedRecord:
    partition: int
    offset: int
    value: bytes
    key: bytes | None = None
    timestamp: int = 0  # milliseconds since the epoch, as the broker stamped it


@dataclass(frozen=True)
class FeedBatch:
    records: Sequence[FeedRecord]
    #: partition -> stored next offset this batch continues from (-1: none stored yet)
    start: dict[int, int] = field(default_factory=dict)
    #: partition -> next offset after this batch (what to store with its state)
    end: dict[int, int] = field(default_factory=dict)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, feed: AlertFeed) -> None:
        self.feed = feed

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.feed._forget({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.feed._assigned([tp for tp in assigned if tp.topic == self.feed.topic])


class AlertFeed:
    def __init__(
        self, *, bootstrap: str, topic: str, group: str, positions: Positions,
        client_id: str = "humiao-notifier", max_records: int = 5000,
        session_timeout_ms: int = 10_000, deadletter_topic: str | None = None,
        start_from_latest: bool = False,
    ) -> None:
        self.topic = topic
        self.bootstrap = bootstrap
        self.deadletter_topic = deadletter_topic
        #: Where a partition with no stored position starts: its end (skip history) or
        #: its beginning.
        self.start_from_latest = start_from_latest
        self._producer: KafkaProducer | None = None
        self._config = dict(
            bootstrap_servers=bootstrap, group_id=group, client_id=client_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=max_records, session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 4), fetch_max_wait_ms=200,
            **kafka_security(),
        )
        self._positions = positions
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="humiao-feed")
        self._consumer: KafkaConsumer | None = None
        self._lock = threading.Lock()
        #: partition -> stored next offset (-1: none stored), for assigned, sought partitions
        self._stored: dict[int, int] = {}
        self._unsought: set[int] = set()
        #: partition -> first offset to hand over (older records are replays)
        self._floor: dict[int, int] = {}

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # --- rebalance bookkeeping (on the feed's thread, inside poll) ---------------------

    def _assigned(self, assigned: list[TopicPartition]) -> None:
        if self._consumer is not None and assigned:
            self._consumer.pause(*assigned)
        with self._lock:
            self._unsought.update(tp.partition for tp in assigned)

    def _forget(self, partitions: set[int]) -> None:
        with self._lock:
            for p in partitions:
                self._stored.pop(p, None)
                self._floor.pop(p, None)
                self._unsought.discard(p)

    # --- the interface ------------------------------------------------------------------

    async def start(self) -> None:
        def make() -> None:
            self._consumer = KafkaConsumer(**self._config)
            self._consumer.subscribe([self.topic], listener=_Listener(self))

        await self._run(make)

    async def next_batch(self, timeout: float = 0.5) -> FeedBatch:
        """The next records of sought partitions (possibly none)."""
        with self._lock:
            unsought = set(self._unsought)
        if unsought:
            stored = await self._positions()
            await self._run(lambda: self._seek(unsought, stored))
        polled = await self._run(lambda: self._poll(int(timeout * 1000)))
        return self._batch(polled)

    def _seek(self, partitions: set[int], stored: dict[int, int]) -> None:
        assert self._consumer is not None
        assigned = {tp.partition for tp in self._consumer.assignment()}
        new = [p for p in partitions & assigned if stored.get(p, -1) < 0]
        ends = (log_end_offsets(self.bootstrap, self.topic)  # not ListOffsets: see there
                if self.start_from_latest and new else {})
        for p in sorted(partitions & assigned):
            tp = TopicPartition(self.topic, p)
            position = stored.get(p, -1)
            if position >= 0:
                self._consumer.seek(tp, position)
            elif self.start_from_latest:
                self._consumer.seek(tp, ends.get(p, 0))
            else:
                self._consumer.seek_to_beginning(tp)
            with self._lock:
                self._stored[p] = position
                self._floor[p] = self._consumer.position(tp)
                self._unsought.discard(p)
            self._consumer.resume(tp)

    def _poll(self, timeout_ms: int) -> list[FeedRecord]:
        assert self._consumer is not None
        polled = self._consumer.poll(timeout_ms=timeout_ms)
        return [
            FeedRecord(tp.partition, r.offset, r.value or b"", r.key, r.timestamp)
            for tp, records in polled.items() for r in records
        ]

    def _batch(self, records: list[FeedRecord]) -> FeedBatch:
        with self._lock:
            stored, floor = dict(self._stored), dict(self._floor)
        kept = [r for r in records if r.partition in stored and r.offset >= floor[r.partition]]
        end: dict[int, int] = {}
        for r in kept:
            end[r.partition] = max(end.get(r.partition, 0), r.offset + 1)
        return FeedBatch(kept, {p: stored[p] for p in end}, end)

    def committed(self, batch: FeedBatch) -> None:
        """The batch's state and offsets are stored: continue after it."""
        with self._lock:
            for p, offset in batch.end.items():
                if p in self._stored:
                    self._stored[p] = self._floor[p] = offset

    async def rewind(self) -> None:
        """After a failed or fenced batch: seek every partition to its stored position."""
        def all_assigned() -> set[int]:
            assert self._consumer is not None
            return {tp.partition for tp in self._consumer.assignment()}

        parts = await self._run(all_assigned)
        with self._lock:
            self._unsought.update(parts)

    async def dead_letter(self, letters: Sequence[tuple[FeedRecord, str]]) -> None:
        """Put records that are not alert versions on the dead-letter topic, byte for byte,
        with the reason and their origin (the verifier's headers); returns once the broker
        has them all, so the offset may move past them. Raises if it does not."""
        if not letters or self.deadletter_topic is None:
            return
        await self._run(lambda: self._produce(letters))

    def _produce(self, letters: Sequence[tuple[FeedRecord, str]]) -> None:
        if self._producer is None:
            self._producer = new_producer(self.bootstrap, "humiao-notifier-deadletter", acks="all")
        futures = [
            self._producer.send(
                self.deadletter_topic, key=record.key, value=record.value[:_MAX_LETTER],
                headers=self._letter_headers(record, detail),
            )
            for record, detail in letters
        ]
        self._producer.flush()
        for future in futures:
            future.get(timeout=30)

    def _letter_headers(self, record: FeedRecord, detail: str) -> list[tuple[str, bytes]]:
        """The verifier's dead-letter headers (verifier/deadletter.py), written here so the
        notifier does not import the verifier's metrics."""
        return [
            ("reason", b"invalid"), ("detail", detail.encode()[:2000]),
            ("origin-topic", self.topic.encode()),
            ("origin-partition", str(record.partition).encode()),
            ("origin-offset", str(record.offset).encode()),
            ("origin-timestamp", str(record.timestamp).encode()),
        ]

    async def close(self) -> None:
        def close() -> None:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            if self._producer is not None:
                self._producer.close(timeout=10)
                self._producer = None

        try:
            await self._run(close)
        finally:
            self._executor.shutdown(wait=True)
