"""Size limits of every string and list field of the desk API, checked in one place.

Every request is walked field by field (nested messages included) before a method
runs: a string longer than its limit, a list with more items than its limit, a
control character (NUL above all: PostgreSQL text cannot hold it) or an ID number
inside free text is INVALID_ARGUMENT naming the field. A field missing from the table
gets the default limit, so a field added later is bounded too. The figures are
documented in docs/privacy.md ("Staff-side limits").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from humiao.desk.errors import FieldProblem, InvalidArgument
from humiao.domain.identity import holds_id_shape


@dataclass(frozen=True, slots=True)
class Limit:
    #: Characters of one string (or of each string of a list).
    chars: int
    #: Items of a repeated field.
    items: int = 1
    #: Free text a person types: newlines and tabs allowed, ID numbers refused.
    free_text: bool = False


#: A staff member's text (note, reason): enough for a page of explanation, small enough
#: that an alert version stays far below any broker's message size.
TEXT = Limit(4000, free_text=True)
#: A staff member's name (assignee).
NAME = Limit(128, free_text=True)
DEFAULT = Limit(256, items=100)

#: Field name (wherever it appears) -> its limit.
LIMITS: dict[str, Limit] = {
    "alert_id": Limit(64),
    "alert_ids": Limit(64, items=1000),
    "regions": Limit(6, items=100),
    "codes": Limit(0, items=32),
    "statuses": Limit(0, items=16),
    "period_from": Limit(7),
    "period_to": Limit(7),
    "child": Limit(64),
    "assignee": NAME,
    "note": TEXT,
    "reason": TEXT,
    "text": TEXT,
    "page_token": Limit(512),
}
#: Page sizes a list accepts (0 means the default, 50).
MAX_PAGE_SIZE = 1000

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _fields(message: Message, prefix: str) -> Iterator[tuple[str, Any, Limit]]:
    """(path, value, limit) of every set scalar field; nested messages walked."""
    for fd, value in message.ListFields():
        path = f"{prefix}{fd.name}"
        if fd.type != FieldDescriptor.TYPE_MESSAGE:
            yield path, value, LIMITS.get(fd.name, DEFAULT)
        elif not fd.is_repeated:
            yield from _fields(value, f"{path}.")
        elif len(value) > LIMITS.get(fd.name, DEFAULT).items:
            yield path, value, LIMITS.get(fd.name, DEFAULT)  # counted, not walked
        else:
            for i, inner in enumerate(value):
                yield from _fields(inner, f"{path}[{i}].")


def _text_problem(value: str, limit: Limit) -> str | None:
    if len(value) > limit.chars:
        return f"must be at most {limit.chars} characters (got {len(value)})"
    if (_CONTROL_IN_TEXT if limit.free_text else _CONTROL).search(value):
        return "must not contain NUL or other control characters"
    if limit.free_text and holds_id_shape(value):
        return "must not contain an ID number (name the child by its key or alert id)"
    return None


def problems_of(request: Message) -> list[FieldProblem]:
    """Every size or character problem of `request`, each naming its field."""
    found: list[FieldProblem] = []
    for path, value, limit in _fields(request, ""):
        if isinstance(value, str):
            reason = _text_problem(value, limit)
            if reason:
                found.append(FieldProblem(path, reason))
            continue
        if not hasattr(value, "__len__") or isinstance(value, bytes):
            continue
        if len(value) > limit.items:
            found.append(FieldProblem(path, f"must have at most {limit.items} items"))
            continue
        for i, item in enumerate(value):
            if isinstance(item, str) and (reason := _text_problem(item, limit)):
                found.append(FieldProblem(f"{path}[{i}]", reason))
    return found


def check(request: Message) -> None:
    """Raise InvalidArgument for the first problems of `request` (at most ten named)."""
    found = problems_of(request)
    if found:
        raise InvalidArgument(found[:10])
