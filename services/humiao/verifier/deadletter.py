"""Dead letters: records that cannot be decoded or validated go, byte for byte, to the
dead-letter topic with the reason and their origin in headers; processing goes on.

They are produced and flushed *before* the transaction that moves the offset past them
commits, so none is lost; a crash in between produces it again (at-least-once). The
origin headers (topic, partition, offset) identify duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.processor import DeadLetter

log = logging.getLogger(__name__)

#: Header values are truncated to this many bytes (a hostile record may list many faults).
_MAX_DETAIL = 2000
#: Largest dead letter we try to produce whole; the events topic may hold bigger records.
MAX_REQUEST = 16 * 1024 * 1024
#: What is kept of a record too large for the dead-letter topic (with its full size noted).
_TRUNCATED = 64 * 1024


def deadletter_headers(letter: DeadLetter, origin_topic: str) -> list[tuple[str, bytes]]:
    rec = letter.record
    return [
        ("reason", letter.reason.encode()),
        ("detail", letter.detail.encode()[:_MAX_DETAIL]),
        ("origin-topic", origin_topic.encode()),
        ("origin-partition", str(rec.partition).encode()),
        ("origin-offset", str(rec.offset).encode()),
        ("origin-timestamp", str(rec.timestamp).encode()),
    ]


class DeadLetterPublisher:
    """Owns a producer (created on first use, from the consumer thread)."""

    def __init__(self, bootstrap: str, topic: str, metrics: VerifierMetrics) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.metrics = metrics
        self._producer: KafkaProducer | None = None

    def _get(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id="humiao-verifier-deadletter",
                acks="all",
                linger_ms=5,
                max_request_size=MAX_REQUEST,
            )
        return self._producer

    def publish(self, letters: Sequence[DeadLetter], origin_topic: str) -> None:
        """Produce every letter and wait until the broker has them all (raises otherwise)."""
        if not letters:
            return
        producer = self._get()
        futures = [self._send(producer, letter, origin_topic) for letter in letters]
        producer.flush()
        for letter, fut in zip(letters, futures, strict=True):
            try:
                fut.get(timeout=30)
            except MessageSizeTooLargeError:
                # The broker refuses it whole: keep the origin, the reason and a prefix,
                # so the record is accounted for and the partition does not stall.
                again = self._send(producer, letter, origin_topic, truncate=True)
                producer.flush()
                again.get(timeout=30)
        for letter in letters:
            self.metrics.deadletter(letter.reason)
            log.warning(
                "dead letter reason=%s partition=%d offset=%d",
                letter.reason,
                letter.record.partition,
                letter.record.offset,
            )

    def _send(
        self, producer: KafkaProducer, letter: DeadLetter, origin_topic: str,
        truncate: bool = False,
    ) -> Any:
        value = letter.record.value or b""
        headers = deadletter_headers(letter, origin_topic)
        if truncate or len(value) > MAX_REQUEST - 64 * 1024:
            headers.append(("value-truncated-from", str(len(value)).encode()))
            value = value[:_TRUNCATED]
        try:
            return producer.send(
                self.topic, key=letter.record.key, value=value, headers=headers
            )
        except MessageSizeTooLargeError:
            if truncate:
                raise
            return self._send(producer, letter, origin_topic, truncate=True)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None
