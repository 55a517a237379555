"""The local stack's parts: the broker takes topics, the database takes the schema."""

from __future__ import annotations

import asyncpg
import pytest
from kafka import KafkaAdminClient

from humiao.adapters.db import create_pool, migrate
from humiao.adapters.topics import ensure_topics
from humiao.config import KafkaSettings

pytestmark = pytest.mark.integration


def test_topics_created_once_with_configured_partitions(kafka_settings: KafkaSettings) -> None:
    ensure_topics(kafka_settings)
    ensure_topics(kafka_settings)  # idempotent
    admin = KafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap)
    try:
        described = admin.describe_topics([kafka_settings.events_topic])
    finally:
        admin.close()
    assert len(described[0]["partitions"]) == kafka_settings.humiao_partitions


async def test_migrations_apply_once(database_url: str) -> None:
    pool = await create_pool(database_url)
    try:
        async with pool.acquire() as conn:
            assert await migrate(conn) == []  # already applied by create_pool
            versions = await conn.fetchval("SELECT count(*) FROM schema_migrations")
            assert versions >= 1
            await conn.execute("SELECT alert_id FROM alerts LIMIT 1")
    finally:
        await pool.close()
    conn2 = await asyncpg.connect(database_url)
    await conn2.close()


def test_log_end_offsets_are_the_true_ends(kafka_settings: KafkaSettings) -> None:
    """Records sent in one batch: ListOffsets on the embedded broker can fall short of
    the end, the high-watermark reading must not."""
    from kafka import KafkaProducer

    from humiao.adapters.topics import log_end_offsets

    ensure_topics(kafka_settings)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, linger_ms=200)
    try:
        for i in range(50):
            producer.send(kafka_settings.events_topic, value=b"x%d" % i, partition=1)
        producer.flush()
    finally:
        producer.close()
    ends = log_end_offsets(kafka_settings.bootstrap, kafka_settings.events_topic)
    assert ends == {p: (50 if p == 1 else 0) for p in range(kafka_settings.humiao_partitions)}
