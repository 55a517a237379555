"""The verifier's poll against the real broker: a poll that must not wait (a decoded batch
is ready) still takes what is there, so the next batch decodes while the ready one is in
its transaction; batches stop at batch_max; a short tail is not waited for.

(The embedded broker answers a fetch with everything it holds, so the filling of a batch
across fetches under a backlog shows in `make bench` (batches of batch_max instead of one
fetch's worth), not here.)"""

from __future__ import annotations

from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from humiao.adapters.kafka_bridge import new_producer
from humiao.adapters.verifier_consumer import ConsumerLoop
from humiao.config import KafkaSettings

pytestmark = [pytest.mark.integration]


def _topic_with_small_batches(settings: KafkaSettings, records: int) -> str:
    """One partition holding `records` records, each in a record batch of its own."""
    topic = f"{settings.humiao_topic_prefix}poll"
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    producer = new_producer(settings.bootstrap, "humiao-tests", linger_ms=0)
    try:
        for i in range(records):
            producer.send(topic, value=b"record %d" % i, partition=0)
            producer.flush()
    finally:
        producer.close()
    return topic


def _loop(batch_max: int) -> ConsumerLoop:
    """A consumer loop for its poll only: nothing of it processes or publishes."""
    unused: Any = None
    loop = ConsumerLoop(
        bootstrap="unused", topic="unused", group="unused", dsn="unused",
        processor=unused, deadletters=unused, metrics=unused,
        batch_max=batch_max, linger_ms=0,
    )
    loop._positions = {0: 0}
    return loop


def test_a_poll_without_waiting_takes_what_is_there_up_to_batch_max(
    kafka_settings: KafkaSettings,
) -> None:
    topic = _topic_with_small_batches(kafka_settings, 100)
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap, enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        loop = _loop(batch_max=40)
        first = loop._poll(consumer, wait=True)
        second = loop._poll(consumer, wait=False)
        assert [r.offset for r in first] == list(range(40))
        assert [r.offset for r in second] == list(range(40, 80))
        # 20 left: less than the batch holds, so no filling; the rest comes as it comes.
        rest: list[Any] = []
        for _ in range(200):
            rest.extend(loop._poll(consumer, wait=True))
            if len(rest) == 20:
                break
        assert [r.offset for r in rest] == list(range(80, 100))
    finally:
        consumer.close()
