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

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from humiao.config import KafkaSettings
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
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="humiao-admin")
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
