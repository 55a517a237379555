"""The Kafka side of the verifier: a consumer-group member that feeds micro-batches to the
processor and moves offsets only through the database.

Threading (adapters/kafka_bridge.py): kafka-python is blocking and asyncpg is asyncio, so
the consumer runs a *synchronous poll loop on a thread of its own*, and that thread owns
a `PrivateLoop` and one dedicated PostgreSQL connection, on which it runs
`processor.process(...)` for each batch. Batches are processed
strictly one after the other (they must be: offsets of one partition commit in order),
so one connection is all the loop needs, and the service's main loop (gRPC health,
metrics, the outbox relay) never waits on Kafka or on a batch.

Offsets: `enable_auto_commit=False`; on assignment the listener only *pauses* the new
partitions (it runs on kafka-python's IO thread, which must not block); the poll loop
then reads their stored offsets from `consumer_offsets`, seeks (to the beginning when
none is stored) and resumes them. Each batch's transaction first locks the offset rows
and checks they still hold the offsets this consumer started from (a fence against a
zombie that lost the partition in a rebalance), then stores state and new offsets
together. Kafka offsets are also committed afterwards, best effort, only so that
standard tools show the group's lag; the database is the source of truth.
If PostgreSQL is unreachable, the batch is dropped (nothing advanced), the partitions are
re-seeked to their committed offsets and the loop retries with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import asyncpg
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from humiao.adapters.deadletter import DeadLetterPublisher
from humiao.adapters.kafka_bridge import PrivateLoop
from humiao.adapters.offsets import ensure_offsets
from humiao.adapters.verifier_store import PgVerifierStore
from humiao.config import kafka_security
from humiao.verifier.collector import BatchCollector
from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.processor import (
    BatchResult,
    Fenced,
    PreparedBatch,
    Processor,
    RecordLike,
)

log = logging.getLogger(__name__)

#: How long one poll keeps filling a batch while a backlog waits on the broker.
_FILL_SECONDS = 5.0
#: Records waiting on the broker that make a backlog (10 s of traffic at 1,000 events/s).
_BACKLOG = 10_000
#: Errors that mean PostgreSQL is away (the batch is dropped and retried after backoff).
_DATABASE_AWAY = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                  asyncpg.CannotConnectNowError, TimeoutError)
#: A polled batch, decoded, and the assignment epoch it was polled in.
_Ready = tuple[PreparedBatch, int]


class _Listener(ConsumerRebalanceListener):
    """Runs on kafka-python's IO thread: bookkeeping only, no I/O."""

    def __init__(self, owner: ConsumerLoop) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.owner._revoked({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.owner._assigned(list(assigned))


class ConsumerLoop:
    """One member of the verifier's consumer group, on its own thread."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group: str,
        dsn: str,
        processor: Processor,
        deadletters: DeadLetterPublisher,
        metrics: VerifierMetrics,
        batch_max: int = 5000,
        linger_ms: int = 50,
        session_timeout_ms: int = 10_000,
        client_id: str = "humiao-verifier",
        on_commit: Callable[[], None] | None = None,
        collector: BatchCollector | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.dsn = dsn
        self.processor = processor
        self.deadletters = deadletters
        self.metrics = metrics
        self.batch_max = batch_max
        self.linger_ms = linger_ms
        self.session_timeout_ms = session_timeout_ms
        self.client_id = client_id
        self.on_commit = on_commit
        #: runs the garbage collector between batches (the service process only)
        self.collector = collector
        self._stop = threading.Event()
        self._lock = threading.Lock()
        #: partition -> next offset as stored in the database (-1: from the beginning)
        self._positions: dict[int, int] = {}
        self._need_seek: set[int] = set()
        #: bumped on every assignment change; the processor's memory is only valid
        #: within one epoch
        self._epoch = 0
        self._memory_epoch = 0
        self._consumer: KafkaConsumer | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._conn: asyncpg.Connection | None = None
        self._store: PgVerifierStore | None = None
        #: readiness inputs, written by the thread, read by the service's probe
        self.db_ok = False
        self.broker_ok = False
        self.batches = 0
        self.failure: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.client_id}-consumer")
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stopped(self, poll: float = 0.05) -> None:
        """Await the thread's exit from asyncio code without blocking the loop."""
        while not self._done.is_set():
            await asyncio.sleep(poll)
        if self._thread is not None:
            self._thread.join()

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    # --- rebalance bookkeeping (IO thread) ------------------------------------------------

    def _assigned(self, assigned: list[TopicPartition]) -> None:
        mine = [tp for tp in assigned if tp.topic == self.topic]
        if self._consumer is not None and mine:
            self._consumer.pause(*mine)
        with self._lock:
            self._epoch += 1
            for tp in mine:
                self._need_seek.add(tp.partition)
                self._positions.pop(tp.partition, None)
        log.info("assigned partitions=%s", sorted(tp.partition for tp in mine))

    def _revoked(self, partitions: set[int]) -> None:
        with self._lock:
            self._epoch += 1
            for p in partitions:
                self._positions.pop(p, None)
                self._need_seek.discard(p)
        for p in partitions:
            self.metrics.forget_partition(p)
        log.info("revoked partitions=%s", sorted(partitions))

    # --- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        loop = PrivateLoop()
        try:
            self._main(loop)
        except BaseException as exc:  # the service sees it through `failure`
            self.failure = exc
            log.exception("consumer loop crashed")
        finally:
            if self._conn is not None:
                try:
                    loop.run(asyncio.wait_for(self._conn.close(), 5))
                except Exception:
                    self._conn.terminate()
                self._conn = None
            try:
                self.deadletters.close()
            finally:
                loop.close()
                self._done.set()

    def _make_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_max,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_wait_ms=100,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.session_timeout_ms // 4),
            **kafka_security(),
        )

    def _connect(self, backoff: _Backoff) -> KafkaConsumer | None:
        """The consumer, once the broker answers (None: stopped before it did)."""
        while not self._stop.is_set() and self._consumer is None:
            try:
                self._consumer = self._make_consumer()
            except Exception as exc:
                self.broker_ok = False
                log.warning("broker unavailable (%s); retrying", type(exc).__name__)
                self._sleep(backoff.next())
        return self._consumer

    def _main(self, loop: PrivateLoop) -> None:
        backoff = _Backoff()
        consumer = self._connect(backoff)
        if consumer is None:
            return
        self.broker_ok = True
        consumer.subscribe([self.topic], listener=_Listener(self))
        decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.client_id}-decode")
        # One batch is decoded while the one before it is in its transaction (which mostly
        # waits on PostgreSQL): `ready` is a polled and decoded batch not yet processed.
        ready: _Ready | None = None
        try:
            while not self._stop.is_set():
                ready = self._turn(consumer, loop, decoder, ready, backoff)
            # Stopping: the batch in its transaction has committed; one decoded but not yet
            # processed is read again by whoever owns its partitions next.
        finally:
            decoder.shutdown(wait=True)
            try:
                consumer.close(autocommit=False)
            except Exception as exc:
                log.warning("closing consumer: %s", type(exc).__name__)
            self._consumer = None

    def _turn(
        self, consumer: KafkaConsumer, loop: PrivateLoop, decoder: ThreadPoolExecutor,
        ready: _Ready | None, backoff: _Backoff,
    ) -> _Ready | None:
        """One turn of the loop: seek what was assigned, poll the next batch and decode it
        while the ready one is processed. Returns the batch ready for the next turn."""
        if self._need_seek:
            if ready is not None:
                self._rewind_all(consumer)
                ready = None
            if not self._seek_pending(consumer, loop):
                self._sleep(backoff.next())
                consumer.poll(timeout_ms=0)  # stay in the group while the DB is away
                return None
        with self._lock:
            epoch = self._epoch
        records = self._poll(consumer, wait=ready is None)
        decoding = decoder.submit(self._decode, records) if records else None
        if ready is not None and not self._run_ready(consumer, loop, ready, decoding, backoff):
            return None
        if decoding is not None:
            return decoding.result(), epoch
        if self.collector is not None:
            self.collector.idle()
        return None

    def _run_ready(
        self, consumer: KafkaConsumer, loop: PrivateLoop, ready: _Ready,
        decoding: Future[PreparedBatch] | None, backoff: _Backoff,
    ) -> bool:
        """Process the batch decoded last turn. False when it must be read again; the
        batch being decoded, which follows it, is then dropped too."""
        batch, polled_in = ready
        if polled_in != self._epoch:
            ok = False  # a rebalance ran since it was polled: read it again
            self._rewind_all(consumer)
            if decoding is not None:
                decoding.result()
                decoding = None
        else:
            ok = self._process(consumer, loop, batch, polled_in)
            if ok and self.collector is not None:
                self.collector.after_batch()
        if ok:
            backoff.reset()
            return True
        if decoding is not None:
            decoding.result()
            self._rewind_all(consumer)
        if polled_in == self._epoch:
            self._sleep(backoff.next())
        return False

    def _decode(self, records: list[RecordLike]) -> PreparedBatch:
        """Decode and validate a polled batch (on the decoder thread; no I/O)."""
        return self.processor.prepare(self.topic, records)

    def _connection(self, loop: PrivateLoop) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = loop.run(asyncpg.connect(self.dsn, timeout=10))
        return self._conn

    def _store_on(self, conn: asyncpg.Connection) -> PgVerifierStore:
        """The store over the consumer's connection, kept as long as the connection."""
        if self._store is None or self._store.conn is not conn:
            self._store = PgVerifierStore(conn)
        return self._store

    def _drop_connection(self, loop: PrivateLoop) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    def _seek_pending(self, consumer: KafkaConsumer, loop: PrivateLoop) -> bool:
        """Seek newly assigned partitions to their stored offsets; False if the DB failed."""
        with self._lock:
            pending = sorted(self._need_seek)
        assignment = {tp.partition for tp in consumer.assignment() if tp.topic == self.topic}
        pending = [p for p in pending if p in assignment]
        if not pending:
            with self._lock:
                self._need_seek.clear()
            return True
        try:
            conn = self._connection(loop)
            stored = loop.run(ensure_offsets(conn, self.group, self.topic, pending))
            self.db_ok = True
        except Exception as exc:
            self.db_ok = False
            self._drop_connection(loop)
            log.warning("cannot read stored offsets (%s); retrying", type(exc).__name__)
            return False
        tps = []
        with self._lock:
            for p in pending:
                if p not in self._need_seek:
                    continue  # revoked meanwhile
                tp = TopicPartition(self.topic, p)
                offset = stored.get(p, -1)
                if offset >= 0:
                    consumer.seek(tp, offset)
                else:
                    consumer.seek_to_beginning(tp)
                self._positions[p] = offset
                self._need_seek.discard(p)
                tps.append(tp)
        if tps:
            consumer.resume(*tps)
            log.info("seeked partitions=%s to stored offsets", [tp.partition for tp in tps])
        return True

    def _poll(self, consumer: KafkaConsumer, wait: bool = True) -> list[RecordLike]:
        """Up to batch_max records, waiting at most linger_ms once the first arrived
        (without `wait`: only what the consumer has fetched already). While the broker
        holds a backlog (a replay, a catch-up: see _backlog), the batch is
        filled up to batch_max whatever the wait, for at most _FILL_SECONDS: a child's
        evaluation costs per batch, so a replay in few big batches evaluates each child
        a few times instead of once per small batch."""
        out: list[RecordLike] = []
        # The batch closes at `deadline` (linger_ms after the first record; at once without
        # `wait`, after one poll) unless a backlog keeps it filling until `fill_until`.
        deadline: float | None = None if wait else time.monotonic()
        fill_until: float | None = None
        taken_up_to: dict[TopicPartition, int] = {}  # partition -> after the last taken
        polled = False
        while len(out) < self.batch_max and not self._stop.is_set():
            if deadline is None:
                timeout = 200
            else:
                now = time.monotonic()
                timeout = max(0, int((deadline - now) * 1000))
                if polled and timeout == 0:
                    filling = (
                        fill_until is not None
                        and now < fill_until
                        and self._backlog(consumer, taken_up_to, self.batch_max - len(out))
                    )
                    if not filling:
                        break
                    timeout = 100
            polled = True
            try:
                got = consumer.poll(timeout_ms=timeout, max_records=self.batch_max - len(out))
                self.broker_ok = True
            except Exception as exc:
                self.broker_ok = False
                log.warning("poll failed: %s", type(exc).__name__)
                break
            if not got:
                if deadline is None:
                    break  # idle: let the caller look at the stop flag and pending seeks
                continue  # the top of the loop decides whether the batch is closed
            self._take(got, out, taken_up_to)
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.linger_ms / 1000
            if fill_until is None:
                fill_until = now + _FILL_SECONDS
        return out

    def _take(self, got: dict[TopicPartition, list[Any]], out: list[RecordLike],
              taken_up_to: dict[TopicPartition, int]) -> None:
        """Add the polled records from each partition's position on to `out`."""
        with self._lock:
            positions = dict(self._positions)
        for tp, recs in got.items():
            start = positions.get(tp.partition)
            if start is None:
                continue  # not seeked yet (or revoked): never process from a guess
            if recs and recs[0].offset >= start:
                out.extend(recs)
            else:
                out.extend(r for r in recs if r.offset >= start)
            if recs:
                taken_up_to[tp] = recs[-1].offset + 1

    @staticmethod
    def _backlog(consumer: KafkaConsumer, taken_up_to: dict[TopicPartition, int],
                 room: int) -> bool:
        """Whether the broker holds, beyond the records taken (by the high watermarks of
        the last fetch responses), enough to fill `room` or at least _BACKLOG records: a
        backlog, not the trickle of live traffic, whose batches linger_ms bounds."""
        waiting = 0
        for tp, after in taken_up_to.items():
            high = consumer.highwater(tp)
            if high is not None and high > after:
                waiting += high - after
        return waiting >= min(room, _BACKLOG)

    def _process(
        self,
        consumer: KafkaConsumer,
        loop: PrivateLoop,
        batch: PreparedBatch,
        epoch: int,
    ) -> bool:
        """Process one batch; on failure seek its partitions back. True when committed
        (or fenced: the partitions are then re-read from their stored offsets)."""
        with self._lock:
            expected = {p: self._positions.get(p, -1) for p in batch.next_offsets}
        if epoch != self._memory_epoch:
            self.processor.forget()
            self._memory_epoch = epoch
        try:
            self.deadletters.publish(batch.dead, self.topic)
        except Exception as exc:
            self.broker_ok = False
            self.metrics.batch_failed("deadletter")
            log.warning("dead-letter publish failed (%s); batch retried", type(exc).__name__)
            self._rewind(consumer, expected)
            return False
        try:
            conn = self._connection(loop)
            result = loop.run(self.processor.process(self._store_on(conn), batch, expected))
        except Exception as exc:
            ok = self._failed(exc, loop)
            self._rewind(consumer, expected)
            return ok
        self._committed(consumer, result, epoch)
        return True

    def _failed(self, exc: Exception, loop: PrivateLoop) -> bool:
        """Account for a batch that did not commit (called inside the except block).
        True when the loop goes on at once, False when it backs off first."""
        if isinstance(exc, Fenced):
            self.processor.forget()
            self.metrics.batch_failed("fenced")
            log.warning("%s; re-reading stored offsets", exc)
            with self._lock:  # before the rewind, which leaves partitions to seek alone
                self._need_seek.update(p for p in exc.partitions if p in self._positions)
            return True
        if isinstance(exc, asyncpg.DeadlockDetectedError):
            self.metrics.batch_failed("deadlock")
            log.warning("deadlock; batch retried")
            return True
        if isinstance(exc, _DATABASE_AWAY):
            self.db_ok = False
            self.metrics.batch_failed("database")
            log.warning("database unavailable (%s); batch dropped, retrying", type(exc).__name__)
        else:
            self.metrics.batch_failed("error")
            log.exception("batch failed; retried after backoff")
        self._drop_connection(loop)
        return False

    def _committed(self, consumer: KafkaConsumer, result: BatchResult, epoch: int) -> None:
        self.db_ok = True
        self.batches += 1
        commits = {}
        with self._lock:
            if self._epoch != epoch:  # a rebalance ran during the batch
                self.processor.forget()
            for p, nxt in result.next_offsets.items():
                if p in self._positions:
                    self._positions[p] = nxt
                    commits[TopicPartition(self.topic, p)] = OffsetAndMetadata(nxt, "", -1)
        self._report_lag(consumer, result.next_offsets)
        if commits:
            try:
                consumer.commit_async(commits)
            except Exception as exc:  # visibility only; the database holds the truth
                log.debug("kafka commit skipped: %s", type(exc).__name__)
        if self.on_commit is not None and result.changes:
            self.on_commit()

    def _rewind_all(self, consumer: KafkaConsumer) -> None:
        """Seek every owned partition back to its stored offset (drops what was fetched)."""
        with self._lock:
            positions = dict(self._positions)
        self._rewind(consumer, positions)

    def _rewind(self, consumer: KafkaConsumer, expected: dict[int, int]) -> None:
        """Seek the batch's partitions back to the offsets stored before it."""
        with self._lock:
            for p, offset in expected.items():
                if p not in self._positions or p in self._need_seek:
                    continue
                tp = TopicPartition(self.topic, p)
                try:
                    if offset >= 0:
                        consumer.seek(tp, offset)
                    else:
                        consumer.seek_to_beginning(tp)
                except ValueError:
                    pass  # revoked meanwhile

    def _report_lag(self, consumer: KafkaConsumer, next_offsets: dict[int, int]) -> None:
        for p, nxt in next_offsets.items():
            try:
                high = consumer.highwater(TopicPartition(self.topic, p))
            except Exception:
                continue
            if high is not None:
                self.metrics.lag(p, high - nxt)


class _Backoff:
    def __init__(self, first: float = 0.2, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.current = 0.0

    def next(self) -> float:
        self.current = self.first if self.current == 0 else min(self.cap, self.current * 2)
        return self.current

    def reset(self) -> None:
        self.current = 0.0
