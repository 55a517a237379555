"""Test support for the alert desk: events, staff credentials, and a driver that feeds
events through the real verifier (its batch processor, in this process) so the desk
works on alerts the verifier really raised.

Shared by tests/integration/test_desk*.py and tests/e2e/test_desk_cli*.py (the tests
directory is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Sequence

import asyncpg

from humiao.adapters.codec import envelope_to_proto
from humiao.adapters.verifier_store import PgVerifierStore
from humiao.desk.auth import hash_token
from humiao.domain import events as ev
from humiao.domain.identity import citizen_id_check_char, pseudonym
from humiao.domain.policy import PolicyBook
from humiao.domain.values import Period, Program, Situation
from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.processor import InRecord, Processor

REGION_A = "110105"
REGION_B = "310101"
SECRET = b"humiao-development-pseudonym-key"  # PrivacySettings' development default
TOPIC = "desk-test.events"
GROUP = "desk-test-verifier"

#: token -> (name, role, regions)
STAFF = {
    "tok-viewer-a": ("Viewer A", "viewer", [REGION_A]),
    "tok-li": ("Li", "investigator", [REGION_A]),
    "tok-wang": ("Wang", "investigator", [REGION_A]),
    "tok-zhao": ("Zhao", "supervisor", [REGION_A]),
    "tok-chen": ("Chen", "investigator", [REGION_B]),
    "tok-boss": ("Boss", "supervisor", "*"),
}


def credentials_json() -> str:
    """HUMIAO_STAFF_CREDENTIALS for STAFF (hashes only, as in production)."""
    return json.dumps({
        hash_token(tok): {"name": n, "role": r, "regions": g} for tok, (n, r, g) in STAFF.items()
    })


def key_of(person_id: str) -> str:
    return pseudonym(SECRET, person_id)


_serial = itertools.count(100)
_event = itertools.count(1)
_T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def person(region: str = REGION_A, born: dt.date = dt.date(2012, 3, 4)) -> str:
    """A fresh valid citizen ID number."""
    first17 = f"{region}{born:%Y%m%d}{next(_serial) % 1000:03d}"
    return first17 + citizen_id_check_char(first17)


def envelope(body: ev.Body) -> ev.Envelope:
    n = next(_event)
    return ev.Envelope(f"ev-{n:06d}", _T0 + dt.timedelta(minutes=n), "desk-test", body)


def enrolled(child: str, region: str, approved: str = "2023-12-10") -> ev.Envelope:
    parents = (ev.ParentRecord(person(region, dt.date(1980, 1, 1)), Situation.DECEASED),
               ev.ParentRecord(person(region, dt.date(1981, 1, 1)), Situation.DECEASED))
    return envelope(ev.ChildEnrolled(child, dt.date(2012, 3, 4), Program.ORPHAN_DISPERSED,
                                     region, dt.date.fromisoformat(approved), parents))


def guardian(child: str, guardian_id: str, since: str = "2023-12-01") -> ev.Envelope:
    return envelope(ev.GuardianAppointed(child, guardian_id, dt.date.fromisoformat(since)))


def paid(
    child: str, period: str, region: str, *, payee: str | None = None, amount: int = 120_000,
    disbursement_id: str | None = None,
) -> ev.Envelope:
    p = Period.parse(period)
    return envelope(ev.Disbursement(
        disbursement_id or f"D-{next(_event):06d}", child, Program.ORPHAN_DISPERSED, p, amount,
        p.first_day() + dt.timedelta(days=4), payee or child, region,
    ))


def died(person_id: str, on: str) -> ev.Envelope:
    return envelope(ev.PersonDied(person_id, dt.date.fromisoformat(on)))


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

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.processor = Processor(
            group=GROUP, secret=SECRET, policies=PolicyBook.default(), metrics=VerifierMetrics()
        )
        self.offset = 0

    async def feed(self, envelopes: Sequence[ev.Envelope]) -> None:
        now_ms = int(time.time() * 1000)
        records = [
            InRecord(0, self.offset + i, now_ms, None, envelope_to_proto(e).SerializeToString())
            for i, e in enumerate(envelopes)
        ]
        batch = self.processor.prepare(TOPIC, records)
        assert not batch.dead, batch.dead
        async with self.pool.acquire() as conn:
            store = PgVerifierStore(conn)
            expected = await store.ensure_offsets(GROUP, TOPIC, [0])
            await self.processor.process(store, batch, expected)
        self.offset += len(records)
