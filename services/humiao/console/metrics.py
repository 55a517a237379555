"""The console's Prometheus series: requests by route template (never the URL, so no
value a person typed reaches a label) and status, and their time."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter("humiao_console_requests_total",
                   "Console HTTP requests by route template and status", ["route", "status"])
LATENCY = Histogram("humiao_console_request_seconds", "Console request time by route template",
                    ["route"], buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5))


def observe(route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, str(status)).inc()
    LATENCY.labels(route).observe(seconds)
