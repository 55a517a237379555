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

from collections import OrderedDict
from dataclasses import dataclass, field

from humiao.domain.events import Envelope
from humiao.domain.timeline import IndexedTimeline

RefKey = tuple[str, int]  # (ref, partition)


@dataclass(slots=True)
class ChildFacts:
    child_id: str
    part: int
    #: the child's own facts by event id
    own: dict[str, Envelope]
    #: refs its facts name ('p:<person key>', 'r:<region>'; disbursements go by `rare`)
    refs: set[str]
    #: size of the fact set at its last committed evaluation (sets only grow)
    evaluated: int
    #: reversals and retractions found to concern it (None: none), kept so a batch that
    #: brings no correction need not search its whole history for them again
    corrections: dict[str, Envelope] | None
    #: the timeline of its fact set as of `evaluated`, which new payments, cycle closes
    #: and standards extend (timeline.extended) instead of indexing the history again
    indexed: IndexedTimeline


@dataclass
class Staged:
    """What a batch learned, applied to the memory only once the batch commits."""

    children: dict[str, ChildFacts] = field(default_factory=dict)
    refs: dict[RefKey, dict[str, Envelope]] = field(default_factory=dict)
    #: person and region fact copies processed: ((ref, partition), envelope)
    broadcast: list[tuple[RefKey, Envelope]] = field(default_factory=list)
    #: reversal and retraction copies processed: ((ref, partition), envelope)
    rare: list[tuple[RefKey, Envelope]] = field(default_factory=list)
    loaded_rare: dict[int, dict[str, dict[str, Envelope]]] = field(default_factory=dict)


class Memory:
    def __init__(
        self,
        max_children: int = 200_000,
        max_refs: int = 400_000,
        max_facts: int = 2_000_000,
    ) -> None:
        self.max_children = max_children
        self.max_refs = max_refs
        #: own facts (envelopes) held across cached children at most
        self.max_facts = max_facts
        self.children: OrderedDict[str, ChildFacts] = OrderedDict()
        #: own facts held per cached child, as counted when it was stored
        self._sizes: dict[str, int] = {}
        #: sum of `_sizes`
        self.facts_held = 0
        #: facts about each (ref, partition) held: complete as of that partition's position
        self.refs: OrderedDict[RefKey, dict[str, Envelope]] = OrderedDict()
        #: per partition, every reversal ('d:<disbursement id>') and retraction
        #: ('e:<event id>') processed there, by ref
        self.rare: dict[int, dict[str, dict[str, Envelope]]] = {}

    def clear(self) -> None:
        self.children.clear()
        self._sizes.clear()
        self.facts_held = 0
        self.refs.clear()
        self.rare.clear()

    def child(self, key: str) -> ChildFacts | None:
        return self.children.get(key)

    def apply(self, staged: Staged) -> None:
        if self.max_children <= 0 or self.max_facts <= 0:
            return
        for part, loaded in staged.loaded_rare.items():
            self.rare.setdefault(part, loaded)
        sizes = self._sizes
        for key, cf in staged.children.items():
            self.children[key] = cf
            self.children.move_to_end(key)
            size = len(cf.own)
            self.facts_held += size - sizes.get(key, 0)
            sizes[key] = size
        for rk, facts in staged.refs.items():
            self.refs[rk] = facts
            self.refs.move_to_end(rk)
        for ref_key, env in staged.broadcast:
            held = self.refs.get(ref_key)
            if held is not None:
                held[env.event_id] = env
        for (ref, part), env in staged.rare:
            known = self.rare.get(part)
            if known is not None:
                known.setdefault(ref, {})[env.event_id] = env
        while self.children and (
            len(self.children) > self.max_children or self.facts_held > self.max_facts
        ):
            key, _ = self.children.popitem(last=False)
            self.facts_held -= sizes.pop(key)
        while len(self.refs) > self.max_refs:
            self.refs.popitem(last=False)
