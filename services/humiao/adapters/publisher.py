"""Publishing validated envelopes to the events topic with kafka-python.

kafka-python is blocking and grpc.aio/asyncpg are asyncio: this adapter is where the two
meet. Every producer call (construction, send, flush, close) runs in a worker thread via
asyncio.to_thread, so the event loop never blocks on the broker.

Routing (humiao.adapters.topics.routing_key): child facts go to the partition of the
child's pseudonymous key; person, region and reference facts are sent once to EVERY
partition (explicit partition, same key), so each verifier partition meets them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from humiao.adapters.codec import envelope_to_proto
from humiao.adapters.topics import routing_key
from humiao.config import KafkaSettings
from humiao.domain.events import Envelope

log = logging.getLogger(__name__)


class PublishError(Exception):
    """Kafka did not acknowledge every record; `published` says which envelopes made it."""

    def __init__(self, message: str, published: frozenset[int]) -> None:
        super().__init__(message)
        self.published = published


@dataclass(frozen=True)
class PublisherOptions:
    linger_ms: int = 5
    #: How long a send may wait for metadata or buffer space before failing.
    max_block_ms: int = 10_000
    #: Upper bound on a record's delivery, retries included; then the call is UNAVAILABLE.
    delivery_timeout_ms: int = 30_000
    request_timeout_ms: int = 10_000
    bootstrap_timeout_ms: int = 5_000


class EventPublisher:
    """An idempotent acks=all producer for the events topic. Build with `open()`."""

    def __init__(self, producer: KafkaProducer, settings: KafkaSettings, secret: bytes,
                 options: PublisherOptions) -> None:
        self._producer = producer
        self._settings = settings
        self._secret = secret
        self._options = options
        self._topic = settings.events_topic

    @classmethod
    async def open(
        cls, settings: KafkaSettings, secret: bytes, options: PublisherOptions | None = None
    ) -> EventPublisher:
        """Connect (in a thread); raises KafkaError if the broker does not answer."""
        opts = options or PublisherOptions()

        def build() -> KafkaProducer:
            return KafkaProducer(
                bootstrap_servers=settings.bootstrap,
                client_id="humiao-ingest",
                acks="all",
                enable_idempotence=True,
                linger_ms=opts.linger_ms,
                max_block_ms=opts.max_block_ms,
                delivery_timeout_ms=opts.delivery_timeout_ms,
                request_timeout_ms=opts.request_timeout_ms,
                bootstrap_timeout_ms=opts.bootstrap_timeout_ms,
                batch_size=256 * 1024,
            )

        producer = await asyncio.to_thread(build)
        publisher = cls(producer, settings, secret, opts)
        try:
            await asyncio.to_thread(publisher._partitions)  # fetch the topic's metadata now
        except BaseException:
            await publisher.close()
            raise
        return publisher

    @property
    def topic(self) -> str:
        return self._topic

    def _partitions(self) -> list[int]:
        found = self._producer.partitions_for(self._topic)
        if not found:
            raise KafkaError(f"topic {self._topic} has no partitions")
        return sorted(found)

    async def publish(self, envelopes: Sequence[Envelope], timestamp_ms: int) -> None:
        """Publish and wait for every acknowledgement; PublishError if any record failed."""
        if not envelopes:
            return
        records = [self._records(env) for env in envelopes]
        try:
            await asyncio.to_thread(self._send_all, records, timestamp_ms)
        except KafkaError as exc:
            raise PublishError(f"Kafka failed: {type(exc).__name__}", frozenset()) from exc

    def _records(self, env: Envelope) -> tuple[bytes, bytes, bool]:
        key, broadcast = routing_key(env, self._secret)
        return key, envelope_to_proto(env).SerializeToString(), broadcast

    def _send_all(self, records: list[tuple[bytes, bytes, bool]], timestamp_ms: int) -> None:
        """Runs in a worker thread: send everything, flush, then collect the acks."""
        producer, topic = self._producer, self._topic
        futures: list[list[Any]] = []
        first_error: Exception | None = None
        try:
            partitions = self._partitions() if any(r[2] for r in records) else []
        except KafkaError as exc:
            raise PublishError(f"no metadata for {topic}: {exc}", frozenset()) from exc
        for key, value, broadcast in records:
            sent: list[Any] = []
            try:
                if broadcast:
                    for partition in partitions:
                        sent.append(producer.send(topic, value=value, key=key,
                                                  partition=partition, timestamp_ms=timestamp_ms))
                else:
                    sent.append(producer.send(topic, value=value, key=key,
                                              timestamp_ms=timestamp_ms))
            except KafkaError as exc:
                first_error = first_error or exc
                sent.append(None)
            futures.append(sent)
        try:
            producer.flush(timeout=self._options.delivery_timeout_ms / 1000)
        except KafkaError as exc:  # KafkaTimeoutError: some records still unacknowledged
            first_error = first_error or exc
        published: set[int] = set()
        for index, sent in enumerate(futures):
            ok = True
            for future in sent:
                if future is None:
                    ok = False
                    continue
                if not future.is_done:
                    ok = False
                    continue
                try:
                    future.get(timeout=0)
                except KafkaError as exc:
                    first_error = first_error or exc
                    ok = False
            if ok:
                published.add(index)
        if first_error is not None or len(published) != len(records):
            raise PublishError(
                f"Kafka did not acknowledge {len(records) - len(published)} of {len(records)} "
                f"events ({type(first_error).__name__ if first_error else 'timeout'})",
                frozenset(published),
            )

    async def reachable(self, timeout: float = 1.0) -> bool:
        """True if some bootstrap broker accepts a TCP connection (a readiness signal)."""
        return await asyncio.to_thread(bootstrap_reachable, self._settings.bootstrap, timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is buffered and close the producer's network thread. Never raises:
        shutdown must go on to close the pool even if the broker is gone."""
        await asyncio.to_thread(self._close, timeout)

    def _close(self, timeout: float) -> None:
        try:
            self._producer.close(timeout)
        except KafkaError as exc:  # flush timed out: records no call was answered ACCEPTED for
            log.warning("kafka producer closed with unacknowledged records: %s",
                        type(exc).__name__)
            sender = getattr(self._producer, "_sender", None)
            if sender is not None:  # what close() would have done after a clean flush
                sender.force_close()
                sender.join(timeout)


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
