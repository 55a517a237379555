"""Tabular import without a stack: converters, mappings, headers, CSV encodings."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from humiao.tabular import read_workbook
from humiao.tabular.convert import (
    CellError,
    contains_citizen_id,
    header_text,
    mask_citizen_ids,
    normalise,
    to_date,
    to_fen_from_yuan,
    to_id,
    to_period,
    to_text,
)
from humiao.tabular.mapping import MappingError, builtin_names, load_mapping, parse_mapping
from humiao.tabular.readers import Limits, TableError, _calamine_fits, decode_csv, locate_header
from humiao.tabular.rows import RowBuilder, check_fields
from strategies import random_citizen_id

ID = random_citizen_id(random.Random(7))


@pytest.mark.parametrize("cell", [
    "2024-03-05", "2024/3/5", "20240305", "2024.3.5", "2024年3月5日", " 2024-03-05 ",
    "２０２４－０３－０５", 20240305, 45356, 45356.0, "45356",
    dt.datetime(2024, 3, 5, 0, 0), dt.date(2024, 3, 5), "2024-03-05 00:00:00",
])
def test_dates_in_the_formats_bureaus_use(cell: object) -> None:
    assert to_date(normalise(cell)) == "2024-03-05"


@pytest.mark.parametrize("cell", ["2024-02-30", "2024/13/1", "yesterday", 12, True, "3/5/2024"])
def test_not_dates(cell: object) -> None:
    with pytest.raises(CellError):
        to_date(normalise(cell))


@pytest.mark.parametrize("cell", ["2024-03", "2024/3", "202403", "2024年3月", 202403, 202403.0,
                                  dt.datetime(2024, 3, 31), 45356, "２０２４－０３"])
def test_periods(cell: object) -> None:
    assert to_period(normalise(cell)) == "2024-03"


@pytest.mark.parametrize(("cell", "fen"), [
    ("1380.5", 138050), (1380.55, 138055), (1380, 138000), ("1,380.55", 138055),
    ("￥1380.55元", 138055), ("１３８０．５５", 138055), (0.1, 10), (1380.10, 138010),
    ("1380.500", 138050), (" 12 ", 1200),
])
def test_yuan_to_fen_exactly(cell: object, fen: int) -> None:
    assert to_fen_from_yuan(normalise(cell)) == fen


@pytest.mark.parametrize("cell", ["12.345", "abc", "NaN", "Infinity", True, "1e400"])
def test_not_amounts(cell: object) -> None:
    with pytest.raises(CellError):
        to_fen_from_yuan(normalise(cell))


@given(st.integers(min_value=0, max_value=10_000_000))
def test_any_fen_amount_round_trips_through_a_float_cell(fen: int) -> None:
    """A yuan amount typed into Excel is a double; Decimal of its shortest repr is exact."""
    assert to_fen_from_yuan(fen / 100) == fen


def test_ids_lose_spaces_and_full_width_forms() -> None:
    spaced = " ".join([ID[:6], ID[6:14], ID[14:]])
    wide = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in ID)
    assert to_id(normalise(spaced)) == ID
    assert to_id(normalise(wide)) == ID
    assert to_id(normalise(ID[:17] + ID[17].lower())) == ID


def test_free_text_with_an_id_number_is_refused_and_masked() -> None:
    with pytest.raises(CellError) as caught:
        to_text(f"D-{ID}")
    assert ID not in str(caught.value)
    assert to_text("D-2024-0001") == "D-2024-0001"
    assert contains_citizen_id(f"x{ID}y")
    masked = mask_citizen_ids(f"payee {ID} ok")
    assert ID not in masked and masked.startswith(f"payee {ID[:6]}") and masked.endswith("ok")


def test_code_lists_and_descriptive_fallback() -> None:
    roster = load_mapping("roster")
    program = next(c for c in roster.columns if c.field == "program")
    assert program.convert is not None
    assert program.convert("散居孤儿") == "ORPHAN_DISPERSED"
    assert program.convert("集中养育孤儿") == "ORPHAN_INSTITUTIONAL"
    assert program.convert("事实无人抚养儿童") == "DE_FACTO_UNSUPPORTED"
    assert program.convert("orphan_dispersed") == "ORPHAN_DISPERSED"
    with pytest.raises(CellError):
        program.convert("低保")
    reason = next(c for c in load_mapping("exits").columns if c.field == "reason")
    assert reason.convert is not None
    assert reason.convert("户籍迁出") == "MOVED_OUT_OF_REGION"
    kept = reason.convert("本地自定义代码17")
    assert kept == "OTHER_REASON"  # only describes: kept, with the sender's words
    assert getattr(kept, "original", None) == "本地自定义代码17"
    assert reason.keep_text == "reasonText"
    situation = next(c for c in load_mapping("custody").columns if c.field == "situation")
    assert situation.convert is not None
    assert situation.convert("被遣送（驱逐）出境") == "DEPORTED"


def test_every_builtin_mapping_loads_and_names_real_fields() -> None:
    names = builtin_names()
    assert {"roster", "payments", "deaths", "custody", "adoptions", "schooling"} <= set(names)
    for name in names:
        mapping = load_mapping(name)
        check_fields(mapping)
        assert mapping.name == name
        assert all(c.field != "姓名" for c in mapping.columns)
        assert not any(header_text(c.header).endswith("姓名") and c.field
                       for c in mapping.columns)


@pytest.mark.parametrize(("text", "says"), [
    ('name = "x"\nkind = "disbursement"\ncolour = 1\n[[columns]]\nheader="a"\nfield="childId"',
     "colour"),
    ('name = "x"\nkind = "payment"\n[[columns]]\nheader="a"\nfield="childId"', "kind"),
    ('name = "x"\nkind = "disbursement"\n[[columns]]\nheader="a"\nfield="childId"\ntype="money"',
     "type"),
    ('name = "x"\nkind = "disbursement"\nkey=["b"]\n[[columns]]\nheader="a"\nfield="childId"',
     "key"),
    ('name = "x"\nkind = "disbursement"\n[[columns]]\nheader="a"\nfield="childId"\n'
     'type="code"\ncodes="colours"', "codes"),
    ("name = ", "TOML"),
])
def test_bad_mappings_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(MappingError, match=says):
        parse_mapping(text)


def test_a_field_not_in_the_contract_is_refused() -> None:
    mapping = parse_mapping('name = "x"\nkind = "personDied"\n[[columns]]\nheader="a"\n'
                            'field="childId"\ntype="id"')
    with pytest.raises(MappingError, match="childId"):
        check_fields(mapping)


def test_unknown_mapping_name_lists_the_builtins() -> None:
    with pytest.raises(MappingError, match="payments"):
        load_mapping("no-such-mapping")


def test_two_level_merged_header_is_found_and_qualified() -> None:
    # row 1 a title, row 2 group headings (merged cells hold their value in the first
    # cell only), row 3 the lower headings; 身份证号 spans rows 2-3
    top = [
        (1, ["2024年在册儿童名册", None, None, None, None, None, None, None, None, None]),
        (2, ["身份证号", "姓 名", "出生日期", "保障类别", "行政区划代码", "批准日期",
             "父亲", None, "母亲", None]),
        (3, [None, None, None, None, None, None, "身份证号", "情况", "身份证号", "情况"]),
        (4, [ID, "x", "2010-01-01", "散居孤儿", "110105", "2023-01-01", ID, "死亡", ID, "死亡"]),
    ]
    header = locate_header(top, load_mapping("roster"))
    assert header.row == 3
    by_field = {c.field: i for c, i in header.columns}
    assert by_field["childId"] == 0
    assert by_field["parents[0].personId"] == 6
    assert by_field["parents[1].situation"] == 9
    assert header.names[6] == "父亲/身份证号" and header.names[0] == "身份证号"


def test_missing_and_ambiguous_headers_are_named() -> None:
    with pytest.raises(TableError, match="死亡日期"):
        locate_header([(1, ["公民身份号码", "姓名"])], load_mapping("deaths"))
    with pytest.raises(TableError, match="公民身份号码"):
        locate_header([(1, ["公民身份号码", "公民身份号码", "死亡日期"])],
                      load_mapping("deaths"))


def test_headers_match_across_full_width_forms_and_spaces() -> None:
    header = locate_header([(1, ["流 水 号", "儿童身份证号", "保障类别", "发放月份",
                                 "发放金额（元）", "发放日期", "收款人身份证号",
                                 "行政区划代码"])], load_mapping("payments"))
    assert len(header.columns) == 8


def test_csv_encodings() -> None:
    text = "公民身份号码,死亡日期\n"
    assert decode_csv(text.encode("gbk")) == text
    assert decode_csv(text.encode("utf-8-sig")) == text
    assert decode_csv(text.encode("utf-8")) == text
    with pytest.raises(TableError):
        decode_csv(b"\xff\xfe\x00\xd8\x00\xdc" * 3 + "中".encode("utf-16-le") + b"\x81")


# --- event ids ----------------------------------------------------------------------------

PAYEE = random_citizen_id(random.Random(8))
HEADINGS = ["流水号", "儿童身份证号", "保障类别", "发放月份", "发放金额(元)", "发放日期",
            "收款人身份证号", "行政区划代码"]


def builder(key: bytes = b"k", source: str = "bank") -> RowBuilder:
    mapping = load_mapping("payments")
    header = locate_header([(1, HEADINGS)], mapping)
    return RowBuilder(mapping, header, source, key, dt.datetime(2024, 4, 1, tzinfo=dt.UTC))


def pay_row(did: str, fen: int) -> list[object]:
    return [did, ID, "散居孤儿", "2024-03", f"{fen // 100}.{fen % 100:02d}", "2024-03-05",
            PAYEE, "110105"]


@given(did=st.from_regex(r"D-[A-Z0-9]{1,12}", fullmatch=True),
       fen=st.integers(0, 10_000_000), other=st.integers(0, 10_000_000))
def test_event_ids_follow_content_not_time_nor_order(did: str, fen: int, other: int) -> None:
    first = builder().build("s", 2, pay_row(did, fen))
    again = builder().build("s", 9, pay_row(did, fen))  # another import, another row number
    assert first.envelope is not None and again.envelope is not None
    assert first.envelope.event_id == again.envelope.event_id
    assert first.key == again.key  # the same 流水号: the same row key
    changed = builder().build("s", 2, pay_row(did, other))
    assert changed.envelope is not None and changed.key == first.key
    assert (changed.envelope.event_id == first.envelope.event_id) is (other == fen)
    event_id = first.envelope.event_id
    assert event_id.startswith("payments-") and not any(c.isdigit() for c in event_id)
    assert ID not in event_id and first.key is not None and ID not in first.key
    # another key or another source: other ids (nothing to confirm a guess with)
    assert builder(key=b"other").build("s", 2, pay_row(did, fen)).envelope.event_id \
        != event_id  # type: ignore[union-attr]
    assert builder(source="bank2").build("s", 2, pay_row(did, fen)).envelope.event_id \
        != event_id  # type: ignore[union-attr]


def test_the_same_row_twice_in_one_file_is_two_facts() -> None:
    b = builder()
    one, two = b.build("s", 2, pay_row("D-1", 138000)), b.build("s", 3, pay_row("D-1", 138000))
    assert one.envelope is not None and two.envelope is not None
    assert one.envelope.event_id != two.envelope.event_id
    assert two.envelope.recorded_at.ToDatetime() > one.envelope.recorded_at.ToDatetime()


# --- which reader reads a workbook ------------------------------------------------------


def _book(path: Path, far: tuple[int, int] | None = None, formula: bool = False) -> Path:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["公民身份号码", "死亡日期"])
    ws.append([ID, "=DATE(2024,2,1)" if formula else "2024-02-01"])
    if far is not None:
        ws.cell(row=far[0], column=far[1], value="x")
    book.save(path)
    return path


def test_only_plain_bounded_workbooks_go_to_calamine(tmp_path: Path) -> None:
    limits = Limits()
    assert _calamine_fits(_book(tmp_path / "plain.xlsx"), limits)
    assert not _calamine_fits(_book(tmp_path / "f.xlsx", formula=True), limits)
    # a cell far right would make calamine hold a box 16,384 cells wide: openpyxl streams
    assert not _calamine_fits(_book(tmp_path / "wide.xlsx", far=(3, 16384)), limits)
    assert not _calamine_fits(_book(tmp_path / "long.xlsx", far=(200_000, 1)), limits)
    with pytest.raises(TableError, match="1,048,576"):
        _calamine_fits(_book(tmp_path / "huge.xlsx", far=(1_048_576, 1)), limits)


def test_both_readers_give_the_same_rows(tmp_path: Path) -> None:
    path = _book(tmp_path / "wide.xlsx", far=(3, 16384))  # openpyxl; only 64 columns read
    mapping = load_mapping("deaths")
    wide = read_workbook(path, mapping, source="psb")
    plain = read_workbook(_book(tmp_path / "plain.xlsx"), mapping, source="psb")
    assert wide.accepted == plain.accepted == 0  # nothing sent: read_workbook only reads
    assert [e.person_died.date_of_death for e in wide.envelopes] == ["2024-02-01"]
    assert [e.person_died.person_id for e in plain.envelopes] == [ID]
    assert wide.envelopes[0].event_id == plain.envelopes[0].event_id  # same row, same fact
    assert wide.envelopes[0].person_died == plain.envelopes[0].person_died
    assert (wide.rejected, wide.skipped) == (0, 1)  # the far cell lies past the 64 columns read
    assert wide.adds_up and plain.adds_up and wide.read == len(wide.envelopes) == 1
