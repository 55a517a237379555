"""Fault 4: hostile input through every door: ingest's SubmitBatch and SubmitStream, the
bulk file import, and records written straight onto the events topic (what a rogue or
broken producer could do). Random bytes, truncated protobuf, protobuf of another type,
messages of megabytes, invalid ID numbers, dates in year 9999, negative and overflowing
amounts, unknown enum values, empty envelopes, two bodies at once.

Every hostile message ends as exactly one rejection (ingest, with the field and reason)
or one dead letter (verifier, with reason, detail and origin headers); counts match per
kind; the valid events sent between them are processed; both services stay up and
SERVING.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from fault_support import (
    CITIZEN_ID_PATTERN,
    SERVING,
    ServiceProcess,
    bearer,
    fetch,
    metric_value,
    migrated_database,
    new_topics,
    read_all,
    service_env,
    source_credentials,
    start_serving,
    stop_all,
    true_end_offsets,
    wait_committed,
)
from google.rpc import error_details_pb2
from kafka import KafkaProducer

from desk_support import REGION_A, SOURCE, paid, person
from humiao.adapters.codec import envelope_to_proto, proto_to_json
from humiao.adapters.record_signing import signed_headers
from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.events.v1 import events_pb2
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.cli.ingest_cmd import import_file, open_stub
from humiao.config import KafkaSettings
from humiao.domain import events as ev
from humiao.ingest.grants import own_form

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(180)]

SEED = 1337
TOKEN = "fault-hostile-source"

GROUP = "fault-hostile"
HUGE = 3 * 1024 * 1024


@dataclass
class Stack:
    kafka: KafkaSettings
    dsn: str
    ingest: ServiceProcess
    verifier: ServiceProcess


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, admin_dsn: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Ingest and verifier as processes, shared by the tests of this module."""
    kafka = new_topics(kafka_bootstrap, partitions=3)
    with migrated_database(admin_dsn) as dsn:
        env = service_env(
            kafka, dsn, HUMIAO_VERIFIER_GROUP=GROUP, HUMIAO_VERIFIER_LINGER_MS="10",
            HUMIAO_SOURCE_CREDENTIALS=source_credentials(**{TOKEN: (SOURCE, "*", "*")}))
        services = start_serving(("ingest", "verifier"), env, tmp_path_factory.mktemp("hostile"))
        try:
            yield Stack(kafka, dsn, services["ingest"], services["verifier"])
            codes = stop_all(services.values())
            assert codes == {"ingest": 0, "verifier": 0}, {
                n: s.tail() for n, s in services.items()}
        finally:
            stop_all(services.values())


def valid_events(n: int) -> list[ev.Envelope]:
    """Payments to children never enrolled: one NOT_ENROLLED alert each."""
    return [paid(person(REGION_A), "2024-03", REGION_A) for _ in range(n)]


def base() -> events_pb2.Envelope:
    return envelope_to_proto(valid_events(1)[0])


def hostile_envelopes() -> dict[str, list[events_pb2.Envelope]]:
    """Decodable envelopes that break the contract, by kind (several of each)."""
    out: dict[str, list[events_pb2.Envelope]] = {}

    def variants(kind: str, n: int, change: Callable[[events_pb2.Envelope, int], None]) -> None:
        out[kind] = []
        for i in range(n):
            msg = base()
            msg.event_id = f"hostile-{kind}-{i}-{uuid.uuid4().hex[:6]}"
            change(msg, i)
            out[kind].append(msg)

    def bad_id(m: events_pb2.Envelope, i: int) -> None:
        good = m.disbursement.child_id
        m.disbursement.child_id = (good[:17] + str((int(good[17]) + 1) % 10)
                                   if good[17] != "X" else good[:17] + "0",
                                   "not-an-id", "1101051990013100" + "1X")[i % 3]

    def year_9999(m: events_pb2.Envelope, i: int) -> None:
        if i % 2:
            m.disbursement.paid_on = "9999-12-31"
        else:
            m.recorded_at.seconds = 253402300799  # 9999-12-31T23:59:59Z

    def negative(m: events_pb2.Envelope, i: int) -> None:
        m.disbursement.amount_fen = -1 - i * 1000

    def overflowing(m: events_pb2.Envelope, i: int) -> None:
        m.disbursement.amount_fen = (2**31 - 1, 10_000_001, 2**31 - 2)[i % 3]

    def unknown_enum(m: events_pb2.Envelope, i: int) -> None:
        m.disbursement.program = 4 + i * 97  # type: ignore[assignment]  # open enum: kept

    def empty(m: events_pb2.Envelope, i: int) -> None:
        m.Clear()

    def huge(m: events_pb2.Envelope, i: int) -> None:
        m.source = "x" * HUGE

    variants("invalid_id", 3, bad_id)
    variants("year_9999", 2, year_9999)
    variants("negative_amount", 2, negative)
    variants("overflowing_amount", 3, overflowing)
    variants("unknown_enum", 2, unknown_enum)
    variants("empty_envelope", 2, empty)
    variants("huge", 1, huge)
    return out


#: What the rejection must say about each kind (field path : reason, in part).
REASONS = {
    "invalid_id": "childId: is not a valid citizen ID number",
    "year_9999": "",  # recordedAt or paidOn, checked apart
    "negative_amount": "amountFen: must not be negative",
    "overflowing_amount": "amountFen: must not exceed",
    "unknown_enum": "program:",
    "empty_envelope": "eventId: is required",
    "huge": "source: must be at most",
    "wrong_type": "is required",
}


def kind_of_event(event_id: str) -> str:
    return event_id.split("-")[1] if event_id.startswith("hostile-") else "valid"


def violations(result: ingest_pb2.EventResult) -> list[str]:
    bad = error_details_pb2.BadRequest()
    assert result.status.details and result.status.details[0].Unpack(bad), result
    return [f"{v.field}: {v.description}" for v in bad.field_violations]


def wrong_type_request() -> bytes:
    """A SubmitBatchRequest whose one event is an AlertVersion's bytes (field 1, LEN)."""
    other = alerts_pb2.AlertVersion(alert_id="A" + "0" * 24, version=3, region=REGION_A,
                                    child_key="ab" * 16).SerializeToString()
    return b"\x0a" + bytes([len(other)]) + other


async def test_ingest_rejects_every_hostile_event_by_batch_and_by_stream(
    stack: Stack,
) -> None:
    before = stack.ingest.scrape()
    rng = random.Random(SEED)
    hostile = hostile_envelopes()
    good = [envelope_to_proto(e) for e in valid_events(10)]
    mixed = [m for ms in hostile.values() for m in ms] + good
    rng.shuffle(mixed)
    half = len(mixed) // 2
    options = [("grpc.max_send_message_length", 64 << 20),
               ("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(stack.ingest.target, options=options) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        by_batch = await stub.SubmitBatch(ingest_pb2.SubmitBatchRequest(events=mixed[:half]),
                                          metadata=bearer(TOKEN), timeout=60)
        by_stream = await stub.SubmitStream(iter(mixed[half:]), metadata=bearer(TOKEN),
                                            timeout=60)
        # Bytes that are no SubmitBatchRequest at all: the call itself is refused.
        raw = channel.unary_unary("/humiao.ingest.v1.IngestService/SubmitBatch",
                                  request_serializer=None,
                                  response_deserializer=ingest_pb2.SubmitBatchResponse.FromString)
        whole = good[0].SerializeToString()
        undecodable = {
            "random_bytes": [bytes(rng.randrange(256) for _ in range(64)) for _ in range(3)],
            "truncated_protobuf": [(b"\x0a" + bytes([len(whole)]) + whole)[: len(whole) // 2]],
        }
        refused: Counter[str] = Counter()
        for kind, blobs in undecodable.items():
            for blob in blobs:
                try:
                    answer = await raw(blob, metadata=bearer(TOKEN), timeout=10)
                except grpc.aio.AioRpcError as exc:
                    # grpc.aio answers an undeserializable request UNKNOWN ("Unexpected
                    # DecodeError"); any refusal will do, as long as nothing got in.
                    assert exc.code() in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL,
                                          grpc.StatusCode.INVALID_ARGUMENT), exc
                    refused[kind] += 1
                else:  # random bytes that happen to parse: every event in them rejected
                    assert answer.accepted == 0 and answer.rejected == len(answer.results)
                    refused[kind] += 1
        wrong = await raw(wrong_type_request(), metadata=bearer(TOKEN), timeout=10)
    results = list(by_batch.results) + list(by_stream.results)
    assert [r.index for r in by_batch.results] == list(range(half))
    assert [r.index for r in by_stream.results] == list(range(len(mixed) - half))
    got: Counter[str] = Counter()
    for sent, result in zip(mixed, results, strict=True):
        kind = kind_of_event(sent.event_id) if sent.event_id else "empty_envelope"
        if kind == "valid":
            assert result.outcome == ingest_pb2.ACCEPTED, result
            continue
        assert result.outcome == ingest_pb2.REJECTED, (kind, result)
        reasons = violations(result)
        assert any(REASONS[kind] in r for r in reasons), (kind, reasons)
        if kind == "year_9999":
            assert any("recordedAt" in r or "paidOn" in r for r in reasons), reasons
        assert len(result.status.message) < 4000 and len(result.event_id) <= 256
        got[kind] += 1
    assert got == {k: len(v) for k, v in hostile.items()}
    assert refused == {k: len(v) for k, v in undecodable.items()}
    assert wrong.rejected == 1 and wrong.accepted == 0
    assert any(REASONS["wrong_type"] in r for r in violations(wrong.results[0]))
    for svc in (stack.ingest, stack.verifier):
        assert svc.health() == SERVING
    after = stack.ingest.scrape()
    rejected = sum(got.values()) + 1
    name = "humiao_ingest_rejections_total"
    assert metric_value(after, name, reason="invalid_field") - \
        metric_value(before, name, reason="invalid_field") == rejected
    print(f"\ningest: rejected {dict(got)} + wrong_type 1, refused whole calls "
          f"{dict(refused)}; accepted {len(good)} valid events between them")


async def test_file_import_rejects_every_hostile_line(stack: Stack, tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    good = valid_events(8)
    template = json.loads(proto_to_json(envelope_to_proto(good[0])))

    def line(change: Callable[[dict[str, Any]], object]) -> str:
        obj = json.loads(json.dumps(template))
        obj["eventId"] = f"file-{uuid.uuid4().hex[:8]}"
        result = change(obj)
        return json.dumps(obj if result is None else result)

    def set_body(key: str, value: object) -> Callable[[dict[str, Any]], None]:
        def change(obj: dict[str, Any]) -> None:
            obj["disbursement"][key] = value
        return change

    lines: dict[str, list[bytes | str]] = {
        "random_bytes": [bytes(rng.randrange(256) for _ in range(80)).replace(b"\n", b"?")
                         for _ in range(3)],
        "truncated_json": [proto_to_json(envelope_to_proto(e))[:40] for e in good[:2]],
        "wrong_type": [json.dumps([1, 2, 3]), json.dumps("envelope"),
                       json.dumps({"alertId": "A1", "version": 2, "status": "OPEN"})],
        "huge": [line(lambda o: o.__setitem__("source", "x" * HUGE)),
                 line(lambda o: o.__setitem__("source", "y" * 40 * 1024 * 1024))],
        "long_source": [line(lambda o: o.__setitem__("source", "z" * 200))],
        "id_in_event_id": [line(lambda o: o.__setitem__(
            "eventId", "pay-" + o["disbursement"]["childId"]))],
        "invalid_id": [line(set_body("childId", "110105200601010011")),
                       line(set_body("payeeId", "abc"))],
        "year_9999": [line(set_body("paidOn", "9999-12-31")),
                      line(lambda o: o.__setitem__("recordedAt", "9999-12-31T00:00:00Z"))],
        "negative_amount": [line(set_body("amountFen", -5))],
        "overflowing_amount": [line(set_body("amountFen", 99_999_999_999)),
                               line(set_body("amountFen", 2**31 - 1))],
        "unknown_enum": [line(set_body("program", "PROGRAM_X")), line(set_body("program", 99))],
        "empty_envelope": [json.dumps({})],
        "two_bodies": [line(lambda o: o.__setitem__(
            "personDied", {"personId": person(REGION_A, __import__("datetime").date(1970, 1, 1)),
                           "dateOfDeath": "2024-01-01"}))],
    }
    expected = {
        "random_bytes": "not valid JSON",
        "truncated_json": "not valid JSON",
        "wrong_type": "",
        "huge": "line: longer than",
        "long_source": "source: must be at most",
        "id_in_event_id": "eventId: must not hold an ID number",
        "invalid_id": "citizen ID number",
        "year_9999": "",
        "negative_amount": "amountFen: must not be negative",
        "overflowing_amount": "amountFen: ",
        "unknown_enum": "is not a known Program",
        "empty_envelope": "eventId: is required",
        "two_bodies": "body: must be exactly one, found disbursement and personDied",
    }
    entries: list[tuple[str, bytes]] = [
        (kind, raw if isinstance(raw, bytes) else raw.encode())
        for kind, raws in lines.items() for raw in raws
    ] + [("valid", proto_to_json(envelope_to_proto(e)).encode()) for e in good]
    rng.shuffle(entries)
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(raw for _, raw in entries) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    channel, stub = open_stub(stack.ingest.target)
    with channel:
        summary = await asyncio.to_thread(import_file, path, stub, TOKEN, rejects, 7,
                                          progress=False)
    hostile_count = sum(len(v) for v in lines.values())
    assert summary.lines == len(entries)
    assert summary.rejected == hostile_count and summary.accepted == len(good)
    found = {json.loads(x)["line"]: json.loads(x) for x in rejects.read_text().splitlines()}
    got: Counter[str] = Counter()
    for number, (kind, _) in enumerate(entries, start=1):
        if kind == "valid":
            assert number not in found
            continue
        reasons = found[number]["reasons"]
        assert reasons and all(r for r in reasons), (kind, found[number])
        assert any(expected[kind] in r for r in reasons), (kind, reasons)
        if kind == "year_9999":
            assert any("recordedAt" in r or "paidOn" in r for r in reasons), reasons
        assert len(json.dumps(found[number])) < 10_000, "a reason echoes the huge input"
        assert not CITIZEN_ID_PATTERN.search(json.dumps(found[number])), found[number]
        got[kind] += 1
    assert got == {k: len(v) for k, v in lines.items()}
    for svc in (stack.ingest, stack.verifier):
        assert svc.health() == SERVING
    print(f"\nfile import: {summary.render()}; rejected per kind {dict(got)}")


async def test_hostile_records_on_the_events_topic_become_dead_letters(stack: Stack) -> None:
    rng = random.Random(SEED + 2)
    kafka = stack.kafka
    before = stack.verifier.scrape()
    good = valid_events(12)
    whole = envelope_to_proto(good[0]).SerializeToString()
    records: dict[str, list[bytes | None]] = {
        "random_bytes": [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
                         for _ in range(4)],
        "truncated_protobuf": [whole[: len(whole) // 2], whole[:-3]],
        "wrong_type": [alerts_pb2.AlertVersion(alert_id="A1", version=1).SerializeToString(),
                       ingest_pb2.SubmitBatchRequest(
                           events=[envelope_to_proto(good[1])]).SerializeToString()],
        "huge": [b"\xff" * HUGE],  # larger than a producer's default 1 MB request
        "tombstone": [None],
        "empty_value": [b""],
    }
    for kind, messages in hostile_envelopes().items():
        if kind != "huge":  # raw megabytes above stand for it here
            records[kind] = [m.SerializeToString() for m in messages]
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=5,
                             max_request_size=16 * 1024 * 1024)
    origin: dict[tuple[int, int], str] = {}
    try:
        sent = []
        for kind, values in records.items():
            for value in values:
                partition = rng.randrange(kafka.humiao_partitions)
                key = b"rogue-" + kind.encode()  # signed: the bytes themselves are hostile
                sent.append((kind, producer.send(
                    kafka.events_topic, key=key, value=value, partition=partition,
                    headers=signed_headers(kafka.record_signing_secret, key, value or b""))))
        producer.flush()
        for kind, fut in sent:
            meta = fut.get(timeout=30)
            origin[(meta.partition, meta.offset)] = kind
    finally:
        producer.close()
    # Valid events after the hostile ones, through ingest: they must not be blocked.
    async with grpc.aio.insecure_channel(stack.ingest.target) as channel:
        answer = await ingest_pb2_grpc.IngestServiceStub(channel).SubmitBatch(
            ingest_pb2.SubmitBatchRequest(events=[envelope_to_proto(e) for e in good]),
            metadata=bearer(TOKEN), timeout=30)
    assert answer.accepted == len(good)
    ends = await asyncio.to_thread(true_end_offsets, kafka.bootstrap, kafka.events_topic)
    await wait_committed(stack.dsn, GROUP, ends, 30, alive=stack.verifier.assert_alive)

    letters = await asyncio.to_thread(read_all, kafka.bootstrap, kafka.deadletter_topic)
    got: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for letter in letters:
        h = {k: v.decode() for k, v in letter.headers}
        assert h["origin-topic"] == kafka.events_topic
        key = (int(h["origin-partition"]), int(h["origin-offset"]))
        if key not in origin:
            continue  # left by an earlier test of this module
        kind = origin[key]
        assert h["reason"] in ("undecodable", "invalid") and h["detail"], h
        assert len(h["detail"]) <= 2000
        if kind in ("random_bytes", "truncated_protobuf", "huge", "wrong_type"):
            pass  # either reason, depending on where the bytes break
        elif kind in ("empty_value", "tombstone") or kind in REASONS:
            assert h["reason"] == "invalid" or kind == "tombstone", (kind, h)
            if REASONS.get(kind):
                assert REASONS[kind] in h["detail"], (kind, h["detail"])
        assert letter.key == b"rogue-" + kind.encode()
        got[kind] += 1
        reasons[h["reason"]] += 1
    assert got == {k: len(v) for k, v in records.items()}, "one dead letter per hostile record"
    processed = {r["event_id"] for r in await fetch(stack.dsn, "SELECT event_id FROM facts")}
    assert {own_form(e).event_id for e in good} <= processed
    after = stack.verifier.scrape()
    name = "humiao_verifier_deadletters_total"
    assert metric_value(after, name) - metric_value(before, name) == sum(got.values())
    for svc in (stack.ingest, stack.verifier):
        assert svc.health() == SERVING
    print(f"\nevents topic: {sum(got.values())} dead letters {dict(got)}, by reason "
          f"{dict(reasons)}; {len(good)} valid events behind them processed")


async def test_a_valid_retraction_written_straight_to_the_topic_is_not_applied(
        stack: Stack) -> None:
    """Issue 14, item 6: only ingest writes the events topic. A well-formed retraction
    of a real fact, from a source "nobody", produced around the gateway, is dead-lettered
    as unsigned and the alert it aimed at stays as it was."""
    kafka = stack.kafka
    payment = valid_events(1)[0]
    async with grpc.aio.insecure_channel(stack.ingest.target) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        first = await stub.SubmitBatch(ingest_pb2.SubmitBatchRequest(
            events=[envelope_to_proto(payment)]), metadata=bearer(TOKEN), timeout=30)
        assert first.accepted == 1
        target = own_form(payment).event_id
        rogue = envelope_to_proto(ev.Envelope(
            f"rogue-{uuid.uuid4().hex[:8]}", payment.recorded_at, "nobody",
            ev.EventRetracted(target, "not a real correction")))
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        try:
            meta = producer.send(kafka.events_topic, key=b"rogue", partition=0,
                                 value=rogue.SerializeToString()).get(timeout=30)
        finally:
            producer.close()
        behind = await stub.SubmitBatch(ingest_pb2.SubmitBatchRequest(
            events=[envelope_to_proto(e) for e in valid_events(3)]), metadata=bearer(TOKEN),
            timeout=30)
        assert behind.accepted == 3
    ends = await asyncio.to_thread(true_end_offsets, kafka.bootstrap, kafka.events_topic)
    await wait_committed(stack.dsn, GROUP, ends, 30, alive=stack.verifier.assert_alive)
    letters = await asyncio.to_thread(read_all, kafka.bootstrap, kafka.deadletter_topic)
    mine = [dict(letter.headers) for letter in letters
            if dict(letter.headers).get("origin-offset") == str(meta.offset).encode()
            and dict(letter.headers).get("origin-partition") == b"0"]
    assert [h["reason"] for h in mine] == [b"unsigned"]
    facts = {r["event_id"] for r in await fetch(stack.dsn, "SELECT event_id FROM facts")}
    assert rogue.event_id not in facts and target in facts
    rows = await fetch(stack.dsn, "SELECT status, implied FROM alerts WHERE $1 = ANY("
                       "evidence_event_ids)", target)
    assert rows and all(r["implied"] and r["status"] == "OPEN" for r in rows)
