"""The verifier service against the real broker and PostgreSQL: two instances on shuffled
input, dead letters, late facts and corrections, staff transitions kept."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from typing import Any

import asyncpg
import pytest
from verifier_support import (
    SECRET,
    alert_rows,
    assert_alerts_match,
    expected_drafts,
    publish_envelopes,
    read_topic,
    shuffled,
    wait_for,
)

from humiao.adapters.alerts_codec import alert_version_from_bytes
from humiao.adapters.codec import envelope_to_proto
from humiao.adapters.progress import wait_caught_up
from humiao.adapters.topics import ensure_topics
from humiao.config import KafkaSettings
from humiao.domain import events as ev
from humiao.domain.identity import compose_citizen_id as citizen_id
from humiao.domain.identity import redact_ids_in_bytes
from humiao.domain.values import Period, Program, Situation
from humiao.verifier.main import Verifier
from humiao.verifier.settings import VerifierSettings
from humiao_dev.bench.workload import at
from humiao_dev.demo.city import history as city_history

pytestmark = [pytest.mark.integration]

def settings(group: str, **overrides: Any) -> VerifierSettings:
    values: dict[str, Any] = {
        "humiao_verifier_group": group,
        "humiao_verifier_batch_max": 500,
        "humiao_verifier_linger_ms": 20,
        "humiao_verifier_session_timeout_ms": 6000,
    }
    values.update(overrides)
    return VerifierSettings(**values)


def _group() -> str:
    """A group of the test's own: groups outlive a test's members on the shared broker."""
    return f"test-verifier-{uuid.uuid4().hex[:8]}"


async def outbox_drained(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        left = await conn.fetchval("SELECT count(*) FROM alert_versions WHERE published_at IS NULL")
        return left == 0
    finally:
        await conn.close()


async def version_rows(dsn: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM alert_versions ORDER BY seq")
    finally:
        await conn.close()
    return [dict(r) for r in rows]


def assert_versions_contiguous(versions: list[dict[str, Any]]) -> None:
    by_alert: dict[str, list[int]] = {}
    for v in versions:
        by_alert.setdefault(v["alert_id"], []).append(v["version"])
    for aid, vs in by_alert.items():
        assert vs == list(range(1, len(vs) + 1)), (aid, vs)


async def test_two_instances_on_shuffled_input_agree_with_the_domain(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    group = _group()
    history = city_history(90, months=14, seed=3)
    envelopes = shuffled(history.envelopes + history.envelopes[::7], seed=11)  # with repeats
    ensure_topics(kafka_settings)
    # The second keeps no working set in memory: every batch reads what it needs from
    # PostgreSQL, so both paths are checked against the domain core.
    first, second = (
        Verifier(kafka=kafka_settings, dsn=database_url, secret=SECRET,
                 settings=settings(group, humiao_verifier_cached_children=cached), name=name)
        for name, cached in (("verifier-a", 200_000), ("verifier-b", 0))
    )
    await first.start()
    await second.start()
    try:
        half = len(envelopes) // 2
        publish_envelopes(kafka_settings, envelopes[:half])
        await wait_for(lambda: _both_working(first, second), 40, "both instances to commit")
        publish_envelopes(kafka_settings, envelopes[half:])
        await wait_caught_up(database_url, kafka_settings, group, timeout=60)
        rows = await alert_rows(database_url)
        drafts = expected_drafts(history.envelopes, history.child_ids)
        assert len(drafts) > 40  # the generator injects a set of irregularities per city
        assert_alerts_match(rows, drafts)
        # the instance with a working set re-checked held children by their new months
        assert first.consumer is not None and second.consumer is not None
        assert first.consumer.processor.evaluated["new"] > 0
        assert second.consumer.processor.evaluated["new"] == 0
        await wait_for(lambda: outbox_drained(database_url), 20, "the outbox to drain")
        versions = await version_rows(database_url)
        assert_versions_contiguous(versions)
        on_wire = read_topic(kafka_settings, kafka_settings.alerts_topic)
        wire = {(r.key.decode(), dict(r.headers)["version"].decode()) for r in on_wire}
        assert {(v["alert_id"], str(v["version"])) for v in versions} <= wire
        decoded = alert_version_from_bytes(on_wire[0].value)
        assert decoded.alert_id and decoded.child_key and not decoded.child_key.isdigit()
    finally:
        await asyncio.gather(first.stop(), second.stop())


async def _both_working(a: Verifier, b: Verifier) -> bool:
    assert a.consumer is not None and b.consumer is not None
    return a.consumer.batches > 0 and b.consumer.batches > 0


async def test_garbage_goes_to_dead_letters_and_processing_goes_on(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    group = _group()
    history = city_history(12, months=10, seed=5)
    ensure_topics(kafka_settings)
    good = citizen_id("110105", dt.date(2012, 1, 1), 1)
    broken = good[:-1] + ("1" if good[-1] != "1" else "2")  # wrong check digit
    bad_id = ev.Envelope("bad-1", at(dt.date(2022, 3, 1)), "test",
                         ev.ChildAdopted(broken, dt.date(2022, 2, 1)))
    garbage = [(p, b"\xff\x00 not protobuf " + bytes([p])) for p in range(4)]
    garbage.append((1, envelope_to_proto(bad_id).SerializeToString()))
    garbage.append((2, b"\x0a" + bytes(3 * 1024 * 1024)))  # 3 MB: over the producer default
    publish_envelopes(kafka_settings, [], raw=garbage)
    verifier = Verifier(kafka=kafka_settings, dsn=database_url, secret=SECRET,
                        settings=settings(group))
    await verifier.start()
    try:
        publish_envelopes(kafka_settings, history.envelopes)
        await wait_caught_up(database_url, kafka_settings, group, timeout=60)
        letters = read_topic(kafka_settings, kafka_settings.deadletter_topic)
        assert len(letters) == len(garbage)
        reasons = Counter(dict(r.headers)["reason"].decode() for r in letters)
        assert reasons == {"undecodable": 5, "invalid": 1}
        for r in letters:
            h = {k: v.decode() for k, v in r.headers}
            assert h["origin-topic"] == kafka_settings.events_topic
            redacted = [(p, redact_ids_in_bytes(value)) for p, value in garbage]
            assert (int(h["origin-partition"]), r.value) in redacted
            assert int(h["origin-offset"]) >= 0
        invalid = next(r for r in letters if dict(r.headers)["reason"] == b"invalid")
        assert b"childAdopted.childId" in dict(invalid.headers)["detail"]
        assert_alerts_match(
            await alert_rows(database_url), expected_drafts(history.envelopes, history.child_ids)
        )
    finally:
        await verifier.stop()


async def test_late_death_reversal_and_retraction_move_alerts_through_their_lifecycle(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    group = _group()
    region = "110105"
    child = citizen_id(region, dt.date(2012, 5, 6), 42)
    guardian = citizen_id("220104", dt.date(1980, 2, 3), 7)
    mother = citizen_id("220103", dt.date(1982, 2, 3), 8)
    father = citizen_id("220102", dt.date(1981, 2, 3), 9)
    start = Period.of(2023, 1)
    base = [
        ev.Envelope("std", at(dt.date(2022, 12, 1)), "t",
                    ev.AllowanceStandardSet(region, Program.ORPHAN_DISPERSED, start, 150_000)),
        ev.Envelope("enr", at(dt.date(2022, 11, 2)), "t", ev.ChildEnrolled(
            child, dt.date(2012, 5, 6), Program.ORPHAN_DISPERSED, region, dt.date(2022, 11, 1),
            (ev.ParentRecord(father, Situation.DECEASED),
             ev.ParentRecord(mother, Situation.DECEASED)))),
        ev.Envelope("gua", at(dt.date(2022, 11, 3)), "t",
                    ev.GuardianAppointed(child, guardian, dt.date(2022, 11, 1))),
    ]
    pays = []
    for m in range(6):
        period = start + m
        paid = period.first_day() + dt.timedelta(days=9)
        pays.append(ev.Envelope(f"pay-{m}", at(paid), "t", ev.Disbursement(
            f"D{m}", child, Program.ORPHAN_DISPERSED, period, 150_000, paid, guardian, region)))
    ensure_topics(kafka_settings)
    verifier = Verifier(kafka=kafka_settings, dsn=database_url, secret=SECRET,
                        settings=settings(group))
    await verifier.start()

    async def step(envelopes: list[ev.Envelope]) -> dict[str, dict[str, Any]]:
        publish_envelopes(kafka_settings, envelopes)
        await wait_caught_up(database_url, kafka_settings, group, timeout=30)
        return await alert_rows(database_url)

    try:
        assert await step(base + pays) == {}
        # The child died in February; the death is recorded in July, after six payments.
        died = ev.Envelope("death", at(dt.date(2023, 7, 20)), "t",
                           ev.PersonDied(child, dt.date(2023, 2, 14)))
        rows = await step([died])
        by_subject = {r["subject"]: r for r in rows.values()}
        assert set(by_subject) == {"D2", "D3", "D4", "D5"}  # March..June
        assert {r["code"] for r in rows.values()} == {"PAID_AFTER_DEATH"}
        assert all(r["status"] == "OPEN" and r["version"] == 1 for r in rows.values())
        # Staff acknowledge the April alert (the desk's optimistic update).
        april = by_subject["D3"]["alert_id"]
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                done = await conn.execute(
                    "UPDATE alerts SET status = 'ACKNOWLEDGED', assignee = 'wang', version = 2"
                    " WHERE alert_id = $1 AND version = 1", april)
                assert done == "UPDATE 1"
                await conn.execute(
                    "INSERT INTO alert_versions (alert_id, version, status, changed_by,"
                    " change_reason, payload) VALUES ($1, 2, 'ACKNOWLEDGED', 'wang', 'claimed',"
                    " ''::bytea)", april)
        finally:
            await conn.close()
        # The March and April payments are reversed: their alerts lose their basis.
        rev = [ev.Envelope(f"rev-{d}", at(dt.date(2023, 7, 25)), "t",
                           ev.DisbursementReversed(d, dt.date(2023, 7, 25))) for d in ("D2", "D3")]
        rows = await step(rev)
        by_subject = {r["subject"]: r for r in rows.values()}
        assert by_subject["D2"]["status"] == "WITHDRAWN" and not by_subject["D2"]["implied"]
        assert by_subject["D2"]["version"] == 2
        assert by_subject["D3"]["status"] == "WITHDRAWN" and by_subject["D3"]["version"] == 3
        assert by_subject["D3"]["assignee"] == "wang"  # staff fields are never overwritten
        assert by_subject["D4"]["status"] == "OPEN"
        # The March reversal was entered in error: its retraction reopens the alert.
        retract = ev.Envelope("undo", at(dt.date(2023, 8, 1)), "t",
                              ev.EventRetracted("rev-D2", "entered in error"))
        rows = await step([retract])
        by_subject = {r["subject"]: r for r in rows.values()}
        assert by_subject["D2"]["status"] == "REOPENED" and by_subject["D2"]["version"] == 3
        assert by_subject["D2"]["implied"]
        assert by_subject["D3"]["status"] == "WITHDRAWN"
        versions = await version_rows(database_url)
        assert_versions_contiguous(versions)
        d2 = [v["status"] for v in versions if v["alert_id"] == by_subject["D2"]["alert_id"]]
        assert d2 == ["OPEN", "WITHDRAWN", "REOPENED"]
        payload = next(v for v in versions if v["alert_id"] == april and v["version"] == 3)
        published = alert_version_from_bytes(payload["payload"])
        assert published.assignee == "wang" and published.change_reason == "basis gone"
    finally:
        await verifier.stop()
