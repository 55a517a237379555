"""A child's timeline: every fact known about it in valid-time order, each payment
with its verdict. What a caseworker reads before a home visit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from humiao.adapters.codec import envelope_from_proto
from humiao.api.alerts.v1 import alerts_pb2
from humiao.api.desk.v1 import desk_pb2
from humiao.api.events.v1 import events_pb2
from humiao.domain import events as ev
from humiao.domain.validation import ValidationFailed

#: Per-period alerts that speak about every payment of their period.
PERIOD_CODES = frozenset({"DUPLICATE_PAYMENT", "MISSED_PAYMENT"})


def valid_date(env: ev.Envelope) -> dt.date:
    """The day a fact takes effect; the day it was recorded when it names none."""
    return ev.effective_date(env.body) or env.recorded_at.date()


@dataclass(frozen=True)
class Fact:
    proto: events_pb2.Envelope
    env: ev.Envelope
    #: What the fact is about (read model): 'child', 'person', 'disbursement' or 'event'.
    about: str
    #: The person key, disbursement id or event id it is about; None for a child's fact.
    subject: str | None


def decode(rows: Sequence[asyncpg.Record]) -> list[Fact]:
    """Stored payloads were validated on the way in; one that no longer is is skipped."""
    facts = []
    for row in rows:
        msg = events_pb2.Envelope()
        msg.ParseFromString(row["payload"])
        try:
            facts.append(Fact(msg, envelope_from_proto(msg), row["about"], row["subject"]))
        except ValidationFailed:
            continue
    return facts


def relations(
    child_key: str, facts: Sequence[Fact], key_of: Callable[[str], str]
) -> dict[str, str]:
    """Person key -> how that person relates to the child, from the child's own facts."""
    found = {child_key: "CHILD"}
    for fact in facts:
        body = fact.env.body
        if isinstance(body, ev.ChildEnrolled):
            for parent in body.parents:
                found.setdefault(key_of(parent.person_id), "PARENT")
        elif isinstance(body, ev.GuardianAppointed):
            found.setdefault(key_of(body.guardian_id), "GUARDIAN")
        elif isinstance(body, ev.Disbursement):
            found.setdefault(key_of(body.payee_id), "PAYEE")
    return found


def build(
    child_key: str,
    facts: Sequence[Fact],
    alerts: Sequence[desk_pb2.Alert],
    key_of: Callable[[str], str],
) -> tuple[list[desk_pb2.TimelineEntry], list[desk_pb2.Alert]]:
    """Entries in valid-time order (ties: recorded time, event id) and the alerts not
    attached to any payment. `alerts` are those the caller may see."""
    related = relations(child_key, facts, key_of)
    reversed_ids = {
        f.env.body.disbursement_id for f in facts if isinstance(f.env.body, ev.DisbursementReversed)
    }
    retracted = {
        f.env.body.retracted_event_id for f in facts if isinstance(f.env.body, ev.EventRetracted)
    }
    by_subject: dict[str, list[desk_pb2.Alert]] = {}
    by_period: dict[str, list[desk_pb2.Alert]] = {}
    for alert in alerts:
        if alert.subject:
            by_subject.setdefault(alert.subject, []).append(alert)
        else:
            by_period.setdefault(alert.period, []).append(alert)
    attached: set[str] = set()
    entries = []
    ordered = sorted(facts, key=lambda f: (valid_date(f.env), f.env.recorded_at, f.env.event_id))
    for fact in ordered:
        entry = desk_pb2.TimelineEntry(
            valid_date=valid_date(fact.env).isoformat(),
            kind=fact.env.kind,
            event=fact.proto,
        )
        if fact.about == "child":
            entry.relation = "CHILD"
        elif fact.about == "person":
            entry.relation = related.get(fact.subject or "", "PERSON")
        else:
            entry.relation = "REFERENCE"
        body = fact.env.body
        if isinstance(body, ev.Disbursement):
            mine = by_subject.get(body.disbursement_id, []) + by_period.get(str(body.period), [])
            entry.alerts.extend(mine)
            attached.update(a.alert_id for a in mine)
            if fact.env.event_id in retracted:
                entry.verdict = desk_pb2.RETRACTED
            elif body.disbursement_id in reversed_ids:
                entry.verdict = desk_pb2.REVERSED
            elif any(a.status != alerts_pb2.WITHDRAWN for a in mine):
                entry.verdict = desk_pb2.FLAGGED
            else:
                entry.verdict = desk_pb2.VERIFIED
        entries.append(entry)
    loose = [a for a in alerts if a.alert_id not in attached]
    return entries, loose


def child_regions(facts: Sequence[Fact], alert_regions: Sequence[str]) -> set[str]:
    """The child belongs to the regions it is enrolled in; without an enrollment, to the
    regions that paid it or raised alerts about it."""
    enrolled = {f.env.body.region for f in facts if isinstance(f.env.body, ev.ChildEnrolled)}
    if enrolled:
        return enrolled
    paid = {f.env.body.region for f in facts if isinstance(f.env.body, ev.Disbursement)}
    return paid | set(alert_regions)


def child_id_of(facts: Sequence[Fact]) -> str | None:
    for fact in facts:
        if fact.about == "child":
            child = fact.env.child_id()
            if child:
                return child
    return None
