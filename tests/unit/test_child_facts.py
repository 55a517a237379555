"""The pure part of the verifier's batch: typed refs, the children a batch touches,
following retractions and reversals; and the one LRU the verifier's caches share."""

from __future__ import annotations

from dataclasses import dataclass

from builders import CHILD, GUARDIAN, MOTHER, REGION, closed, died, enrolled, paid, retract
from builders import reversed_ as reversal
from humiao.adapters.verifier_store import ref_from_text, ref_text
from humiao.domain import events as ev
from humiao.domain.child_facts import (
    CorrectionIndex,
    FactHead,
    Ref,
    RefKind,
    follow_corrections,
    follow_retractions,
    named_refs,
    subject_of,
    touched_by,
)
from humiao.verifier.lru import Lru


def key_of(person_id: str) -> str:
    return "k" + person_id[-4:]


@dataclass
class Fact:
    env: ev.Envelope
    partition: int
    child_key: str | None
    subject: Ref | None
    refs: tuple[Ref, ...]


def fact(env: ev.Envelope, partition: int = 0) -> Fact:
    if env.kind in ev.CHILD_KINDS:
        key = key_of(env.body.child_id)  # type: ignore[union-attr]
        return Fact(env, partition, key, None, named_refs(key, env.body, key_of))
    return Fact(env, partition, None, subject_of(env.body, key_of), ())


def test_refs_are_typed_and_stored_as_prefixed_text() -> None:
    death = died(MOTHER, "2024-01-01")
    assert subject_of(death.body, key_of) == Ref(RefKind.PERSON, key_of(MOTHER))
    assert subject_of(closed("2024-01").body, key_of) == Ref(RefKind.REGION, REGION)
    payment = paid("2024-01")
    assert subject_of(reversal(payment).body, key_of) == Ref(
        RefKind.DISBURSEMENT, payment.body.disbursement_id  # type: ignore[union-attr]
    )
    assert subject_of(retract(payment).body, key_of) == Ref(RefKind.EVENT, payment.event_id)
    refs = named_refs(key_of(CHILD), enrolled().body, key_of)
    assert refs[0] == Ref(RefKind.PERSON, key_of(CHILD))
    assert Ref(RefKind.REGION, REGION) in refs and Ref(RefKind.PERSON, key_of(MOTHER)) in refs
    for ref in refs:
        assert ref_from_text(ref_text(ref)) == ref
    assert ref_text(Ref(RefKind.EVENT, "e:1")) == "e:e:1"  # a value may hold the separator
    assert ref_from_text("e:e:1") == Ref(RefKind.EVENT, "e:1")
    assert Ref(RefKind.EVENT, "x").corrects and not Ref(RefKind.PERSON, "x").corrects
    # the same text under two kinds is two refs
    assert Ref(RefKind.PERSON, "110") != Ref(RefKind.REGION, "110")


def test_a_batch_touches_children_with_new_facts_only_and_sorts_the_copies() -> None:
    new, old = enrolled(), paid("2024-01")
    death, close, payment = died(GUARDIAN, "2024-02-01"), closed("2024-01"), paid("2024-02")
    undo, undo_pay = retract(old), reversal(payment)
    facts = [fact(e) for e in (new, old, death, close, undo, undo_pay)]
    touched = touched_by(facts, {new.event_id}, lambda key: None)
    assert touched.affected == {key_of(CHILD)}
    assert set(touched.new_facts[key_of(CHILD)]) == {new.event_id}  # `old` was stored before
    assert {r for _, r, _ in touched.child_refs} == set(named_refs(key_of(CHILD), new.body, key_of))
    assert touched.pairs == [(subject_of(death.body, key_of), 0), (Ref(RefKind.REGION, REGION), 0)]
    assert touched.retractions == [(old.event_id, 0)]
    assert touched.rare_pairs == [(subject_of(undo_pay.body, key_of), 0)]
    assert len(touched.copies) == 4
    # a held child naming the same refs records none again
    held = touched_by(facts, {new.event_id}, lambda key: set(named_refs(key, new.body, key_of)))
    assert held.child_refs == [] and held.affected == {key_of(CHILD)}


def test_retractions_are_followed_to_children_copies_and_retractions() -> None:
    heads = {
        "own": FactHead("own", "disbursement", "child-a", 0, None),
        "elsewhere": FactHead("elsewhere", "disbursement", "child-b", 1, None),
        "death": FactHead("death", "personDied", None, None, Ref(RefKind.PERSON, "p1")),
        "undo": FactHead("undo", "eventRetracted", None, None, Ref(RefKind.EVENT, "death")),
    }
    asked = [("own", 0), ("elsewhere", 0), ("death", 0), ("undo", 0), ("unknown", 0)]
    hit, pairs, follow = follow_retractions(asked, heads)
    assert hit == {"child-a"}  # child-b's fact lives on partition 1: its own copy decides
    assert pairs == [(Ref(RefKind.PERSON, "p1"), 0)]
    assert follow == [("death", 0)]  # a retracted retraction: what it retracted, next


def test_corrections_are_followed_transitively() -> None:
    payment = paid("2024-01")
    undo_pay = reversal(payment)
    undo_undo = retract(undo_pay)
    index = CorrectionIndex.of([{
        Ref(RefKind.DISBURSEMENT, payment.body.disbursement_id): {  # type: ignore[union-attr]
            undo_pay.event_id: undo_pay},
        Ref(RefKind.EVENT, undo_pay.event_id): {undo_undo.event_id: undo_undo},
    }])
    assert index.touches(payment) and index.touches(undo_pay)
    assert not index.touches(undo_undo) and not index.touches(paid("2024-02"))
    facts = {payment.event_id: payment}
    added = follow_corrections(facts, [payment], index)
    assert set(added) == {undo_pay.event_id, undo_undo.event_id}
    assert set(facts) == {payment.event_id, undo_pay.event_id, undo_undo.event_id}
    assert follow_corrections({}, [payment], CorrectionIndex.of([])) == {}


def test_the_lru_bounds_count_and_weight_and_only_hits_and_puts_count_as_use() -> None:
    lru: Lru[str, int] = Lru(3, max_weight=10)
    for key in "abc":
        lru.put(key, 1, weight=3)
    assert lru.get("a") == 1  # a plain read does not make "a" recent...
    lru.put("d", 1, weight=1)
    assert list(lru) == ["b", "c", "d"]  # ...so it went first
    assert lru.hit("b") == 1  # a hit does
    lru.put("e", 1, weight=5)  # 3 + 1 + 3 + 5 > 10: the least recent go until it fits
    assert list(lru) == ["d", "b", "e"] and lru.weight == 9
    lru.put("b", 2, weight=1)  # put again: re-weighed, not added twice
    assert lru.weight == 7 and lru["b"] == 2
    lru.clear()
    assert lru.weight == 0 and not lru
