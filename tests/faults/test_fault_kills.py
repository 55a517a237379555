"""Fault 1: the verifier killed with SIGKILL at seeded random moments, over and over, and
restarted each time. The alerts it ends with, and every alert version it put on the
`alerts` topic, must be those of an undisturbed run over the same records.

Determinism: with one partition and one record per batch, the state after each committed
batch is a function of the records before it, so an undisturbed run and a killed one
must write exactly the same versions (ids, numbers, statuses), withdrawals and
reopenings included. (With several partitions, person and region facts are visible
from the database before their copy on a given partition arrives, so intermediate alerts
legitimately differ between two undisturbed runs; only the final set is fixed then.)
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fault_support import (
    ServiceProcess,
    assert_contiguous,
    await_until,
    migrate,
    service_env,
    stored_payloads,
    true_end_offsets,
    version_history,
    wait_settled,
    wire_versions,
)

from humiao.adapters.alerts_codec import alert_version_from_bytes
from humiao.api.alerts.v1 import alerts_pb2
from humiao.config import KafkaSettings
from humiao_dev.demo.city import history as city_history
from integration.verifier_support import (
    alert_rows,
    assert_alerts_match,
    expected_drafts,
    publish_envelopes,
    shuffled,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(240)]

SEED = 20240817
#: Consumer groups live on the broker, not under the topic prefix: each run has its own.
CALM, ROUGH = "fault-kills-calm", "fault-kills-rough"
#: Kills while records are being processed (at seeded random commit counts) ...
KILLS_MID_STREAM = 22
#: ... and kills the moment a restarted verifier announces itself (joining the group).
KILLS_AT_START = 4


def verifier_env(kafka: KafkaSettings, dsn: str, group: str) -> dict[str, str]:
    return service_env(
        kafka, dsn,
        HUMIAO_VERIFIER_GROUP=group,
        HUMIAO_VERIFIER_BATCH_MAX="1",
        HUMIAO_VERIFIER_LINGER_MS="0",
        HUMIAO_VERIFIER_SESSION_TIMEOUT_MS="1000",
        HUMIAO_VERIFIER_OUTBOX_BATCH="25",
        HUMIAO_LOG_LEVEL="INFO",
    )


async def finish(verifier: ServiceProcess, dsn: str, group: str, ends: dict[int, int]) -> None:
    """Let a running verifier commit everything and empty its outbox, then stop it."""
    await wait_settled(dsn, group, ends, timeout=120, alive=verifier.assert_alive)
    assert verifier.stop() == 0, verifier.tail()


def essence(payload: bytes) -> tuple[Any, ...]:
    """What must agree between two runs (not the wall-clock change time)."""
    v = alert_version_from_bytes(payload)
    return (v.alert_id, v.version, v.status, v.code, v.child_key, v.region, v.period,
            v.amount_at_risk_fen, tuple(v.evidence_event_ids), v.change_reason)


async def test_twenty_odd_sigkills_change_no_alert_and_no_version(
    make_topics: Callable[..., KafkaSettings],
    make_database: Callable[[], Awaitable[str]],
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    history = city_history(110, months=13, seed=SEED % 1000)
    # Shuffled (with repeats), so late facts withdraw and reopen alerts: versions 1..n.
    records = shuffled(history.envelopes + history.envelopes[::9], seed=SEED)
    calm_topics, rough_topics = make_topics(1), make_topics(1)
    calm_db, rough_db = await migrate(await make_database()), await migrate(await make_database())
    total = publish_envelopes(calm_topics, records)
    assert publish_envelopes(rough_topics, records) == total
    ends = true_end_offsets(rough_topics.bootstrap, rough_topics.events_topic)
    assert ends == {0: total} == true_end_offsets(calm_topics.bootstrap,
                                                   calm_topics.events_topic)

    # The undisturbed run, alongside.
    calm = ServiceProcess("verifier", verifier_env(calm_topics, calm_db, CALM), tmp_path).start()
    rough = ServiceProcess("verifier", verifier_env(rough_topics, rough_db, ROUGH), tmp_path)
    targets = sorted(rng.sample(range(1, total - 1), KILLS_MID_STREAM))
    at_start = set(rng.sample(range(KILLS_MID_STREAM), KILLS_AT_START))
    kills: list[tuple[str, int]] = []  # (moment, records committed when killed)
    started = time.monotonic()
    watch = await asyncpg.connect(rough_db)
    try:
        async def committed() -> int:
            return int(await watch.fetchval(
                "SELECT coalesce(max(next_offset), 0) FROM consumer_offsets"
                " WHERE consumer_group = $1", ROUGH) or 0)

        for i, target in enumerate(targets):
            rough.start()
            if i in at_start:  # as soon as it listens: mid group join or offset seek
                rough.wait_ready(30)
                rough.kill()
                kills.append(("start", await committed()))
                rough.start()

            async def reached(target: int = target) -> bool:
                rough.assert_alive()
                return await committed() >= target

            await await_until(f"{target} records committed", reached, 60, interval=0.01)
            rough.kill()
            kills.append(("stream", await committed()))
        assert kills[-1][1] < total, "the last kill came after the end: no proof"
        rough.start()
        await finish(rough, rough_db, ROUGH, ends)
        await finish(calm, calm_db, CALM, ends)
    finally:
        await watch.close()
        calm.stop()
        rough.stop()
    elapsed = time.monotonic() - started
    assert len(kills) >= 20

    # The final alerts: what the domain implies, and identical between the two runs.
    rough_rows, calm_rows = await alert_rows(rough_db), await alert_rows(calm_db)
    assert_alerts_match(rough_rows, expected_drafts(history.envelopes, history.child_ids))
    fields = ("code", "status", "version", "implied", "amount_at_risk_fen", "subject",
              "evidence_event_ids", "child_key", "period")
    assert {a: tuple(r[f] for f in fields) for a, r in rough_rows.items()} == \
        {a: tuple(r[f] for f in fields) for a, r in calm_rows.items()}

    # The versions: none missing or doubled by the database's record, the same as calm.
    rough_history, calm_history = await version_history(rough_db), await version_history(
        calm_db)
    assert_contiguous(rough_history)
    assert rough_history == calm_history
    statuses = Counter(s for vs in rough_history.values() for _, s in vs)
    assert statuses["WITHDRAWN"] > 100, statuses  # late facts really moved alerts

    # On the wire: every version the database holds, byte for byte, and nothing else.
    rough_db_payloads, calm_db_payloads = await stored_payloads(rough_db), await stored_payloads(
        calm_db)
    rough_wire, rough_repeats = wire_versions(rough_topics)
    calm_wire, calm_repeats = wire_versions(calm_topics)
    assert rough_wire == rough_db_payloads
    assert calm_wire == calm_db_payloads
    assert {essence(p) for p in rough_wire.values()} == {essence(p) for p in calm_wire.values()}
    assert all(alert_version_from_bytes(p).status != alerts_pb2.ALERT_STATUS_UNSPECIFIED
               for p in rough_wire.values())
    moments = Counter(m for m, _ in kills)
    print(f"\nkills: {len(kills)} ({dict(moments)}) over {total} records in {elapsed:.0f}s; "
          f"committed at each kill: {[n for _, n in kills]}; alerts {len(rough_rows)}, "
          f"versions {len(rough_db_payloads)} {dict(statuses)}; repeats on the wire after "
          f"kills: {rough_repeats} (undisturbed: {calm_repeats})")
