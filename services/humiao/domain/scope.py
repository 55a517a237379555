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

from collections.abc import Collection, Iterable, Sequence
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


@dataclass(frozen=True, slots=True)
class SharedFacts:
    """Facts many children read alike (a region's closes and standards, a person's
    facts), sorted once for all of them: a scope then takes the closes of its months
    instead of scanning every close of the region's history, child after child."""

    closes: dict[int, list[Envelope]]  # Period.index -> cycle closes of that month
    payments: list[Envelope]  # disbursements and reversals: scoped as anywhere
    other: list[Envelope]  # every scope holds these


def shared_facts(facts: Iterable[Envelope]) -> SharedFacts:
    closes: dict[int, list[Envelope]] = {}
    payments: list[Envelope] = []
    other: list[Envelope] = []
    for env in facts:
        body = env.body
        kind = type(body)
        if kind is PaymentCycleClosed:
            closes.setdefault(body.period.index, []).append(env)  # type: ignore[union-attr]
        elif kind is Disbursement or kind is DisbursementReversed:
            payments.append(env)
        else:
            other.append(env)
    return SharedFacts(closes, payments, other)


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
        by_id: dict[str, Envelope] = facts
    else:
        seq: list[Envelope] = facts if isinstance(facts, list) else list(facts)
        # one envelope per event id, chosen as the timeline chooses (never by arrival)
        by_id = {env.event_id: env for env in seq}
        if len(by_id) != len(seq):
            by_id = dedupe(seq)
    new = [env for eid in new_ids if (env := by_id.get(eid)) is not None]
    return period_scope_of(list(by_id.values()), (), new)


def period_scope_of(
    own: list[Envelope], shared: Sequence[SharedFacts], new: Iterable[Envelope]
) -> Scope | None:
    """period_scope of the facts of `own` and of `shared` together, `new` being the new
    ones among them; the shared facts cost what the months in scope hold, not their
    whole history. (The same fact in two places appears twice in the scope: the
    timeline keeps one per event id.)"""
    # What is new: the payments it touches (by disbursement id) and the months it closes.
    touched_ids: set[str] = set()
    months: set[int] = set()  # Period.index: ints hash faster than Periods
    for env in new:
        body = env.body
        kind = type(body)
        if kind is Disbursement or kind is DisbursementReversed:
            touched_ids.add(body.disbursement_id)  # type: ignore[union-attr]
        elif kind is PaymentCycleClosed:
            months.add(body.period.index)  # type: ignore[union-attr]
        else:
            return None
    scan = own
    if any(group.payments for group in shared):
        scan = own + [env for group in shared for env in group.payments]
    if touched_ids:  # every version of a touched payment: a correction may move its month
        for env in scan:
            body = env.body
            if type(body) is Disbursement and body.disbursement_id in touched_ids:
                months.add(body.period.index)
    # Every version of a payment with a version in scope (the latest recorded one counts),
    # and the reversals of those payments, whichever month they are filed under.
    scoped: list[Envelope] = []
    reversals: list[Envelope] = []
    kept_ids: set[str] = set()
    for env in scan:
        body = env.body
        kind = type(body)
        if kind is Disbursement:
            if body.period.index in months:  # type: ignore[union-attr]
                kept_ids.add(body.disbursement_id)  # type: ignore[union-attr]
                scoped.append(env)
        elif kind is DisbursementReversed:
            reversals.append(env)
        elif kind is PaymentCycleClosed:
            if body.period.index in months:  # type: ignore[union-attr]
                scoped.append(env)
        else:
            scoped.append(env)
    for group in shared:
        scoped.extend(group.other)
        for month in months:
            closes = group.closes.get(month)
            if closes:
                scoped.extend(closes)
    if reversals and kept_ids:
        scoped.extend([e for e in reversals if e.body.disbursement_id in kept_ids])  # type: ignore[union-attr]
    # A touched payment has every version in the months already; another kept payment
    # may have a version elsewhere (rare: a correction moved it), found in one more pass.
    moved = kept_ids - touched_ids
    if moved:
        for env in scan:
            body = env.body
            if (
                type(body) is Disbursement
                and body.disbursement_id in moved
                and body.period.index not in months
            ):
                scoped.append(env)
    return Scope(frozenset(Period(m) for m in months), scoped)
