"""The codec: exact round trips for valid envelopes, only ValidationFailed for anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from humiao.adapters.codec import (
    envelope_from_bytes,
    envelope_from_proto,
    envelope_to_proto,
    proto_from_json,
    proto_to_json,
)
from humiao.api.events.v1 import events_pb2
from humiao.domain.events import Envelope
from humiao.domain.validation import ValidationFailed
from strategies import envelopes, make_citizen_id

CHILD = "110105201503041239"
assert make_citizen_id(110105, __import__("datetime").date(2015, 3, 4), 123) == CHILD
VALID = {
    "eventId": "e1",
    "recordedAt": "2024-05-01T08:00:00Z",
    "source": "minzheng",
    "disbursement": {
        "disbursementId": "D-1", "childId": CHILD, "program": "DE_FACTO_UNSUPPORTED",
        "period": "2024-04", "amountFen": 120000, "paidOn": "2024-04-15",
        "payeeId": "91350100M000100Y43", "region": "110105",
    },
}


def parse_violations(obj: Any) -> dict[str, str]:
    text = obj if isinstance(obj, str | bytes) else json.dumps(obj)
    with pytest.raises(ValidationFailed) as caught:
        envelope_from_proto(proto_from_json(text))
    return {v.field: v.description for v in caught.value.violations}


# --- round trips -----------------------------------------------------------------------------


@given(envelopes())
def test_domain_proto_domain_is_identity(env: Envelope) -> None:
    assert envelope_from_proto(envelope_to_proto(env)) == env


@given(envelopes())
def test_proto_json_proto_is_identity(env: Envelope) -> None:
    msg = envelope_to_proto(env)
    line = proto_to_json(msg)
    assert "\n" not in line
    again = proto_from_json(line)
    assert again == msg
    assert again.SerializeToString(deterministic=True) == msg.SerializeToString(deterministic=True)
    assert proto_to_json(again) == line
    assert envelope_from_bytes(msg.SerializeToString()) == env


def test_canonical_json_uses_contract_names() -> None:
    line = json.dumps(VALID, separators=(",", ":"))
    msg = proto_from_json(line)
    assert proto_to_json(msg) == line
    assert proto_from_json(line.encode()) == msg


# --- named errors ----------------------------------------------------------------------------


def test_json_errors_name_each_field() -> None:
    bad = json.loads(json.dumps(VALID))
    bad["disbursement"]["program"] = "NOT_A_PROGRAM"
    bad["disbursement"]["amountFen"] = "12.5 yuan"
    bad["recordedAt"] = "2024-05-01 08:00"
    bad["extra"] = 1
    found = parse_violations(bad)
    assert set(found) == {"disbursement.program", "disbursement.amountFen", "recordedAt", "extra"}
    assert "not a known Program" in found["disbursement.program"]
    assert "whole number" in found["disbursement.amountFen"]
    assert "RFC 3339" in found["recordedAt"]
    assert "not a field" in found["extra"]


def test_json_error_inside_repeated_field_names_the_index() -> None:
    found = parse_violations(
        {"childEnrolled": {"parents": [{"situation": "DECEASED"}, {"situation": "ALIVE"}]}}
    )
    assert set(found) == {"childEnrolled.parents[1].situation"}


def test_json_with_two_bodies_is_rejected() -> None:
    found = parse_violations({**VALID, "personDied": {"personId": CHILD}})
    assert "body" in found and "exactly one" in found["body"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [("{not json", "not valid JSON"), (b"\xff\xfe", "UTF-8"), ("[1, 2]", "JSON object"),
     ("null", "JSON object"), ("[" * 100_000, "JSON")],
)
def test_unparseable_lines(text: str | bytes, reason: str) -> None:
    found = parse_violations(text)
    assert list(found) == [""] and reason in found[""]


def test_out_of_range_amount_is_rejected_by_name() -> None:
    bad = json.loads(json.dumps(VALID))
    bad["disbursement"]["amountFen"] = 2**40
    assert "out of range" in parse_violations(bad)["disbursement.amountFen"]


def test_validation_errors_after_parsing() -> None:
    bad = json.loads(json.dumps(VALID))
    bad["disbursement"]["amountFen"] = -1
    bad["disbursement"]["period"] = "2024-00"
    found = parse_violations(bad)
    assert set(found) == {"disbursement.amountFen", "disbursement.period"}


def test_undecodable_bytes() -> None:
    with pytest.raises(ValidationFailed) as caught:
        envelope_from_bytes(b"\x0a\xff\xff\xff\xff\xff")
    assert caught.value.violations[0].field == ""
    assert "not a decodable humiao.events.v1.Envelope" in str(caught.value)


def test_unrepresentable_timestamp_is_a_violation() -> None:
    msg = proto_from_json(json.dumps(VALID))
    msg.recorded_at.seconds = 2**62
    with pytest.raises(ValidationFailed) as caught:
        envelope_from_proto(msg)
    assert [v.field for v in caught.value.violations] == ["recordedAt"]


# --- hostile input: nothing but ValidationFailed ---------------------------------------------

_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: st.text(max_size=30),
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_ENUM: st.integers(-(2**31), 2**31 - 1),
}


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


@st.composite
def arbitrary_messages(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0) -> Message:
    """A message of `descriptor` with any subset of fields set to any value of their type."""
    from google.protobuf import message_factory

    msg = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.message_type is not None:
            count = draw(st.integers(0, 3)) if _is_repeated(field) else 1
            for _ in range(count):
                sub = draw(arbitrary_messages(field.message_type, depth + 1))
                if _is_repeated(field):
                    getattr(msg, field.name).add().CopyFrom(sub)
                else:
                    getattr(msg, field.name).CopyFrom(sub)
        else:
            strategy = _SCALARS[field.type]
            if _is_repeated(field):
                getattr(msg, field.name).extend(draw(st.lists(strategy, max_size=3)))
            else:
                setattr(msg, field.name, draw(strategy))
    return msg


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(arbitrary_messages(events_pb2.Envelope.DESCRIPTOR))
def test_arbitrary_protobuf_messages_raise_only_validation_failed(msg: Message) -> None:
    assert isinstance(msg, events_pb2.Envelope)
    try:
        env = envelope_from_proto(msg)
    except ValidationFailed as exc:
        assert exc.violations
    else:
        assert envelope_from_proto(envelope_to_proto(env)) == env


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_validation_failed(data: bytes) -> None:
    try:
        envelope_from_bytes(data)
    except ValidationFailed as exc:
        assert exc.violations


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_random_text_raises_only_validation_failed(text: str) -> None:
    try:
        envelope_from_proto(proto_from_json(text))
    except ValidationFailed as exc:
        assert exc.violations


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12,
)


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope's JSON with some fields replaced by arbitrary JSON values."""
    obj = json.loads(proto_to_json(envelope_to_proto(draw(envelopes()))))
    targets = [(obj, k) for k in list(obj)]
    for value in obj.values():
        if isinstance(value, dict):
            targets += [(value, k) for k in list(value)]
    for holder, key in draw(st.lists(st.sampled_from(targets), min_size=1, max_size=3)):
        holder[key] = draw(json_values)
    return obj


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_envelopes())
def test_fast_json_path_agrees_with_protobuf_parser(obj: dict[str, Any]) -> None:
    """Canonical lines skip json_format; the result must be what json_format gives."""
    text = json.dumps(obj)
    reference = events_pb2.Envelope()
    try:
        json_format.Parse(text, reference)
    except json_format.ParseError:
        with pytest.raises(ValidationFailed):
            proto_from_json(text)
    else:
        assert proto_from_json(text) == reference


def test_empty_body_is_still_the_chosen_body() -> None:
    msg = proto_from_json('{"eventId":"e","personDied":{}}')
    assert msg.WhichOneof("body") == "person_died"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_envelopes())
def test_mutated_json_raises_only_validation_failed(obj: dict[str, Any]) -> None:
    try:
        env = envelope_from_proto(proto_from_json(json.dumps(obj)))
    except ValidationFailed as exc:
        assert exc.violations
        assert all(isinstance(v.field, str) and v.description for v in exc.violations)
    else:
        assert isinstance(env, Envelope)
