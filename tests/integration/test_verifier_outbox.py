"""The outbox relay against the real broker and PostgreSQL: a version the broker can
never take goes to the dead-letter topic with its reason, is counted, and does not hold
back the versions after it."""

from __future__ import annotations

import re

import asyncpg
import pytest
from prometheus_client import REGISTRY
from verifier_support import read_topic

from desk_support import REGION_A, VerifierDriver, unenrolled_payments
from humiao.adapters.db import create_pool
from humiao.adapters.outbox import OutboxRelay
from humiao.adapters.topics import ensure_topics
from humiao.config import KafkaSettings
from humiao.verifier.metrics import VerifierMetrics

pytestmark = [pytest.mark.integration]

#: Over kafka-python's default max_request_size (1 MiB) that the relay's producer keeps.
TOO_LARGE = 2 * 1024 * 1024
CITIZEN_ID = re.compile(rb"\d{17}[\dX]")


def _refused_count() -> float:
    value = REGISTRY.get_sample_value(
        "humiao_verifier_deadletters_total", {"reason": "unpublishable"}
    )
    return value or 0.0


async def test_a_version_too_large_is_dead_lettered_and_the_next_ones_are_published(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    ensure_topics(kafka_settings)
    pool = await create_pool(database_url)
    relay = OutboxRelay(pool, bootstrap=kafka_settings.bootstrap,
                        topic=kafka_settings.alerts_topic,
                        deadletter_topic=kafka_settings.deadletter_topic,
                        metrics=VerifierMetrics())
    try:
        await VerifierDriver(pool).feed(unenrolled_payments(REGION_A, 5))
        async with pool.acquire() as conn:
            seqs = [r["seq"] for r in await conn.fetch(
                "SELECT seq FROM alert_versions ORDER BY seq")]
            assert len(seqs) == 5
            bad = seqs[1]  # the second: three versions come after it
            await conn.execute("UPDATE alert_versions SET payload = $1 WHERE seq = $2",
                               b"\x00" * TOO_LARGE, bad)
            bad_alert = await conn.fetchval(
                "SELECT alert_id FROM alert_versions WHERE seq = $1", bad)
        before = _refused_count()

        assert await relay.relay_once() == 5
        assert await relay.relay_once() == 0  # nothing left behind, nothing blocked

        published = read_topic(kafka_settings, kafka_settings.alerts_topic)
        assert len(published) == 4
        assert bad_alert.encode() not in {r.key for r in published}
        letters = read_topic(kafka_settings, kafka_settings.deadletter_topic)
        assert len(letters) == 1
        headers = dict(letters[0].headers)
        assert headers["reason"] == b"unpublishable"
        assert headers["detail"] == b"MessageSizeTooLargeError"
        assert headers["alert-id"] == bad_alert.encode()
        assert headers["version"] == b"1"
        for value in [letters[0].key or b"", *headers.values()]:
            assert not CITIZEN_ID.search(value)
        assert _refused_count() == before + 1
        assert relay.published == 4
        conn = await asyncpg.connect(database_url)
        try:
            left = await conn.fetchval(
                "SELECT count(*) FROM alert_versions WHERE published_at IS NULL")
        finally:
            await conn.close()
        assert left == 0
    finally:
        await relay.close()
        await pool.close()
