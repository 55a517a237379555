"""Importing a spreadsheet: rows -> envelopes -> the ingest gateway, with row-level errors.

`read_workbook` converts a file without sending anything (what a console shows before
the user confirms); `import_workbook` streams it through the gateway's SubmitBatch, a few
calls in flight, exactly as `humiao ingest` does for JSON lines, then retracts the earlier
versions of corrected keyed rows and writes the error workbook. Every data row ends up
accepted, duplicate or rejected: `ImportResult.adds_up` is the check.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from humiao.api.events.v1 import events_pb2
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.tabular.convert import normalise
from humiao.tabular.errorbook import ErrorSheet, write_error_book
from humiao.tabular.mapping import TableMapping
from humiao.tabular.readers import Header, Limits, Sheet, TableError, locate_header, open_sheets
from humiao.tabular.rows import (
    KeyedHash,
    Row,
    RowBuilder,
    RowError,
    check_fields,
    derived_id,
    sender_terms,
)
from humiao.tabular.state import default_state_path, load_state, save_state

DEFAULT_CHUNK = 1000
IN_FLIGHT = 3


DEVELOPMENT_KEY = SecretStr("humiao-development-import-key")


class ImportSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    #: Key of the keyed hash deriving event ids and row keys from rows. One per source
    #: deployment, never changed (a new key makes a re-import new facts).
    humiao_import_key: SecretStr = DEVELOPMENT_KEY


@dataclass
class ImportResult:
    """What an import did: read = accepted + duplicates + rejected (after read_workbook,
    which sends nothing: read = len(envelopes) + rejected); skipped rows (blank, totals,
    sign-off lines) are not read."""

    path: Path
    mapping: str
    source: str
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0
    retracted: int = 0
    sheets: list[str] = field(default_factory=list)
    skipped_sheets: dict[str, str] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    error_book: Path | None = None
    state_path: Path | None = None
    seconds: float = 0.0
    #: read_workbook only: the envelopes of the rows that passed (nothing was sent)
    envelopes: list[events_pb2.Envelope] = field(default_factory=list)
    error_sheets: dict[str, ErrorSheet] = field(default_factory=dict, repr=False)

    @property
    def adds_up(self) -> bool:
        done = self.accepted + self.duplicates + self.rejected + len(self.envelopes)
        return self.read == done

    @property
    def rows_per_second(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def reject(self, row: Row, header: Header) -> None:
        self.rejected += 1
        self.errors.extend(row.errors)
        sheet = self.error_sheets.get(row.sheet)
        if sheet is None:
            ids = frozenset(i for c, i in header.columns if c.type == "id")
            sheet = self.error_sheets[row.sheet] = ErrorSheet(header.names, ids)
        sheet.rows.append((row.number, row.cells, row.errors))

    def render(self) -> str:
        text = (f"{self.path.name}（{self.mapping}）：读取 {self.read} 行，接受 {self.accepted}，"
                f"重复 {self.duplicates}，拒收 {self.rejected}，跳过空行与合计行 {self.skipped}"
                f"；撤回旧版本 {self.retracted}\n"
                f"{self.read} rows read: {self.accepted} accepted, {self.duplicates} duplicate, "
                f"{self.rejected} rejected ({self.skipped} blank/totals rows skipped, "
                f"{self.retracted} earlier versions retracted) in {self.seconds:.1f}s "
                f"({self.rows_per_second:,.0f} rows/s)")
        for name, why in self.skipped_sheets.items():
            text += f"\n工作表「{name}」未导入：{why}"
        if self.error_book is not None:
            text += f"\n错误清单 / error workbook: {self.error_book}"
        return text


def import_key() -> bytes:
    return ImportSettings().humiao_import_key.get_secret_value().encode()


def _skippable(cells: Any, prefixes: tuple[str, ...]) -> bool:
    """Blank, or a totals / sign-off row (its first two filled cells are looked at)."""
    looked = 0
    for cell in cells:
        value = normalise(cell)
        if value is None:
            continue
        if isinstance(value, str) and value.replace(" ", "").startswith(prefixes):
            return True
        looked += 1
        if looked == 2:
            return False
    return looked == 0


def iter_rows(path: Path, mapping: TableMapping, source: str, result: ImportResult, *,
              key: bytes, limits: Limits, progress: Any = None, validate: bool = True
              ) -> Iterator[tuple[RowBuilder, Row]]:
    """Every data row of every sheet whose header matches the mapping, converted (and
    checked against the contract unless `validate` is off: the gateway checks too)."""
    check_fields(mapping)
    started = dt.datetime.now(dt.UTC)
    with open_sheets(path, limits) as sheets:
        claimed = sum(s.claimed_rows or 0 for s in sheets)
        if claimed > limits.max_rows + limits.header_rows * len(sheets):
            raise TableError(f"文件声称 {claimed:,} 行，上限 {limits.max_rows:,}：请拆分文件")
        if progress is not None:
            progress.total = claimed or None
        for sheet in sheets:
            found = _header(sheet, mapping, limits, result)
            if found is None:
                continue
            header, rows = found
            builder = RowBuilder(mapping, header, source, key, started, validate=validate)
            for number, cells in rows:
                if progress is not None:
                    progress.update(1)
                if result.read + result.skipped >= limits.max_rows:
                    raise TableError(f"行数超过上限 {limits.max_rows:,}：请拆分文件")
                if _skippable(cells, mapping.skip_prefixes):
                    result.skipped += 1
                    continue
                result.read += 1
                yield builder, builder.build(sheet.name, number, cells)
    if not result.sheets:
        raise TableError("；".join(f"工作表「{n}」：{why}"
                                   for n, why in result.skipped_sheets.items()))


def _header(sheet: Sheet, mapping: TableMapping, limits: Limits, result: ImportResult
            ) -> tuple[Header, Iterator[tuple[int, Any]]] | None:
    top = list(itertools.islice(sheet.rows, limits.header_rows))
    try:
        header = locate_header(top, mapping)
    except TableError as exc:
        result.skipped_sheets[sheet.name] = str(exc)
        return None
    result.sheets.append(sheet.name)
    return header, itertools.chain((r for r in top if r[0] > header.row), sheet.rows)


def read_workbook(path: str | Path, mapping: TableMapping, *, source: str,
                  key: bytes | None = None, limits: Limits | None = None) -> ImportResult:
    """Convert a file without sending it: the envelopes of good rows, the errors of the
    others (raises TableError when the file cannot be read at all)."""
    started = time.perf_counter()
    result = ImportResult(Path(path), mapping.name, source)
    for builder, row in iter_rows(Path(path), mapping, source, result,
                                  key=key or import_key(), limits=limits or Limits()):
        if row.envelope is None:
            result.reject(row, builder.header)
        else:
            result.envelopes.append(row.envelope)
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class _Sender:
    """SubmitBatch calls in flight; settles answers row by row."""

    stub: ingest_pb2_grpc.IngestServiceStub
    token: str
    result: ImportResult
    in_flight: int
    timeout: float = 120.0
    sent_keys: dict[str, str] = field(default_factory=dict)
    superseded: list[str] = field(default_factory=list)
    pending: collections.deque[Any] = field(default_factory=collections.deque)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def send(self, rows: list[tuple[RowBuilder, Row]] | None,
             events: list[events_pb2.Envelope]) -> None:
        request = ingest_pb2.SubmitBatchRequest(events=events)
        call = self.stub.SubmitBatch.future(request, metadata=self.metadata, timeout=self.timeout)
        self.pending.append((rows, request, call))
        while len(self.pending) >= max(1, self.in_flight):
            self.settle(*self.pending.popleft())

    def drain(self) -> None:
        while self.pending:
            self.settle(*self.pending.popleft())

    def settle(self, rows: list[tuple[RowBuilder, Row]] | None,
               request: ingest_pb2.SubmitBatchRequest, call: Any) -> None:
        from humiao.cli.ingest_cmd import _submit_with_retry, status_reasons

        answer = _submit_with_retry(self.stub, request, self.metadata, call, self.timeout)
        if rows is None:  # retractions of earlier versions (a duplicate: retracted before)
            self.result.retracted += answer.accepted
            return
        for outcome in answer.results:
            builder, row = rows[outcome.index]
            if outcome.outcome == ingest_pb2.REJECTED:
                for reason in status_reasons(outcome.status):
                    path, _, why = reason.partition(": ")
                    row.errors.append(RowError(row.sheet, row.number, builder.column_of(path),
                                               sender_terms(why or path)))
                self.result.reject(row, builder.header)
                continue
            if outcome.outcome == ingest_pb2.ACCEPTED:
                self.result.accepted += 1
            else:
                self.result.duplicates += 1
            if row.key is not None and row.envelope is not None:
                earlier = self.sent_keys.get(row.key)
                if earlier is not None and earlier != row.envelope.event_id:
                    self.superseded.append(earlier)  # the key twice in one file: later wins
                self.sent_keys[row.key] = row.envelope.event_id

    def cancel(self) -> None:
        for _, _, call in self.pending:
            call.cancel()


def import_workbook(path: str | Path, mapping: TableMapping,
                    stub: ingest_pb2_grpc.IngestServiceStub, token: str, *, source: str,
                    key: bytes | None = None, state_path: Path | None = None,
                    error_book: Path | None = None, limits: Limits | None = None,
                    chunk_size: int = DEFAULT_CHUNK, in_flight: int = IN_FLIGHT,
                    progress: bool | None = None) -> ImportResult:
    """Send a file's rows through the gateway; retract corrected rows' earlier versions;
    write the error workbook (default FILE.errors.xlsx) when rows were refused."""
    from tqdm import tqdm

    source_path = Path(path)
    started = time.perf_counter()
    key = key or import_key()
    result = ImportResult(source_path, mapping.name, source)
    result.state_path = (state_path or default_state_path(source_path, source, mapping.name)
                         if mapping.key else None)
    previous = load_state(result.state_path) if result.state_path else {}
    sender = _Sender(stub, token, result, in_flight)
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(unit="行", file=sys.stderr, disable=not show, desc=source_path.name)
    chunk: list[tuple[RowBuilder, Row]] = []
    try:
        for builder, row in iter_rows(source_path, mapping, source, result, key=key,
                                      limits=limits or Limits(), progress=bar,
                                      validate=False):
            if row.envelope is None:
                result.reject(row, builder.header)
                continue
            chunk.append((builder, row))
            if len(chunk) >= chunk_size:
                sender.send(chunk, [r.envelope for _, r in chunk if r.envelope is not None])
                chunk = []
        if chunk:
            sender.send(chunk, [r.envelope for _, r in chunk if r.envelope is not None])
        sender.drain()
        _retract_earlier(sender, previous, mapping, source, key)
    finally:
        sender.cancel()
        bar.close()
    if result.state_path is not None and sender.sent_keys:
        save_state(result.state_path, source, mapping.name, {**previous, **sender.sent_keys})
    result.errors.sort(key=lambda e: (e.sheet, e.row))  # gateway answers come in later
    default_book = source_path.with_name(source_path.stem + ".errors.xlsx")
    if result.error_sheets:
        result.error_book = write_error_book(error_book or default_book, result.error_sheets)
    elif error_book is None:
        default_book.unlink(missing_ok=True)  # an earlier run's list no longer holds
    result.seconds = time.perf_counter() - started
    return result


def retraction(old_event_id: str, mapping: str, source: str, key: bytes,
               recorded_at: dt.datetime) -> events_pb2.Envelope:
    """The eventRetracted of an earlier version; its id derived from the old one, so
    sending it twice is a duplicate."""
    digest = KeyedHash(key, source, mapping).digest("retract", old_event_id)
    msg = events_pb2.Envelope(event_id=derived_id(f"{mapping}-r", digest), source=source)
    msg.recorded_at.FromDatetime(recorded_at)
    msg.event_retracted.retracted_event_id = old_event_id
    msg.event_retracted.reason = f"superseded by a corrected row ({mapping} import)"
    return msg


def _retract_earlier(sender: _Sender, previous: dict[str, str], mapping: TableMapping,
                     source: str, key: bytes) -> None:
    stale = [old for k, old in previous.items()
             if k in sender.sent_keys and sender.sent_keys[k] != old]
    stale += sender.superseded
    now = dt.datetime.now(dt.UTC)
    events = [retraction(old, mapping.name, source, key, now) for old in sorted(set(stale))]
    for i in range(0, len(events), DEFAULT_CHUNK):
        sender.send(None, events[i:i + DEFAULT_CHUNK])
    sender.drain()
