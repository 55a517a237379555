"""Pure helpers of the benchmark: percentiles, quantiles of Prometheus histograms,
size labels, and the table printed at the end. No I/O here (tested in tests/unit)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks
    (numpy's default). Raises ValueError on an empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be within 0..100, not {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    lo = math.floor(rank)
    hi = math.ceil(rank)
    if lo == hi:
        return float(ordered[lo])
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def histogram_quantile(buckets: Mapping[float, float], q: float) -> float:
    """Upper bound of the bucket holding the q-quantile (0..1) of a cumulative
    Prometheus histogram {le: count}; inf when it falls in the +Inf bucket, nan if empty.
    An upper bound, not an interpolation: the buckets are too coarse to pretend more."""
    items = sorted(buckets.items())
    if not items or items[-1][1] <= 0:
        return math.nan
    total = items[-1][1]
    for le, count in items:
        if count >= q * total:
            return le
    return math.inf


def histogram_delta(after: Mapping[float, float], before: Mapping[float, float]
                    ) -> dict[float, float]:
    """Observations between two scrapes of the same cumulative histogram."""
    return {le: n - before.get(le, 0.0) for le, n in after.items()}


def size_label(n: int) -> str:
    """10000 -> '10k', 1000000 -> '1m', 2500 -> '2.5k' (keys of the JSON results)."""
    for div, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= div:
            value = n / div
            text = f"{value:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return str(n)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b rounded to 3 places; None when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


@dataclass(frozen=True)
class Row:
    """One line of the table: what, the figure, its target, whether it is met."""

    name: str
    value: str
    target: str = ""
    met: bool | None = None


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.1f} ms"


def fmt_mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MB"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_table(rows: Iterable[Row], title: str = "") -> list[str]:
    """Fixed-width lines; the last column says 'ok', 'MISSED' or nothing."""
    rows = list(rows)
    w_name = max([len(r.name) for r in rows] + [6])
    w_value = max([len(r.value) for r in rows] + [5])
    w_target = max([len(r.target) for r in rows] + [6])
    lines = []
    if title:
        lines.append(title)
    header = f"{'figure':<{w_name}}  {'value':>{w_value}}  {'target':<{w_target}}  met"
    lines.append(header)
    lines.append("-" * len(header))
    for r in rows:
        met = "" if r.met is None else ("ok" if r.met else "MISSED")
        lines.append(f"{r.name:<{w_name}}  {r.value:>{w_value}}  {r.target:<{w_target}}  {met}"
                     .rstrip())
    return lines


def _met(value: Any, test: Callable[[float], bool]) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return test(float(value))


def results_rows(res: Mapping[str, Any]) -> list[Row]:
    """The table of a results document (the flat keys of bench-results.json)."""
    g = res.get
    rows = [
        Row("raw kafka-python consume", fmt_rate(g("raw_consume_records_per_s")),
            "the limit (~175k/s)"),
        Row("  decode+validate only", fmt_rate(g("decode_ceiling_records_per_s")),
            "a Python verifier's ceiling"),
        Row("verifier, 1 process", fmt_rate(g("verifier_events_per_s"))),
        # The one-process target (0.25 of raw) was retired: ~14k events/s a process serves
        # a whole country's ~0.55M payments a month (docs/benchmarks.md).
        Row("  ratio to raw", fmt_ratio(g("verifier_to_raw_ratio")), "(for reference)"),
        Row("verifier, 2 processes", fmt_rate(g("verifier_two_process_events_per_s"))),
        Row("  ratio two/one", fmt_ratio(g("two_to_one_ratio")), "> 1",
            _met(g("two_to_one_ratio"), lambda v: v > 1)),
        Row("replay from offset 0", fmt_rate(g("replay_events_per_s"))),
        Row("ingest SubmitBatch", fmt_rate(g("ingest_batch_events_per_s"))),
        Row("ingest file import", fmt_rate(g("ingest_file_events_per_s"))),
        Row("payment workbook import", fmt_rate(g("import_workbook_rows_per_s"))),
        Row("  same events as JSON lines", fmt_rate(g("import_jsonl_events_per_s"))),
        Row("  ratio workbook/JSON lines", fmt_ratio(g("import_workbook_to_jsonl_ratio")),
            ">= 0.5", _met(g("import_workbook_to_jsonl_ratio"), lambda v: v >= 0.5)),
    ]
    rows += [
        Row("latency p50 (accept->alert)", fmt_ms(g("latency_p50_ms"))),
        Row("latency p95", fmt_ms(g("latency_p95_ms"))),
        Row("latency p99", fmt_ms(g("latency_p99_ms")), "< 500 ms",
            _met(g("latency_p99_ms"), lambda v: v < 500)),
        Row("console queue page p95", fmt_ms(g("console_queue_p95_ms")), "< 300 ms",
            _met(g("console_queue_p95_ms"), lambda v: v < 300)),
    ]
    memory = g("peak_rss_mb") or {}
    for label, mb in memory.items():
        rows.append(Row(f"verifier peak RSS, {label} children", fmt_mb(mb)))
    growth = g("memory_growth_ratio")
    if growth is not None:
        rows.append(Row("  growth, last two sizes", fmt_ratio(growth), "<= 2",
                        _met(growth, lambda v: v <= 2)))
    return rows
