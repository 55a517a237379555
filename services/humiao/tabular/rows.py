"""One spreadsheet row -> one envelope, with an event id derived from its content.

**Event ids.** `<mapping>-<26 base32 chars>`: the HMAC-SHA256, keyed with the import key
(HUMIAO_IMPORT_KEY), of the source, the mapping's name and the row's converted fields
(canonical JSON), plus the row's occurrence number when the same content appears more than
once in one file (a payment listed twice is two payments). So importing a file again gives
the same ids (the gateway answers DUPLICATE), a corrected row gives a new id (a new fact),
and without the key an id reveals nothing of the row: not the ID numbers in it, nor can
one be confirmed by hashing guesses. Base32's alphabet (a-z, 2-7) cannot spell an ID
number. recordedAt is not part of the id: the same fact recorded twice is one fact.

**Row keys.** When the mapping names key columns, the row's key is the same kind of
HMAC of those columns' values: the import state stores it (never the values) to find
the event a corrected row replaces.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from humiao.adapters.codec import envelope_from_proto
from humiao.api.events.v1 import events_pb2
from humiao.domain.validation import ValidationFailed
from humiao.tabular.convert import MAX_CELL_CHARS, CellError, compact, normalise, to_date
from humiao.tabular.mapping import Column, TableMapping
from humiao.tabular.readers import Header

#: Where a recordedAt without a zone is: the sender's local time.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
_PATH = re.compile(r"^(\w+)(?:\[(\d)\])?(?:\.(\w+))?$")
_BODY_FIELD = {d.camelcase_name: d.name
               for d in events_pb2.Envelope.DESCRIPTOR.oneofs_by_name["body"].fields}


@dataclass(frozen=True)
class RowError:
    """One reason a row was refused, in the sender's terms."""

    sheet: str
    row: int
    column: str  # the heading as in the file; "" when the row as a whole is at fault
    reason: str

    def render(self) -> str:
        where = f"列「{self.column}」" if self.column else "整行"
        return f"{where}：{self.reason}"


@dataclass
class Row:
    sheet: str
    number: int
    cells: Sequence[Any]
    envelope: events_pb2.Envelope | None = None
    key: str | None = None
    errors: list[RowError] = field(default_factory=list)


def check_fields(mapping: TableMapping) -> None:
    """Every column field and constant must exist in the kind's body (MappingError)."""
    from humiao.tabular.mapping import MappingError

    body = getattr(events_pb2.Envelope(), _BODY_FIELD[mapping.kind])
    for path in [c.field for c in mapping.columns if c.field] + list(mapping.constants):
        m = _PATH.match(path)
        fields = body.DESCRIPTOR.fields_by_camelcase_name
        if m is None or m[1] not in fields or (
            m[3] is not None and m[3] not in fields[m[1]].message_type.fields_by_camelcase_name
        ):
            raise MappingError(f"mapping {mapping.name}: {path!r} is not a field of "
                               f"{mapping.kind} (see DESIGN.md section 4)")


def keyed_digest(key: bytes, *parts: str) -> bytes:
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def derived_id(prefix: str, digest: bytes) -> str:
    """An event id from a keyed digest: base32 (a-z, 2-7) cannot spell an ID number."""
    return f"{prefix}-{base64.b32encode(digest).decode()[:26].lower()}"


class RowBuilder:
    """Turns the rows under one header into envelopes; keeps the occurrence counts."""

    def __init__(self, mapping: TableMapping, header: Header, source: str, import_key: bytes,
                 started: dt.datetime) -> None:
        self.mapping = mapping
        self.header = header
        self.source = source
        self.import_key = import_key
        self.started = started
        self.seen: dict[bytes, int] = {}
        self.built = 0
        self._key_columns = [(c, i) for c, i in header.columns if c.header in mapping.key]

    def build(self, sheet: str, number: int, cells: Sequence[Any]) -> Row:
        row = Row(sheet, number, cells)
        body: dict[str, Any] = dict(self.mapping.constants)
        for column, index in self.header.columns:
            raw = cells[index] if index < len(cells) else None
            try:
                value = _convert(column, raw)
            except CellError as exc:
                row.errors.append(RowError(sheet, number, _heading(self.header, index),
                                           str(exc)))
                continue
            if value is not None:
                _put(body, column.field or "", value)
        if row.errors:
            return row
        _compact_lists(body)
        recorded = self._recorded_at(row, cells)
        if recorded is None:
            return row
        content = json.dumps(body, sort_keys=True, ensure_ascii=False)
        digest = keyed_digest(self.import_key, self.source, self.mapping.name, content)
        count = self.seen.get(digest, 0) + 1
        self.seen[digest] = count
        if count > 1:
            digest = keyed_digest(self.import_key, self.source, self.mapping.name, content,
                                  str(count))
        event_id = derived_id(self.mapping.name, digest)
        row.envelope = self._envelope(row, event_id, recorded, body)
        if row.envelope is not None and self._key_columns:
            values = [compact(normalise(cells[i]) if i < len(cells) else "")
                      for _, i in self._key_columns]
            row.key = keyed_digest(self.import_key, self.source, self.mapping.name,
                                   *values).hex()[:32]
        return row

    def _recorded_at(self, row: Row, cells: Sequence[Any]) -> dt.datetime | None:
        self.built += 1
        index = self.header.recorded_at
        raw = normalise(cells[index]) if index is not None and index < len(cells) else None
        if raw is None:  # rows later in a file count as recorded later (corrections)
            return self.started + dt.timedelta(microseconds=self.built)
        try:
            when = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(str(raw))
        except ValueError:
            try:
                when = dt.datetime.fromisoformat(to_date(raw))
            except CellError:
                row.errors.append(RowError(row.sheet, row.number, self.mapping.recorded_at
                                           or "", "不是时间（应为2024-03-05 10:30:00）"))
                return None
        return when if when.tzinfo else when.replace(tzinfo=LOCAL_ZONE)

    def _envelope(self, row: Row, event_id: str, recorded: dt.datetime, body: dict[str, Any]
                  ) -> events_pb2.Envelope | None:
        msg = events_pb2.Envelope(event_id=event_id, source=self.source)
        msg.recorded_at.FromDatetime(recorded.astimezone(dt.UTC))
        try:
            _fill(getattr(msg, _BODY_FIELD[self.mapping.kind]), body)
            envelope_from_proto(msg)  # the contract's own checks, before anything is sent
        except ValidationFailed as exc:
            for v in exc.violations:
                row.errors.append(RowError(row.sheet, row.number,
                                           self.column_of(v.field), v.description))
            return None
        return msg

    def column_of(self, path: str) -> str:
        """The heading (as in the file) of the column that fills a contract field path."""
        column = self.mapping.column_for_field(path.split(".", 1)[-1])
        if column is None:
            return ""
        for c, index in self.header.columns:
            if c is column:
                return _heading(self.header, index)
        return column.header


def _heading(header: Header, index: int) -> str:
    return header.names[index] if index < len(header.names) else f"第{index + 1}列"


def _convert(column: Column, raw: Any) -> Any:
    value = normalise(raw)
    if value is None:
        if column.required:
            raise CellError("不能为空")
        return None
    if isinstance(value, str):
        if len(value) > MAX_CELL_CHARS:
            raise CellError(f"超过{MAX_CELL_CHARS}字")
        if value.startswith("="):
            raise CellError("是公式：不计算公式，请改为数值后重发")
    assert column.convert is not None
    return column.convert(value)


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    m = _PATH.match(path)
    assert m is not None  # check_fields ran
    name, index, sub = m[1], m[2], m[3]
    if index is None and sub is None:
        body[name] = value
        return
    items = body.setdefault(name, [])
    i = int(index or 0)
    while len(items) <= i:
        items.append(None)
    if sub is None:
        items[i] = value
    else:
        items[i] = {**(items[i] or {}), sub: value}


def _compact_lists(body: dict[str, Any]) -> None:
    for name, value in body.items():
        if isinstance(value, list):
            body[name] = [v for v in value if v is not None]


def _fill(message: Any, values: dict[str, Any]) -> None:
    fields = message.DESCRIPTOR.fields_by_camelcase_name
    for name, value in values.items():
        fd = fields[name]
        if isinstance(value, list):
            for item in value:
                _fill(getattr(message, fd.name).add(), item)
        else:
            try:
                if fd.enum_type is not None:
                    value = fd.enum_type.values_by_name[str(value)].number
                setattr(message, fd.name, value)
            except (ValueError, TypeError, KeyError):
                raise ValidationFailed.single(name, "out of range or of the wrong type") from None
