"""Enrollment spells (DESIGN.md section 3): which spell an enrollmentEnded ends."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from builders import CHILD, GUARDIAN, ended, enrolled, guardian, paid, standard
from humiao.domain.events import Envelope
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_child
from humiao.domain.timeline import build_timeline, ends_spell_in_force
from humiao.domain.values import Period, Program

BOOK = PolicyBook.default()
OD = Program.ORPHAN_DISPERSED


def found(*facts: Envelope) -> set[tuple[str, str]]:
    return {(a.code.name, str(a.period)) for a in evaluate_child(CHILD, list(facts), BOOK)}


def base(approved: str = "2023-12-10") -> list[Envelope]:
    return [enrolled(OD, approved), guardian(GUARDIAN), standard(80000, "2020-01", OD)]


def test_end_dated_before_the_only_approval_voids_the_spell() -> None:
    # the district ended the enrollment "as of" before it was ever approved: the child
    # never qualified, every payment under it is PAID_AFTER_ENROLLMENT_ENDED
    facts = [*base("2023-12-10"), ended("2023-10-31"), paid("2024-01"), paid("2024-02")]
    assert found(*facts) == {
        ("PAID_AFTER_ENROLLMENT_ENDED", "2024-01"),
        ("PAID_AFTER_ENROLLMENT_ENDED", "2024-02"),
    }


def test_without_the_voiding_end_the_same_payments_are_fine() -> None:
    assert found(*base("2023-12-10"), paid("2024-01"), paid("2024-02")) == set()


def test_end_between_two_spells_belongs_to_the_earlier_one() -> None:
    first = enrolled(OD, "2022-03-01")
    again = enrolled(OD, "2023-12-10")  # re-enrolled, recorded later: in force
    end_of_first = ended("2023-05-31")
    tl = build_timeline(CHILD, [first, again, end_of_first])
    assert tl.enrollments == {OD: again}
    assert tl.ends == {}
    facts = [first, again, end_of_first, guardian(GUARDIAN), standard(80000, "2020-01", OD)]
    assert found(*facts, paid("2024-01")) == set()


def test_end_before_every_approval_voids_the_earliest_spell_not_the_later_one() -> None:
    first = enrolled(OD, "2022-03-01")
    again = enrolled(OD, "2023-12-10")
    void = ended("2021-12-31")
    assert build_timeline(CHILD, [first, again, void]).ends == {}


def test_end_on_or_after_the_spell_in_force_applies_latest_recorded() -> None:
    first = enrolled(OD, "2022-03-01")
    again = enrolled(OD, "2023-12-10")
    later = ended("2024-06-30")
    on_day = ended("2023-12-10")  # recorded after `later`: a correction of the day
    tl = build_timeline(CHILD, [first, again, later, on_day])
    assert tl.ends == {OD: on_day}  # recorded latest of the two that end this spell


def test_a_later_approval_recorded_earlier_is_superseded_not_a_spell() -> None:
    # approval corrected backwards: the end after both dates is the spell in force's
    superseded = enrolled(OD, "2023-05-01")
    corrected = enrolled(OD, "2023-01-10")
    end = ended("2023-07-31")
    assert build_timeline(CHILD, [superseded, corrected, end]).ends == {OD: end}


def test_ends_of_other_programs_play_no_part() -> None:
    facts = [*base("2023-12-10"), ended("2023-10-31", program=Program.DE_FACTO_UNSUPPORTED),
             paid("2024-01")]
    assert found(*facts) == set()


days = st.dates(min_value=dt.date(2019, 1, 1), max_value=dt.date(2026, 12, 31))


@given(end=days, approvals=st.lists(days, min_size=1, max_size=4), pick=st.integers(0, 3))
def test_ends_spell_in_force_law(end: dt.date, approvals: list[dt.date], pick: int) -> None:
    """The spell an end belongs to is the latest approval on or before it, else the
    earliest; approvals after the one in force do not count."""
    in_force = approvals[pick % len(approvals)]
    spells = [a for a in approvals if a <= in_force]
    before = [a for a in spells if a <= end]
    spell = max(before) if before else min(spells)
    assert ends_spell_in_force(end, in_force, approvals) is (spell == in_force)


@settings(max_examples=80)
@given(approved=days, end=days, month_offset=st.integers(-3, 30))
def test_single_spell_payment_verdict(approved: dt.date, end: dt.date, month_offset: int
                                      ) -> None:
    """One spell, one end anywhere: a payment is flagged PAID_AFTER_ENROLLMENT_ENDED
    exactly when its month is after the end's month, the end dated before approval too."""
    period = Period.of_date(approved) + month_offset
    facts = [*base(approved.isoformat()), ended(end.isoformat()), paid(str(period))]
    codes = {code for code, _ in found(*facts)}
    assert ("PAID_AFTER_ENROLLMENT_ENDED" in codes) is (Period.of_date(end) < period)
    assert ("PAID_BEFORE_APPROVAL" in codes) is (period <= Period.of_date(approved))
