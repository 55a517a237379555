"""Arrival order and repetition never change the verdicts (DESIGN.md section 6).

Hypothesis generates tangled histories: several children sharing parents, guardians and
payees, two regions, conflicting corrections, disbursement ids sent twice, reversals,
retractions of retractions (cycles included), event ids reused with different content.
"""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import INSTITUTION, person
from humiao.domain.events import (
    AllowanceStandardSet,
    Body,
    ChildAdopted,
    ChildEnrolled,
    Disbursement,
    DisbursementReversed,
    EnrollmentEnded,
    Envelope,
    EventRetracted,
    GuardianAppointed,
    ParentRecord,
    PaymentCycleClosed,
    PersonDied,
    PersonStatusChanged,
    SchoolingExtension,
)
from humiao.domain.lifecycle import StoredAlert, reconcile, stored_after
from humiao.domain.policy import PolicyBook, RegionPolicy
from humiao.domain.rules import _Evaluator, evaluate_child
from humiao.domain.timeline import build_timeline, dedupe
from humiao.domain.values import (
    DE_FACTO_SITUATIONS,
    EnrollmentEndReason,
    Period,
    Program,
    Situation,
    StatusChange,
)

BIRTHS = {
    person(101, dt.date(2006, 11, 30)): dt.date(2006, 11, 30),  # 18 in 2024-11
    person(102, dt.date(2010, 5, 1)): dt.date(2010, 5, 1),
    person(103, dt.date(2012, 2, 29)): dt.date(2012, 2, 29),
}
CHILDREN = list(BIRTHS)
KEY = b"order-test-key"
PARENTS = [person(200 + i) for i in range(4)]
GUARDIANS = [person(300 + i) for i in range(3)] + [INSTITUTION]
REGIONS = ["110105", "110108"]
FIRST_DAY = dt.date(2023, 9, 1)
LAST_DAY = dt.date(2025, 3, 31)
FIRST_MONTH = Period.of(2023, 10)
DISBURSEMENT_IDS = [f"D{i}" for i in range(10)]
BOOK = PolicyBook(
    RegionPolicy(),
    {"110108": RegionPolicy(schooling_extension_allowed=False, death_stops_same_month=True)},
)

days = st.dates(FIRST_DAY, LAST_DAY)
months = st.integers(0, 17).map(lambda i: FIRST_MONTH + i)
programs = st.sampled_from(list(Program))
regions = st.sampled_from(REGIONS)
children = st.sampled_from(CHILDREN)
amounts = st.sampled_from([70000, 80000, 90000])
recorded = st.integers(0, 5).map(lambda h: dt.datetime(2025, 4, 1, h, tzinfo=dt.UTC))


@st.composite
def enrollment(draw: st.DrawFn) -> Body:
    child = draw(children)
    parents = draw(
        st.lists(
            st.tuples(st.sampled_from(PARENTS), st.sampled_from(list(Situation))),
            max_size=2,
            unique_by=lambda t: t[0],
        )
    )
    return ChildEnrolled(
        child,
        BIRTHS[child],
        draw(programs),
        draw(regions),
        draw(days),
        tuple(ParentRecord(pid, sit) for pid, sit in parents),
    )


@st.composite
def disbursement(draw: st.DrawFn) -> Body:
    period = draw(months)
    paid_on = period.first_day() + dt.timedelta(days=draw(st.integers(0, 40)))
    return Disbursement(
        draw(st.sampled_from(DISBURSEMENT_IDS)),
        draw(children),
        draw(programs),
        period,
        draw(amounts),
        paid_on,
        draw(st.sampled_from(GUARDIANS + CHILDREN)),
        draw(regions),
    )


bodies = st.one_of(
    enrollment(),
    enrollment(),
    disbursement(),
    disbursement(),
    disbursement(),
    st.builds(
        EnrollmentEnded, children, programs, days, st.sampled_from(list(EnrollmentEndReason))
    ),
    st.builds(SchoolingExtension, children, days),
    st.builds(GuardianAppointed, children, st.sampled_from(GUARDIANS), days),
    st.builds(ChildAdopted, children, days),
    st.builds(PersonDied, st.sampled_from(CHILDREN + PARENTS + GUARDIANS), days),
    st.builds(
        PersonStatusChanged,
        st.sampled_from(PARENTS),
        st.sampled_from(list(Situation)),
        st.sampled_from(list(StatusChange)),
        days,
    ),
    st.builds(DisbursementReversed, st.sampled_from(DISBURSEMENT_IDS), days),
    st.builds(AllowanceStandardSet, regions, programs, months, amounts),
    st.builds(AllowanceStandardSet, regions, programs, months, amounts),
    st.builds(PaymentCycleClosed, regions, months),
    st.builds(PaymentCycleClosed, regions, months),
)


def fitting_parents(draw: st.DrawFn, program: Program) -> tuple[ParentRecord, ...]:
    """Two parents whose recorded situations qualify the child for `program`."""
    mother, father = draw(st.permutations(PARENTS))[:2]
    absent = [Situation.DECEASED, Situation.MISSING_DECLARED, Situation.UNKNOWN]
    if program is Program.DE_FACTO_UNSUPPORTED:
        first = draw(st.sampled_from(sorted(DE_FACTO_SITUATIONS)))
        second = draw(st.sampled_from([*sorted(DE_FACTO_SITUATIONS), *absent[:2]]))
    else:
        first, second = draw(st.sampled_from(absent)), draw(st.sampled_from(absent))
    return (ParentRecord(mother, first), ParentRecord(father, second))


@st.composite
def child_story(draw: st.DrawFn, child: str) -> list[Body]:
    """A plausible history for one child: mostly consistent, so every check can fire."""
    program = draw(programs)
    region = draw(regions)
    guardians = draw(st.lists(st.sampled_from(GUARDIANS), min_size=1, max_size=2))
    out: list[Body] = []
    for _ in range(draw(st.integers(0, 2))):
        enr = draw(enrollment())
        assert isinstance(enr, ChildEnrolled)
        out.append(
            ChildEnrolled(
                child,
                enr.birth_date if enr.child_id == child else BIRTHS[child],
                draw(st.sampled_from([program, program, enr.program])),
                draw(st.sampled_from([region, region, enr.region])),
                draw(st.dates(FIRST_DAY, dt.date(2024, 3, 31))),
                draw(st.sampled_from([enr.parents, fitting_parents(draw, program)])),
            )
        )
    out.extend(
        GuardianAppointed(child, g, draw(st.dates(FIRST_DAY, dt.date(2024, 6, 30))))
        for g in guardians
    )
    for _ in range(draw(st.integers(0, 8))):
        d = draw(disbursement())
        assert isinstance(d, Disbursement)
        out.append(
            Disbursement(
                d.disbursement_id,
                child,
                draw(st.sampled_from([program, program, program, d.program])),
                d.period,
                d.amount_fen,
                d.paid_on,
                draw(st.sampled_from([*guardians, d.payee_id])),
                draw(st.sampled_from([region, region, d.region])),
            )
        )
    return out


@st.composite
def histories(draw: st.DrawFn) -> list[Envelope]:
    """Facts for several children; some event ids reused, some retractions."""
    story: list[Body] = []
    for child in CHILDREN:
        story.extend(draw(child_story(child)))
    story.extend(draw(st.lists(bodies, max_size=20)))
    story.extend(draw(st.lists(st.builds(PaymentCycleClosed, regions, months), max_size=4)))
    story.extend(
        AllowanceStandardSet(r, Program.ORPHAN_DISPERSED, FIRST_MONTH, 80000) for r in REGIONS
    )
    facts = [Envelope(f"E{i:03d}", draw(recorded), "test", body) for i, body in enumerate(story)]
    n_retractions = draw(st.integers(0, 5))
    ids = [e.event_id for e in facts] + [f"R{i}" for i in range(n_retractions)]
    for i in range(n_retractions):
        target = draw(st.sampled_from(ids))
        facts.append(Envelope(f"R{i}", draw(recorded), "test", EventRetracted(target, "fix")))
    # a source bug: another fact under an existing event id
    for _ in range(draw(st.integers(0, 2))):
        other = draw(bodies)
        reused = draw(st.sampled_from(facts)).event_id
        facts.append(Envelope(reused, draw(recorded), "test", other))
    return facts


def canonical(facts: list[Envelope]) -> list[Envelope]:
    return sorted(dedupe(facts).values(), key=lambda e: e.event_id)


def arrival(facts: list[Envelope], rnd: random.Random) -> list[Envelope]:
    """A shuffled arrival with some facts delivered more than once."""
    out = facts + [rnd.choice(facts) for _ in range(rnd.randint(0, len(facts)))]
    rnd.shuffle(out)
    return out


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(histories(), st.randoms(use_true_random=False))
def test_any_order_and_duplication_gives_the_same_alerts(
    facts: list[Envelope], rnd: random.Random
) -> None:
    base = canonical(facts)
    shuffled = arrival(facts, rnd)
    for child in CHILDREN:
        expected = evaluate_child(child, base, BOOK)
        assert evaluate_child(child, shuffled, BOOK) == expected
        assert evaluate_child(child, list(reversed(shuffled)), BOOK) == expected
        assert [a.identity for a in expected] == sorted(a.identity for a in expected)
        assert len({a.id_under(KEY) for a in expected}) == len(expected)
        # the fast path (payable window) agrees with the full list of causes
        ev = _Evaluator(build_timeline(child, base), BOOK)
        for program in Program:
            region, _ = ev.region_for(program, "110105")
            for i in range(-2, 20):
                month = FIRST_MONTH + i
                causes = ev.causes(program, month, BOOK.for_region(region))
                assert ev.payable(program, month) is (not causes)
        for a in expected:
            assert a.child_id == child
            assert a.amount_at_risk_fen >= 0
            assert list(a.evidence_event_ids) == sorted(set(a.evidence_event_ids))
            texts = a.explanation_zh + a.explanation_en
            assert not any(pid in texts for pid in CHILDREN + PARENTS + GUARDIANS)


def implied(stored: dict[str, StoredAlert]) -> dict[str, tuple[int, tuple[str, ...], str]]:
    return {
        aid: (s.amount_at_risk_fen, s.evidence_event_ids, s.explanation_en)
        for aid, s in stored.items()
        if s.implied
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.randoms(use_true_random=False))
def test_incremental_reconcile_converges_to_one_evaluation(
    facts: list[Envelope], rnd: random.Random
) -> None:
    order = arrival(facts, rnd)
    for child in CHILDREN:
        stored: dict[str, StoredAlert] = {}
        for i in range(1, len(order) + 1):
            changes = reconcile(stored, evaluate_child(child, order[:i], BOOK), KEY)
            for ch in changes:
                old = stored.get(ch.alert_id)
                assert ch.version == (old.version + 1 if old else 1)
            stored = stored_after(stored, changes)
        final = evaluate_child(child, canonical(facts), BOOK)
        assert reconcile(stored, final, KEY) == []
        assert implied(stored) == {
            a.id_under(KEY): (a.amount_at_risk_fen, a.evidence_event_ids, a.explanation_en)
            for a in final
        }
