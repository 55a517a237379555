"""One spreadsheet row -> one envelope, with an event id derived from its content.

**Event ids.** `<mapping>-<32 letters a-p>`: a keyed hash (BLAKE2b in keyed mode, a MAC
like HMAC; key HUMIAO_IMPORT_KEY) of the source, the mapping's name and the row's
converted fields (each `field=value`, sorted), plus the row's occurrence number when the
same content appears more than once in one file (a payment listed twice is two
payments). So importing a file again gives the same ids (the gateway answers DUPLICATE),
a corrected row gives a new id (a new fact), and without the key an id reveals nothing
of the row: not the ID numbers in it, nor can one be confirmed by hashing guesses. The id
holds letters only: it cannot spell an ID number. recordedAt is not part of the id: the
same fact recorded twice is one fact.

**Row keys.** When the mapping names key columns, the row's key is the same keyed hash
of those columns' values: the import state stores it (never the values) to find the
event a corrected row replaces.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from humiao.adapters.codec import envelope_from_proto
from humiao.api.events.v1 import events_pb2
from humiao.domain.validation import ValidationFailed
from humiao.tabular.convert import (
    MAX_CELL_CHARS,
    CellError,
    SendersCode,
    compact,
    normalise,
    to_date,
)
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
    paths = [c.field for c in mapping.columns if c.field]
    paths += [c.keep_text for c in mapping.columns if c.keep_text]
    for path in paths + list(mapping.constants):
        m = _PATH.match(path)
        fields = body.DESCRIPTOR.fields_by_camelcase_name
        if m is None or m[1] not in fields or (
            m[3] is not None and m[3] not in fields[m[1]].message_type.fields_by_camelcase_name
        ):
            raise MappingError(f"mapping {mapping.name}: {path!r} is not a field of "
                               f"{mapping.kind} (see DESIGN.md section 4)")


class KeyedHash:
    """BLAKE2b in keyed mode (a MAC, as HMAC is, and several times cheaper per row) over
    the source, the mapping's name and the parts given."""

    def __init__(self, key: bytes, source: str, mapping: str) -> None:
        secret = key if len(key) <= 64 else hashlib.sha256(key).digest()
        self._prefix = hashlib.blake2b(key=secret, digest_size=16)
        self._prefix.update(f"{source}\x1f{mapping}\x1f".encode())

    def digest(self, *parts: str) -> bytes:
        h = self._prefix.copy()
        h.update("\x1f".join(parts).encode())
        return h.digest()


#: hex digits spelled as the letters a-p: an id made of them holds no digit at all
_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


def derived_id(prefix: str, digest: bytes) -> str:
    """An event id from a keyed digest: 128 bits as 32 letters a-p, which cannot spell
    an ID number (or any number)."""
    return f"{prefix}-{digest[:16].hex().translate(_LETTERS)}"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class RowBuilder:
    """Turns the rows under one header into envelopes; keeps the occurrence counts.

    `validate` runs the contract's checks on each envelope here (read_workbook); an
    import leaves them to the gateway, whose violations name the same fields."""

    def __init__(self, mapping: TableMapping, header: Header, source: str, import_key: bytes,
                 started: dt.datetime, *, validate: bool = True) -> None:
        self.mapping = mapping
        self.header = header
        self.source = source
        self.hash = KeyedHash(import_key, source, mapping.name)
        self.started = started
        self.validate = validate
        self.seen: dict[bytes, int] = {}
        self.built = 0
        self._body_field = _BODY_FIELD[mapping.kind]
        self._key_columns = [i for c, i in header.columns if c.header in mapping.key]
        self._plans = [(c, i, _plan(self._body_field, c.field or "")) for c, i in header.columns]
        self._keep_plans = {c.keep_text: _plan(self._body_field, c.keep_text)
                            for c, _ in header.columns if c.keep_text}
        self._constants = [(path, value, _plan(self._body_field, path))
                           for path, value in mapping.constants.items()]

    def build(self, sheet: str, number: int, cells: Sequence[Any]) -> Row:
        row = Row(sheet, number, cells)
        width = len(cells)
        values: list[tuple[str, Any, _Setter]] = [
            (path, value, plan) for path, value, plan in self._constants]
        for column, index, plan in self._plans:
            try:
                value = _convert(column, cells[index] if index < width else None)
            except CellError as exc:
                row.errors.append(RowError(sheet, number, _heading(self.header, index),
                                           str(exc)))
                continue
            if value is not None:
                values.append((column.field or "", value, plan))
            if isinstance(value, SendersCode) and column.keep_text:
                values.append((column.keep_text, value.original,
                               self._keep_plans[column.keep_text]))
        if row.errors:
            return row
        recorded = self._recorded_at(row, cells)
        if recorded is None:
            return row
        values.sort(key=_first)
        content = "\x1e".join(f"{path}={value}" for path, value, _ in values)
        digest = self.hash.digest(content)
        count = self.seen.get(digest, 0) + 1
        self.seen[digest] = count
        if count > 1:
            digest = self.hash.digest(content, str(count))
        row.envelope = self._envelope(row, derived_id(self.mapping.name, digest), recorded,
                                      values)
        if row.envelope is not None and self._key_columns:
            keys = [compact(normalise(cells[i]) if i < width else "") for i in self._key_columns]
            row.key = self.hash.digest("key", *keys).hex()
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

    def _envelope(self, row: Row, event_id: str, recorded: dt.datetime,
                  values: list[tuple[str, Any, _Setter]]) -> events_pb2.Envelope | None:
        msg = events_pb2.Envelope(event_id=event_id, source=self.source)
        delta = recorded - _EPOCH
        msg.recorded_at.seconds = delta.days * 86_400 + delta.seconds
        msg.recorded_at.nanos = delta.microseconds * 1000
        body = getattr(msg, self._body_field)
        body.SetInParent()
        try:
            parents: dict[int, dict[str, Any]] = {}
            for path, value, setter in values:
                setter.apply(body, parents, path, value)
            for _, fields in sorted(parents.items()):
                body.parents.add(**fields)
            if self.validate:
                envelope_from_proto(msg)  # the contract's own checks, before anything is sent
        except ValidationFailed as exc:
            for v in exc.violations:
                row.errors.append(RowError(row.sheet, row.number,
                                           self.column_of(v.field), sender_terms(v.description)))
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


def _first(item: tuple[str, Any, Any]) -> str:
    return item[0]


@dataclass(frozen=True)
class _Setter:
    """How one contract field path is set on a body message: a flat field, or a field
    of the n-th element of a repeated message (parents); enums by name."""

    name: str  # the proto field's own name
    index: int | None
    enum: dict[str, int] | None

    def apply(self, body: Any, repeated: dict[int, dict[str, Any]], path: str, value: Any
              ) -> None:
        if self.enum is not None:
            number = self.enum.get(str(value))
            if number is None:
                raise ValidationFailed.single(path, "not one of the contract's values")
            value = number
        if self.index is not None:
            repeated.setdefault(self.index, {})[self.name] = value
            return
        try:
            setattr(body, self.name, value)
        except (ValueError, TypeError):
            raise ValidationFailed.single(path, "out of range or of the wrong type") from None


def _plan(body_field: str, path: str) -> _Setter:
    m = _PATH.match(path)
    assert m is not None  # check_fields ran
    fields = getattr(events_pb2.Envelope(), body_field).DESCRIPTOR.fields_by_camelcase_name
    fd = fields[m[1]]
    if m[3] is not None:
        fd = fd.message_type.fields_by_camelcase_name[m[3]]
    enum = ({v.name: v.number for v in fd.enum_type.values} if fd.enum_type is not None
            else None)
    return _Setter(fd.name, int(m[2] or 0) if m[3] is not None else None, enum)


#: The contract's most frequent reasons in the sender's words (the English stays beside).
_GLOSSES = (
    ("check digit does not match", "身份证号校验位不符"),
    ("must be 18 characters", "应为18位"),
    ("birth date that does not exist", "身份证号中的出生日期不存在"),
    ("does not match the birth date", "与身份证号中的出生日期不符"),
    ("must not be negative", "不能为负数"),
    ("must not exceed", "金额过大"),
    ("must not be after recordedAt", "晚于登记时间"),
    ("years after recordedAt", "晚于登记时间过久"),
    ("is required", "不能为空"),
    ("same person as an earlier parent", "与另一位父母是同一人"),
    ("may not send events for region", "本单位无权报送该地区的数据"),
    ("may not send", "本单位无权报送此类数据"),
    ("does not match credential", "来源与凭证不符"),
)


def sender_terms(reason: str) -> str:
    """A contract reason in Chinese first when it is a frequent one."""
    for english, chinese in _GLOSSES:
        if english in reason:
            return f"{chinese}（{reason}）"
    return reason


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
