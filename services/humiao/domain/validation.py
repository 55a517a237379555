"""Validation of incoming envelopes: one violation per bad field, all of them at once.

Pure domain code: it reads the attributes of a proto-shaped object (snake_case fields,
enums as ints, dates as 'YYYY-MM-DD' strings), so the protobuf codec and tests with
plain objects share it. Field paths use the contract's JSON names
(`childEnrolled.parents[1].personId`) because that is what upstream systems see.
Messages never repeat an ID number back: rejections end up in logs and side files.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from humiao.domain.events import (
    ALL_KINDS,
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
from humiao.domain.identity import citizen_id_problem
from humiao.domain.values import EnrollmentEndReason, Period, Program, Situation, StatusChange

#: Largest amount accepted, in fen (100,000 yuan): far above any monthly allowance,
#: low enough to catch yuan/fen mix-ups multiplied by 100 twice.
MAX_AMOUNT_FEN = 10_000_000
#: No fact in this domain predates this day.
EARLIEST_DATE = dt.date(1900, 1, 1)
#: Dates may lie this many years after recordedAt (e.g. a schooling extension's end).
FUTURE_YEARS = 10
#: recordedAt must fall in [EARLIEST_RECORDED_AT, LATEST_RECORDED_AT).
EARLIEST_RECORDED_AT = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST_RECORDED_AT = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
MAX_EVENT_ID_LENGTH = 128
MAX_SOURCE_LENGTH = 128
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 2000
MAX_PARENTS = 2

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
_USCC_VALUES = {c: i for i, c in enumerate(_USCC_CHARS)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: its JSON path (e.g. `disbursement.amountFen`) and why."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field or '(envelope)'}: {self.description}"


class ValidationFailed(ValueError):
    """An envelope broke the contract; `violations` names every bad field."""

    def __init__(self, violations: Iterable[FieldViolation]) -> None:
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        super().__init__("; ".join(str(v) for v in self.violations) or "invalid envelope")

    @classmethod
    def single(cls, field: str, description: str) -> ValidationFailed:
        return cls([FieldViolation(field, description)])


def unified_credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character of an 18-character unified social credit code."""
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def unified_credit_code_problem(value: str) -> str | None:
    """Why `value` is not a unified social credit code (GB 32100), or None when it is."""
    if len(value) != 18:
        return "must be 18 characters"
    if any(c not in _USCC_VALUES for c in value):
        return "may contain only digits and capital letters other than I, O, S, V and Z"
    if not all(c in _DIGITS for c in value[2:8]):
        return "characters 3-8 must be a 6-digit region code"
    if unified_credit_code_check_char(value[:17]) != value[17]:
        return "check character does not match (GB 32100)"
    return None


def _citizen_birth_date(value: str) -> dt.date | None:
    """The birth date embedded in a well-formed citizen ID number, or None if impossible."""
    try:
        return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16)
def _citizen_problem(value: str) -> str | None:
    """citizen_id_problem plus a real embedded birth date; cached because the same
    children and guardians recur in every month's disbursements."""
    problem = citizen_id_problem(value)
    if problem is None and _citizen_birth_date(value) is None:
        problem = "contains a birth date that does not exist"
    return problem


def _parse_iso_date(text: str) -> dt.date | None:
    """Strict YYYY-MM-DD (fromisoformat would also take '20240101' and week dates)."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.isascii():
        return None
    y, m, d = text[:4], text[5:7], text[8:]
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        return None
    try:
        return dt.date(int(y), int(m), int(d))
    except ValueError:
        return None


E = TypeVar("E", bound=enum.IntEnum)


class _Checker:
    """Collects violations; each check returns a usable placeholder when the field is bad,
    so body builders stay simple and the (discarded) body never sees None."""

    __slots__ = ("latest", "recorded_on", "violations")

    def __init__(self, recorded_on: dt.date | None) -> None:
        self.violations: list[FieldViolation] = []
        self.recorded_on = recorded_on
        if recorded_on is None:
            self.latest = LATEST_RECORDED_AT.date()
        else:
            try:
                self.latest = recorded_on.replace(year=recorded_on.year + FUTURE_YEARS)
            except ValueError:  # 29 February
                self.latest = recorded_on.replace(year=recorded_on.year + FUTURE_YEARS, day=28)

    def bad(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    def text(self, path: str, value: Any, max_length: int = MAX_ID_LENGTH) -> str:
        if not isinstance(value, str):
            self.bad(path, "must be a string")
            return ""
        if not value:
            self.bad(path, "is required")
        elif len(value) > max_length:
            self.bad(path, f"must be at most {max_length} characters")
        elif not value.isprintable():
            self.bad(path, "must contain only printable characters")
        return value

    def citizen_id(self, path: str, value: Any) -> str:
        if not isinstance(value, str):
            self.bad(path, "must be a string")
            return ""
        if not value:
            self.bad(path, "is required")
            return value
        problem = _citizen_problem(value)
        if problem is not None:
            self.bad(path, f"is not a valid citizen ID number: {problem}")
        return value

    def party_id(self, path: str, value: Any) -> str:
        """A citizen ID number or an institution's unified social credit code."""
        if not isinstance(value, str):
            self.bad(path, "must be a string")
            return ""
        if not value:
            self.bad(path, "is required")
            return value
        person = _citizen_problem(value)
        if person is None:
            return value
        institution = unified_credit_code_problem(value)
        if institution is None:
            return value
        looks_personal = len(value) == 18 and all(c in _DIGITS for c in value[:17])
        if looks_personal:
            self.bad(path, f"is not a valid citizen ID number: {person}")
        else:
            self.bad(
                path,
                "is neither a citizen ID number nor a unified social credit code: "
                f"{institution}",
            )
        return value

    def region(self, path: str, value: Any) -> str:
        if not isinstance(value, str):
            self.bad(path, "must be a string")
            return ""
        if not value:
            self.bad(path, "is required")
        elif len(value) != 6 or not all(c in _DIGITS for c in value):
            self.bad(path, "must be a 6-digit region code")
        return value

    def date(self, path: str, value: Any, *, not_after_recorded: bool = False) -> dt.date:
        if not isinstance(value, str):
            self.bad(path, "must be a string")
            return EARLIEST_DATE
        if not value:
            self.bad(path, "is required")
            return EARLIEST_DATE
        day = _parse_iso_date(value)
        if day is None:
            self.bad(path, "must be a real date written YYYY-MM-DD")
            return EARLIEST_DATE
        if day < EARLIEST_DATE:
            self.bad(path, "must not be before 1900-01-01")
        elif not_after_recorded and self.recorded_on is not None and day > self.recorded_on:
            self.bad(path, "must not be after recordedAt")
        elif day > self.latest:
            self.bad(path, f"must not be more than {FUTURE_YEARS} years after recordedAt")
        return day

    def period(self, path: str, value: Any) -> Period:
        if not isinstance(value, str):
            self.bad(path, "must be a string")
            return Period.of_date(EARLIEST_DATE)
        if not value:
            self.bad(path, "is required")
            return Period.of_date(EARLIEST_DATE)
        try:
            if not value.isascii():
                raise ValueError
            period = Period.parse(value)
        except ValueError:
            self.bad(path, "must be a month written YYYY-MM")
            return Period.of_date(EARLIEST_DATE)
        if period < Period.of_date(EARLIEST_DATE):
            self.bad(path, "must not be before 1900-01")
        elif period > Period.of_date(self.latest):
            self.bad(path, f"must not be more than {FUTURE_YEARS} years after recordedAt")
        return period

    def amount(self, path: str, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.bad(path, "must be a whole number of fen")
            return 0
        if value < 0:
            self.bad(path, "must not be negative")
        elif value > MAX_AMOUNT_FEN:
            self.bad(path, f"must not exceed {MAX_AMOUNT_FEN} fen")
        return value

    def enum(self, path: str, value: Any, kind: type[E]) -> E:
        placeholder: E = _FIRST_MEMBER[kind]
        if not isinstance(value, int) or isinstance(value, bool):
            self.bad(path, f"must be a {kind.__name__} value")
            return placeholder
        if value == 0:
            self.bad(path, f"is required (one of {', '.join(m.name for m in kind)})")
            return placeholder
        try:
            return kind(value)
        except ValueError:
            self.bad(path, f"{value} is not a known {kind.__name__}")
            return placeholder


def _parents(c: _Checker, raw: Any) -> tuple[ParentRecord, ...]:
    path = "childEnrolled.parents"
    try:
        items = list(raw) if raw is not None else []
    except TypeError:
        c.bad(path, "must be a list")
        return ()
    if len(items) > MAX_PARENTS:
        c.bad(path, f"must list at most {MAX_PARENTS} parents")
        return ()
    parents = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        person_id = c.citizen_id(f"{path}[{i}].personId", getattr(item, "person_id", None))
        situation = c.enum(f"{path}[{i}].situation", getattr(item, "situation", None), Situation)
        if person_id and person_id in seen:
            c.bad(f"{path}[{i}].personId", "names the same person as an earlier parent")
        seen.add(person_id)
        parents.append(ParentRecord(person_id, situation))
    return tuple(parents)


def _child_enrolled(c: _Checker, b: Any) -> Body:
    child_id = c.citizen_id("childEnrolled.childId", getattr(b, "child_id", None))
    failures = len(c.violations)
    birth = c.date("childEnrolled.birthDate", getattr(b, "birth_date", None),
                   not_after_recorded=True)
    if len(c.violations) == failures and _citizen_problem(child_id) is None:
        embedded = _citizen_birth_date(child_id)
        if embedded is not None and embedded != birth:
            c.bad("childEnrolled.birthDate", "does not match the birth date in childId")
    return ChildEnrolled(
        child_id=child_id,
        birth_date=birth,
        program=c.enum("childEnrolled.program", getattr(b, "program", None), Program),
        region=c.region("childEnrolled.region", getattr(b, "region", None)),
        approved_on=c.date("childEnrolled.approvedOn", getattr(b, "approved_on", None)),
        parents=_parents(c, getattr(b, "parents", None)),
    )


def _enrollment_ended(c: _Checker, b: Any) -> Body:
    return EnrollmentEnded(
        child_id=c.citizen_id("enrollmentEnded.childId", getattr(b, "child_id", None)),
        program=c.enum("enrollmentEnded.program", getattr(b, "program", None), Program),
        effective_date=c.date("enrollmentEnded.effectiveDate",
                              getattr(b, "effective_date", None)),
        reason=c.enum("enrollmentEnded.reason", getattr(b, "reason", None), EnrollmentEndReason),
    )


def _schooling_extension(c: _Checker, b: Any) -> Body:
    return SchoolingExtension(
        child_id=c.citizen_id("schoolingExtension.childId", getattr(b, "child_id", None)),
        valid_until=c.date("schoolingExtension.validUntil", getattr(b, "valid_until", None)),
    )


def _guardian_appointed(c: _Checker, b: Any) -> Body:
    return GuardianAppointed(
        child_id=c.citizen_id("guardianAppointed.childId", getattr(b, "child_id", None)),
        guardian_id=c.party_id("guardianAppointed.guardianId", getattr(b, "guardian_id", None)),
        effective_date=c.date("guardianAppointed.effectiveDate",
                              getattr(b, "effective_date", None)),
    )


def _child_adopted(c: _Checker, b: Any) -> Body:
    return ChildAdopted(
        child_id=c.citizen_id("childAdopted.childId", getattr(b, "child_id", None)),
        adoption_date=c.date("childAdopted.adoptionDate", getattr(b, "adoption_date", None)),
    )


def _person_died(c: _Checker, b: Any) -> Body:
    return PersonDied(
        person_id=c.citizen_id("personDied.personId", getattr(b, "person_id", None)),
        date_of_death=c.date("personDied.dateOfDeath", getattr(b, "date_of_death", None)),
    )


def _person_status_changed(c: _Checker, b: Any) -> Body:
    p = "personStatusChanged"
    return PersonStatusChanged(
        person_id=c.citizen_id(f"{p}.personId", getattr(b, "person_id", None)),
        situation=c.enum(f"{p}.situation", getattr(b, "situation", None), Situation),
        change=c.enum(f"{p}.change", getattr(b, "change", None), StatusChange),
        effective_date=c.date(f"{p}.effectiveDate", getattr(b, "effective_date", None)),
    )


def _disbursement(c: _Checker, b: Any) -> Body:
    return Disbursement(
        disbursement_id=c.text("disbursement.disbursementId",
                               getattr(b, "disbursement_id", None)),
        child_id=c.citizen_id("disbursement.childId", getattr(b, "child_id", None)),
        program=c.enum("disbursement.program", getattr(b, "program", None), Program),
        period=c.period("disbursement.period", getattr(b, "period", None)),
        amount_fen=c.amount("disbursement.amountFen", getattr(b, "amount_fen", None)),
        paid_on=c.date("disbursement.paidOn", getattr(b, "paid_on", None)),
        payee_id=c.party_id("disbursement.payeeId", getattr(b, "payee_id", None)),
        region=c.region("disbursement.region", getattr(b, "region", None)),
    )


def _disbursement_reversed(c: _Checker, b: Any) -> Body:
    return DisbursementReversed(
        disbursement_id=c.text("disbursementReversed.disbursementId",
                               getattr(b, "disbursement_id", None)),
        reversed_on=c.date("disbursementReversed.reversedOn", getattr(b, "reversed_on", None)),
    )


def _payment_cycle_closed(c: _Checker, b: Any) -> Body:
    return PaymentCycleClosed(
        region=c.region("paymentCycleClosed.region", getattr(b, "region", None)),
        period=c.period("paymentCycleClosed.period", getattr(b, "period", None)),
    )


def _allowance_standard_set(c: _Checker, b: Any) -> Body:
    p = "allowanceStandardSet"
    return AllowanceStandardSet(
        region=c.region(f"{p}.region", getattr(b, "region", None)),
        program=c.enum(f"{p}.program", getattr(b, "program", None), Program),
        effective_from=c.period(f"{p}.effectiveFrom", getattr(b, "effective_from", None)),
        monthly_amount_fen=c.amount(f"{p}.monthlyAmountFen",
                                    getattr(b, "monthly_amount_fen", None)),
    )


def _event_retracted(c: _Checker, b: Any) -> Body:
    return EventRetracted(
        retracted_event_id=c.text("eventRetracted.retractedEventId",
                                  getattr(b, "retracted_event_id", None), MAX_EVENT_ID_LENGTH),
        reason=c.text("eventRetracted.reason", getattr(b, "reason", None), MAX_TEXT_LENGTH),
    )


_BUILDERS: dict[str, Callable[[_Checker, Any], Body]] = {
    "childEnrolled": _child_enrolled,
    "enrollmentEnded": _enrollment_ended,
    "schoolingExtension": _schooling_extension,
    "guardianAppointed": _guardian_appointed,
    "childAdopted": _child_adopted,
    "personDied": _person_died,
    "personStatusChanged": _person_status_changed,
    "disbursement": _disbursement,
    "disbursementReversed": _disbursement_reversed,
    "paymentCycleClosed": _payment_cycle_closed,
    "allowanceStandardSet": _allowance_standard_set,
    "eventRetracted": _event_retracted,
}
assert set(_BUILDERS) == ALL_KINDS


def _recorded_at(c: _Checker, value: Any) -> dt.datetime:
    if value is None:
        c.bad("recordedAt", "is required")
    elif not isinstance(value, dt.datetime):
        c.bad("recordedAt", "must be a timestamp")
    elif value.tzinfo is None or value.utcoffset() is None:
        c.bad("recordedAt", "must carry a time zone")
    elif not EARLIEST_RECORDED_AT <= value < LATEST_RECORDED_AT:
        c.bad("recordedAt", "must lie between 1900 and 2199")
    else:
        return value
    return EARLIEST_RECORDED_AT


def validate_envelope(
    event_id: Any,
    recorded_at: dt.datetime | None,
    source: Any,
    kind: str | None,
    body: Any,
    *,
    extra: Iterable[FieldViolation] = (),
) -> Envelope:
    """The typed Envelope, or ValidationFailed listing every bad field.

    `kind` is the body's oneof name in JSON form (`childEnrolled`) or None when no body
    was set; `extra` carries violations an adapter found while decoding (e.g. a
    timestamp that no datetime can hold) so they are reported with the rest.
    """
    if type(extra) in (tuple, list) and not extra:
        fast = _validate_fast(event_id, recorded_at, source, kind, body)
        if fast is not None:
            return fast
    return _validate_full(event_id, recorded_at, source, kind, body, extra)


def _validate_full(
    event_id: Any,
    recorded_at: dt.datetime | None,
    source: Any,
    kind: str | None,
    body: Any,
    extra: Iterable[FieldViolation],
) -> Envelope:
    """The authoritative path: collects every violation (the fast path defers to it)."""
    violations = list(extra)
    when: dt.datetime | None = None
    if not any(v.field == "recordedAt" for v in violations):
        first = _Checker(None)
        candidate = _recorded_at(first, recorded_at)
        violations.extend(first.violations)
        when = None if first.violations else candidate
    checker = _Checker(when.astimezone(dt.UTC).date() if when is not None else None)
    eid = checker.text("eventId", event_id, MAX_EVENT_ID_LENGTH)
    src = checker.text("source", source, MAX_SOURCE_LENGTH)
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    built: Body | None = None
    if builder is None:
        expected = ", ".join(sorted(ALL_KINDS))
        if kind is None:
            checker.bad("body", f"exactly one body is required (one of {expected})")
        else:
            checker.bad("body", f"unknown body kind (expected one of {expected})")
    elif body is None:
        checker.bad(str(kind), "is required")
    else:
        built = builder(checker, body)
    violations.extend(checker.violations)
    if violations or built is None or when is None:
        raise ValidationFailed(violations or [FieldViolation("", "invalid envelope")])
    return Envelope(event_id=eid, recorded_at=when, source=src, body=built)
