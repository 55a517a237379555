"""Hostile identifiers (issue 14) and the sender's own reasons (issue 16): an ID number is
written in ASCII digits only; no free identifier or reason may carry one; a reason that
only describes is kept as the sender gave it, never a reason to lose the fact."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

import pytest

from humiao.adapters.codec import envelope_from_proto, envelope_to_proto, proto_from_json
from humiao.domain.events import EnrollmentEnded
from humiao.domain.validation import ValidationFailed, validate_envelope
from humiao.domain.values import EnrollmentEndReason
from strategies import make_citizen_id

RECORDED = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
CHILD = make_citizen_id(110105, dt.date(2015, 3, 4), 123)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def fields_refused(kind: str, body: Any, **envelope: Any) -> dict[str, str]:
    args: dict[str, Any] = dict(event_id="e-1", source="minzheng")
    args.update(envelope)
    with pytest.raises(ValidationFailed) as caught:
        validate_envelope(args["event_id"], RECORDED, args["source"], kind, body)
    return {v.field: v.description for v in caught.value.violations}


def died(person_id: str) -> SimpleNamespace:
    return SimpleNamespace(person_id=person_id, date_of_death="2024-03-01")


@pytest.mark.parametrize("position", [0, 7, 16, 17])
def test_an_id_with_a_full_width_digit_is_not_a_second_identity(position: int) -> None:
    digits = list(CHILD)
    digits[position] = digits[position].translate(FULL_WIDTH)
    refused = fields_refused("personDied", died("".join(digits)))
    assert "ASCII" in refused["personDied.personId"]
    validate_envelope("e-1", RECORDED, "minzheng", "personDied", died(CHILD))  # the real one


def test_id_numbers_are_refused_in_every_free_identifier() -> None:
    hidden = f"pay-{CHILD}-03"
    wide = f"pay-{CHILD.translate(FULL_WIDTH)}"
    for text in (hidden, wide, CHILD):
        assert "ID number" in fields_refused("personDied", died(CHILD), event_id=text)["eventId"]
        assert "ID number" in fields_refused("personDied", died(CHILD), source=text)["source"]
        pay = SimpleNamespace(disbursement_id=text, child_id=CHILD, program=3, period="2024-04",
                              amount_fen=1, paid_on="2024-04-15", payee_id=CHILD,
                              region="110105")
        assert "ID number" in fields_refused("disbursement", pay)["disbursement.disbursementId"]
        reverse = SimpleNamespace(disbursement_id=text, reversed_on="2024-04-20")
        got = fields_refused("disbursementReversed", reverse)
        assert "ID number" in got["disbursementReversed.disbursementId"]
        retract = SimpleNamespace(retracted_event_id="e-0", reason=f"wrong child {text}")
        assert "ID number" in fields_refused("eventRetracted", retract)["eventRetracted.reason"]


def test_identifiers_that_merely_hold_digits_pass() -> None:
    pay = SimpleNamespace(disbursement_id="2024-04-000000123456", child_id=CHILD, program=3,
                          period="2024-04", amount_fen=1, paid_on="2024-04-15",
                          payee_id=CHILD, region="110105")
    env = validate_envelope("batch-20240415-0001", RECORDED, "bank-110105", "disbursement", pay)
    assert env.event_id == "batch-20240415-0001"


def ended_line(reason: Any, **extra: Any) -> str:
    body = {"childId": CHILD, "program": "ORPHAN_DISPERSED", "effectiveDate": "2024-03-01",
            "reason": reason, **extra}
    return json.dumps({"eventId": "end-1", "recordedAt": "2024-05-01T08:00:00Z",
                       "source": "minzheng", "enrollmentEnded": body}, ensure_ascii=False)


def ended(line: str) -> EnrollmentEnded:
    body = envelope_from_proto(proto_from_json(line)).body
    assert isinstance(body, EnrollmentEnded)
    return body


def test_a_reason_of_the_senders_own_is_kept_not_refused() -> None:
    body = ended(ended_line("迁往外省"))
    assert body.reason is EnrollmentEndReason.OTHER_REASON
    assert body.reason_text == "迁往外省"
    known = ended(ended_line("ADOPTED"))
    assert (known.reason, known.reason_text) == (EnrollmentEndReason.ADOPTED, "")
    numbered = ended(ended_line(42))
    assert (numbered.reason, numbered.reason_text) == (EnrollmentEndReason.OTHER_REASON,
                                                      "code 42")


def test_the_senders_reason_survives_the_wire_both_ways() -> None:
    env = envelope_from_proto(proto_from_json(ended_line("LOCAL_17")))
    again = envelope_from_proto(envelope_to_proto(env))
    assert again == env
    assert isinstance(again.body, EnrollmentEnded) and again.body.reason_text == "LOCAL_17"


def test_a_missing_reason_is_still_named_and_the_kept_text_is_bounded() -> None:
    with pytest.raises(ValidationFailed) as caught:
        ended(ended_line("ENROLLMENT_END_REASON_UNSPECIFIED"))
    assert [v.field for v in caught.value.violations] == ["enrollmentEnded.reason"]
    with pytest.raises(ValidationFailed) as caught:
        ended(ended_line("x" * 201))
    assert [v.field for v in caught.value.violations] == ["enrollmentEnded.reasonText"]
    with pytest.raises(ValidationFailed) as caught:
        ended(ended_line(f"moved with guardian {CHILD}"))
    assert "ID number" in caught.value.violations[0].description
