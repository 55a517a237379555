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


def compose_credit_code(prefix: str, region: str | int, organisation: str) -> str:
    """The unified social credit code of these parts with its check character."""
    first17 = f"{prefix}{int(region):06d}{organisation}"
    return first17 + unified_credit_code_check_char(first17)


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
    spec = _KINDS.get(kind) if isinstance(kind, str) else None
    built: Body | None = None
    if spec is None:
        expected = ", ".join(sorted(ALL_KINDS))
        if kind is None:
            checker.bad("body", f"exactly one body is required (one of {expected})")
        else:
            checker.bad("body", f"unknown body kind (expected one of {expected})")
    elif body is None:
        checker.bad(str(kind), "is required")
    else:
        built = spec.full(checker, body)
    violations.extend(checker.violations)
    if violations or built is None or when is None:
        raise ValidationFailed(violations or [FieldViolation("", "invalid envelope")])
    return Envelope(event_id=eid, recorded_at=when, source=src, body=built)


# --- fast path ---------------------------------------------------------------------------
# Nearly every envelope is valid. Each field type's `fast` accepts only what the _Checker
# accepts, with exact types (str, int, datetime) and cached parsing of the values that
# recur (ID numbers, dates, months); on anything it does not accept outright the full path
# runs, which names every violation.

_FIRST_MEMBER: dict[type, Any] = {
    k: next(iter(k)) for k in (Program, Situation, StatusChange, EnrollmentEndReason)
}
_SITUATION_OF: dict[int, Situation] = {m.value: m for m in Situation}
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


# --- one description per event kind ------------------------------------------------------
# Each kind is its body class and its fields, each field a type that knows both ways to
# check a value: `full` through the _Checker (names every violation, returns a placeholder
# when bad) and `fast` (the value when plainly valid, else _NO so the full path runs).
# The fast path changes speed, never a result (tests/unit/test_validation_fast.py).

_NO: Any = object()


class _Field:
    """One field type; `missing` is what an absent attribute counts as."""

    missing: Any = None

    def full(self, c: _Checker, path: str, value: Any) -> Any:
        raise NotImplementedError

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        raise NotImplementedError


class _CitizenId(_Field):
    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return c.citizen_id(path, value)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        return value if type(value) is str and _citizen_problem(value) is None else _NO


class _PartyId(_Field):
    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return c.party_id(path, value)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        return value if type(value) is str and _party_ok(value) else _NO


class _Region(_Field):
    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return c.region(path, value)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        return value if _ok_region(value) else _NO


class _Date(_Field):
    def __init__(self, not_after_recorded: bool = False) -> None:
        self.not_after_recorded = not_after_recorded

    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return c.date(path, value, not_after_recorded=self.not_after_recorded)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        day = _day(value, on if self.not_after_recorded else latest)
        return _NO if day is None else day


class _Month(_Field):
    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return c.period(path, value)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        month = _month(value, last_month)
        return _NO if month is None else month


class _Amount(_Field):
    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return c.amount(path, value)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        return value if type(value) is int and 0 <= value <= MAX_AMOUNT_FEN else _NO


class _Enum(_Field):
    def __init__(self, kind: type[enum.IntEnum]) -> None:
        self.kind = kind
        self.members = {m.value: m for m in kind}

    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return c.enum(path, value, self.kind)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        return self.members.get(value, _NO) if type(value) is int else _NO


class _EndReason(_Enum):
    """Only describes the end: an unknown code becomes OTHER_REASON (its text is kept by
    _keep_reason_code), never a violation."""

    def full(self, c: _Checker, path: str, value: Any) -> Any:
        if type(value) is int and value != 0 and value not in self.members:
            return EnrollmentEndReason.OTHER_REASON
        return super().full(c, path, value)


class _Text(_Field):
    def __init__(self, max_length: int = MAX_ID_LENGTH, *, required: bool = True) -> None:
        self.max_length = max_length
        self.required = required
        self.missing = None if required else ""

    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return c.text(path, value, self.max_length, required=self.required)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        if not self.required and value == "" and type(value) is str:
            return value
        return value if _ok_text(value, self.max_length) else _NO


class _Parents(_Field):
    def full(self, c: _Checker, path: str, value: Any) -> Any:
        return _parents(c, path, value)

    def fast(self, value: Any, on: dt.date, latest: dt.date, last_month: int) -> Any:
        try:
            if value is None or len(value) > MAX_PARENTS:  # len() first: never consume
                return _NO
        except TypeError:
            return _NO
        parents = []
        seen: set[str] = set()
        for item in value:
            pid = item.person_id
            situation = _SITUATION_OF.get(item.situation) if type(item.situation) is int else None
            if situation is None or not _ok_citizen(pid) or pid in seen:
                return _NO
            seen.add(pid)
            parents.append(ParentRecord(pid, situation))
        return tuple(parents)


def _parents(c: _Checker, path: str, raw: Any) -> tuple[ParentRecord, ...]:
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


#: A check across fields once each field passed on its own: (checker or None for the fast
#: path, the raw body, the values by attribute) -> False when the body must be refused.
_Across = Callable[["_Checker | None", Any, dict[str, Any]], bool]


def _birth_date_matches_id(c: _Checker | None, body: Any, v: dict[str, Any]) -> bool:
    cid, birth = v["child_id"], v["birth_date"]
    if c is not None and any(x.field in ("childEnrolled.childId", "childEnrolled.birthDate")
                             for x in c.violations):
        return True  # already named
    if _citizen_problem(cid) is not None or _citizen_birth_date(cid) == birth:
        return True
    if c is not None:
        c.bad("childEnrolled.birthDate", "does not match the birth date in childId")
    return False


def _keep_reason_code(c: _Checker | None, body: Any, v: dict[str, Any]) -> bool:
    raw = getattr(body, "reason", None)
    if type(raw) is int and raw != 0 and raw not in _END_REASON_OF and not v["reason_text"]:
        v["reason_text"] = f"code {raw}"
    return True


@dataclass(frozen=True)
class _Kind:
    """An event kind: its body class, its fields (attribute, type) in constructor order,
    and the checks across fields."""

    name: str
    body: type
    fields: tuple[tuple[str, _Field], ...]
    across: tuple[_Across, ...] = ()

    def __post_init__(self) -> None:
        paths = tuple(f"{self.name}.{_camel(a)}" for a, _ in self.fields)
        object.__setattr__(self, "_paths", paths)

    def full(self, c: _Checker, raw: Any) -> Body:
        values = {attr: ftype.full(c, path, getattr(raw, attr, ftype.missing))
                  for (attr, ftype), path in zip(self.fields, self._paths, strict=True)}
        for check in self.across:
            check(c, raw, values)
        return self.body(**values)

    def fast(self, raw: Any, on: dt.date, latest: dt.date, last_month: int) -> Body | None:
        values = {}
        for attr, ftype in self.fields:
            value = ftype.fast(getattr(raw, attr, ftype.missing), on, latest, last_month)
            if value is _NO:
                return None
            values[attr] = value
        for check in self.across:
            if not check(None, raw, values):
                return None
        return self.body(**values)

    _paths: tuple[str, ...] = ()


def _camel(attr: str) -> str:
    head, *rest = attr.split("_")
    return head + "".join(p.title() for p in rest)


_CHILD, _PARTY, _REGION, _MONTH, _AMOUNT = _CitizenId(), _PartyId(), _Region(), _Month(), _Amount()
_DAY, _PROGRAM = _Date(), _Enum(Program)

_KINDS: dict[str, _Kind] = {k.name: k for k in (
    _Kind("childEnrolled", ChildEnrolled, (
        ("child_id", _CHILD), ("birth_date", _Date(not_after_recorded=True)),
        ("program", _PROGRAM), ("region", _REGION), ("approved_on", _DAY),
        ("parents", _Parents())), (_birth_date_matches_id,)),
    _Kind("enrollmentEnded", EnrollmentEnded, (
        ("child_id", _CHILD), ("program", _PROGRAM), ("effective_date", _DAY),
        ("reason", _EndReason(EnrollmentEndReason)),
        ("reason_text", _Text(MAX_REASON_TEXT_LENGTH, required=False))), (_keep_reason_code,)),
    _Kind("schoolingExtension", SchoolingExtension, (
        ("child_id", _CHILD), ("valid_until", _DAY))),
    _Kind("guardianAppointed", GuardianAppointed, (
        ("child_id", _CHILD), ("guardian_id", _PARTY), ("effective_date", _DAY))),
    _Kind("childAdopted", ChildAdopted, (("child_id", _CHILD), ("adoption_date", _DAY))),
    _Kind("personDied", PersonDied, (("person_id", _CHILD), ("date_of_death", _DAY))),
    _Kind("personStatusChanged", PersonStatusChanged, (
        ("person_id", _CHILD), ("situation", _Enum(Situation)),
        ("change", _Enum(StatusChange)), ("effective_date", _DAY))),
    _Kind("disbursement", Disbursement, (
        ("disbursement_id", _Text()), ("child_id", _CHILD), ("program", _PROGRAM),
        ("period", _MONTH), ("amount_fen", _AMOUNT), ("paid_on", _DAY),
        ("payee_id", _PARTY), ("region", _REGION))),
    _Kind("disbursementReversed", DisbursementReversed, (
        ("disbursement_id", _Text()), ("reversed_on", _DAY))),
    _Kind("paymentCycleClosed", PaymentCycleClosed, (("region", _REGION), ("period", _MONTH))),
    _Kind("allowanceStandardSet", AllowanceStandardSet, (
        ("region", _REGION), ("program", _PROGRAM), ("effective_from", _MONTH),
        ("monthly_amount_fen", _AMOUNT))),
    _Kind("eventRetracted", EventRetracted, (
        ("retracted_event_id", _Text(MAX_EVENT_ID_LENGTH)),
        ("reason", _Text(MAX_TEXT_LENGTH)))),
)}
assert set(_KINDS) == ALL_KINDS


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
    spec = _KINDS.get(kind)
    if spec is None:
        return None
    on = recorded_at.astimezone(dt.UTC).date()
    latest, last_month = _bounds(on)
    try:
        built = spec.fast(body, on, latest, last_month)
    except AttributeError:  # a missing field: the full path names it
        return None
    if built is None:
        return None
    return Envelope(event_id, recorded_at, source, built)
