"""The one set of test builders: valid envelopes with defaults, override what the test is
about. Unit, integration and desk tests all build their facts here."""

from __future__ import annotations

import datetime as dt
import itertools

from humiao.domain.events import (
    AllowanceStandardSet,
    Body,
    ChildAdopted,
    ChildEnrolled,
    Disbursement,
    DisbursementReversed,
    EnrollmentEnded,
    Envelope,
    EventRetracted,
    GuardianAppointed,
    ParentRecord,
    PaymentCycleClosed,
    PersonDied,
    PersonStatusChanged,
    SchoolingExtension,
)
from humiao.domain.identity import compose_citizen_id
from humiao.domain.values import (
    EnrollmentEndReason,
    Period,
    Program,
    Situation,
    StatusChange,
)

REGION = "110105"
_counter = itertools.count(1)
_T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def person(serial: int, born: dt.date = dt.date(1985, 1, 1), region: str = REGION) -> str:
    """A valid citizen ID number (check digit included) for test person `serial`."""
    return compose_citizen_id(region, born, serial)


CHILD_BORN = dt.date(2010, 6, 15)
CHILD = person(1, CHILD_BORN)
MOTHER = person(2)
FATHER = person(3)
GUARDIAN = person(4)
GUARDIAN2 = person(5)
INSTITUTION = "12110105MB1234567X"


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def p(text: str) -> Period:
    return Period.parse(text)


def env(body: Body, event_id: str | None = None, recorded: dt.datetime | None = None,
        source: str = "test") -> Envelope:
    n = next(_counter)
    return Envelope(
        event_id=event_id or f"e{n:06d}",
        recorded_at=recorded or _T0 + dt.timedelta(seconds=n),
        source=source,
        body=body,
    )


def enrolled(
    program: Program = Program.ORPHAN_DISPERSED,
    approved: str = "2023-12-10",
    parents: tuple[tuple[str, Situation], ...] | None = None,
    child: str = CHILD,
    born: dt.date = CHILD_BORN,
    region: str = REGION,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    if parents is None:
        parents = (
            ((MOTHER, Situation.DECEASED), (FATHER, Situation.DECEASED))
            if program is not Program.DE_FACTO_UNSUPPORTED
            else ((MOTHER, Situation.IN_CUSTODY), (FATHER, Situation.DECEASED))
        )
    body = ChildEnrolled(
        child, born, program, region, d(approved), tuple(ParentRecord(i, s) for i, s in parents)
    )
    return env(body, event_id, recorded)


def paid(
    period: str,
    amount: int = 80000,
    program: Program = Program.ORPHAN_DISPERSED,
    paid_on: str | None = None,
    payee: str = GUARDIAN,
    child: str = CHILD,
    region: str = REGION,
    disbursement_id: str | None = None,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    per = p(period)
    day = d(paid_on) if paid_on else per.first_day() + dt.timedelta(days=9)
    did = disbursement_id or f"D-{child[-4:]}-{period}-{program.name[:3]}-{next(_counter)}"
    body = Disbursement(did, child, program, per, amount, day, payee, region)
    return env(body, event_id, recorded)


def guardian(
    who: str = GUARDIAN,
    effective: str = "2023-01-01",
    child: str = CHILD,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    return env(GuardianAppointed(child, who, d(effective)), event_id, recorded)


def standard(
    amount: int = 80000,
    effective: str = "2020-01",
    program: Program = Program.ORPHAN_DISPERSED,
    region: str = REGION,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    body = AllowanceStandardSet(region, program, p(effective), amount)
    return env(body, event_id, recorded)


def died(
    who: str,
    day: str,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    return env(PersonDied(who, d(day)), event_id, recorded)


def status(
    who: str,
    situation: Situation,
    change: StatusChange,
    day: str,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    return env(PersonStatusChanged(who, situation, change, d(day)), event_id, recorded)


def adopted(
    day: str,
    child: str = CHILD,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    return env(ChildAdopted(child, d(day)), event_id, recorded)


def extension(
    until: str,
    child: str = CHILD,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    return env(SchoolingExtension(child, d(until)), event_id, recorded)


def ended(
    day: str,
    program: Program = Program.ORPHAN_DISPERSED,
    child: str = CHILD,
    reason: EnrollmentEndReason = EnrollmentEndReason.OTHER_REASON,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    return env(EnrollmentEnded(child, program, d(day), reason), event_id, recorded)


def reversed_(
    disbursement: Envelope,
    day: str = "2024-12-31",
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    did = disbursement.body.disbursement_id  # type: ignore[union-attr]
    return env(DisbursementReversed(did, d(day)), event_id, recorded)


def retract(
    target: Envelope | str,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    tid = target if isinstance(target, str) else target.event_id
    return env(EventRetracted(tid, "correction"), event_id, recorded)


def closed(
    period: str,
    region: str = REGION,
    event_id: str | None = None,
    recorded: dt.datetime | None = None,
) -> Envelope:
    return env(PaymentCycleClosed(region, p(period)), event_id, recorded)
