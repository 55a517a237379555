"""Composition root of the verifier: settings from the environment, topics, pool, the
consumer thread and the outbox relay, served by `run_grpc_service` (health, reflection,
metrics; the verifier has no API of its own).

`Verifier` is also what tests run in-process (several in one process share a group).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import uuid

import asyncpg

from humiao.adapters.db import create_pool
from humiao.adapters.deadletter import DeadLetterPublisher
from humiao.adapters.outbox import OutboxRelay
from humiao.adapters.topics import ensure_topics
from humiao.adapters.verifier_consumer import ConsumerLoop
from humiao.config import (
    DatabaseSettings,
    KafkaSettings,
    PrivacySettings,
    ServiceSettings,
    refuse_development_secrets,
)
from humiao.domain.policy import PolicyBook
from humiao.runtime import run_grpc_service, setup_logging
from humiao.verifier.collector import BatchCollector
from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.processor import Processor
from humiao.verifier.settings import VerifierSettings

log = logging.getLogger(__name__)


class Verifier:
    """One verifier: a consumer-group member plus an outbox relay, sharing a pool."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        dsn: str,
        secret: bytes,
        settings: VerifierSettings | None = None,
        policies: PolicyBook | None = None,
        pool_min: int = 1,
        pool_max: int = 4,
        name: str | None = None,
        collector: BatchCollector | None = None,
    ) -> None:
        self.kafka = kafka
        self.collector = collector
        self.dsn = dsn
        self.secret = secret
        self.settings = settings or VerifierSettings()
        if policies is None:
            path = self.settings.humiao_policy_file
            policies = PolicyBook.load(path) if path else PolicyBook.default()
        self.policies = policies
        self.pool_min = pool_min
        self.pool_max = pool_max
        self.name = name or f"humiao-verifier-{uuid.uuid4().hex[:6]}"
        self.metrics = VerifierMetrics()
        self.pool: asyncpg.Pool | None = None
        self.consumer: ConsumerLoop | None = None
        self.relay: OutboxRelay | None = None
        self._relay_stop = asyncio.Event()
        self._relay_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the pool (migrating the schema), start the relay and the consumer thread."""
        self.pool = await create_pool(self.dsn, min_size=self.pool_min, max_size=self.pool_max)
        pool = self.pool
        self.metrics.watch_pool(pool)
        s = self.settings
        self.relay = OutboxRelay(
            pool,
            bootstrap=self.kafka.bootstrap,
            topic=self.kafka.alerts_topic,
            deadletter_topic=self.kafka.deadletter_topic,
            metrics=self.metrics,
            batch=s.humiao_verifier_outbox_batch,
        )
        loop = asyncio.get_running_loop()
        relay = self.relay

        def nudge() -> None:
            loop.call_soon_threadsafe(relay.wake)

        processor = Processor(
            group=s.humiao_verifier_group,
            secret=self.secret,
            signing_secret=self.kafka.record_signing_secret,
            policies=self.policies,
            metrics=self.metrics,
            decoded_cache=s.humiao_verifier_decoded_cache,
            cached_children=s.humiao_verifier_cached_children,
            cached_facts=s.humiao_verifier_cached_facts,
        )
        self.consumer = ConsumerLoop(
            bootstrap=self.kafka.bootstrap,
            topic=self.kafka.events_topic,
            group=s.humiao_verifier_group,
            dsn=self.dsn,
            processor=processor,
            deadletters=DeadLetterPublisher(
                self.kafka.bootstrap, self.kafka.deadletter_topic, self.metrics
            ),
            metrics=self.metrics,
            batch_max=s.humiao_verifier_batch_max,
            linger_ms=s.humiao_verifier_linger_ms,
            session_timeout_ms=s.humiao_verifier_session_timeout_ms,
            client_id=self.name,
            on_commit=nudge,
            collector=self.collector,
        )
        self._relay_task = asyncio.create_task(relay.run(self._relay_stop))
        self.consumer.start()
        log.info("verifier %s started group=%s", self.name, s.humiao_verifier_group)

    async def ready(self) -> bool:
        """PostgreSQL answers, the broker answers, and the consumer thread is alive."""
        if self.pool is None or self.consumer is None or self.consumer.failure is not None:
            return False
        async with self.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
        return self.consumer.broker_ok

    async def stop(self) -> None:
        """Finish the in-flight batch, leave the group, drain the relay, close the pool."""
        if self.consumer is not None:
            self.consumer.request_stop()
            await self.consumer.wait_stopped()
        self._relay_stop.set()
        if self._relay_task is not None:
            await self._relay_task
        if self.relay is not None:
            try:
                await asyncio.wait_for(self.relay.relay_once(), 10)
            except Exception as exc:  # the next process publishes what is left
                log.warning("final outbox round skipped: %s", type(exc).__name__)
            await self.relay.close()
        if self.pool is not None:
            await self.pool.close()
        log.info("verifier %s stopped", self.name)

    async def run_consumer_until(self, stop: asyncio.Event) -> None:
        """Background job for run_grpc_service: stop the service if the consumer dies."""
        assert self.consumer is not None
        while not stop.is_set():
            if self.consumer.failure is not None:
                log.error("consumer thread failed; stopping the service")
                stop.set()
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def tune_gc(full_seconds: int) -> BatchCollector | None:
    """The verifier allocates many small, acyclic, long-lived objects (decoded facts in
    its memory): the cyclic collector runs between batches (collector.py), or, with
    `full_seconds` 0, CPython's own collects young objects less often than by default."""
    if full_seconds > 0:
        collector = BatchCollector(full_seconds=full_seconds)
        collector.start()
        return collector
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    return None


async def serve() -> int:
    kafka = KafkaSettings()
    db = DatabaseSettings()
    svc = ServiceSettings()
    settings = VerifierSettings()
    setup_logging(svc.humiao_log_level)
    collector = tune_gc(settings.humiao_verifier_gc_full_seconds)
    if not kafka.kafka_bootstrap_servers:
        raise SystemExit("humiao.verifier: KAFKA_BOOTSTRAP_SERVERS is not set")
    privacy = PrivacySettings()
    refuse_development_secrets("verifier", {
        "HUMIAO_PSEUDONYM_KEY": privacy.humiao_pseudonym_key.get_secret_value(),
        "HUMIAO_RECORD_SIGNING_KEY": kafka.humiao_record_signing_key.get_secret_value(),
    })
    ensure_topics(kafka)
    verifier = Verifier(
        kafka=kafka,
        dsn=db.required_dsn("verifier"),
        secret=privacy.secret,
        settings=settings,
        pool_min=db.humiao_db_pool_min,
        pool_max=db.humiao_db_pool_max,
        name=os.environ.get("HUMIAO_VERIFIER_CLIENT_ID") or None,
        collector=collector,
    )
    delay = 0.5
    while True:  # PostgreSQL may come up after us: wait for it rather than crash
        try:
            await verifier.start()
            break
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.warning("database unavailable at start (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)
    await run_grpc_service(
        "verifier",
        svc,
        [],
        verifier.ready,
        background=[verifier.run_consumer_until],
        on_stop=verifier.stop,
    )
    assert verifier.consumer is not None
    return 1 if verifier.consumer.failure is not None else 0


def main() -> int:
    return asyncio.run(serve())
