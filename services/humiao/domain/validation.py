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
from humiao.domain.identity import citizen_id_problem, holds_id_shape
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
MAX_REASON_TEXT_LENGTH = 200
_HOLDS_ID = "must not hold an ID number (free identifiers and reasons are shown unmasked)"
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


@functools.lru_cache(maxsize=1 << 18)
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

    def text(
        self, path: str, value: Any, max_length: int = MAX_ID_LENGTH, *, required: bool = True
    ) -> str:
        """A free identifier or reason: printable, bounded, and holding no ID number (it
        is shown as given in masked lists and on the alerts topic, where no mask reaches)."""
        if not isinstance(value, str):
            self.bad(path, "must be a string")
            return ""
        if not value:
            if required:
                self.bad(path, "is required")
        elif len(value) > max_length:
            self.bad(path, f"must be at most {max_length} characters")
        elif not value.isprintable():
            self.bad(path, "must contain only printable characters")
        elif holds_id_shape(value):
            self.bad(path, _HOLDS_ID)
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
        placeholder: E | None = _FIRST_MEMBER.get(kind)
        if placeholder is None:
            placeholder = next(iter(kind))
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
    """The reason only describes the end: a code of the sender's own is kept as
    OTHER_REASON with the code as its text, never a reason to lose the end."""
    raw_reason = getattr(b, "reason", None)
    text = c.text("enrollmentEnded.reasonText", getattr(b, "reason_text", ""),
                  MAX_REASON_TEXT_LENGTH, required=False)
    unknown = (type(raw_reason) is int and raw_reason != 0
               and raw_reason not in _END_REASON_OF)
    if unknown:
        reason, text = EnrollmentEndReason.OTHER_REASON, text or f"code {raw_reason}"
    else:
        reason = c.enum("enrollmentEnded.reason", raw_reason, EnrollmentEndReason)
    return EnrollmentEnded(
        child_id=c.citizen_id("enrollmentEnded.childId", getattr(b, "child_id", None)),
        program=c.enum("enrollmentEnded.program", getattr(b, "program", None), Program),
        effective_date=c.date("enrollmentEnded.effectiveDate",
                              getattr(b, "effective_date", None)),
        reason=reason,
        reason_text=text,
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


# --- fast path ---------------------------------------------------------------------------
# Nearly every envelope is valid. The builders below accept only what the _Checker accepts,
# with exact types (str, int, datetime) and cached parsing of the values that recur (ID
# numbers, dates, months), and build the same body; on anything they do not accept outright
# they return None and the full path runs, which names every violation. So they change
# speed, never a result (tests/unit/test_validation_fast.py compares the two paths).

_FIRST_MEMBER: dict[type, Any] = {
    k: next(iter(k)) for k in (Program, Situation, StatusChange, EnrollmentEndReason)
}
_PROGRAM_OF: dict[int, Program] = {m.value: m for m in Program}
_SITUATION_OF: dict[int, Situation] = {m.value: m for m in Situation}
_CHANGE_OF: dict[int, StatusChange] = {m.value: m for m in StatusChange}
_END_REASON_OF: dict[int, EnrollmentEndReason] = {m.value: m for m in EnrollmentEndReason}
_EARLIEST_MONTH = Period.of_date(EARLIEST_DATE).index


@functools.lru_cache(maxsize=1 << 12)
def _bounds(recorded_on: dt.date) -> tuple[dt.date, int]:
    """(latest day, latest month index) a fact recorded on `recorded_on` may name."""
    latest = _Checker(recorded_on).latest
    return latest, latest.year * 12 + latest.month - 1


@functools.lru_cache(maxsize=1 << 16)
def _date_of(text: str) -> dt.date | None:
    """_parse_iso_date, cached: payment and effective dates recur across records."""
    return _parse_iso_date(text)


@functools.lru_cache(maxsize=1 << 12)
def _month_of(text: str) -> Period | None:
    """A 'YYYY-MM' month as the _Checker parses it, or None (cached: months recur)."""
    if not text.isascii():
        return None
    try:
        return Period.parse(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 18)
def _party_ok(value: str) -> bool:
    """A valid citizen ID number or unified social credit code (payees recur monthly)."""
    return _citizen_problem(value) is None or unified_credit_code_problem(value) is None


def _ok_citizen(value: Any) -> bool:
    return type(value) is str and _citizen_problem(value) is None


def _ok_region(value: Any) -> bool:
    return type(value) is str and len(value) == 6 and value.isascii() and value.isdigit()


def _ok_text(value: Any, max_length: int) -> bool:
    return (type(value) is str and 0 < len(value) <= max_length and value.isprintable()
            and not _may_hold_id(value))


def _may_hold_id(value: str) -> bool:
    """holds_id_shape, skipped for strings too short to hold an ID number (nearly all)."""
    return len(value) >= 18 and holds_id_shape(value)


def _day(value: Any, latest: dt.date) -> dt.date | None:
    if type(value) is not str:
        return None
    day = _date_of(value)
    return day if day is not None and EARLIEST_DATE <= day <= latest else None


def _month(value: Any, last_month: int) -> Period | None:
    if type(value) is not str:
        return None
    month = _month_of(value)
    return month if month is not None and _EARLIEST_MONTH <= month.index <= last_month else None


def _member(table: dict[int, E], value: Any) -> E | None:
    return table.get(value) if type(value) is int else None


def _fast_disbursement(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    did, cid, program, period = b.disbursement_id, b.child_id, b.program, b.period
    amount, paid, payee, region = b.amount_fen, b.paid_on, b.payee_id, b.region
    if not (
        type(did) is str and 0 < len(did) <= MAX_ID_LENGTH and did.isprintable()
        and not _may_hold_id(did)
        and type(cid) is str and _citizen_problem(cid) is None
        and type(program) is int and type(amount) is int and 0 <= amount <= MAX_AMOUNT_FEN
        and type(payee) is str and _party_ok(payee)
        and type(region) is str and len(region) == 6 and region.isascii() and region.isdigit()
        and type(period) is str and type(paid) is str
    ):
        return None
    prog = _PROGRAM_OF.get(program)
    month = _month_of(period)
    day = _date_of(paid)
    if (
        prog is None or month is None or day is None
        or not _EARLIEST_MONTH <= month.index <= last_month
        or not EARLIEST_DATE <= day <= latest
    ):
        return None
    return Disbursement(did, cid, prog, month, amount, day, payee, region)


def _fast_cycle(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    region, period = b.region, b.period
    if not _ok_region(region):
        return None
    month = _month(period, last_month)
    return None if month is None else PaymentCycleClosed(region, month)


def _fast_standard(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    region, program = b.region, _member(_PROGRAM_OF, b.program)
    month, amount = _month(b.effective_from, last_month), b.monthly_amount_fen
    if (
        program is None or month is None or not _ok_region(region)
        or type(amount) is not int or not 0 <= amount <= MAX_AMOUNT_FEN
    ):
        return None
    return AllowanceStandardSet(region, program, month, amount)


def _fast_child_enrolled(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    cid, region = b.child_id, b.region
    birth = _day(b.birth_date, on)  # not after recordedAt
    approved = _day(b.approved_on, latest)
    program = _member(_PROGRAM_OF, b.program)
    if (
        birth is None or approved is None or program is None
        or not _ok_citizen(cid) or not _ok_region(region)
        or _citizen_birth_date(cid) != birth
    ):
        return None
    raw = b.parents
    try:
        if raw is None or len(raw) > MAX_PARENTS:  # len() first: never consume an iterator
            return None
    except TypeError:
        return None
    parents = []
    seen: set[str] = set()
    for item in raw:
        pid = item.person_id
        situation = _member(_SITUATION_OF, item.situation)
        if situation is None or not _ok_citizen(pid) or pid in seen:
            return None
        seen.add(pid)
        parents.append(ParentRecord(pid, situation))
    return ChildEnrolled(cid, birth, program, region, approved, tuple(parents))


def _fast_enrollment_ended(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    cid = b.child_id
    program = _member(_PROGRAM_OF, b.program)
    day = _day(b.effective_date, latest)
    reason = _member(_END_REASON_OF, b.reason)
    text: object = getattr(b, "reason_text", "")
    if program is None or day is None or reason is None or not _ok_citizen(cid) or text != "":
        return None
    return EnrollmentEnded(cid, program, day, reason)


def _fast_schooling(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    cid, day = b.child_id, _day(b.valid_until, latest)
    return None if day is None or not _ok_citizen(cid) else SchoolingExtension(cid, day)


def _fast_guardian(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    cid, gid, day = b.child_id, b.guardian_id, _day(b.effective_date, latest)
    if day is None or not _ok_citizen(cid) or type(gid) is not str or not _party_ok(gid):
        return None
    return GuardianAppointed(cid, gid, day)


def _fast_adopted(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    cid, day = b.child_id, _day(b.adoption_date, latest)
    return None if day is None or not _ok_citizen(cid) else ChildAdopted(cid, day)


def _fast_died(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    pid, day = b.person_id, _day(b.date_of_death, latest)
    return None if day is None or not _ok_citizen(pid) else PersonDied(pid, day)


def _fast_status(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    pid = b.person_id
    situation = _member(_SITUATION_OF, b.situation)
    change = _member(_CHANGE_OF, b.change)
    day = _day(b.effective_date, latest)
    if situation is None or change is None or day is None or not _ok_citizen(pid):
        return None
    return PersonStatusChanged(pid, situation, change, day)


def _fast_reversed(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    did, day = b.disbursement_id, _day(b.reversed_on, latest)
    if day is None or not _ok_text(did, MAX_ID_LENGTH):
        return None
    return DisbursementReversed(did, day)


def _fast_retracted(b: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
    target, reason = b.retracted_event_id, b.reason
    if not (_ok_text(target, MAX_EVENT_ID_LENGTH) and _ok_text(reason, MAX_TEXT_LENGTH)):
        return None
    return EventRetracted(target, reason)


_FAST_BUILDERS: dict[str, Callable[[Any, dt.date, dt.date, int], Body | None]] = {
    "childEnrolled": _fast_child_enrolled,
    "enrollmentEnded": _fast_enrollment_ended,
    "schoolingExtension": _fast_schooling,
    "guardianAppointed": _fast_guardian,
    "childAdopted": _fast_adopted,
    "personDied": _fast_died,
    "personStatusChanged": _fast_status,
    "disbursement": _fast_disbursement,
    "disbursementReversed": _fast_reversed,
    "paymentCycleClosed": _fast_cycle,
    "allowanceStandardSet": _fast_standard,
    "eventRetracted": _fast_retracted,
}
assert set(_FAST_BUILDERS) == ALL_KINDS


def _validate_fast(
    event_id: Any, recorded_at: Any, source: Any, kind: Any, body: Any
) -> Envelope | None:
    """The envelope when every field is plainly valid; None means 'ask the full path'."""
    if (
        type(recorded_at) is not dt.datetime
        or type(kind) is not str
        or body is None
        or type(event_id) is not str
        or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH
        or type(source) is not str
        or not 0 < len(source) <= MAX_SOURCE_LENGTH
        or type(recorded_at.tzinfo) is not dt.timezone  # fixed offset: utcoffset() is safe
        or not EARLIEST_RECORDED_AT <= recorded_at < LATEST_RECORDED_AT
        or not event_id.isprintable()
        or not source.isprintable()
        or _may_hold_id(event_id)
        or _may_hold_id(source)
    ):
        return None
    build = _FAST_BUILDERS.get(kind)
    if build is None:
        return None
    on = recorded_at.astimezone(dt.UTC).date()
    latest, last_month = _bounds(on)
    try:
        built = build(body, on, latest, last_month)
    except AttributeError:  # a missing field: the full path names it
        return None
    if built is None:
        return None
    return Envelope(event_id, recorded_at, source, built)
