"""The verifier's store, as the batch orchestrator sees it: a unit of work per batch.

`VerifierStore.batch()` opens one transaction and yields a `BatchStore`; everything a
batch reads and writes goes through it, and the batch's effects (facts, references,
alerts, versions, offsets) commit together or not at all. Each call handles a whole
batch (never one statement per event). The PostgreSQL implementation is
humiao.adapters.verifier_store; tests/unit/verifier_fake.py keeps the same contract in
memory so the exactly-once and late-fact logic is tested without a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from humiao.domain.child_facts import FactHead, Ref, RefKey


@dataclass(slots=True)
class FactRow:  # not frozen: a frozen dataclass's __init__ costs ~1 us more per event
    """A fact as stored: `ref` is what a copy is about, or a payment's disbursement."""

    event_id: str
    kind: str
    child_key: str | None
    part: int | None
    ref: Ref | None
    recorded_at: dt.datetime
    payload: bytes


class StoredFact(NamedTuple):
    """A stored fact read back: a child's own (child_key set) or a copy about `ref` seen
    by partition `part`."""

    event_id: str
    child_key: str | None
    ref: Ref | None
    part: int | None
    payload: bytes


#: (alert_id, version, status, changed_at, changed_by, change_reason, payload)
VersionRow = tuple[str, int, str, dt.datetime, str, str, bytes]


class BatchStore(Protocol):
    """One batch's transaction."""

    async def lock_offsets(self, group: str, topic: str, parts: Iterable[int]) -> dict[int, int]:
        """Lock and read the offsets of `parts`: the fence against a second processor."""

    async def insert_facts(self, facts: Sequence[FactRow]) -> set[str]:
        """Insert the facts not stored yet; the event ids that were new."""

    async def remember(
        self, child_refs: Iterable[tuple[str, Ref, int]], copies: Iterable[tuple[Ref, int, str]]
    ) -> None:
        """Record (child_key, ref, partition) references and (ref, partition, event id)
        copies processed; existing ones are kept."""

    async def fact_heads(self, event_ids: Iterable[str]) -> list[FactHead]:
        """What is stored of these facts (to follow retractions)."""

    async def children_referencing(
        self, pairs: Iterable[RefKey], rare_pairs: Iterable[RefKey]
    ) -> tuple[set[str], set[str]]:
        """Children of the given partitions whose facts name the refs of `pairs` and of
        `rare_pairs` (persons and regions by reference, disbursements by the payment)."""

    async def refs_of_children(self, child_keys: Iterable[str]) -> dict[str, tuple[int, list[Ref]]]:
        """child_key -> (partition, the person and region refs its facts name)."""

    async def load_facts(
        self, child_keys: Iterable[str], refs: Iterable[RefKey]
    ) -> list[StoredFact]:
        """Every fact of the children and every fact about each (ref, partition) whose
        copy on that partition was processed."""

    async def corrections_on(self, part: int) -> list[StoredFact]:
        """Every reversal and retraction whose copy on `part` was processed."""

    async def lock_alerts(self, child_keys: Iterable[str]) -> list[Mapping[str, Any]]:
        """The children's alert rows, locked against concurrent staff transitions."""

    async def finish(
        self,
        rows: Sequence[Mapping[str, Any]],
        versions: Sequence[VersionRow],
        changed_at: dt.datetime,
        offsets: tuple[str, str, Mapping[int, int]],
    ) -> None:
        """Upsert alert rows, append their versions (the outbox) and store the next
        offsets (group, topic, partition -> offset): the batch's last writes."""


class VerifierStore(Protocol):
    def batch(self) -> AbstractAsyncContextManager[BatchStore]:
        """A transaction: committed when the block ends, rolled back if it raises."""

    async def ensure_offsets(self, group: str, topic: str, parts: Iterable[int]) -> dict[int, int]:
        """Stored next offsets of `parts` (-1: from the beginning), creating missing rows
        so every later batch can lock them."""
