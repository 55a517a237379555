"""Staff-side limits of the desk (issue 14, items 5, 7, 11 and the whole-ID reads of 4):
every string and list field bounded, NUL bytes and forged page tokens refused as
INVALID_ARGUMENT (they used to end as INTERNAL), a 2 MiB reason refused before it
reaches the outbox, whole-ID reads limited per staff member and hour, and a watch
stream that ends once its staff member is deactivated or loses the region."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from desk_support import (
    REGION_A,
    REGION_B,
    Desk,
    auth,
    bad_request_fields,
    next_change,
    person,
    request_from,
    running_desk,
    unenrolled_payments,
)
from humiao.api.desk.v1 import desk_pb2
from humiao.desk import limits
from humiao.desk.auth import add_staff

pytestmark = pytest.mark.integration

BOSS = "tok-boss"  # a supervisor of every region: only the field is wrong
LIMIT = 3
METHODS = desk_pb2.DESCRIPTOR.services_by_name["AlertDesk"].methods


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[Desk]:
    async with running_desk(database_url, whole_id_reads_per_hour=LIMIT,
                            watch_recheck_seconds=0) as running:
        yield running


async def answer(desk: Desk, method: str, request: Message, token: str = BOSS) -> Any:
    """A unary answer, or a stream's first message."""
    if method != "WatchAlerts":
        return await desk.call(method, request, token)
    stream = desk.stub.WatchAlerts(request, metadata=auth(token))
    try:
        return await asyncio.wait_for(stream.read(), timeout=10)
    finally:
        stream.cancel()


async def refusal(desk: Desk, method: str, request: Message, token: str = BOSS) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await answer(desk, method, request, token)
    return caught.value


def field_cases(message: Message, prefix: str = "") -> list[tuple[str, Message, str]]:
    """(path, a request with that field over its limit, how) for every string and list
    field of `message`'s type, nested messages included."""
    cases = []
    for fd in message.DESCRIPTOR.fields:
        path = f"{prefix}{fd.name}"
        limit = limits.LIMITS.get(fd.name, limits.DEFAULT)
        if fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.is_repeated:
            for inner_path, inner, how in field_cases(getattr(message, fd.name), f"{path}."):
                outer = type(message)()
                getattr(outer, fd.name).CopyFrom(inner)
                cases.append((inner_path, outer, how))
            continue
        if fd.is_repeated:
            over = type(message)()
            item = 1 if fd.type == FieldDescriptor.TYPE_ENUM else "A1"
            getattr(over, fd.name).extend([item] * (limit.items + 1))
            cases.append((path, over, "items"))
        if fd.type == FieldDescriptor.TYPE_STRING:
            for how, text in (("long", "7" * (limit.chars + 1)), ("NUL", "a\x00b")):
                bad = type(message)()
                if fd.is_repeated:
                    getattr(bad, fd.name).append(text)
                    cases.append((f"{path}[0]", bad, how))
                else:
                    setattr(bad, fd.name, text)
                    cases.append((path, bad, how))
    return cases


async def test_every_string_and_list_field_is_bounded_and_named(desk: Desk) -> None:
    tried = 0
    for method in METHODS:
        for path, request, how in field_cases(desk_pb2.__dict__[method.input_type.name]()):
            err = await refusal(desk, method.name, request)
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (method.name, path, how)
            assert path in bad_request_fields(err), (method.name, path, how, err.details())
            tried += 1
    assert tried > 50
    names = {fd.name for m in METHODS for fd in m.input_type.fields}
    documented = set(limits.LIMITS) | {"filter", "page_size", "sort_by", "ascending",
                                       "expected_version", "resolution", "masked",
                                       "amount_recovered_fen", "after_cursor", "by_period"}
    assert names <= documented, f"fields without a documented limit: {names - documented}"


async def test_a_2_mib_reason_is_refused_before_anything_is_written(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 1))
    row = await desk.pool.fetchrow("SELECT alert_id, version FROM alerts")
    before = await desk.pool.fetchval("SELECT count(*) FROM alert_versions")
    for method, request in (
        ("AssignAlert", desk_pb2.AssignAlertRequest(
            alert_id=row["alert_id"], expected_version=1, assignee="Li", reason="x" * (2 << 20))),
        ("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
            alert_id=row["alert_id"], expected_version=1, note="y" * (limits.TEXT.chars + 1))),
        ("AddNote", desk_pb2.AddNoteRequest(alert_id=row["alert_id"], text="z" * 5000)),
    ):
        err = await refusal(desk, method, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(err) == {"reason" if method == "AssignAlert" else
                                           "note" if method == "AcknowledgeAlert" else "text"}
    assert await desk.pool.fetchval("SELECT count(*) FROM alert_versions") == before
    assert await desk.pool.fetchval("SELECT count(*) FROM alert_notes") == 0
    # At the limit it is accepted: the limit is the documented one, not lower.
    done = await desk.call("AssignAlert", desk_pb2.AssignAlertRequest(
        alert_id=row["alert_id"], expected_version=1, assignee="Li",
        reason="r" * limits.TEXT.chars), BOSS)
    assert done.version == 2


async def test_nul_bytes_and_id_numbers_in_free_text_are_invalid_argument(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 1))
    aid = await desk.pool.fetchval("SELECT alert_id FROM alerts")
    child = person()
    for method, request, field in (
        ("ListAlerts", desk_pb2.ListAlertsRequest(
            filter=desk_pb2.AlertFilter(assignee="Li\x00")), "filter.assignee"),
        ("GetAlert", desk_pb2.GetAlertRequest(alert_id=aid + "\x00"), "alert_id"),
        ("GetChildTimeline", desk_pb2.GetChildTimelineRequest(child="\x00" * 18), "child"),
        ("AddNote", desk_pb2.AddNoteRequest(alert_id=aid, text=f"spoke to {child}"), "text"),
        ("AddNote", desk_pb2.AddNoteRequest(
            alert_id=aid, text="full width " + child.translate(
                {ord(c): ord(c) + 0xFEE0 for c in "0123456789"})), "text"),
        ("ReopenAlert", desk_pb2.ReopenAlertRequest(
            alert_id=aid, expected_version=1, reason=f"id {child}"), "reason"),
    ):
        err = await refusal(desk, method, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, field)
        assert field in bad_request_fields(err)
        assert child not in str(err.details())
    assert await desk.pool.fetchval("SELECT count(*) FROM alert_notes") == 0
    ok = await desk.call("AddNote", desk_pb2.AddNoteRequest(
        alert_id=aid, text="line one\nline two\tand the amount 1234567 fen"), BOSS)
    assert ok.text.startswith("line one\n")


def forged(payload: Any, signature: str = "") -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"{body}.{signature}" if signature else body


async def test_forged_page_tokens_are_invalid_argument(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 7))
    first = desk_pb2.ListAlertsRequest(page_size=3, sort_by=desk_pb2.AMOUNT_AT_RISK)
    page = await desk.call("ListAlerts", first, BOSS)
    token = page.next_page_token
    assert token and (await desk.call("ListAlerts", request_from(first, token), BOSS)).alerts
    body, _, signature = token.partition(".")
    mark = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))[0]
    for bad in (
        "not-a-token", "====", "\u00e9\u00e9", forged([mark, 10**30, "A"]),
        forged([mark, 10**30, "A"], signature), forged([mark, "x", {"a": 1}], signature),
        forged({"a": 1}), body + "." + signature[::-1], token + "0", "." + signature,
    ):
        err = await refusal(desk, "ListAlerts", request_from(first, bad))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert bad_request_fields(err) == {"page_token"}
    other = desk_pb2.ListAlertsRequest(page_size=3)  # another sort order
    err = await refusal(desk, "ListAlerts", request_from(other, token))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "another" in str(err.details())


async def test_whole_id_reads_are_limited_per_staff_member_and_hour(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 5))
    rows = await desk.pool.fetch("SELECT alert_id, child_id FROM alerts ORDER BY alert_id")
    for row in rows[:2]:  # masked views are not whole-ID reads: never counted
        masked = await desk.call("GetAlert", desk_pb2.GetAlertRequest(
            alert_id=row["alert_id"], masked=True), "tok-li")
        assert not masked.alert.child_id_whole and row["child_id"] not in str(masked)
    reads = [
        ("GetAlert", desk_pb2.GetAlertRequest(alert_id=rows[0]["alert_id"])),
        ("ListAlerts", desk_pb2.ListAlertsRequest(
            filter=desk_pb2.AlertFilter(child=rows[1]["child_id"]))),
        ("GetChildTimeline", desk_pb2.GetChildTimelineRequest(child=rows[2]["child_id"])),
    ]
    for method, request in reads:
        await desk.call(method, request, "tok-li")
    for method, request in reads:
        err = await refusal(desk, method, request, "tok-li")
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, method
        assert "an hour" in str(err.details())
    assert await desk.pool.fetchval(
        "SELECT count(*) FROM desk_audit WHERE actor = 'Li'") == LIMIT  # refusals read nothing
    # Another staff member of the same region has a budget of their own ...
    got = await desk.call("GetAlert", reads[0][1], "tok-wang")
    assert got.alert.child_id_whole
    # ... and the hour slides: reads older than an hour no longer count.
    await desk.pool.execute("UPDATE desk_audit SET at = at - interval '61 minutes'"
                            " WHERE actor = 'Li'")
    assert (await desk.call(*reads[0], "tok-li")).alert.child_id_whole


async def test_concurrent_whole_id_reads_cannot_overrun_the_limit(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 1))
    aid = await desk.pool.fetchval("SELECT alert_id FROM alerts")
    results = await asyncio.gather(
        *(desk.call("GetAlert", desk_pb2.GetAlertRequest(alert_id=aid), "tok-zhao")
          for _ in range(3 * LIMIT)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == LIMIT and len(refused) == 2 * LIMIT
    assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}


async def watch_then(desk: Desk, token: str, change: str, *args: Any) -> grpc.aio.AioRpcError:
    """Watch as `token`, receive one change, run `change` on the staff table, then feed
    more alerts: the stream must end with an error before delivering any of them."""
    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(after_cursor=0),
                                   metadata=auth(token))
    await desk.verifier.feed(unenrolled_payments(REGION_A, 1))
    first = await next_change(stream)
    assert first.change.version.region == REGION_A
    await desk.pool.execute(change, *args)
    await desk.verifier.feed(unenrolled_payments(REGION_A, 3))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        while True:
            message = await asyncio.wait_for(stream.read(), timeout=10)
            assert not message.HasField("change"), "delivered after the staff change"
    return caught.value


async def test_a_watch_ends_when_its_staff_member_is_deactivated(desk: Desk) -> None:
    await add_staff(desk.pool, "Dee", "viewer", [REGION_A], "tok-dee")
    err = await watch_then(desk, "tok-dee", "UPDATE staff SET active = false WHERE name = $1",
                           "Dee")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_watch_ends_when_its_staff_member_loses_the_region(desk: Desk) -> None:
    await add_staff(desk.pool, "Roe", "viewer", [REGION_A, REGION_B], "tok-roe")
    err = await watch_then(desk, "tok-roe", "UPDATE staff SET regions = $1 WHERE name = 'Roe'",
                           [REGION_B])
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # Watching what is still theirs goes on working.
    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(after_cursor=0),
                                   metadata=auth("tok-roe"))
    await desk.verifier.feed(unenrolled_payments(REGION_B, 1))
    assert (await next_change(stream)).change.version.region == REGION_B
    stream.cancel()
