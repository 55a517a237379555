"""A child's set of facts, as the verifier gathers it: pure, no I/O.

A child's verdict rests on its own facts, the facts about the persons and the region
its facts name (`Ref`s), the reversals of its disbursements and the retractions of any
of those, transitively. This module names those references as typed values, finds the
children a batch of facts touches, follows retractions and reversals, and assembles a
child's fact set from where its facts are held; the verifier's orchestrator
(humiao.verifier.processor) does the reading and writing around it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from humiao.domain import events as ev
from humiao.domain.timeline import (
    IndexedTimeline,
    extended,
    index_timeline,
    persons_in,
    touched_months,
)


class RefKind(enum.StrEnum):
    """What a reference points at (a StrEnum: it hashes as fast as a str)."""

    PERSON = "p"  # a person, by pseudonymous key
    REGION = "r"  # a region, by code
    DISBURSEMENT = "d"  # a disbursement, by id: its reversals
    EVENT = "e"  # an event, by id: its retractions


class Ref(NamedTuple):
    """A subject facts are about. Corrections (disbursements and retracted events) are
    rare and kept per partition; persons and regions are kept per ref."""

    kind: RefKind
    value: str

    @property
    def corrects(self) -> bool:
        """A reversal's or a retraction's subject."""
        return self.kind is RefKind.DISBURSEMENT or self.kind is RefKind.EVENT


#: A ref as seen by one partition (each partition processes its own copy of a fact).
RefKey = tuple[Ref, int]
#: Facts by event id.
Facts = dict[str, ev.Envelope]
#: Turns a national ID into its pseudonymous key.
KeyOf = Callable[[str], str]


def subject_of(body: ev.Body, key_of: KeyOf) -> Ref | None:
    """The ref a non-child fact is about (None: it is about no subject we track)."""
    if isinstance(body, ev.PersonDied | ev.PersonStatusChanged):
        return Ref(RefKind.PERSON, key_of(body.person_id))
    if isinstance(body, ev.PaymentCycleClosed | ev.AllowanceStandardSet):
        return Ref(RefKind.REGION, body.region)
    if isinstance(body, ev.DisbursementReversed):
        return Ref(RefKind.DISBURSEMENT, body.disbursement_id)
    if isinstance(body, ev.EventRetracted):
        return Ref(RefKind.EVENT, body.retracted_event_id)
    return None


def named_refs(child_key: str, body: ev.Body, key_of: KeyOf) -> tuple[Ref, ...]:
    """The refs a child fact names: the child itself and the persons it names
    (timeline.persons_in), and for an enrollment its region."""
    child_id = body.child_id  # type: ignore[union-attr]
    refs = [Ref(RefKind.PERSON, child_key)]
    refs.extend(Ref(RefKind.PERSON, key_of(p)) for p in persons_in(body) if p != child_id)
    if type(body) is ev.ChildEnrolled:
        refs.append(Ref(RefKind.REGION, body.region))
    return tuple(refs)


@dataclass(slots=True)
class ChildFacts:
    """A child's fact set as of its last committed evaluation."""

    child_id: str
    part: int
    #: the child's own facts by event id
    own: Facts
    #: persons and regions its facts name (disbursements go by the partition's corrections)
    refs: set[Ref]
    #: size of the fact set at its last committed evaluation (sets only grow)
    evaluated: int
    #: reversals and retractions found to concern it (None: none), kept so a batch that
    #: brings no correction need not search its whole history for them again
    corrections: Facts | None
    #: the timeline of its fact set as of `evaluated`, which new payments, cycle closes
    #: and standards extend (timeline.extended) instead of indexing the history again
    indexed: IndexedTimeline


# --- the children a batch touches --------------------------------------------------------


class BatchFact(Protocol):
    """A fact of a batch as the sorting reads it."""

    @property
    def env(self) -> ev.Envelope: ...
    @property
    def partition(self) -> int: ...
    @property
    def child_key(self) -> str | None: ...  # None: a person, region or correction copy
    @property
    def subject(self) -> Ref | None: ...  # what a copy is about (a payment: its disbursement)
    @property
    def refs(self) -> tuple[Ref, ...]: ...  # for a child fact, the refs it names


@dataclass
class Touched:
    """What a batch's facts touch, before the store is asked about the rest."""

    #: children with a fact new to the store
    affected: set[str] = field(default_factory=set)
    new_facts: dict[str, Facts] = field(default_factory=dict)
    #: refs a child named for the first time (as far as the working set knows)
    new_refs: dict[str, set[Ref]] = field(default_factory=dict)
    #: (child_key, ref, partition) rows to remember
    child_refs: list[tuple[str, Ref, int]] = field(default_factory=list)
    #: (ref, partition, event id) of every copy processed
    copies: list[tuple[Ref, int, str]] = field(default_factory=list)
    #: person and region copies: the children naming them are re-checked
    pairs: list[RefKey] = field(default_factory=list)
    #: reversal copies and what retractions reach: their children are searched whole
    rare_pairs: list[RefKey] = field(default_factory=list)
    #: (retracted event id, partition)
    retractions: list[tuple[str, int]] = field(default_factory=list)
    broadcast: list[tuple[RefKey, ev.Envelope]] = field(default_factory=list)
    rare: list[tuple[RefKey, ev.Envelope]] = field(default_factory=list)


def touched_by(
    facts: Sequence[BatchFact],
    new_ids: set[str],
    known_refs: Callable[[str], set[Ref] | None],
) -> Touched:
    """Sort a batch's facts. A child fact already stored was evaluated when it was stored
    (it only arrives on its own partition): replays and duplicates touch nothing.
    `known_refs` gives the refs the working set holds for a child (None: not held)."""
    out = Touched()
    for f in facts:
        eid = f.env.event_id
        if f.child_key is not None:
            if eid in new_ids:
                _child_fact(out, f, known_refs(f.child_key))
            continue
        if f.subject is None:
            continue
        at = (f.subject, f.partition)
        out.copies.append((f.subject, f.partition, eid))
        body = f.env.body
        if isinstance(body, ev.EventRetracted):
            out.retractions.append((body.retracted_event_id, f.partition))
            out.rare.append((at, f.env))
        elif isinstance(body, ev.DisbursementReversed):
            out.rare_pairs.append(at)
            out.rare.append((at, f.env))
        else:
            out.pairs.append(at)
            out.broadcast.append((at, f.env))
    return out


def _child_fact(out: Touched, f: BatchFact, known: set[Ref] | None) -> None:
    key = f.child_key
    assert key is not None
    out.affected.add(key)
    out.new_facts.setdefault(key, {})[f.env.event_id] = f.env
    for r in f.refs:
        if known is None or r not in known:
            out.child_refs.append((key, r, f.partition))
            out.new_refs.setdefault(key, set()).add(r)


class FactHead(NamedTuple):
    """What the store says of a stored fact, enough to follow a retraction."""

    event_id: str
    kind: str
    child_key: str | None
    part: int | None
    ref: Ref | None


def follow_retractions(
    retractions: Iterable[tuple[str, int]], heads: Mapping[str, FactHead]
) -> tuple[set[str], list[RefKey], list[tuple[str, int]]]:
    """One step of following retractions to what they reach: (children whose own fact is
    retracted on their partition, refs of retracted copies, retractions retracted in turn
    to follow next). A target not stored yet is met by its own load when it comes."""
    hit: set[str] = set()
    rare_pairs: list[RefKey] = []
    follow: list[tuple[str, int]] = []
    for target, part in retractions:
        head = heads.get(target)
        if head is None:
            continue
        if head.child_key is not None:
            if head.part == part:
                hit.add(head.child_key)
        elif head.kind == "eventRetracted" and head.ref is not None:
            follow.append((head.ref.value, part))
        elif head.ref is not None:
            rare_pairs.append((head.ref, part))
    return hit, rare_pairs, follow


# --- following retractions and reversals --------------------------------------------------


@dataclass(frozen=True, slots=True)
class CorrectionIndex:
    """A partition's corrections: retractions by retracted event id, reversals by
    disbursement id."""

    retracting: dict[str, list[ev.Envelope]]
    reversing: dict[str, list[ev.Envelope]]

    @classmethod
    def of(cls, sources: Iterable[Mapping[Ref, Facts]]) -> CorrectionIndex:
        retracting: dict[str, list[ev.Envelope]] = {}
        reversing: dict[str, list[ev.Envelope]] = {}
        for source in sources:
            for ref, found in source.items():
                into = retracting if ref.kind is RefKind.EVENT else reversing
                into.setdefault(ref.value, []).extend(found.values())
        return cls(retracting, reversing)

    def __bool__(self) -> bool:
        return bool(self.retracting or self.reversing)

    def touches(self, env: ev.Envelope) -> bool:
        """Whether a correction reaches the fact (`reaches` without building the list)."""
        if env.event_id in self.retracting:
            return True
        body = env.body
        return type(body) is ev.Disbursement and body.disbursement_id in self.reversing

    def reaches(self, env: ev.Envelope) -> list[ev.Envelope]:
        """The corrections of one fact: its retractions, and a payment's reversals."""
        found = self.retracting.get(env.event_id) or []
        body = env.body
        if type(body) is ev.Disbursement and body.disbursement_id in self.reversing:
            found = found + self.reversing[body.disbursement_id]
        return found


def follow_corrections(
    facts: Facts, frontier: Iterable[ev.Envelope], index: CorrectionIndex
) -> Facts:
    """Add to `facts` the corrections reaching `frontier`, transitively (a reversal can be
    retracted, a retraction retracted); return those added."""
    added: Facts = {}
    todo = list(frontier) if index else []
    while todo:
        nxt = []
        for env in todo:
            for renv in index.reaches(env):
                if renv.event_id not in facts:
                    facts[renv.event_id] = added[renv.event_id] = renv
                    nxt.append(renv)
        todo = nxt
    return added


# --- a child's fact set --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefSources:
    """Where facts about a ref seen by a partition are: held by the working set (complete
    as of the partition's position), read from the store just now, or brought by this
    batch."""

    held: Mapping[RefKey, Facts]
    loaded: Mapping[RefKey, Facts]
    fresh: Mapping[RefKey, Facts]


@dataclass(frozen=True, slots=True)
class Assembled:
    """A child's fact set after a batch, and what of it to check (`months` None: every
    month; `changed` False: the same set, the same verdict)."""

    facts: ChildFacts
    changed: bool
    months: frozenset[int] | None


def grown(
    held: ChildFacts,
    refs: set[Ref],
    new_own: Mapping[str, ev.Envelope] | None,
    sources: RefSources,
    index: CorrectionIndex,
) -> Assembled | None:
    """A held child whose new facts are payments, cycle closes and standards that no
    correction reaches: its timeline extended by them, to be re-checked for the months
    they touch only. None when it must be indexed again (timeline.extended says when) or
    when what is new to it cannot be told from what it had: a ref no longer held, a
    newly named person or region with facts."""
    added = _added_to_held(held, refs, new_own, sources)
    if added is None:
        return None
    for env in added:
        if index.touches(env):
            return None
    indexed = extended(held.indexed, added)
    if indexed is None:
        return None
    own = {**held.own, **new_own} if new_own else held.own
    size = held.evaluated + len(added)
    facts = ChildFacts(held.child_id, held.part, own, refs, size, held.corrections, indexed)
    return Assembled(facts, size != held.evaluated, touched_months(indexed.timeline, added))


def _added_to_held(
    held: ChildFacts,
    refs: set[Ref],
    new_own: Mapping[str, ev.Envelope] | None,
    sources: RefSources,
) -> list[ev.Envelope] | None:
    added: list[ev.Envelope] = list(new_own.values()) if new_own else []
    for ref in refs:
        rk = (ref, held.part)
        facts = sources.held.get(rk)
        if facts is None:
            if ref in held.refs or sources.loaded[rk]:
                return None  # read again just now: old and new facts look alike
            continue
        if facts and ref not in held.refs:
            return None
        fresh = sources.fresh.get(rk)
        if fresh:
            added.extend(env for eid, env in fresh.items() if eid not in facts)
    return added


def assembled(
    held: ChildFacts | None,
    own: Facts,
    part: int,
    refs: set[Ref],
    new_own: Mapping[str, ev.Envelope] | None,
    sources: RefSources,
    index: CorrectionIndex,
    search_whole: bool,
) -> Assembled:
    """A child's whole fact set: own facts, facts about its refs, and the corrections
    reaching any of them. A held child no correction of this batch reached
    (`search_whole` False) keeps those it had, and only what is new to it can lead to
    more: the search starts there, not at its history."""
    facts = dict(own)
    #: facts this batch brought to the child (a copy seen before may be among them)
    added: set[str] = set(new_own) if new_own else set()
    for ref in refs:
        rk = (ref, part)
        source = sources.held.get(rk)
        facts.update(source if source is not None else sources.loaded[rk])
        fresh = sources.fresh.get(rk)
        if fresh is not None:
            facts.update(fresh)
            added.update(fresh)
    corrections: Facts = {}
    if held is not None and not search_whole:
        if held.corrections:
            facts.update(held.corrections)
            corrections.update(held.corrections)
        frontier = [facts[eid] for eid in added]
    else:
        frontier = list(facts.values())
    corrections.update(follow_corrections(facts, frontier, index))
    child_id = next(iter(own.values())).child_id()
    assert child_id is not None
    same = held is not None and held.evaluated == len(facts)
    indexed = held.indexed if held is not None and same else index_timeline(
        child_id, list(facts.values())
    )
    child = ChildFacts(child_id, part, own, refs, len(facts), corrections or None, indexed)
    return Assembled(child, not same, None)
