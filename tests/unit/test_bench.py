"""The benchmark's pure parts: percentiles, histogram quantiles, the table, the profile
summary, its command line, and the workloads it produces (valid, deterministic)."""

from __future__ import annotations

import math

import pytest

from humiao.adapters.codec import envelope_from_bytes
from humiao.domain.events import ChildEnrolled
from humiao_dev.bench.cli import parse_args
from humiao_dev.bench.context import env_pairs
from humiao_dev.bench.profile import summarise_collapsed
from humiao_dev.bench.report import (
    Row,
    histogram_delta,
    histogram_quantile,
    percentile,
    ratio,
    render_table,
    results_rows,
    size_label,
)
from humiao_dev.bench.workload import city_of_size, encode, memory_history, memory_records


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_percentile_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1, 2], 101)


def test_histogram_quantile_gives_the_bucket_upper_bound() -> None:
    buckets = {0.005: 1.0, 0.01: 3.0, 0.5: 99.0, math.inf: 100.0}
    assert histogram_quantile(buckets, 0.01) == 0.005
    assert histogram_quantile(buckets, 0.5) == 0.5
    assert histogram_quantile(buckets, 0.99) == 0.5
    assert histogram_quantile(buckets, 1.0) == math.inf
    assert math.isnan(histogram_quantile({0.1: 0.0, math.inf: 0.0}, 0.5))


def test_histogram_delta_subtracts_an_earlier_scrape() -> None:
    after = {0.1: 10.0, math.inf: 12.0}
    before = {0.1: 4.0, math.inf: 4.0}
    assert histogram_delta(after, before) == {0.1: 6.0, math.inf: 8.0}


def test_size_labels_and_ratios() -> None:
    assert [size_label(n) for n in (999, 1000, 2500, 10_000, 100_000, 1_000_000)] == [
        "999", "1k", "2.5k", "10k", "100k", "1m"]
    assert ratio(50, 200) == 0.25
    assert ratio(1, 0) is None
    assert ratio(None, 3) is None


def test_table_marks_targets_met_and_missed() -> None:
    doc = {
        "raw_consume_records_per_s": 150_000,
        "verifier_events_per_s": 7_500,
        "verifier_to_raw_ratio": 0.05,
        "two_to_one_ratio": 1.4,
        "latency_p99_ms": 320.0,
        "peak_rss_mb": {"100k": 200.0, "1m": 260.0},
        "memory_growth_ratio": 1.3,
    }
    lines = render_table(results_rows(doc), title="t")
    text = "\n".join(lines)

    def line(name: str) -> str:
        return next(x for x in lines[3:] if x.strip().startswith(name))

    assert "150,000/s" in line("raw kafka-python consume")
    # the retired one-process target is shown for reference, with no verdict
    assert line("ratio to raw").endswith("(for reference)")
    assert "MISSED" not in text
    assert line("ratio two/one").endswith("ok")
    assert line("latency p99").endswith("ok")
    assert line("growth, last two sizes").endswith("ok")
    assert "verifier peak RSS, 1m children" in text
    # Figures not measured show a dash and no verdict.
    assert line("ingest SubmitBatch").split()[-1] == "-"


def test_table_columns_line_up() -> None:
    lines = render_table([Row("a", "1"), Row("longer name", "12,345/s", "> 1", False)])
    assert lines[0].startswith("figure")
    # Values are right-aligned in one column: they end at the same position.
    assert len(lines[2].rstrip()) == lines[3].index("12,345/s") + len("12,345/s")
    assert lines[-1].endswith("MISSED")


def test_profile_summary_counts_own_and_total_samples() -> None:
    collapsed = [
        "thread (0x1);main (humiao/a.py:1);slow (humiao/b.py:2) 30",
        "thread (0x1);main (humiao/a.py:1);fast (humiao/c.py:3) 10",
        "thread (0x1);main (humiao/a.py:1) 10",
        "garbage line",
        "",
    ]
    s = summarise_collapsed(collapsed)
    assert s.samples == 50
    assert s.own[0].frame == "slow (humiao/b.py:2)"
    assert s.own[0].share == pytest.approx(0.6)
    total = {e.frame: e.samples for e in s.total}
    assert total["main (humiao/a.py:1)"] == 50
    assert total["fast (humiao/c.py:3)"] == 10
    assert any("slow" in line for line in s.lines())


def test_command_line_defaults_are_the_full_run() -> None:
    full = parse_args([])
    assert full.events == 1_000_000
    assert full.memory_sizes == [10_000, 100_000, 1_000_000]
    assert full.steps == ["raw", "verifier", "two", "ingest", "latency", "memory", "tabular",
                          "console"]
    assert full.ingest_events == 100_000  # also the rows of the payment workbook (step 7)
    quick = parse_args(["--quick"])
    assert quick.events == 100_000
    assert max(quick.memory_sizes) == 100_000
    assert parse_args(["--quick", "--events", "5000"]).events == 5000
    with pytest.raises(SystemExit):
        parse_args(["--only", "raw,nonsense"])


def test_env_pairs() -> None:
    assert env_pairs(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        env_pairs(["novalue"])


@pytest.mark.parametrize("guardians", [True, False])
def test_memory_records_are_the_reference_history_encoded(guardians: bool) -> None:
    fast = list(memory_records(700, b"key", guardians=guardians))
    slow = list(encode(memory_history(700, guardians=guardians), b"key"))
    assert fast == slow
    assert len(fast) == 6 + 700 * (3 if guardians else 2)


def test_memory_history_is_valid_with_distinct_children_and_persons() -> None:
    envelopes = [envelope_from_bytes(v) for _, v, _ in memory_records(3000, b"key")]
    enrolled = [e.body for e in envelopes if isinstance(e.body, ChildEnrolled)]
    assert len({b.child_id for b in enrolled}) == 3000
    parents = [p.person_id for b in enrolled for p in b.parents]
    assert len(set(parents)) == len(parents)
    assert len({e.event_id for e in envelopes}) == len(envelopes)


def test_city_of_size_reaches_the_asked_number_of_events() -> None:
    sized = city_of_size(3000, months=12)
    assert len(sized.envelopes) >= 3000
    assert sized.envelopes[-len(sized.city.corrections):] == list(sized.city.corrections) \
        or not sized.city.corrections
    assert len(sized.envelopes) < 3000 * 1.3  # sized, not wildly over


def test_the_workbook_ratio_is_in_the_table() -> None:
    rows = {r.name.strip(): r for r in results_rows(
        {"import_workbook_rows_per_s": 6000, "import_jsonl_events_per_s": 10000,
         "import_workbook_to_jsonl_ratio": 0.6})}
    assert rows["ratio workbook/JSON lines"].met is True
    assert rows["payment workbook import"].value == "6,000/s"
    low = {r.name.strip(): r for r in results_rows({"import_workbook_to_jsonl_ratio": 0.4})}
    assert low["ratio workbook/JSON lines"].met is False
