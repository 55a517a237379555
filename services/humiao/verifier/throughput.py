"""Measure the verifier against raw kafka-python on the same topic, in the same run.

    python -m humiao.verifier.throughput --children 6000 --months 24

Publishes a synthetic city (humiao.verifier.synthetic, in recording order) to a fresh
events topic, times a plain KafkaConsumer reading it all (no decoding), then times one
verifier (in this process: one consumer thread, state in a fresh PostgreSQL database)
from partition assignment until every record's verdict is committed. Prints JSON.
Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else the local stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from humiao.adapters.codec import envelope_to_proto
from humiao.adapters.topics import ensure_topics, routing_key
from humiao.config import KafkaSettings, PrivacySettings
from humiao.domain import events as ev
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_child
from humiao.stack.database import drop_database, ensure_database, resolve_admin_dsn
from humiao.verifier.service import Verifier, VerifierSettings, tune_gc
from humiao.verifier.synthetic import History, city

ROOT = Path(__file__).resolve().parents[3]


def produce(settings: KafkaSettings, history: History, secret: bytes) -> int:
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap, linger_ms=20, batch_size=256 * 1024, acks=1
    )
    n = 0
    try:
        for env in history.envelopes:
            key, broadcast = routing_key(env, secret)
            value = envelope_to_proto(env).SerializeToString()
            if broadcast:
                for p in range(settings.humiao_partitions):
                    producer.send(settings.events_topic, key=key, value=value, partition=p)
                    n += 1
            else:
                producer.send(settings.events_topic, key=key, value=value)
                n += 1
        producer.flush()
    finally:
        producer.close()
    return n


def expected_alert_ids(history: History, secret: bytes) -> set[str]:
    """The alert ids the domain core concludes from the whole history (keyed by `secret`)."""
    own: dict[str, list[ev.Envelope]] = {}
    shared: list[ev.Envelope] = []
    for env in history.envelopes:
        cid = env.child_id() if env.kind in ev.CHILD_KINDS else None
        if cid is None:
            shared.append(env)
        else:
            own.setdefault(cid, []).append(env)
    policies = PolicyBook.default()
    return {
        d.id_under(secret)
        for cid in history.child_ids
        for d in evaluate_child(cid, own.get(cid, []) + shared, policies)
    }


def raw_consume(settings: KafkaSettings, expected: int) -> float:
    """Seconds kafka-python takes to read `expected` records (assigned, no group)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap,
        enable_auto_commit=False,
        max_poll_records=5000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        tps = [TopicPartition(settings.events_topic, p) for p in range(settings.humiao_partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        got = 0
        start = time.perf_counter()
        while got < expected:
            for recs in consumer.poll(timeout_ms=500).values():
                got += len(recs)
        return time.perf_counter() - start
    finally:
        consumer.close()


async def run_verifier(
    settings: KafkaSettings, dsn: str, expected: int, batch: int, secret: bytes
) -> dict[str, Any]:
    verifier = Verifier(
        kafka=settings,
        dsn=dsn,
        secret=secret,
        settings=VerifierSettings(
            humiao_verifier_group="throughput", humiao_verifier_batch_max=batch
        ),
    )
    await verifier.start()
    conn = await asyncpg.connect(dsn)
    try:
        assert verifier.consumer is not None
        while not verifier.consumer._positions:  # assigned and seeked: the clock starts
            await asyncio.sleep(0.01)
        start = time.perf_counter()
        while True:
            done = await conn.fetchval(
                "SELECT coalesce(sum(greatest(next_offset, 0)), 0) FROM consumer_offsets"
                " WHERE consumer_group = 'throughput'"
            )
            if done >= expected:
                break
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - start
        alerts = await conn.fetchval("SELECT count(*) FROM alerts")
        implied = {r["alert_id"] for r in await conn.fetch(
            "SELECT alert_id FROM alerts WHERE implied")}
        versions = await conn.fetchval("SELECT count(*) FROM alert_versions")
        withdrawn = {r["code"]: r["n"] for r in await conn.fetch(
            "SELECT code, count(*) AS n FROM alerts WHERE NOT implied GROUP BY code")}
        return {
            "withdrawn_by_code": withdrawn,
            "seconds": seconds,
            "batches": verifier.consumer.batches,
            "alerts": alerts,
            "alert_versions": versions,
            "implied": implied,
        }
    finally:
        await conn.close()
        await verifier.stop()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        from humiao.stack.broker import start_broker

        broker = start_broker()
        bootstrap = broker.bootstrap
    admin = resolve_admin_dsn(os.environ.get("DATABASE_URL"), ROOT / ".humiao" / "pgdata")
    db_name = f"humiao_throughput_{uuid.uuid4().hex[:8]}"
    dsn = await ensure_database(admin, db_name)
    settings = KafkaSettings(
        kafka_bootstrap_servers=bootstrap,
        humiao_topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
        humiao_partitions=args.partitions,
    )
    secret = PrivacySettings().secret
    try:
        ensure_topics(settings)
        t = time.perf_counter()
        history = city(args.children, months=args.months)
        records = produce(settings, history, secret)
        produced_s = time.perf_counter() - t
        raw_s = raw_consume(settings, records)
        result = await run_verifier(settings, dsn, records, args.batch, secret)
        raw_rate = records / raw_s
        check: dict[str, Any] = {}
        if args.check:
            expected = expected_alert_ids(history, secret)
            check = {"implied_alerts": len(result["implied"]), "expected_alerts": len(expected),
                     "match": result["implied"] == expected}
        rate = records / result["seconds"]
        return {
            "records": records,
            "children": args.children,
            "months": args.months,
            "partitions": args.partitions,
            "batch_max": args.batch,
            "produce_seconds": round(produced_s, 2),
            "raw_consume_records_per_s": round(raw_rate),
            "verifier_seconds": round(result["seconds"], 2),
            "verifier_records_per_s": round(rate),
            "ratio": round(rate / raw_rate, 3),
            "verifier_batches": result["batches"],
            "alerts": result["alerts"],
            "alert_versions": result["alert_versions"],
            "withdrawn_by_code": result["withdrawn_by_code"],
            **check,
        }
    finally:
        await drop_database(admin, db_name)
        if broker is not None:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=6000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--check", action="store_true",
                        help="compare the implied alerts with the domain core's verdict")
    parser.add_argument("--debug", action="store_true", help="log each batch's phases")
    parser.add_argument("--default-gc", action="store_true",
                        help="keep Python's default collector thresholds")
    args = parser.parse_args()
    if not args.default_gc:
        tune_gc(0)  # CPython's collector, raised thresholds: batches run on its thread
    if args.debug:
        import logging

        logging.basicConfig(level=logging.WARNING)
        logging.getLogger("humiao.verifier.processor").setLevel(logging.DEBUG)
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
