"""The validation fast path changes speed only: whatever it accepts, the full path accepts
with the same result, and every envelope the fast path declines gets the full path's answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from humiao.domain.events import ALL_KINDS, Envelope
from humiao.domain.validation import (
    ValidationFailed,
    _date_of,
    _party_ok,
    _validate_fast,
    _validate_full,
    validate_envelope,
)
from humiao.domain.values import Period
from strategies import envelopes, make_citizen_id, make_credit_code, random_envelope


class Text(str):
    """A str subclass: the full path accepts it, the fast path must defer."""


class Number(int):
    """An int subclass, likewise."""


def proto_like(env: Envelope) -> SimpleNamespace:
    """The domain body as a decoded proto would carry it (dates as text, enums as ints)."""
    body = env.body
    fields: dict[str, Any] = {}
    for name in body.__dataclass_fields__:
        value = getattr(body, name)
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, Period):
            value = str(value)
        elif isinstance(value, tuple):
            value = [SimpleNamespace(person_id=p.person_id, situation=int(p.situation))
                     for p in value]
        elif isinstance(value, int) and not isinstance(value, bool):
            value = int(value)
        fields[name] = value
    return SimpleNamespace(**fields)


VALID_ID = make_citizen_id(110105, dt.date(2015, 3, 4), 123)
BAD_CHECK = VALID_ID[:17] + ("0" if VALID_ID[17] != "0" else "1")
INTS = [None, 0, 1, 2, 3, 8, 9, 11, 12, 99, -1, True, 1.0, Number(2), 10_000_000, 10_000_001,
        2**40]
DAYS = [None, "", Text("2024-01-15"), "2024-02-29", "2023-02-29", "2024-13-01", "2024-1-01",
        "1899-12-31", "1900-01-01", "2199-12-31", "2030-01-01", "2040-01-01", "\uff12024-01-01",
        "2024-01-15 ", 20240115]
MONTHS = [None, "", Text("2024-01"), "2024-01", "1899-12", "1900-01", "0000-01", "2024-00",
          "2024-13", "9999-12", "2040-01", "2024-1", "\uff12024-01", 202401]
IDS = [None, "", VALID_ID, BAD_CHECK, VALID_ID.lower(), Text(VALID_ID), VALID_ID[:17],
       make_credit_code("12", 110105, "40000062X"), "12110105MB1234567X", "110105", 110105]
TEXTS = [None, "", " ", "a\nb", "x" * 128, "x" * 129, "x" * 2001, Text("t"), 7, "110105",
         "11010", "\uff11\uff11\uff10\uff11\uff10\uff15", "ABCDEF"]
PARENTS = [None, [], "ab", iter([]), [SimpleNamespace(person_id=VALID_ID, situation=3)] * 2,
           [SimpleNamespace(person_id=VALID_ID)], [SimpleNamespace(situation=3)],
           [SimpleNamespace(person_id=BAD_CHECK, situation=3)],
           [SimpleNamespace(person_id=VALID_ID, situation=0)],
           [SimpleNamespace(person_id=VALID_ID, situation=s) for s in (1, 2, 3)]]
ODD_VALUES = INTS + DAYS + MONTHS + IDS + TEXTS + PARENTS


def pool(name: str) -> list[Any]:
    """Values aimed at the field's own checks."""
    if name == "parents":
        return PARENTS
    if name in ("period", "effective_from"):
        return MONTHS
    if name.endswith(("_date", "_on", "_until", "_of_death")):
        return DAYS
    if name in ("program", "situation", "change", "reason", "amount_fen",
                "monthly_amount_fen"):
        return INTS
    if name.endswith("_id") and name not in ("disbursement_id", "retracted_event_id"):
        return IDS
    return TEXTS


ODD_TIMES = [
    dt.datetime(2024, 5, 1, 8),  # naive
    dt.datetime(2024, 5, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
    dt.datetime(1899, 12, 31, 23, 59, tzinfo=dt.UTC),
    dt.datetime(2199, 12, 31, 23, 59, tzinfo=dt.UTC),
    dt.datetime(2200, 1, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    dt.date(2024, 5, 1),
    None,
    "2024-05-01T08:00:00Z",
]


def outcome(env_args: tuple[Any, ...]) -> Envelope | tuple[str, ...]:
    try:
        return _validate_full(*env_args, ())
    except ValidationFailed as exc:
        return tuple(str(v) for v in exc.violations)


def check_agreement(args: tuple[Any, ...]) -> None:
    fast = _validate_fast(*args)
    full = outcome(args)
    if fast is not None:
        assert fast == full, args
    try:
        public: Envelope | tuple[str, ...] = validate_envelope(*args)
    except ValidationFailed as exc:
        public = tuple(str(v) for v in exc.violations)
    assert public == full, args


def test_every_single_odd_field_gets_the_full_paths_answer() -> None:
    """Exhaustive over one changed field: each kind, each field (or its absence), each
    odd value; plus the envelope's own fields."""
    rng = random.Random(11)
    checked = 0
    for kind in sorted(ALL_KINDS):
        for n in range(2):
            env = random_envelope(rng, event_id=f"e-{kind}-{n}", kinds=[kind])
            base = (env.event_id, env.recorded_at, env.source, env.kind)
            assert _validate_fast(*base, proto_like(env)) == env
            for name in sorted(proto_like(env).__dict__):
                for value in [_MISSING, *ODD_VALUES]:
                    body = proto_like(env)
                    if value is _MISSING:
                        delattr(body, name)
                    else:
                        setattr(body, name, value)
                    check_agreement((*base, body))
                    checked += 1
            for value in ODD_VALUES:
                check_agreement((value, *base[1:], proto_like(env)))
                check_agreement((*base[:2], value, base[3], proto_like(env)))
            # recordedAt around each date of the body, and ten years before it: the bounds
            values = [getattr(env.body, f.name) for f in dataclasses.fields(env.body)]
            days = [v for v in values if isinstance(v, dt.date)]
            near = [
                dt.datetime(day.year - back, day.month, min(day.day, 28), tzinfo=dt.UTC) + shift
                for day in days
                for back in (0, 10)
                for shift in (dt.timedelta(days=-1), dt.timedelta(0), dt.timedelta(days=1))
            ]
            for when in [*ODD_TIMES, *near]:
                check_agreement((base[0], when, *base[2:], proto_like(env)))
    assert checked > 3000


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Any, ...]:
    env = draw(envelopes())
    body = proto_like(env)
    args: list[Any] = [env.event_id, env.recorded_at, env.source, env.kind, body]
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(["body", "body", "body", "event_id", "source", "time",
                                      "kind"]))
        if where == "body":
            name = draw(st.sampled_from(sorted(vars(body))))
            choice = draw(st.integers(0, 9))
            if choice == 0:
                delattr(body, name)
            else:
                values = ODD_VALUES if choice == 1 else pool(name)
                setattr(body, name, draw(st.sampled_from(values)))
        elif where == "time":
            args[1] = draw(st.sampled_from(ODD_TIMES))
        elif where == "kind":
            args[3] = draw(st.sampled_from([None, "childenrolled", Text(env.kind), "disbursement"]))
        else:
            args[0 if where == "event_id" else 2] = draw(st.sampled_from(ODD_VALUES))
    return tuple(args)


_MISSING = object()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fast_path_agrees_with_full_path(args: tuple[Any, ...]) -> None:
    check_agreement(args)


@settings(max_examples=100, deadline=None)
@given(envelopes())
def test_fast_path_takes_every_valid_envelope(env: Envelope) -> None:
    """Valid input never needs the full path (else the fast path would be pointless)."""
    assert _validate_fast(env.event_id, env.recorded_at, env.source, env.kind,
                          proto_like(env)) == env


def test_caches_are_keyed_by_the_whole_value() -> None:
    assert _date_of("2024-02-29") == dt.date(2024, 2, 29)
    assert _date_of("2023-02-29") is None
    assert _date_of("2024-02-29") == dt.date(2024, 2, 29)  # still right after a miss
    assert _party_ok(VALID_ID) is True
    assert _party_ok(BAD_CHECK) is False
    assert _party_ok(VALID_ID) is True
    recorded = dt.datetime(2024, 5, 1, 8, tzinfo=dt.UTC)
    body = SimpleNamespace(person_id=VALID_ID, date_of_death="2024-04-01")
    assert validate_envelope("e", recorded, "s", "personDied", body).body.person_id == VALID_ID
    body.person_id = BAD_CHECK  # same length and prefix: must not hit the cached answer
    try:
        validate_envelope("e", recorded, "s", "personDied", body)
    except ValidationFailed as exc:
        assert [v.field for v in exc.violations] == ["personDied.personId"]
    else:
        raise AssertionError("a wrong check digit passed")
