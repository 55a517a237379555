"""evaluate_child(..., periods=P) is exactly the full evaluation filtered to the periods in P,
whatever the history, the arrival order and the choice of periods."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_order_independence import BOOK, CHILDREN, FIRST_MONTH, arrival, histories

from builders import CHILD, MOTHER, closed, enrolled, guardian, p, paid, standard
from humiao.domain.events import Envelope
from humiao.domain.rules import evaluate_child
from humiao.domain.values import Period

#: months the generated histories pay and close in, with a margin on both sides
MONTHS = [FIRST_MONTH + i for i in range(-3, 22)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    histories(),
    st.lists(st.sampled_from(MONTHS), max_size=6),
    st.randoms(use_true_random=False),
)
def test_periods_give_exactly_the_filtered_full_result(
    facts: list[Envelope], chosen: list[Period], rnd: random.Random
) -> None:
    order = arrival(facts, rnd)
    wanted = set(chosen)
    for child in CHILDREN:
        full = evaluate_child(child, facts, BOOK)
        expected = [a for a in full if a.period in wanted]
        assert evaluate_child(child, order, BOOK, chosen) == expected
        assert evaluate_child(child, facts, BOOK, frozenset(chosen)) == expected
        assert evaluate_child(child, facts, BOOK, MONTHS) == full  # all periods


def test_only_the_asked_periods_are_checked() -> None:
    facts = [
        enrolled(approved="2023-12-10"),
        guardian(),
        standard(80000),
        paid("2024-01"),
        paid("2024-02", amount=90000),  # AMOUNT_MISMATCH in 2024-02
        closed("2024-03"),  # MISSED_PAYMENT in 2024-03
        paid("2024-04", payee=MOTHER),  # PAYEE_NOT_GUARDIAN in 2024-04
    ]
    full = evaluate_child(CHILD, facts, BOOK)
    assert sorted(str(a.period) for a in full) == ["2024-02", "2024-03", "2024-04"]
    assert evaluate_child(CHILD, facts, BOOK, []) == []
    assert evaluate_child(CHILD, facts, BOOK, [p("2024-01")]) == []
    for a in full:
        assert evaluate_child(CHILD, facts, BOOK, [a.period]) == [a]
    assert evaluate_child(CHILD, facts, BOOK, None) == full


def test_a_corrected_payment_counts_in_its_corrected_period_only() -> None:
    """Same disbursement id re-sent with another period: the later record wins, even when
    only the earlier record's period is asked for."""
    first = paid("2024-02", amount=90000, disbursement_id="D-9")
    fixed = paid("2024-03", disbursement_id="D-9")  # recorded later: a correction
    facts = [enrolled(approved="2023-12-10"), guardian(), standard(80000), first, fixed]
    assert evaluate_child(CHILD, facts, BOOK) == []
    assert evaluate_child(CHILD, facts, BOOK, [p("2024-02")]) == []
    assert evaluate_child(CHILD, [*facts, closed("2024-02")], BOOK, [p("2024-02")]) != []
