"""domain.scope: new period-bound facts change only their scope's periods, and the
scope's facts give exactly those periods' alerts."""

from __future__ import annotations

import datetime as dt

from factories import CHILD, closed, enrolled, guardian, paid, reversed_, standard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_order_independence import BOOK, CHILDREN, histories

from humiao.domain.events import (
    Disbursement,
    DisbursementReversed,
    Envelope,
    PaymentCycleClosed,
)
from humiao.domain.rules import evaluate_child
from humiao.domain.scope import period_scope, period_scope_of, shared_facts
from humiao.domain.timeline import dedupe

PERIOD_BOUND = (Disbursement, PaymentCycleClosed, DisbursementReversed)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_a_scope_holds_every_change_and_its_facts_give_its_alerts(
    facts: list[Envelope], data: st.DataObject
) -> None:
    # ids by the envelope the timeline keeps for them (a reused id may carry several
    # bodies; one is chosen independently of order, and only that one counts)
    chosen = dedupe(facts)
    other = {eid for eid, e in chosen.items() if not isinstance(e.body, PERIOD_BOUND)}
    bound = sorted(set(chosen) - other)
    new = data.draw(st.sets(st.sampled_from(bound)) if bound else st.just(set()))
    mixed = data.draw(st.booleans()) and bool(other)
    if mixed:  # one new fact that is not period-bound: no scope, evaluate whole
        assert period_scope(facts, new | {data.draw(st.sampled_from(sorted(other)))}) is None
    before = [e for e in facts if e.event_id not in new]
    scope = period_scope(facts, new)
    assert scope is not None
    for child in CHILDREN:
        after = evaluate_child(child, facts, BOOK)
        outside_before = [a for a in evaluate_child(child, before, BOOK)
                          if a.period not in scope.periods]
        assert [a for a in after if a.period not in scope.periods] == outside_before
        assert evaluate_child(child, scope.facts, BOOK, scope.periods) == [
            a for a in after if a.period in scope.periods
        ]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_facts_split_into_shared_groups_give_the_same_scope(
    facts: list[Envelope], data: st.DataObject
) -> None:
    unique = {e.event_id: e for e in facts}  # one envelope per id, as the verifier holds
    other = {eid for eid, e in unique.items() if not isinstance(e.body, PERIOD_BOUND)}
    bound = sorted(set(unique) - other)
    new = data.draw(st.sets(st.sampled_from(bound)) if bound else st.just(set()))
    if data.draw(st.booleans()) and other:
        new.add(data.draw(st.sampled_from(sorted(other))))
    # each fact goes to the child's own list or to one of three shared groups
    place = {eid: data.draw(st.integers(0, 3)) for eid in sorted(unique)}
    own = [e for eid, e in unique.items() if place[eid] == 0]
    shared = [shared_facts(e for eid, e in unique.items() if place[eid] == g) for g in (1, 2, 3)]
    whole = period_scope(unique, new)
    split = period_scope_of(own, shared, [unique[eid] for eid in new])
    if whole is None:
        assert split is None
        return
    assert split is not None and split.periods == whole.periods
    assert sorted(e.event_id for e in split.facts) == sorted(e.event_id for e in whole.facts)


def test_a_new_payment_scopes_its_month_and_a_moved_payment_both() -> None:
    history = [enrolled(approved="2023-12-10"), guardian(), standard(80000), paid("2024-01"),
               paid("2024-02", disbursement_id="D-2"), closed("2024-03")]
    moved = paid("2024-03", disbursement_id="D-2")  # a correction moves D-2 to March
    scope = period_scope([*history, moved], {moved.event_id})
    assert scope is not None
    assert sorted(str(p) for p in scope.periods) == ["2024-02", "2024-03"]
    kinds = sorted(e.kind for e in scope.facts)
    assert kinds.count("disbursement") == 2 and kinds.count("paymentCycleClosed") == 1
    assert evaluate_child(CHILD, scope.facts, BOOK, scope.periods) == []


def test_a_reversal_scopes_its_payment_and_other_facts_scope_nothing() -> None:
    pay = paid("2024-02", disbursement_id="D-7")
    back = reversed_(pay)
    history = [enrolled(approved="2023-12-10"), guardian(), standard(80000), pay,
               closed("2024-02")]
    scope = period_scope([*history, back], {back.event_id})
    assert scope is not None and [str(p) for p in scope.periods] == ["2024-02"]
    missed = evaluate_child(CHILD, scope.facts, BOOK, scope.periods)
    assert [a.code.name for a in missed] == ["MISSED_PAYMENT"]
    assert period_scope(history, {history[1].event_id}) is None  # a guardian: any period
    nothing = period_scope(history, set())
    assert nothing is not None and not nothing.periods


def test_a_reused_id_counts_by_the_envelope_the_timeline_keeps() -> None:
    # The same id on a guardian appointment and on a payment recorded at the same time:
    # the timeline keeps one of them, and whether news scopes goes by that one.
    when = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
    both = [guardian(event_id="E-1", recorded=when),
            paid("2024-02", event_id="E-1", recorded=when)]
    assert isinstance(dedupe(both)["E-1"].body, Disbursement)  # the tie-break keeps it
    history = [enrolled(approved="2023-12-10"), standard(80000), closed("2024-02")]
    scope = period_scope([*history, *both], {"E-1"})
    assert scope is not None and [str(p) for p in scope.periods] == ["2024-02"]
    assert "E-1" in {e.event_id for e in scope.facts}
