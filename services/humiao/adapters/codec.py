"""The protobuf codec: wire bytes and canonical JSON <-> validated domain envelopes.

Everything that enters the system passes `envelope_from_proto` (hence validation), and
everything published is `envelope_to_proto` of a validated envelope, so what travels on
Kafka is always the canonical form. Every decoding failure becomes ValidationFailed
naming the field, never a protobuf or JSON exception.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

from humiao.api.events.v1 import events_pb2
from humiao.domain.events import KIND_NAMES, Envelope, ParentRecord
from humiao.domain.validation import FieldViolation, ValidationFailed, validate_envelope
from humiao.domain.values import Period

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_BODY_ONEOF = events_pb2.Envelope.DESCRIPTOR.oneofs_by_name["body"]
#: proto oneof field name (child_enrolled) -> contract kind (childEnrolled), and back.
_KIND_OF_FIELD: dict[str, str] = {f.name: f.json_name for f in _BODY_ONEOF.fields}
_FIELD_OF_KIND: dict[str, str] = {v: k for k, v in _KIND_OF_FIELD.items()}
_BODY_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in KIND_NAMES
}
_UNDECODABLE = "not a decodable humiao.events.v1.Envelope"
_TIMESTAMP = "google.protobuf.Timestamp"


def _timestamp_to_datetime(seconds: int, nanos: int) -> dt.datetime:
    """Timestamp -> aware UTC datetime (microseconds); ValueError/OverflowError if impossible."""
    if not 0 <= nanos <= 999_999_999:
        raise ValueError("nanos out of range")
    return _EPOCH + dt.timedelta(0, seconds, nanos // 1000)  # positional: no kwargs parsing


def envelope_from_proto(msg: events_pb2.Envelope) -> Envelope:
    """Validate a decoded protobuf envelope into the domain type (raises ValidationFailed)."""
    extra: list[FieldViolation] = []
    recorded_at: dt.datetime | None = None
    if msg.HasField("recorded_at"):
        ts = msg.recorded_at
        try:
            recorded_at = _timestamp_to_datetime(ts.seconds, ts.nanos)
        except (ValueError, OverflowError):
            extra.append(FieldViolation("recordedAt", "is not a representable point in time"))
    field = msg.WhichOneof("body")
    if field:
        kind: str | None = _KIND_OF_FIELD.get(field)
        body = getattr(msg, field)
    else:
        kind = body = None
    return validate_envelope(msg.event_id, recorded_at, msg.source, kind, body, extra=extra)


def envelope_from_bytes(data: bytes) -> Envelope:
    """Decode and validate wire bytes (a Kafka value, a gRPC payload)."""
    msg = events_pb2.Envelope()
    try:
        msg.ParseFromString(data)
    except (DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise ValidationFailed.single("", _UNDECODABLE) from exc
    return envelope_from_proto(msg)


def envelope_to_proto(env: Envelope) -> events_pb2.Envelope:
    """The exact inverse of envelope_from_proto for validated envelopes."""
    msg = events_pb2.Envelope(event_id=env.event_id, source=env.source)
    delta = env.recorded_at - _EPOCH
    msg.recorded_at.seconds = delta.days * 86_400 + delta.seconds
    msg.recorded_at.nanos = delta.microseconds * 1000
    body = env.body
    target = getattr(msg, _FIELD_OF_KIND[KIND_NAMES[type(body)]])
    target.SetInParent()
    for name in _BODY_FIELDS[type(body)]:
        value = getattr(body, name)
        if isinstance(value, tuple):
            repeated = getattr(target, name)
            for parent in value:
                assert isinstance(parent, ParentRecord)
                repeated.add(person_id=parent.person_id, situation=int(parent.situation))
        elif isinstance(value, dt.date):
            setattr(target, name, value.isoformat())
        elif isinstance(value, Period):
            setattr(target, name, str(value))
        elif isinstance(value, enum.IntEnum):
            setattr(target, name, int(value))
        else:
            setattr(target, name, value)
    return msg


def proto_to_json(msg: events_pb2.Envelope) -> str:
    """One line of protobuf's canonical JSON mapping (camelCase names, enum names)."""
    return json.dumps(
        json_format.MessageToDict(msg), separators=(",", ":"), ensure_ascii=False
    )


def proto_from_json(line: str | bytes) -> events_pb2.Envelope:
    """Parse one line of canonical JSON; errors become violations naming each bad field."""
    try:
        obj = json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        if isinstance(exc, json.JSONDecodeError):
            reason = f"{exc.msg} at column {exc.colno}"
        elif isinstance(exc, UnicodeDecodeError):
            reason = "not UTF-8 text"
        else:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ValidationFailed.single("", f"not valid JSON ({reason})") from None
    if not isinstance(obj, dict):
        raise ValidationFailed.single("", "must be a JSON object holding one envelope")
    ended = obj.get("enrollmentEnded")
    if isinstance(ended, dict):
        _keep_senders_reason(ended)
    fast = _fast_parse(obj)
    if fast is not None:
        return fast
    msg = events_pb2.Envelope()
    try:
        json_format.ParseDict(obj, msg)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        violations = _diagnose(obj, events_pb2.Envelope.DESCRIPTOR, "")
        raise ValidationFailed(violations or [FieldViolation("", _clean(str(exc)))]) from None
    return msg


_END_REASON_NAMES = frozenset(
    v.name for v in events_pb2.EnrollmentEndReason.DESCRIPTOR.values
)


def _keep_senders_reason(body: dict[str, Any]) -> None:
    """An enrollmentEnded's reason only describes: a name of the sender's own becomes
    OTHER_REASON with the name kept as reasonText (DESIGN.md: describing codes are kept)."""
    reason = body.get("reason")
    if isinstance(reason, str) and reason and reason not in _END_REASON_NAMES:
        body["reason"] = "OTHER_REASON"
        if not body.get("reasonText"):
            body["reasonText"] = reason


# --- fast path for canonical lines ---------------------------------------------------------
# json_format.ParseDict is generic and slow (~50 us a line). Bulk files are canonical
# JSON, so lines of exactly the canonical shape are built directly; anything else (snake
# names, enum numbers, nulls, wrong types) returns None and takes the generic path,
# which gives the same message or the same errors.

_STRING, _INT32, _ENUM, _PARENTS = range(4)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _body_plan(descriptor: Any) -> dict[str, tuple[str, int, Any]]:
    plan: dict[str, tuple[str, int, Any]] = {}
    for f in descriptor.fields:
        if f.message_type is not None:
            plan[f.json_name] = (f.name, _PARENTS, None)
        elif f.enum_type is not None:
            plan[f.json_name] = (f.name, _ENUM, {v.name: v.number for v in f.enum_type.values})
        elif f.type == FieldDescriptor.TYPE_STRING:
            plan[f.json_name] = (f.name, _STRING, None)
        else:
            plan[f.json_name] = (f.name, _INT32, None)
    return plan


_BODY_PLANS = {
    f.json_name: (f.name, _body_plan(f.message_type)) for f in _BODY_ONEOF.fields
}
_PARENT_PLAN = _body_plan(events_pb2.ParentRecord.DESCRIPTOR)


def _fast_fields(raw: Any, plan: dict[str, tuple[str, int, Any]]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    out: dict[str, Any] = {}
    for key, value in raw.items():
        spec = plan.get(key)
        if spec is None:
            return None
        name, kind, extra = spec
        if kind == _STRING:
            if type(value) is not str:
                return None
            out[name] = value
        elif kind == _INT32:
            if type(value) is not int or not _INT32_MIN <= value <= _INT32_MAX:
                return None
            out[name] = value
        elif kind == _ENUM:
            number = extra.get(value) if type(value) is str else None
            if number is None:
                return None
            out[name] = number
        else:
            if type(value) is not list:
                return None
            parents = []
            for item in value:
                fields = _fast_fields(item, _PARENT_PLAN)
                if fields is None:
                    return None
                parents.append(events_pb2.ParentRecord(**fields))
            out[name] = parents
    return out


def _fast_parse(obj: dict[str, Any]) -> events_pb2.Envelope | None:
    msg = events_pb2.Envelope()
    body_seen = False
    try:
        for key, value in obj.items():
            if key == "eventId" or key == "source":
                if type(value) is not str:
                    return None
                setattr(msg, "event_id" if key == "eventId" else "source", value)
            elif key == "recordedAt":
                if type(value) is not str:
                    return None
                msg.recorded_at.FromJsonString(value)
            else:
                plan = _BODY_PLANS.get(key)
                if plan is None or body_seen:
                    return None
                body_seen = True
                fields = _fast_fields(value, plan[1])
                if fields is None:
                    return None
                target = getattr(msg, plan[0])
                target.SetInParent()  # an empty body is still the chosen body
                target.MergeFrom(_BODY_CLASSES[plan[0]](**fields))
    except (ValueError, TypeError):
        return None
    return msg


_BODY_CLASSES: dict[str, Any] = {
    f.name: message_factory.GetMessageClass(f.message_type)  # type: ignore[arg-type]
    for f in _BODY_ONEOF.fields
}


# --- JSON error diagnosis (only on the failure path) -----------------------------------


def _clean(message: str) -> str:
    """The innermost reason of a ParseError, without protobuf's location suffix."""
    reason = message.rsplit(" field: ", 1)[-1]
    return reason.split(" at Envelope", 1)[0].split(' at "Envelope', 1)[0].rstrip(".")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _reason(field: FieldDescriptor, value: Any, error: Exception) -> str:
    if field.message_type is not None and field.message_type.full_name == _TIMESTAMP:
        return "must be an RFC 3339 timestamp with a time zone, e.g. 2024-05-01T08:00:00Z"
    if _is_repeated(field) and not isinstance(value, list):
        return "must be a list"
    if field.message_type is not None:
        return "must be an object"
    if field.enum_type is not None:
        names = ", ".join(v.name for v in field.enum_type.values if v.number != 0)
        if isinstance(value, str):
            return f"{value[:40]!r} is not a known {field.enum_type.name} (one of {names})"
        return f"must be a {field.enum_type.name} name (one of {names})"
    if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        if isinstance(value, int) and not isinstance(value, bool):
            return "is out of range"
        return "must be a whole number"
    if field.type == FieldDescriptor.TYPE_STRING:
        return "must be a string"
    return _clean(str(error))


def _is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 6; `label` before
    if flag is None:
        flag = getattr(field, "label", 0) == FieldDescriptor.LABEL_REPEATED
    return bool(flag)


def _diagnose(obj: dict[str, Any], descriptor: Any, prefix: str) -> list[FieldViolation]:
    """Parse key by key to name every bad field (ParseError names at most the first)."""
    by_name: dict[str, FieldDescriptor] = {}
    for f in descriptor.fields:
        by_name[f.name] = f
        by_name[f.json_name] = f
    cls = message_factory.GetMessageClass(descriptor)
    out: list[FieldViolation] = []
    oneofs: dict[str, list[str]] = {}
    for key, value in obj.items():
        field = by_name.get(key) if isinstance(key, str) else None
        if field is None:
            name = _join(prefix, str(key)[:60])
            out.append(FieldViolation(name, "is not a field of the contract"))
            continue
        path = _join(prefix, field.json_name)
        if field.containing_oneof is not None and value is not None:
            oneofs.setdefault(field.containing_oneof.name, []).append(field.json_name)
        nested = field.message_type
        if nested is not None and nested.full_name != _TIMESTAMP:
            if _is_repeated(field) and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        out.extend(_diagnose(item, nested, f"{path}[{i}]"))
                    else:
                        out.append(FieldViolation(f"{path}[{i}]", "must be an object"))
                continue
            if not _is_repeated(field) and isinstance(value, dict):
                out.extend(_diagnose(value, nested, path))
                continue
        try:
            json_format.ParseDict({key: value}, cls())
        except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
            out.append(FieldViolation(path, _reason(field, value, exc)))
    for oneof, names in oneofs.items():
        if len(names) > 1:
            found = " and ".join(names)
            out.append(FieldViolation(_join(prefix, oneof), f"must be exactly one, found {found}"))
    return out
