"""The alert desk against real PostgreSQL, with alerts the real verifier raised."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest

from desk_support import (
    REGION_A,
    REGION_B,
    Desk,
    auth,
    bad_request_fields,
    died,
    enrolled,
    guardian,
    key_of,
    next_change,
    paid,
    person,
    reversed_,
    running_desk,
    unenrolled_payments,
)
from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.desk.auth import parse_credentials
from humiao.desk.metrics import DeskMetrics
from humiao.domain.identity import mask_id

pytestmark = pytest.mark.integration


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[Desk]:
    async with running_desk(database_url) as running:
        yield running


async def first_alert(desk: Desk, where: str, *args: Any) -> asyncpg.Record:
    row = await desk.pool.fetchrow(
        f"SELECT alert_id, version, child_id, child_key FROM alerts WHERE {where}"
        " ORDER BY alert_id LIMIT 1", *args)
    assert row is not None
    return row


# --- listing --------------------------------------------------------------------------


async def test_filters_return_exactly_the_matching_alerts(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 12, period="2024-02")
                             + unenrolled_payments(REGION_A, 9, period="2024-05")
                             + unenrolled_payments(REGION_B, 8, period="2024-02"))
    child, g = person(), person(born=__import__("datetime").date(1970, 1, 1))
    await desk.verifier.feed([enrolled(child, REGION_A), guardian(child, g),
                              paid(child, "2024-03", REGION_A, payee=g), died(child, "2024-02-10")])

    def req(**kw: Any) -> desk_pb2.ListAlertsRequest:
        return desk_pb2.ListAlertsRequest(filter=desk_pb2.AlertFilter(**kw), page_size=5)

    every_a = await desk.all_pages(req(), "tok-viewer-a")
    assert {a.alert_id for a in every_a} == await desk.ids_in_db("region = $1", REGION_A)
    assert len(every_a) == len({a.alert_id for a in every_a}) == 22

    period = await desk.all_pages(req(period_from="2024-03", period_to="2024-12"), "tok-viewer-a")
    assert {a.alert_id for a in period} == await desk.ids_in_db(
        "region = $1 AND period BETWEEN '2024-03' AND '2024-12'", REGION_A)

    death = await desk.all_pages(req(codes=[alerts_pb2.PAID_AFTER_DEATH]), "tok-viewer-a")
    assert [a.child_id for a in death] == [mask_id(child)]
    by_child = await desk.all_pages(req(child=child), "tok-viewer-a")
    assert {a.alert_id for a in by_child} == {a.alert_id for a in death}
    by_key = await desk.all_pages(req(child=key_of(child)), "tok-viewer-a")
    assert {a.alert_id for a in by_key} == {a.alert_id for a in death}

    rich = await desk.all_pages(req(min_amount_at_risk_fen=53_000, max_amount_at_risk_fen=55_000),
                                "tok-viewer-a")
    assert {a.alert_id for a in rich} == await desk.ids_in_db(
        "region = $1 AND amount_at_risk_fen BETWEEN 53000 AND 55000", REGION_A)
    assert rich and all(53_000 <= a.amount_at_risk_fen <= 55_000 for a in rich)

    by_amount = await desk.all_pages(
        desk_pb2.ListAlertsRequest(sort_by=desk_pb2.AMOUNT_AT_RISK, ascending=True, page_size=4),
        "tok-boss")
    amounts = [a.amount_at_risk_fen for a in by_amount]
    assert amounts == sorted(amounts) and len(by_amount) == 30

    first = await desk.call("ListAlerts", req(), "tok-viewer-a")
    assert first.total == 22
    assert {c.key: c.alerts for c in first.counts_by_code} == {"NOT_ENROLLED": 21,
                                                               "PAID_AFTER_DEATH": 1}
    assert {c.key: c.alerts for c in first.counts_by_status} == {"OPEN": 22}

    err = await desk.refused("ListAlerts", req(period_from="2024-13", child="12345"), "tok-li")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(err) == {"filter.period_from", "filter.child"}
    other = desk_pb2.ListAlertsRequest(page_token=first.next_page_token, sort_by=desk_pb2.PERIOD)
    err = await desk.refused("ListAlerts", other, "tok-li")
    assert bad_request_fields(err) == {"page_token"}


@pytest.mark.parametrize("ascending", [False, True])
async def test_pages_have_no_duplicates_or_gaps_while_alerts_are_added(
    desk: Desk, ascending: bool
) -> None:
    for _ in range(3):  # three batches: many alerts share one raised_at (ties on alert_id)
        await desk.verifier.feed(unenrolled_payments(REGION_A, 10))
    before = await desk.ids_in_db("true")

    additions = 0

    async def add_more() -> None:
        nonlocal additions
        if additions < 7:
            additions += 1
            await desk.verifier.feed(unenrolled_payments(REGION_A, 3))

    seen = await desk.all_pages(
        desk_pb2.ListAlertsRequest(page_size=4, ascending=ascending), "tok-li", between=add_more)
    ids = [a.alert_id for a in seen]
    assert len(ids) == len(set(ids)), "an alert came twice"
    assert before <= set(ids), "an alert that existed throughout was skipped"
    stamps = [(a.raised_at.ToDatetime(), a.alert_id) for a in seen]
    assert stamps == sorted(stamps, reverse=not ascending)
    now = await desk.ids_in_db("true")
    assert len(now) == 30 + 3 * 7  # the additions really happened
    if ascending:  # additions sort after the cursor: they are met on later pages
        assert set(ids) == now
    else:  # additions sort before the cursor: none of them shows up
        assert set(ids) == before


# --- the live feed ----------------------------------------------------------------------


async def caught_up(desk: Desk) -> None:
    """Wait until the feed has passed every committed version (a watcher that starts
    without a cursor starts at the feed's horizon)."""
    top = await desk.pool.fetchval("SELECT coalesce(max(seq), 0) FROM alert_versions")
    deadline = time.monotonic() + 10
    while desk.feed.horizon < top:
        assert time.monotonic() < deadline, "the feed did not catch up"
        await desk.feed.wait_beyond(desk.feed.horizon, 0.1)


async def test_watch_live_then_resume_from_cursor(desk: Desk) -> None:
    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(), metadata=auth("tok-li"))
    heartbeat = await asyncio.wait_for(stream.read(), timeout=10)  # subscribed
    assert not heartbeat.HasField("change")

    await desk.verifier.feed(unenrolled_payments(REGION_B, 2) + unenrolled_payments(REGION_A, 1))
    live = await next_change(stream)
    assert live.change.version.region == REGION_A
    assert live.change.version.status == alerts_pb2.OPEN
    assert live.change.child_id.count("*") == 11
    cursor = live.cursor
    stream.cancel()

    await desk.verifier.feed(unenrolled_payments(REGION_A, 3) + unenrolled_payments(REGION_B, 3))
    row = await first_alert(desk, "region = $1 AND alert_id <> $2", REGION_A,
                            live.change.version.alert_id)
    await desk.call("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
        alert_id=row["alert_id"], expected_version=row["version"]), "tok-li")

    resumed = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(after_cursor=cursor),
                                    metadata=auth("tok-li"))
    got = [await next_change(resumed) for _ in range(4)]
    resumed.cancel()
    assert [m.cursor for m in got] == sorted(m.cursor for m in got)
    assert all(m.cursor > cursor for m in got)
    assert {m.change.version.region for m in got} == {REGION_A}
    assert [m.change.version.status for m in got] == [alerts_pb2.OPEN] * 3 + [
        alerts_pb2.ACKNOWLEDGED]
    assert got[-1].change.version.changed_by == "Li"
    assert got[-1].change.version.alert_id == row["alert_id"]


async def test_feed_waits_for_an_older_transaction_in_flight(desk: Desk) -> None:
    """A version committed after a newer one is still delivered, in seq order."""
    await desk.verifier.feed(unenrolled_payments(REGION_A, 2))
    rows = await desk.pool.fetch("SELECT alert_id, version FROM alerts ORDER BY alert_id")
    await caught_up(desk)
    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(), metadata=auth("tok-boss"))
    await asyncio.wait_for(stream.read(), timeout=10)

    slow = await desk.pool.acquire()
    tx = slow.transaction()
    await tx.start()
    # The slow transaction takes the lower seq and holds it uncommitted.
    await slow.execute(
        "INSERT INTO alert_versions (alert_id, version, status, changed_by, change_reason, payload)"
        " SELECT alert_id, 99, status, 'slow', 'test', (SELECT payload FROM alert_versions"
        " WHERE alert_id = $1 LIMIT 1) FROM alerts WHERE alert_id = $1", rows[0]["alert_id"])
    await desk.call("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
        alert_id=rows[1]["alert_id"], expected_version=rows[1]["version"]), "tok-li")
    polls = desk.feed.polls
    deadline = time.monotonic() + 10
    while desk.feed.polls < polls + 4:  # several polls: the newer row must be held back
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert desk.feed.horizon < await desk.pool.fetchval("SELECT max(seq) FROM alert_versions")
    await tx.commit()
    await desk.pool.release(slow)
    first = await next_change(stream)
    second = await next_change(stream)
    stream.cancel()
    assert first.cursor < second.cursor
    assert first.change.version.alert_id == rows[0]["alert_id"]
    assert second.change.version.changed_by == "Li"


async def test_feed_passes_a_hole_left_by_a_rolled_back_insert(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 1))
    row = await first_alert(desk, "true")
    await caught_up(desk)
    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(), metadata=auth("tok-li"))
    await asyncio.wait_for(stream.read(), timeout=10)
    async with desk.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(
            "INSERT INTO alert_versions (alert_id, version, status, changed_by, change_reason,"
            " payload) VALUES ($1, 77, 'OPEN', 'x', 'x', '')", row["alert_id"])
        await tx.rollback()  # its seq is gone for good
    await desk.call("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
        alert_id=row["alert_id"], expected_version=1), "tok-li")
    change = await next_change(stream)
    stream.cancel()
    assert change.change.version.status == alerts_pb2.ACKNOWLEDGED


async def test_staff_credentials_from_the_database_and_from_a_toml_file(
    desk: Desk, tmp_path: Any
) -> None:
    from humiao.desk.auth import add_staff, hash_token

    await add_staff(desk.pool, "Sun", "supervisor", [REGION_B], "tok-sun")
    await desk.verifier.feed(unenrolled_payments(REGION_B, 1) + unenrolled_payments(REGION_A, 1))
    page = await desk.call("ListAlerts", desk_pb2.ListAlertsRequest(), "tok-sun")
    assert [a.region for a in page.alerts] == [REGION_B]
    await desk.pool.execute("UPDATE staff SET active = false WHERE name = 'Sun'")
    err = await desk.refused("ListAlerts", desk_pb2.ListAlertsRequest(), "tok-sun")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED

    toml = tmp_path / "staff.toml"
    toml.write_text(f'[staff.{hash_token("t1")}]\nname = "Gao"\nrole = "viewer"\n'
                    f'regions = "*"\n', encoding="utf-8")
    staff = parse_credentials(str(toml))
    assert staff[hash_token("t1")].name == "Gao" and staff[hash_token("t1")].regions is None
    with pytest.raises(ValueError, match="role"):
        parse_credentials(json.dumps({hash_token("t2"): {"name": "X", "role": "admin"}}))


# --- lifecycle --------------------------------------------------------------------------


async def test_each_transition_and_each_refusal(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 2) + unenrolled_payments(REGION_B, 1))
    row = await first_alert(desk, "region = $1", REGION_A)
    aid = row["alert_id"]

    async def refused(method: str, req: Any, token: str, code: grpc.StatusCode) -> str:
        err = await desk.refused(method, req, token)
        assert err.code() == code, (method, token, err.details())
        return str(err.details())

    ack = desk_pb2.AcknowledgeAlertRequest(alert_id=aid, expected_version=1)
    await refused("AcknowledgeAlert", ack, "tok-viewer-a", grpc.StatusCode.PERMISSION_DENIED)
    await refused("AcknowledgeAlert", ack, "nope", grpc.StatusCode.UNAUTHENTICATED)
    no_token = await desk.stub.ListAlerts(desk_pb2.ListAlertsRequest()).code()
    assert no_token == grpc.StatusCode.UNAUTHENTICATED
    err = await refused("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(alert_id=aid),
                        "tok-li", grpc.StatusCode.INVALID_ARGUMENT)
    assert "expected_version" in err

    a1 = await desk.call("AcknowledgeAlert", ack, "tok-li")
    assert (a1.status, a1.assignee, a1.version) == (alerts_pb2.ACKNOWLEDGED, "Li", 2)
    msg = await refused("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
        alert_id=aid, expected_version=2), "tok-wang", grpc.StatusCode.FAILED_PRECONDITION)
    assert "ACKNOWLEDGED" in msg and "Li" in msg
    await refused("AcknowledgeAlert", ack, "tok-wang", grpc.StatusCode.ABORTED)  # stale version

    note = await desk.call("AddNote", desk_pb2.AddNoteRequest(alert_id=aid, text="called the bank"),
                           "tok-li")
    assert note.author == "Li"
    await refused("AddNote", desk_pb2.AddNoteRequest(alert_id=aid, text="x"), "tok-viewer-a",
                  grpc.StatusCode.PERMISSION_DENIED)

    resolve = desk_pb2.ResolveAlertRequest(
        alert_id=aid, expected_version=2, resolution=alerts_pb2.CONFIRMED_IMPROPER,
        amount_recovered_fen=30_000, note="recovered from the guardian")
    await refused("ResolveAlert", resolve, "tok-wang", grpc.StatusCode.PERMISSION_DENIED)
    bad = desk_pb2.ResolveAlertRequest(alert_id=aid, expected_version=2,
                                       resolution=alerts_pb2.FALSE_POSITIVE,
                                       amount_recovered_fen=5)
    err = await desk.refused("ResolveAlert", bad, "tok-li")
    assert bad_request_fields(err) == {"amount_recovered_fen", "note"}
    reopen = desk_pb2.ReopenAlertRequest(alert_id=aid, expected_version=2, reason="again")
    msg = await refused("ReopenAlert", reopen, "tok-zhao", grpc.StatusCode.FAILED_PRECONDITION)
    assert "ACKNOWLEDGED" in msg

    a2 = await desk.call("ResolveAlert", resolve, "tok-li")
    assert (a2.status, a2.resolution, a2.amount_recovered_fen, a2.version) == (
        alerts_pb2.RESOLVED, alerts_pb2.CONFIRMED_IMPROPER, 30_000, 3)
    msg = await refused("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
        alert_id=aid, expected_version=3), "tok-li", grpc.StatusCode.FAILED_PRECONDITION)
    assert "RESOLVED" in msg
    await refused("ReopenAlert", desk_pb2.ReopenAlertRequest(
        alert_id=aid, expected_version=3, reason="new facts"), "tok-li",
        grpc.StatusCode.PERMISSION_DENIED)
    a3 = await desk.call("ReopenAlert", desk_pb2.ReopenAlertRequest(
        alert_id=aid, expected_version=3, reason="bank says otherwise"), "tok-zhao")
    assert (a3.status, a3.resolution, a3.version) == (alerts_pb2.REOPENED, 0, 4)

    assign = desk_pb2.AssignAlertRequest(alert_id=aid, expected_version=4, assignee="Wang")
    await refused("AssignAlert", assign, "tok-li", grpc.StatusCode.PERMISSION_DENIED)
    err = await desk.refused("AssignAlert", desk_pb2.AssignAlertRequest(
        alert_id=aid, expected_version=4, assignee="Chen"), "tok-zhao")
    assert bad_request_fields(err) == {"assignee"}  # Chen works in another region
    a4 = await desk.call("AssignAlert", assign, "tok-zhao")
    assert (a4.status, a4.assignee, a4.version) == (alerts_pb2.ACKNOWLEDGED, "Wang", 5)
    a5 = await desk.call("ResolveAlert", desk_pb2.ResolveAlertRequest(
        alert_id=aid, expected_version=5, resolution=alerts_pb2.FALSE_POSITIVE,
        note="school records show enrollment"), "tok-wang")
    assert (a5.status, a5.amount_recovered_fen) == (alerts_pb2.RESOLVED, 0)

    full = await desk.call("GetAlert", desk_pb2.GetAlertRequest(alert_id=aid), "tok-viewer-a")
    assert [(v.version, v.status, v.changed_by) for v in full.versions] == [
        (1, alerts_pb2.OPEN, "verifier"), (2, alerts_pb2.ACKNOWLEDGED, "Li"),
        (3, alerts_pb2.RESOLVED, "Li"), (4, alerts_pb2.REOPENED, "Zhao"),
        (5, alerts_pb2.ACKNOWLEDGED, "Zhao"), (6, alerts_pb2.RESOLVED, "Wang")]
    assert full.versions[2].amount_recovered_fen == 30_000
    assert "recovered from the guardian" in full.versions[2].change_reason
    assert [(a.action, a.actor) for a in full.audit] == [
        ("ACKNOWLEDGE", "Li"), ("NOTE", "Li"), ("RESOLVE", "Li"), ("REOPEN", "Zhao"),
        ("ASSIGN", "Zhao"), ("RESOLVE", "Wang"), ("READ_ALERT_ID", "Viewer A")]
    assert [n.text for n in full.notes] == [
        "called the bank", "recovered from the guardian", "bank says otherwise",
        "school records show enrollment"]
    outbox = await desk.pool.fetch(
        "SELECT version, changed_by, published_at FROM alert_versions WHERE alert_id = $1"
        " ORDER BY version", aid)
    assert [r["version"] for r in outbox] == [1, 2, 3, 4, 5, 6]


async def test_two_concurrent_resolves_one_wins(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 1))
    row = await first_alert(desk, "true")
    await desk.call("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
        alert_id=row["alert_id"], expected_version=1), "tok-li")

    def resolve(note: str) -> desk_pb2.ResolveAlertRequest:
        return desk_pb2.ResolveAlertRequest(alert_id=row["alert_id"], expected_version=2,
                                            resolution=alerts_pb2.OTHER, note=note)

    results = await asyncio.gather(
        desk.call("ResolveAlert", resolve("by Li"), "tok-li"),
        desk.call("ResolveAlert", resolve("by Zhao"), "tok-zhao"),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, desk_pb2.Alert)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1 and len(losses) == 1
    assert losses[0].code() == grpc.StatusCode.ABORTED
    assert await desk.pool.fetchval(
        "SELECT count(*) FROM alert_versions WHERE alert_id = $1 AND status = 'RESOLVED'",
        row["alert_id"]) == 1


# --- regions, masking, audit ----------------------------------------------------------


async def scenario_child(desk: Desk) -> tuple[str, dict[str, str]]:
    """A child in region A: one good payment, one after its death, one reversed."""
    import datetime as dt

    child, g = person(), person(born=dt.date(1970, 1, 1))
    ok = paid(child, "2024-01", REGION_A, payee=g)
    late = paid(child, "2024-03", REGION_A, payee=g)
    undone = paid(child, "2024-04", REGION_A, payee=g)
    await desk.verifier.feed([enrolled(child, REGION_A), guardian(child, g), ok, late, undone,
                              died(child, "2024-02-15")])
    await desk.verifier.feed([reversed_(undone.body.disbursement_id, "2024-04-20")])  # type: ignore[union-attr]
    ids = {name: e.body.disbursement_id for name, e in  # type: ignore[union-attr]
           (("ok", ok), ("late", late), ("undone", undone))}
    return child, ids


async def test_region_a_staff_get_nothing_of_region_b(desk: Desk) -> None:
    child_a, _ = await scenario_child(desk)
    await desk.verifier.feed(unenrolled_payments(REGION_B, 2))
    a = await first_alert(desk, "region = $1", REGION_A)
    chen = "tok-chen"  # investigator of region B

    listed = await desk.all_pages(desk_pb2.ListAlertsRequest(), chen)
    assert listed and {x.region for x in listed} == {REGION_B}
    only_a = await desk.call("ListAlerts", desk_pb2.ListAlertsRequest(
        filter=desk_pb2.AlertFilter(regions=[REGION_A])), chen)
    assert not only_a.alerts and only_a.total == 0
    by_child = await desk.call("ListAlerts", desk_pb2.ListAlertsRequest(
        filter=desk_pb2.AlertFilter(child=child_a)), chen)
    assert not by_child.alerts

    missing = await desk.refused("GetAlert", desk_pb2.GetAlertRequest(alert_id="Anope"), chen)
    for method, req in [
        ("GetAlert", desk_pb2.GetAlertRequest(alert_id=a["alert_id"])),
        ("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(alert_id=a["alert_id"],
                                                               expected_version=1)),
        ("AddNote", desk_pb2.AddNoteRequest(alert_id=a["alert_id"], text="peek")),
        ("GetChildTimeline", desk_pb2.GetChildTimelineRequest(child=child_a)),
    ]:
        err = await desk.refused(method, req, chen)
        assert err.code() == grpc.StatusCode.NOT_FOUND, method
        assert child_a not in str(err.details())
    assert missing.code() == grpc.StatusCode.NOT_FOUND

    summary = await desk.call("Summary", desk_pb2.SummaryRequest(), chen)
    assert {r.region for r in summary.rows} == {REGION_B} and summary.alerts == 2

    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(after_cursor=0),
                                   metadata=auth(chen))
    got = [await next_change(stream) for _ in range(2)]
    await desk.verifier.feed(unenrolled_payments(REGION_A, 3) + unenrolled_payments(REGION_B, 1))
    got.append(await next_change(stream))
    stream.cancel()
    assert {m.change.version.region for m in got} == {REGION_B}
    # Chen's two lookups by A's ID number are audited although nothing matched; no read.
    rows = await desk.pool.fetch("SELECT action, whole_ids, detail FROM desk_audit"
                                 " WHERE actor = 'Chen' ORDER BY audit_id")
    assert [(r["action"], r["whole_ids"]) for r in rows] == [
        ("LOOKUP_CHILD_ID", [child_a]), ("READ_CHILD_TIMELINE", [child_a])]
    assert "0 alerts" in rows[0]["detail"] and "nothing found" in rows[1]["detail"]


async def test_masked_in_lists_whole_in_reads_and_every_read_audited(desk: Desk) -> None:
    child, ids = await scenario_child(desk)
    listed = await desk.call("ListAlerts", desk_pb2.ListAlertsRequest(), "tok-viewer-a")
    assert listed.alerts and all(a.child_id == mask_id(child) for a in listed.alerts)
    assert child.encode() not in listed.SerializeToString()
    assert mask_id(child) == child[:6] + "*" * 11 + child[-1:]

    death = await first_alert(desk, "code = 'PAID_AFTER_DEATH'")
    full = await desk.call("GetAlert", desk_pb2.GetAlertRequest(alert_id=death["alert_id"]),
                           "tok-viewer-a")
    assert full.alert.child_id == child and full.alert.child_id_whole
    kinds = {e.kind for e in full.evidence}
    assert all(e.found for e in full.evidence) and "disbursement" in kinds
    assert "personDied" in kinds
    assert all(e.recorded_at.seconds > 0 for e in full.evidence)
    assert full.alert.explanation_zh and full.alert.explanation_en

    timeline = await desk.call("GetChildTimeline", desk_pb2.GetChildTimelineRequest(child=child),
                               "tok-li")
    assert timeline.child_id == child and timeline.regions == [REGION_A]
    dates = [e.valid_date for e in timeline.entries]
    assert dates == sorted(dates)
    kinds_in_order = [e.kind for e in timeline.entries]
    assert kinds_in_order[0] == "guardianAppointed" and "personDied" in kinds_in_order
    verdicts = {e.event.disbursement.disbursement_id: e.verdict
                for e in timeline.entries if e.kind == "disbursement"}
    assert verdicts == {ids["ok"]: desk_pb2.VERIFIED, ids["late"]: desk_pb2.FLAGGED,
                        ids["undone"]: desk_pb2.REVERSED}
    late = next(e for e in timeline.entries if e.event.disbursement.disbursement_id == ids["late"])
    assert {alerts_pb2.AlertCode.Name(a.code) for a in late.alerts} == {"PAID_AFTER_DEATH"}
    by_key = await desk.call("GetChildTimeline", desk_pb2.GetChildTimelineRequest(
        child=key_of(child)), "tok-boss")
    assert len(by_key.entries) == len(timeline.entries)

    audit = await desk.pool.fetch(
        "SELECT actor, action, alert_id, child_key FROM desk_audit ORDER BY audit_id")
    assert [(r["actor"], r["action"]) for r in audit] == [
        ("Viewer A", "READ_ALERT_ID"), ("Li", "READ_CHILD_TIMELINE"),
        ("Boss", "READ_CHILD_TIMELINE")]
    assert audit[0]["alert_id"] == death["alert_id"] and audit[0]["child_key"] == key_of(child)
    assert audit[1]["child_key"] == key_of(child)

    stream = desk.stub.WatchAlerts(desk_pb2.WatchAlertsRequest(after_cursor=0),
                                   metadata=auth("tok-li"))
    change = await next_change(stream)
    stream.cancel()
    assert change.change.child_id == mask_id(child)


async def test_summary_totals_per_region_code_and_status(desk: Desk) -> None:
    await scenario_child(desk)
    await desk.verifier.feed(unenrolled_payments(REGION_A, 4, period="2024-06")
                             + unenrolled_payments(REGION_B, 3, period="2024-06"))
    row = await first_alert(desk, "code = 'NOT_ENROLLED' AND region = $1", REGION_A)
    await desk.call("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
        alert_id=row["alert_id"], expected_version=1), "tok-li")
    await desk.call("ResolveAlert", desk_pb2.ResolveAlertRequest(
        alert_id=row["alert_id"], expected_version=2, resolution=alerts_pb2.CONFIRMED_IMPROPER,
        amount_recovered_fen=12_345, note="repaid"), "tok-li")

    everything = await desk.call("Summary", desk_pb2.SummaryRequest(), "tok-boss")
    truth = await desk.pool.fetchrow(
        "SELECT count(*) AS n, sum(amount_at_risk_fen) AS risk,"
        " coalesce(sum(amount_recovered_fen), 0) AS rec FROM alerts")
    assert (everything.alerts, everything.amount_at_risk_fen, everything.amount_recovered_fen) == (
        truth["n"], truth["risk"], 12_345)
    june_a = await desk.call("Summary", desk_pb2.SummaryRequest(
        period_from="2024-06", period_to="2024-06"), "tok-zhao")
    assert {(r.region, r.code, r.status, r.alerts) for r in june_a.rows} == {
        (REGION_A, alerts_pb2.NOT_ENROLLED, alerts_pb2.OPEN, 3),
        (REGION_A, alerts_pb2.NOT_ENROLLED, alerts_pb2.RESOLVED, 1)}
    err = await desk.refused("Summary", desk_pb2.SummaryRequest(
        period_from="2024-07", period_to="2024-06"), "tok-zhao")
    assert bad_request_fields(err) == {"period_to"}



class RecordingMetrics(DeskMetrics):
    """The desk's observer, recording what the business code reports."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def whole_id_read(self, method: str) -> None:
        self.events.append(("whole_id_read", method))

    def transitioned(self, status: str) -> None:
        self.events.append(("transitioned", status))


async def test_the_desk_reports_reads_and_steps_to_its_metrics_observer(
    database_url: str,
) -> None:
    metrics = RecordingMetrics()
    async with running_desk(database_url, metrics=metrics) as desk:
        await desk.verifier.feed(unenrolled_payments(REGION_A, 1))
        row = await first_alert(desk, "region = $1", REGION_A)
        await desk.call("GetAlert", desk_pb2.GetAlertRequest(alert_id=row["alert_id"]), "tok-li")
        await desk.call("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
            alert_id=row["alert_id"], expected_version=1), "tok-li")
        refused = await desk.refused("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
            alert_id=row["alert_id"], expected_version=2), "tok-li")
        assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert metrics.events == [("whole_id_read", "GetAlert"), ("transitioned", "ACKNOWLEDGED")]


async def test_who_am_i_names_the_caller_and_refuses_a_stranger(desk: Desk) -> None:
    me = await desk.call("WhoAmI", desk_pb2.WhoAmIRequest(), "tok-li")
    assert (me.name, me.role, list(me.regions), me.all_regions) == (
        "Li", "investigator", [REGION_A], False)
    boss = await desk.call("WhoAmI", desk_pb2.WhoAmIRequest(), "tok-boss")
    assert boss.all_regions and not boss.regions
    err = await desk.refused("WhoAmI", desk_pb2.WhoAmIRequest(), "tok-nobody")
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_summary_by_period_and_the_median_working_times(desk: Desk) -> None:
    await desk.verifier.feed(unenrolled_payments(REGION_A, 3, period="2024-03")
                             + unenrolled_payments(REGION_A, 2, period="2024-04"))
    rows = await desk.pool.fetch(
        "SELECT alert_id FROM alerts WHERE period = '2024-03' ORDER BY alert_id")
    for row in rows[:2]:
        await desk.call("AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
            alert_id=row["alert_id"], expected_version=1), "tok-li")
    # the first was raised an hour before it was taken up, the second three hours before
    for row, hours in zip(rows[:2], (1, 3), strict=True):
        await desk.pool.execute(
            "UPDATE alerts SET raised_at = (SELECT changed_at FROM alert_versions"
            " WHERE alert_id = $1 AND version = 2) - make_interval(hours => $2)"
            " WHERE alert_id = $1", row["alert_id"], hours)
    summary = await desk.call("Summary", desk_pb2.SummaryRequest(by_period=True), "tok-zhao")
    by_period = {(r.period, alerts_pb2.AlertStatus.Name(r.status)): r.alerts for r in summary.rows}
    assert by_period == {("2024-03", "ACKNOWLEDGED"): 2, ("2024-03", "OPEN"): 1,
                         ("2024-04", "OPEN"): 2}
    assert summary.acknowledged == 2 and summary.resolved == 0
    assert summary.median_seconds_to_acknowledge == 2 * 3600  # median of 1 h and 3 h
    flat = await desk.call("Summary", desk_pb2.SummaryRequest(), "tok-zhao")
    assert {r.period for r in flat.rows} == {""}
    other = await desk.call("Summary", desk_pb2.SummaryRequest(by_period=True), "tok-chen")
    assert other.alerts == 0 and other.acknowledged == 0  # region B sees none of A's
