"""Shared fixtures: the real broker and the real PostgreSQL, each test with its own
topics and its own database (created here and dropped after)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from humiao.config import KafkaSettings
from humiao_dev.stack.broker import EmbeddedBroker, start_broker
from humiao_dev.stack.database import drop_database, ensure_database, resolve_admin_dsn

ROOT = Path(__file__).resolve().parents[1]
#: The tests run the services with development secrets, as the local stack does; every
#: process they start inherits it (tests/integration/test_edge.py tries without).
os.environ.setdefault("HUMIAO_DEVELOPMENT", "true")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS if set, else an embedded broker for the whole session."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    broker: EmbeddedBroker = start_broker()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    return resolve_admin_dsn(os.environ.get("DATABASE_URL"), ROOT / ".humiao" / "pgdata")


@pytest.fixture
async def database_url(admin_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    name = f"humiao_test_{uuid.uuid4().hex[:12]}"
    dsn = await ensure_database(admin_dsn, name)
    try:
        yield dsn
    finally:
        await drop_database(admin_dsn, name)


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Settings with a topic prefix of this test's own."""
    return KafkaSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        humiao_topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        humiao_partitions=4,
    )


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """A test must not leave threads behind (consumers, producers, servers)."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.daemon
    ]
    for t in leaked:
        t.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads leaked by the test: {still}"
