"""How far the verifier has got: per partition, the offset committed with the state (in
PostgreSQL) against the end of the events topic. Used by `humiao ingest --wait`,
`humiao status` and tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
from kafka import KafkaConsumer, TopicPartition

from humiao.adapters.kafka_bridge import call_once
from humiao.adapters.offsets import stored_offsets
from humiao.adapters.topics import log_end_offsets
from humiao.config import KafkaSettings, kafka_security

DEFAULT_GROUP = "humiao-verifier"


@dataclass(frozen=True)
class PartitionProgress:
    partition: int
    committed: int  # next offset the verifier will read (state up to here is committed)
    end: int  # next offset the topic will get

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


def topic_bounds(
    settings: KafkaSettings, timeout: float = 30.0
) -> tuple[dict[int, int], dict[int, int]]:
    """(beginning, end) offsets of every partition of the events topic. Blocking.
    The end is the true log end (see humiao.adapters.topics.log_end_offsets)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap, client_id="humiao-progress",
        enable_auto_commit=False, **kafka_security()
    )
    try:
        parts = consumer.partitions_for_topic(settings.events_topic) or set()
        tps = [TopicPartition(settings.events_topic, p) for p in sorted(parts)]
        begin = consumer.beginning_offsets(tps) if tps else {}
    finally:
        consumer.close()
    ends = log_end_offsets(settings.bootstrap, settings.events_topic, timeout)
    return {tp.partition: off for tp, off in begin.items()}, ends


async def lag(
    db: str | asyncpg.Pool, settings: KafkaSettings, group: str = DEFAULT_GROUP
) -> list[PartitionProgress]:
    """Progress of every partition of the events topic (committed -1 counts as the start)."""
    begin, end = await call_once("humiao-progress", lambda: topic_bounds(settings))
    if isinstance(db, str):
        conn = await asyncpg.connect(db)
        try:
            stored = await stored_offsets(conn, group, settings.events_topic)
        finally:
            await conn.close()
    else:
        async with db.acquire() as conn:
            stored = await stored_offsets(conn, group, settings.events_topic)
    out = []
    for p in sorted(end):
        committed = stored.get(p, -1)
        out.append(PartitionProgress(p, max(committed, begin.get(p, 0)), end[p]))
    return out


async def caught_up(
    db: str | asyncpg.Pool, settings: KafkaSettings, group: str = DEFAULT_GROUP
) -> bool:
    """True when every record now on the events topic has its verdict committed."""
    return all(p.lag == 0 for p in await lag(db, settings, group))


async def wait_caught_up(
    db: str | asyncpg.Pool,
    settings: KafkaSettings,
    group: str = DEFAULT_GROUP,
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
) -> list[PartitionProgress]:
    """Poll until caught up; raises TimeoutError with the remaining lag otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        progress = await lag(db, settings, group)
        if all(p.lag == 0 for p in progress):
            return progress
        if loop.time() > deadline:
            remaining = {p.partition: p.lag for p in progress if p.lag}
            raise TimeoutError(f"verifier not caught up after {timeout:.0f}s; lag {remaining}")
        await asyncio.sleep(interval)


def lag_sync(
    dsn: str, settings: KafkaSettings, group: str = DEFAULT_GROUP
) -> list[PartitionProgress]:
    """For synchronous callers (the CLI)."""
    return asyncio.run(lag(dsn, settings, group))
