"""Domain events: the validated, typed form of the envelopes upstream systems send.

Adapters build these from protobuf (see humiao.adapters.codec) after validation;
everything downstream of ingest works on these types only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from humiao.domain.values import (
    EnrollmentEndReason,
    Period,
    Program,
    Situation,
    StatusChange,
)


@dataclass(frozen=True, slots=True)
class ParentRecord:
    person_id: str
    situation: Situation


@dataclass(frozen=True, slots=True)
class ChildEnrolled:
    child_id: str
    birth_date: dt.date
    program: Program
    region: str
    approved_on: dt.date
    parents: tuple[ParentRecord, ...]


@dataclass(frozen=True, slots=True)
class EnrollmentEnded:
    child_id: str
    program: Program
    effective_date: dt.date
    reason: EnrollmentEndReason
    #: The sender's own words or code for the reason, kept when it is not one of ours.
    reason_text: str = ""


@dataclass(frozen=True, slots=True)
class SchoolingExtension:
    child_id: str
    valid_until: dt.date


@dataclass(frozen=True, slots=True)
class GuardianAppointed:
    child_id: str
    guardian_id: str
    effective_date: dt.date


@dataclass(frozen=True, slots=True)
class ChildAdopted:
    child_id: str
    adoption_date: dt.date


@dataclass(frozen=True, slots=True)
class PersonDied:
    person_id: str
    date_of_death: dt.date


@dataclass(frozen=True, slots=True)
class PersonStatusChanged:
    person_id: str
    situation: Situation
    change: StatusChange
    effective_date: dt.date


@dataclass(frozen=True, slots=True)
class Disbursement:
    disbursement_id: str
    child_id: str
    program: Program
    period: Period
    amount_fen: int
    paid_on: dt.date
    payee_id: str
    region: str


@dataclass(frozen=True, slots=True)
class DisbursementReversed:
    disbursement_id: str
    reversed_on: dt.date


@dataclass(frozen=True, slots=True)
class PaymentCycleClosed:
    region: str
    period: Period


@dataclass(frozen=True, slots=True)
class AllowanceStandardSet:
    region: str
    program: Program
    effective_from: Period
    monthly_amount_fen: int


@dataclass(frozen=True, slots=True)
class EventRetracted:
    retracted_event_id: str
    reason: str


Body = (
    ChildEnrolled
    | EnrollmentEnded
    | SchoolingExtension
    | GuardianAppointed
    | ChildAdopted
    | PersonDied
    | PersonStatusChanged
    | Disbursement
    | DisbursementReversed
    | PaymentCycleClosed
    | AllowanceStandardSet
    | EventRetracted
)

#: The contract's name of each body kind (the oneof field's JSON name).
KIND_NAMES: dict[type, str] = {
    ChildEnrolled: "childEnrolled",
    EnrollmentEnded: "enrollmentEnded",
    SchoolingExtension: "schoolingExtension",
    GuardianAppointed: "guardianAppointed",
    ChildAdopted: "childAdopted",
    PersonDied: "personDied",
    PersonStatusChanged: "personStatusChanged",
    Disbursement: "disbursement",
    DisbursementReversed: "disbursementReversed",
    PaymentCycleClosed: "paymentCycleClosed",
    AllowanceStandardSet: "allowanceStandardSet",
    EventRetracted: "eventRetracted",
}
ALL_KINDS = frozenset(KIND_NAMES.values())

#: Bodies about one child: routed by that child's key.
CHILD_KINDS = frozenset(
    {
        "childEnrolled",
        "enrollmentEnded",
        "schoolingExtension",
        "guardianAppointed",
        "childAdopted",
        "disbursement",
    }
)
#: Bodies about a person who may be parent, guardian or payee of many children.
PERSON_KINDS = frozenset({"personDied", "personStatusChanged"})
#: Bodies about a whole region.
REGION_KINDS = frozenset({"paymentCycleClosed", "allowanceStandardSet"})
#: Bodies that name another fact by id (a disbursement or an event), not a child.
REFERENCE_KINDS = frozenset({"disbursementReversed", "eventRetracted"})


@dataclass(frozen=True, slots=True)
class Envelope:
    """One fact as recorded by a source. `event_id` is the idempotency key."""

    event_id: str
    recorded_at: dt.datetime
    source: str
    body: Body

    @property
    def kind(self) -> str:
        return KIND_NAMES[type(self.body)]

    def child_id(self) -> str | None:
        """The child this fact is about, for child-keyed kinds; None otherwise."""
        return getattr(self.body, "child_id", None)

    def region(self) -> str | None:
        """The region a region-wide fact (or a disbursement) names."""
        return getattr(self.body, "region", None)


def effective_date(body: Body) -> dt.date | None:
    """The day a fact takes effect in the world (valid time), as opposed to when a
    source recorded it; None for facts that name no such day."""
    match body:
        case ChildEnrolled(approved_on=day):
            return day
        case EnrollmentEnded(effective_date=day) | GuardianAppointed(effective_date=day):
            return day
        case PersonStatusChanged(effective_date=day):
            return day
        case ChildAdopted(adoption_date=day):
            return day
        case PersonDied(date_of_death=day):
            return day
        case Disbursement(paid_on=day):
            return day
        case DisbursementReversed(reversed_on=day):
            return day
        case AllowanceStandardSet(effective_from=period) | PaymentCycleClosed(period=period):
            return period.first_day()
        case _:
            return None
