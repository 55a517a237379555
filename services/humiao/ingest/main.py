"""The ingest gateway's composition root: settings from the environment, dependencies,
readiness, and the gRPC service. `python -m humiao.ingest` runs `main()`.

The service starts even when Kafka or PostgreSQL do not answer yet: it keeps trying in
the background, reports NOT_SERVING (and answers calls UNAVAILABLE) until both are
reachable, so a stack can start its parts in any order.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from pydantic import ValidationError

from humiao.adapters.db import create_pool
from humiao.adapters.publisher import EventPublisher, PublisherOptions
from humiao.adapters.topics import ensure_topics
from humiao.api.ingest.v1 import ingest_pb2_grpc
from humiao.config import (
    DatabaseSettings,
    KafkaSettings,
    PrivacySettings,
    ServiceSettings,
    refuse_development_secrets,
)
from humiao.ingest.api import (
    SERVICE_NAME,
    UNAUTHENTICATED_MESSAGE,
    Dependencies,
    IngestServicer,
)
from humiao.ingest.credentials import (
    CredentialsError,
    CredentialStore,
    load_credentials,
)
from humiao.ingest.metrics import CALLS, DB_POOL
from humiao.ingest.settings import IngestSettings
from humiao.runtime import Registration, run_grpc_service, setup_logging

log = logging.getLogger("humiao.ingest")

def database_dsn(settings: DatabaseSettings) -> str:
    return settings.required_dsn("ingest")


async def connect(
    deps: Dependencies,
    kafka: KafkaSettings,
    db: DatabaseSettings,
    dsn: str,
    secret: bytes,
    stop: asyncio.Event,
    options: PublisherOptions | None = None,
) -> None:
    """Retry until PostgreSQL (migrated) and Kafka (topics, producer) both answer."""
    delay = 0.25
    while not stop.is_set():
        if deps.pool is None:
            try:
                deps.pool = await create_pool(
                    dsn, min_size=db.humiao_db_pool_min, max_size=db.humiao_db_pool_max
                )
                DB_POOL.track(deps.pool)
                log.info("postgresql connected")
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("postgresql not reachable yet: %s", type(exc).__name__)
        if deps.publisher is None:
            try:
                await asyncio.to_thread(ensure_topics, kafka)
                deps.publisher = await EventPublisher.open(kafka, secret, options)
                log.info("kafka connected, topic=%s", kafka.events_topic)
            except Exception as exc:  # kafka-python raises many kinds; any means "not yet"
                log.warning("kafka not reachable yet: %s", type(exc).__name__)
        if deps.pool is not None and deps.publisher is not None:
            deps.ready.set()
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            delay = min(delay * 2, 5.0)


async def readiness(deps: Dependencies) -> bool:
    """SERVING only while PostgreSQL answers SELECT 1 and Kafka is usable: a broker accepts
    connections and, after a failed publish, a fresh producer has reached it again."""
    if not deps.ready.is_set() or deps.pool is None or deps.publisher is None:
        return False
    async with deps.pool.acquire(timeout=2.0) as conn:
        await conn.fetchval("SELECT 1")
    return await deps.publisher.ready()


async def close(deps: Dependencies) -> None:
    """After the server drained in-flight calls: flush and close the producer, then the pool."""
    if deps.publisher is not None:
        await deps.publisher.close()
    if deps.pool is not None:
        await deps.pool.close()


async def serve(stop: asyncio.Event | None = None) -> None:
    """Run the gateway until SIGTERM/SIGINT (or `stop`)."""
    service = ServiceSettings()
    settings = IngestSettings()
    kafka = KafkaSettings()
    db = DatabaseSettings()
    privacy = PrivacySettings()
    setup_logging(service.humiao_log_level)
    credentials: CredentialStore = load_credentials(settings.credentials_spec)
    log.info("loaded %d source credentials", len(credentials))
    refuse_development_secrets("ingest", {
        "HUMIAO_PSEUDONYM_KEY": privacy.humiao_pseudonym_key.get_secret_value(),
        "HUMIAO_RECORD_SIGNING_KEY": kafka.humiao_record_signing_key.get_secret_value(),
    }, credentials.token_hashes())
    kafka.bootstrap  # noqa: B018 (fail fast with a clear message if unset)
    options = settings.publisher_options()
    dsn = await asyncio.to_thread(database_dsn, db)
    deps = Dependencies()
    servicer = IngestServicer(deps, credentials, pseudonym_key=privacy.secret)

    async def connect_job(stop_event: asyncio.Event) -> None:
        await connect(deps, kafka, db, dsn, privacy.secret, stop_event, options)

    async def probe() -> bool:
        return await readiness(deps)

    async def on_stop() -> None:
        await close(deps)

    await run_grpc_service(
        "ingest",
        service,
        [Registration(ingest_pb2_grpc.add_IngestServiceServicer_to_server, servicer,
                      SERVICE_NAME)],
        probe,
        known_token=servicer.knows,
        calls=CALLS,
        refusal=UNAUTHENTICATED_MESSAGE,
        background=[connect_job],
        on_stop=on_stop,
        stop=stop,
    )


def main() -> int:
    try:
        asyncio.run(serve())
    except (CredentialsError, RuntimeError, ValidationError) as exc:  # say what, no traceback
        logging.basicConfig()
        log.error("cannot start: %s", exc)
        return 2
    return 0
