"""Fixtures of the fault suite: per-test topics with a chosen partition count, and a
working directory for logs and ready files. The real broker and PostgreSQL come from
tests/conftest.py; nothing here mocks either."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from humiao.config import KafkaSettings
from humiao_dev.stack.database import drop_database, ensure_database

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # fault_support, whichever directory pytest started from
    sys.path.insert(0, str(HERE))

from fault_support import database_name, new_topics  # noqa: E402  (needs the path above)


@pytest.fixture
async def make_database(admin_dsn: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Fresh empty databases (a test comparing two runs needs two); dropped after."""
    made: list[str] = []

    async def make() -> str:
        name = database_name()
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
        return new_topics(bootstrap or kafka_bootstrap, partitions)

    return make
