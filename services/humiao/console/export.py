"""The queue as a rectification ledger (整改台账): one row per alert, as an Excel
workbook or CSV. IDs are masked unless the caller asked for whole ones (each a
whole-ID read the desk audits and limits)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.api.events.v1 import events_pb2
from humiao.console.i18n import (
    code_label,
    local_time,
    program_label,
    resolution_label,
    status_label,
    yuan,
)

HEADERS = {
    "zh": ("序号", "预警编号", "预警类型", "儿童身份证号", "地区", "期间", "保障类别",
           "涉及金额(元)", "状态", "承办人", "处置结果", "追回金额(元)", "发现时间",
           "更新时间", "问题说明", "整改措施", "整改时限", "整改结果"),
    "en": ("No.", "Alert id", "Alert type", "Child ID number", "Region", "Period", "Program",
           "Amount at risk (yuan)", "Status", "Assignee", "Resolution", "Recovered (yuan)",
           "Raised", "Updated", "Explanation", "Remedy", "Due by", "Outcome"),
}
#: A cell a spreadsheet would take for a formula starts with one of these.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _row(n: int, a: desk_pb2.Alert, lang: str) -> list[str]:
    resolution = alerts_pb2.Resolution.Name(a.resolution) if a.resolution else ""
    return [
        str(n), a.alert_id, code_label(alerts_pb2.AlertCode.Name(a.code), lang), a.child_id,
        a.region, a.period,
        program_label(events_pb2.Program.Name(a.program), lang) if a.program else "",
        yuan(a.amount_at_risk_fen), status_label(alerts_pb2.AlertStatus.Name(a.status), lang),
        a.assignee, resolution_label(resolution, lang) if resolution else "",
        yuan(a.amount_recovered_fen) if resolution == "CONFIRMED_IMPROPER" else "",
        local_time(a.raised_at.ToDatetime(dt.UTC)), local_time(a.updated_at.ToDatetime(dt.UTC)),
        a.explanation_zh if lang == "zh" else a.explanation_en, "", "", "",
    ]


def to_csv(alerts: Sequence[desk_pb2.Alert], lang: str) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS[lang])
    for n, a in enumerate(alerts, 1):
        writer.writerow([_safe(v) for v in _row(n, a, lang)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(alerts: Sequence[desk_pb2.Alert], lang: str) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "整改台账" if lang == "zh" else "Ledger"
    sheet.append(list(HEADERS[lang]))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for n, a in enumerate(alerts, 1):
        row = _row(n, a, lang)
        sheet.append([_safe(v) for v in row])
        sheet.cell(row=n + 1, column=8).value = Decimal(a.amount_at_risk_fen).scaleb(-2)  # summable
        sheet.cell(row=n + 1, column=8).number_format = "#,##0.00"
    widths = (6, 28, 18, 22, 8, 9, 16, 14, 10, 12, 12, 14, 17, 17, 60, 24, 12, 16)
    for i, width in enumerate(widths, 1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
