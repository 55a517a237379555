"""Synthetic event histories of a realistic shape, for the verifier's tests and its
throughput measurement: children enrolled in three programs and several regions,
monthly disbursements, standards that change mid-way, monthly cycle closes, siblings
sharing parents, and a sprinkling of every fault (late deaths, released parents,
duplicates, wrong amounts, wrong payees, missed months, reversals and retractions).
Deterministic for a given seed. Pure: builds domain envelopes only.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from humiao.domain import events as ev
from humiao.domain.identity import citizen_id_check_char
from humiao.domain.validation import unified_credit_code_check_char
from humiao.domain.values import Period, Program, Situation, StatusChange

REGIONS = ("110105", "110106", "310101")
START = Period.of(2022, 1)
STANDARD_FEN = {
    Program.ORPHAN_INSTITUTIONAL: 200_000,
    Program.ORPHAN_DISPERSED: 150_000,
}


def citizen_id(region: str, birth: dt.date, seq: int) -> str:
    first17 = f"{region}{birth:%Y%m%d}{seq % 1000:03d}"
    return first17 + citizen_id_check_char(first17)


def institution_code(region: str, n: int) -> str:
    first17 = f"12{region}{n:09d}"
    return first17 + unified_credit_code_check_char(first17)


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


@dataclass
class History:
    envelopes: list[ev.Envelope] = field(default_factory=list)
    child_ids: list[str] = field(default_factory=list)

    def add(self, event_id: str, recorded: dt.datetime, body: ev.Body) -> ev.Envelope:
        env = ev.Envelope(event_id=event_id, recorded_at=recorded, source="synthetic", body=body)
        self.envelopes.append(env)
        return env


@dataclass(frozen=True)
class _Child:
    """One synthetic child's fixed traits (`i`: its index, which decides its faults)."""

    i: int
    region: str
    program: Program
    birth: dt.date
    child: str
    father: str
    mother: str
    guardian: str
    approved: dt.date


def city(
    children: int,
    *,
    months: int = 24,
    start: Period = START,
    regions: tuple[str, ...] = REGIONS,
    seed: int = 7,
    closes: bool = True,
) -> History:
    """A city's history; envelopes in recording order (as sources would send them)."""
    rng = random.Random(seed)
    h = History()
    raise_at = start + months // 2
    _standards(h, regions, start, raise_at)
    parents_of: dict[int, tuple[str, str]] = {}
    for i in range(children):
        c = _child(i, regions, start, parents_of)
        h.child_ids.append(c.child)
        _enrollment(h, c)
        _payments(h, c, rng, start, months, raise_at)
        _life_events(h, c, start, months)
    if closes:
        for m in range(months):
            period = start + m
            closed = (period + 1).first_day() - dt.timedelta(days=1)
            for region in regions:
                h.add(f"C-{region}-{period}", at(closed, 20),
                      ev.PaymentCycleClosed(region, period))
    h.envelopes.sort(key=lambda e: (e.recorded_at, e.event_id))
    return h


def _standards(h: History, regions: tuple[str, ...], start: Period, raise_at: Period) -> None:
    """Each region's standards: set before the start, raised 5% half-way."""
    for region in regions:
        for program, amount in STANDARD_FEN.items():
            h.add(f"S-{region}-{program.name}-0", at(start.first_day() - dt.timedelta(days=20)),
                  ev.AllowanceStandardSet(region, program, start, amount))
            h.add(f"S-{region}-{program.name}-1", at(raise_at.first_day() - dt.timedelta(days=20)),
                  ev.AllowanceStandardSet(region, program, raise_at, amount * 105 // 100))


def _child(
    i: int, regions: tuple[str, ...], start: Period, parents_of: dict[int, tuple[str, str]]
) -> _Child:
    region = regions[i % len(regions)]
    program = (Program.ORPHAN_INSTITUTIONAL, Program.ORPHAN_DISPERSED,
               Program.DE_FACTO_UNSUPPORTED)[i % 3]
    birth = dt.date(2006, 1, 1) + dt.timedelta(days=(i * 37) % 5000 + (i // 1000) * 3)
    family = i - 1 if i % 10 == 1 and (i - 1) % 3 == i % 3 else i  # some siblings
    if family not in parents_of:
        pb = dt.date(1980, 1, 1) + dt.timedelta(days=(i * 53) % 4000)
        parents_of[family] = (citizen_id("220102", pb, i), citizen_id("220103", pb, i + 1))
    father, mother = parents_of[family]
    if program is Program.ORPHAN_INSTITUTIONAL:
        guardian = institution_code(region, i % 50)
    else:
        guardian = citizen_id("220104", dt.date(1975, 1, 1) + dt.timedelta(days=i % 3000), i)
    approved = start.first_day() - dt.timedelta(days=30 + i % 200)
    return _Child(i, region, program, birth, citizen_id(region, birth, i), father, mother,
                  guardian, approved)


def _enrollment(h: History, c: _Child) -> None:
    if c.program is Program.DE_FACTO_UNSUPPORTED:
        situations = (Situation.IN_CUSTODY, Situation.DECEASED)
    else:
        situations = (Situation.DECEASED, Situation.UNKNOWN)
    h.add(f"E-{c.i}", at(c.approved + dt.timedelta(days=1)), ev.ChildEnrolled(
        c.child, c.birth, c.program, c.region, c.approved,
        (ev.ParentRecord(c.father, situations[0]), ev.ParentRecord(c.mother, situations[1]))))
    h.add(f"G-{c.i}", at(c.approved + dt.timedelta(days=2)),
          ev.GuardianAppointed(c.child, c.guardian, c.approved))


def _payments(
    h: History, c: _Child, rng: random.Random, start: Period, months: int, raise_at: Period
) -> None:
    """Monthly payments with their faults: a missed month, a wrong amount, a wrong payee,
    a duplicate, a reversal, and a reversal retracted."""
    i = c.i
    base = STANDARD_FEN[Program.ORPHAN_DISPERSED if c.program is Program.DE_FACTO_UNSUPPORTED
                        else c.program]
    for m in range(months):
        period = start + m
        paid = period.first_day() + dt.timedelta(days=9)
        if i % 37 == 17 and m == 7:
            continue  # missed payment
        amount = base * 105 // 100 if period >= raise_at else base
        if i % 29 == 11 and m == 6:
            amount += 5_000  # wrong amount
        payee = c.guardian
        if i % 31 == 13 and m == 4:
            payee = citizen_id("220105", dt.date(1970, 5, 5), i)  # not the guardian
        did = f"D-{i}-{period}"
        h.add(did, at(paid, 10 + rng.randrange(6)), ev.Disbursement(
            did, c.child, c.program, period, amount, paid, payee, c.region))
        if i % 23 == 7 and m == 5:
            dup = f"D-{i}-{period}-b"
            h.add(dup, at(paid, 17), ev.Disbursement(
                dup, c.child, c.program, period, amount, paid, payee, c.region))
        if (i % 41 == 19 and m == 3) or (i % 43 == 23 and m == 2):
            h.add(f"R-{i}", at(paid + dt.timedelta(days=5)),
                  ev.DisbursementReversed(did, paid + dt.timedelta(days=5)))
        if i % 43 == 23 and m == 2:
            h.add(f"X-{i}", at(paid + dt.timedelta(days=40)),
                  ev.EventRetracted(f"R-{i}", "reversal entered in error"))


def _life_events(h: History, c: _Child, start: Period, months: int) -> None:
    """Deaths notified late, a parent released, a guardian dead, an adoption."""
    i = c.i
    if i % 17 == 3 and months > 9:  # the child died; notified months later
        died = (start + 8).first_day() + dt.timedelta(days=12)
        h.add(f"P-{i}", at((start + min(months - 1, 14)).first_day()),
              ev.PersonDied(c.child, died))
    if i % 19 == 5 and c.program is Program.DE_FACTO_UNSUPPORTED and months > 10:
        released = (start + 10).first_day() + dt.timedelta(days=3)
        h.add(f"Q-{i}", at(released + dt.timedelta(days=20)), ev.PersonStatusChanged(
            c.father, Situation.IN_CUSTODY, StatusChange.ENDED, released))
    if i % 47 == 29 and months > 12 and c.program is not Program.ORPHAN_INSTITUTIONAL:
        gone = (start + 12).first_day() + dt.timedelta(days=1)
        h.add(f"GD-{i}", at(gone + dt.timedelta(days=3)), ev.PersonDied(c.guardian, gone))
    if i % 53 == 31 and months > 15:
        adopted = (start + 15).first_day() + dt.timedelta(days=4)
        h.add(f"AD-{i}", at(adopted + dt.timedelta(days=2)), ev.ChildAdopted(c.child, adopted))
