"""The working set a verifier keeps in memory for the partitions it owns, so a batch
reads from PostgreSQL only what it has not seen: the facts of children it meets for
the first time and of refs (persons, regions, disbursements) no cached child named yet.

Why a cache entry stays complete without re-reading the database: every fact that
concerns a child of an owned partition arrives *on that partition* (child facts by key,
the others as a copy on every partition). An entry is loaded inside a batch's
transaction, so it holds every fact committed before it; a fact committed later by
anyone is one whose copy this process has not processed yet, and when that copy comes
it is added. Entries change only after the batch that produced them commits, and the
whole memory is dropped whenever the assignment changes or another processor is found
to have moved an owned partition (fenced), because then copies may have passed us by.
Bounded: least recently used children and refs are evicted (and re-read when needed).
Children are bounded by the facts they hold (their own envelopes, summed), not by their
count: a child with years of history costs a hundred times one just enrolled, so a cap
on the count alone bounds nothing. The count cap is kept as a second, coarse bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from humiao.domain.child_facts import ChildFacts, Facts, Ref, RefKey
from humiao.domain.events import Envelope
from humiao.verifier.lru import Lru


@dataclass
class Staged:
    """What a batch learned, applied to the memory only once the batch commits."""

    children: dict[str, ChildFacts] = field(default_factory=dict)
    refs: dict[RefKey, Facts] = field(default_factory=dict)
    #: person and region fact copies processed: ((ref, partition), envelope)
    broadcast: list[tuple[RefKey, Envelope]] = field(default_factory=list)
    #: reversal and retraction copies processed: ((ref, partition), envelope)
    rare: list[tuple[RefKey, Envelope]] = field(default_factory=list)
    loaded_rare: dict[int, dict[Ref, Facts]] = field(default_factory=dict)


class Memory:
    def __init__(
        self,
        max_children: int = 200_000,
        max_refs: int = 400_000,
        max_facts: int = 2_000_000,
    ) -> None:
        self.max_children = max_children
        self.max_facts = max_facts
        #: cached children, weighed by the own facts they held when stored
        self.children: Lru[str, ChildFacts] = Lru(max_children, max_weight=max_facts)
        #: facts about each (ref, partition) held: complete as of that partition's position
        self.refs: Lru[RefKey, Facts] = Lru(max_refs)
        #: per partition, every reversal (a disbursement ref) and retraction (an event
        #: ref) processed there, by ref
        self.rare: dict[int, dict[Ref, Facts]] = {}

    @property
    def facts_held(self) -> int:
        """Own facts (envelopes) held across cached children."""
        return self.children.weight

    def clear(self) -> None:
        self.children.clear()
        self.refs.clear()
        self.rare.clear()

    def child(self, key: str) -> ChildFacts | None:
        return self.children.get(key)

    def known_refs(self, key: str) -> set[Ref] | None:
        """The refs a held child names (None: not held)."""
        c = self.children.get(key)
        return None if c is None else c.refs

    def apply(self, staged: Staged) -> None:
        if self.max_children <= 0 or self.max_facts <= 0:
            return
        for part, loaded in staged.loaded_rare.items():
            self.rare.setdefault(part, loaded)
        for key, cf in staged.children.items():
            self.children.put(key, cf, weight=len(cf.own))
        for rk, facts in staged.refs.items():
            self.refs.put(rk, facts)
        for ref_key, env in staged.broadcast:
            held = self.refs.get(ref_key)
            if held is not None:
                held[env.event_id] = env
        for (ref, part), env in staged.rare:
            known = self.rare.get(part)
            if known is not None:
                known.setdefault(ref, {})[env.event_id] = env
