"""Every metric of the ingest gateway, in one place; the servicer only calls the hooks.

Labels are small fixed sets (event kinds, outcomes, rejection reasons, method names,
status codes): never an ID, a source-provided value or anything per child.
"""

from __future__ import annotations

import enum

from prometheus_client import Counter, Histogram

from humiao.domain.events import ALL_KINDS
from humiao.observability import CallMetrics, PoolGauge


class Rejection(enum.StrEnum):
    """Why an event was not accepted (the `reason` label). A replay is not a rejection:
    duplicates are answered DUPLICATE and counted by the events `outcome` label only."""

    INVALID_FIELD = "invalid_field"
    SOURCE_MISMATCH = "source_mismatch"
    REGION_NOT_ALLOWED = "region_not_allowed"
    KIND_NOT_ALLOWED = "kind_not_allowed"
    CORRECTION_NOT_OWNED = "correction_not_owned"
    ENROLLMENT_CONFLICT = "enrollment_conflict"


EVENTS = Counter(
    "humiao_ingest_events_total",
    "Events answered by the ingest gateway, by body kind and outcome",
    ["kind", "outcome"],
)
REJECTIONS = Counter(
    "humiao_ingest_rejections_total",
    "Events rejected, by reason (duplicates are not rejections)",
    ["reason"],
)
# acks=all on loopback takes ~1-20 ms for a batch; a slow or failing broker shows up
# in the upper buckets, up to the producer's delivery timeout.
PUBLISH_SECONDS = Histogram(
    "humiao_ingest_publish_seconds",
    "Time to publish one batch to Kafka until every record is acknowledged (acks=all)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BATCH_EVENTS = Histogram(
    "humiao_ingest_batch_events",
    "Events per SubmitBatch call (or per processed chunk of a stream)",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
UNAVAILABLE = Counter(
    "humiao_ingest_publish_failures_total",
    "Calls answered UNAVAILABLE because Kafka did not acknowledge a publish",
)
#: SubmitBatch / SubmitStream by status code; decorates the servicer methods.
CALLS = CallMetrics("ingest", "ingest")
#: Connections of the PostgreSQL pool in use, read at scrape time.
DB_POOL = PoolGauge("ingest")

_KNOWN_KINDS = ALL_KINDS


class IngestMetrics:
    """The observer the servicer reports to."""

    def outcome(self, kind: str | None, outcome: str, count: int = 1) -> None:
        label = kind if kind in _KNOWN_KINDS else "unknown"
        EVENTS.labels(kind=label, outcome=outcome).inc(count)

    def rejected(self, reason: Rejection) -> None:
        REJECTIONS.labels(reason=reason.value).inc()

    def published(self, seconds: float) -> None:
        PUBLISH_SECONDS.observe(seconds)

    def batch(self, size: int) -> None:
        BATCH_EVENTS.observe(size)

    def publish_failed(self) -> None:
        UNAVAILABLE.inc()
