"""The verifier's working set is bounded by the facts its cached children hold."""

from __future__ import annotations

from humiao.domain.child_facts import ChildFacts
from humiao.verifier.memory import Memory, Staged


def _child(key: str, facts: int) -> ChildFacts:
    # The bound counts entries only, so placeholder envelopes are enough here.
    own = {f"{key}-{i}": None for i in range(facts)}
    return ChildFacts(key, 0, own, set(), facts, None, None)  # type: ignore[arg-type]


def _apply(mem: Memory, *children: ChildFacts) -> None:
    staged = Staged()
    for c in children:
        staged.children[c.child_id] = c
    mem.apply(staged)


def test_oldest_children_are_evicted_until_the_facts_fit() -> None:
    mem = Memory(max_children=1000, max_facts=10)
    _apply(mem, _child("a", 4), _child("b", 4))
    assert mem.facts_held == 8
    _apply(mem, _child("c", 4))
    assert list(mem.children) == ["b", "c"]
    assert mem.facts_held == 8


def test_a_child_that_grows_is_recounted_not_added_twice() -> None:
    mem = Memory(max_children=1000, max_facts=10)
    _apply(mem, _child("a", 3), _child("b", 3))
    _apply(mem, _child("a", 6))  # a grew and became the most recently used
    assert mem.facts_held == 9
    assert list(mem.children) == ["b", "a"]
    _apply(mem, _child("b", 5))
    assert list(mem.children) == ["b"]
    assert mem.facts_held == 5


def test_the_child_count_cap_still_applies_and_clear_resets() -> None:
    mem = Memory(max_children=2, max_facts=1000)
    _apply(mem, _child("a", 1), _child("b", 1), _child("c", 1))
    assert list(mem.children) == ["b", "c"]
    assert mem.facts_held == 2
    mem.clear()
    assert mem.facts_held == 0 and not mem.children


def test_zero_facts_turns_the_working_set_off() -> None:
    mem = Memory(max_facts=0)
    _apply(mem, _child("a", 1))
    assert not mem.children
