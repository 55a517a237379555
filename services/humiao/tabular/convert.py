"""Cell values as bureaus type them -> contract values (dates, months, fen, codes).

Every converter takes a cell as the reader gives it (str, int, float, datetime, None)
and returns the value in the contract's JSON form, or raises CellError with a reason in
the sender's terms (Chinese). Reasons never repeat the cell's value: it may be an ID
number. Money goes through Decimal, never float arithmetic.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from humiao.domain.identity import looks_like_citizen_id
from humiao.domain.validation import MAX_REASON_TEXT_LENGTH

#: Longest cell a mapped column may hold (the contract's longest free text is 2000).
MAX_CELL_CHARS = 2000
#: Excel serial days accepted as dates: 1950-01-01 .. 2099-12-31 (a bare number outside
#: this range is more likely a typo than a date).
_SERIAL_MIN, _SERIAL_MAX = 18264, 73050
_EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 = 1900-01-01, after Excel's 1900 leap bug
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
_MONTH_PATTERNS = (
    re.compile(r"^(\d{4})[-/.年](\d{1,2})月?$"),
    re.compile(r"^(\d{4})(\d{2})$"),
)
_ID_SHAPE = re.compile(r"\d{17}[\dX]")
_ID_SHAPE_ANY_X = re.compile(r"\d{17}[\dXx]")
_AMOUNT_NOISE = re.compile(r"[,，¥￥元\s]")


class CellError(ValueError):
    """A cell that cannot become its field; the message is for the sender (Chinese)."""


def normalise(value: Any) -> Any:
    """Full-width digits, letters and spaces to ASCII (NFKC), ends stripped; empty -> None."""
    if isinstance(value, str):
        text = (value if value.isascii() else unicodedata.normalize("NFKC", value)).strip()
        return text or None
    return value


def compact(value: Any) -> str:
    """A normalised cell as text with every space removed (IDs, codes, numbers)."""
    if isinstance(value, str):
        return "".join(value.split())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "".join(str(value).split())


def header_text(value: Any) -> str:
    """A header cell compared with a mapping's header: normalised, no spaces at all
    ("身 份 证 号" and "身份证号" are one header)."""
    value = normalise(value)
    return "" if value is None else compact(value)


def contains_citizen_id(text: str) -> bool:
    """True when `text` holds an ID-number-shaped run with a valid check digit."""
    upper = text.upper()
    return any(looks_like_citizen_id(m.group()) for m in _ID_SHAPE.finditer(upper))


def mask_citizen_ids(text: str) -> str:
    """`text` with every run shaped like an ID number masked (region and last four
    kept), valid check digit or not: a mistyped ID is still nearly the whole ID."""
    from humiao.domain.identity import mask_id

    return _ID_SHAPE_ANY_X.sub(lambda m: mask_id(m.group()), text)


def to_id(value: Any) -> str:
    """An ID number or credit code: spaces removed, a trailing x upper-cased; the domain
    checks the digits (the reason then names this column)."""
    text = compact(value).upper()
    if len(text) > 64:
        raise CellError("过长，不是证件号码")
    return text


def to_region(value: Any) -> str:
    text = compact(value)
    if len(text) != 6 or not text.isdigit():
        raise CellError("行政区划代码应为6位数字")
    return text


def _serial_date(number: float) -> dt.date:
    if not _SERIAL_MIN <= number <= _SERIAL_MAX:
        raise CellError("不是日期（数字超出Excel日期范围）")
    return _EXCEL_EPOCH + dt.timedelta(days=int(number))


def _date_of(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        raise CellError("不是日期")
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            return _serial_date(value)
        if 19000101 <= value <= 21001231:  # typed as a number: 20240305
            return _date_of(str(int(value)))
        return _serial_date(value)
    text = compact(value)
    if text.isdigit() and len(text) <= 5:  # a serial date typed as text
        return _serial_date(int(text))
    for pattern in _DATE_PATTERNS:
        m = pattern.match(text)
        if m:
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                raise CellError("日期不存在") from None
    for suffix in (" 00:00:00", "T00:00:00"):  # a datetime typed as text
        if str(value).endswith(suffix):
            return _date_of(str(value)[: -len(suffix)])
    raise CellError("不是日期（应为2024-03-05、2024/3/5或20240305）")


def to_date(value: Any) -> str:
    return _date_of(value).isoformat()


def to_period(value: Any) -> str:
    """A month: 2024-03, 2024/3, 202403, 2024年3月, or any date in it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # readers give numbers as floats
    if not isinstance(value, dt.date | int | float) or isinstance(value, bool):
        text = compact(value)
        for pattern in _MONTH_PATTERNS:
            m = pattern.match(text)
            if m and 1 <= int(m[2]) <= 12:
                return f"{int(m[1]):04d}-{int(m[2]):02d}"
    elif isinstance(value, int) and 190001 <= value <= 210012 and 1 <= value % 100 <= 12:
        return f"{value // 100:04d}-{value % 100:02d}"
    try:
        day = _date_of(value)
    except CellError:
        raise CellError("不是月份（应为2024-03、2024/3或202403）") from None
    return f"{day.year:04d}-{day.month:02d}"


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise CellError("不是金额")
    if isinstance(value, float):
        value = repr(value)  # the shortest text that is this double: 1380.5, not 1380.49999
    try:
        number = Decimal(_AMOUNT_NOISE.sub("", str(value)))
    except InvalidOperation:
        raise CellError("不是金额") from None
    if not number.is_finite():
        raise CellError("不是金额")
    if number.adjusted() > 12:
        raise CellError("金额过大")
    return number


def to_fen_from_yuan(value: Any) -> int:
    """Yuan with at most two decimals -> integer fen, exactly (Decimal)."""
    fen = _decimal(value) * 100
    if fen != fen.to_integral_value():
        raise CellError("金额最多两位小数（单位：元）")
    return int(fen)


def to_fen(value: Any) -> int:
    fen = _decimal(value)
    if fen != fen.to_integral_value():
        raise CellError("金额应为整数（单位：分）")
    return int(fen)


def to_text(value: Any) -> str:
    """Free text (an identifier of the sender's, a reason). An ID number in it is
    refused: free fields travel into event ids, logs and masked lists."""
    text = compact(value) if isinstance(value, int | float) else str(value)
    if contains_citizen_id(compact(text)):
        raise CellError("自由文本中不得含身份证号")
    return text


class SendersCode(str):
    """The fallback code given for a value of the sender's own; `original` keeps what
    the sender wrote (a mapping's `keep_text` field carries it into the envelope)."""

    original: str

    def __new__(cls, code: str, original: str) -> SendersCode:
        made = super().__new__(cls, code)
        made.original = original
        return made


def code_converter(codes: Mapping[str, str], fallback: str | None) -> Callable[[Any], str]:
    """A code list (Chinese or the contract's name -> contract name). Unknown values are
    refused, unless the field only describes and the mapping names a `fallback`: then
    the fallback comes back as a SendersCode holding the sender's text."""
    lookup = {header_text(k).upper(): v for k, v in codes.items()}
    lookup.update({v.upper(): v for v in codes.values()})

    lookup.update({k: v for k, v in codes.items()})  # as typed: the common case, no folding

    def convert(value: Any) -> str:
        found = lookup.get(value) if isinstance(value, str) else None
        if found is None:
            found = lookup.get(header_text(value).upper())
        if found is not None:
            return found
        if fallback is not None:
            return SendersCode(fallback, to_text(value)[:MAX_REASON_TEXT_LENGTH])
        raise CellError("不在代码表中（可用：" + "、".join(sorted(codes)[:12]) + "）")

    return convert


#: Converters by the `type` a mapping column names.
SIMPLE_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "id": to_id,
    "region": to_region,
    "date": to_date,
    "period": to_period,
    "yuan": to_fen_from_yuan,
    "fen": to_fen,
    "text": to_text,
}
