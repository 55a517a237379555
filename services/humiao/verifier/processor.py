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

Reads are one round per batch: what the in-memory working set (memory.py) lacks is
loaded with a handful of queries; writes are one statement per table (arrays through
`unnest`, COPY for versions). A child whose fact set did not change is not re-evaluated.
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
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import asyncpg

from humiao.adapters.alerts_codec import (
    alert_version_from_row,
    row_from_draft,
    row_from_stored,
)
from humiao.adapters.codec import envelope_from_bytes
from humiao.domain import events as ev
from humiao.domain.alerts import AlertStatus
from humiao.domain.identity import pseudonym
from humiao.domain.lifecycle import AlertChange, StoredAlert, reconcile
from humiao.domain.policy import PolicyBook
from humiao.domain.rules import evaluate_timeline
from humiao.domain.timeline import (
    IndexedTimeline,
    Timeline,
    extended,
    index_timeline,
    months_view,
    persons_in,
    touched_months,
)
from humiao.domain.validation import ValidationFailed
from humiao.domain.values import Period
from humiao.verifier import store
from humiao.verifier.memory import ChildFacts, Memory, Staged
from humiao.verifier.metrics import VerifierMetrics

log = logging.getLogger(__name__)

CHANGED_BY = "verifier"
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


class InRecord(NamedTuple):
    """A record built by hand (tests, tools): InRecord(partition, offset, timestamp_ms,
    key, value)."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: RecordLike
    reason: str  # metric label: undecodable | invalid
    detail: str  # every violation, field path and reason


@dataclass(slots=True)
class Incoming:
    """A decoded record of this batch."""

    env: ev.Envelope
    partition: int
    row: store.FactRow
    #: for a child fact, the refs it names ('p:<person key>', 'r:<region>'): worked out
    #: while decoding, which overlaps the previous batch's transaction
    refs: tuple[str, ...] = ()


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


class _Lru:
    """A bounded map of decoded envelopes by event id (facts never change)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[str, ev.Envelope] = OrderedDict()

    def get(self, key: str) -> ev.Envelope | None:
        env = self.data.get(key)
        if env is not None:
            self.data.move_to_end(key)
        return env

    def put(self, key: str, env: ev.Envelope) -> None:
        self.data[key] = env
        self.data.move_to_end(key)
        if len(self.data) > self.size:
            for _ in range(len(self.data) - self.size):
                self.data.popitem(last=False)


def classify(exc: ValidationFailed) -> str:
    """The dead-letter reason label of a validation failure."""
    if any(_UNDECODABLE_MARK in v.description for v in exc.violations):
        return "undecodable"
    return "invalid"


def _stored_alert(row: Mapping[str, Any]) -> StoredAlert:
    return StoredAlert(
        alert_id=row["alert_id"],
        status=AlertStatus[row["status"]],
        implied=row["implied"],
        version=row["version"],
        amount_at_risk_fen=row["amount_at_risk_fen"],
        evidence_event_ids=tuple(row["evidence_event_ids"] or ()),
        explanation_en=row["explanation_en"],
    )


class Processor:
    """Turns prepared batches into committed state. One instance per consumer."""

    def __init__(
        self,
        *,
        group: str,
        secret: bytes,
        policies: PolicyBook,
        metrics: VerifierMetrics,
        decoded_cache: int = 200_000,
        cached_children: int = 100_000,
        cached_facts: int = 2_000_000,
    ) -> None:
        self.group = group
        self.secret = secret
        self.policies = policies
        self.metrics = metrics
        self._decoded = _Lru(decoded_cache)
        self._keys: dict[str, str] = {}
        #: Alert transitions of the batch in progress, counted only once it commits.
        self._pending_notes: list[tuple[str, str, int, Mapping[str, Any] | None]] = []
        #: children evaluated by the batch in progress: their "new" months or "all"
        self._pending_evaluated: Counter[str] = Counter()
        #: the same, of every committed batch
        self.evaluated: Counter[str] = Counter()
        self._clock = _Clock()
        # a child names four or five refs (itself, parents, guardian, region)
        self.memory = Memory(
            max_children=cached_children, max_refs=4 * cached_children, max_facts=cached_facts
        )
        self._staged = Staged()
        self._periods_of: dict[frozenset[int], frozenset[Period]] = {}

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

    def _ref_of(self, env: ev.Envelope) -> str | None:
        body = env.body
        if isinstance(body, ev.PersonDied | ev.PersonStatusChanged):
            return "p:" + self.key_of(body.person_id)
        if isinstance(body, ev.PaymentCycleClosed | ev.AllowanceStandardSet):
            return "r:" + body.region
        if isinstance(body, ev.DisbursementReversed):
            return "d:" + body.disbursement_id
        if isinstance(body, ev.EventRetracted):
            return "e:" + body.retracted_event_id
        return None

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
            try:
                env = envelope_from_bytes(rec.value)
            except ValidationFailed as exc:
                dead.append(DeadLetter(rec, classify(exc), str(exc)))
                continue
            body = env.body
            child = env.kind in ev.CHILD_KINDS
            child_key = self.key_of(body.child_id) if child else None  # type: ignore[union-attr]
            if not child:
                ref = self._ref_of(env)
            elif type(body) is ev.Disbursement:
                ref = "d:" + body.disbursement_id  # a later reversal finds its child by it
            else:
                ref = None
            row = store.FactRow(
                event_id=env.event_id,
                kind=env.kind,
                child_key=child_key,
                part=rec.partition if child else None,
                ref=ref,
                recorded_at=env.recorded_at,
                payload=rec.value,
            )
            refs = self._named_refs(child_key, body) if child_key is not None else ()
            facts.append(Incoming(env, rec.partition, row, refs))
        return PreparedBatch(
            topic=topic,
            facts=facts,
            dead=dead,
            next_offsets=next_offsets,
            timestamps_ms=[r.timestamp for r in records],
            records=len(records),
            decode_seconds=time.perf_counter() - started,
        )

    def _named_refs(self, child_key: str, body: ev.Body) -> tuple[str, ...]:
        """The refs a child fact names: the child itself and the persons it names
        (timeline.persons_in), and for an enrollment its region."""
        child_id = body.child_id  # type: ignore[union-attr]
        refs = ["p:" + child_key]
        refs.extend("p:" + self.key_of(p) for p in persons_in(body) if p != child_id)
        if type(body) is ev.ChildEnrolled:
            refs.append("r:" + body.region)
        return tuple(refs)

    # --- the transaction ----------------------------------------------------------------

    async def process(
        self, conn: asyncpg.Connection, batch: PreparedBatch, expected: Mapping[int, int]
    ) -> BatchResult:
        """Apply one batch in one transaction. Raises Fenced (nothing written) when the
        stored offsets are not the ones this consumer started the batch from."""
        self._pending_notes.clear()
        self._pending_evaluated = Counter()
        self._staged = Staged()
        clock = self._clock = _Clock()
        async with conn.transaction():
            parts = sorted(batch.next_offsets)
            stored = await store.lock_offsets(conn, self.group, batch.topic, parts)
            moved = [p for p in parts if stored.get(p, -1) != expected.get(p, -1)]
            if moved:
                raise Fenced(moved)
            children, changes = await self._apply(conn, batch)
            await store.save_offsets(conn, self.group, batch.topic, batch.next_offsets)
        clock.lap("commit")
        self.memory.apply(self._staged)
        self._staged = Staged()
        self._after_commit(batch)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "batch records=%d children=%d (new months %d, all %d) decode=%.0fms %s",
                batch.records, children, self._pending_evaluated["new"],
                self._pending_evaluated["all"], batch.decode_seconds * 1000, clock,
            )
        return BatchResult(dict(batch.next_offsets), children, len(changes))

    async def _apply(
        self, conn: asyncpg.Connection, batch: PreparedBatch
    ) -> tuple[int, list[tuple[str, AlertChange]]]:
        unique: dict[str, Incoming] = {}
        for inc in batch.facts:
            unique.setdefault(inc.env.event_id, inc)
        clock = self._clock
        clock.lap("fence")
        new_ids = await store.insert_facts(conn, [inc.row for inc in unique.values()])
        clock.lap("insert_facts")

        mem = self.memory
        affected: set[str] = set()
        refs: list[tuple[str, str, int]] = []
        pairs: list[tuple[str, int]] = []
        #: refs of reversals and of what retractions reach: the children they concern
        #: are searched whole for corrections (`hit`), the others only from what is new
        rare_pairs: list[tuple[str, int]] = []
        hit: set[str] = set()
        retractions: list[tuple[str, int]] = []
        new_facts: dict[str, dict[str, ev.Envelope]] = {}
        new_refs: dict[str, set[str]] = {}
        staged = self._staged = Staged()
        for inc in batch.facts:
            row = inc.row
            key = row.child_key
            if key is not None:
                # A child fact already stored was evaluated when it was stored (it can
                # only arrive on its own partition): replays and duplicates cost nothing.
                if row.event_id in new_ids:
                    affected.add(key)
                    new_facts.setdefault(key, {})[row.event_id] = inc.env
                    cached = mem.child(key)
                    for r in inc.refs:
                        if cached is None or r not in cached.refs:
                            refs.append((key, r, inc.partition))
                            new_refs.setdefault(key, set()).add(r)
            elif row.ref is not None:
                if isinstance(inc.env.body, ev.EventRetracted):
                    retractions.append((inc.env.body.retracted_event_id, inc.partition))
                    staged.rare.append(((row.ref, inc.partition), inc.env))
                elif isinstance(inc.env.body, ev.DisbursementReversed):
                    rare_pairs.append((row.ref, inc.partition))
                    staged.rare.append(((row.ref, inc.partition), inc.env))
                else:
                    pairs.append((row.ref, inc.partition))
                    staged.broadcast.append(((row.ref, inc.partition), inc.env))
        clock.lap("sort_facts")
        await store.insert_child_refs(conn, refs)
        await store.insert_copies(
            conn,
            [(inc.row.ref, inc.partition, inc.row.event_id)
             for inc in batch.facts if inc.row.child_key is None and inc.row.ref is not None],
        )
        clock.lap("write_refs")
        depth = 0
        while retractions and depth < _MAX_RETRACTION_DEPTH:
            depth += 1
            found = await store.fact_heads(conn, (t for t, _ in retractions))
            heads = {r["event_id"]: r for r in found}
            follow: list[tuple[str, int]] = []
            for target, part in retractions:
                head = heads.get(target)
                if head is None:
                    continue  # not stored yet: when it comes, its load finds the retraction
                if head["child_key"] is not None:
                    if head["part"] == part:
                        hit.add(head["child_key"])
                elif head["kind"] == "eventRetracted":
                    follow.append((head["ref"][2:], part))
                elif head["ref"] is not None:
                    rare_pairs.append((head["ref"], part))
            retractions = follow
        affected |= await store.children_referencing(conn, pairs)
        if rare_pairs:
            hit |= await store.children_referencing(conn, rare_pairs)
        affected |= hit
        clock.lap("affected")
        if not affected:
            return 0, []

        facts_by_child = await self._load(conn, affected, hit, batch, new_facts, new_refs)
        drafts = {
            key: evaluate_timeline(tl, self.policies) for key, (tl, _) in facts_by_child.items()
        }
        self._pending_evaluated.update(
            "all" if periods is None else "new" for _, periods in facts_by_child.values()
        )
        clock.lap("evaluate")
        stored_rows = await store.lock_alerts(conn, drafts)
        clock.lap("lock_alerts")
        stored_by_child: dict[str, dict[str, asyncpg.Record]] = {}
        for r in stored_rows:
            stored_by_child.setdefault(r["child_key"], {})[r["alert_id"]] = r
        changed_at = dt.datetime.now(dt.UTC)
        rows: list[dict[str, Any]] = []
        versions: list[tuple[str, int, str, dt.datetime, str, str, bytes]] = []
        changes: list[tuple[str, AlertChange]] = []
        for key, child_drafts in drafts.items():
            mine = stored_by_child.get(key, {})
            periods = facts_by_child[key][1]
            if periods is not None and mine:  # alerts of other periods stand as they are
                texts = {str(p) for p in periods}
                mine = {a: r for a, r in mine.items() if r["period"] in texts}
            if not child_drafts and not mine:
                continue
            stored = {a: _stored_alert(r) for a, r in mine.items()}
            for change in reconcile(stored, child_drafts, self.secret):
                if change.draft is not None:
                    arow = row_from_draft(
                        change.draft,
                        alert_id=change.alert_id,
                        child_key=key,
                        status=change.status,
                        implied=change.implied,
                        version=change.version,
                    )
                else:
                    arow = row_from_stored(
                        mine[change.alert_id],
                        status=change.status,
                        implied=change.implied,
                        version=change.version,
                    )
                old = mine.get(change.alert_id)
                full = dict(arow)
                if old is not None:
                    for extra in ("assignee", "resolution", "amount_recovered_fen"):
                        full[extra] = old[extra]
                payload = alert_version_from_row(
                    full, changed_at=changed_at, changed_by=CHANGED_BY, change_reason=change.reason
                ).SerializeToString()
                rows.append(arow)
                versions.append(
                    (change.alert_id, change.version, arow["status"], changed_at, CHANGED_BY,
                     change.reason, payload)
                )
                changes.append((arow["code"], change))
                self._note_change(arow, old)
        clock.lap("reconcile")
        await store.write_alerts(conn, rows, versions, changed_at)
        clock.lap("write_alerts")
        return len(drafts), changes

    def _decode_rows(
        self, rows: Sequence[asyncpg.Record], in_batch: Mapping[str, ev.Envelope]
    ) -> list[tuple[asyncpg.Record, ev.Envelope]]:
        out = []
        for r in rows:
            eid = r["event_id"]
            env = in_batch.get(eid) or self._decoded.get(eid)
            if env is None:
                env = envelope_from_bytes(r["payload"])
                self._decoded.put(eid, env)
            out.append((r, env))
        return out

    async def _load(
        self,
        conn: asyncpg.Connection,
        affected: set[str],
        hit: set[str],
        batch: PreparedBatch,
        new_facts: Mapping[str, Mapping[str, ev.Envelope]],
        new_refs: Mapping[str, set[str]],
    ) -> dict[str, tuple[Timeline, frozenset[Period] | None]]:
        """For each affected child whose fact set changed, the timeline to check and the
        periods it is checked for (None: every period). The fact set: own facts, facts
        about the persons, regions and disbursements it names and retractions of any of
        those (transitively), the non-child ones as far as the child's partition has
        seen them. Reads from the database only what memory lacks."""
        mem, staged = self.memory, self._staged
        in_batch = {inc.env.event_id: inc.env for inc in batch.facts}
        cached = {k: c for k in affected if (c := mem.child(k)) is not None}
        uncached = [k for k in affected if k not in cached]
        where: dict[str, tuple[int, set[str]]] = {}
        if uncached:
            for key, (part, listed) in (await store.refs_of_children(conn, uncached)).items():
                where[key] = (part, set(listed))
        for key, c in cached.items():
            where[key] = (c.part, c.refs | new_refs[key] if key in new_refs else c.refs)
        held_refs = mem.refs
        needed = {
            (r, part) for part, rs in where.values() for r in rs if (r, part) not in held_refs
        }
        rows = self._decode_rows(await store.load_facts(conn, uncached, needed), in_batch)
        rare: dict[int, dict[str, dict[str, ev.Envelope]]] = {}
        for part in {part for part, _ in where.values()}:
            known = mem.rare.get(part)
            if known is None:
                known = {}
                for r, env in self._decode_rows(await store.rare_on(conn, part), in_batch):
                    known.setdefault(r["ref"], {})[env.event_id] = env
                staged.loaded_rare[part] = known
            rare[part] = known
        self._clock.lap("load_query")
        own_db: dict[str, dict[str, ev.Envelope]] = {}
        ref_db: dict[tuple[str, int], dict[str, ev.Envelope]] = {k: {} for k in needed}
        for r, env in rows:
            if r["child_key"] is not None:
                own_db.setdefault(r["child_key"], {})[env.event_id] = env
            else:
                ref_db[(r["ref"], r["part"])][env.event_id] = env
        staged.refs = ref_db
        batch_refs: dict[tuple[str, int], dict[str, ev.Envelope]] = {}
        for rk, env in staged.broadcast:
            batch_refs.setdefault(rk, {})[env.event_id] = env
        batch_rare: dict[int, dict[str, dict[str, ev.Envelope]]] = {}
        for (ref, part), env in staged.rare:
            batch_rare.setdefault(part, {}).setdefault(ref, {})[env.event_id] = env

        targets: dict[int, tuple[dict[str, list[ev.Envelope]], dict[str, list[ev.Envelope]]]] = {}

        def by_target(
            part: int,
        ) -> tuple[dict[str, list[ev.Envelope]], dict[str, list[ev.Envelope]]]:
            """The partition's retractions by retracted id and reversals by disbursement id."""
            if part not in targets:
                retracting: dict[str, list[ev.Envelope]] = {}
                reversing: dict[str, list[ev.Envelope]] = {}
                for source in (rare.get(part, {}), batch_rare.get(part, {})):
                    for ref, found in source.items():
                        into = retracting if ref.startswith("e:") else reversing
                        into.setdefault(ref[2:], []).extend(found.values())
                targets[part] = (retracting, reversing)
            return targets[part]

        out: dict[str, tuple[Timeline, frozenset[Period] | None]] = {}
        for key in affected:
            c = cached.get(key)
            new_own = new_facts.get(key)
            if c is not None:
                own = {**c.own, **new_own} if new_own else c.own
            else:
                own = own_db.get(key, {})
            if not own or key not in where:
                continue  # refs without facts cannot happen; nothing to evaluate
            part, refs = where[key]
            retracting, reversing = by_target(part)
            if c is not None and key not in hit:
                grown = self._grown(c, part, refs, new_own, ref_db, batch_refs,
                                    retracting, reversing)
                if grown is not None:
                    size, indexed, months = grown
                    staged.children[key] = ChildFacts(
                        c.child_id, part, own, refs, size, c.corrections, indexed
                    )
                    if size != c.evaluated:
                        out[key] = (months_view(indexed.timeline, months), self._periods(months))
                    continue
            facts = dict(own)
            #: facts this batch brought to the child (a copy seen before may be among them)
            added: set[str] = set(new_own) if new_own else set()
            for ref in refs:
                rk = (ref, part)
                held = held_refs.get(rk)
                source = held if held is not None else ref_db[rk]
                if source:
                    facts.update(source)
                fresh = batch_refs.get(rk)
                if fresh is not None:
                    facts.update(fresh)
                    added.update(fresh)
            # Reversals of its disbursements and retractions of anything it rests on,
            # transitively (a reversal can be retracted, a retraction retracted). A held
            # child no correction of this batch reached keeps those it had, and only what
            # is new to it can lead to more: the search starts there, not at its history.
            corrections: dict[str, ev.Envelope] = {}
            if c is not None and key not in hit:
                if c.corrections:
                    facts.update(c.corrections)
                    corrections.update(c.corrections)
                frontier = [facts[eid] for eid in added]
            else:
                frontier = list(facts.values())
            if not (retracting or reversing):
                frontier = []
            while frontier:
                nxt = []
                for env in frontier:
                    found = retracting.get(env.event_id)
                    body = env.body
                    if type(body) is ev.Disbursement and body.disbursement_id in reversing:
                        found = (found or []) + reversing[body.disbursement_id]
                    for renv in found or ():
                        if renv.event_id not in facts:
                            facts[renv.event_id] = renv
                            corrections[renv.event_id] = renv
                            nxt.append(renv)
                frontier = nxt
            child_id = next(iter(own.values())).child_id()
            assert child_id is not None
            size = len(facts)
            same = c is not None and c.evaluated == size  # the same set: the same verdict
            indexed = c.indexed if c is not None and same else index_timeline(
                child_id, list(facts.values())
            )
            staged.children[key] = ChildFacts(
                child_id, part, own, refs, size, corrections or None, indexed
            )
            if not same:
                out[key] = (indexed.timeline, None)
        self._clock.lap("load_assemble")
        return out

    def _periods(self, months: frozenset[int]) -> frozenset[Period]:
        """The Periods of month indexes, shared: a batch's children mostly have the same
        new months, and building them child by child showed in the profile."""
        periods = self._periods_of.get(months)
        if periods is None:
            if len(self._periods_of) >= 4096:
                self._periods_of.clear()
            periods = self._periods_of[months] = frozenset(Period(m) for m in months)
        return periods

    def _grown(
        self,
        c: ChildFacts,
        part: int,
        refs: set[str],
        new_own: Mapping[str, ev.Envelope] | None,
        ref_db: Mapping[tuple[str, int], dict[str, ev.Envelope]],
        batch_refs: Mapping[tuple[str, int], dict[str, ev.Envelope]],
        retracting: Mapping[str, list[ev.Envelope]],
        reversing: Mapping[str, list[ev.Envelope]],
    ) -> tuple[int, IndexedTimeline, frozenset[int]] | None:
        """A held child whose new facts are payments, cycle closes and standards that no
        correction reaches: (the size of its fact set, its timeline extended by them, the
        months they touch), so it is re-checked at the cost of what is new. None when it
        must be indexed again (timeline.extended says when) or when what is new to it
        cannot be told from what it had: a ref no longer held, a newly named person or
        region with facts."""
        held_refs = self.memory.refs
        added: list[ev.Envelope] = list(new_own.values()) if new_own else []
        for ref in refs:
            rk = (ref, part)
            held = held_refs.get(rk)
            if held is None:
                if ref in c.refs or ref_db[rk]:
                    return None  # read again just now: old and new facts look alike
                continue
            if held and ref not in c.refs:
                return None
            fresh = batch_refs.get(rk)
            if fresh:
                added.extend(env for eid, env in fresh.items() if eid not in held)
        for env in added:
            if env.event_id in retracting:
                return None
            body = env.body
            if type(body) is ev.Disbursement and body.disbursement_id in reversing:
                return None
        indexed = extended(c.indexed, added)
        if indexed is None:
            return None
        return c.evaluated + len(added), indexed, touched_months(indexed.timeline, added)

    def _note_change(self, row: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
        """Remember the transition for the metrics (applied only after commit)."""
        self._pending_notes.append((row["code"], row["status"], row["amount_at_risk_fen"], old))

    def _after_commit(self, batch: PreparedBatch) -> None:
        m = self.metrics
        self.evaluated.update(self._pending_evaluated)
        for code, status, amount, old in self._pending_notes:
            if old is None:
                m.alert_raised(code, amount)
            elif status == "WITHDRAWN" and old["status"] != "WITHDRAWN":
                m.alert_withdrawn(code)
            elif status == "REOPENED" and old["status"] != "REOPENED":
                m.alert_reopened(code, amount)
        self._pending_notes.clear()
        kinds = Counter(inc.env.kind for inc in batch.facts)
        m.batch_committed(
            batch.records,
            # decode + transaction; a decode that overlapped the previous batch counts once
            batch.decode_seconds + time.perf_counter() - self._clock.started,
            kinds,
            batch.timestamps_ms,
            self._pending_evaluated,
        )
        lateness = []
        for inc in batch.facts:
            day = ev.effective_date(inc.env.body)
            if day is not None:
                recorded = inc.env.recorded_at
                lateness.append(
                    (inc.env.kind, (recorded.date() - day).total_seconds())
                )
        m.facts_arrived(lateness)
