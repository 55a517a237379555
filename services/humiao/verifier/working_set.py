"""Loading the fact sets of the children a batch touches: what the in-memory working
set (memory.py) lacks is read through the batch's store in a few queries, and each
child's set is assembled by the pure domain (domain/child_facts.py).

A child's set: its own facts, the facts about the persons and regions it names as far
as its partition has seen them, and the reversals and retractions reaching any of
those. A held child whose new facts no correction reaches is re-checked by the months
they touch (`grown`); any other is indexed again and checked whole (`assembled`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from humiao.adapters.codec import envelope_from_bytes
from humiao.domain import events as ev
from humiao.domain.child_facts import (
    Assembled,
    CorrectionIndex,
    Facts,
    Ref,
    RefKey,
    RefSources,
    Touched,
    assembled,
    grown,
)
from humiao.domain.timeline import Timeline, months_view
from humiao.domain.values import Period
from humiao.verifier.lru import Lru
from humiao.verifier.memory import Memory, Staged
from humiao.verifier.ports import BatchStore, StoredFact


class Check(NamedTuple):
    """A timeline to evaluate and the periods it is evaluated for (None: every one)."""

    timeline: Timeline
    periods: frozenset[Period] | None


class ChildLoader:
    def __init__(self, memory: Memory, decoded_cache: int) -> None:
        self.memory = memory
        #: decoded facts by event id (facts never change)
        self.decoded: Lru[str, ev.Envelope] = Lru(decoded_cache)
        self._periods_of: dict[frozenset[int], frozenset[Period]] = {}

    async def load(
        self,
        tx: BatchStore,
        affected: set[str],
        hit: set[str],
        touched: Touched,
        in_batch: Mapping[str, ev.Envelope],
        staged: Staged,
    ) -> dict[str, Check]:
        """For each affected child whose fact set changed, what to evaluate. Children
        in `hit` are searched whole for corrections."""
        where = await self._where(tx, affected, touched.new_refs)
        held = self.memory.refs
        needed = {(r, p) for p, rs in where.values() for r in rs if (r, p) not in held}
        uncached = [k for k in affected if self.memory.child(k) is None]
        rows = self._decode(await tx.load_facts(uncached, needed), in_batch)
        own_db: dict[str, Facts] = {}
        staged.refs = {k: {} for k in needed}
        for f, env in rows:
            if f.child_key is not None:
                own_db.setdefault(f.child_key, {})[env.event_id] = env
            elif f.ref is not None and f.part is not None:
                staged.refs[(f.ref, f.part)][env.event_id] = env
        sources = RefSources(held, staged.refs, _grouped(staged.broadcast))
        indexes = await self._indexes(tx, {p for p, _ in where.values()}, in_batch, staged)
        out: dict[str, Check] = {}
        for key in affected:
            c = self.memory.child(key)
            new_own = touched.new_facts.get(key)
            own = own_db.get(key, {}) if c is None else {**c.own, **new_own} if new_own else c.own
            if not own or key not in where:
                continue  # refs without facts cannot happen; nothing to evaluate
            part, refs = where[key]
            done = None if c is None or key in hit else grown(
                c, refs, new_own, sources, indexes[part])
            if done is None:
                done = assembled(c, own, part, refs, new_own, sources, indexes[part], key in hit)
            staged.children[key] = done.facts
            if done.changed:
                out[key] = self._check(done)
        return out

    async def _where(
        self, tx: BatchStore, affected: Iterable[str], new_refs: Mapping[str, set[Ref]]
    ) -> dict[str, tuple[int, set[Ref]]]:
        """Each child's partition and the refs its facts name."""
        where: dict[str, tuple[int, set[Ref]]] = {}
        uncached = []
        for key in affected:
            c = self.memory.child(key)
            if c is None:
                uncached.append(key)
            else:
                where[key] = (c.part, c.refs | new_refs[key] if key in new_refs else c.refs)
        if uncached:
            for key, (part, listed) in (await tx.refs_of_children(uncached)).items():
                where[key] = (part, set(listed))
        return where

    async def _indexes(
        self, tx: BatchStore, parts: Iterable[int], in_batch: Mapping[str, ev.Envelope],
        staged: Staged,
    ) -> dict[int, CorrectionIndex]:
        """Each partition's corrections, held and of this batch (a partition's set is
        read whole once, then kept up to date in memory: corrections are rare)."""
        fresh: dict[int, dict[Ref, Facts]] = {}
        for (ref, part), env in staged.rare:
            fresh.setdefault(part, {}).setdefault(ref, {})[env.event_id] = env
        out = {}
        for part in parts:
            known = self.memory.rare.get(part)
            if known is None:
                known = {}
                for f, env in self._decode(await tx.corrections_on(part), in_batch):
                    if f.ref is not None:
                        known.setdefault(f.ref, {})[env.event_id] = env
                staged.loaded_rare[part] = known
            out[part] = CorrectionIndex.of((known, fresh.get(part, {})))
        return out

    def _decode(
        self, rows: Iterable[StoredFact], in_batch: Mapping[str, ev.Envelope]
    ) -> list[tuple[StoredFact, ev.Envelope]]:
        out = []
        for r in rows:
            env = in_batch.get(r.event_id) or self.decoded.hit(r.event_id)
            if env is None:
                env = envelope_from_bytes(r.payload)
                self.decoded.put(r.event_id, env)
            out.append((r, env))
        return out

    def _check(self, done: Assembled) -> Check:
        timeline = done.facts.indexed.timeline
        if done.months is None:
            return Check(timeline, None)
        return Check(months_view(timeline, done.months), self._periods(done.months))

    def _periods(self, months: frozenset[int]) -> frozenset[Period]:
        """The Periods of month indexes, shared: a batch's children mostly have the same
        new months, and building them child by child showed in the profile."""
        periods = self._periods_of.get(months)
        if periods is None:
            if len(self._periods_of) >= 4096:
                self._periods_of.clear()
            periods = self._periods_of[months] = frozenset(Period(m) for m in months)
        return periods


def _grouped(copies: Iterable[tuple[RefKey, ev.Envelope]]) -> dict[RefKey, Facts]:
    out: dict[RefKey, Facts] = {}
    for rk, env in copies:
        out.setdefault(rk, {})[env.event_id] = env
    return out
