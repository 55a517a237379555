"""Publishing validated envelopes to the events topic with kafka-python.

kafka-python is blocking and grpc.aio/asyncpg are asyncio: every producer call
(construction, send, waiting for acks, close) runs on the publisher's own threads
(adapters/kafka_bridge.py, `BlockingCalls`), so the event loop never blocks on the broker.

Routing (humiao.adapters.topics.routing_key): child facts go to the partition of the
child's pseudonymous key; person, region and reference facts are sent once to EVERY
partition (explicit partition, same key), so each verifier partition meets them.

Failure and recovery: once records of the idempotent kafka-python producer have expired
(a broker that hung), that producer never delivers again. So a failed publish retires
the producer (closed in the background, without waiting for its records) and the next
publish or readiness probe builds a fresh one; it gets a new producer id, which is fine
because consumers dedupe by eventId. Until a fresh producer has fetched metadata (or a
publish succeeded), `ready()` says False, so health goes NOT_SERVING after a failure.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from humiao.adapters.codec import envelope_to_proto
from humiao.adapters.kafka_bridge import BlockingCalls, new_producer
from humiao.adapters.record_signing import signed_headers
from humiao.adapters.topics import routing_key
from humiao.config import KafkaSettings
from humiao.domain.events import Envelope

log = logging.getLogger(__name__)

#: How long a readiness probe waits for a fresh producer before saying "not yet".
PROBE_WAIT_SECONDS = 0.5
#: Threads for the producer's blocking calls: concurrent publishes wait on acks in parallel.
_WORKERS = 8
#: (key, value, broadcast to every partition, headers with ingest's signature)
_Record = tuple[bytes, bytes, bool, list[tuple[str, bytes]]]


class PublishError(Exception):
    """Kafka did not acknowledge every record; `published` says which envelopes made it."""

    def __init__(self, message: str, published: frozenset[int]) -> None:
        super().__init__(message)
        self.published = published


@dataclass(frozen=True)
class PublisherOptions:
    """Producer timing. `publish_timeout_ms` is the one deadline of a publish call (fresh
    producer, sends, acknowledgements); the producer's own timeouts are capped by it."""

    linger_ms: int = 5
    #: Whole wait of one publish; then the call fails (ingest answers UNAVAILABLE).
    publish_timeout_ms: int = 10_000
    #: How long a send may wait for metadata or buffer space (capped by publish_timeout_ms).
    max_block_ms: int = 10_000
    #: Upper bound on a record's delivery, retries included (capped by publish_timeout_ms,
    #: raised to linger_ms + request_timeout_ms as kafka-python requires).
    delivery_timeout_ms: int = 10_000
    request_timeout_ms: int = 5_000
    #: Connecting a fresh producer (ApiVersions and metadata) at start and after a failure.
    bootstrap_timeout_ms: int = 5_000
    #: Bootstrap timeout of a fresh producer built by a readiness probe after a failure.
    probe_timeout_ms: int = 1_500

    @classmethod
    def with_publish_timeout(cls, seconds: float) -> PublisherOptions:
        """Defaults with every producer timeout in step with a publish deadline."""
        total = max(1, int(seconds * 1000))
        base = cls()
        return replace(
            base,
            publish_timeout_ms=total,
            delivery_timeout_ms=total,
            request_timeout_ms=min(base.request_timeout_ms, max(1, total // 2)),
        )

    def producer_config(self, bootstrap_timeout_ms: int | None = None) -> dict[str, Any]:
        request = min(self.request_timeout_ms, self.publish_timeout_ms)
        delivery = max(min(self.delivery_timeout_ms, self.publish_timeout_ms),
                       self.linger_ms + request)
        return {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": self.linger_ms,
            "max_block_ms": min(self.max_block_ms, self.publish_timeout_ms),
            "delivery_timeout_ms": delivery,
            "request_timeout_ms": request,
            "bootstrap_timeout_ms": min(bootstrap_timeout_ms or self.bootstrap_timeout_ms,
                                        self.publish_timeout_ms),
            "batch_size": 256 * 1024,
        }


class EventPublisher:
    """An idempotent acks=all producer for the events topic, replaced after a failure.
    Build with `open()`; safe for concurrent publishes."""

    def __init__(self, producer: KafkaProducer, settings: KafkaSettings, secret: bytes,
                 options: PublisherOptions, calls: BlockingCalls) -> None:
        self._calls = calls
        self._producer: KafkaProducer | None = producer
        self._settings = settings
        self._secret = secret
        self._signing_secret = settings.record_signing_secret
        self._options = options
        self._topic = settings.events_topic
        #: Guards swapping the producer: one build at a time, never two live producers.
        self._lock = asyncio.Lock()
        self._healthy = True
        self._closed = False
        self._building: asyncio.Future[KafkaProducer] | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls, settings: KafkaSettings, secret: bytes, options: PublisherOptions | None = None
    ) -> EventPublisher:
        """Connect (in a thread); raises KafkaError if the broker does not answer."""
        opts = options or PublisherOptions()
        calls = BlockingCalls("humiao-ingest-kafka", _WORKERS)
        try:
            producer = await calls(_build_producer, settings, opts, None)
        except BaseException:
            calls.shutdown()
            raise
        publisher = cls(producer, settings, secret, opts, calls)
        try:
            await calls(publisher._partitions, producer)  # the topic's metadata now
        except BaseException:
            await publisher.close()
            raise
        return publisher

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def healthy(self) -> bool:
        """False from a failed publish until a probe or a publish shows the broker back."""
        return self._healthy

    def _partitions(self, producer: KafkaProducer) -> list[int]:
        found = producer.partitions_for(self._topic)
        if not found:
            raise KafkaError(f"topic {self._topic} has no partitions")
        return sorted(found)

    # --- the producer's life -----------------------------------------------------------

    async def _current(self, bootstrap_timeout_ms: int | None = None) -> KafkaProducer:
        """The live producer, built now if the last one was retired. Concurrent callers
        share one build; a caller that gives up (cancelled) does not lose it: `_built`
        installs (or closes) the producer whenever the build ends."""
        async with self._lock:
            if self._closed:
                raise KafkaError("publisher closed")
            if self._producer is not None:
                return self._producer
            if self._building is None:
                self._building = asyncio.ensure_future(self._calls(
                    _build_producer, self._settings, self._options, bootstrap_timeout_ms))
                self._building.add_done_callback(self._built)
            build = self._building
        producer = await asyncio.shield(build)  # `_built` has run by the time this returns
        if self._producer is not producer:
            raise KafkaError("publisher closed")
        return producer

    def _built(self, build: asyncio.Future[KafkaProducer]) -> None:
        """Runs on the loop when a build ends: the new producer goes live unless the
        publisher closed meanwhile (then it is closed too)."""
        self._building = None
        if build.cancelled() or build.exception() is not None:
            return
        producer = build.result()
        if self._producer is None and not self._closed:
            self._producer = producer
            log.info("kafka producer built")
        else:
            self._retire_in_background(producer)

    def _retire(self, producer: KafkaProducer) -> None:
        """After a failed publish: stop using `producer` (once, whoever noticed first)."""
        self._healthy = False
        if self._producer is producer:
            self._producer = None
            log.warning("kafka producer retired after a failed publish; the next publish "
                        "or readiness probe builds a fresh one")
            self._retire_in_background(producer)

    def _retire_in_background(self, producer: KafkaProducer) -> None:
        task = asyncio.get_running_loop().create_task(
            self._calls(_close_producer, producer, 0.0))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # --- publishing --------------------------------------------------------------------

    async def publish(self, envelopes: Sequence[Envelope], timestamp_ms: int) -> None:
        """Publish and wait for every acknowledgement, at most publish_timeout_ms in all;
        PublishError if any record was not acknowledged by then."""
        if not envelopes:
            return
        deadline = time.monotonic() + self._options.publish_timeout_ms / 1000
        records = [self._records(env) for env in envelopes]
        try:
            producer = await asyncio.wait_for(self._current(), _left(deadline))
        except Exception as exc:  # no producer: NoBrokersAvailable, timeout...
            self._healthy = False
            raise PublishError(f"Kafka unavailable: {type(exc).__name__}", frozenset()) from exc
        job = asyncio.ensure_future(
            self._calls(self._send_all, producer, records, timestamp_ms, deadline))
        try:
            # The thread keeps the same deadline; the margin covers thread scheduling only.
            published, error = await asyncio.wait_for(asyncio.shield(job), _left(deadline) + 1.0)
        except TimeoutError:  # a send blocked past the deadline: none counts as published
            published, error = frozenset(), KafkaTimeoutError("publish deadline passed")
        if error is not None or len(published) != len(records):
            self._retire(producer)
            raise PublishError(
                f"Kafka did not acknowledge {len(records) - len(published)} of {len(records)} "
                f"events ({type(error).__name__ if error else 'timeout'})",
                published,
            )
        if self._producer is producer:
            self._healthy = True

    def _records(self, env: Envelope) -> _Record:
        key, broadcast = routing_key(env, self._secret)
        value = envelope_to_proto(env).SerializeToString()
        return key, value, broadcast, signed_headers(self._signing_secret, key, value)

    def _send_all(self, producer: KafkaProducer, records: list[_Record], timestamp_ms: int,
                  deadline: float) -> tuple[frozenset[int], Exception | None]:
        """Runs in a worker thread: send everything, then wait on the futures until
        `deadline`. Returns the indexes of acknowledged records and the first error."""
        topic = self._topic
        try:
            partitions = self._partitions(producer) if any(r[2] for r in records) else []
        except KafkaError as exc:
            return frozenset(), exc
        futures: list[list[Any]] = []
        first_error: Exception | None = None
        for key, value, broadcast, headers in records:
            if time.monotonic() >= deadline:  # don't queue what cannot be acknowledged
                first_error = first_error or KafkaTimeoutError("publish deadline passed")
                break
            sent: list[Any] = []
            try:
                if broadcast:
                    for partition in partitions:
                        sent.append(producer.send(topic, value=value, key=key, headers=headers,
                                                  partition=partition, timestamp_ms=timestamp_ms))
                else:
                    sent.append(producer.send(topic, value=value, key=key, headers=headers,
                                              timestamp_ms=timestamp_ms))
            except KafkaError as exc:
                first_error = first_error or exc
                sent.append(None)
            futures.append(sent)
        published: set[int] = set()
        for index, sent in enumerate(futures):
            ok = True
            for future in sent:
                if future is None:
                    ok = False
                    continue
                try:
                    future.get(timeout=_left(deadline))
                except KafkaError as exc:  # KafkaTimeoutError here: the deadline passed
                    first_error = first_error or exc
                    ok = False
            if ok:
                published.add(index)
        return frozenset(published), first_error

    # --- readiness and shutdown --------------------------------------------------------

    async def reachable(self, timeout: float = 1.0) -> bool:
        """True if some bootstrap broker accepts a TCP connection (a cheap liveness sign)."""
        return await self._calls(bootstrap_reachable, self._settings.bootstrap, timeout)

    async def ready(self) -> bool:
        """Readiness: after a failed publish, False until a fresh producer has bootstrapped
        (ApiVersions and metadata from the broker); otherwise the TCP check."""
        if self._healthy:
            return await self.reachable()
        # A producer built since the failure has bootstrapped (ApiVersions and metadata):
        # that is the proof. Wait for a build only briefly, so health turns NOT_SERVING
        # promptly; a build still going on is kept and answers the next probe.
        try:
            producer = await asyncio.wait_for(self._current(self._options.probe_timeout_ms),
                                              PROBE_WAIT_SECONDS)
        except Exception as exc:  # kafka-python raises many kinds
            log.info("kafka still unavailable: %s", type(exc).__name__)
            return False
        if self._producer is producer and not self._healthy:
            self._healthy = True
            log.info("kafka answers again")
        return self._healthy

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is buffered and close the producer's network thread. Never raises:
        shutdown must go on to close the pool even if the broker is gone."""
        async with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            await self._calls(_close_producer, producer, timeout)
        if self._building is not None:  # `_built` closes what it brings
            await asyncio.wait([self._building])
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
        self._calls.shutdown(wait=False)  # idle now; a send past its deadline ends alone


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _build_producer(settings: KafkaSettings, options: PublisherOptions,
                    bootstrap_timeout_ms: int | None) -> KafkaProducer:
    """Blocking: a connected producer (raises KafkaError if the broker does not answer)."""
    return new_producer(settings.bootstrap, "humiao-ingest",
                        **options.producer_config(bootstrap_timeout_ms))


def _close_producer(producer: KafkaProducer, timeout: float) -> None:
    """Blocking: flush for up to `timeout`, then close; records still unacknowledged are
    dropped (no call was answered ACCEPTED for them). Never raises."""
    try:
        producer.close(timeout)
        return
    except KafkaError as exc:  # the flush timed out
        if timeout > 0:
            log.warning("kafka producer closed with unacknowledged records: %s",
                        type(exc).__name__)
    except Exception:  # closing must not fail shutdown
        log.exception("closing the kafka producer failed")
        return
    sender = getattr(producer, "_sender", None)
    if sender is not None:  # what close() does after a clean flush, without the flush
        sender.force_close()
        sender.join(max(timeout, 5.0))
    try:  # the aborted batches are complete now: release metrics and mark it closed
        producer.close(0)
    except Exception as exc:  # never raise from a close
        log.warning("kafka producer close after abort: %s", type(exc).__name__)


def bootstrap_reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    """Whether any host:port of a bootstrap list accepts a connection."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                     timeout=timeout).close()
            return True
        except (OSError, ValueError):
            continue
    return False
