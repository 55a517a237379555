"""The console's pure parts: money and filter parsing, the timeline picture, the ledger's
cells, sessions. (Routes are tested through the real desk in tests/console.)"""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humiao.api.desk.v1 import desk_pb2
from humiao.console import export, picture
from humiao.console.actions import yuan_to_fen
from humiao.console.filters import BadFilter, QueueQuery
from humiao.console.i18n import duration, yuan
from humiao.console.sessions import SessionStore


@given(st.integers(min_value=0, max_value=10**13))
def test_yuan_and_back_is_the_same_fen(fen: int) -> None:
    assert yuan_to_fen(yuan(fen)) == fen


def test_yuan_reads_as_staff_write_it() -> None:
    assert yuan(123456789) == "1,234,567.89" and yuan(-5) == "-0.05"
    assert [yuan_to_fen(t) for t in ("1,200", "1200.5", "0.07", "")] == [120000, 120050, 7, 0]
    for bad in ("1.234", "-3", "1e3", "¥5", "12345678901234"):
        with pytest.raises(ValueError):
            yuan_to_fen(bad)
    assert duration(59, "zh") == "0 分钟" and duration(3 * 86400, "en") == "3 d"


def test_a_queue_url_round_trips_and_names_the_field_at_fault() -> None:
    params = {"region": ["110105", "110106"], "code": ["NOT_ENROLLED"], "from": ["2024-01"],
              "to": ["2024-06"], "sort": ["amount"], "asc": ["1"], "size": ["100"]}
    query = QueueQuery.parse(params)
    again = QueueQuery.parse({k: [v for n, v in query.params() if n == k]
                              for k in {n for n, _ in query.params()}})
    assert again == query
    request = query.list_request("Li")
    assert list(request.filter.regions) == ["110105", "110106"] and request.page_size == 100
    assert QueueQuery.parse({"mine": ["1"]}).desk_filter("Li").assignee == "Li"
    for params, field in (({"region": ["11010"]}, "region"), ({"status": ["GONE"]}, "status"),
                          ({"child": ["110105201203042904"]}, "child"),
                          ({"assignee": ["11010520120304290X"]}, "assignee"),
                          ({"page": ["x" * 600]}, "page"), ({"region": ["1"] * 101}, "region")):
        with pytest.raises(BadFilter, match=field):
            QueueQuery.parse(params)


def _entry(kind: str, date: str, relation: str = "CHILD", **body: object) -> desk_pb2.TimelineEntry:
    entry = desk_pb2.TimelineEntry(valid_date=date, kind=kind, relation=relation)
    if kind == "childEnrolled":
        entry.event.child_enrolled.birth_date = str(body["born"])
    if kind == "disbursement":
        entry.event.disbursement.period = str(body["period"])
        entry.event.disbursement.disbursement_id = "D-1"
        entry.verdict = body["verdict"]  # type: ignore[assignment]
    return entry


def test_the_picture_draws_paid_flagged_and_unpaid_enrolled_months() -> None:
    timeline = desk_pb2.GetChildTimelineResponse(entries=[
        _entry("childEnrolled", "2024-01-10", born="2010-05-01"),
        _entry("disbursement", "2024-02-05", period="2024-02", verdict=desk_pb2.VERIFIED),
        _entry("personDied", "2024-03-15"),
        _entry("disbursement", "2024-04-05", period="2024-04", verdict=desk_pb2.FLAGGED),
    ])
    drawn = picture.draw(timeline, "2024-04")
    states = {c.month: c.state for c in drawn.cells}
    assert states == {"2024-01": "due", "2024-02": "paid", "2024-04": "flagged"}
    assert [m.kind for m in drawn.markers] == ["enrolled", "died"]
    assert drawn.months[0] == "2024-01" and drawn.focus_x is not None


def test_the_ledger_quotes_what_a_spreadsheet_would_run() -> None:
    alert = desk_pb2.Alert(alert_id="A1", assignee="=HYPERLINK(\"http://x\")",
                           child_id="110105***********X", amount_at_risk_fen=120050)
    rows = list(csv.reader(io.StringIO(export.to_csv([alert], "zh").decode("utf-8-sig"))))
    assert rows[1][9].startswith("'=") and rows[1][7] == "1,200.50"


def test_sessions_end_when_idle_and_the_oldest_go_first() -> None:
    store = SessionStore(idle_seconds=10, max_sessions=2)
    clock = [0.0]
    store._now = lambda: clock[0]  # type: ignore[method-assign]
    first = store.create("t1", "A", "viewer", ("110105",), False)
    assert store.get(first.sid) is first
    clock[0] = 11.0
    assert store.get(first.sid) is None
    a = store.create("t2", "B", "viewer", (), True)
    b = store.create("t3", "C", "viewer", (), True)
    c = store.create("t4", "D", "viewer", (), True)
    assert store.get(a.sid) is None
    assert store.get(b.sid) is b and store.get(c.sid) is c
    assert store.get("x" * 100) is None and not b.csrf_ok("") and b.csrf_ok(b.csrf)


def test_a_schooling_extension_keeps_the_band_open_past_the_18th_birthday() -> None:
    extension = desk_pb2.TimelineEntry(valid_date="2028-04-01", kind="schoolingExtension",
                                       relation="CHILD")
    extension.event.schooling_extension.valid_until = "2028-08-31"
    timeline = desk_pb2.GetChildTimelineResponse(entries=[
        _entry("childEnrolled", "2027-10-10", born="2010-05-01"), extension])
    due = [c.month for c in picture.draw(timeline, "2028-09").cells if c.state == "due"]
    assert due[0] == "2027-10" and due[-1] == "2028-08"  # 18 in 2028-05, extended to August
