"""Validation: every bad field is named once, with a plain reason; valid data passes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given

from humiao.domain.events import ChildEnrolled, Envelope
from humiao.domain.validation import (
    FieldViolation,
    ValidationFailed,
    unified_credit_code_problem,
    validate_envelope,
)
from humiao.domain.values import Period, Program, Situation
from strategies import credit_codes, envelopes, make_citizen_id, make_credit_code

RECORDED = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
CHILD = make_citizen_id(110105, dt.date(2015, 3, 4), 123)
MOTHER = make_citizen_id(110105, dt.date(1985, 1, 1), 2)
FATHER = make_citizen_id(110105, dt.date(1983, 6, 30), 11)
SCHOOL = make_credit_code("12", 110105, "40000062X")


def enrolled(**overrides: Any) -> SimpleNamespace:
    fields: dict[str, Any] = dict(
        child_id=CHILD, birth_date="2015-03-04", program=3, region="110105",
        approved_on="2024-01-10",
        parents=[SimpleNamespace(person_id=MOTHER, situation=3)],
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def disbursement(**overrides: Any) -> SimpleNamespace:
    fields: dict[str, Any] = dict(
        disbursement_id="D-1", child_id=CHILD, program=3, period="2024-04", amount_fen=120000,
        paid_on="2024-04-15", payee_id=MOTHER, region="110105",
    )
    fields.update(overrides)
    return SimpleNamespace(**fields)


def violations(kind: str | None, body: Any, **envelope: Any) -> list[FieldViolation]:
    args: dict[str, Any] = dict(event_id="e-1", recorded_at=RECORDED, source="minzheng")
    args.update(envelope)
    with pytest.raises(ValidationFailed) as caught:
        validate_envelope(args["event_id"], args["recorded_at"], args["source"], kind, body)
    return list(caught.value.violations)


def only(kind: str | None, body: Any, **envelope: Any) -> FieldViolation:
    found = violations(kind, body, **envelope)
    assert len(found) == 1, found
    return found[0]


def test_valid_enrollment_becomes_typed_envelope() -> None:
    env = validate_envelope("e-1", RECORDED, "minzheng", "childEnrolled", enrolled())
    assert isinstance(env, Envelope) and env.kind == "childEnrolled"
    assert isinstance(env.body, ChildEnrolled)
    assert env.body.birth_date == dt.date(2015, 3, 4)
    assert env.body.program is Program.DE_FACTO_UNSUPPORTED
    assert env.body.parents[0].situation is Situation.IN_CUSTODY


def test_valid_disbursement_to_institution() -> None:
    env = validate_envelope(
        "e-2", RECORDED, "minzheng", "disbursement", disbursement(payee_id=SCHOOL)
    )
    assert env.body.period == Period.of(2024, 4)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (enrolled(child_id=CHILD[:17] + ("0" if CHILD[17] != "0" else "1")),
         "childEnrolled.childId", "check digit"),
        (enrolled(child_id="11010520150304"), "childEnrolled.childId", "18 characters"),
        (enrolled(child_id=""), "childEnrolled.childId", "is required"),
        (enrolled(birth_date="2015-03-05"), "childEnrolled.birthDate", "birth date in childId"),
        (enrolled(birth_date="20150304"), "childEnrolled.birthDate", "YYYY-MM-DD"),
        (enrolled(approved_on="2023-02-29"), "childEnrolled.approvedOn", "real date"),
        (enrolled(approved_on="2024-W01-1"), "childEnrolled.approvedOn", "YYYY-MM-DD"),
        (enrolled(approved_on="1899-12-31"), "childEnrolled.approvedOn", "before 1900"),
        (enrolled(approved_on="9999-12-31"), "childEnrolled.approvedOn", "10 years after"),
        (enrolled(program=0), "childEnrolled.program", "is required"),
        (enrolled(program=42), "childEnrolled.program", "not a known Program"),
        (enrolled(region="11010"), "childEnrolled.region", "6-digit"),
        (enrolled(region="11010a"), "childEnrolled.region", "6-digit"),
        (enrolled(parents=[SimpleNamespace(person_id=MOTHER, situation=3)] * 2),
         "childEnrolled.parents[1].personId", "same person"),
        (enrolled(parents=[SimpleNamespace(person_id=MOTHER, situation=99)]),
         "childEnrolled.parents[0].situation", "not a known Situation"),
        (enrolled(parents=[SimpleNamespace(person_id=p, situation=9)
                           for p in (MOTHER, FATHER, CHILD)]),
         "childEnrolled.parents", "at most 2"),
    ],
)
def test_enrollment_field_rules(body: Any, field: str, reason: str) -> None:
    violation = only("childEnrolled", body)
    assert violation.field == field
    assert reason in violation.description


def test_impossible_birth_date_inside_id_is_rejected() -> None:
    first17 = "11010520150230123"  # 30 February
    from humiao.domain.identity import citizen_id_check_char

    bad = first17 + citizen_id_check_char(first17)
    violation = only("personDied", SimpleNamespace(person_id=bad, date_of_death="2024-01-01"))
    assert violation.field == "personDied.personId"
    assert "does not exist" in violation.description


def test_birth_after_recorded_at_is_rejected() -> None:
    born = dt.date(2024, 6, 1)
    child = make_citizen_id(110105, born, 1)
    violation = only("childEnrolled", enrolled(child_id=child, birth_date="2024-06-01"))
    assert violation.field == "childEnrolled.birthDate"
    assert "after recordedAt" in violation.description


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (disbursement(amount_fen=-1), "disbursement.amountFen", "negative"),
        (disbursement(amount_fen=10_000_001), "disbursement.amountFen", "exceed"),
        (disbursement(period="2024-13"), "disbursement.period", "YYYY-MM"),
        (disbursement(period="2024-4"), "disbursement.period", "YYYY-MM"),
        (disbursement(period="9999-01"), "disbursement.period", "10 years after"),
        (disbursement(disbursement_id=""), "disbursement.disbursementId", "is required"),
        (disbursement(payee_id=SCHOOL[:17] + ("0" if SCHOOL[17] != "0" else "1")),
         "disbursement.payeeId", "GB 32100"),
        (disbursement(payee_id="12110105IO000062XX"), "disbursement.payeeId",
         "other than I, O"),
        (disbursement(payee_id=MOTHER[:17] + ("0" if MOTHER[17] != "0" else "1")),
         "disbursement.payeeId", "GB 11643"),
    ],
)
def test_disbursement_field_rules(body: Any, field: str, reason: str) -> None:
    violation = only("disbursement", body)
    assert violation.field == field
    assert reason in violation.description


@pytest.mark.parametrize(
    ("envelope", "field", "reason"),
    [
        ({"event_id": ""}, "eventId", "is required"),
        ({"event_id": "x" * 129}, "eventId", "at most 128"),
        ({"event_id": "bad\nid"}, "eventId", "printable"),
        ({"source": ""}, "source", "is required"),
        ({"recorded_at": None}, "recordedAt", "is required"),
        ({"recorded_at": dt.datetime(2024, 5, 1)}, "recordedAt", "time zone"),
        ({"recorded_at": dt.datetime(1800, 5, 1, tzinfo=dt.UTC)}, "recordedAt", "between"),
    ],
)
def test_envelope_field_rules(envelope: dict[str, Any], field: str, reason: str) -> None:
    violation = only("disbursement", disbursement(), **envelope)
    assert violation.field == field
    assert reason in violation.description


def test_missing_or_unknown_body() -> None:
    assert only(None, None).field == "body"
    assert "exactly one body" in only(None, None).description
    assert only("somethingElse", object()).field == "body"


def test_every_bad_field_is_reported_not_just_the_first() -> None:
    found = violations(
        "disbursement",
        disbursement(amount_fen=-5, period="24-01", region="1", child_id="x"),
        event_id="",
    )
    assert {v.field for v in found} == {
        "eventId", "disbursement.amountFen", "disbursement.period", "disbursement.region",
        "disbursement.childId",
    }
    text = str(ValidationFailed(found))
    assert "disbursement.amountFen: must not be negative" in text and "eventId" in text


def test_messages_never_echo_id_numbers() -> None:
    bad_child = CHILD[:17] + ("0" if CHILD[17] != "0" else "1")
    found = violations("childEnrolled", enrolled(child_id=bad_child, birth_date="2015-03-05"))
    assert all(bad_child not in v.description and CHILD[:17] not in v.description for v in found)


def test_wrong_python_types_are_violations_not_crashes() -> None:
    body = SimpleNamespace(disbursement_id=5, child_id=None, program="x", period=3,
                           amount_fen="100", paid_on=1.5, payee_id=[], region=None)
    found = violations("disbursement", body)
    assert len(found) == 8


def test_unified_credit_code_known_examples() -> None:
    assert unified_credit_code_problem("91350100M000100Y43") is None
    assert unified_credit_code_problem("91110000100006485K") is None
    assert unified_credit_code_problem("91350100M000100Y44") is not None


@given(credit_codes())
def test_generated_credit_codes_are_valid(code: str) -> None:
    assert unified_credit_code_problem(code) is None


@given(envelopes())
def test_valid_generated_envelopes_validate_to_themselves(env: Envelope) -> None:
    """Feed the domain object back as if it were a proto (dates as text, enums as ints)."""
    body = env.body
    proto_like = SimpleNamespace(
        **{
            name: (
                value.isoformat() if isinstance(value, dt.date)
                else str(value) if isinstance(value, Period)
                else [SimpleNamespace(person_id=p.person_id, situation=int(p.situation))
                      for p in value] if isinstance(value, tuple)
                else value
            )
            for name in body.__dataclass_fields__
            for value in [getattr(body, name)]
        }
    )
    assert validate_envelope(env.event_id, env.recorded_at, env.source, env.kind,
                             proto_like) == env


def test_validation_module_is_pure() -> None:
    code = (
        "import sys, humiao.domain.validation; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('google', 'grpc', 'kafka', 'asyncpg')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
