"""Helpers for the verifier's integration tests: publish envelopes with ingest's routing,
read the alerts table, compute what the domain core expects."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
from kafka import KafkaConsumer, TopicPartition

from humiao.adapters.codec import envelope_to_proto
from humiao.adapters.kafka_bridge import new_producer
from humiao.adapters.record_signing import signed_headers
from humiao.adapters.topics import routing_key
from humiao.config import KafkaSettings
from humiao.domain import events as ev
from humiao.domain.alerts import AlertDraft
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_child

SECRET = b"humiao-development-pseudonym-key"


def publish_envelopes(
    settings: KafkaSettings,
    envelopes: Iterable[ev.Envelope],
    secret: bytes = SECRET,
    *,
    raw: Sequence[tuple[int, bytes]] = (),
) -> int:
    """Produce as ingest does: child facts keyed by the child's pseudonym (default
    partitioner), person/region/reference facts copied to every partition, each signed
    with the settings' signing key. `raw` adds (partition, bytes) records as they are,
    signed too (what a broken ingest would send). Returns the number of records produced."""
    signing = settings.record_signing_secret
    producer = new_producer(settings.bootstrap, "humiao-tests", linger_ms=5, acks="all",
                            max_request_size=8 * 1024 * 1024)
    n = 0
    try:
        for env in envelopes:
            key, broadcast = routing_key(env, secret)
            value = envelope_to_proto(env).SerializeToString()
            if broadcast:
                for p in range(settings.humiao_partitions):
                    producer.send(settings.events_topic, key=key, value=value, partition=p,
                                  headers=signed_headers(signing, key, value))
                    n += 1
            else:
                producer.send(settings.events_topic, key=key, value=value,
                              headers=signed_headers(signing, key, value))
                n += 1
        for partition, blob in raw:
            producer.send(settings.events_topic, key=b"garbage", value=blob, partition=partition,
                          headers=signed_headers(signing, b"garbage", blob))
            n += 1
        producer.flush()
    finally:
        producer.close()
    return n


def shuffled(items: Sequence[ev.Envelope], seed: int) -> list[ev.Envelope]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def expected_drafts(
    envelopes: Iterable[ev.Envelope], child_ids: Iterable[str], policies: PolicyBook | None = None,
    key: bytes = SECRET,
) -> dict[str, AlertDraft]:
    """What the domain core concludes from the whole set, by alert id (keyed by `key`)."""
    policies = policies or PolicyBook.default()
    facts = list(envelopes)
    own: dict[str, list[ev.Envelope]] = defaultdict(list)
    shared = []
    for env in facts:
        cid = env.child_id() if env.kind in ev.CHILD_KINDS else None
        if cid is None:
            shared.append(env)
        else:
            own[cid].append(env)
    out: dict[str, AlertDraft] = {}
    for cid in child_ids:
        for d in evaluate_child(cid, own[cid] + shared, policies):
            out[d.id_under(key)] = d
    return out


async def alert_rows(dsn: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM alerts")
    finally:
        await conn.close()
    return {r["alert_id"]: dict(r) for r in rows}


def assert_alerts_match(rows: dict[str, dict[str, Any]], drafts: dict[str, AlertDraft]) -> None:
    """Implied rows are exactly the drafts (same code, amount, evidence) and open; every
    other row is a withdrawn alert an intermediate state raised."""
    implied = {aid: r for aid, r in rows.items() if r["implied"]}
    assert set(implied) == set(drafts), (
        f"missing {len(set(drafts) - set(implied))}, extra {len(set(implied) - set(drafts))}"
    )
    for aid, d in drafts.items():
        r = implied[aid]
        assert r["code"] == d.code.name
        assert r["amount_at_risk_fen"] == d.amount_at_risk_fen
        assert tuple(r["evidence_event_ids"]) == tuple(d.evidence_event_ids)
        assert r["status"] in ("OPEN", "REOPENED")
    for aid, r in rows.items():
        if not r["implied"]:
            assert r["status"] == "WITHDRAWN", (aid, r["status"])


async def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll an async predicate until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def read_topic(settings: KafkaSettings, topic: str, timeout: float = 10.0) -> list[Any]:
    """Every record now on `topic` (all partitions), read without a group.

    The end is each partition's fetch high watermark, not ListOffsets: the embedded
    broker answers ListOffsets short of the end (see humiao.adapters.progress)."""
    import time

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[Any] = []

        def at_end(tp: TopicPartition) -> bool:
            high = consumer.highwater(tp)
            return high is not None and consumer.position(tp) >= high

        deadline = time.monotonic() + timeout
        while not all(at_end(tp) for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for recs in consumer.poll(timeout_ms=200).values():
                out.extend(recs)
        return out
    finally:
        consumer.close()
