"""A seeded synthetic city: an honest allowance history, injected irregularities, and the
ground truth (which alerts DESIGN.md section 5 says the facts imply).

Pure domain: plain dataclasses in, domain envelopes out (`write_city` alone touches the
protobuf codec, lazily). The same config always gives the same city, byte for byte.

How the truth is kept unambiguous:

- Each child carries at most one *story* (an honest life event, an injected irregularity,
  or an honest error corrected later), so no payment has two reasons to be wrong.
- Dates stay away from the boundaries the design leaves open: payments are made on days
  1-5, life events happen on days 5-25, guardian changes on days 10-25, a schooling
  extension runs to a month's last day, and a payment after an ending event is at least
  a whole month after it. Injected payments are right in every respect but one.
- The honest history pays every payable month of every enrolled child exactly once,
  with the standard amount, to the guardian in force; so it implies no alert.
- Honest errors (a payment made twice, a wrong amount, a death or enrollment end recorded
  by mistake, a payment made before an orphan's parent turned up) are corrected by
  reversals and retractions that arrive *late* (the `corrections` list, recorded after the
  horizon): before them the facts imply `before_corrections`, after them `truth`. The
  demo feeds them in two steps so every withdrawal is visible and deterministic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from humiao.domain.alerts import AlertCode
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
from humiao.domain.validation import unified_credit_code_check_char
from humiao.domain.values import (
    EnrollmentEndReason,
    Period,
    Program,
    Situation,
    StatusChange,
)

#: Beijing districts: 东城, 西城, 朝阳, 丰台, 海淀.
DEFAULT_REGIONS = ("110101", "110102", "110105", "110106", "110108")
#: One source name for the whole city: the ingest gateway checks an envelope's `source`
#: against the credential, and the development credential of `humiao up` has this one.
DEFAULT_SOURCE = "humiao-dev"
#: China Standard Time: sources record local time.
CST = dt.timezone(dt.timedelta(hours=8))
#: Parents' and guardians' ID numbers come from these prefixes as well as the city's.
_OTHER_PREFIXES = ("130102", "130602", "370102", "410105", "420106", "510107", "230103")

#: Parent situations that can end while the child is on the roll (release, found, ...).
_TEMPORARY = (
    Situation.IN_CUSTODY,
    Situation.LOST_CONTACT,
    Situation.COMPULSORY_REHAB,
    Situation.LIBERTY_RESTRICTED,
)
_DE_FACTO_PARENTS: tuple[tuple[tuple[Situation, Situation], int], ...] = (
    ((Situation.IN_CUSTODY, Situation.DECEASED), 14),
    ((Situation.IN_CUSTODY, Situation.LOST_CONTACT), 10),
    ((Situation.SEVERELY_DISABLED, Situation.SERIOUSLY_ILL), 10),
    ((Situation.DECEASED, Situation.SEVERELY_DISABLED), 14),
    ((Situation.COMPULSORY_REHAB, Situation.LOST_CONTACT), 6),
    ((Situation.LIBERTY_RESTRICTED, Situation.MISSING_DECLARED), 4),
    ((Situation.GUARDIANSHIP_REVOKED, Situation.IN_CUSTODY), 5),
    ((Situation.DEPORTED, Situation.LOST_CONTACT), 3),
    ((Situation.LOST_CONTACT, Situation.MISSING_DECLARED), 10),
    ((Situation.SERIOUSLY_ILL, Situation.DECEASED), 12),
    ((Situation.IN_CUSTODY, Situation.SEVERELY_DISABLED), 6),
    ((Situation.LOST_CONTACT, Situation.DECEASED), 6),
)
_ORPHAN_PARENTS: tuple[tuple[tuple[Situation, Situation], int], ...] = (
    ((Situation.DECEASED, Situation.DECEASED), 70),
    ((Situation.DECEASED, Situation.UNKNOWN), 14),
    ((Situation.DECEASED, Situation.MISSING_DECLARED), 10),
    ((Situation.UNKNOWN, Situation.UNKNOWN), 6),
)

#: Injected irregularity -> the check that must catch it (several variants per code).
INJECTIONS: dict[str, AlertCode] = {
    "paid_after_death": AlertCode.PAID_AFTER_DEATH,
    "paid_after_age_out": AlertCode.PAID_AFTER_AGE_OUT,
    "paid_after_adoption": AlertCode.PAID_AFTER_ADOPTION,
    "paid_after_parent_released": AlertCode.PAID_AFTER_PARENT_SITUATION_ENDED,
    "paid_after_orphan_parent_found": AlertCode.ORPHAN_PARENT_ALIVE,
    "paid_after_enrollment_ended": AlertCode.PAID_AFTER_ENROLLMENT_ENDED,
    "paid_before_approval": AlertCode.PAID_BEFORE_APPROVAL,
    "paid_never_enrolled": AlertCode.NOT_ENROLLED,
    "paid_twice": AlertCode.DUPLICATE_PAYMENT,
    "wrong_amount": AlertCode.AMOUNT_MISMATCH,
    "paid_to_stranger": AlertCode.PAYEE_NOT_GUARDIAN,
    "paid_to_former_guardian": AlertCode.PAYEE_NOT_GUARDIAN,
    "paid_to_dead_guardian": AlertCode.PAYEE_DECEASED,
    "payment_skipped": AlertCode.MISSED_PAYMENT,
    "payment_reversed_not_repaid": AlertCode.MISSED_PAYMENT,
}
#: Honest errors, corrected by a late reversal or retraction (no alert in the end).
CORRECTIONS = (
    "double_payment_reversed",
    "wrong_amount_reversed_and_repaid",
    "duplicate_entry_retracted",
    "mistaken_death_retracted",
    "mistaken_enrollment_end_retracted",
    "orphan_parent_found_payment_reversed",
)


@dataclass(frozen=True)
class CityConfig:
    """Everything that shapes a city; the same config always gives the same city."""

    seed: int = 2024
    children: int = 2500
    months: int = 18
    start: str = "2023-01"
    regions: tuple[str, ...] = DEFAULT_REGIONS
    #: Children per check code given an injected irregularity (share of `children`).
    injection_rate: float = 0.006
    #: Children per kind of honest error later corrected (share of `children`).
    correction_rate: float = 0.003
    #: At least this many injections per check code (and corrections per kind, halved).
    min_per_code: int = 2
    source: str = DEFAULT_SOURCE

    def __post_init__(self) -> None:
        if self.children < 20:
            raise ValueError("children: at least 20 (every check needs some candidates)")
        if not 6 <= self.months <= 60:
            raise ValueError("months: between 6 and 60")
        Period.parse(self.start)
        if not self.regions or any(len(r) != 6 or not r.isdigit() for r in self.regions):
            raise ValueError("regions: 6-digit region codes")
        if not (0 <= self.injection_rate <= 0.05 and 0 <= self.correction_rate <= 0.05):
            raise ValueError("injection_rate, correction_rate: between 0 and 0.05")


@dataclass(frozen=True, slots=True, order=True)
class ExpectedAlert:
    """One alert the facts must imply: (code, child, period, subject), what its keyed id
    derives from (humiao.domain.alerts.alert_id; the generator holds no key)."""

    code: AlertCode
    child_id: str
    period: Period
    subject: str  # a disbursement id, or "" for DUPLICATE_PAYMENT and MISSED_PAYMENT

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code.name,
            "childId": self.child_id,
            "period": str(self.period),
            "subject": self.subject,
        }

    @classmethod
    def from_json(cls, obj: dict[str, str]) -> ExpectedAlert:
        return cls(AlertCode[obj["code"]], obj["childId"], Period.parse(obj["period"]),
                   obj["subject"])


@dataclass(frozen=True)
class City:
    config: CityConfig
    #: The history in recorded order (recordedAt, then creation order).
    events: tuple[Envelope, ...]
    #: Late reversals and retractions, recorded after the horizon, in recorded order.
    corrections: tuple[Envelope, ...]
    #: Alerts the facts imply once everything has arrived.
    truth: frozenset[ExpectedAlert]
    #: Alerts `events` alone imply (before the corrections arrive).
    before_corrections: frozenset[ExpectedAlert]
    #: How many of each story, for the summary (honest life events, injections, corrections).
    stories: dict[str, int]
    children: int
    disbursements: int

    @property
    def withdrawn_by_corrections(self) -> frozenset[ExpectedAlert]:
        return self.before_corrections - self.truth

    @property
    def raised_by_corrections(self) -> frozenset[ExpectedAlert]:
        return self.truth - self.before_corrections


# --- the model the builder works on ----------------------------------------------------


@dataclass(eq=False)
class _Family:
    region: str
    program: Program
    parents: list[tuple[str, Situation]]
    approved_on: dt.date
    children: list[_Child] = field(default_factory=list)


@dataclass(eq=False)
class _Child:
    cid: str
    birth: dt.date
    family: _Family
    first: Period  # first payable month within the horizon
    natural_last: Period  # last payable month by age (18th birthday or extension)
    extension_until: dt.date | None
    guardians: list[tuple[dt.date, str]] = field(default_factory=list)
    story: str | None = None
    story_last: Period | None = None  # honest end set by a life event
    paid_through: Period | None = None  # injections keep paying past `last`
    ends_enrollment: bool = False  # a story sends its own enrollmentEnded
    paid_to_self: bool = False
    skip: set[Period] = field(default_factory=set)
    hooks: list[Callable[[dict[Period, list[_Pay]]], None]] = field(default_factory=list)

    @property
    def region(self) -> str:
        return self.family.region

    @property
    def program(self) -> Program:
        return self.family.program

    @property
    def approved_on(self) -> dt.date:
        return self.family.approved_on

    @property
    def birthday18(self) -> Period:
        return Period.of(self.birth.year + 18, self.birth.month)


@dataclass(eq=False)
class _Pay:
    disbursement_id: str
    event_id: str
    child_id: str
    program: Program
    period: Period
    amount: int
    paid_on: dt.date
    payee: str
    region: str


def _last_day(period: Period) -> dt.date:
    return (period + 1).first_day() - dt.timedelta(days=1)


def _weighted(rng: random.Random, table: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


class _Builder:
    """Builds one city; every random draw comes from one seeded generator, in one order."""

    def __init__(self, config: CityConfig) -> None:
        self.cfg = config
        self.rng = random.Random(config.seed)
        self.start = Period.parse(config.start)
        self.end = self.start + (config.months - 1)
        self.start_date = self.start.first_day()
        self.end_date = _last_day(self.end)
        digest = hashlib.sha256(repr(dataclasses.astuple(config)).encode()).hexdigest()
        self.prefix = "c" + digest[:8]
        self._events = 0
        self._payments = 0
        self.used_ids: set[str] = set()
        self.main: list[tuple[dt.datetime, int, Envelope]] = []
        self.late: list[tuple[dt.datetime, int, Envelope]] = []
        self.truth: set[ExpectedAlert] = set()
        self.before: set[ExpectedAlert] = set()
        self.stories: Counter[str] = Counter()
        self.families: list[_Family] = []
        self.children: list[_Child] = []
        self.standards: dict[tuple[str, Program, int], int] = {}
        self.own_de_facto: set[str] = set()
        self.pay_day: dict[tuple[str, Period], int] = {}
        self.institutions: dict[str, str] = {}
        self.disbursements = 0

    # -- identities ------------------------------------------------------------------

    def citizen_id(self, region: str, birth: dt.date) -> str:
        while True:
            cid = compose_citizen_id(region, birth, self.rng.randrange(1000))
            if cid not in self.used_ids:
                self.used_ids.add(cid)
                return cid

    def person(self, region: str, born_before: dt.date, years: tuple[int, int]) -> str:
        """A new adult, `years` older than `born_before`, mostly registered locally."""
        age_days = self.rng.randint(years[0] * 365, years[1] * 365)
        prefix = region if self.rng.random() < 0.7 else self.rng.choice(_OTHER_PREFIXES)
        return self.citizen_id(prefix, born_before - dt.timedelta(days=age_days))

    def institution(self, region: str) -> str:
        """The region's children's welfare institution (unified social credit code)."""
        chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        body = "12" + region + "".join(self.rng.choice(chars) for _ in range(9))
        return body + unified_credit_code_check_char(body)

    # -- events ----------------------------------------------------------------------

    def event_id(self) -> str:
        self._events += 1
        return f"{self.prefix}-{self._events:07d}"

    def at(self, day: dt.date) -> dt.datetime:
        """A moment in office hours on `day` (never past the horizon for the history)."""
        day = min(day, self.end_date)
        return dt.datetime.combine(
            day,
            dt.time(self.rng.randint(8, 17), self.rng.randrange(60), self.rng.randrange(60)),
            CST,
        )

    def emit(self, day: dt.date, body: Body, *, event_id: str | None = None) -> Envelope:
        """Record `body` in the history on `day` (clamped to the horizon)."""
        env = Envelope(event_id or self.event_id(), self.at(day), self.cfg.source, body)
        self.main.append((env.recorded_at, len(self.main), env))
        return env

    def emit_late(self, body: Body) -> Envelope:
        """Record a correction after the horizon (the year-end data cleanup)."""
        day = _last_day(self.end) + dt.timedelta(days=self.rng.randint(3, 25))
        when = dt.datetime.combine(day, dt.time(self.rng.randint(8, 17), 0), CST)
        env = Envelope(self.event_id(), when, self.cfg.source, body)
        self.late.append((env.recorded_at, len(self.late), env))
        return env

    def expect(self, code: AlertCode, child_id: str, period: Period, subject: str = "", *,
               before: bool = True, after: bool = True) -> None:
        alert = ExpectedAlert(code, child_id, period, subject)
        if after:
            self.truth.add(alert)
        if before:
            self.before.add(alert)

    def day_in(self, period: Period, lo: int, hi: int) -> dt.date:
        return dt.date(period.year, period.month, self.rng.randint(lo, hi))

    # -- money -----------------------------------------------------------------------

    def build_standards(self) -> None:
        """Monthly standards per region and program, rising every January."""
        regions = self.cfg.regions
        if len(regions) > 1:
            self.own_de_facto.add(regions[-1])  # one district sets its own de facto rate
        for region in regions:
            amounts = {
                Program.ORPHAN_INSTITUTIONAL: self.rng.randint(2300, 2450) * 100,
                Program.ORPHAN_DISPERSED: self.rng.randint(1900, 2000) * 100,
            }
            if region in self.own_de_facto:
                amounts[Program.DE_FACTO_UNSUPPORTED] = (
                    amounts[Program.ORPHAN_DISPERSED] - self.rng.randint(5, 15) * 1000
                )
            for year in range(self.start.year, self.end.year + 1):
                for program, amount in amounts.items():
                    if year > self.start.year:
                        amount = amount * (100 + self.rng.randint(3, 6)) // 100 // 100 * 100
                        amounts[program] = amount
                    self.standards[(region, program, year)] = amount
                    self.emit(
                        dt.date(year - 1, 12, self.rng.randint(5, 20)),
                        AllowanceStandardSet(region, program, Period.of(year, 1), amount),
                    )
            for p in self.months():
                self.pay_day[(region, p)] = self.rng.randint(1, 5)

    def standard(self, region: str, program: Program, period: Period) -> int:
        if program is Program.DE_FACTO_UNSUPPORTED and region not in self.own_de_facto:
            program = Program.ORPHAN_DISPERSED
        return self.standards[(region, program, period.year)]

    def pay_date(self, region: str, period: Period) -> dt.date:
        return dt.date(period.year, period.month, self.pay_day[(region, period)])

    def months(self, lo: Period | None = None, hi: Period | None = None) -> list[Period]:
        lo = max(lo or self.start, self.start)
        hi = min(hi or self.end, self.end)
        return [Period(i) for i in range(lo.index, hi.index + 1)]

    def new_pay(self, child_id: str, program: Program, region: str, period: Period,
                paid_on: dt.date, payee: str, amount: int | None = None) -> _Pay:
        self._payments += 1
        return _Pay(
            disbursement_id=f"{self.prefix}-{region}-{period.year:04d}{period.month:02d}-"
            f"{self._payments:06d}",
            event_id=self.event_id(),
            child_id=child_id,
            program=program,
            period=period,
            amount=self.standard(region, program, period) if amount is None else amount,
            paid_on=paid_on,
            payee=payee,
            region=region,
        )

    def emit_pay(self, pay: _Pay) -> None:
        self.disbursements += 1
        self.emit(
            pay.paid_on + dt.timedelta(days=self.rng.randint(0, 1)),
            Disbursement(pay.disbursement_id, pay.child_id, pay.program, pay.period,
                         pay.amount, pay.paid_on, pay.payee, pay.region),
            event_id=pay.event_id,
        )

    # -- population ------------------------------------------------------------------

    def build_population(self) -> None:
        cfg, rng = self.cfg, self.rng
        for region in cfg.regions:
            self.institutions[region] = self.institution(region)
        programs = ((Program.ORPHAN_INSTITUTIONAL, 15), (Program.ORPHAN_DISPERSED, 30),
                    (Program.DE_FACTO_UNSUPPORTED, 55))
        while len(self.children) < cfg.children:
            program: Program = _weighted(rng, programs)
            region = rng.choice(cfg.regions)
            size = 1 if program is Program.ORPHAN_INSTITUTIONAL else _weighted(
                rng, ((1, 78), (2, 16), (3, 6)))
            size = min(size, cfg.children - len(self.children))
            eldest_days = rng.randint(60, 18 * 365 - 2)
            births = [self.start_date - dt.timedelta(days=eldest_days)]
            for _ in range(size - 1):
                younger = births[-1] + dt.timedelta(days=rng.randint(365, 4 * 365))
                if younger > self.start_date - dt.timedelta(days=60):
                    break
                births.append(younger)
            table = _ORPHAN_PARENTS if program is not Program.DE_FACTO_UNSUPPORTED \
                else _DE_FACTO_PARENTS
            situations: tuple[Situation, Situation] = _weighted(rng, table)
            parents = [(self.person(region, births[0], (22, 40)), s) for s in situations]
            approved_on = self.approval_date(births)
            family = _Family(region, program, parents, approved_on)
            if program is Program.ORPHAN_INSTITUTIONAL:
                guardian = self.institutions[region]
            else:
                span = (45, 65) if rng.random() < 0.7 else (25, 45)
                guardian = self.person(region, births[0], span)
            appointed = max(births[-1], approved_on - dt.timedelta(days=rng.randint(0, 90)))
            for birth in births:
                self.children.append(self.new_child(family, birth, guardian, appointed))
            self.families.append(family)

    def approval_date(self, births: list[dt.date]) -> dt.date:
        """Three in four families were on the roll before the horizon; the rest join in it."""
        rng = self.rng
        eldest18 = Period.of(births[0].year + 18, births[0].month)
        if rng.random() < 0.25:
            month = self.start + rng.randrange(self.cfg.months)
            if month + 2 <= eldest18:
                return self.day_in(month, 5, 25)
        lo = max(births[-1] + dt.timedelta(days=30), self.start_date - dt.timedelta(days=6 * 365))
        hi = self.start_date - dt.timedelta(days=1)
        return lo + dt.timedelta(days=rng.randint(0, max(0, (hi - lo).days)))

    def new_child(self, family: _Family, birth: dt.date, guardian: str,
                  appointed: dt.date) -> _Child:
        cid = self.citizen_id(family.region, birth)
        b18 = Period.of(birth.year + 18, birth.month)
        extension: dt.date | None = None
        natural_last = b18
        if self.start <= b18 < self.end and self.rng.random() < 0.4:
            july = Period.of(b18.year if b18.month < 7 else b18.year + 1, 7)
            extension = _last_day(july)
            natural_last = july
        child = _Child(
            cid=cid,
            birth=birth,
            family=family,
            first=max(self.start, Period.of_date(family.approved_on) + 1),
            natural_last=natural_last,
            extension_until=extension,
            guardians=[(appointed, guardian)],
        )
        family.children.append(child)
        return child

    # -- helpers for stories ---------------------------------------------------------

    def last_honest(self, c: _Child) -> Period:
        """The last payable month in the horizon, by age alone."""
        return min(self.end, c.natural_last)

    def pick_month(self, c: _Child, after: int = 0) -> Period | None:
        """A month M with M >= first and M + after <= the last payable month."""
        lo, hi = c.first, self.last_honest(c) - after
        if hi < lo:
            return None
        return Period(self.rng.randint(lo.index, hi.index))

    def appoint(self, c: _Child, guardian: str, effective: dt.date, lag: int = 5) -> None:
        c.guardians.append((effective, guardian))
        c.guardians.sort()
        self.emit(effective + dt.timedelta(days=self.rng.randint(0, lag)),
                  GuardianAppointed(c.cid, guardian, effective))

    def end_enrollment(self, c: _Child, effective: dt.date, reason: EnrollmentEndReason,
                       event_id: str | None = None) -> Envelope:
        c.ends_enrollment = True
        return self.emit(effective + dt.timedelta(days=self.rng.randint(0, 5)),
                         EnrollmentEnded(c.cid, c.program, effective, reason),
                         event_id=event_id)

    def temp_parent(self, family: _Family) -> tuple[str, Situation] | None:
        for pid, sit in family.parents:
            if sit in _TEMPORARY:
                return pid, sit
        return None

    @staticmethod
    def guardian_on(c: _Child, day: dt.date) -> str:
        current = c.guardians[0][1]
        for effective, guardian in c.guardians:
            if effective <= day:
                current = guardian
        return current

    # -- story assignment ------------------------------------------------------------

    def assign_stories(self) -> None:
        rng, n = self.rng, self.cfg.children
        singles = [c for c in self.children if len(c.family.children) == 1]
        rng.shuffle(singles)
        per_code = max(self.cfg.min_per_code, round(self.cfg.injection_rate * n))
        per_fix = max((self.cfg.min_per_code + 1) // 2, round(self.cfg.correction_rate * n))
        variants: dict[AlertCode, list[str]] = {}
        for name, code in INJECTIONS.items():
            if name != "paid_never_enrolled":
                variants.setdefault(code, []).append(name)
        for _code, names in variants.items():
            for i in range(per_code):
                self.place(names[i % len(names)], singles)
        for name in CORRECTIONS:
            for _ in range(per_fix):
                self.place(name, singles)
        for _ in range(per_code):
            self.phantom_payments()
        # Honest life events, at natural rates.
        for family in self.families:
            if any(c.story for c in family.children):
                continue
            self.honest_family_story(family)
        for c in singles:
            if c.story is None:
                self.honest_child_story(c)
            if (c.story is None and c.program is not Program.ORPHAN_INSTITUTIONAL
                    and (self.start_date - c.birth).days > 16 * 365 and rng.random() < 0.1):
                c.paid_to_self = True
                self.stories["honest: paid to the child itself (16+)"] += 1

    def place(self, name: str, pool: list[_Child]) -> None:
        """Give the first free child of `pool` for which story `name` fits that story."""
        story = getattr(self, "story_" + name)
        for c in pool:
            if c.story is None and story(c):
                c.story = name
                self.stories[("injected: " if name in INJECTIONS else "corrected: ") + name] += 1
                return

    def honest_family_story(self, family: _Family) -> None:
        rng = self.rng
        r = rng.random()
        if family.program is not Program.ORPHAN_INSTITUTIONAL and r < 0.05:
            self.family_story(family, "guardian changed", self.story_guardian_changed)
        elif family.program is not Program.ORPHAN_INSTITUTIONAL and r < 0.065:
            self.family_story(family, "guardian died, new guardian", self.story_guardian_died)
        elif family.program is Program.DE_FACTO_UNSUPPORTED and r < 0.16:
            self.family_story(family, "parent's situation ended", self.story_parent_ended)
        elif family.program is Program.DE_FACTO_UNSUPPORTED and r < 0.18:
            self.family_story(family, "medical parole (custody ended, illness started)",
                              self.story_medical_parole)
        elif family.program is Program.DE_FACTO_UNSUPPORTED and r < 0.20:
            self.family_story(family, "a listed parent died", self.story_parent_died)

    def family_story(self, family: _Family, label: str, story: Callable[[_Family], bool]) -> None:
        if story(family):
            for c in family.children:
                c.story = label
            self.stories["honest: " + label] += 1

    def honest_child_story(self, c: _Child) -> None:
        r = self.rng.random()
        orphan = c.program is not Program.DE_FACTO_UNSUPPORTED
        label = None
        if r < 0.004:
            label = "child died" if self.story_child_died(c) else None
        elif r < (0.034 if orphan else 0.009):
            label = "adopted" if self.story_adopted(c) else None
        elif r < (0.044 if orphan else 0.019):
            label = "moved out of the region" if self.story_moved_out(c) else None
        if label:
            c.story = label
            self.stories["honest: " + label] += 1

    # -- honest stories --------------------------------------------------------------

    def family_month(self, family: _Family, after: int = 1) -> Period | None:
        lo = max(c.first for c in family.children)
        hi = min(self.last_honest(c) for c in family.children) - after
        return Period(self.rng.randint(lo.index, hi.index)) if lo <= hi else None

    def story_guardian_changed(self, family: _Family) -> bool:
        m = self.family_month(family)
        if m is None:
            return False
        new = self.person(family.region, family.children[0].birth, (25, 60))
        effective = self.day_in(m, 10, 25)
        for c in family.children:
            self.appoint(c, new, effective)
        return True

    def story_guardian_died(self, family: _Family) -> bool:
        m = self.family_month(family)
        if m is None:
            return False
        old = family.children[0].guardians[-1][1]
        died = self.day_in(m, 6, 14)
        self.emit(died + dt.timedelta(days=self.rng.randint(0, 5)), PersonDied(old, died))
        new = self.person(family.region, family.children[0].birth, (25, 60))
        effective = self.day_in(m, 16, 27)
        for c in family.children:
            self.appoint(c, new, effective, lag=1)
        return True

    def story_parent_ended(self, family: _Family) -> bool:
        """A parent is released / found / out of rehab: the children stop qualifying."""
        parent = self.temp_parent(family)
        m = self.family_month(family)
        if parent is None or m is None:
            return False
        ended = self.day_in(m, 5, 25)
        self.emit(ended + dt.timedelta(days=self.rng.randint(0, 10)),
                  PersonStatusChanged(parent[0], parent[1], StatusChange.ENDED, ended))
        for c in family.children:
            c.story_last = m
            if m + 1 <= self.end:
                self.end_enrollment(c, self.day_in(m + 1, 5, 20),
                                    EnrollmentEndReason.PARENT_CIRCUMSTANCES_CHANGED)
            c.ends_enrollment = True
        return True

    def story_medical_parole(self, family: _Family) -> bool:
        """Custody ends but serious illness starts: the children still qualify."""
        custody = next((p for p, s in family.parents if s is Situation.IN_CUSTODY), None)
        m = self.family_month(family, after=0)
        if custody is None or m is None:
            return False
        ill = self.day_in(m, 5, 10)
        self.emit(ill + dt.timedelta(days=1), PersonStatusChanged(
            custody, Situation.SERIOUSLY_ILL, StatusChange.STARTED, ill))
        released = self.day_in(m, 12, 20)
        self.emit(released + dt.timedelta(days=1), PersonStatusChanged(
            custody, Situation.IN_CUSTODY, StatusChange.ENDED, released))
        return True

    def story_parent_died(self, family: _Family) -> bool:
        """A parent in a listed situation dies while the other stays listed: still qualifies."""
        listed = [p for p, s in family.parents if s not in (Situation.DECEASED,
                                                             Situation.MISSING_DECLARED)]
        m = self.family_month(family, after=0)
        if len(listed) < 2 or m is None:
            return False
        died = self.day_in(m, 5, 25)
        self.emit(died + dt.timedelta(days=self.rng.randint(0, 10)), PersonDied(listed[0], died))
        return True

    def story_child_died(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        died = self.day_in(m, 3, 25)
        self.emit(died + dt.timedelta(days=self.rng.randint(0, 10)), PersonDied(c.cid, died))
        c.story_last = m
        self.end_enrollment(c, min(died + dt.timedelta(days=self.rng.randint(0, 10)),
                                   _last_day(m)), EnrollmentEndReason.CHILD_DIED)
        return True

    def story_adopted(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        adopted = self.day_in(m, 8, 25)
        self.emit(adopted + dt.timedelta(days=self.rng.randint(0, 10)),
                  ChildAdopted(c.cid, adopted))
        self.appoint(c, self.person(c.region, c.birth, (25, 45)), adopted)
        c.story_last = m
        self.end_enrollment(c, adopted, EnrollmentEndReason.ADOPTED)
        return True

    def story_moved_out(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        c.story_last = m
        self.end_enrollment(c, self.day_in(m, 5, 25), EnrollmentEndReason.MOVED_OUT_OF_REGION)
        return True

    # -- injected irregularities -----------------------------------------------------

    def keep_paying(self, c: _Child, m: Period, months: int, code: AlertCode,
                    from_month: int = 1) -> None:
        """The honest end is month m; payments go on and each one is an alert."""
        c.story_last = m + (from_month - 1)
        c.paid_through = m + (from_month - 1) + months

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            for i in range(months):
                pay = plan[m + from_month + i][0]
                self.expect(code, c.cid, pay.period, pay.disbursement_id)

        c.hooks.append(hook)

    def story_paid_after_death(self, c: _Child) -> bool:
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k)
        if m is None:
            return False
        died = self.day_in(m, 5, 25)
        # Registered late: the payments went out before the death was known.
        self.emit(died + dt.timedelta(days=self.rng.randint(20, 70)), PersonDied(c.cid, died))
        self.keep_paying(c, m, k, AlertCode.PAID_AFTER_DEATH)
        return True

    def story_paid_after_age_out(self, c: _Child) -> bool:
        b18 = c.birthday18
        if c.extension_until is not None or not (c.first <= b18 and b18 + 1 <= self.end):
            return False
        k = self.rng.randint(1, min(3, self.end.index - b18.index))
        self.keep_paying(c, b18, k, AlertCode.PAID_AFTER_AGE_OUT)
        c.ends_enrollment = True  # the district forgot to end it
        return True

    def story_paid_after_adoption(self, c: _Child) -> bool:
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k)
        if m is None:
            return False
        adopted = self.day_in(m, 8, 25)
        self.emit(adopted + dt.timedelta(days=self.rng.randint(0, 20)),
                  ChildAdopted(c.cid, adopted))
        self.keep_paying(c, m, k, AlertCode.PAID_AFTER_ADOPTION)
        return True

    def story_paid_after_parent_released(self, c: _Child) -> bool:
        parent = self.temp_parent(c.family)
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k)
        if c.program is not Program.DE_FACTO_UNSUPPORTED or parent is None or m is None:
            return False
        ended = self.day_in(m, 5, 25)
        self.emit(ended + dt.timedelta(days=self.rng.randint(0, 10)),
                  PersonStatusChanged(parent[0], parent[1], StatusChange.ENDED, ended))
        self.keep_paying(c, m, k, AlertCode.PAID_AFTER_PARENT_SITUATION_ENDED)
        return True

    def story_paid_after_orphan_parent_found(self, c: _Child) -> bool:
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k - 1)
        if c.program is Program.DE_FACTO_UNSUPPORTED or m is None:
            return False
        pid, situation = self.rng.choice(c.family.parents)
        found = self.day_in(m, 10, 25)
        self.emit(found + dt.timedelta(days=self.rng.randint(0, 5)),
                  PersonStatusChanged(pid, situation, StatusChange.ENDED, found))
        # Found in month m: m itself is no longer payable (its payment went out on day 1-5).
        self.keep_paying(c, m, k, AlertCode.ORPHAN_PARENT_ALIVE, from_month=0)
        return True

    def story_paid_after_enrollment_ended(self, c: _Child) -> bool:
        k = self.rng.randint(1, 3)
        m = self.pick_month(c, after=k)
        if m is None:
            return False
        reason = self.rng.choice((EnrollmentEndReason.MOVED_OUT_OF_REGION,
                                  EnrollmentEndReason.ADMINISTRATIVE))
        self.end_enrollment(c, self.day_in(m, 5, 25), reason)
        self.keep_paying(c, m, k, AlertCode.PAID_AFTER_ENROLLMENT_ENDED)
        return True

    def story_paid_before_approval(self, c: _Child) -> bool:
        approved = Period.of_date(c.approved_on)
        if approved < self.start or c.first > self.last_honest(c):
            return False
        months = [approved] + ([approved - 1] if approved - 1 >= self.start and
                               self.rng.random() < 0.3 else [])

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            paid_on = self.pay_date(c.region, c.first)
            for m in months:  # back pay, sent with the first regular payment
                pay = self.new_pay(c.cid, c.program, c.region, m, paid_on,
                                   self.guardian_on(c, paid_on))
                plan.setdefault(m, []).append(pay)
                self.expect(AlertCode.PAID_BEFORE_APPROVAL, c.cid, m, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def extra_payment(self, c: _Child, m: Period, plan: dict[Period, list[_Pay]],
                      days_later: int, region: str | None = None,
                      amount: int | None = None) -> _Pay:
        first = plan[m][0]
        paid_on = first.paid_on + dt.timedelta(days=days_later)
        pay = self.new_pay(c.cid, c.program, region or c.region, m, paid_on,
                           self.guardian_on(c, paid_on) if not c.paid_to_self else c.cid,
                           amount=first.amount if amount is None else amount)
        plan[m].append(pay)
        return pay

    def story_paid_twice(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        elsewhere = self.rng.random() < 0.5 and len(self.cfg.regions) > 1
        region = self.rng.choice([r for r in self.cfg.regions if r != c.region]) \
            if elsewhere else c.region

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            self.extra_payment(c, m, plan, self.rng.randint(3, 10), region=region)
            self.expect(AlertCode.DUPLICATE_PAYMENT, c.cid, m)

        c.hooks.append(hook)
        return True

    def wrong_amount(self, right: int) -> int:
        delta = self.rng.randint(50, 600) * 100
        return right + delta if self.rng.random() < 0.6 or delta >= right else right - delta

    def story_wrong_amount(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            pay = plan[m][0]
            pay.amount = self.wrong_amount(pay.amount)
            self.expect(AlertCode.AMOUNT_MISMATCH, c.cid, m, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_paid_to_stranger(self, c: _Child) -> bool:
        k = self.rng.randint(1, 2)
        m = self.pick_month(c, after=k - 1)
        if m is None:
            return False
        stranger = self.person(c.region, c.birth, (25, 50))

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            for i in range(k):
                pay = plan[m + i][0]
                pay.payee = stranger
                self.expect(AlertCode.PAYEE_NOT_GUARDIAN, c.cid, pay.period, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_paid_to_former_guardian(self, c: _Child) -> bool:
        k = self.rng.randint(1, 2)
        m = self.pick_month(c, after=k)
        if c.program is Program.ORPHAN_INSTITUTIONAL or m is None:
            return False
        old = c.guardians[-1][1]
        self.appoint(c, self.person(c.region, c.birth, (25, 60)), self.day_in(m, 10, 25))

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            for i in range(1, k + 1):
                pay = plan[m + i][0]
                pay.payee = old
                self.expect(AlertCode.PAYEE_NOT_GUARDIAN, c.cid, pay.period, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_paid_to_dead_guardian(self, c: _Child) -> bool:
        k = self.rng.randint(1, 2)
        m = self.pick_month(c, after=k)
        if c.program is Program.ORPHAN_INSTITUTIONAL or m is None:
            return False
        guardian = c.guardians[-1][1]
        died = self.day_in(m, 6, 20)
        self.emit(died + dt.timedelta(days=self.rng.randint(0, 10)), PersonDied(guardian, died))
        # Still the guardian in force until a new one is appointed, after k payments.
        new = self.person(c.region, c.birth, (25, 60))
        self.appoint(c, new, self.day_in(m + k, 15, 25))

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            for i in range(1, k + 1):
                pay = plan[m + i][0]
                assert pay.payee == guardian
                self.expect(AlertCode.PAYEE_DECEASED, c.cid, pay.period, pay.disbursement_id)

        c.hooks.append(hook)
        return True

    def story_payment_skipped(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False
        c.skip.add(m)
        self.expect(AlertCode.MISSED_PAYMENT, c.cid, m)
        return True

    def story_payment_reversed_not_repaid(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            self.emit_late(DisbursementReversed(plan[m][0].disbursement_id,
                                                _last_day(self.end) + dt.timedelta(days=2)))
            self.expect(AlertCode.MISSED_PAYMENT, c.cid, m, before=False)

        c.hooks.append(hook)
        return True

    def phantom_payments(self) -> None:
        """Payments to a child who was never enrolled (NOT_ENROLLED on each)."""
        rng = self.rng
        region = rng.choice(self.cfg.regions)
        birth = self.start_date - dt.timedelta(days=rng.randint(3 * 365, 15 * 365))
        child = self.citizen_id(region, birth)
        payee = self.person(region, birth, (25, 60))
        program = rng.choice((Program.ORPHAN_DISPERSED, Program.DE_FACTO_UNSUPPORTED))
        k = rng.randint(1, 3)
        first = self.start + rng.randrange(self.cfg.months - k + 1)
        for i in range(k):
            m = first + i
            pay = self.new_pay(child, program, region, m, self.pay_date(region, m), payee)
            self.emit_pay(pay)
            self.expect(AlertCode.NOT_ENROLLED, child, m, pay.disbursement_id)
        self.stories["injected: paid_never_enrolled"] += 1

    # -- honest errors, corrected late -----------------------------------------------

    def story_double_payment_reversed(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            extra = self.extra_payment(c, m, plan, 1)
            self.emit_late(DisbursementReversed(extra.disbursement_id, _last_day(self.end)))
            self.expect(AlertCode.DUPLICATE_PAYMENT, c.cid, m, after=False)

        c.hooks.append(hook)
        return True

    def story_wrong_amount_reversed_and_repaid(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            wrong = plan[m][0]
            right = wrong.amount
            wrong.amount = self.wrong_amount(right)
            self.extra_payment(c, m, plan, self.rng.randint(8, 14), amount=right)
            self.emit_late(DisbursementReversed(wrong.disbursement_id, _last_day(self.end)))
            self.expect(AlertCode.AMOUNT_MISMATCH, c.cid, m, wrong.disbursement_id, after=False)
            self.expect(AlertCode.DUPLICATE_PAYMENT, c.cid, m, after=False)

        c.hooks.append(hook)
        return True

    def story_duplicate_entry_retracted(self, c: _Child) -> bool:
        m = self.pick_month(c)
        if m is None:
            return False

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            extra = self.extra_payment(c, m, plan, 2)
            self.emit_late(EventRetracted(extra.event_id, "entered twice by mistake"))
            self.expect(AlertCode.DUPLICATE_PAYMENT, c.cid, m, after=False)

        c.hooks.append(hook)
        return True

    def story_mistaken_death_retracted(self, c: _Child) -> bool:
        m = self.pick_month(c, after=1)
        if m is None:
            return False
        died = self.day_in(m, 5, 25)
        death = self.emit(died + dt.timedelta(days=self.rng.randint(0, 10)),
                          PersonDied(c.cid, died))
        self.emit_late(EventRetracted(death.event_id, "identity mix-up: another person died"))

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            for period, pays in plan.items():
                if period > m:
                    for pay in pays:
                        self.expect(AlertCode.PAID_AFTER_DEATH, c.cid, period,
                                    pay.disbursement_id, after=False)

        c.hooks.append(hook)
        return True

    def story_mistaken_enrollment_end_retracted(self, c: _Child) -> bool:
        m = self.pick_month(c, after=1)
        if m is None or c.natural_last <= self.end:
            return False  # an age-out end would be a second enrollmentEnded: keep it simple
        end = self.end_enrollment(c, self.day_in(m, 5, 25), EnrollmentEndReason.ADMINISTRATIVE)
        self.emit_late(EventRetracted(end.event_id, "ended the wrong child's enrollment"))

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            for period, pays in plan.items():
                if period > m:
                    for pay in pays:
                        self.expect(AlertCode.PAID_AFTER_ENROLLMENT_ENDED, c.cid, period,
                                    pay.disbursement_id, after=False)

        c.hooks.append(hook)
        return True

    def story_orphan_parent_found_payment_reversed(self, c: _Child) -> bool:
        """Honest: the parent turns up mid-month; that month's payment is reversed later."""
        m = self.pick_month(c)
        candidates = [(p, s) for p, s in c.family.parents
                      if s in (Situation.UNKNOWN, Situation.MISSING_DECLARED)]
        if c.program is Program.DE_FACTO_UNSUPPORTED or m is None or not candidates:
            return False
        pid, situation = candidates[0]
        found = self.day_in(m, 10, 25)
        self.emit(found + dt.timedelta(days=self.rng.randint(0, 5)),
                  PersonStatusChanged(pid, situation, StatusChange.ENDED, found))
        self.end_enrollment(c, min(found + dt.timedelta(days=3), _last_day(m)),
                            EnrollmentEndReason.PARENT_CIRCUMSTANCES_CHANGED)
        c.story_last = m - 1
        c.paid_through = m

        def hook(plan: dict[Period, list[_Pay]]) -> None:
            pay = plan[m][0]
            self.emit_late(DisbursementReversed(pay.disbursement_id, _last_day(self.end)))
            self.expect(AlertCode.ORPHAN_PARENT_ALIVE, c.cid, m, pay.disbursement_id,
                        after=False)

        c.hooks.append(hook)
        return True

    # -- emission --------------------------------------------------------------------

    def emit_child(self, c: _Child) -> None:
        """Enrollment, first guardian, extension, age-out end, then every payment."""
        family = c.family
        recorded = c.approved_on + dt.timedelta(days=self.rng.randint(0, 3))
        self.emit(recorded, ChildEnrolled(
            c.cid, c.birth, c.program, c.region, c.approved_on,
            tuple(ParentRecord(pid, sit) for pid, sit in family.parents)))
        appointed, guardian = c.guardians[0]
        self.emit(max(recorded, appointed), GuardianAppointed(c.cid, guardian, appointed))
        b18 = c.birthday18
        if c.extension_until is not None:  # granted ahead of the birthday, whatever follows
            self.emit(max(self.day_in(b18 - 1, 10, 20), c.approved_on),
                      SchoolingExtension(c.cid, c.extension_until))
        if not c.ends_enrollment and c.natural_last <= self.end and (
                c.story_last is None or c.story_last > c.natural_last):
            if c.extension_until is not None:
                effective = c.extension_until
            else:
                effective = min(dt.date(b18.year, b18.month, min(c.birth.day, 28)),
                                _last_day(b18))
            self.end_enrollment(c, effective, EnrollmentEndReason.REACHED_ADULTHOOD)

        last = min(self.last_honest(c), c.story_last or self.end)
        through = c.paid_through if c.paid_through is not None else last
        plan: dict[Period, list[_Pay]] = {}
        for m in self.months(c.first, through):
            if m in c.skip:
                continue
            paid_on = self.pay_date(c.region, m)
            payee = c.cid if c.paid_to_self else self.guardian_on(c, paid_on)
            plan[m] = [self.new_pay(c.cid, c.program, c.region, m, paid_on, payee)]
        for hook in c.hooks:
            hook(plan)
        for pays in plan.values():
            for pay in pays:
                self.emit_pay(pay)

    def emit_cycles(self) -> None:
        for region in self.cfg.regions:
            for m in self.months():
                self.emit(self.day_in(m, 25, 28), PaymentCycleClosed(region, m))

    def build(self) -> City:
        self.build_standards()
        self.build_population()
        self.assign_stories()
        for c in self.children:
            self.emit_child(c)
        self.emit_cycles()
        self.main.sort(key=lambda item: (item[0], item[1]))
        self.late.sort(key=lambda item: (item[0], item[1]))
        return City(
            config=self.cfg,
            events=tuple(env for _, _, env in self.main),
            corrections=tuple(env for _, _, env in self.late),
            truth=frozenset(self.truth),
            before_corrections=frozenset(self.before),
            stories=dict(sorted(self.stories.items())),
            children=len(self.children),
            disbursements=self.disbursements,
        )


def generate_city(config: CityConfig | None = None) -> City:
    """The city for `config` (deterministic: same config, same city)."""
    return _Builder(config or CityConfig()).build()


@dataclass(frozen=True)
class History:
    """A city's facts in recorded order (late corrections included) and every child they
    are about: what the verifier's tests replay and check against the domain."""

    envelopes: list[Envelope]
    child_ids: list[str]


#: The shape the verifier's tests were written against: three regions, one source.
HISTORY_REGIONS = ("110105", "110106", "310101")


def history(children: int, *, months: int = 24, seed: int = 7,
            source: str = "synthetic") -> History:
    """The city of `children` (at least 20) over `months` (at least 6) from 2022-01, as
    one History; the same arguments give the same history."""
    city = generate_city(CityConfig(seed=seed, children=max(20, children),
                                    months=max(6, months), start="2022-01",
                                    regions=HISTORY_REGIONS, source=source))
    envelopes = sorted([*city.events, *city.corrections],
                       key=lambda e: (e.recorded_at, e.event_id))
    child_ids = list(dict.fromkeys(c for e in envelopes if (c := e.child_id()) is not None))
    return History(envelopes, child_ids)


# --- shuffling and files -------------------------------------------------------------


def shuffled(events: Sequence[Envelope], seed: int, duplicates: float = 0.05,
             late: float = 0.03) -> list[Envelope]:
    """The same facts in another order: shuffled, some delivered twice, some very late.

    The set of facts is unchanged, so the final alerts must be too (DESIGN.md section 6).
    """
    rng = random.Random(seed)
    order = list(events)
    rng.shuffle(order)
    n_late = int(len(order) * late)
    stragglers = order[:n_late]
    order = order[n_late:]
    for env in rng.sample(list(events), int(len(events) * duplicates)):
        order.insert(rng.randrange(len(order) + 1), env)
    return order + stragglers


@dataclass(frozen=True)
class CityFiles:
    events: Path
    corrections: Path
    truth: Path


def write_envelopes(path: Path, envelopes: Iterable[Envelope]) -> int:
    """One envelope per line, protobuf's canonical JSON (what `humiao ingest` reads)."""
    from humiao.adapters.codec import envelope_to_proto, proto_to_json

    n = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for env in envelopes:
            fh.write(proto_to_json(envelope_to_proto(env)))
            fh.write("\n")
            n += 1
    tmp.replace(path)
    return n


def truth_document(city: City) -> dict[str, Any]:
    return {
        "config": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in dataclasses.asdict(city.config).items()},
        "children": city.children,
        "events": len(city.events),
        "corrections": len(city.corrections),
        "disbursements": city.disbursements,
        "stories": city.stories,
        "alerts": [a.to_json() for a in sorted(city.truth)],
        "beforeCorrections": [a.to_json() for a in sorted(city.before_corrections)],
    }


def write_city(city: City, directory: Path, *, shuffle: bool = False) -> CityFiles:
    """Write the city's two envelope files and its truth; shuffled with duplicates if asked."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "-shuffled" if shuffle else ""
    events: Sequence[Envelope] = city.events
    corrections: Sequence[Envelope] = city.corrections
    if shuffle:
        events = shuffled(city.events, city.config.seed + 1)
        corrections = shuffled(city.corrections, city.config.seed + 2, late=0.0)
    files = CityFiles(directory / f"events{suffix}.jsonl",
                      directory / f"corrections{suffix}.jsonl", directory / "truth.json")
    write_envelopes(files.events, events)
    write_envelopes(files.corrections, corrections)
    files.truth.write_text(json.dumps(truth_document(city), indent=1, ensure_ascii=False))
    return files


def load_truth(path: Path) -> tuple[frozenset[ExpectedAlert], frozenset[ExpectedAlert]]:
    """(truth, before_corrections) from a truth.json written by write_city."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return (frozenset(ExpectedAlert.from_json(a) for a in doc["alerts"]),
            frozenset(ExpectedAlert.from_json(a) for a in doc["beforeCorrections"]))
