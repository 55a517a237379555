"""Masks that hold (issue 14, item 4), tried as a viewer with a valid credential would.

From every masked output of the desk (the list, GetAlert's masked view, the watch stream,
the summary, the masked timeline) and from the alerts topic's payloads (the
alert_versions rows the outbox publishes byte for byte), a viewer collects what a mask
leaves of a child's ID number, enumerates every candidate it allows, and looks for an
oracle that confirms one:

- offline: the alert id (an unkeyed hash until issue 14: the true ID was found among
  ~600 candidates in a millisecond), the child key, under the development key too;
- online: the `child` filter and the timeline by ID number, which must be whole-ID
  reads: audited (even when nothing matches) and limited per staff member and hour.

The deployment runs with a key of its own: under the development default key the child
key IS an oracle, which is why production refuses that key (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from fault_support import citizen_ids_in_bytes, citizen_ids_in_text

from desk_support import (
    REGION_A,
    SECRET,
    Desk,
    auth,
    died,
    enrolled,
    guardian,
    paid,
    person,
    running_desk,
)
from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.desk.api import WHOLE_ID_READS_PER_HOUR
from humiao.domain.alerts import AlertCode, alert_id
from humiao.domain.identity import citizen_id_check_char, mask_id, pseudonym
from humiao.domain.values import Period

pytestmark = [pytest.mark.faults, pytest.mark.integration]

KEY = b"masks-hold-deployment-key"  # the deployment's own pseudonym key
DEV_KEY = SECRET  # the documented development default an attacker knows
LIMIT = 4  # whole-ID reads per hour in this test (the default is WHOLE_ID_READS_PER_HOUR)
VIEWER = "tok-viewer-a"


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[Desk]:
    async with running_desk(database_url, secret=KEY, whole_id_reads_per_hour=LIMIT) as running:
        yield running


async def a_child_with_adults(desk: Desk) -> tuple[str, set[str]]:
    """A child of region A with two parents, a guardian who is paid, payments after the
    child's death: several alerts, and adults' ID numbers in the evidence."""
    child, keeper = person(REGION_A, dt.date(2012, 3, 4)), person(born=dt.date(1975, 5, 6))
    enrolment = enrolled(child, REGION_A)
    await desk.verifier.feed([
        enrolment, guardian(child, keeper), paid(child, "2024-01", REGION_A, payee=keeper),
        paid(child, "2024-03", REGION_A, payee=keeper), paid(child, "2024-04", REGION_A),
        died(child, "2024-02-15"),
    ])
    parents = {p.person_id for p in enrolment.body.parents}  # type: ignore[union-attr]
    return child, parents | {keeper}


async def watched(desk: Desk, token: str) -> list[desk_pb2.WatchAlertsResponse]:
    """Every change from the start of the feed, up to the first heartbeat."""
    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(after_cursor=0),
                                   metadata=auth(token))
    out = []
    try:
        while True:
            message = await asyncio.wait_for(stream.read(), timeout=10)
            if not message.HasField("change"):
                return out
            out.append(message)
    finally:
        stream.cancel()


async def masked_outputs(desk: Desk, token: str) -> dict[str, list[Any]]:
    """Everything a viewer reads without a whole-ID read, by where it came from."""
    listed = await desk.all_pages(desk_pb2.ListAlertsRequest(), token)
    assert listed, "the scenario raised no alert"
    key = listed[0].child_key
    return {
        "list": listed,
        "get (masked)": [await desk.call("GetAlert", desk_pb2.GetAlertRequest(
            alert_id=a.alert_id, masked=True), token) for a in listed],
        "watch": await watched(desk, token),
        "summary": [await desk.call("Summary", desk_pb2.SummaryRequest(), token)],
        "timeline (masked)": [await desk.call("GetChildTimeline", desk_pb2.GetChildTimelineRequest(
            child=key, masked=True), token)],
        "alerts topic": [alerts_pb2.AlertVersion.FromString(r["payload"]) for r in
                         await desk.pool.fetch("SELECT payload FROM alert_versions")],
    }


def candidates(mask: str, year: int, month: int) -> list[str]:
    """Every ID number `mask` allows for a child born in `month` of `year` (the worst
    case: an age-out explanation or a masked birth date gives the month away)."""
    region, check = mask[:6], mask[-1]
    assert mask == region + "*" * 11 + check, f"not the documented mask: {mask}"
    days = calendar.monthrange(year, month)[1]
    out = []
    for day in range(1, days + 1):
        for seq in range(1000):
            first17 = f"{region}{year:04d}{month:02d}{day:02d}{seq:03d}"
            if citizen_id_check_char(first17) == check:
                out.append(first17 + check)
    return out


def unkeyed_alert_id(code: AlertCode, child_id: str, period: str, subject: str) -> str:
    """The derivation of alert ids before issue 14 (an unkeyed hash)."""
    raw = f"{code.name}|{child_id}|{period}|{subject}".encode()
    return "A" + hashlib.sha256(b"humiao-alert-v1|" + raw).hexdigest()[:24]


async def test_no_masked_output_lets_a_viewer_recover_the_id_number(desk: Desk) -> None:
    child, adults = await a_child_with_adults(desk)
    outputs = await masked_outputs(desk, VIEWER)
    texts = {where: " ".join(str(m) for m in msgs) for where, msgs in outputs.items()}
    for where, text in texts.items():
        assert not citizen_ids_in_text(text), f"an ID number whole in the {where}"
        for message in outputs[where]:
            assert not citizen_ids_in_bytes(message.SerializeToString()), where
        assert not [i for i in {child} | adults if i in text], where

    # What the masks leave: one mask (mask_id), the birth month at most.
    masks = {a.child_id for a in outputs["list"]} | {
        m.change.child_id for m in outputs["watch"]}
    assert masks == {mask_id(child)}
    (timeline,) = outputs["timeline (masked)"]
    births = {e.event.child_enrolled.birth_date for e in timeline.entries
              if e.event.HasField("child_enrolled")}
    assert births == {"2012-03-**"}, births
    assert not timeline.child_id_whole and timeline.child_id == mask_id(child)
    space = candidates(mask_id(child), 2012, 3)
    assert child in space and len(space) > 2000, len(space)

    # Offline oracles: none confirms a candidate without the deployment's key.
    alerts = outputs["list"]
    keys = {a.child_key for a in alerts}
    seen = {a.alert_id for a in alerts}
    for guess in space:
        assert pseudonym(DEV_KEY, guess) not in keys
        assert hashlib.sha256(guess.encode()).hexdigest()[:32] not in keys
        for a in alerts:
            code = AlertCode(a.code)
            assert unkeyed_alert_id(code, guess, a.period, a.subject) not in seen, "unkeyed id"
            assert alert_id(DEV_KEY, code, guess, Period.parse(a.period), a.subject) not in seen
    # ... while the key does (so the enumeration above was the right one).
    confirmed = {g for g in space if pseudonym(KEY, g) in keys}
    assert confirmed == {child}
    a = alerts[0]
    assert alert_id(KEY, AlertCode(a.code), child, Period.parse(a.period), a.subject) == a.alert_id

    # The online oracle: lookups by ID number are whole-ID reads, audited and limited.
    guesses = [*[g for g in space if g != child][: LIMIT - 1], child]
    for guess in guesses:
        page = await desk.call("ListAlerts", desk_pb2.ListAlertsRequest(
            filter=desk_pb2.AlertFilter(child=guess)), VIEWER)
        assert bool(page.alerts) is (guess == child)
    rows = await desk.pool.fetch("SELECT action, whole_ids FROM desk_audit WHERE actor ="
                                 " 'Viewer A' ORDER BY audit_id")
    assert [(r["action"], r["whole_ids"]) for r in rows] == [
        ("LOOKUP_CHILD_ID", [g]) for g in guesses], "every guess audited, the hit too"
    for method, request in (
        ("ListAlerts", desk_pb2.ListAlertsRequest(filter=desk_pb2.AlertFilter(child=space[-1]))),
        ("GetChildTimeline", desk_pb2.GetChildTimelineRequest(child=space[-1], masked=True)),
        ("GetAlert", desk_pb2.GetAlertRequest(alert_id=a.alert_id)),
    ):
        err = await desk.refused(method, request, VIEWER)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, method
    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(
        filter=desk_pb2.AlertFilter(child=space[-1])), metadata=auth(VIEWER))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(stream.read(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await desk.pool.fetchval("SELECT count(*) FROM desk_audit") == LIMIT
    # At the default limit, trying the whole space takes days of audited guessing.
    assert len(space) / WHOLE_ID_READS_PER_HOUR > 48


async def test_a_whole_id_read_audits_every_id_number_it_returns(
    desk: Desk, caplog: pytest.LogCaptureFixture,
) -> None:
    child, adults = await a_child_with_adults(desk)
    listed = await desk.all_pages(desk_pb2.ListAlertsRequest(), "tok-li")
    by_payee = next(a for a in listed if a.subject and a.code == alerts_pb2.PAID_AFTER_DEATH)
    got = await desk.call("GetAlert", desk_pb2.GetAlertRequest(alert_id=by_payee.alert_id),
                          "tok-li")
    timeline = await desk.call("GetChildTimeline", desk_pb2.GetChildTimelineRequest(
        child=by_payee.child_key), "tok-li")
    returned = {"READ_ALERT_ID": set(citizen_ids_in_text(str(got))),
                "READ_CHILD_TIMELINE": set(citizen_ids_in_text(str(timeline)))}
    assert got.alert.child_id_whole and child in returned["READ_ALERT_ID"]
    assert returned["READ_CHILD_TIMELINE"] == {child} | adults, "parents, guardian, payee"
    rows = await desk.pool.fetch("SELECT action, child_key, whole_ids FROM desk_audit"
                                 " WHERE actor = 'Li' ORDER BY audit_id")
    assert [r["action"] for r in rows] == ["READ_ALERT_ID", "READ_CHILD_TIMELINE"]
    for row in rows:
        assert set(row["whole_ids"]) == returned[row["action"]], row["action"]
        assert row["child_key"] == by_payee.child_key
    assert len(rows[0]["whole_ids"]) > 1, "the adults in the evidence are named too"
    # The audit trail GetAlert shows its readers holds no ID number (only the table does).
    assert not citizen_ids_in_text(str(list(got.audit)))
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert not citizen_ids_in_text(logged)
