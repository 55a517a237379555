"""An in-memory VerifierStore (humiao.verifier.ports) with the PostgreSQL store's
contract: a batch's writes commit together when its block ends, or not at all when it
raises; offsets are what fences a second processor. `crash_at_commit` makes the next
commit fail after every write was made (a process dying between write and commit)."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from humiao.adapters.alerts_codec import ALERT_COLUMNS
from humiao.domain.child_facts import FactHead, Ref, RefKey, RefKind
from humiao.verifier.ports import FactRow, StoredFact, VersionRow


class Crash(Exception):
    """The process died before its transaction committed."""


@dataclass
class Tables:
    facts: dict[str, FactRow] = field(default_factory=dict)
    #: (child_key, ref) -> partition
    child_refs: dict[tuple[str, Ref], int] = field(default_factory=dict)
    #: (ref, partition, event id)
    copies: set[tuple[Ref, int, str]] = field(default_factory=set)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: list[VersionRow] = field(default_factory=list)
    #: (group, topic, partition) -> next offset
    offsets: dict[tuple[str, str, int], int] = field(default_factory=dict)


class FakeVerifierStore:
    def __init__(self) -> None:
        self.tables = Tables()
        self.crash_at_commit = False
        self.batches = 0

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[FakeBatch]:
        work = copy.deepcopy(self.tables)
        yield FakeBatch(work)
        if self.crash_at_commit:
            self.crash_at_commit = False
            raise Crash("died before commit")
        self.tables = work
        self.batches += 1

    async def ensure_offsets(self, group: str, topic: str, parts: Iterable[int]) -> dict[int, int]:
        for p in parts:
            self.tables.offsets.setdefault((group, topic, p), -1)
        return {p: self.tables.offsets[(group, topic, p)] for p in parts}


class FakeBatch:
    def __init__(self, t: Tables) -> None:
        self.t = t

    async def lock_offsets(self, group: str, topic: str, parts: Iterable[int]) -> dict[int, int]:
        return {p: o for (g, tp, p), o in self.t.offsets.items()
                if g == group and tp == topic and p in set(parts)}

    async def insert_facts(self, facts: Sequence[FactRow]) -> set[str]:
        new = {f.event_id for f in facts if f.event_id not in self.t.facts}
        for f in facts:
            self.t.facts.setdefault(f.event_id, f)
        return new

    async def remember(
        self, child_refs: Iterable[tuple[str, Ref, int]], copies: Iterable[tuple[Ref, int, str]]
    ) -> None:
        for key, ref, part in child_refs:
            self.t.child_refs.setdefault((key, ref), part)
        self.t.copies.update(copies)

    async def fact_heads(self, event_ids: Iterable[str]) -> list[FactHead]:
        found = (self.t.facts.get(e) for e in set(event_ids))
        return [FactHead(f.event_id, f.kind, f.child_key, f.part, f.ref) for f in found if f]

    async def children_referencing(
        self, pairs: Iterable[RefKey], rare_pairs: Iterable[RefKey]
    ) -> tuple[set[str], set[str]]:
        return self._referencing(set(pairs)), self._referencing(set(rare_pairs))

    def _referencing(self, asked: set[RefKey]) -> set[str]:
        out = {key for (key, ref), part in self.t.child_refs.items() if (ref, part) in asked}
        out |= {f.child_key for f in self.t.facts.values()
                if f.child_key is not None and f.ref is not None
                and f.ref.kind is RefKind.DISBURSEMENT and (f.ref, f.part) in asked}
        return out

    async def refs_of_children(self, child_keys: Iterable[str]) -> dict[str, tuple[int, list[Ref]]]:
        keys = set(child_keys)
        out: dict[str, tuple[int, list[Ref]]] = {}
        for (key, ref), part in self.t.child_refs.items():
            if key in keys and ref.kind is not RefKind.DISBURSEMENT:
                out.setdefault(key, (part, []))[1].append(ref)
        return out

    async def load_facts(
        self, child_keys: Iterable[str], refs: Iterable[RefKey]
    ) -> list[StoredFact]:
        keys, asked = set(child_keys), set(refs)
        out = [StoredFact(f.event_id, f.child_key, None, None, f.payload)
               for f in self.t.facts.values() if f.child_key in keys]
        out += [StoredFact(e, None, r, p, self.t.facts[e].payload)
                for r, p, e in self.t.copies if (r, p) in asked]
        return out

    async def corrections_on(self, part: int) -> list[StoredFact]:
        return [StoredFact(e, None, r, p, self.t.facts[e].payload)
                for r, p, e in self.t.copies if p == part and r.corrects]

    async def lock_alerts(self, child_keys: Iterable[str]) -> list[Mapping[str, Any]]:
        keys = set(child_keys)
        return [dict(a) for _, a in sorted(self.t.alerts.items()) if a["child_key"] in keys]

    async def finish(
        self,
        rows: Sequence[Mapping[str, Any]],
        versions: Sequence[VersionRow],
        changed_at: dt.datetime,
        offsets: tuple[str, str, Mapping[int, int]],
    ) -> None:
        for row in rows:
            stored = self.t.alerts.setdefault(
                row["alert_id"],
                {"assignee": None, "resolution": None, "amount_recovered_fen": 0,
                 "raised_at": changed_at},
            )
            stored.update({c: row[c] for c in ALERT_COLUMNS}, updated_at=changed_at)
        self.t.versions.extend(versions)
        group, topic, next_offsets = offsets
        for p, o in next_offsets.items():
            self.t.offsets[(group, topic, p)] = o
