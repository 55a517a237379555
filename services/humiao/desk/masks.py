"""ID numbers inside desk responses: find them all (for the audit of a whole-ID read) or
mask them all (for every other answer), walking the message generically so that a
field added later is covered without a change here.

A person's ID sits in a field named after its role (child, parent, guardian, payee:
PERSON_FIELDS, in events and in the desk's own messages). Any other string that holds
an ID-shaped substring (an event id or a reason a source should not have sent) is
treated the same way, so nothing whole slips out of a masked answer; and a birth date,
eight of the digits the mask hides, keeps only its month.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from humiao.domain.identity import ids_inside, mask_id, mask_ids_inside

#: Fields holding a person's ID number, in events_pb2 and desk_pb2 messages.
PERSON_FIELDS = frozenset({"child_id", "person_id", "guardian_id", "payee_id"})
#: Dates that are part of an ID number: a masked answer keeps their month only (which an
#: age-out explanation gives away anyway), so the day stays among the unknowns.
_BIRTH_DATES = frozenset({"birth_date"})


def _messages(message: Message) -> Iterator[Message]:
    """`message` and every message set anywhere inside it."""
    yield message
    for fd, value in message.ListFields():
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            for inner in value if fd.is_repeated else (value,):
                yield from _messages(inner)


def _strings(message: Message) -> Iterator[tuple[Message, FieldDescriptor, list[str]]]:
    """(owner, field, its values) of every string field set anywhere inside `message`."""
    for owner in _messages(message):
        for fd, value in owner.ListFields():
            if fd.type == FieldDescriptor.TYPE_STRING:
                repeated = fd.is_repeated
                yield owner, fd, list(value) if repeated else [value]


def whole_ids(message: Message) -> set[str]:
    """Every ID number `message` would disclose whole (what the audit of the read names)."""
    found: set[str] = set()
    for _, fd, values in _strings(message):
        for text in values:
            if fd.name in PERSON_FIELDS and "*" not in text:
                found.add(text)
            else:
                found.update(ids_inside(text))
    return found


def _masked(name: str, value: str) -> str:
    if name in PERSON_FIELDS:
        return mask_id(value)
    if name in _BIRTH_DATES:
        return value[:7] + "-**"
    return mask_ids_inside(value)


def mask_all(message: Message) -> None:
    """Mask, in place, every ID number inside `message` (mask_id, the one mask); an
    alert that said its ID was whole says so no longer."""
    for owner in _messages(message):
        if "child_id_whole" in owner.DESCRIPTOR.fields_by_name:
            owner.child_id_whole = False  # type: ignore[attr-defined]
    for owner, fd, values in _strings(message):
        masked = [_masked(fd.name, v) for v in values]
        if masked == values:
            continue
        if fd.is_repeated:
            getattr(owner, fd.name)[:] = masked
        else:
            setattr(owner, fd.name, masked[0])
