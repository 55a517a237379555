"""Test support for the alert desk: events, staff credentials, and a driver that feeds
events through the real verifier (its batch processor, in this process) so the desk
works on alerts the verifier really raised.

Shared by tests/integration/test_desk*.py and tests/e2e/test_desk_cli*.py (the tests
directory is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import builders
from humiao.adapters.codec import envelope_to_proto
from humiao.adapters.db import create_pool
from humiao.adapters.verifier_store import PgVerifierStore
from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2, desk_pb2_grpc
from humiao.config import KafkaSettings
from humiao.desk.api import AlertDeskServicer
from humiao.desk.auth import StaffDirectory, hash_token, parse_credentials
from humiao.desk.watch import ChangeFeed
from humiao.domain import events as ev
from humiao.domain.identity import compose_citizen_id, pseudonym
from humiao.domain.policy import PolicyBook
from humiao.domain.values import Period, Situation
from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.processor import InRecord, Processor

REGION_A = "110105"
REGION_B = "310101"
SECRET = b"humiao-development-pseudonym-key"  # PrivacySettings' development default
TOPIC = "desk-test.events"
GROUP = "desk-test-verifier"
SOURCE = "desk-test"

#: token -> (name, role, regions)
STAFF = {
    "tok-viewer-a": ("Viewer A", "viewer", [REGION_A]),
    "tok-li": ("Li", "investigator", [REGION_A]),
    "tok-wang": ("Wang", "investigator", [REGION_A]),
    "tok-zhao": ("Zhao", "supervisor", [REGION_A]),
    "tok-chen": ("Chen", "investigator", [REGION_B]),
    "tok-boss": ("Boss", "supervisor", "*"),
}


def credentials_json(staff: Mapping[str, tuple[str, str, Any]] = STAFF) -> str:
    """HUMIAO_STAFF_CREDENTIALS for `staff` (hashes only, as in production)."""
    return json.dumps({
        hash_token(tok): {"name": n, "role": r, "regions": g} for tok, (n, r, g) in staff.items()
    })


def key_of(person_id: str) -> str:
    return pseudonym(SECRET, person_id)


_serial = itertools.count(100)
_event = itertools.count(1)
_T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def person(region: str = REGION_A, born: dt.date = dt.date(2012, 3, 4)) -> str:
    """A fresh valid citizen ID number."""
    return compose_citizen_id(region, born, next(_serial))


def envelope(body: ev.Body) -> ev.Envelope:
    """`body` as the desk tests' source sends it, recorded a minute after the last one."""
    n = next(_event)
    return builders.env(body, f"ev-{n:06d}", _T0 + dt.timedelta(minutes=n), source=SOURCE)


def enrolled(child: str, region: str, approved: str = "2023-12-10") -> ev.Envelope:
    parents = ((person(region, dt.date(1980, 1, 1)), Situation.DECEASED),
               (person(region, dt.date(1981, 1, 1)), Situation.DECEASED))
    return envelope(builders.enrolled(approved=approved, parents=parents, child=child,
                                      born=dt.date(2012, 3, 4), region=region).body)


def guardian(child: str, guardian_id: str, since: str = "2023-12-01") -> ev.Envelope:
    return envelope(builders.guardian(guardian_id, since, child).body)


def paid(
    child: str, period: str, region: str, *, payee: str | None = None, amount: int = 120_000,
    disbursement_id: str | None = None,
) -> ev.Envelope:
    paid_on = str(Period.parse(period).first_day() + dt.timedelta(days=4))
    return envelope(builders.paid(
        period, amount, paid_on=paid_on, payee=payee or child, child=child, region=region,
        disbursement_id=disbursement_id or f"D-{next(_event):06d}").body)


def died(person_id: str, on: str) -> ev.Envelope:
    return envelope(builders.died(person_id, on).body)


def reversed_(disbursement_id: str, on: str) -> ev.Envelope:
    return envelope(ev.DisbursementReversed(disbursement_id, dt.date.fromisoformat(on)))


def unenrolled_payments(region: str, count: int, *, period: str = "2024-03") -> list[ev.Envelope]:
    """Payments to children with no enrollment: one NOT_ENROLLED alert each."""
    out = []
    for i in range(count):
        amount = 50_000 + 1_000 * (i % 7)
        out.append(paid(person(region), period, region, amount=amount))
    return out


class VerifierDriver:
    """Feeds envelopes through the verifier's batch processor as partition 0 of one topic."""

    def __init__(self, pool: asyncpg.Pool, secret: bytes = SECRET) -> None:
        self.pool = pool
        self.signing = KafkaSettings().record_signing_secret
        self.processor = Processor(
            group=GROUP, secret=secret, signing_secret=self.signing,
            policies=PolicyBook.default(), metrics=VerifierMetrics(),
        )
        self.offset = 0

    async def feed(self, envelopes: Sequence[ev.Envelope]) -> None:
        now_ms = int(time.time() * 1000)
        records = [
            InRecord.signed(self.signing, 0, self.offset + i, now_ms, None,
                            envelope_to_proto(e).SerializeToString())
            for i, e in enumerate(envelopes)
        ]
        batch = self.processor.prepare(TOPIC, records)
        assert not batch.dead, batch.dead
        async with self.pool.acquire() as conn:
            store = PgVerifierStore(conn)
            expected = await store.ensure_offsets(GROUP, TOPIC, [0])
            await self.processor.process(store, batch, expected)
        self.offset += len(records)


def auth(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Desk:
    """The desk servicer on a local port, its pool and feed, and a verifier feeding it."""

    stub: desk_pb2_grpc.AlertDeskStub
    pool: asyncpg.Pool
    verifier: VerifierDriver
    feed: ChangeFeed
    servicer: AlertDeskServicer
    channel: grpc.aio.Channel

    async def call(self, method: str, request: Any, token: str) -> Any:
        return await getattr(self.stub, method)(request, metadata=auth(token))

    async def refused(self, method: str, request: Any, token: str) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await self.call(method, request, token)
        return info.value

    async def all_pages(self, request: desk_pb2.ListAlertsRequest, token: str,
                        between: Callable[[], Any] | None = None) -> list[desk_pb2.Alert]:
        found: list[desk_pb2.Alert] = []
        while True:
            page = await self.call("ListAlerts", request, token)
            found.extend(page.alerts)
            if not page.next_page_token:
                return found
            if between is not None:
                await between()
            request = request_from(request, page.next_page_token)

    async def ids_in_db(self, sql_where: str = "true", *args: Any) -> set[str]:
        rows = await self.pool.fetch(f"SELECT alert_id FROM alerts WHERE {sql_where}", *args)
        return {r["alert_id"] for r in rows}


def request_from(previous: desk_pb2.ListAlertsRequest, token: str) -> desk_pb2.ListAlertsRequest:
    nxt = desk_pb2.ListAlertsRequest()
    nxt.CopyFrom(previous)
    nxt.page_token = token
    return nxt


@contextlib.asynccontextmanager
async def running_desk(
    database_url: str, *, secret: bytes = SECRET,
    staff: Mapping[str, tuple[str, str, Any]] = STAFF, **options: Any,
) -> AsyncIterator[Desk]:
    """The desk servicer on 127.0.0.1 (static `staff` and the staff table), its feed
    polling; `options` go to AlertDeskServicer (limits, heartbeat)."""
    pool = await create_pool(database_url)
    feed = ChangeFeed(pool, poll_interval=0.05)
    options.setdefault("heartbeat_seconds", 0.2)
    servicer = AlertDeskServicer(
        pool, StaffDirectory(parse_credentials(credentials_json(staff)), pool), feed,
        pseudonym_key=secret, **options,
    )
    server = grpc.aio.server()
    desk_pb2_grpc.add_AlertDeskServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stop = asyncio.Event()
    feed_task = asyncio.create_task(feed.run(stop))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Desk(desk_pb2_grpc.AlertDeskStub(channel), pool, VerifierDriver(pool, secret), feed,
                   servicer, channel)
    finally:
        stop.set()
        await feed_task
        await channel.close()
        await server.stop(0)
        await pool.close()


def bad_request_fields(err: grpc.aio.AioRpcError) -> set[str]:
    """The fields a google.rpc.BadRequest of an INVALID_ARGUMENT names."""
    status = rpc_status.from_call(err)
    assert status is not None
    fields = set()
    for detail in status.details:
        br = error_details_pb2.BadRequest()
        assert detail.Unpack(br)
        fields |= {v.field for v in br.field_violations}
    return fields


async def next_change(stream: Any, timeout: float = 10.0) -> desk_pb2.WatchAlertsResponse:
    """The next message carrying a change (heartbeats skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await asyncio.wait_for(stream.read(), timeout=max(0.01, deadline - time.monotonic()))
        assert msg is not grpc.aio.EOF
        if msg.HasField("change"):
            return msg


def desk_requests(alert: Mapping[str, Any], child: str, *, assignee: str) -> dict[str, Any]:
    """One valid request of every AlertDesk method about `alert` (its alert_id and the
    version the caller read) and `child` (an ID number or a child key)."""
    aid, version = alert["alert_id"], alert["version"]
    return {
        "ListAlerts": desk_pb2.ListAlertsRequest(),
        "GetAlert": desk_pb2.GetAlertRequest(alert_id=aid),
        "WatchAlerts": desk_pb2.WatchAlertsRequest(after_cursor=0),
        "AcknowledgeAlert": desk_pb2.AcknowledgeAlertRequest(alert_id=aid,
                                                             expected_version=version),
        "AssignAlert": desk_pb2.AssignAlertRequest(alert_id=aid, expected_version=version,
                                                   assignee=assignee, reason="yours"),
        "AddNote": desk_pb2.AddNoteRequest(alert_id=aid, text="a look"),
        "ResolveAlert": desk_pb2.ResolveAlertRequest(
            alert_id=aid, expected_version=version, resolution=alerts_pb2.FALSE_POSITIVE,
            note="checked"),
        "ReopenAlert": desk_pb2.ReopenAlertRequest(alert_id=aid, expected_version=version,
                                                   reason="new facts"),
        "GetChildTimeline": desk_pb2.GetChildTimelineRequest(child=child),
        "Summary": desk_pb2.SummaryRequest(),
        "WhoAmI": desk_pb2.WhoAmIRequest(),
    }
