"""Each check of DESIGN.md section 5 with its boundary months (default policy)."""

from __future__ import annotations

import dataclasses

from builders import (
    CHILD,
    FATHER,
    GUARDIAN,
    GUARDIAN2,
    INSTITUTION,
    MOTHER,
    REGION,
    adopted,
    closed,
    died,
    ended,
    enrolled,
    extension,
    guardian,
    paid,
    person,
    retract,
    reversed_,
    standard,
    status,
)
from humiao.domain.alerts import AlertCode, AlertDraft
from humiao.domain.events import Envelope
from humiao.domain.policy import PolicyBook, RegionPolicy
from humiao.domain.rules import evaluate_child
from humiao.domain.values import Program, Situation, StatusChange

C = AlertCode
BOOK = PolicyBook.default()
DF = Program.DE_FACTO_UNSUPPORTED
OD = Program.ORPHAN_DISPERSED
OI = Program.ORPHAN_INSTITUTIONAL


def run(*facts: Envelope, book: PolicyBook = BOOK) -> list[AlertDraft]:
    return evaluate_child(CHILD, list(facts), book)


def found(*facts: Envelope, book: PolicyBook = BOOK) -> set[tuple[str, str]]:
    """(code, period) of every alert."""
    return {(a.code.name, str(a.period)) for a in run(*facts, book=book)}


def base(program: Program = OD, approved: str = "2023-12-10") -> list[Envelope]:
    return [enrolled(program, approved), guardian(), standard(80000, "2020-01", OD)]


# --- death ------------------------------------------------------------------------------


def test_paid_in_month_of_death_is_fine_month_after_alerts() -> None:
    death = died(CHILD, "2024-03-15")
    march, april = paid("2024-03"), paid("2024-04")
    facts = base()
    alerts = run(*facts, death, march, april)
    assert [(a.code, str(a.period)) for a in alerts] == [(C.PAID_AFTER_DEATH, "2024-04")]
    a = alerts[0]
    assert a.subject == april.body.disbursement_id  # type: ignore[union-attr]
    assert a.amount_at_risk_fen == 80000
    assert a.region == REGION and a.program is OD
    # the payment, the death, and the enrollment the region comes from
    assert a.evidence_event_ids == tuple(
        sorted((death.event_id, april.event_id, facts[0].event_id))
    )
    assert a.explanation_zh == "儿童已于2024-03-15死亡，但2024-04月仍发放津贴 800.00 元。"
    assert "2024-03-15" in a.explanation_en and "800.00 yuan" in a.explanation_en
    assert CHILD not in a.explanation_zh + a.explanation_en


def test_death_on_first_day_of_month_leaves_that_month_payable() -> None:
    assert found(*base(), died(CHILD, "2024-03-01"), paid("2024-03")) == set()
    assert found(*base(), died(CHILD, "2024-02-29"), paid("2024-03")) == {
        ("PAID_AFTER_DEATH", "2024-03")
    }


def test_not_payable_month_raises_only_why_no_amount_or_payee_checks() -> None:
    # wrong amount, wrong payee, paid twice: after death only PAID_AFTER_DEATH counts
    facts = [
        *base(),
        died(CHILD, "2024-01-10"),
        paid("2024-03", amount=1, payee=GUARDIAN2),
        paid("2024-03", program=OD),
    ]
    assert {a.code for a in run(*facts)} == {C.PAID_AFTER_DEATH}
    assert len(run(*facts)) == 2


def test_several_reasons_raise_each() -> None:
    facts = [
        *base(),
        died(CHILD, "2024-01-10"),
        ended("2024-01-10"),
        adopted("2023-12-31"),
        paid("2024-03"),
    ]
    assert found(*facts) == {
        ("PAID_AFTER_DEATH", "2024-03"),
        ("PAID_AFTER_ENROLLMENT_ENDED", "2024-03"),
        ("PAID_AFTER_ADOPTION", "2024-03"),
    }


# --- age ----------------------------------------------------------------------------------


def test_eighteenth_birthday_month_payable_month_after_not() -> None:
    # born 2010-06-15: 18 in 2028-06
    facts = [*base(), paid("2028-06"), paid("2028-07")]
    assert found(*facts) == {("PAID_AFTER_AGE_OUT", "2028-07")}
    alert = run(*facts)[0]
    assert "2028-06" in alert.explanation_zh and "18" in alert.explanation_en


def test_schooling_extension_keeps_payable_through_its_month() -> None:
    ext = extension("2029-07-31")
    facts = [*base(), ext, paid("2028-07"), paid("2029-07"), paid("2029-08")]
    alerts = run(*facts)
    assert [(a.code, str(a.period)) for a in alerts] == [(C.PAID_AFTER_AGE_OUT, "2029-08")]
    assert ext.event_id in alerts[0].evidence_event_ids
    assert "2029-07-31" in alerts[0].explanation_zh


def test_schooling_extension_ignored_where_region_forbids_it() -> None:
    book = PolicyBook(RegionPolicy(), {REGION: RegionPolicy(schooling_extension_allowed=False)})
    facts = [*base(), extension("2029-07-31"), paid("2028-07")]
    assert found(*facts, book=book) == {("PAID_AFTER_AGE_OUT", "2028-07")}
    assert found(*facts) == set()


def test_age_limit_per_region() -> None:
    book = PolicyBook(RegionPolicy(), {REGION: RegionPolicy(age_limit=16)})
    assert found(*base(), paid("2026-07"), book=book) == {("PAID_AFTER_AGE_OUT", "2026-07")}


# --- adoption, enrollment end, approval ---------------------------------------------------


def test_adoption_stops_from_month_after() -> None:
    facts = [*base(), adopted("2024-05-20"), paid("2024-05"), paid("2024-06")]
    assert found(*facts) == {("PAID_AFTER_ADOPTION", "2024-06")}


def test_enrollment_end_stops_from_month_after() -> None:
    facts = [*base(), ended("2024-05-31"), paid("2024-05"), paid("2024-06")]
    assert found(*facts) == {("PAID_AFTER_ENROLLMENT_ENDED", "2024-06")}


def test_enrollment_end_of_other_program_does_not_apply() -> None:
    facts = [*base(), ended("2024-01-31", program=DF), paid("2024-06")]
    assert found(*facts) == set()


def test_paid_before_approval_boundary() -> None:
    # approved 2023-12-10: December not payable, January is
    facts = [*base(approved="2023-12-10"), paid("2023-12"), paid("2024-01")]
    alerts = run(*facts)
    assert [(a.code, str(a.period)) for a in alerts] == [(C.PAID_BEFORE_APPROVAL, "2023-12")]
    assert "2023-12-10" in alerts[0].explanation_zh and "2024-01" in alerts[0].explanation_en


def test_late_enrollment_withdraws_not_enrolled() -> None:
    pay = paid("2024-03")
    assert found(guardian(), pay) == {("NOT_ENROLLED", "2024-03")}
    alert = run(guardian(), pay)[0]
    assert alert.region == REGION and alert.amount_at_risk_fen == 80000
    assert found(guardian(), pay, enrolled(OD, "2024-01-05")) == set()


def test_not_enrolled_region_is_disbursements_without_any_enrollment() -> None:
    alert = run(guardian(), paid("2024-03", region="110108"))[0]
    assert alert.code is C.NOT_ENROLLED and alert.region == "110108"


def test_paid_under_other_program_is_not_enrolled() -> None:
    enr = enrolled(OD)
    facts = [enr, guardian(), paid("2024-03", program=DF)]
    alerts = run(*facts)
    assert [a.code for a in alerts] == [C.NOT_ENROLLED]
    assert enr.event_id in alerts[0].evidence_event_ids
    assert "社会散居孤儿" in alerts[0].explanation_zh


def test_not_enrolled_beside_child_level_reasons() -> None:
    facts = [enrolled(OD), guardian(), died(CHILD, "2024-01-01"), paid("2024-03", program=DF)]
    assert found(*facts) == {("NOT_ENROLLED", "2024-03"), ("PAID_AFTER_DEATH", "2024-03")}


# --- parents ------------------------------------------------------------------------------


def de_facto_base() -> list[Envelope]:
    # mother in custody, father deceased
    return [enrolled(DF, "2023-12-10"), guardian(), standard(80000, "2020-01", OD)]


def test_de_facto_parent_released_from_custody() -> None:
    release = status(MOTHER, Situation.IN_CUSTODY, StatusChange.ENDED, "2024-03-15")
    facts = [*de_facto_base(), release, paid("2024-03", program=DF), paid("2024-04", program=DF)]
    alerts = run(*facts)
    assert [(a.code, str(a.period)) for a in alerts] == [
        (C.PAID_AFTER_PARENT_SITUATION_ENDED, "2024-04")
    ]
    assert release.event_id in alerts[0].evidence_event_ids
    assert "服刑在押" in alerts[0].explanation_zh and "2024-03-15" in alerts[0].explanation_en


def test_de_facto_released_on_first_day_stops_that_month() -> None:
    release = status(MOTHER, Situation.IN_CUSTODY, StatusChange.ENDED, "2024-03-01")
    facts = [*de_facto_base(), release, paid("2024-03", program=DF)]
    assert found(*facts) == {("PAID_AFTER_PARENT_SITUATION_ENDED", "2024-03")}


def test_de_facto_released_then_back_in_custody() -> None:
    facts = [
        *de_facto_base(),
        status(MOTHER, Situation.IN_CUSTODY, StatusChange.ENDED, "2024-03-15"),
        status(MOTHER, Situation.IN_CUSTODY, StatusChange.STARTED, "2024-05-20"),
        *(paid(f"2024-0{m}", program=DF) for m in range(3, 8)),
    ]
    assert found(*facts) == {
        ("PAID_AFTER_PARENT_SITUATION_ENDED", "2024-04"),
        ("PAID_AFTER_PARENT_SITUATION_ENDED", "2024-05"),
    }


def test_de_facto_other_situation_keeps_qualifying() -> None:
    # released from custody but seriously ill from before: still qualifies
    facts = [
        *de_facto_base(),
        status(MOTHER, Situation.SERIOUSLY_ILL, StatusChange.STARTED, "2024-02-01"),
        status(MOTHER, Situation.IN_CUSTODY, StatusChange.ENDED, "2024-03-15"),
        paid("2024-06", program=DF),
    ]
    assert found(*facts) == set()


def test_de_facto_both_parents_dead_is_no_longer_de_facto() -> None:
    facts = [*de_facto_base(), died(MOTHER, "2024-03-10"), paid("2024-04", program=DF)]
    assert found(*facts) == {("PAID_AFTER_PARENT_SITUATION_ENDED", "2024-04")}
    assert "死亡" in run(*facts)[0].explanation_zh


def test_de_facto_uses_dispersed_standard_unless_own() -> None:
    pay = paid("2024-06", amount=90000, program=DF)
    assert found(*de_facto_base(), pay) == {("AMOUNT_MISMATCH", "2024-06")}
    own = standard(90000, "2024-01", DF)
    assert found(*de_facto_base(), pay, own) == set()
    # own standard not yet in effect for the month: the dispersed one applies
    later_own = standard(90000, "2024-07", DF)
    assert found(*de_facto_base(), pay, later_own) == {("AMOUNT_MISMATCH", "2024-06")}


def test_orphan_parent_found_alive_stops_same_month() -> None:
    alive = status(FATHER, Situation.DECEASED, StatusChange.ENDED, "2024-03-20")
    facts = [*base(), alive, paid("2024-02"), paid("2024-03"), paid("2024-04")]
    alerts = run(*facts)
    assert {(a.code, str(a.period)) for a in alerts} == {
        (C.ORPHAN_PARENT_ALIVE, "2024-03"),
        (C.ORPHAN_PARENT_ALIVE, "2024-04"),
    }
    assert all(alive.event_id in a.evidence_event_ids for a in alerts)
    assert "2024-03-20" in alerts[0].explanation_zh


def test_orphan_parent_found_alive_next_month_where_region_says_so() -> None:
    book = PolicyBook(
        RegionPolicy(), {REGION: RegionPolicy(orphan_parent_found_stops_same_month=False)}
    )
    alive = status(FATHER, Situation.DECEASED, StatusChange.ENDED, "2024-03-20")
    assert found(*base(), alive, paid("2024-03"), paid("2024-04"), book=book) == {
        ("ORPHAN_PARENT_ALIVE", "2024-04")
    }


def test_orphan_missing_parent_unknown_and_declared() -> None:
    parents = ((MOTHER, Situation.UNKNOWN), (FATHER, Situation.MISSING_DECLARED))
    enr = enrolled(OD, parents=parents)
    facts = [enr, guardian(), paid("2024-03")]
    assert found(*facts) == set()
    found_mother = status(MOTHER, Situation.UNKNOWN, StatusChange.ENDED, "2024-05-02")
    assert found(*facts, found_mother, paid("2024-05")) == {("ORPHAN_PARENT_ALIVE", "2024-05")}


def test_orphan_parent_death_recorded_then_found_alive() -> None:
    parents = ((MOTHER, Situation.DECEASED), (FATHER, Situation.LOST_CONTACT))
    facts = [enrolled(OD, parents=parents), guardian()]
    # father only lost contact: not an orphan until he is dead
    assert found(*facts, paid("2024-03")) == {("ORPHAN_PARENT_ALIVE", "2024-03")}
    assert found(*facts, died(FATHER, "2024-01-05"), paid("2024-03")) == set()


def test_single_recorded_parent() -> None:
    facts = [enrolled(OD, parents=((MOTHER, Situation.DECEASED),)), guardian(), paid("2024-03")]
    assert found(*facts) == set()
    alive = status(MOTHER, Situation.DECEASED, StatusChange.ENDED, "2024-02-01")
    assert found(*facts, alive) == {("ORPHAN_PARENT_ALIVE", "2024-03")}
    # no parent recorded at all: the approval stands
    assert found(enrolled(DF, parents=()), guardian(), paid("2024-03", program=DF)) == set()


def test_person_facts_about_unnamed_persons_are_ignored() -> None:
    stranger = person(77)
    facts = [
        *base(),
        status(stranger, Situation.DECEASED, StatusChange.ENDED, "2024-01-01"),
        died(stranger, "2024-01-01"),
        paid("2024-03"),
    ]
    assert found(*facts) == set()


# --- amount -------------------------------------------------------------------------------


def test_standard_changing_mid_year() -> None:
    facts = [
        *base(),
        standard(90000, "2024-07", OD),
        paid("2024-06", amount=80000),
        paid("2024-07", amount=80000),
        paid("2024-08", amount=95000),
    ]
    alerts = {str(a.period): a for a in run(*facts)}
    assert set(alerts) == {"2024-07", "2024-08"}
    assert alerts["2024-07"].amount_at_risk_fen == 10000
    assert "少发 100.00 元" in alerts["2024-07"].explanation_zh
    assert "underpaid by 100.00" in alerts["2024-07"].explanation_en
    assert alerts["2024-08"].amount_at_risk_fen == 5000
    assert "多发 50.00 元" in alerts["2024-08"].explanation_zh


def test_no_standard_no_amount_check_and_region_specific() -> None:
    facts = [enrolled(OD), guardian(), standard(1, "2020-01", OD, region="110108")]
    assert found(*facts, paid("2024-06", amount=123)) == set()


def test_corrected_standard_latest_recorded_wins() -> None:
    first = standard(85000, "2024-01", OD)
    second = standard(80000, "2024-01", OD)  # recorded later: a correction
    assert found(enrolled(), guardian(), first, second, paid("2024-02")) == set()


# --- payee --------------------------------------------------------------------------------


def test_guardian_changed_day_before_payment() -> None:
    facts = [
        enrolled(),
        guardian(GUARDIAN, "2023-01-01"),
        new := guardian(GUARDIAN2, "2024-03-09"),
    ]
    old_payee = paid("2024-03", paid_on="2024-03-10", payee=GUARDIAN)
    alerts = run(*facts, old_payee)
    assert [a.code for a in alerts] == [C.PAYEE_NOT_GUARDIAN]
    assert new.event_id in alerts[0].evidence_event_ids
    assert "2024-03-09" in alerts[0].explanation_zh
    assert found(*facts, paid("2024-03", paid_on="2024-03-10", payee=GUARDIAN2)) == set()
    # paid on the day before the change: the old guardian was right
    assert found(*facts, paid("2024-03", paid_on="2024-03-08", payee=GUARDIAN)) == set()


def test_child_may_be_payee_and_no_guardian() -> None:
    assert found(enrolled(), paid("2024-03", payee=CHILD)) == set()
    assert found(enrolled(), paid("2024-03", payee=GUARDIAN)) == {("PAYEE_NOT_GUARDIAN", "2024-03")}
    book = PolicyBook(RegionPolicy(child_may_be_payee=False))
    assert found(enrolled(), guardian(), paid("2024-03", payee=CHILD), book=book) == {
        ("PAYEE_NOT_GUARDIAN", "2024-03")
    }


def test_institution_payee_for_institutional_orphan() -> None:
    facts = [enrolled(OI), guardian(INSTITUTION, "2023-06-01")]
    assert found(*facts, paid("2024-03", program=OI, payee=INSTITUTION)) == set()
    assert found(*facts, paid("2024-03", program=OI, payee=GUARDIAN)) == {
        ("PAYEE_NOT_GUARDIAN", "2024-03")
    }
    off = PolicyBook(RegionPolicy(institution_for_institutional=False))
    assert found(*facts, paid("2024-03", program=OI, payee=GUARDIAN), book=off) == set()


def test_payee_who_died() -> None:
    death = died(GUARDIAN, "2024-03-10")
    facts = [*base(), death]
    # died on the payment day: not before it
    assert found(*facts, paid("2024-03", paid_on="2024-03-10")) == set()
    alerts = run(*facts, paid("2024-03", paid_on="2024-03-11"))
    # the dead guardian is still the guardian in force: only PAYEE_DECEASED
    assert [a.code for a in alerts] == [C.PAYEE_DECEASED]
    assert death.event_id in alerts[0].evidence_event_ids
    assert alerts[0].amount_at_risk_fen == 80000
    assert "2024-03-10" in alerts[0].explanation_zh


# --- duplicates ---------------------------------------------------------------------------


def test_duplicate_across_programs_and_regions() -> None:
    facts = [
        od := enrolled(OD),
        enrolled(DF, region="110108"),
        guardian(),
        standard(80000, "2020-01", OD),
        standard(80000, "2020-01", OD, region="110108"),
    ]
    a = paid("2024-03", amount=80000, program=OD)
    b = paid("2024-03", amount=80000, program=DF, region="110108")
    c = paid("2024-03", amount=80000, program=OD, region="110108")
    alerts = run(*facts, a, b, c)
    assert [(x.code, x.subject) for x in alerts] == [(C.DUPLICATE_PAYMENT, "")]
    dup = alerts[0]
    assert dup.amount_at_risk_fen == 160000
    assert dup.evidence_event_ids == tuple(sorted(e.event_id for e in (a, b, c, od)))
    assert dup.program is None
    assert "3 笔" in dup.explanation_zh
    # reversing one extra leaves a smaller duplicate, reversing both withdraws it
    assert run(*facts, a, b, c, reversed_(c))[0].amount_at_risk_fen == 80000
    assert found(*facts, a, b, c, reversed_(c), reversed_(b)) == set()


def test_duplicate_only_among_payable_payments() -> None:
    # second payment under a program the child is not enrolled in: NOT_ENROLLED only
    facts = [*base(), paid("2024-03"), paid("2024-03", program=DF)]
    assert found(*facts) == {("NOT_ENROLLED", "2024-03")}


# --- reversals and retractions --------------------------------------------------------------


def test_reversal_withdraws_and_raises_nothing() -> None:
    pay = paid("2024-04")
    facts = [*base(), died(CHILD, "2024-02-01"), pay]
    assert found(*facts) == {("PAID_AFTER_DEATH", "2024-04")}
    rev = reversed_(pay)
    assert found(*facts, rev) == set()
    # retracting the reversal restores the payment and its alert
    assert found(*facts, rev, retract(rev)) == {("PAID_AFTER_DEATH", "2024-04")}


def test_retraction_removes_a_fact() -> None:
    death = died(CHILD, "2024-02-01")
    facts = [*base(), death, paid("2024-04")]
    assert found(*facts, retract(death)) == set()


def test_retraction_of_retraction_restores_and_cycles_are_void() -> None:
    death = died(CHILD, "2024-02-01")
    facts = [*base(), death, paid("2024-04")]
    r1 = retract(death)
    r2 = retract(r1)
    r3 = retract(r2)
    assert found(*facts, r1, r2) == {("PAID_AFTER_DEATH", "2024-04")}
    assert found(*facts, r1, r2, r3) == set()
    # a retraction retracting itself is void; a cycle of two as well
    self_ref = retract("X1", event_id="X1")
    assert found(*facts, self_ref) == {("PAID_AFTER_DEATH", "2024-04")}
    cyc_a = retract("Y2", event_id="Y1")
    cyc_b = retract("Y1", event_id="Y2")
    assert found(*facts, cyc_a, cyc_b) == {("PAID_AFTER_DEATH", "2024-04")}


def test_same_event_id_twice_keeps_one_deterministically() -> None:
    a = died(CHILD, "2024-02-01", event_id="same")
    b = died(CHILD, "2024-05-01", event_id="same")
    facts = [*base(), paid("2024-04")]
    assert found(*facts, a, b) == found(*facts, b, a)


def test_conflicting_death_dates_latest_recorded_wins() -> None:
    first = died(CHILD, "2024-01-10")
    correction = died(CHILD, "2024-06-10")  # recorded later
    assert found(*base(), first, correction, paid("2024-04")) == set()
    assert found(*base(), first, paid("2024-04")) == {("PAID_AFTER_DEATH", "2024-04")}


def test_corrected_enrollment_replaces_earlier() -> None:
    old = enrolled(OD, "2024-06-01")
    new = enrolled(OD, "2023-06-01")
    facts = [guardian(), paid("2024-03")]
    assert found(old, *facts) == {("PAID_BEFORE_APPROVAL", "2024-03")}
    assert found(old, new, *facts) == set()


def test_enrollment_end_of_an_earlier_spell_is_ignored() -> None:
    facts = [enrolled(OD, "2022-02-01"), enrolled(OD, "2024-01-15"), guardian(),
             ended("2023-05-31"), paid("2024-03")]
    assert found(*facts) == set()


def test_enrollment_end_before_the_only_approval_voids_it() -> None:
    # DESIGN.md section 3, enrollment spells: no earlier spell, so the end voids this one
    facts = [enrolled(OD, "2024-01-15"), guardian(), ended("2023-05-31"), paid("2024-03")]
    assert found(*facts) == {("PAID_AFTER_ENROLLMENT_ENDED", "2024-03")}


# --- missed payment -------------------------------------------------------------------------


def test_missed_payment_and_a_later_payment() -> None:
    cycle = closed("2024-03")
    facts = [*base(), cycle]
    alerts = run(*facts)
    assert [(a.code, str(a.period), a.subject) for a in alerts] == [
        (C.MISSED_PAYMENT, "2024-03", "")
    ]
    assert alerts[0].amount_at_risk_fen == 80000
    assert cycle.event_id in alerts[0].evidence_event_ids
    assert "800.00" in alerts[0].explanation_zh
    late = paid("2024-03", region="110108")  # any region counts as paid
    assert found(*facts, late) == set()
    # a reversed payment does not count
    assert found(*facts, late, reversed_(late)) == {("MISSED_PAYMENT", "2024-03")}


def test_missed_payment_only_when_payable_and_in_region() -> None:
    facts = base(approved="2024-02-10")
    assert found(*facts, closed("2024-02")) == set()  # approval month
    assert found(*facts, closed("2024-03", region="110108")) == set()  # other region
    assert found(*facts, died(CHILD, "2024-02-20"), closed("2024-04")) == set()
    assert found(*facts, closed("2024-03")) == {("MISSED_PAYMENT", "2024-03")}


def test_missed_payment_without_standard_has_zero_at_risk() -> None:
    alerts = run(enrolled(), guardian(), closed("2024-03"))
    assert [a.amount_at_risk_fen for a in alerts] == [0]


def test_over_supplied_facts_are_ignored() -> None:
    other = person(55, dt_born := __import__("datetime").date(2012, 1, 1))
    assert dt_born.year == 2012
    noise = [
        enrolled(OD, child=other, region="110108"),
        paid("2024-03", child=other, region="110108"),
        closed("2024-03", region="110108"),
        standard(1, "2020-01", OD, region="110108"),
        died(other, "2020-01-01"),
    ]
    facts = [*base(), paid("2024-03")]
    assert run(*facts, *noise) == run(*facts)
    assert run(*facts) == []


def test_output_sorted_by_identity_and_explanations_free_of_ids() -> None:
    facts = [
        *base(),
        died(CHILD, "2024-01-05"),
        paid("2024-02", amount=1, payee=GUARDIAN2),
        paid("2024-03", payee=GUARDIAN2),
        paid("2024-04"),
        closed("2024-05"),
    ]
    alerts = run(*facts)
    assert len(alerts) == 3
    assert [a.identity for a in alerts] == sorted(a.identity for a in alerts)
    for a in alerts:
        for text in (a.explanation_zh, a.explanation_en):
            for pid in (CHILD, GUARDIAN, GUARDIAN2, MOTHER, FATHER):
                assert pid not in text
            assert a.subject == "" or a.subject not in text


def test_region_policy_stop_same_month() -> None:
    book = PolicyBook(
        RegionPolicy(), {REGION: dataclasses.replace(RegionPolicy(), death_stops_same_month=True)}
    )
    assert found(*base(), died(CHILD, "2024-03-15"), paid("2024-03"), book=book) == {
        ("PAID_AFTER_DEATH", "2024-03")
    }


def test_missed_payment_once_per_period_when_enrolled_in_two_regions() -> None:
    facts = [
        enrolled(OD),
        enrolled(DF, region="110108"),
        guardian(),
        closed("2024-03"),
        closed("2024-03", region="110108"),
    ]
    alerts = run(*facts)
    assert [(a.code, a.region, a.program) for a in alerts] == [(C.MISSED_PAYMENT, REGION, OD)]


def test_corrected_enrollment_region_changes_evidence_and_region() -> None:
    facts = [guardian(), died(CHILD, "2024-01-05"), paid("2024-04")]
    before = run(enrolled(OD, region="110105"), *facts)
    after = run(enrolled(OD, region="110105"), enrolled(OD, region="110108"), *facts)
    assert [a.id_under(b"k") for a in before] == [a.id_under(b"k") for a in after]
    assert (before[0].region, after[0].region) == ("110105", "110108")
    assert before[0].evidence_event_ids != after[0].evidence_event_ids


def test_orphan_found_alive_boundaries() -> None:
    for day, first_bad in (("2024-02-29", "2024-02"), ("2024-03-01", "2024-03")):
        alive = status(FATHER, Situation.DECEASED, StatusChange.ENDED, day)
        months = [paid(f"2024-0{m}") for m in (1, 2, 3)]
        bad = {("ORPHAN_PARENT_ALIVE", m) for m in ("2024-02", "2024-03") if m >= first_bad}
        assert found(*base(), alive, *months) == bad


def test_orphan_found_alive_then_declared_dead_again() -> None:
    facts = [
        *base(),
        status(FATHER, Situation.DECEASED, StatusChange.ENDED, "2024-03-10"),
        died(FATHER, "2024-05-20"),
        *(paid(f"2024-0{m}") for m in range(2, 8)),
    ]
    # March to May touched by the living parent; from June an orphan again
    assert found(*facts) == {("ORPHAN_PARENT_ALIVE", f"2024-0{m}") for m in (3, 4, 5)}


def test_every_code_explained_in_both_languages_with_period_and_amount() -> None:
    g, s = guardian(), standard()
    scenarios = [
        [enrolled(), g, died(CHILD, "2024-03-15"), paid("2024-05")],
        [enrolled(), g, extension("2029-01-31"), paid("2029-03")],
        [enrolled(), g, adopted("2024-01-02"), paid("2024-03")],
        [
            enrolled(DF),
            g,
            status(MOTHER, Situation.IN_CUSTODY, StatusChange.ENDED, "2024-03-15"),
            paid("2024-05", program=DF),
        ],
        [enrolled(DF, parents=((MOTHER, Situation.UNKNOWN),)), g, paid("2024-05", program=DF)],
        [
            enrolled(),
            g,
            status(FATHER, Situation.DECEASED, StatusChange.ENDED, "2024-03-15"),
            paid("2024-05"),
        ],
        [enrolled(), g, ended("2024-02-10"), paid("2024-05")],
        [enrolled(approved="2024-05-03"), g, paid("2024-05")],
        [enrolled(), g, paid("2024-05", program=OI)],
        [enrolled(), g, s, paid("2024-05", amount=70000)],
        [enrolled(), paid("2024-05", payee=GUARDIAN2)],
        [enrolled(), g, died(GUARDIAN, "2024-04-30"), paid("2024-05")],
        [enrolled(), g, s, paid("2024-05"), paid("2024-05")],
        [enrolled(), g, s, closed("2024-05")],
    ]
    codes: set[AlertCode] = set()
    for facts in scenarios:
        alerts = run(*facts)
        assert alerts, facts
        for a in alerts:
            codes.add(a.code)
            assert str(a.period) in a.explanation_zh and str(a.period) in a.explanation_en
            assert " 元" in a.explanation_zh and " yuan" in a.explanation_en
            assert a.explanation_zh.endswith("。") and a.explanation_en.endswith(".")
    assert codes == set(AlertCode)
