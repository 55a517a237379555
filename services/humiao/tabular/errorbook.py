"""The error workbook: each refused row as it came, ID numbers masked, plus why.

The sender opens it, fixes the rows (filling the masked ID numbers from their own
records) and sends the rows again, in this workbook or their own file: the extra
columns (错误原因, 原工作表, 原行号) are not part of any mapping and are ignored.
Text that would be a formula (=, +, -, @ first) is written as text, never as a formula.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from humiao.domain.identity import mask_id
from humiao.tabular.convert import compact, mask_citizen_ids, normalise
from humiao.tabular.rows import RowError

ERROR_COLUMNS = ("错误原因", "原工作表", "原行号")
_FORMULA_LEADS = ("=", "+", "-", "@")


@dataclass
class ErrorSheet:
    headings: tuple[str, ...]
    #: columns holding ID numbers: masked whatever their content
    id_columns: frozenset[int] = frozenset()
    rows: list[tuple[int, Sequence[Any], list[RowError]]] = field(default_factory=list)


def safe_cell(value: Any, is_id: bool = False) -> Any:
    """A cell fit to hand back: as it came, except ID numbers (found in the normalised
    text, so full-width digits do not hide one), which are masked in any column."""
    folded = normalise(value)
    if folded is None or isinstance(folded, dt.date | bool):
        return value
    if is_id:
        return mask_id(compact(folded).upper())
    if isinstance(folded, int | float):
        text = compact(folded)
        masked = mask_citizen_ids(text)
        return value if masked == text else masked
    masked = mask_citizen_ids(str(folded))
    return value if masked == folded else masked


def write_error_book(path: Path, sheets: dict[str, ErrorSheet]) -> Path:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    for name, sheet in sheets.items():
        ws = book.create_sheet(title=name[:31] or "Sheet")
        headings = list(sheet.headings)
        while headings and not headings[-1]:
            headings.pop()
        width = len(headings)
        ws.append([*headings, *ERROR_COLUMNS])
        for number, cells, errors in sorted(sheet.rows, key=lambda r: r[0]):
            values = [safe_cell(c, i in sheet.id_columns) for i, c in enumerate(cells[:width])]
            values += [None] * (width - len(values))
            values += ["；".join(e.render() for e in errors), name, number]
            out = []
            for value in values:
                cell = WriteOnlyCell(ws, value=value)
                if isinstance(value, str) and value.startswith(_FORMULA_LEADS):
                    cell.data_type = "s"  # text, never a formula
                out.append(cell)
            ws.append(out)
    tmp = path.with_name(path.name + ".tmp")
    book.save(tmp)
    tmp.replace(path)
    return path
