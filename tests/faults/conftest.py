"""Fixtures of the fault suite: per-test topics with a chosen partition count, and a
working directory for logs and ready files. The real broker and PostgreSQL come from
tests/conftest.py; nothing here mocks either."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from humiao.adapters.topics import ensure_topics
from humiao.config import KafkaSettings
from humiao.stack.database import drop_database, ensure_database

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # fault_support, whichever directory pytest started from
    sys.path.insert(0, str(HERE))


@pytest.fixture
async def make_database(admin_dsn: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Fresh empty databases (a test comparing two runs needs two); dropped after."""
    made: list[str] = []

    async def make() -> str:
        name = f"humiao_fault_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return await ensure_database(admin_dsn, name)

    try:
        yield make
    finally:
        for name in made:
            await drop_database(admin_dsn, name)


@pytest.fixture
def make_topics(kafka_bootstrap: str) -> Callable[..., KafkaSettings]:
    """Fresh topics (events, alerts, dead letters) under a prefix of their own."""

    def make(partitions: int = 4, bootstrap: str | None = None) -> KafkaSettings:
        settings = KafkaSettings(
            kafka_bootstrap_servers=bootstrap or kafka_bootstrap,
            humiao_topic_prefix=f"f{uuid.uuid4().hex[:10]}.",
            humiao_partitions=partitions,
        )
        ensure_topics(settings)
        return settings

    return make
