"""Reading .xlsx and .csv files as sheets of rows, within limits, and finding the header.

An .xlsx file is a zip: what its entries claim to hold uncompressed is checked before
anything parses it (a zip bomb is refused unread), then each sheet's XML is scanned once
(C-speed regular expressions, a fraction of a second for 100,000 rows). A workbook of
plain values in a known, bounded box is read by python-calamine (Rust, about 10x
openpyxl's read-only mode: 100,000 rows in under a second, where openpyxl takes 9 s);
any other (a formula anywhere, cells without references, wider than 40 columns, more
than CALAMINE_MAX_ROWS rows) by openpyxl in read-only mode, which streams rows in constant
memory and gives each formula cell as its formula text: formulas are never evaluated
(nor their cached results taken); the converters refuse them, naming the cell.
A .csv file is UTF-8 (with or without BOM) or, failing that, GB18030 (a superset of GBK,
what Excel saves in China).

Headers are found without openpyxl's merge information (read-only mode has none): a
merged cell holds its value in its first cell only, so a group heading spanning columns
("父亲" over "身份证号" and "情况") is carried right over the empty cells after it, and a
heading spanning two rows ("序号") is taken from the upper row where the lower is empty.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humiao.tabular.convert import header_text
from humiao.tabular.mapping import Column, TableMapping


@dataclass(frozen=True)
class Limits:
    """What a file may hold. Bureaus' monthly files are thousands of rows; a city's
    payment file ~100,000."""

    max_file_bytes: int = 64 * 1024 * 1024
    #: what the zip's entries together claim once uncompressed (a 300,000-row sheet of
    #: ten columns is about 200 MB of XML)
    max_unpacked_bytes: int = 256 * 1024 * 1024
    max_rows: int = 300_000
    max_columns: int = 64
    #: rows searched for the header
    header_rows: int = 20


class TableError(ValueError):
    """A file that cannot be read at all (too large, not a workbook, no header)."""


@dataclass
class Sheet:
    name: str
    rows: Iterator[tuple[int, Sequence[Any]]]  # (1-based row number, cells)
    claimed_rows: int | None  # what the sheet says of its size (for the progress bar)


@dataclass(frozen=True)
class Header:
    """Where the header is and which column index each mapped column has."""

    row: int
    names: tuple[str, ...]  # each column's heading as shown to the sender
    columns: tuple[tuple[Column, int], ...]
    recorded_at: int | None


@contextlib.contextmanager
def open_sheets(path: Path, limits: Limits) -> Iterator[list[Sheet]]:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise TableError(f"文件过大：{size:,} 字节，上限 {limits.max_file_bytes:,}")
    if path.suffix.lower() == ".csv":
        yield [_csv_sheet(path, limits)]
        return
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise TableError("只接受 .xlsx 或 .csv 文件")
    reader = _calamine_sheets if _calamine_fits(path, limits) else _openpyxl_sheets
    with reader(path, limits) as sheets:
        yield sheets


@contextlib.contextmanager
def _openpyxl_sheets(path: Path, limits: Limits) -> Iterator[list[Sheet]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise TableError(f"不是可读的 .xlsx 文件（{type(exc).__name__}）") from None
    try:
        yield [Sheet(ws.title, _xlsx_rows(ws, limits), ws.max_row)
               for ws in book.worksheets]
    finally:
        book.close()


@contextlib.contextmanager
def _calamine_sheets(path: Path, limits: Limits) -> Iterator[list[Sheet]]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own kinds on a damaged file
        raise TableError(f"不是可读的 .xlsx 文件（{type(exc).__name__}）") from None
    try:
        sheets = []
        for name in book.sheet_names:
            sheet = book.get_sheet_by_name(name)
            first = sheet.start[0] + 1 if sheet.start else 1
            sheets.append(Sheet(name, _calamine_rows(sheet, first, limits), sheet.height))
        yield sheets
    except TableError:
        raise
    except Exception as exc:
        raise TableError(f"不是可读的 .xlsx 文件（{type(exc).__name__}）") from None
    finally:
        book.close()


def _calamine_rows(sheet: Any, first: int, limits: Limits
                   ) -> Iterator[tuple[int, Sequence[Any]]]:
    for number, cells in enumerate(sheet.iter_rows(), start=first):
        if number - first >= limits.max_rows + limits.header_rows:
            raise TableError(f"行数超过上限 {limits.max_rows:,}：请拆分文件")
        yield number, cells[: limits.max_columns]


#: python-calamine loads a sheet's used range whole (every cell of the box from A1 to the
#: last row and column, about 32 bytes each), so it reads only sheets whose box is small
#: and known before loading: at most this many rows, and no column past AN (40).
CALAMINE_MAX_ROWS = 150_000
#: how a formula element starts (`<f>`, `<f t="shared" ...>`, with a namespace prefix too)
_FORMULA_MARKS = (b"<f>", b"<f ", b":f>", b":f ")
#: a cell or row element whose first attribute is not its reference (r="A1", r="7")
_UNREFERENCED = re.compile(rb'<(?:c|row)(?:[>/\t\r\n]| (?!r="))')
_WIDE = re.compile(rb'<c r="(?:A[O-Z]|[B-Z][A-Z]|[A-Z]{3})\d')
_LAST_ROW = re.compile(rb'<row r="(\d{1,9})"')


def _calamine_fits(path: Path, limits: Limits) -> bool:
    """Whether python-calamine may read the file: no formula anywhere (openpyxl shows a
    formula as its text; calamine would give its cached result), every cell and row
    referenced, and each sheet's box within CALAMINE_MAX_ROWS x 40. Checks what the zip
    claims first; raises TableError when a sheet claims more rows than allowed."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            claimed = sum(info.file_size for info in infos)
            if claimed > limits.max_unpacked_bytes:
                raise TableError(
                    f"解压后声称 {claimed:,} 字节，上限 {limits.max_unpacked_bytes:,}")
            sheets = [i for i in infos if i.filename.startswith("xl/worksheets/")
                      and i.filename.endswith(".xml")]
            return all(_sheet_fits(archive, info, limits) for info in sheets)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError):
        raise TableError("不是 .xlsx 文件（不是完好的 zip 格式）") from None


def _sheet_fits(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> bool:
    pending = b""
    last_row = 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(1 << 20)
            window = pending + chunk
            # a match must start before the last 32 bytes, whose context is still to come
            # (they are searched again at the head of the next window)
            limit = len(window) - 32 if chunk else len(window)
            if any(window.find(mark, 0, limit + 4) >= 0 for mark in _FORMULA_MARKS):
                return False  # (a text holding ":f " costs only the slower reader)
            for pattern in (_UNREFERENCED, _WIDE):
                found = pattern.search(window)
                if found and found.start() < limit:
                    return False
            at = window.rfind(b'<row r="', 0, max(limit, 0))
            row = _LAST_ROW.match(window, at) if at >= 0 else None
            if row:
                last_row = max(last_row, int(row.group(1)))
            if not chunk:
                break
            pending = window[limit:]
    if last_row > limits.max_rows + limits.header_rows:
        raise TableError(f"工作表声称 {last_row:,} 行，上限 {limits.max_rows:,}：请拆分文件")
    return last_row <= CALAMINE_MAX_ROWS


def _xlsx_rows(ws: Any, limits: Limits) -> Iterator[tuple[int, Sequence[Any]]]:
    first = ws.min_row or 1
    width = min(ws.max_column or limits.max_columns, limits.max_columns)  # as the sheet says
    for number, cells in enumerate(ws.iter_rows(values_only=True, max_col=width), start=first):
        if number - first >= limits.max_rows + limits.header_rows:
            raise TableError(f"行数超过上限 {limits.max_rows:,}：请拆分文件")
        yield number, cells


def decode_csv(data: bytes) -> str:
    """UTF-8 (BOM or not), else GB18030 (GBK's superset); anything else is refused."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError("无法识别文件编码（应为 UTF-8 或 GBK/GB18030）")


def _csv_sheet(path: Path, limits: Limits) -> Sheet:
    text = decode_csv(path.read_bytes())
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel

    def rows() -> Iterator[tuple[int, Sequence[Any]]]:
        for number, cells in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
            if number > limits.max_rows + limits.header_rows:
                raise TableError(f"行数超过上限 {limits.max_rows:,}：请拆分文件")
            yield number, cells[: limits.max_columns]

    return Sheet(path.stem, rows(), text.count("\n") + 1)


def _names(upper: Sequence[Any], lower: Sequence[Any]) -> list[tuple[str, str, str]]:
    """(full, lower, upper) heading of each column from two header rows, the upper row's
    merged groups carried right over the empty cells they span."""
    width = max(len(upper), len(lower))
    if sum(1 for c in upper if header_text(c)) <= 1:
        upper = ()  # one filled cell above: a title over the table, not a group heading
    out: list[tuple[str, str, str]] = []
    carried = ""
    for i in range(width):
        up = header_text(upper[i]) if i < len(upper) else ""
        low = header_text(lower[i]) if i < len(lower) else ""
        carried = up or (carried if low else "")
        full = f"{carried}/{low}" if carried and low and carried != low else (low or carried)
        out.append((full, low, carried))
    return out


def _display(upper: Sequence[Any], lower: Sequence[Any], names: list[tuple[str, str, str]]
             ) -> tuple[str, ...]:
    """Each column's heading as the sender wrote it (for error reports)."""
    def raw(cells: Sequence[Any], i: int) -> str:
        return str(cells[i]).strip() if i < len(cells) and cells[i] is not None else ""

    out: list[str] = []
    group = ""
    for i, (_, low, carried) in enumerate(names):
        group = (raw(upper, i) or group) if carried else ""
        text = raw(lower, i)
        out.append(f"{group}/{text}" if group and text and low != carried else text or group)
    return tuple(out)


def locate_header(top: Sequence[tuple[int, Sequence[Any]]], mapping: TableMapping) -> Header:
    """The row under which every required column of the mapping is found once; of
    several, the one finding the most columns (a two-level header's lower row), then the
    first."""
    chosen: Header | None = None
    best: tuple[int, list[str], list[str]] | None = None
    for i, (number, cells) in enumerate(top):
        upper = top[i - 1][1] if i else ()
        names = _names(upper, cells)
        found, missing, ambiguous = _match(names, mapping)
        if not missing and not ambiguous:
            if chosen is None or len(found) > len(chosen.columns):
                recorded = (_find(names, (header_text(mapping.recorded_at),))
                            if mapping.recorded_at else None)
                chosen = Header(number, _display(upper, cells, names), tuple(found),
                                recorded if isinstance(recorded, int) else None)
        elif best is None or len(missing) + len(ambiguous) < len(best[1]) + len(best[2]):
            best = (number, missing, ambiguous)
    if chosen is not None:
        return chosen
    if best is None:
        raise TableError("文件是空的")
    problems = []
    if best[1]:
        problems.append("缺少列：" + "、".join(best[1]))
    if best[2]:
        problems.append("列名重复，请在映射中写「上层/下层」：" + "、".join(best[2]))
    raise TableError(f"找不到映射「{mapping.name}」的表头（最接近的是第{best[0]}行）；"
                     + "；".join(problems))


def _find(names: list[tuple[str, str, str]], wanted: tuple[str, ...]) -> int | str | None:
    """Index of the one column answering to `wanted`; None if none; "ambiguous"."""
    for level in (0, 1, 2):  # the full heading first, then the lower, then the upper
        hits = [i for i, n in enumerate(names) if n[level] and n[level] in wanted]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            return "ambiguous"
    return None


def _match(names: list[tuple[str, str, str]], mapping: TableMapping
           ) -> tuple[list[tuple[Column, int]], list[str], list[str]]:
    found: list[tuple[Column, int]] = []
    missing: list[str] = []
    ambiguous: list[str] = []
    for column in mapping.columns:
        if column.field is None:
            continue
        where = _find(names, column.names)
        if isinstance(where, int):
            found.append((column, where))
        elif where == "ambiguous":
            ambiguous.append(column.header)
        elif column.required:
            missing.append(column.header)
    return found, missing, ambiguous
