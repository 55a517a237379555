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
