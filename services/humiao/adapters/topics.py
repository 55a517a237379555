"""Topic layout and routing: which partition(s) each fact goes to.

One events topic, keyed by the child's pseudonymous key with Kafka's default
(murmur2) partitioner, so one consumer sees every fact about a child in order.
Facts that are not about one child (person, region and reference facts) are
copied to every partition: each partition then meets them in its own order, so a
fact and a child's reference to its subject can never race across instances.
"""

from __future__ import annotations

import contextlib
import logging
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from humiao.config import KafkaSettings, kafka_security
from humiao.domain.events import CHILD_KINDS, Envelope
from humiao.domain.identity import pseudonym

log = logging.getLogger(__name__)


def partition_for_key(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (the Java client's murmur2), positive modulo."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def routing_key(envelope: Envelope, secret: bytes) -> tuple[bytes, bool]:
    """(Kafka key, broadcast?) for an envelope. Keys never carry an ID number."""
    body = envelope.body
    if envelope.kind in CHILD_KINDS:
        return pseudonym(secret, body.child_id).encode(), False  # type: ignore[union-attr]
    subject = (
        getattr(body, "person_id", None)
        or getattr(body, "disbursement_id", None)
        or getattr(body, "retracted_event_id", None)
        or getattr(body, "region", "")
    )
    return pseudonym(secret, str(subject)).encode(), True


def ensure_topics(settings: KafkaSettings) -> None:
    """Create the events, alerts and dead-letter topics if missing (idempotent)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="humiao-admin",
                             **kafka_security())
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, settings.humiao_partitions, settings.humiao_replication_factor)
            for name in (settings.events_topic, settings.alerts_topic, settings.deadletter_topic)
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                admin.create_topics(wanted)
            log.info("created topics %s", [t.name for t in wanted])
    finally:
        admin.close()


def log_end_offsets(bootstrap: str, topic: str, timeout: float = 30.0) -> dict[int, int]:
    """The next offset of every partition of `topic`, from a fetch's high watermark.

    Not ListOffsets (KafkaConsumer.end_offsets) alone: the embedded broker (Tansu 0.6,
    memory storage) answers it with the base offset of the last record batch plus one,
    short of the end. Its answer still lands inside the last batch, so one small fetch
    from there gives the true high watermark (on Apache Kafka both agree). Blocking."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="humiao-log-ends",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=1024,
        **kafka_security(),
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        reported = consumer.end_offsets(tps) if tps else {}
        ends = {tp.partition: 0 for tp in tps if reported[tp] == 0}
        todo = [tp for tp in tps if reported[tp] > 0]
        if todo:
            consumer.assign(todo)
            for tp in todo:
                consumer.seek(tp, reported[tp] - 1)
            deadline = time.monotonic() + timeout
            while todo:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no high watermark for {topic} {todo}")
                consumer.poll(timeout_ms=100, max_records=1)
                for tp in list(todo):
                    high = consumer.highwater(tp)
                    if high is not None:
                        ends[tp.partition] = int(high)
                        todo.remove(tp)
        return ends
    finally:
        consumer.close(autocommit=False)
