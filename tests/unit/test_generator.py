"""The synthetic city: deterministic, valid, and its ground truth agrees with the rules.

The truth is kept by construction (each injected irregularity writes down the alert it
must cause); humiao.domain.rules reads DESIGN.md independently. Agreement on whole
cities cross-checks the two readings.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from pathlib import Path

import pytest

from humiao.adapters.codec import envelope_from_proto, envelope_to_proto, proto_from_json
from humiao.domain.alerts import AlertCode
from humiao.domain.events import CHILD_KINDS, Disbursement, Envelope
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_child
from humiao.domain.values import Period
from humiao_dev.demo.city import (
    CORRECTIONS,
    INJECTIONS,
    City,
    CityConfig,
    ExpectedAlert,
    generate_city,
    load_truth,
    shuffled,
    write_city,
)
from humiao_dev.demo.scoring import RaisedAlert, score

SMALL = CityConfig(seed=7, children=400)


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city(SMALL)


def implied(facts: Iterable[Envelope]) -> set[ExpectedAlert]:
    """Every alert humiao.domain.rules derives from the facts, child by child."""
    by_child: dict[str, list[Envelope]] = collections.defaultdict(list)
    shared: list[Envelope] = []
    for env in facts:
        if env.kind in CHILD_KINDS:
            by_child[env.body.child_id].append(env)  # type: ignore[union-attr]
        else:
            shared.append(env)
    policies = PolicyBook.default()
    return {
        ExpectedAlert(d.code, d.child_id, d.period, d.subject)
        for child, own in by_child.items()
        for d in evaluate_child(child, own + shared, policies)
    }


def explain(got: set[ExpectedAlert], want: frozenset[ExpectedAlert]) -> str:
    extra = sorted(got - want)[:5]
    missing = sorted(want - got)[:5]
    return f"rules raise but truth lacks {extra}; truth has but rules lack {missing}"


def test_same_seed_same_city_other_seed_other_city(city: City) -> None:
    again = generate_city(SMALL)
    assert again.events == city.events
    assert again.corrections == city.corrections
    assert again.truth == city.truth
    other = generate_city(CityConfig(seed=8, children=400))
    assert other.truth != city.truth
    assert {e.event_id for e in other.events}.isdisjoint(e.event_id for e in city.events)


def test_every_envelope_is_valid_and_survives_the_codec(city: City) -> None:
    for env in (*city.events, *city.corrections):
        assert envelope_from_proto(envelope_to_proto(env)) == env
    ids = [e.event_id for e in (*city.events, *city.corrections)]
    assert len(ids) == len(set(ids))


def test_recorded_order_and_corrections_come_last(city: City) -> None:
    stamps = [e.recorded_at for e in city.events]
    assert stamps == sorted(stamps)
    assert min(e.recorded_at for e in city.corrections) > stamps[-1]
    assert {e.kind for e in city.corrections} == {"disbursementReversed", "eventRetracted"}


def test_every_check_is_injected_and_every_correction_happens(city: City) -> None:
    assert {a.code for a in city.truth} == set(AlertCode)
    for name in INJECTIONS:
        assert city.stories.get(f"injected: {name}", 0) >= 1, name
    for name in CORRECTIONS:
        assert city.stories.get(f"corrected: {name}", 0) >= 1, name
    assert city.withdrawn_by_corrections, "the corrections must take some alerts back"
    assert {a.code for a in city.raised_by_corrections} == {AlertCode.MISSED_PAYMENT}


def test_truth_matches_the_rules_after_and_before_corrections(city: City) -> None:
    after = implied((*city.events, *city.corrections))
    assert after == city.truth, explain(after, city.truth)
    before = implied(city.events)
    assert before == city.before_corrections, explain(before, city.before_corrections)


@pytest.mark.parametrize(
    "config",
    [
        CityConfig(seed=11, children=300, months=24, start="2022-07"),
        CityConfig(seed=12, children=250, months=12, regions=("110105",),
                   injection_rate=0.02, correction_rate=0.01),
    ],
    ids=["24-months-mid-year", "one-district-dense"],
)
def test_truth_matches_the_rules_for_other_shapes(config: CityConfig) -> None:
    other = generate_city(config)
    after = implied((*other.events, *other.corrections))
    assert after == other.truth, explain(after, other.truth)


def test_the_honest_history_alone_implies_no_alert() -> None:
    honest = generate_city(CityConfig(seed=3, children=300, injection_rate=0.0,
                                      correction_rate=0.0, min_per_code=0))
    assert honest.truth == frozenset() and honest.corrections == ()
    assert not any(k.startswith(("injected", "corrected")) for k in honest.stories)
    found = implied(honest.events)
    assert found == set(), explain(found, frozenset())


def test_honest_payments_follow_the_shape_the_truth_relies_on(city: City) -> None:
    """Paid on days 1-5, one payment per child and month unless an injection says so."""
    per_month: collections.Counter[tuple[str, Period]] = collections.Counter()
    for env in city.events:
        if isinstance(env.body, Disbursement):
            assert env.body.paid_on.day <= 19
            per_month[(env.body.child_id, env.body.period)] += 1
    doubled = {k for k, n in per_month.items() if n > 1}
    dup_truth = {(a.child_id, a.period) for a in city.before_corrections
                 if a.code is AlertCode.DUPLICATE_PAYMENT}
    assert doubled == dup_truth


def test_shuffled_feed_has_the_same_facts_with_duplicates_and_the_same_verdicts(
    city: City,
) -> None:
    mixed = shuffled(city.events, seed=1)
    assert len(mixed) > len(city.events)
    assert set(mixed) == set(city.events)
    assert [e.event_id for e in mixed] != [e.event_id for e in city.events]
    assert implied((*mixed, *reversed(city.corrections))) == city.truth


def test_files_round_trip(tmp_path: Path) -> None:
    small = generate_city(CityConfig(seed=5, children=60))
    files = write_city(small, tmp_path)
    lines = files.events.read_text(encoding="utf-8").splitlines()
    assert tuple(envelope_from_proto(proto_from_json(line)) for line in lines) == small.events
    assert '"disbursement":{' in lines[-1] or '"paymentCycleClosed"' in lines[-1]
    assert load_truth(files.truth) == (small.truth, small.before_corrections)
    mixed = write_city(small, tmp_path, shuffle=True)
    assert mixed.events.name == "events-shuffled.jsonl"
    assert len(mixed.events.read_text().splitlines()) > len(lines)


def test_bad_config_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="children"):
        CityConfig(children=3)
    with pytest.raises(ValueError, match="regions"):
        CityConfig(regions=("11010",))


def test_scoring_counts_missed_spurious_and_withdrawn() -> None:
    p = Period.parse("2024-03")
    truth = {ExpectedAlert(AlertCode.PAID_AFTER_DEATH, "c1", p, "d1"),
             ExpectedAlert(AlertCode.MISSED_PAYMENT, "c2", p, "")}
    gone = ExpectedAlert(AlertCode.DUPLICATE_PAYMENT, "c3", p, "")

    def row(a: ExpectedAlert, implied: bool, status: str, fen: int = 100) -> RaisedAlert:
        return RaisedAlert(f"A-{a.code.name}-{a.child_id}", a.code, a.child_id, a.period,
                           a.subject, status, implied, fen)

    wrong = ExpectedAlert(AlertCode.AMOUNT_MISMATCH, "c4", p, "d4")
    result = score(truth, [
        row(ExpectedAlert(AlertCode.PAID_AFTER_DEATH, "c1", p, "d1"), True, "OPEN", 250),
        row(gone, False, "WITHDRAWN"),
        row(wrong, True, "OPEN"),
    ], expected_withdrawn={gone})
    assert result.missed == {ExpectedAlert(AlertCode.MISSED_PAYMENT, "c2", p, "")}
    assert result.spurious == {wrong}
    assert (result.withdrawn, result.expected_withdrawn) == (1, 1)
    assert result.precision == 0.5 and result.recall == 0.5 and not result.perfect
    assert result.amount_found_fen == 250
    by_code = {r.code: r for r in result.rows}
    assert by_code[AlertCode.AMOUNT_MISMATCH].spurious == 1
    assert by_code[AlertCode.DUPLICATE_PAYMENT].withdrawn == 1
