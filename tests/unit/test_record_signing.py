"""Only ingest writes the events topic (adapters/record_signing.py), and a dead letter
never carries an ID number (identity.redact_ids_in_bytes)."""

from __future__ import annotations

import datetime as dt

from builders import person, retract
from humiao.adapters.codec import envelope_from_bytes, envelope_to_proto
from humiao.adapters.record_signing import HEADER, is_signed, signed_headers
from humiao.domain.identity import ids_inside, redact_ids_in_bytes
from humiao.domain.policy import PolicyBook
from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.processor import InRecord, Processor

KEY = b"ingest-and-verifier-share-this"


def test_a_signature_covers_key_and_value_and_nothing_else_passes():
    headers = signed_headers(KEY, b"k", b"value")
    assert is_signed(KEY, b"k", b"value", headers)
    assert not is_signed(KEY, b"k", b"value!", headers)
    assert not is_signed(KEY, b"k2", b"value", headers)
    assert not is_signed(KEY, b"kv", b"alue", signed_headers(KEY, b"k", b"value"))
    assert not is_signed(b"another key", b"k", b"value", headers)
    assert not is_signed(KEY, b"k", b"value", None)
    assert not is_signed(KEY, b"k", b"value", headers + headers)  # exactly one
    assert not is_signed(KEY, b"k", b"value", [(HEADER, b"\0" * 32)])


def test_the_verifier_dead_letters_a_record_without_ingests_signature():
    processor = Processor(group="g", secret=b"s", signing_secret=KEY,
                          policies=PolicyBook.default(), metrics=VerifierMetrics())
    value = envelope_to_proto(retract("someone-elses-fact")).SerializeToString()
    forged = InRecord(0, 0, 0, b"k", value, signed_headers(b"guessed", b"k", value))
    batch = processor.prepare("t", [
        InRecord(0, 0, 0, b"k", value),  # nobody signed it
        forged,
        InRecord.signed(KEY, 0, 1, 0, b"k", value),
    ])
    assert [d.reason for d in batch.dead] == ["unsigned", "unsigned"]
    assert [f.env.body for f in batch.facts] == [envelope_from_bytes(value).body]


def test_redaction_overwrites_every_id_number_byte_for_byte():
    child = person(1, dt.date(2014, 5, 1))
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in child)
    value = envelope_to_proto(retract(f"note {child}")).SerializeToString()
    data = value + f" {fullwidth} tail".encode()
    redacted = redact_ids_in_bytes(data)
    assert len(redacted) == len(data)
    assert child.encode() not in redacted and fullwidth.encode() not in redacted
    assert not ids_inside(redacted.decode("utf-8", "replace"))
    assert redacted.endswith(b" tail")
    head = envelope_from_bytes(redacted[:len(value)])  # still a readable protobuf
    assert "*" * 18 in head.body.retracted_event_id  # type: ignore[union-attr]
    assert redact_ids_in_bytes(b"no number 2024-03 here") == b"no number 2024-03 here"
