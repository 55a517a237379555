"""The source access matrix (issue 14): each event kind x own region / other region x
create, correct (retract) and reverse, for two district sources whose children were born in
each other's district, through the real gateway, broker and PostgreSQL. Nothing crosses:
a refused fact never reaches the events topic, whatever its ID numbers' birthplace."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from kafka import KafkaConsumer, TopicPartition

from humiao.adapters.codec import envelope_from_bytes, envelope_to_proto
from humiao.adapters.db import create_pool
from humiao.adapters.publisher import EventPublisher
from humiao.adapters.topics import ensure_topics
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.config import KafkaSettings
from humiao.domain import events as ev
from humiao.domain.values import EnrollmentEndReason, Period, Program, Situation, StatusChange
from humiao.ingest.api import Dependencies, IngestServicer
from humiao.ingest.credentials import hash_token, parse_credentials
from strategies import make_citizen_id

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SECRET = b"matrix-pseudonym-key"
REGIONS = {"A": "110105", "B": "310101"}
OTHER = {"A": "B", "B": "A"}
TOKENS = {"A": "token-district-a", "B": "token-district-b", "C": "token-auditor-of-b"}
SOURCES = {"A": "district-a", "B": "district-b", "C": "auditor-b"}
CREDENTIALS = {
    hash_token(TOKENS["A"]): {"source": SOURCES["A"], "regions": [REGIONS["A"]], "kinds": "*"},
    hash_token(TOKENS["B"]): {"source": SOURCES["B"], "regions": [REGIONS["B"]], "kinds": "*"},
    # may correct other sources' facts of B's region only (an auditing office)
    hash_token(TOKENS["C"]): {"source": SOURCES["C"], "regions": [REGIONS["B"]],
                              "kinds": ["eventRetracted", "disbursementReversed"],
                              "corrections": [REGIONS["B"]]},
}
ON = dt.date(2024, 3, 1)
AT = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
ACCEPTED, REJECTED, DUPLICATE = ingest_pb2.ACCEPTED, ingest_pb2.REJECTED, ingest_pb2.DUPLICATE


@dataclass(frozen=True)
class District:
    """A district's people, every one of them born in the *other* district (ID prefix)."""

    name: str
    region: str
    child: str
    parent: str
    guardian: str
    spare_child: str


def district(name: str, seq: int) -> District:
    born_in = int(REGIONS[OTHER[name]])
    return District(name, REGIONS[name],
                    make_citizen_id(born_in, dt.date(2014, 2, 3), seq),
                    make_citizen_id(born_in, dt.date(1984, 5, 6), seq),
                    make_citizen_id(born_in, dt.date(1960, 7, 8), seq),
                    make_citizen_id(born_in, dt.date(2016, 9, 10), seq))


@dataclass
class Gateway:
    stub: ingest_pb2_grpc.IngestServiceStub
    kafka: KafkaSettings
    counter: itertools.count[int]

    async def send(self, who: str, bodies: Sequence[ev.Body],
                   ids: Sequence[str] | None = None) -> list[ingest_pb2.EventResult]:
        ids = ids or [f"{who}-{next(self.counter)}" for _ in bodies]
        events = [envelope_to_proto(ev.Envelope(i, AT, SOURCES[who], b))
                  for i, b in zip(ids, bodies, strict=True)]
        answer = await self.stub.SubmitBatch(
            ingest_pb2.SubmitBatchRequest(events=events),
            metadata=(("authorization", f"Bearer {TOKENS[who]}"),), timeout=60)
        return list(answer.results)


@pytest.fixture
async def gateway(kafka_settings: KafkaSettings, database_url: str) -> AsyncIterator[Gateway]:
    await asyncio.to_thread(ensure_topics, kafka_settings)
    deps = Dependencies(pool=await create_pool(database_url),
                        publisher=await EventPublisher.open(kafka_settings, SECRET))
    deps.ready.set()
    server = grpc.aio.server()
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(
        IngestServicer(deps, parse_credentials(CREDENTIALS), pseudonym_key=SECRET), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Gateway(ingest_pb2_grpc.IngestServiceStub(channel), kafka_settings,
                      itertools.count())
    finally:
        await channel.close()
        await server.stop(None)
        assert deps.publisher is not None and deps.pool is not None
        await deps.publisher.close(timeout=2)
        await deps.pool.close()


def reason_of(result: ingest_pb2.EventResult) -> str:
    """ACCEPTED / DUPLICATE, or the ErrorInfo reason of a refusal."""
    if result.outcome != REJECTED:
        return ingest_pb2.Outcome.Name(result.outcome)
    assert result.status.code == code_pb2.PERMISSION_DENIED, result.status
    info = error_details_pb2.ErrorInfo()
    assert result.status.details[0].Unpack(info)
    return info.reason


def creations(d: District, fresh: str) -> dict[str, ev.Body]:
    """One fact of every kind about district `d`'s people and region."""
    return {
        "childEnrolled": ev.ChildEnrolled(fresh, dt.date(2016, 9, 10), Program.ORPHAN_DISPERSED,
                                          d.region, ON, ()),
        "enrollmentEnded": ev.EnrollmentEnded(d.child, Program.ORPHAN_DISPERSED, ON,
                                              EnrollmentEndReason.ADMINISTRATIVE),
        "schoolingExtension": ev.SchoolingExtension(d.child, dt.date(2033, 7, 1)),
        "guardianAppointed": ev.GuardianAppointed(d.child, d.guardian, ON),
        "childAdopted": ev.ChildAdopted(d.child, ON),
        "personDied": ev.PersonDied(d.parent, ON),
        "personStatusChanged": ev.PersonStatusChanged(d.parent, Situation.IN_CUSTODY,
                                                      StatusChange.ENDED, ON),
        "disbursement": ev.Disbursement(f"pay-{d.name}-x", d.child, Program.ORPHAN_DISPERSED,
                                        Period.of(2024, 4), 150_000, dt.date(2024, 4, 15),
                                        d.guardian, d.region),
        "paymentCycleClosed": ev.PaymentCycleClosed(d.region, Period.of(2024, 4)),
        "allowanceStandardSet": ev.AllowanceStandardSet(d.region, Program.ORPHAN_DISPERSED,
                                                        Period.of(2024, 1), 150_000),
    }


async def setup_district(gw: Gateway, d: District) -> dict[str, str]:
    """The district's own facts: enrollment (with a parent), guardian, a payment. Returns
    their event ids by name."""
    ids = {name: f"{d.name}-own-{name}" for name in ("enrolled", "guardian", "paid")}
    results = await gw.send(d.name, [
        ev.ChildEnrolled(d.child, dt.date(2014, 2, 3), Program.ORPHAN_DISPERSED, d.region,
                         dt.date(2023, 1, 1), (ev.ParentRecord(d.parent, Situation.IN_CUSTODY),)),
        ev.GuardianAppointed(d.child, d.guardian, dt.date(2023, 1, 1)),
        ev.Disbursement("dis-0450-6", d.child, Program.ORPHAN_DISPERSED, Period.of(2024, 3),
                        150_000, dt.date(2024, 3, 15), d.guardian, d.region),
    ], ids=list(ids.values()))
    assert [reason_of(r) for r in results] == ["ACCEPTED"] * 3
    return ids


def published_event_ids(kafka: KafkaSettings, timeout: float = 5.0) -> set[str]:
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="earliest")
    try:
        parts = [TopicPartition(kafka.events_topic, p) for p in range(kafka.humiao_partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        found: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                found |= {envelope_from_bytes(r.value).event_id for r in batch}
        return found
    finally:
        consumer.close()


@pytest.mark.parametrize("me", ["A", "B"])
async def test_a_district_source_acts_on_its_own_facts_and_nothing_else(
        gateway: Gateway, me: str) -> None:
    you = OTHER[me]
    mine, yours = district(me, 11), district(you, 22)
    own_ids = await setup_district(gateway, mine)
    your_ids = await setup_district(gateway, yours)

    matrix: dict[tuple[str, str], str] = {}
    refused_ids: list[str] = []
    for target, d in (("own", mine), ("other", yours)):
        fresh = make_citizen_id(int(REGIONS[OTHER[d.name]]), dt.date(2016, 9, 10), 90)
        facts = creations(d, fresh)
        for kind, body in facts.items():  # one call each: no fact sees another
            (result,) = await gateway.send(me, [body])
            matrix[("create " + kind, target)] = reason_of(result)
            if result.outcome == REJECTED:
                refused_ids.append(f"{SOURCES[me]}/{result.event_id}")
    # corrections: retract and reverse, own facts and the other district's
    for target, ids, owner in (("own", own_ids, me), ("other", your_ids, you)):
        for named in (ids["guardian"], f"{SOURCES[owner]}/{ids['guardian']}"):
            (result,) = await gateway.send(me, [ev.EventRetracted(named, "entered twice")])
            matrix[(f"retract {'qualified' if '/' in named else 'bare'}", target)] = \
                reason_of(result)
            if result.outcome == REJECTED:
                refused_ids.append(f"{SOURCES[me]}/{result.event_id}")
        named = "dis-0450-6" if owner == me else f"{SOURCES[owner]}/dis-0450-6"
        (result,) = await gateway.send(me, [ev.DisbursementReversed(named, dt.date(2024, 4, 1))])
        matrix[("reverse", target)] = reason_of(result)
        if result.outcome == REJECTED:
            refused_ids.append(f"{SOURCES[me]}/{result.event_id}")
    # a child enrolled in the other district cannot be moved here silently
    (moved,) = await gateway.send(me, [ev.ChildEnrolled(
        yours.child, dt.date(2014, 2, 3), Program.ORPHAN_DISPERSED, mine.region, ON, ())])
    matrix[("enroll the other's child here", "other")] = reason_of(moved)

    expected = {
        **{(f"create {k}", "own"): "ACCEPTED" for k in creations(mine, "x")},
        **{(f"create {k}", "other"): "REGION_NOT_ALLOWED" for k in creations(mine, "x")},
        ("retract bare", "own"): "ACCEPTED",
        ("retract qualified", "own"): "ACCEPTED",
        # a bare id that is only another source's names that source's fact: refused
        ("retract bare", "other"): "CORRECTION_NOT_OWNED",
        ("retract qualified", "other"): "CORRECTION_NOT_OWNED",
        ("reverse", "own"): "ACCEPTED",
        ("reverse", "other"): "CORRECTION_NOT_OWNED",
        ("enroll the other's child here", "other"): "ENROLLMENT_CONFLICT",
    }
    assert matrix == expected
    published = published_event_ids(gateway.kafka)
    assert not set(refused_ids) & published, "a refused fact reached the events topic"


async def test_event_ids_are_unique_per_source_not_global(gateway: Gateway) -> None:
    a, b = district("A", 31), district("B", 32)
    await setup_district(gateway, a)  # A sends dis-0450-6 first
    results = await gateway.send("B", [ev.Disbursement(
        "dis-0450-6", b.child, Program.ORPHAN_DISPERSED, Period.of(2024, 3), 150_000,
        dt.date(2024, 3, 15), b.guardian, b.region)], ids=["A-own-paid"])
    assert [reason_of(r) for r in results] == ["ACCEPTED"]  # not DUPLICATE of A's
    again = await gateway.send("B", [ev.Disbursement(
        "dis-0450-6", b.child, Program.ORPHAN_DISPERSED, Period.of(2024, 3), 150_000,
        dt.date(2024, 3, 15), b.guardian, b.region)], ids=["A-own-paid"])
    assert [reason_of(r) for r in again] == ["DUPLICATE"]  # B's own resend is
    published = published_event_ids(gateway.kafka)
    assert {f"{SOURCES['A']}/A-own-paid", f"{SOURCES['B']}/A-own-paid"} <= published


async def test_a_corrections_grant_reaches_its_region_and_no_further(gateway: Gateway) -> None:
    a_ids = await setup_district(gateway, district("A", 41))
    b_ids = await setup_district(gateway, district("B", 42))
    results = await gateway.send("C", [
        ev.EventRetracted(f"{SOURCES['B']}/{b_ids['guardian']}", "audit: appointed twice"),
        ev.DisbursementReversed(f"{SOURCES['B']}/dis-0450-6", dt.date(2024, 4, 2)),
        ev.EventRetracted(f"{SOURCES['A']}/{a_ids['guardian']}", "audit"),
        ev.DisbursementReversed(f"{SOURCES['A']}/dis-0450-6", dt.date(2024, 4, 2)),
    ])
    assert [reason_of(r) for r in results] == [
        "ACCEPTED", "ACCEPTED", "CORRECTION_NOT_OWNED", "CORRECTION_NOT_OWNED"]
