"""The city's configuration, its ground truth, and the plan of families, children and
payments that the builder fills in before anything is emitted."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from humiao.domain.alerts import AlertCode
from humiao.domain.events import (
    Envelope,
)
from humiao.domain.values import (
    Period,
    Program,
    Situation,
)

#: Beijing districts: 东城, 西城, 朝阳, 丰台, 海淀.
DEFAULT_REGIONS = ("110101", "110102", "110105", "110106", "110108")
#: One source name for the whole city: the ingest gateway checks an envelope's `source`
#: against the credential, and the development credential of `humiao up` has this one.
DEFAULT_SOURCE = "humiao-dev"
#: China Standard Time: sources record local time.
CST = dt.timezone(dt.timedelta(hours=8))
#: Parents' and guardians' ID numbers come from these prefixes as well as the city's.
OTHER_PREFIXES = ("130102", "130602", "370102", "410105", "420106", "510107", "230103")

#: Parent situations that can end while the child is on the roll (release, found, ...).
TEMPORARY = (
    Situation.IN_CUSTODY,
    Situation.LOST_CONTACT,
    Situation.COMPULSORY_REHAB,
    Situation.LIBERTY_RESTRICTED,
)
DE_FACTO_PARENTS: tuple[tuple[tuple[Situation, Situation], int], ...] = (
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
ORPHAN_PARENTS: tuple[tuple[tuple[Situation, Situation], int], ...] = (
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
class Family:
    region: str
    program: Program
    parents: list[tuple[str, Situation]]
    approved_on: dt.date
    children: list[PlannedChild] = field(default_factory=list)


@dataclass(eq=False)
class PlannedChild:
    cid: str
    birth: dt.date
    family: Family
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
    hooks: list[Callable[[dict[Period, list[PlannedPay]]], None]] = field(default_factory=list)

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
class PlannedPay:
    disbursement_id: str
    event_id: str
    child_id: str
    program: Program
    period: Period
    amount: int
    paid_on: dt.date
    payee: str
    region: str


def last_day(period: Period) -> dt.date:
    return (period + 1).first_day() - dt.timedelta(days=1)


def weighted(rng: random.Random, table: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


