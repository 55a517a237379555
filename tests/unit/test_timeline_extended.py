"""timeline.extended: adding payments and cycle closes to an indexed timeline gives
exactly what indexing everything again gives, and a months_view of it the alerts of
those months; anything it cannot add that way it refuses (None)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_order_independence import BOOK, CHILDREN, histories

from builders import (
    CHILD,
    FATHER,
    GUARDIAN,
    closed,
    died,
    enrolled,
    guardian,
    paid,
    person,
    retract,
    reversed_,
    standard,
    status,
)
from humiao.domain.events import AllowanceStandardSet, Disbursement, Envelope, PaymentCycleClosed
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_child, evaluate_timeline
from humiao.domain.timeline import (
    dedupe,
    extended,
    index_timeline,
    months_view,
    touched_months,
)
from humiao.domain.values import Period, Situation, StatusChange

ADDABLE = (Disbursement, PaymentCycleClosed, AllowanceStandardSet)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_extending_equals_indexing_everything_again(
    facts: list[Envelope], data: st.DataObject
) -> None:
    unique = dedupe(facts)  # one envelope per id, as the verifier holds them
    addable = sorted(eid for eid, e in unique.items() if isinstance(e.body, ADDABLE))
    new_ids = data.draw(st.sets(st.sampled_from(addable)) if addable else st.just(set()))
    if data.draw(st.booleans()):  # sometimes one that is not a payment or a close
        other = sorted(set(unique) - set(addable))
        if other:
            new_ids.add(data.draw(st.sampled_from(other)))
    old = [e for eid, e in unique.items() if eid not in new_ids]
    new = [unique[eid] for eid in sorted(new_ids)]
    for child in CHILDREN:
        grown = extended(index_timeline(child, old), new)
        if grown is None:
            continue
        assert all(isinstance(e.body, ADDABLE) for e in new)
        assert grown == index_timeline(child, old + new)
        months = touched_months(grown.timeline, new)
        periods = {Period(m) for m in months}
        after = evaluate_child(child, old + new, BOOK)
        view = evaluate_timeline(months_view(grown.timeline, months), BOOK)
        assert view == evaluate_child(child, old + new, BOOK, periods)
        assert view == [a for a in after if a.period in periods]
        # the alerts of every other month stand as they were
        before = evaluate_child(child, old, BOOK)
        assert [a for a in after if a.period not in periods] == [
            a for a in before if a.period not in periods
        ]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_a_months_view_gives_the_alerts_of_its_months(
    facts: list[Envelope], data: st.DataObject
) -> None:
    months = data.draw(st.sets(st.integers(Period.of(2023, 9).index, Period.of(2025, 4).index)))
    periods = {Period(m) for m in months}
    for child in CHILDREN:
        tl = index_timeline(child, facts).timeline
        assert evaluate_timeline(tl, BOOK) == evaluate_child(child, facts, BOOK)
        assert evaluate_timeline(months_view(tl, months), BOOK) == [
            a for a in evaluate_child(child, facts, BOOK) if a.period in periods
        ]


def _history() -> list[Envelope]:
    return [
        enrolled(approved="2023-12-10"),
        guardian(GUARDIAN, "2023-01-01"),
        standard(80000, "2020-01"),
        paid("2024-01"),
        paid("2024-02"),
        closed("2024-01"),
        closed("2024-02"),
    ]


def test_a_new_month_is_added_and_checked_alone() -> None:
    history = _history()
    book = PolicyBook.default()
    march, wrong = paid("2024-03"), paid("2024-04", amount=90000)
    close_march, close_april = closed("2024-03"), closed("2024-04")
    grown = extended(index_timeline(CHILD, history), [wrong, close_march, march, close_april])
    assert grown is not None
    assert grown == index_timeline(CHILD, [*history, march, wrong, close_march, close_april])
    months = {Period.of(2024, 3).index, Period.of(2024, 4).index}
    alerts = evaluate_timeline(months_view(grown.timeline, months), book)
    assert [(a.code.name, str(a.period)) for a in alerts] == [("AMOUNT_MISMATCH", "2024-04")]
    assert wrong.event_id in alerts[0].evidence_event_ids


def test_a_new_standard_touches_the_months_from_its_start() -> None:
    history = _history()  # paid 2024-01 and 2024-02 at 800 yuan, both months closed
    book = PolicyBook.default()
    raised = standard(85000, "2024-02")
    grown = extended(index_timeline(CHILD, history), [raised])
    assert grown == index_timeline(CHILD, [*history, raised])
    months = touched_months(grown.timeline, [raised])
    assert months == {Period.of(2024, 2).index}
    alerts = evaluate_timeline(months_view(grown.timeline, months), book)
    assert [(a.code.name, str(a.period), a.amount_at_risk_fen) for a in alerts] == [
        ("AMOUNT_MISMATCH", "2024-02", 5000)
    ]
    # a second standard from the same month must be weighed by recording time
    assert extended(grown, [standard(90000, "2024-02")]) is None
    # another region's standard concerns it not
    elsewhere = standard(90000, "2024-01", region="310101")
    assert touched_months(grown.timeline, [elsewhere]) == frozenset()
    assert extended(grown, [elsewhere]) == index_timeline(CHILD, [*history, raised, elsewhere])


def test_nothing_new_is_the_same_timeline() -> None:
    indexed = index_timeline(CHILD, _history())
    assert extended(indexed, []) is indexed


def test_what_must_be_indexed_again_is_refused() -> None:
    history = _history()
    first = history[3]
    assert first.body.disbursement_id  # type: ignore[union-attr]
    did = first.body.disbursement_id  # type: ignore[union-attr]
    indexed = index_timeline(CHILD, history)
    refused = {
        "a second version of a payment": paid("2024-03", disbursement_id=did),
        "a second close of a month": closed("2024-02"),
        "a guardian appointment": guardian(person(9), "2024-03-01"),
        "a death": died(FATHER, "2024-03-01"),
    }
    for why, new in refused.items():
        assert extended(indexed, [new]) is None, why
    # a payment whose reversal came first, a fact whose retraction came first
    later = paid("2024-03")
    assert extended(index_timeline(CHILD, [*history, reversed_(later)]), [later]) is None
    assert extended(index_timeline(CHILD, [*history, retract(later)]), [later]) is None
    # a payee whose status change is held but was left out: no fact named that person
    stranger = person(77)
    change = status(stranger, Situation.IN_CUSTODY, StatusChange.STARTED, "2024-01-05")
    to_stranger = paid("2024-03", payee=stranger)
    assert extended(index_timeline(CHILD, [*history, change]), [to_stranger]) is None
    assert index_timeline(CHILD, [*history, change, to_stranger]).timeline.person_changes
    # a payee already named is no reason to refuse
    to_guardian = paid("2024-03", payee=GUARDIAN)
    held = [*history, status(GUARDIAN, Situation.IN_CUSTODY, StatusChange.STARTED, "2024-01-05")]
    assert extended(index_timeline(CHILD, held), [to_guardian]) == index_timeline(
        CHILD, [*held, to_guardian]
    )


def test_facts_of_others_leave_it_as_it_was() -> None:
    history = _history()
    indexed = index_timeline(CHILD, history)
    other_child = paid("2024-03", child=person(5))
    other_region = closed("2024-03", region="310101")
    grown = extended(indexed, [other_child, other_region])
    assert grown == index_timeline(CHILD, [*history, other_child, other_region])
