"""Faults 5 and 6 on one running stack (ingest, verifier and desk as processes, logging at
DEBUG), after a whole city went through it by the bulk file import.

5. Access: every method of IngestService and AlertDesk called without a token, with a
   wrong token, with another region's token and with a too-low role: refused with the
   right code (UNAUTHENTICATED / PERMISSION_DENIED / NOT_FOUND for another region's
   objects), and no response, stream or error message carries an ID number, child key or
   alert id of the other region (beyond what the caller itself sent).
6. Privacy: the logs of every service, every metrics endpoint, every Kafka key of every
   topic and every alert payload hold no citizen ID number (a regex for 17 digits and a
   check character, confirmed by the GB 11643 check digit). Values of the events and
   dead-letter topics carry ID numbers by design (the envelope), and are not scanned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from fault_support import (
    ServiceProcess,
    bearer,
    citizen_ids_in_bytes,
    citizen_ids_in_text,
    citizen_ids_in_value,
    fetch,
    migrated_database,
    new_topics,
    read_all,
    service_env,
    source_credentials,
    staff_credentials,
    start_serving,
    stop_all,
    true_end_offsets,
    wait_committed,
    wait_settled,
)
from kafka import KafkaProducer

from desk_support import desk_requests
from humiao.adapters.codec import envelope_to_proto, proto_to_json
from humiao.api.desk.v1 import desk_pb2, desk_pb2_grpc
from humiao.api.events.v1 import events_pb2
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.cli.ingest_cmd import import_file, open_stub
from humiao.config import KafkaSettings
from humiao.domain import events as ev
from humiao.domain.identity import compose_citizen_id as citizen_id
from humiao.domain.identity import looks_like_citizen_id, pseudonym
from humiao.domain.values import Period, Program, Situation
from humiao_dev.bench.workload import at
from humiao_dev.demo.city import history as city_history

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(180)]

SEED = 606
KEY = "fault-privacy-pseudonym-key"
GROUP = "fault-access"
A, B = "110105", "310101"  # two of the synthetic city's regions
CITY_TOKEN = "tok-city-all"
SOURCES = {
    CITY_TOKEN: ("synthetic", "*", "*"),
    "tok-src-a": ("src-a", [A], "*"),
    "tok-src-b": ("src-b", [B], "*"),
    "tok-src-a-pay-only": ("src-a-pay", [A], ["disbursement"]),
}
STAFF = {
    "tok-viewer-a": ("Viewer A", "viewer", [A]),
    "tok-inv-a": ("Investigator A", "investigator", [A]),
    "tok-sup-a": ("Supervisor A", "supervisor", [A]),
    "tok-inv-b": ("Investigator B", "investigator", [B]),
    "tok-sup-b": ("Supervisor B", "supervisor", [B]),
}
WRONG = "tok-nobody"


@dataclass
class City:
    kafka: KafkaSettings
    dsn: str
    services: dict[str, ServiceProcess]
    history: Any
    ids: set[str] = field(default_factory=set)  # every citizen ID number sent
    a_alerts: list[dict[str, Any]] = field(default_factory=list)
    a_children: set[str] = field(default_factory=set)

    def secrets_of_a(self) -> set[str]:
        """What region B staff must never learn: A's alert ids, ID numbers, child keys."""
        keys = {pseudonym(KEY.encode(), c) for c in self.a_children}
        return {a["alert_id"] for a in self.a_alerts} | self.a_children | keys


@pytest.fixture(scope="module")
def city_stack(kafka_bootstrap: str, admin_dsn: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    kafka = new_topics(kafka_bootstrap, partitions=3)
    with migrated_database(admin_dsn) as dsn:
        yield from _city(kafka, dsn, tmp_path_factory.mktemp("city"))


def _city(kafka: KafkaSettings, dsn: str, work: Path) -> Iterator[City]:
    """The three services on `kafka` and `dsn`, with the whole city imported and settled."""
    env = service_env(
        kafka, dsn,
        HUMIAO_LOG_LEVEL="DEBUG",
        HUMIAO_PSEUDONYM_KEY=KEY,
        HUMIAO_VERIFIER_GROUP=GROUP,
        HUMIAO_VERIFIER_LINGER_MS="10",
        HUMIAO_DESK_HEARTBEAT_SECONDS="0.3",
        HUMIAO_DESK_GAUGE_SECONDS="0.5",
        HUMIAO_SOURCE_CREDENTIALS=source_credentials(**SOURCES),
        HUMIAO_STAFF_CREDENTIALS=staff_credentials(**STAFF),
    )
    services = start_serving(("ingest", "verifier", "desk"), env, work)
    try:
        history = city_history(60, months=12, seed=SEED)
        lines = work / "city.jsonl"
        lines.write_text("".join(proto_to_json(envelope_to_proto(e)) + "\n"
                                 for e in history.envelopes))
        channel, stub = open_stub(services["ingest"].target)
        with channel:
            summary = import_file(lines, stub, CITY_TOKEN, work / "rejects.jsonl", 500,
                                  progress=False)
        assert summary.accepted == len(history.envelopes), summary.render()
        ends = true_end_offsets(kafka.bootstrap, kafka.events_topic)

        async def settle() -> list[Any]:
            await wait_settled(dsn, GROUP, ends, 90, alive=services["verifier"].assert_alive)
            return await fetch(dsn, "SELECT alert_id, region, child_id, status, version"
                                    " FROM alerts ORDER BY alert_id")

        rows = [dict(r) for r in asyncio.run(settle())]
        stack = City(kafka, dsn, services, history)
        for env_ in history.envelopes:
            stack.ids |= citizen_ids_in_value(env_.body)
        stack.a_alerts = [r for r in rows if r["region"] == A]
        stack.a_children = {c for c in history.child_ids if c.startswith(A)}
        assert len(stack.a_alerts) >= 3 and any(r["region"] == B for r in rows)
        yield stack
    finally:
        codes = stop_all(services.values())
    assert set(codes.values()) == {0}, {n: s.tail() for n, s in services.items()}


# --- 5. access -------------------------------------------------------------------------


def assert_nothing_leaked(stack: City, text: str, sent: str = "") -> None:
    """No secret of region A in `text`, except what the caller itself put in `sent`."""
    leaked = {s for s in stack.secrets_of_a() if s in text and s not in sent}
    assert not leaked, f"leaked: {sorted(leaked)[:3]}"
    ids = {i for i in citizen_ids_in_text(text) if i not in sent}
    assert not ids, f"ID numbers in a response: {sorted(ids)[:3]}"


def refusal_text(err: grpc.aio.AioRpcError) -> str:
    return " ".join([str(err.details()), repr(err.trailing_metadata()),
                     str(err.debug_error_string())])


def envelope(body: ev.Body, source: str) -> events_pb2.Envelope:
    return envelope_to_proto(ev.Envelope(f"acc-{uuid.uuid4().hex[:10]}",
                                         at(dt.date(2024, 5, 2)), source, body))


async def test_every_ingest_method_refuses_strangers_other_regions_and_other_kinds(
    city_stack: City,
) -> None:
    stack = city_stack
    child_a = sorted(stack.a_children)[0]
    guardian = citizen_id("220104", dt.date(1975, 1, 1), 901)
    period = Period.of(2024, 5)

    def payment(source: str) -> events_pb2.Envelope:
        return envelope(ev.Disbursement(f"DX-{uuid.uuid4().hex[:6]}", child_a,
                                        Program.ORPHAN_DISPERSED, period, 150_000,
                                        period.first_day(), guardian, A), source)

    def enrolment(source: str) -> events_pb2.Envelope:
        parents = (ev.ParentRecord(citizen_id("220102", dt.date(1980, 1, 1), 902),
                                   Situation.DECEASED),
                   ev.ParentRecord(citizen_id("220103", dt.date(1980, 1, 1), 903),
                                   Situation.DECEASED))
        born = dt.date(int(child_a[6:10]), int(child_a[10:12]), int(child_a[12:14]))
        return envelope(ev.ChildEnrolled(child_a, born, Program.ORPHAN_DISPERSED,
                                         A, dt.date(2024, 1, 5), parents), source)

    ends_before = await asyncio.to_thread(true_end_offsets, stack.kafka.bootstrap,
                                          stack.kafka.events_topic)
    refusals = 0
    async with grpc.aio.insecure_channel(stack.services["ingest"].target) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)

        async def batch(events: list[events_pb2.Envelope], meta: Any) -> Any:
            return await stub.SubmitBatch(ingest_pb2.SubmitBatchRequest(events=events),
                                          metadata=meta, timeout=20)

        async def stream(events: list[events_pb2.Envelope], meta: Any) -> Any:
            return await stub.SubmitStream(iter(events), metadata=meta, timeout=20)

        for method in (batch, stream):
            for meta in ((), bearer(WRONG), (("authorization", CITY_TOKEN),),
                         (("authorization", "Basic " + CITY_TOKEN),)):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await method([payment("synthetic")], meta)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, method
                assert_nothing_leaked(stack, refusal_text(caught.value))
                refusals += 1
            # Region B's source sends facts about a child of region A.
            other = [payment("src-b"), enrolment("src-b")]
            answer = await method(other, bearer("tok-src-b"))
            # A source allowed payments only sends an enrolment (too narrow a scope).
            narrow = [enrolment("src-a-pay")]
            answer2 = await method(narrow, bearer("tok-src-a-pay-only"))
            for sent, reply, reason in ((other, answer, "REGION_NOT_ALLOWED"),
                                        (narrow, answer2, "KIND_NOT_ALLOWED")):
                assert reply.accepted == 0 and reply.rejected == len(sent), reply
                for result in reply.results:
                    assert result.status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
                    assert reason.lower().split("_")[0] in result.status.message.lower() or \
                        reason == "KIND_NOT_ALLOWED", result.status.message
                    refusals += 1
                text = str(reply)
                sent_text = " ".join(str(m) for m in sent)
                assert not (citizen_ids_in_text(text)), "an ID number echoed in a rejection"
                assert_nothing_leaked(stack, text, sent_text)
    assert await asyncio.to_thread(true_end_offsets, stack.kafka.bootstrap,
                                   stack.kafka.events_topic) == ends_before, "something got in"
    print(f"\ningest access: {refusals} refusals over SubmitBatch and SubmitStream")


DESK_ROLE = {  # the least role each write needs
    "AcknowledgeAlert": "investigator", "AddNote": "investigator",
    "ResolveAlert": "investigator", "AssignAlert": "supervisor", "ReopenAlert": "supervisor",
}


async def call(stub: desk_pb2_grpc.AlertDeskStub, method: str, request: Any,
               meta: Any) -> list[Any]:
    """A unary call's answer, or a stream's messages until the feed is idle (heartbeat)."""
    if method != "WatchAlerts":
        return [await getattr(stub, method)(request, metadata=meta, timeout=20)]
    out = []
    stream = stub.WatchAlerts(request, metadata=meta, timeout=20)
    try:
        async for message in stream:
            if not message.HasField("change"):
                break  # a heartbeat: everything up to now was sent
            out.append(message)
    finally:
        stream.cancel()
    return out


async def test_every_desk_method_refuses_strangers_other_regions_and_low_roles(
    city_stack: City,
) -> None:
    stack = city_stack
    target = next(a for a in stack.a_alerts if a["status"] == "OPEN")
    child_a = target["child_id"]
    requests = desk_requests(target, child_a, assignee="Investigator A")
    assert set(requests) == set(desk_pb2.DESCRIPTOR.services_by_name["AlertDesk"].methods_by_name)
    codes: dict[str, dict[str, str]] = {m: {} for m in requests}
    async with grpc.aio.insecure_channel(stack.services["desk"].target) as channel:
        stub = desk_pb2_grpc.AlertDeskStub(channel)

        async def refused(method: str, meta: Any, request: Any = None) -> grpc.StatusCode:
            req = requests[method] if request is None else request
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(stub, method, req, meta)
            assert_nothing_leaked(stack, refusal_text(caught.value), str(req))
            return caught.value.code()

        for method in requests:
            for label, meta in (("no token", ()), ("wrong token", bearer(WRONG)),
                                ("not bearer", (("authorization", "tok-sup-a"),))):
                code = await refused(method, meta)
                assert code == grpc.StatusCode.UNAUTHENTICATED, (method, label, code)
            codes[method]["unauthenticated"] = "UNAUTHENTICATED"

            # Another region's supervisor (the highest role: only the region is wrong).
            if method in ("ListAlerts", "WatchAlerts", "Summary", "WhoAmI"):  # own scope
                got = await call(stub, method, requests[method], bearer("tok-sup-b"))
                assert got and got[0] is not None
                assert_nothing_leaked(stack, " ".join(str(g) for g in got))
                codes[method]["other region"] = "OK, region A absent"
            else:
                code = await refused(method, bearer("tok-sup-b"))
                assert code == grpc.StatusCode.NOT_FOUND, (method, code)
                codes[method]["other region"] = code.name

            # Too low a role, in the alert's own region.
            if method in DESK_ROLE:
                low = "tok-viewer-a" if DESK_ROLE[method] == "investigator" else "tok-inv-a"
                code = await refused(method, bearer(low))
                assert code == grpc.StatusCode.PERMISSION_DENIED, (method, code)
                codes[method]["too-low role"] = code.name
            else:  # reads are open to viewers of the region
                got = await call(stub, method, requests[method], bearer("tok-viewer-a"))
                assert got
                codes[method]["too-low role"] = "n/a (viewers may read)"

        # Region B asking by A's identifiers, through the filters: nothing at all.
        a_ids = [a["alert_id"] for a in stack.a_alerts]
        for flt in (desk_pb2.AlertFilter(regions=[A]), desk_pb2.AlertFilter(child=child_a),
                    desk_pb2.AlertFilter(alert_ids=a_ids[:50])):
            page = (await call(stub, "ListAlerts", desk_pb2.ListAlertsRequest(filter=flt),
                               bearer("tok-inv-b")))[0]
            assert not page.alerts and page.total == 0, flt
            assert_nothing_leaked(stack, str(page), str(flt))
            watched = await call(stub, "WatchAlerts",
                                 desk_pb2.WatchAlertsRequest(filter=flt, after_cursor=0),
                                 bearer("tok-inv-b"))
            assert not watched
        summary = (await call(stub, "Summary", desk_pb2.SummaryRequest(regions=[A]),
                              bearer("tok-sup-b")))[0]
        assert not summary.rows and summary.alerts == 0
        key_a = pseudonym(KEY.encode(), child_a)
        code = await refused("GetChildTimeline", bearer("tok-sup-b"),
                             desk_pb2.GetChildTimelineRequest(child=key_a))
        assert code == grpc.StatusCode.NOT_FOUND
        # Region B's own stream carries only region B.
        own = await call(stub, "WatchAlerts", desk_pb2.WatchAlertsRequest(after_cursor=0),
                         bearer("tok-sup-b"))
        assert own and {m.change.version.region for m in own} == {B}
    after = await fetch(stack.dsn, "SELECT alert_id, status, version FROM alerts"
                                   " WHERE alert_id = $1", target["alert_id"])
    assert (after[0]["status"], after[0]["version"]) == (target["status"], target["version"])
    # Region B's lookups by A's ID number are whole-ID reads: audited although nothing
    # matched, naming only the number B sent; no read of B returned anything.
    audit = await fetch(stack.dsn, "SELECT action, whole_ids, detail FROM desk_audit"
                                   " WHERE actor LIKE '%B'")
    assert audit and {r["action"] for r in audit} <= {"LOOKUP_CHILD_ID", "READ_CHILD_TIMELINE"}
    for row in audit:
        assert row["whole_ids"] == [child_a], row
        assert " 0 alerts" in row["detail"] or "nothing found" in row["detail"] \
            or row["detail"] == "WatchAlerts", row
    print("\ndesk access: " + json.dumps(codes))


# --- 6. privacy --------------------------------------------------------------------------


async def test_no_citizen_id_in_logs_metrics_kafka_keys_or_alert_payloads(
    city_stack: City,
) -> None:
    stack = city_stack
    ingest, desk = stack.services["ingest"], stack.services["desk"]
    # Traffic that puts ID numbers in front of every service: rejected events naming a
    # child, a dead letter holding one, desk reads by ID number (whole IDs returned).
    child = sorted(stack.a_children)[1]
    bad = envelope_to_proto(ev.Envelope(
        "privacy-bad", at(dt.date(2024, 5, 2)), "synthetic",
        ev.ChildAdopted(child, dt.date(2024, 4, 1))))
    bad.child_adopted.adoption_date = "9999-01-01"
    wrong_check = envelope_to_proto(ev.Envelope(
        "privacy-check", at(dt.date(2024, 5, 2)), "synthetic",
        ev.ChildAdopted(child, dt.date(2024, 4, 1))))
    wrong_check.child_adopted.child_id = child[:17] + ("0" if child[17] != "0" else "1")
    stack.ids.add(wrong_check.child_adopted.child_id)
    async with grpc.aio.insecure_channel(ingest.target) as channel:
        answer = await ingest_pb2_grpc.IngestServiceStub(channel).SubmitBatch(
            ingest_pb2.SubmitBatchRequest(events=[bad, wrong_check]),
            metadata=bearer(CITY_TOKEN), timeout=20)
    assert answer.rejected == 2
    producer = KafkaProducer(bootstrap_servers=stack.kafka.bootstrap, acks="all")
    try:
        producer.send(stack.kafka.events_topic, key=b"rogue", value=bad.SerializeToString(),
                      partition=0).get(20)
    finally:
        producer.close()
    async with grpc.aio.insecure_channel(desk.target) as channel:
        stub = desk_pb2_grpc.AlertDeskStub(channel)
        meta = bearer("tok-sup-a")
        for alert in stack.a_alerts[:5]:
            got = await stub.GetAlert(desk_pb2.GetAlertRequest(alert_id=alert["alert_id"]),
                                      metadata=meta, timeout=20)
            assert got.alert.child_id_whole and looks_like_citizen_id(got.alert.child_id)
        await stub.GetChildTimeline(desk_pb2.GetChildTimelineRequest(child=child),
                                    metadata=meta, timeout=20)
        await stub.ListAlerts(desk_pb2.ListAlertsRequest(filter=desk_pb2.AlertFilter(
            child=child)), metadata=meta, timeout=20)
    ends = await asyncio.to_thread(true_end_offsets, stack.kafka.bootstrap,
                                   stack.kafka.events_topic)
    await wait_committed(stack.dsn, GROUP, ends, 60,
                         alive=stack.services["verifier"].assert_alive)

    scrapes = {name: svc.scrape() for name, svc in stack.services.items()}
    codes = stop_all(stack.services.values())  # logs complete, shutdown included
    assert set(codes.values()) == {0}, codes
    scanned: dict[str, int] = {}
    keys = {pseudonym(KEY.encode(), i) for i in stack.ids}
    for name, svc in stack.services.items():
        log = svc.log.read_text(errors="replace")
        assert "level=DEBUG" in log or name == "desk", f"{name} did not log at DEBUG"
        for where, text in ((f"{name} log", log), (f"{name} metrics", scrapes[name])):
            found = citizen_ids_in_text(text)
            assert not found, f"{where} holds citizen ID numbers: {found[:3]}"
            named = [i for i in stack.ids if i in text]
            assert not named, f"{where} holds ID numbers of the city: {named[:3]}"
            scanned[where] = len(text)
        assert not [k for k in keys if k in scrapes[name]], f"{name} metrics hold child keys"
    kafka = stack.kafka
    records = 0
    for topic in (kafka.events_topic, kafka.alerts_topic, kafka.deadletter_topic):
        for rec in await asyncio.to_thread(read_all, kafka.bootstrap, topic):
            records += 1
            key = rec.key or b""
            assert not citizen_ids_in_bytes(key), f"an ID number as a key on {topic}"
            assert not [i for i in stack.ids if i.encode() in key], topic
            if topic == kafka.alerts_topic:  # AlertVersion: child_key only, never the ID
                assert not citizen_ids_in_bytes(rec.value), "an ID number in an alert payload"
                assert not [i for i in stack.ids if i.encode() in rec.value]
            for _, value in rec.headers or ():
                if topic != kafka.deadletter_topic:
                    assert not citizen_ids_in_bytes(value), f"an ID number in a header on {topic}"
    letters = await asyncio.to_thread(read_all, kafka.bootstrap, kafka.deadletter_topic)
    assert letters, "the rogue record should have been dead-lettered"
    for letter in letters:  # the detail header is text for operators: no ID numbers either
        detail = dict(letter.headers).get("detail", b"")
        assert not citizen_ids_in_bytes(detail), "an ID number in a dead-letter detail"
    print(f"\nprivacy: {len(stack.ids)} ID numbers sent; scanned "
          f"{sum(scanned.values()) // 1024} KiB of logs and metrics of 3 services and "
          f"{records} Kafka records (keys; alert payloads): no ID number found")
