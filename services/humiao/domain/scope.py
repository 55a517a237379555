"""Which periods a child's new facts can change, so whoever already holds the verdict on
the rest of the child's facts re-checks only those periods.

Most traffic is period-bound: a payment, a month's cycle close, a reversal. Such a fact
can only change the alerts of the periods its disbursement (in any of its versions: a
correction may move a payment to another month) or its close is for, because every
check of a period reads that period's payments and closes plus the child's other facts
(rules.evaluate_child's `periods` contract). Any other new fact (an enrollment, a death,
a standard, a retraction...) can change any period: then there is no scope and the
child is evaluated whole. Keeping the scope's facts small is the point: a child with
years of monthly payments is re-checked at the cost of the new month, not of its history.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from humiao.domain.events import (
    Disbursement,
    DisbursementReversed,
    Envelope,
    PaymentCycleClosed,
)
from humiao.domain.timeline import dedupe
from humiao.domain.values import Period


@dataclass(frozen=True, slots=True)
class Scope:
    """The periods to re-check and every fact their checks read."""

    periods: frozenset[Period]
    facts: list[Envelope]


def period_scope(
    facts: Iterable[Envelope] | dict[str, Envelope], new_ids: Collection[str]
) -> Scope | None:
    """The scope of the facts whose ids are in `new_ids` (the rest of `facts` were
    evaluated before), or None when one of them can change any period. `facts` may be
    a dict by event id (one envelope per id already).

    Then `evaluate_child(child, scope.facts, policies, scope.periods)` equals the full
    evaluation of `facts` filtered to `scope.periods`.
    """
    if isinstance(facts, dict):  # a dict, not any Mapping: the ABC check costs per child
        every: list[Envelope] = list(facts.values())
    else:
        seq: list[Envelope] = facts if isinstance(facts, list) else list(facts)
        # one envelope per event id, chosen as the timeline chooses (never by arrival)
        unique = {env.event_id: env for env in seq}
        every = list(unique.values()) if len(unique) == len(seq) else list(dedupe(seq).values())
    versions: dict[str, list[Period]] = {}  # disbursement id -> periods of its versions
    touched_ids: set[str] = set()
    periods: set[Period] = set()
    for env in every:
        body = env.body
        if type(body) is Disbursement:
            versions.setdefault(body.disbursement_id, []).append(body.period)
            if env.event_id in new_ids:
                touched_ids.add(body.disbursement_id)
        elif env.event_id not in new_ids:
            continue
        elif type(body) is PaymentCycleClosed:
            periods.add(body.period)
        elif type(body) is DisbursementReversed:
            touched_ids.add(body.disbursement_id)
        else:
            return None
    for did in touched_ids:
        periods.update(versions.get(did, ()))
    # every version of a payment with a version in scope: the latest recorded one counts
    kept_ids = {did for did, seen in versions.items() if not periods.isdisjoint(seen)}
    scoped = []
    for env in every:
        body = env.body
        if type(body) is Disbursement or type(body) is DisbursementReversed:
            if body.disbursement_id in kept_ids:
                scoped.append(env)
        elif type(body) is PaymentCycleClosed:
            if body.period in periods:
                scoped.append(env)
        else:
            scoped.append(env)
    return Scope(frozenset(periods), scoped)
