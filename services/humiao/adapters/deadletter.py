"""Dead letters: what cannot go on goes to the dead-letter topic with its reason, and
processing goes on.

Two sources. Event records that cannot be decoded or validated go byte for byte, with
the reason and their origin (topic, partition, offset) in headers, produced and flushed
*before* the transaction that moves the offset past them commits: none is lost, a crash
in between produces it again (the origin headers identify duplicates). Alert versions
the broker refuses for good (too large, invalid) go from the outbox (outbox.py) with the
alert id, the version and the error; the version itself stays in `alert_versions`.
Reasons and details name fields and error kinds, never a national ID number.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from humiao.adapters.kafka_bridge import new_producer
from humiao.domain.identity import redact_ids_in_bytes
from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.processor import DeadLetter

log = logging.getLogger(__name__)

#: Header values are truncated to this many bytes (a hostile record may list many faults).
_MAX_DETAIL = 2000
#: Largest dead letter we try to produce whole; the events topic may hold bigger records.
MAX_REQUEST = 16 * 1024 * 1024
#: What is kept of a record too large for the dead-letter topic (with its full size noted).
_TRUNCATED = 64 * 1024


class Letter(NamedTuple):
    """One dead letter as produced."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def deadletter_headers(letter: DeadLetter, origin_topic: str) -> list[tuple[str, bytes]]:
    rec = letter.record
    return [
        ("reason", letter.reason.encode()),
        ("detail", redact_ids_in_bytes(letter.detail.encode()[:_MAX_DETAIL])),
        ("origin-topic", origin_topic.encode()),
        ("origin-partition", str(rec.partition).encode()),
        ("origin-offset", str(rec.offset).encode()),
        ("origin-timestamp", str(rec.timestamp).encode()),
    ]


class DeadLetterPublisher:
    """Owns a producer, created on first use from the thread that publishes (blocking)."""

    def __init__(
        self, bootstrap: str, topic: str, metrics: VerifierMetrics,
        client_id: str = "humiao-verifier-deadletter",
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.metrics = metrics
        self.client_id = client_id
        self._producer: KafkaProducer | None = None

    def _get(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = new_producer(
                self.bootstrap, self.client_id, acks="all", linger_ms=5,
                max_request_size=MAX_REQUEST,
            )
        return self._producer

    def publish(self, letters: Sequence[DeadLetter], origin_topic: str) -> None:
        """Produce every letter of event records and wait until the broker has them all
        (raises otherwise). ID-shaped text in key, value and detail is overwritten byte
        for byte: a dead letter never carries an ID number (docs/privacy.md)."""
        if not letters:
            return
        self.produce_all([
            Letter(redact_ids_in_bytes(d.record.key) if d.record.key is not None else None,
                   redact_ids_in_bytes(d.record.value or b""),
                   deadletter_headers(d, origin_topic))
            for d in letters
        ])
        for letter in letters:
            self.metrics.deadletter(letter.reason)
            log.warning(
                "dead letter reason=%s partition=%d offset=%d",
                letter.reason, letter.record.partition, letter.record.offset,
            )

    def produce_all(self, letters: Sequence[Letter]) -> None:
        """Produce and wait for every acknowledgement. A letter the broker refuses whole
        keeps its headers and a prefix (its full size noted), so it is accounted for and
        nothing stalls."""
        producer = self._get()
        futures = [self._send(producer, letter) for letter in letters]
        producer.flush()
        for letter, fut in zip(letters, futures, strict=True):
            try:
                fut.get(timeout=30)
            except MessageSizeTooLargeError:
                again = self._send(producer, letter, truncate=True)
                producer.flush()
                again.get(timeout=30)

    def _send(self, producer: KafkaProducer, letter: Letter, truncate: bool = False) -> Any:
        value, headers = letter.value, list(letter.headers)
        if truncate or len(value) > MAX_REQUEST - 64 * 1024:
            headers.append(("value-truncated-from", str(len(value)).encode()))
            value = value[:_TRUNCATED]
        try:
            return producer.send(self.topic, key=letter.key, value=value, headers=headers)
        except MessageSizeTooLargeError:
            if truncate:
                raise
            return self._send(producer, letter, truncate=True)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None
