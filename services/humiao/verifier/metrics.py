"""Every metric of the verifier, defined in one place and driven by observer hooks.

Business code calls `VerifierMetrics` methods with plain values; only this module knows
prometheus-client. Labels are low-cardinality only: event kind, alert code, dead-letter
reason, partition number. Never a child key, alert id or ID number.
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from humiao.observability import PoolGauge, SizedPool

EVENTS = Counter(
    "humiao_verifier_events_total", "Facts processed, by body kind (duplicates included)", ["kind"]
)
BATCH_RECORDS = Histogram(
    "humiao_verifier_batch_records",
    "Records per committed micro-batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 50000, 100000),
)
BATCH_SECONDS = Histogram(
    "humiao_verifier_batch_duration_seconds",
    "Wall time of one micro-batch: decode, one transaction, commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CHILDREN_EVALUATED = Counter(
    "humiao_verifier_children_evaluated_total",
    "Child timelines re-evaluated: their new months only (new payments and cycle closes"
    " added to the held timeline) or every month (the facts indexed again)",
    ["months"],
)
BATCH_FAILURES = Counter(
    "humiao_verifier_batch_failures_total",
    "Micro-batches rolled back and retried, by cause",
    ["cause"],
)
ALERTS_RAISED = Counter(
    "humiao_verifier_alerts_raised_total", "Alerts raised for the first time", ["code"]
)
ALERTS_WITHDRAWN = Counter(
    "humiao_verifier_alerts_withdrawn_total", "Alerts withdrawn because facts changed", ["code"]
)
ALERTS_REOPENED = Counter(
    "humiao_verifier_alerts_reopened_total", "Withdrawn alerts whose basis returned", ["code"]
)
AMOUNT_AT_RISK = Counter(
    "humiao_verifier_amount_at_risk_fen_total",
    "Fen newly at risk: amount of each alert when raised or reopened",
    ["code"],
)
CONSUMER_LAG = Gauge(
    "humiao_verifier_consumer_lag_records",
    "Records on the events topic not yet committed, per partition this process owns",
    ["partition"],
)
# From the Kafka record timestamp (ingest acceptance) to the commit of the transaction
# holding the verdict. Sub-10 ms is the floor of one batch on an idle stack; seconds
# mean batching or load; the 60 s top bucket catches replays and restarts (older
# records land in +Inf, which is what a replay looks like).
END_TO_END = Histogram(
    "humiao_verifier_end_to_end_latency_seconds",
    "Ingest acceptance (record timestamp) to committed verdict",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
_DAY = 86_400.0
# How late facts arrive: recordedAt minus the date the fact took effect. Most sources
# record within days; deaths and releases notified months or years later are what the
# re-checks exist for, so the buckets run from an hour to five years.
FACT_LATENESS = Histogram(
    "humiao_verifier_fact_lateness_seconds",
    "recordedAt minus the date the fact took effect (0 if recorded before it)",
    ["kind"],
    buckets=(
        3600, _DAY, 7 * _DAY, 30 * _DAY, 90 * _DAY, 180 * _DAY,
        365 * _DAY, 2 * 365 * _DAY, 5 * 365 * _DAY,
    ),
)
DEADLETTERS = Counter(
    "humiao_verifier_deadletters_total", "Records sent to the dead-letter topic", ["reason"]
)
OUTBOX_BACKLOG = Gauge(
    "humiao_verifier_outbox_backlog", "Alert versions written but not yet published"
)
OUTBOX_PUBLISHED = Counter(
    "humiao_verifier_outbox_published_total", "Alert versions published to the alerts topic"
)
DB_POOL = PoolGauge("verifier")


def observe_many(histogram: Histogram, values: Iterable[float]) -> None:
    """Observe many values at once: counts per bucket, then one increment per bucket.

    A replayed batch brings tens of thousands of observations; one `observe` each costs
    more than the rest of the metrics together. Uses prometheus-client's bucket counters
    when present (they are stable across its versions), else falls back to `observe`.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for v in values:
            histogram.observe(v)
        return
    counts = [0] * len(bounds)
    acc = 0.0
    for v in values:
        counts[bisect.bisect_left(bounds, v)] += 1
        acc += v
    for i, n in enumerate(counts):
        if n:
            buckets[i].inc(n)
    total.inc(acc)


class VerifierMetrics:
    """The hooks the verifier calls; each turns plain values into metric updates."""

    def batch_committed(
        self,
        records: int,
        seconds: float,
        kinds: Mapping[str, int],
        timestamps_ms: Iterable[int],
        children: Mapping[str, int],
    ) -> None:
        """`children`: children re-evaluated, by "new" (months) or "all"."""
        BATCH_RECORDS.observe(records)
        BATCH_SECONDS.observe(seconds)
        for months, n in children.items():
            CHILDREN_EVALUATED.labels(months).inc(n)
        for kind, n in kinds.items():
            EVENTS.labels(kind).inc(n)
        now_ms = time.time() * 1000.0
        observe_many(END_TO_END, [max(0.0, (now_ms - ts) / 1000.0) for ts in timestamps_ms])

    def facts_arrived(self, lateness: Iterable[tuple[str, float]]) -> None:
        by_kind: dict[str, list[float]] = {}
        for kind, seconds in lateness:
            by_kind.setdefault(kind, []).append(max(0.0, seconds))
        for kind, values in by_kind.items():
            observe_many(FACT_LATENESS.labels(kind), values)

    def batch_failed(self, cause: str) -> None:
        BATCH_FAILURES.labels(cause).inc()

    def alert_raised(self, code: str, amount_fen: int) -> None:
        ALERTS_RAISED.labels(code).inc()
        AMOUNT_AT_RISK.labels(code).inc(max(0, amount_fen))

    def alert_withdrawn(self, code: str) -> None:
        ALERTS_WITHDRAWN.labels(code).inc()

    def alert_reopened(self, code: str, amount_fen: int) -> None:
        ALERTS_REOPENED.labels(code).inc()
        AMOUNT_AT_RISK.labels(code).inc(max(0, amount_fen))

    def alerts_changed(
        self, notes: Iterable[tuple[str, str, int, Mapping[str, Any] | None]]
    ) -> None:
        """Transitions of a committed batch: (code, status, amount at risk, old row)."""
        for code, status, amount, old in notes:
            if old is None:
                self.alert_raised(code, amount)
            elif status == "WITHDRAWN" and old["status"] != "WITHDRAWN":
                self.alert_withdrawn(code)
            elif status == "REOPENED" and old["status"] != "REOPENED":
                self.alert_reopened(code, amount)

    def lag(self, partition: int, records: int) -> None:
        CONSUMER_LAG.labels(str(partition)).set(max(0, records))

    def forget_partition(self, partition: int) -> None:
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(str(partition))

    def deadletter(self, reason: str) -> None:
        DEADLETTERS.labels(reason).inc()

    def outbox(self, backlog: int | None = None, published: int = 0) -> None:
        if backlog is not None:
            OUTBOX_BACKLOG.set(backlog)
        if published:
            OUTBOX_PUBLISHED.inc(published)

    def watch_pool(self, pool: SizedPool) -> None:
        DB_POOL.track(pool)
