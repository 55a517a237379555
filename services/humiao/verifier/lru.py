"""One bounded least-recently-used map for the verifier's caches (decoded facts, the
working set's children and refs)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Lru(OrderedDict[K, V]):
    """A map bounded by its number of entries and, optionally, by the sum of a weight
    given per entry (a child with years of history weighs a hundred times one just
    enrolled, so a count alone bounds nothing). Reads by `get` or `[]` do not count as
    use (the working set's lookups stay at C speed); `hit` does; `put` makes an entry
    the most recent and evicts the least recent ones until both bounds hold."""

    def __init__(self, max_items: int, max_weight: int | None = None) -> None:
        super().__init__()
        self.max_items = max_items
        self.max_weight = max_weight
        self._weights: dict[K, int] = {}
        #: sum of the weights of the entries held
        self.weight = 0

    def hit(self, key: K) -> V | None:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: K, value: V, weight: int = 1) -> None:
        self[key] = value
        self.move_to_end(key)
        self.weight += weight - self._weights.get(key, 0)
        self._weights[key] = weight
        heavy = self.max_weight
        while self and (len(self) > self.max_items or (heavy is not None and self.weight > heavy)):
            old, _ = self.popitem(last=False)
            self.weight -= self._weights.pop(old, 0)

    def clear(self) -> None:
        super().clear()
        self._weights.clear()
        self.weight = 0
