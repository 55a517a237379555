"""The notifier's metrics, defined in one place; the only label is the receiver's name
(from the routes file, checked not to look like an ID number)."""

from __future__ import annotations

import datetime as dt

import prometheus_client as prom


class NotifierMetrics:
    def __init__(self, registry: prom.CollectorRegistry | None = None) -> None:
        reg = registry or prom.REGISTRY
        self.versions = prom.Counter(
            "humiao_notifier_versions_total",
            "Alert versions consumed from the alerts topic", registry=reg)
        self.undecodable = prom.Counter(
            "humiao_notifier_undecodable_total",
            "Records on the alerts topic that are not a valid alert version (dead-lettered)",
            registry=reg)
        self.sent = prom.Counter(
            "humiao_notifier_sent_total", "Messages a receiver accepted", ["receiver"],
            registry=reg)
        self.failed = prom.Counter(
            "humiao_notifier_failed_total",
            "Send attempts that failed (the message stays queued and is retried)",
            ["receiver"], registry=reg)
        self.retried = prom.Counter(
            "humiao_notifier_retried_total", "Send attempts that were retries", ["receiver"],
            registry=reg)
        self.rate_limited = prom.Counter(
            "humiao_notifier_rate_limited_total",
            "Times a message waited for the receiver's rate limit or a slow-down answer",
            ["receiver"], registry=reg)
        self.queued = prom.Gauge(
            "humiao_notifier_queued", "Messages queued, not yet sent", ["receiver"],
            registry=reg)
        self.oldest_unsent = prom.Gauge(
            "humiao_notifier_oldest_unsent_age_seconds",
            "Age of the oldest message not yet sent (0: none)", ["receiver"], registry=reg)

    def know(self, receivers: list[str]) -> None:
        """Export every receiver's series from the start (at 0), so rates and alert rules
        see a receiver before its first failure."""
        for name in receivers:
            for family in (self.sent, self.failed, self.retried, self.rate_limited):
                family.labels(name)
            self.queued.labels(name)
            self.oldest_unsent.labels(name)

    def backlog(
        self, now: dt.datetime, receivers: list[str],
        queued: dict[str, tuple[int, dt.datetime]],
    ) -> None:
        for name in receivers:
            count, oldest = queued.get(name, (0, now))
            self.queued.labels(name).set(count)
            self.oldest_unsent.labels(name).set(max(0.0, (now - oldest).total_seconds()))
