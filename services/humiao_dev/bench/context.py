"""Where one benchmark run happens: the broker, the PostgreSQL server, the pseudonym key,
a working directory, and the databases and topics it creates (all removed at the end)."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from humiao.adapters.topics import ensure_topics
from humiao.config import KafkaSettings
from humiao_dev.stack.database import drop_database, ensure_database

log = logging.getLogger(__name__)


@dataclass
class BenchContext:
    bootstrap: str
    admin_dsn: str
    secret: bytes
    workdir: Path
    partitions: int
    #: extra environment for every verifier process (--verifier-env)
    verifier_env: dict[str, str] = field(default_factory=dict)
    #: leave the databases behind for inspection (--keep-databases)
    keep_databases: bool = False
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    databases: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)

    def kafka(self, tag: str, partitions: int | None = None) -> KafkaSettings:
        """Settings with a topic prefix of this run and tag; creates the topics."""
        settings = KafkaSettings(
            kafka_bootstrap_servers=self.bootstrap,
            humiao_topic_prefix=f"bench-{self.run_id}-{tag}.",
            humiao_partitions=partitions or self.partitions,
        )
        ensure_topics(settings)
        self.topics += [settings.events_topic, settings.alerts_topic, settings.deadletter_topic]
        return settings

    def new_database(self, tag: str) -> str:
        name = f"humiao_bench_{self.run_id}_{tag}"
        dsn = asyncio.run(ensure_database(self.admin_dsn, name))
        self.databases.append(name)
        return dsn

    def drop_database(self, dsn: str) -> None:
        if self.keep_databases:
            return
        name = dsn.rsplit("/", 1)[1].split("?", 1)[0]
        asyncio.run(drop_database(self.admin_dsn, name))
        if name in self.databases:
            self.databases.remove(name)

    def service_env(self, kafka: KafkaSettings, dsn: str, **extra: str) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": dsn,
            "HUMIAO_TOPIC_PREFIX": kafka.humiao_topic_prefix,
            "HUMIAO_PARTITIONS": str(kafka.humiao_partitions),
            "HUMIAO_LOG_LEVEL": "INFO",
            **extra,
        }

    def cleanup(self) -> None:
        """Drop every database of the run; delete its topics (best effort: the broker
        keeps them in memory)."""
        for name in list(self.databases):
            if self.keep_databases:
                log.warning("kept database %s", name)
                continue
            try:
                asyncio.run(drop_database(self.admin_dsn, name))
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("could not drop database %s: %s", name, exc)
        self.databases.clear()
        self.delete_topics(self.topics)
        self.topics.clear()

    def delete_topics(self, topics: list[str]) -> None:
        if not topics:
            return
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="humiao-bench")
            try:
                admin.delete_topics(topics)
            finally:
                admin.close()
        except Exception as exc:  # a broker without topic deletion keeps them; harmless
            log.info("topics not deleted (%s)", type(exc).__name__)
        for t in topics:
            if t in self.topics:
                self.topics.remove(t)


async def fetch_value(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def machine(bootstrap: str, external_broker: bool, admin_dsn: str) -> dict[str, Any]:
    """What the figures were measured on."""
    import platform

    import kafka

    try:
        import crc32c  # noqa: F401

        crc = True
    except ImportError:
        crc = False
    server = asyncio.run(fetch_value(admin_dsn, "SHOW server_version"))
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka_python": kafka.__version__,
        "crc32c_installed": crc,
        "broker": "external (KAFKA_BOOTSTRAP_SERVERS)" if external_broker
        else "embedded Tansu (memory storage)",
        "postgresql": str(server),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def env_pairs(pairs: list[str]) -> Mapping[str, str]:
    """KEY=VALUE strings (from the command line) as a mapping."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--verifier-env: expected KEY=VALUE, got {pair!r}")
        out[key] = value
    return out
