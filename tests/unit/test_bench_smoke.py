"""A tiny smoke of the benchmark's Kafka harness against the real (session) broker:
produce with the gateway's routing, find the true end offsets, and time a raw read."""

from __future__ import annotations

import uuid

import pytest

from humiao.adapters.topics import ensure_topics
from humiao.config import KafkaSettings
from humiao_dev.bench.verifier_runs import decode_consume, end_offsets, raw_consume
from humiao_dev.bench.workload import memory_records, produce

pytestmark = pytest.mark.integration


def test_produce_then_raw_consume_reads_every_record(kafka_bootstrap: str) -> None:
    settings = KafkaSettings(kafka_bootstrap_servers=kafka_bootstrap,
                             humiao_topic_prefix=f"benchsmoke{uuid.uuid4().hex[:8]}.",
                             humiao_partitions=2)
    ensure_topics(settings)
    events, records = produce(kafka_bootstrap, settings.events_topic, 2,
                              memory_records(300, b"key"))
    assert events == 6 + 300 * 3
    assert records == events + 6  # the six standards go to both partitions
    end = end_offsets(settings)
    assert sum(end.values()) == records
    assert all(n > 0 for n in end.values())
    result = raw_consume(kafka_bootstrap, settings.events_topic, records, batch_max=500)
    assert result["records"] == records
    assert result["records_per_s"] > 0
    # the decode ceiling decodes every record: the well-formed ones all validate
    decoded = decode_consume(kafka_bootstrap, settings.events_topic, records, batch_max=500)
    assert decoded["records"] == records and decoded["invalid"] == 0
