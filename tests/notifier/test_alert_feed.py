"""The Kafka adapter on its own (the real broker): where a partition starts, what a batch
says about stored positions, and that a rewind reads again from the stored position."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from kafka import KafkaProducer

from humiao.adapters.alert_feed import AlertFeed, FeedBatch
from humiao.adapters.topics import ensure_topics
from humiao.config import KafkaSettings

pytestmark = pytest.mark.integration


def produce(settings: KafkaSettings, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    try:
        for v in values:
            producer.send(settings.alerts_topic, value=v, partition=0)
        producer.flush()
    finally:
        producer.close()


async def collect(feed: AlertFeed, want: int, rounds: int = 60) -> list[FeedBatch]:
    batches: list[FeedBatch] = []
    for _ in range(rounds):
        batch = await feed.next_batch(timeout=0.5)
        if batch.records:
            batches.append(batch)
        if sum(len(b.records) for b in batches) >= want:
            break
    return batches


@pytest.mark.parametrize("latest", [False, True])
async def test_a_new_group_starts_at_the_beginning_or_the_end(
    kafka_settings: KafkaSettings, latest: bool
) -> None:
    ensure_topics(kafka_settings)
    produce(kafka_settings, [b"old-1", b"old-2"])
    stored: dict[int, int] = {}

    async def positions() -> dict[int, int]:
        return dict(stored)

    feed = AlertFeed(bootstrap=kafka_settings.bootstrap, topic=kafka_settings.alerts_topic,
                     group=f"feed-{uuid.uuid4().hex[:8]}", positions=positions,
                     session_timeout_ms=6000, start_from_latest=latest)
    await feed.start()
    try:
        if latest:  # join the group and find the end before anything new arrives
            assert await collect(feed, 1, rounds=12) == []
        produce(kafka_settings, [b"new-1"])
        batches = await collect(feed, 1 if latest else 3)
        values = [r.value for b in batches for r in b.records]
        assert values == ([b"new-1"] if latest else [b"old-1", b"old-2", b"new-1"])
        first = batches[0]
        assert first.start == {0: -1}  # nothing stored yet: what the fence compares
        feed.committed(batches[-1])
        stored.update(batches[-1].end)
        assert stored[0] == 3
        # a failed transaction: rewind, and the same records come again from stored
        stored[0] = 2
        await feed.rewind()
        again = await collect(feed, 1)
        assert [r.offset for b in again for r in b.records] == [2]
        assert again[0].start == {0: 2} and again[0].end == {0: 3}
    finally:
        await feed.close()
    await asyncio.sleep(0)
