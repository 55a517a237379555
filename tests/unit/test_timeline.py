"""Building a child's timeline: concern, deduplication, retractions, conflicts."""

from __future__ import annotations

import datetime as dt

from builders import (
    CHILD,
    FATHER,
    GUARDIAN,
    GUARDIAN2,
    MOTHER,
    closed,
    d,
    died,
    ended,
    enrolled,
    guardian,
    p,
    paid,
    person,
    retract,
    reversed_,
    standard,
    status,
)
from humiao.domain.timeline import build_timeline, dedupe, persons_named, retracted_ids
from humiao.domain.values import Program, Situation, StatusChange

OTHER = person(60, dt.date(2011, 1, 1))


def test_persons_named_covers_child_parents_guardians_payees_only_of_this_child() -> None:
    facts = [
        enrolled(),
        guardian(GUARDIAN),
        paid("2024-01", payee=GUARDIAN2),
        enrolled(child=OTHER, parents=((person(61), Situation.IN_CUSTODY),)),
        guardian(person(62), child=OTHER),
        paid("2024-01", child=OTHER, payee=person(63)),
        died(person(64), "2024-01-01"),
    ]
    assert persons_named(facts, CHILD) == {CHILD, MOTHER, FATHER, GUARDIAN, GUARDIAN2}
    assert persons_named([], CHILD) == {CHILD}


def test_persons_named_keeps_retracted_references() -> None:
    g = guardian(GUARDIAN2)
    assert GUARDIAN2 in persons_named([g, retract(g)], CHILD)


def test_dedupe_same_id_keeps_smallest_repr_whatever_the_order() -> None:
    a = died(CHILD, "2024-01-01", event_id="x")
    b = died(CHILD, "2024-02-01", event_id="x")
    keep = min((a, b), key=repr)
    assert dedupe([a, b])["x"] is keep
    assert dedupe([b, a, b])["x"] is keep


def test_retracted_ids_chains_and_cycles() -> None:
    # R1 retracts E, R2 retracts R1, R3 retracts R2
    assert retracted_ids({"R1": "E"}) == {"E"}
    assert retracted_ids({"R1": "E", "R2": "R1"}) == {"R1"}
    assert retracted_ids({"R1": "E", "R2": "R1", "R3": "R2"}) == {"R2", "E"}
    # two retractions of E, one of them retracted: E stays retracted
    assert "E" in retracted_ids({"R1": "E", "R2": "E", "R3": "R1"})
    # self-retraction and two-cycles are void; what they point at is untouched
    assert retracted_ids({"R1": "R1"}) == set()
    assert retracted_ids({"R1": "R2", "R2": "R1"}) == set()
    # a retraction hanging off a cycle is resolved normally
    assert retracted_ids({"R1": "R2", "R2": "R1", "R3": "E"}) == {"E"}
    # a long chain needs no recursion
    chain = {f"R{i}": f"R{i - 1}" for i in range(1, 5001)} | {"R0": "E"}
    assert ("E" in retracted_ids(chain)) is (len(chain) % 2 == 1)


def test_timeline_resolves_conflicts_and_concern() -> None:
    e1 = enrolled(Program.ORPHAN_DISPERSED, "2023-01-10")
    e2 = enrolled(Program.ORPHAN_DISPERSED, "2023-02-10")  # later record: correction
    early_end = ended("2022-12-31")  # before approval: an earlier spell
    end1, end2 = ended("2024-05-31"), ended("2024-06-30")
    g1, g2 = guardian(GUARDIAN, "2023-01-01"), guardian(GUARDIAN2, "2024-03-09")
    g2b = guardian(GUARDIAN, "2024-03-09")  # same day, recorded later: wins
    pay1 = paid("2024-01", disbursement_id="D1")
    pay1b = paid("2024-01", amount=1, disbursement_id="D1")  # corrected resend
    pay2 = paid("2024-02", disbursement_id="D2")
    std_a, std_b = standard(80000, "2024-01"), standard(90000, "2024-07")
    std_other = standard(1, "2020-01", region="110108")
    cyc, cyc_other = closed("2024-01"), closed("2024-01", region="110108")
    tl = build_timeline(
        CHILD,
        [
            e1,
            e2,
            early_end,
            end1,
            end2,
            g1,
            g2,
            g2b,
            pay1,
            pay1b,
            pay2,
            reversed_(pay2),
            std_a,
            std_b,
            std_other,
            cyc,
            cyc_other,
            died(GUARDIAN, "2024-08-01"),
            died(person(70), "2024-08-01"),
            status(MOTHER, Situation.DECEASED, StatusChange.ENDED, "2024-02-02"),
        ],
    )
    assert tl.enrollments == {Program.ORPHAN_DISPERSED: e2}
    assert tl.ends == {Program.ORPHAN_DISPERSED: end2}
    assert tl.guardian_on(d("2024-03-08")) is g1
    assert tl.guardian_on(d("2024-03-09")) is g2b
    assert tl.guardian_on(d("2022-01-01")) is None
    assert tl.disbursements == [(pay1b, pay1b.body)]
    assert tl.standard("110105", Program.ORPHAN_DISPERSED, p("2023-12")) is None
    assert tl.standard("110105", Program.ORPHAN_DISPERSED, p("2024-06")) is std_a
    assert tl.standard("110105", Program.ORPHAN_DISPERSED, p("2024-07")) is std_b
    assert tl.standards.keys() == {("110105", Program.ORPHAN_DISPERSED)}
    assert tl.cycles == [cyc]
    assert set(tl.person_deaths) == {GUARDIAN}
    assert set(tl.person_changes) == {MOTHER}
    assert tl.birth_date() == dt.date(2010, 6, 15)


def test_retracted_facts_leave_the_timeline() -> None:
    e = enrolled()
    pay = paid("2024-01")
    tl = build_timeline(CHILD, [e, pay, retract(pay), retract(e)])
    assert tl.enrollments == {} and tl.disbursements == []


def test_event_id_shared_by_a_retraction_and_a_fact_is_order_independent() -> None:
    pay = paid("2024-01")
    as_retraction = retract(pay, event_id="x")
    as_fact = died(person(71), "2024-01-01", event_id="x")
    first = build_timeline(CHILD, [pay, as_retraction, as_fact])
    second = build_timeline(CHILD, [as_fact, pay, as_retraction, as_fact])
    assert first.disbursements == second.disbursements
    kept = min((as_retraction, as_fact), key=repr)
    assert (first.disbursements == []) is (kept is as_retraction)
