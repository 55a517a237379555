"""Spreadsheets through the real ingest gateway (broker and PostgreSQL): each built-in
mapping, the shapes bureaus' files take, idempotent re-imports, corrections, the error
workbook, and hostile files."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import random
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from openpyxl import Workbook, load_workbook
from test_ingest_gateway import ALL_TOKEN, consume_all, start_gateway, stop_gateway

from humiao.adapters.codec import envelope_from_bytes
from humiao.cli.ingest_cmd import open_stub
from humiao.config import KafkaSettings
from humiao.domain.events import Disbursement, EventRetracted
from humiao.domain.identity import mask_id
from humiao.tabular import Limits, TableError, import_workbook, load_mapping
from humiao.tabular.importer import ImportResult
from humiao.tabular.mapping import TableMapping
from strategies import random_citizen_id

pytestmark = pytest.mark.integration

KEY = b"test-import-key"
RNG = random.Random(16)
CHILD = random_citizen_id(RNG, "110105", dt.date(2012, 5, 17))
CHILD2 = random_citizen_id(RNG, "110105", dt.date(2013, 8, 1))
ADULT = random_citizen_id(RNG, "110105")
ADULT2 = random_citizen_id(RNG, "110105")
PAYMENT_HEADINGS = ["流水号", "儿童姓名", "儿童身份证号", "保障类别", "发放月份",
                    "发放金额（元）", "发放日期", "收款人身份证号", "行政区划代码"]


@dataclass
class Target:
    address: str
    pool: asyncpg.Pool
    kafka: KafkaSettings


@pytest.fixture
async def target(kafka_settings: KafkaSettings, database_url: str) -> AsyncIterator[Target]:
    server, port, deps = await start_gateway(kafka_settings, database_url)
    try:
        assert deps.pool is not None
        yield Target(f"127.0.0.1:{port}", deps.pool, kafka_settings)
    finally:
        await stop_gateway(server, deps)


async def run_import(target: Target, path: Path, mapping: TableMapping | str,
                     **options: Any) -> ImportResult:
    chosen = load_mapping(mapping) if isinstance(mapping, str) else mapping

    def go() -> ImportResult:
        channel, stub = open_stub(target.address)
        try:
            return import_workbook(path, chosen, stub, ALL_TOKEN, source="city", key=KEY,
                                   **{"progress": False, **options})
        finally:
            channel.close()

    result = await asyncio.to_thread(go)
    assert result.adds_up, result.render()
    return result


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]], merges: Sequence[str] = (),
               title: str = "Sheet1") -> Path:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = title
    for row in rows:
        ws.append(list(row))
    for cells in merges:
        ws.merge_cells(cells)
    book.save(path)
    return path


def wide(text: str) -> str:
    """Full-width digits, as some input methods type them."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def payment(did: str, amount: Any = "1380.00", child: str = CHILD, paid: Any = "2024-03-05",
            period: Any = "2024-03") -> list[Any]:
    return [did, "张小明", child, "散居孤儿", period, amount, paid, ADULT, "110105"]


async def kinds_ingested(target: Target) -> dict[str, str]:
    async with target.pool.acquire() as conn:
        rows = await conn.fetch("SELECT own_id AS event_id, kind FROM ingested_events")
    return {r["event_id"]: r["kind"] for r in rows}


# one small file per built-in mapping, with the headings a bureau's export has
BUILTIN_FILES: dict[str, tuple[str, list[list[Any]]]] = {
    "roster": ("childEnrolled", [
        ["姓名", "身份证号", "出生日期", "保障类别", "行政区划代码", "批准日期",
         "父亲身份证号", "父亲情况", "母亲身份证号", "母亲情况"],
        ["张小明", CHILD, "2012-05-17", "散居孤儿", "110105", "2023/1/10",
         ADULT, "死亡", ADULT2, "宣告失踪"],
        ["李小红", CHILD2, 20130801, "事实无人抚养儿童", "110105", dt.date(2023, 2, 1),
         ADULT, "服刑在押", None, None],
    ]),
    "payments": ("disbursement", [PAYMENT_HEADINGS, payment("D-1"), payment("D-2", child=CHILD2)]),
    "deaths": ("personDied", [["姓名", "公民身份号码", "死亡日期"],
                              ["王某", ADULT, "2024-02-01"], ["赵某", ADULT2, 45342]]),
    "custody": ("personStatusChanged", [
        ["姓名", "公民身份号码", "情形", "变动", "日期"],
        ["王某", ADULT, "服刑在押", "收监", "2023-06-01"],
        ["王某", ADULT, "服刑在押", "刑满释放", "2024-06-01"],
    ]),
    "adoptions": ("childAdopted", [["被收养人姓名", "被收养人身份证号", "收养登记日期"],
                                   ["张小明", CHILD, "2024年4月2日"]]),
    "schooling": ("schoolingExtension", [["学生姓名", "学生身份证号", "在校有效期至"],
                                         ["张小明", CHILD, "2031-07-31"]]),
    "guardians": ("guardianAppointed", [["儿童身份证号", "监护人证件号码", "生效日期"],
                                        [CHILD, ADULT2, "2023-01-10"]]),
    "exits": ("enrollmentEnded", [["身份证号", "保障类别", "退出日期", "退出原因"],
                                  [CHILD, "散居孤儿", "2024-04-30", "被收养"],
                                  [CHILD2, "事实无人抚养儿童", "2024-06-30", "县里自定代码X9"]]),
    "standards": ("allowanceStandardSet", [["行政区划代码", "保障类别", "执行月份", "月标准(元)"],
                                           ["110105", "散居孤儿", "2024-01", "1380"]]),
    "cycles": ("paymentCycleClosed", [["行政区划代码", "结算月份"], ["110105", "2024年3月"]]),
    "reversals": ("disbursementReversed", [["原流水号", "退回日期"], ["D-1", "2024-03-20"]]),
}


async def test_each_builtin_mapping_imports_and_reimports_as_duplicates(
        target: Target, tmp_path: Path) -> None:
    expected: dict[str, str] = {}
    for name, (kind, rows) in BUILTIN_FILES.items():
        path = write_xlsx(tmp_path / f"{name}.xlsx", rows)
        first = await run_import(target, path, name)
        assert (first.read, first.accepted, first.rejected) == (len(rows) - 1, len(rows) - 1, 0), \
            (name, first.errors)
        again = await run_import(target, path, name)
        assert (again.accepted, again.duplicates, again.retracted) == (0, len(rows) - 1, 0), name
        expected[name] = kind
    ingested = await kinds_ingested(target)
    for name, kind in expected.items():
        assert sum(1 for eid, k in ingested.items() if eid.startswith(f"{name}-") and k == kind) \
            == len(BUILTIN_FILES[name][1]) - 1
    assert all(CHILD not in eid and ADULT not in eid for eid in ingested)


async def test_a_bureau_shaped_payment_workbook(target: Target, tmp_path: Path) -> None:
    """Title row, merged cells, blank rows, totals and sign-off rows, full-width digits
    and spaces, Excel serial and real datetime cells: every fact lands as typed."""
    wide_child = wide(CHILD)
    rows = [
        ["2024年3月 基本生活费银行代发明细"],
        ["填报单位：某区民政局", None, None, None, None, None, None, "单位：元"],
        PAYMENT_HEADINGS,
        payment("D-100", amount="１，３８０．５０", child=wide_child, paid=45356),
        [None] * 9,
        payment("D-101", amount=1380.55, child=" ".join([CHILD[:6], CHILD[6:]]),
                paid=dt.datetime(2024, 3, 6, 9, 30), period=202403),
        [],
        payment("D-102", amount=1380, paid="20240307", period="2024年3月"),
        ["合计", None, None, None, None, 4141.05],
        ["制表人：张三", None, None, "审核人：李四"],
    ]
    path = write_xlsx(tmp_path / "pay.xlsx", rows, merges=["A1:I1", "A9:E9"])
    result = await run_import(target, path, "payments")
    assert (result.read, result.accepted, result.rejected, result.skipped) == (3, 3, 0, 4), \
        result.errors
    records = await asyncio.to_thread(consume_all, target.kafka, 3)
    bodies = {b.disbursement_id: b for b in
              (envelope_from_bytes(r.value).body for r in records)  # type: ignore[attr-defined]
              if isinstance(b, Disbursement)}
    assert {k: (b.amount_fen, b.paid_on.isoformat(), str(b.period), b.child_id)
            for k, b in bodies.items()} == {
        "city/D-100": (138050, "2024-03-05", "2024-03", CHILD),  # ids qualified by source
        "city/D-101": (138055, "2024-03-06", "2024-03", CHILD),
        "city/D-102": (138000, "2024-03-07", "2024-03", CHILD),
    }


async def test_roster_with_two_level_merged_headers(target: Target, tmp_path: Path) -> None:
    rows = [
        ["2024年 在册孤儿名册"],
        ["身份证号", "姓名", "出生日期", "保障类别", "行政区划代码", "批准日期",
         "父亲", None, "母亲", None],
        [None, None, None, None, None, None, "身份证号", "情况", "身份证号", "情况"],
        [CHILD, "张小明", "2012-05-17", "散居孤儿", "110105", "2023-01-10",
         ADULT, "死亡", ADULT2, "死亡"],
    ]
    path = write_xlsx(tmp_path / "roster.xlsx", rows,
                      merges=["A1:J1", "G2:H2", "I2:J2", "A2:A3", "B2:B3", "C2:C3"])
    result = await run_import(target, path, "roster")
    assert (result.accepted, result.rejected) == (1, 0), result.errors
    [record] = await asyncio.to_thread(consume_all, target.kafka, 1)
    body = envelope_from_bytes(record.value).body  # type: ignore[attr-defined]
    assert [(p.person_id, p.situation.name) for p in body.parents] == [  # type: ignore[union-attr]
        (ADULT, "DECEASED"), (ADULT2, "DECEASED")]


async def test_gbk_csv(target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                       ) -> None:
    path = tmp_path / "死亡名单.csv"
    with path.open("w", encoding="gbk", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["姓名", "公民身份号码", "死亡日期"])
        writer.writerow(["王某某", ADULT, "2024/2/1"])
        writer.writerow(["", "", ""])
        writer.writerow(["赵某某", f" {ADULT2} ", "45342"])
        writer.writerow(["合计：2人", "", ""])
    result = await run_import(target, path, "deaths", progress=True)
    assert (result.read, result.accepted, result.skipped) == (2, 2, 2)
    assert "死亡名单.csv" in capsys.readouterr().err  # the progress bar (on a terminal)


async def test_a_corrected_row_retracts_its_earlier_version(target: Target, tmp_path: Path
                                                           ) -> None:
    path = tmp_path / "pay.xlsx"
    write_xlsx(path, [PAYMENT_HEADINGS, payment("D-1"), payment("D-2"), payment("D-3")])
    first = await run_import(target, path, "payments")
    assert first.accepted == 3 and first.state_path is not None and first.state_path.exists()
    assert CHILD not in first.state_path.read_text() and "D-1" not in first.state_path.read_text()
    write_xlsx(path, [PAYMENT_HEADINGS, payment("D-1"), payment("D-2", amount="1390.00"),
                      payment("D-3")])
    second = await run_import(target, path, "payments")
    assert (second.accepted, second.duplicates, second.retracted) == (1, 2, 1)
    third = await run_import(target, path, "payments")  # nothing new: nothing retracted
    assert (third.accepted, third.duplicates, third.retracted) == (0, 3, 0)
    records = await asyncio.to_thread(consume_all, target.kafka, 5)
    envs = [envelope_from_bytes(r.value) for r in records]  # type: ignore[attr-defined]
    # a retraction is published to every partition (README, topics and routing)
    retractions = list({e.event_id: e.body for e in envs if isinstance(e.body, EventRetracted)
                        }.values())
    d2 = [e for e in envs
          if isinstance(e.body, Disbursement) and e.body.disbursement_id.endswith("/D-2")]
    assert len(d2) == 2
    old = next(e for e in d2 if e.body.amount_fen == 138000)  # type: ignore[union-attr]
    assert len(retractions) == 1
    assert retractions[0].retracted_event_id == old.event_id  # type: ignore[union-attr]


async def test_rejected_rows_go_to_an_error_workbook(target: Target, tmp_path: Path) -> None:
    bad_check = CHILD[:17] + ("0" if CHILD[17] != "0" else "1")
    rows = [
        PAYMENT_HEADINGS,
        payment("D-1"),
        payment("D-2", amount="12.345", paid="2024-02-30"),
        payment("D-3", child=bad_check),  # refused by the contract's check: that column
        payment(f"D-{wide(ADULT)}"),  # an ID number in a free field, in full-width digits
        payment("D-5", amount="=1380*2"),  # a formula is never evaluated
        payment("D-6", paid=None),
        payment("D-7"),
    ]
    path = write_xlsx(tmp_path / "pay.xlsx", rows, title="三月")
    result = await run_import(target, path, "payments")
    assert (result.read, result.accepted, result.rejected) == (7, 2, 5)
    where = {(e.row, e.column) for e in result.errors}
    assert where == {(3, "发放金额（元）"), (3, "发放日期"), (4, "儿童身份证号"), (5, "流水号"),
                     (6, "发放金额（元）"), (7, "发放日期")}
    assert all(e.sheet == "三月" for e in result.errors)
    assert result.error_book == tmp_path / "pay.errors.xlsx"
    book = load_workbook(result.error_book, read_only=True)
    try:
        ws = book["三月"]
        got = [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        book.close()
    assert got[0] == [*PAYMENT_HEADINGS, "错误原因", "原工作表", "原行号"]
    assert [r[-1] for r in got[1:]] == [3, 4, 5, 6, 7]
    text = repr(got)
    assert CHILD not in text and ADULT not in text and bad_check not in text
    assert wide(ADULT) not in text and wide(ADULT)[-8:] not in text
    assert got[1][2] == mask_id(CHILD)
    assert "列「发放金额（元）」" in got[1][9] and "列「发放日期」" in got[1][9]
    assert "列「儿童身份证号」：身份证号校验位不符" in got[2][9]  # the gateway's reason, glossed
    assert got[4][5] == "=1380*2"  # written back as text, not a formula
    assert "公式" in got[4][9]
    # the sender fixes the rows and sends the file again: no list of errors is left behind
    write_xlsx(path, [PAYMENT_HEADINGS, payment("D-1"), payment("D-2"), payment("D-7")])
    fixed = await run_import(target, path, "payments")
    assert (fixed.accepted, fixed.duplicates, fixed.rejected) == (1, 2, 0)
    assert fixed.error_book is None and not (tmp_path / "pay.errors.xlsx").exists()


async def test_hostile_files_are_refused_whole_with_a_reason(target: Target, tmp_path: Path
                                                            ) -> None:
    path = write_xlsx(tmp_path / "pay.xlsx", [PAYMENT_HEADINGS] + [payment(f"D-{i}")
                                                                  for i in range(20)])
    with pytest.raises(TableError, match="行数超过上限"):
        await run_import(target, path, "payments", limits=Limits(max_rows=10))
    with pytest.raises(TableError, match="文件过大"):
        await run_import(target, path, "payments", limits=Limits(max_file_bytes=1000))
    # a zip whose directory claims 3 GB for one entry: refused before anything is unpacked
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
    data = bytearray(bomb.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 24:central + 28] = (3 << 30).to_bytes(4, "little")
    bomb.write_bytes(bytes(data))
    with pytest.raises(TableError, match=r"解压后声称 3,221,\d{3},\d{3} 字节，上限 268,435,456"):
        await run_import(target, bomb, "payments")  # the default limits
    (tmp_path / "fake.xlsx").write_bytes(b"not a zip at all" * 10)
    with pytest.raises(TableError, match="zip"):
        await run_import(target, tmp_path / "fake.xlsx", "payments")
    other = write_xlsx(tmp_path / "other.xlsx", [["流水号", "金额"], ["D-1", "1"]])
    with pytest.raises(TableError, match="缺少列：儿童身份证号"):
        await run_import(target, other, "payments")
    long_cell = write_xlsx(tmp_path / "long.xlsx",
                           [PAYMENT_HEADINGS, payment("D-" + "9" * 2500)])
    result = await run_import(target, long_cell, "payments")
    assert result.rejected == 1 and "超过" in result.errors[0].reason
    assert await kinds_ingested(target) == {}


async def test_a_sheet_claiming_a_million_rows_is_refused_before_sending(
        target: Target, tmp_path: Path) -> None:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(PAYMENT_HEADINGS)
    ws.append(payment("D-1"))
    ws.cell(row=1_000_000, column=1, value="x")  # one far cell: the sheet claims 1M rows
    book.save(tmp_path / "huge.xlsx")
    with pytest.raises(TableError, match="1,000,000"):
        await run_import(target, tmp_path / "huge.xlsx", "payments")
    assert await kinds_ingested(target) == {}


async def test_the_command_line_routes_spreadsheets(target: Target, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from humiao.cli.main import main

    path = write_xlsx(tmp_path / "deaths.xlsx", BUILTIN_FILES["deaths"][1])
    argv = ["ingest", str(path), "--mapping", "deaths", "--target", target.address,
            "--token", ALL_TOKEN, "--source", "city"]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "接受 2" in out and "2 accepted" in out
    assert await asyncio.to_thread(main, argv[:2] + argv[4:]) == 2  # no --mapping
    assert "--mapping" in capsys.readouterr().err
    # a gateway elsewhere than this machine with the development import key: a warning
    elsewhere = [*argv[:5], target.address.replace("127.0.0.1", "0.0.0.0"), *argv[6:]]
    assert await asyncio.to_thread(main, elsewhere) == 0
    assert "HUMIAO_IMPORT_KEY" in capsys.readouterr().err
    monkeypatch.setenv("HUMIAO_IMPORT_KEY", "a-key-of-the-bureau")
    assert await asyncio.to_thread(main, elsewhere) == 0
    captured = capsys.readouterr()
    assert "HUMIAO_IMPORT_KEY" not in captured.err and "接受 2" in captured.out  # new key


async def test_several_sheets_and_a_key_twice_in_one_file(target: Target, tmp_path: Path
                                                         ) -> None:
    """One sheet per district is read sheet by sheet; a sheet of something else is named,
    not skipped silently; a 流水号 twice in one file keeps the later row, retracting the
    earlier."""
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "东城区"
    for row in (PAYMENT_HEADINGS, payment("D-1"), payment("D-2")):
        first.append(row)
    second = book.create_sheet("西城区")
    for row in (PAYMENT_HEADINGS, payment("D-3", child=CHILD2),
                payment("D-2", amount="1390.00")):  # D-2 again, corrected
        second.append(row)
    notes = book.create_sheet("说明")
    notes.append(["本表由银行系统导出"])
    book.save(tmp_path / "pay.xlsx")
    result = await run_import(target, tmp_path / "pay.xlsx", "payments")
    assert result.sheets == ["东城区", "西城区"] and list(result.skipped_sheets) == ["说明"]
    assert "说明" in result.render() and "缺少列" in result.skipped_sheets["说明"]
    assert (result.read, result.accepted, result.retracted) == (4, 4, 1)
    again = await run_import(target, tmp_path / "pay.xlsx", "payments")
    assert (again.accepted, again.duplicates, again.retracted) == (0, 4, 0)  # all sent before
