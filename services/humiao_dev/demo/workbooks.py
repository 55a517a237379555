"""The city as the workbooks a bureau would receive, one per feed and built-in mapping.

Each envelope becomes a row under the headings its built-in mapping expects: programs,
situations and reasons in Chinese, dates as date cells, amounts in yuan, and the
source's recordedAt in the optional 登记时间 column (so conflicts between facts resolve
as they do from JSON lines). Names are left blank: they are never imported.
Late corrections stay JSON lines: a retraction names an event id, which no spreadsheet
has; `remap_retractions` points them at the ids the workbook import derives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from humiao.domain.events import Envelope, EventRetracted
from humiao.tabular.mapping import Column, TableMapping, builtin_codes, load_mapping

#: Feed order (the verifier does not care; a bureau's month does roughly this).
FEEDS: tuple[tuple[str, str], ...] = (
    ("childEnrolled", "roster"),
    ("guardianAppointed", "guardians"),
    ("allowanceStandardSet", "standards"),
    ("personStatusChanged", "custody"),
    ("personDied", "deaths"),
    ("childAdopted", "adoptions"),
    ("schoolingExtension", "schooling"),
    ("enrollmentEnded", "exits"),
    ("disbursement", "payments"),
    ("disbursementReversed", "reversals"),
    ("paymentCycleClosed", "cycles"),
)
RECORDED_AT = "登记时间"


@dataclass
class Workbook:
    mapping: str
    path: Path
    #: the envelopes written, in row order (to map their ids to the derived ones)
    envelopes: list[Envelope] = field(default_factory=list)


def _reverse_codes() -> dict[str, dict[str, str]]:
    """code list -> contract name -> the first Chinese word for it."""
    out: dict[str, dict[str, str]] = {}
    for name, table in builtin_codes().items():
        words: dict[str, str] = {}
        for word, code in table.items():
            words.setdefault(code, word)
        out[name] = words
    return out


def _lookup(body: dict[str, Any], path: str) -> Any:
    name, _, rest = path.partition(".")
    if "[" in name:
        name, index = name[:-1].split("[")
        items = body.get(name, [])
        item = items[int(index)] if int(index) < len(items) else {}
        return item.get(rest) if rest else item
    return body.get(name)


def _cell(column: Column, value: Any, words: dict[str, dict[str, str]]) -> Any:
    if value is None:
        return None
    if column.type == "date":
        return dt.date.fromisoformat(value)
    if column.type == "yuan":
        yuan, fen = divmod(int(value), 100)
        return f"{yuan}.{fen:02d}"
    if column.type == "code" and column.codes in words:
        return words[column.codes].get(value, value)
    return value


def row_of(env: Envelope, mapping: TableMapping, words: dict[str, dict[str, str]]
           ) -> list[Any]:
    from humiao.adapters.codec import envelope_to_proto

    doc = json_format.MessageToDict(envelope_to_proto(env))
    body = doc[env.kind]
    cells = [_cell(c, _lookup(body, c.field), words) if c.field else None
             for c in mapping.columns]
    return [*cells, env.recorded_at.isoformat()]


def write_workbook(path: Path, mapping: TableMapping, envelopes: Sequence[Envelope]) -> Path:
    from openpyxl import Workbook as Book

    words = _reverse_codes()
    book = Book(write_only=True)
    ws = book.create_sheet(mapping.title[:31] or mapping.name)
    ws.append([mapping.title])  # a title row over the table, as bureaus' files have
    ws.append([*(c.header for c in mapping.columns), RECORDED_AT])
    for env in envelopes:
        ws.append(row_of(env, mapping, words))
    ws.append(["合计", f"{len(envelopes)}条"])
    book.save(path)
    return path


def write_workbooks(events: Iterable[Envelope], folder: Path) -> list[Workbook]:
    """One workbook per feed that has facts; raises on a kind no feed carries."""
    folder.mkdir(parents=True, exist_ok=True)
    by_kind: dict[str, list[Envelope]] = {}
    for env in events:
        by_kind.setdefault(env.kind, []).append(env)
    unknown = set(by_kind) - {kind for kind, _ in FEEDS}
    if unknown:
        raise ValueError(f"no workbook feed for {sorted(unknown)}")
    books = []
    for kind, name in FEEDS:
        if kind in by_kind:
            path = write_workbook(folder / f"{name}.xlsx", load_mapping(name), by_kind[kind])
            books.append(Workbook(name, path, by_kind[kind]))
    return books


def derived_ids(book: Workbook, source: str, key: bytes | None = None) -> dict[str, str]:
    """Original event id -> the id importing the workbook gives it (read back, row by row)."""
    from humiao.tabular.importer import read_workbook

    result = read_workbook(book.path, load_mapping(book.mapping), source=source, key=key)
    if result.rejected or len(result.envelopes) != len(book.envelopes):
        raise ValueError(f"{book.path}: {result.rejected} rows refused: "
                         f"{[e.render() for e in result.errors[:3]]}")
    return {env.event_id: msg.event_id
            for env, msg in zip(book.envelopes, result.envelopes, strict=True)}


def remap_retractions(corrections: Iterable[Envelope], ids: dict[str, str]) -> list[Envelope]:
    """The corrections with every retraction naming the id its target was imported under."""
    out = []
    for env in corrections:
        body = env.body
        if isinstance(body, EventRetracted) and body.retracted_event_id in ids:
            env = replace(env, body=replace(body, retracted_event_id=ids[
                body.retracted_event_id]))
        out.append(env)
    return out
