"""The staff access matrix (issue 14, "Done when"): every AlertDesk method x role
(viewer, investigator, supervisor) x the alert's own region or another, each cell on a
fresh alert of region A in the state the method needs, so a refusal is about access and
nothing else. Nothing crosses: another region's caller gets NOT_FOUND (or
PERMISSION_DENIED for a role too low for the method anywhere), an empty list, stream or
summary, and no answer, error or stored row carries anything of region A."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from desk_support import (
    REGION_A,
    REGION_B,
    Desk,
    auth,
    desk_requests,
    running_desk,
    unenrolled_payments,
)
from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2

pytestmark = pytest.mark.integration

ROLES = ("viewer", "investigator", "supervisor")
REGIONS = {"own": REGION_A, "other": REGION_B}
STAFF = {
    f"tok-{role}-{side}": (f"{role} {side}", role, [region])
    for role in ROLES for side, region in REGIONS.items()
} | {"tok-boss": ("Boss", "supervisor", "*")}
HOLDER = "investigator own"  # who holds the alerts a resolve or reopen needs
#: The least role each write needs; reads are open to every role of the region.
LEAST = {"AcknowledgeAlert": "investigator", "AddNote": "investigator",
         "ResolveAlert": "investigator", "AssignAlert": "supervisor",
         "ReopenAlert": "supervisor"}
SCOPED_READS = ("ListAlerts", "WatchAlerts", "Summary", "WhoAmI")  # answer for the own scope


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[Desk]:
    async with running_desk(database_url, staff=STAFF) as running:
        yield running


async def prepared(desk: Desk, method: str, alert_id: str, caller: str) -> Any:
    """The request `method` needs on `alert_id`, after bringing the alert into the state
    it needs (by Boss, a supervisor of every region)."""
    async def boss(name: str, request: Any) -> desk_pb2.Alert:
        result: desk_pb2.Alert = await desk.call(name, request, "tok-boss")
        return result

    version = 1
    if method in ("ResolveAlert", "ReopenAlert"):
        holder = caller if caller == "investigator own" else HOLDER
        version = (await boss("AssignAlert", desk_pb2.AssignAlertRequest(
            alert_id=alert_id, expected_version=1, assignee=holder))).version
    if method == "ReopenAlert":
        version = (await boss("ResolveAlert", desk_pb2.ResolveAlertRequest(
            alert_id=alert_id, expected_version=version, resolution=alerts_pb2.OTHER,
            note="closed for the test"))).version
    child_key = await desk.pool.fetchval(
        "SELECT child_key FROM alerts WHERE alert_id = $1", alert_id)
    alert = {"alert_id": alert_id, "version": version}
    return desk_requests(alert, child_key, assignee=HOLDER)[method]


async def outcome(desk: Desk, method: str, request: Any, token: str) -> tuple[str, str]:
    """(status code name, everything the caller received as text)."""
    try:
        if method != "WatchAlerts":
            return "OK", str(await desk.call(method, request, token))
        received = []
        stream = desk.stub.WatchAlerts(request, metadata=auth(token))
        try:
            while (message := await asyncio.wait_for(stream.read(), 10)).HasField("change"):
                received.append(str(message))
        finally:
            stream.cancel()
        return "OK", " ".join(received)
    except grpc.aio.AioRpcError as err:
        return err.code().name, f"{err.details()} {err.trailing_metadata()}"


def expected(method: str, role: str, side: str) -> str:
    need = LEAST.get(method)
    if need is not None and ROLES.index(role) < ROLES.index(need):
        return "PERMISSION_DENIED"  # too low a role, whatever the region
    if side == "other" and method not in SCOPED_READS:
        return "NOT_FOUND"  # exactly as if it did not exist
    return "OK"


async def test_every_method_role_and_region_cell(desk: Desk) -> None:
    methods = list(desk_pb2.DESCRIPTOR.services_by_name["AlertDesk"].methods_by_name)
    cells = [(m, r, s) for m in methods for r in ROLES for s in REGIONS]
    await desk.verifier.feed(unenrolled_payments(REGION_A, len(cells))
                             + unenrolled_payments(REGION_B, 2))
    rows = await desk.pool.fetch("SELECT alert_id, child_id, child_key FROM alerts"
                                 " WHERE region = $1 ORDER BY alert_id", REGION_A)
    secrets_a = {v for r in rows for v in (r["alert_id"], r["child_id"], r["child_key"])}
    matrix: dict[str, dict[str, str]] = {}
    for (method, role, side), row in zip(cells, rows, strict=False):
        caller = f"{role} {side}"
        request = await prepared(desk, method, row["alert_id"], caller)
        before = await desk.pool.fetchrow(
            "SELECT version, status, (SELECT count(*) FROM alert_notes n WHERE n.alert_id ="
            " a.alert_id) AS notes FROM alerts a WHERE alert_id = $1", row["alert_id"])
        code, received = await outcome(desk, method, request, f"tok-{role}-{side}")
        matrix.setdefault(method, {})[f"{role}/{side}"] = code
        assert code == expected(method, role, side), (method, role, side, received)
        after = await desk.pool.fetchrow(
            "SELECT version, status, (SELECT count(*) FROM alert_notes n WHERE n.alert_id ="
            " a.alert_id) AS notes FROM alerts a WHERE alert_id = $1", row["alert_id"])
        if code != "OK" or method in ("GetAlert", "GetChildTimeline", *SCOPED_READS):
            assert after == before, (method, role, side, "changed without the right")
        else:
            assert after != before, (method, role, side, "allowed but nothing happened")
        if side == "other":
            leaked = {s for s in secrets_a if s in received and s not in str(request)}
            assert not leaked, (method, role, "region A crossed over", sorted(leaked)[:2])
        elif method in SCOPED_READS:
            assert REGION_A in received, (method, role, "own region not shown")
    refused_reads = await desk.pool.fetchval(
        "SELECT count(*) FROM desk_audit WHERE actor LIKE '% other'")
    assert refused_reads == 0, "another region's caller left an audited read"
    print("\nstaff access matrix:", matrix)
