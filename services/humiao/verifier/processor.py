"""One micro-batch: decode -> store facts -> find affected children -> evaluate ->
reconcile -> write alerts, versions and offsets, all in one transaction.

Routing (README "Topics and routing"): child facts arrive on their child's partition;
person, region and reference facts arrive as a copy on every partition. A copy only
re-checks the children *of the partition it arrived on*, and a child is checked against
the non-child facts whose copy on its own partition has been processed (`fact_copies`):
each partition's verdicts follow that partition's order, so one partition running ahead
of another never shows a child a month-end close before its payments. Whichever of a
fact and a child's reference to its subject comes second on a partition finds the
first in the database. Exactly-once effects come from the offsets moving in the same
transaction as the state, fenced by locking the offset rows first.

The batch in three parts (docs/architecture.md): this orchestrator says the order of the
steps; what a child's facts are, which children a batch touches and how corrections are
followed is pure (domain/child_facts.py); every read and write goes through the batch's
unit of work (ports.py; PostgreSQL in adapters/verifier_store.py). Reads are one round
per batch: what the in-memory working set (memory.py) lacks is loaded with a handful of
queries (working_set.py). A child whose fact set did not change is not re-evaluated.
A held child keeps its indexed timeline: when what is new to it is payments, cycle
closes and standards that no correction reaches, the timeline is extended by them and
only the months they touch are checked again (domain/timeline.py `extended`,
`touched_months`, `months_view`); its alerts of other months stand. Anything else
indexes its facts again and checks every month.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from humiao.adapters.codec import envelope_from_bytes
from humiao.adapters.record_signing import is_signed, signed_headers
from humiao.domain import events as ev
from humiao.domain.child_facts import (
    FactHead,
    Ref,
    RefKind,
    Touched,
    follow_retractions,
    named_refs,
    subject_of,
    touched_by,
)
from humiao.domain.identity import pseudonym
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_timeline
from humiao.domain.validation import ValidationFailed
from humiao.verifier.alert_writes import AlertWrites, alert_writes
from humiao.verifier.memory import Memory, Staged
from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.ports import BatchStore, FactRow, VerifierStore
from humiao.verifier.working_set import ChildLoader

log = logging.getLogger(__name__)

_UNDECODABLE_MARK = "not a decodable"
#: Retraction chains deeper than this are resolved when the chain's child is next touched.
_MAX_RETRACTION_DEPTH = 32


class RecordLike(Protocol):
    """What the processor reads of a Kafka record. kafka-python's ConsumerRecord has these
    attributes, so the consumer passes records through without a copy."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...  # milliseconds since the epoch (ingest acceptance)
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | None: ...  # ingest's signature


class InRecord(NamedTuple):
    """A record built by hand (tests, tools): InRecord(partition, offset, timestamp_ms,
    key, value, headers); `signed` builds one as ingest would publish it."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()

    @classmethod
    def signed(cls, secret: bytes, partition: int, offset: int, timestamp: int,
               key: bytes | None, value: bytes) -> InRecord:
        return cls(partition, offset, timestamp, key, value, signed_headers(secret, key, value))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: RecordLike
    reason: str  # metric label: unsigned | undecodable | invalid
    detail: str  # every violation, field path and reason


@dataclass(slots=True)
class Incoming:
    """A decoded record of this batch (a domain.child_facts.BatchFact, plus its row)."""

    env: ev.Envelope
    partition: int
    child_key: str | None
    #: what a copy is about, or a payment's disbursement (a later reversal finds it)
    subject: Ref | None
    #: for a child fact, the refs it names: worked out while decoding, which overlaps
    #: the previous batch's transaction
    refs: tuple[Ref, ...]
    row: FactRow


@dataclass
class PreparedBatch:
    topic: str
    facts: list[Incoming]
    dead: list[DeadLetter]
    #: partition -> offset after the last record of the batch
    next_offsets: dict[int, int]
    timestamps_ms: list[int]
    records: int
    decode_seconds: float = 0.0


@dataclass(frozen=True)
class BatchResult:
    next_offsets: dict[int, int]
    children: int
    changes: int


class _Clock:
    """Seconds spent per phase of a batch, for the debug log and profiling."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.last
        self.last = now

    def __str__(self) -> str:
        return " ".join(f"{k}={v * 1000:.0f}ms" for k, v in self.laps.items())


class Fenced(Exception):
    """Another processor moved these partitions' offsets: this batch must be dropped."""

    def __init__(self, partitions: Sequence[int]) -> None:
        super().__init__(f"offsets moved by another processor on partitions {list(partitions)}")
        self.partitions = list(partitions)


def classify(exc: ValidationFailed) -> str:
    """The dead-letter reason label of a validation failure."""
    if any(_UNDECODABLE_MARK in v.description for v in exc.violations):
        return "undecodable"
    return "invalid"


class Processor:
    """Turns prepared batches into committed state. One instance per consumer."""

    def __init__(
        self,
        *,
        group: str,
        secret: bytes,
        signing_secret: bytes,
        policies: PolicyBook,
        metrics: VerifierMetrics,
        decoded_cache: int = 200_000,
        cached_children: int = 100_000,
        cached_facts: int = 2_000_000,
    ) -> None:
        self.group = group
        self.secret = secret
        self.signing_secret = signing_secret
        self.policies = policies
        self.metrics = metrics
        self._keys: dict[str, str] = {}
        #: children evaluated by the batch in progress: their "new" months or "all"
        self._pending_evaluated: Counter[str] = Counter()
        #: the same, of every committed batch
        self.evaluated: Counter[str] = Counter()
        self._clock = _Clock()
        # a child names four or five refs (itself, parents, guardian, region)
        self.memory = Memory(
            max_children=cached_children, max_refs=4 * cached_children, max_facts=cached_facts
        )
        self.loader = ChildLoader(self.memory, decoded_cache)
        self._staged = Staged()

    def forget(self) -> None:
        """Drop the in-memory working set (the assignment changed, or we were fenced)."""
        self.memory.clear()

    # --- decoding (runs on the consumer thread, no I/O) ---------------------------------

    def key_of(self, person_id: str) -> str:
        """Pseudonymous key, memoised (HMAC per event is measurable at replay rates)."""
        k = self._keys.get(person_id)
        if k is None:
            if len(self._keys) > 500_000:
                self._keys.clear()
            k = self._keys[person_id] = pseudonym(self.secret, person_id)
        return k

    def prepare(self, topic: str, records: Sequence[RecordLike]) -> PreparedBatch:
        """Decode and validate every record; failures become dead letters."""
        started = time.perf_counter()
        facts: list[Incoming] = []
        dead: list[DeadLetter] = []
        next_offsets: dict[int, int] = {}
        for rec in records:
            next_offsets[rec.partition] = rec.offset + 1
            if rec.value is None:
                dead.append(DeadLetter(rec, "undecodable", "(envelope): record has no value"))
                continue
            if not is_signed(self.signing_secret, rec.key, rec.value, rec.headers):
                dead.append(DeadLetter(rec, "unsigned", "(record): no valid signature of "
                                       "ingest's: only ingest writes the events topic"))
                continue
            try:
                env = envelope_from_bytes(rec.value)
            except ValidationFailed as exc:
                dead.append(DeadLetter(rec, classify(exc), str(exc)))
                continue
            facts.append(self._incoming(env, rec.partition, rec.value))
        return PreparedBatch(
            topic=topic, facts=facts, dead=dead, next_offsets=next_offsets,
            timestamps_ms=[r.timestamp for r in records], records=len(records),
            decode_seconds=time.perf_counter() - started,
        )

    def _incoming(self, env: ev.Envelope, partition: int, payload: bytes) -> Incoming:
        body = env.body
        if env.kind not in ev.CHILD_KINDS:
            subject = subject_of(body, self.key_of)
            row = FactRow(env.event_id, env.kind, None, None, subject, env.recorded_at, payload)
            return Incoming(env, partition, None, subject, (), row)
        key = self.key_of(body.child_id)  # type: ignore[union-attr]
        subject = (
            Ref(RefKind.DISBURSEMENT, body.disbursement_id)
            if type(body) is ev.Disbursement else None
        )
        row = FactRow(env.event_id, env.kind, key, partition, subject, env.recorded_at, payload)
        return Incoming(env, partition, key, subject, named_refs(key, body, self.key_of), row)

    # --- the transaction ----------------------------------------------------------------

    async def process(
        self, store: VerifierStore, batch: PreparedBatch, expected: Mapping[int, int]
    ) -> BatchResult:
        """Apply one batch in one transaction. Raises Fenced (nothing written) when the
        stored offsets are not the ones this consumer started the batch from."""
        self._pending_evaluated = Counter()
        self._staged = Staged()
        clock = self._clock = _Clock()
        async with store.batch() as tx:
            parts = sorted(batch.next_offsets)
            stored = await tx.lock_offsets(self.group, batch.topic, parts)
            moved = [p for p in parts if stored.get(p, -1) != expected.get(p, -1)]
            if moved:
                raise Fenced(moved)
            clock.lap("fence")
            children, writes = await self._apply(tx, batch)
            await tx.finish(writes.rows, writes.versions, writes.changed_at,
                            (self.group, batch.topic, batch.next_offsets))
            clock.lap("write_alerts")
        clock.lap("commit")
        self.memory.apply(self._staged)
        self._staged = Staged()
        self._observe(batch, writes)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "batch records=%d children=%d (new months %d, all %d) decode=%.0fms %s",
                batch.records, children, self._pending_evaluated["new"],
                self._pending_evaluated["all"], batch.decode_seconds * 1000, clock,
            )
        return BatchResult(dict(batch.next_offsets), children, len(writes.changes))

    async def _apply(self, tx: BatchStore, batch: PreparedBatch) -> tuple[int, AlertWrites]:
        """Store the facts, find the children they touch, evaluate those whose fact set
        changed and reconcile their alerts. Returns (children evaluated, the writes)."""
        touched = await self._store_facts(tx, batch)
        affected, hit = await self._affected(tx, touched)
        changed_at = dt.datetime.now(dt.UTC)
        if not affected:
            return 0, AlertWrites(changed_at)
        in_batch = {inc.env.event_id: inc.env for inc in batch.facts}
        checks = await self.loader.load(tx, affected, hit, touched, in_batch, self._staged)
        self._clock.lap("load")
        drafts = {key: evaluate_timeline(c.timeline, self.policies) for key, c in checks.items()}
        self._pending_evaluated.update(
            "all" if c.periods is None else "new" for c in checks.values()
        )
        self._clock.lap("evaluate")
        stored_rows = await tx.lock_alerts(drafts)
        self._clock.lap("lock_alerts")
        periods = {key: c.periods for key, c in checks.items()}
        writes = alert_writes(drafts, stored_rows, periods, changed_at, self.secret)
        self._clock.lap("reconcile")
        return len(drafts), writes

    async def _store_facts(self, tx: BatchStore, batch: PreparedBatch) -> Touched:
        """Insert the batch's facts and sort what the new ones touch; remember which refs
        children name and which copies each partition processed."""
        unique: dict[str, Incoming] = {}
        for inc in batch.facts:
            unique.setdefault(inc.env.event_id, inc)
        new_ids = await tx.insert_facts([inc.row for inc in unique.values()])
        self._clock.lap("insert_facts")
        touched = touched_by(batch.facts, new_ids, self.memory.known_refs)
        self._staged.broadcast = touched.broadcast
        self._staged.rare = touched.rare
        await tx.remember(touched.child_refs, touched.copies)
        self._clock.lap("write_refs")
        return touched

    async def _affected(self, tx: BatchStore, touched: Touched) -> tuple[set[str], set[str]]:
        """(children to check, those of them a correction reaches: searched whole)."""
        hit: set[str] = set()
        rare_pairs = list(touched.rare_pairs)
        retractions = touched.retractions
        for _ in range(_MAX_RETRACTION_DEPTH):
            if not retractions:
                break
            heads: dict[str, FactHead] = {
                h.event_id: h for h in await tx.fact_heads(t for t, _ in retractions)
            }
            reached, pairs, retractions = follow_retractions(retractions, heads)
            hit |= reached
            rare_pairs.extend(pairs)
        named, corrected = await tx.children_referencing(touched.pairs, rare_pairs)
        hit |= corrected
        self._clock.lap("affected")
        return touched.affected | named | hit, hit

    def _observe(self, batch: PreparedBatch, writes: AlertWrites) -> None:
        """Metrics of a committed batch."""
        m = self.metrics
        self.evaluated.update(self._pending_evaluated)
        m.alerts_changed(writes.notes)
        m.batch_committed(
            batch.records,
            # decode + transaction; a decode that overlapped the previous batch counts once
            batch.decode_seconds + time.perf_counter() - self._clock.started,
            Counter(inc.env.kind for inc in batch.facts),
            batch.timestamps_ms,
            self._pending_evaluated,
        )
        lateness = []
        for inc in batch.facts:
            day = ev.effective_date(inc.env.body)
            if day is not None:
                lateness.append((inc.env.kind, (inc.env.recorded_at.date() - day).total_seconds()))
        m.facts_arrived(lateness)
