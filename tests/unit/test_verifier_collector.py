"""collector.BatchCollector: the automatic collector is off; cyclic garbage made since the
last batch goes after each batch, what survives is frozen, and a frozen cycle that dies
later goes at the next full collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from humiao.verifier.collector import BatchCollector


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def collector() -> Iterator[tuple[BatchCollector, Clock]]:
    clock = Clock()
    c = BatchCollector(young_seconds=10, full_seconds=600, clock=clock)
    was = gc.isenabled()
    c.start()
    try:
        yield c, clock
    finally:
        c.stop()
        if was:
            gc.enable()


def _garbage_cycle() -> weakref.ref[Node]:
    node = Node()
    return weakref.ref(node)


def test_the_garbage_of_a_batch_goes_after_it(collector: tuple[BatchCollector, Clock]) -> None:
    c, _ = collector
    assert not gc.isenabled()
    gone = _garbage_cycle()
    assert gone() is not None  # nothing collects it on its own now
    c.after_batch()
    assert gone() is None
    assert gc.get_freeze_count() > 0  # what survived is frozen


def test_a_frozen_cycle_that_dies_later_goes_at_the_next_full_collection(
    collector: tuple[BatchCollector, Clock],
) -> None:
    c, clock = collector
    kept = Node()
    later = weakref.ref(kept)
    c.after_batch()  # `kept` is alive: frozen
    del kept
    c.after_batch()
    assert later() is not None  # young collections do not look at frozen objects
    clock.now += 600
    c.after_batch()
    assert later() is None
    assert c.full_runs == 1


def test_idle_collects_only_after_a_while(collector: tuple[BatchCollector, Clock]) -> None:
    c, clock = collector
    gone = _garbage_cycle()
    c.idle()
    assert gone() is not None
    clock.now += 10
    c.idle()
    assert gone() is None


def test_stop_gives_the_collector_back() -> None:
    was = gc.isenabled()
    c = BatchCollector()
    c.start()
    assert not gc.isenabled()
    c.stop()
    try:
        assert gc.isenabled() == was
        assert gc.get_freeze_count() == 0
    finally:
        if was:
            gc.enable()
