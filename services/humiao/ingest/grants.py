"""The grant model for sources (docs/grants.md), pure: what a source may create, correct
and state about persons, judged against what ingest already knows.

- **Ids are the source's own.** An accepted fact's event id, and a disbursement's id, are
  qualified with the source that sent them (`<source>/<id>`) before they reach Kafka, so
  two sources' `dis-0450-6` are two facts, and a source's retraction or reversal names
  its own facts by construction.
- **Corrections have an owner.** A retraction or reversal naming an id that only another
  source has sent is refused (CORRECTION_NOT_OWNED), unless the credential holds a
  corrections grant for the region of that fact; then it names the owner's fact. An id
  nobody has sent yet is the sender's own (it may arrive later).
- **A child's region is its enrollment.** Facts about a child are scoped by the regions
  it is enrolled in (active enrollments first), and only with no enrollment known by
  its ID number's prefix. A child enrolled in one region cannot be enrolled in another
  until that enrollment is ended (ENROLLMENT_CONFLICT, naming both regions).
- **Facts about persons** (a death, a custody) are scoped by the regions of every child
  the person is linked to (as the child, a parent, a guardian or a payee); a person with
  no link known, by the ID number's prefix.
- Payments, standards and cycle closes name their region; that region is their scope.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from humiao.domain import events as ev

#: Separator of a qualified id; a source name never holds it (credentials check that).
QUALIFIER = "/"


class Refusal(enum.StrEnum):
    """Grant refusals (the `reason` label and the ErrorInfo reason, upper-cased)."""

    SOURCE_MISMATCH = "source_mismatch"
    KIND_NOT_ALLOWED = "kind_not_allowed"
    REGION_NOT_ALLOWED = "region_not_allowed"
    CORRECTION_NOT_OWNED = "correction_not_owned"
    ENROLLMENT_CONFLICT = "enrollment_conflict"


@dataclass(frozen=True, slots=True)
class Grant:
    """What one credential allows. None means every source name, region or kind."""

    source: str | None
    regions: frozenset[str] | None
    kinds: frozenset[str] | None
    #: Regions whose facts of other sources this credential may correct (retract, reverse).
    corrections: frozenset[str] = frozenset()
    corrections_everywhere: bool = False

    def allows_source(self, source: str) -> bool:
        return self.source is None or source == self.source

    def allows_kind(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    def allows_region(self, region: str) -> bool:
        return self.regions is None or region in self.regions

    def may_correct_in(self, region: str | None) -> bool:
        return self.corrections_everywhere or (region is not None and region in self.corrections)

    def describe(self) -> str:
        sources = "any source name" if self.source is None else f"source {self.source!r}"
        regions = "every region" if self.regions is None else ", ".join(sorted(self.regions))
        return f"{sources}, regions {regions}"


@dataclass(frozen=True, slots=True)
class Owned:
    """A fact ingest has accepted: its qualified id, its source and its region."""

    qualified: str
    source: str
    region: str | None


@dataclass
class Known:
    """What ingest knows about the subjects of a batch (loaded by the store), and what the
    batch adds as it is judged in order."""

    #: child key -> region -> enrollment still active
    enrollments: dict[str, dict[str, bool]] = field(default_factory=dict)
    #: person key -> the child keys it is linked to
    links: dict[str, set[str]] = field(default_factory=dict)
    #: a sender's event id (unqualified) -> the facts of every source with that id
    events: dict[str, list[Owned]] = field(default_factory=dict)
    #: a sender's disbursement id (unqualified) -> the disbursements with that id
    disbursements: dict[str, list[Owned]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal
    message: str
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The fact as it goes to Kafka (ids qualified) and the region it counts for."""

    envelope: ev.Envelope
    region: str | None


def qualified(source: str, sender_id: str) -> str:
    return f"{source}{QUALIFIER}{sender_id}"


def own_form(env: ev.Envelope) -> ev.Envelope:
    """A fact as ingest publishes it when every id it names is its sender's own: its event
    id, a disbursement's id, the fact a correction names, all qualified by the source."""
    body = env.body
    if isinstance(body, (ev.Disbursement, ev.DisbursementReversed)):
        body = dataclasses.replace(body,
                                   disbursement_id=qualified(env.source, body.disbursement_id))
    elif isinstance(body, ev.EventRetracted):
        body = dataclasses.replace(
            body, retracted_event_id=qualified(env.source, body.retracted_event_id))
    return dataclasses.replace(env, event_id=qualified(env.source, env.event_id), body=body)


def unqualified(source: str, qualified_id: str) -> str:
    """The sender's own id of a qualified id of `source` (as given if it is not one)."""
    prefix = f"{source}{QUALIFIER}"
    return qualified_id[len(prefix):] if qualified_id.startswith(prefix) else qualified_id


class Judge:
    """Judges one batch's envelopes in order against `known`, remembering what it accepts
    so that later envelopes of the same batch see it (an enrollment, then a payment)."""

    def __init__(self, grant: Grant, known: Known, key_of: Callable[[str], str]) -> None:
        self.grant = grant
        self.known = known
        self.key_of = key_of

    def judge(self, env: ev.Envelope) -> Accepted | Refused:
        grant = self.grant
        if not grant.allows_source(env.source):
            return Refused(Refusal.SOURCE_MISMATCH,
                           f"source {env.source!r} is not this credential's: it allows "
                           f"{grant.describe()}; add a credential for {env.source!r} to "
                           "HUMIAO_SOURCE_CREDENTIALS")
        if not grant.allows_kind(env.kind):
            return Refused(Refusal.KIND_NOT_ALLOWED,
                           f"source {env.source} may not send {env.kind} events")
        if isinstance(env.body, (ev.EventRetracted, ev.DisbursementReversed)):
            return self._correction(env)
        regions = self._regions(env)
        outside = sorted(r for r in regions if not grant.allows_region(r))
        if outside:
            return Refused(Refusal.REGION_NOT_ALLOWED,
                           f"source {env.source} may not send {env.kind} events for region "
                           f"{outside[0]}", outside[0])
        body = env.body
        if isinstance(body, ev.ChildEnrolled):
            active = self.known.enrollments.get(self.key_of(body.child_id), {})
            elsewhere = sorted(r for r, on in active.items() if on and r != body.region)
            if elsewhere:
                return Refused(Refusal.ENROLLMENT_CONFLICT,
                               f"the child is enrolled in region {elsewhere[0]}; it can be "
                               f"enrolled in {body.region} once that enrollment is ended "
                               "(enrollmentEnded from that region)", elsewhere[0])
        accepted = Accepted(own_form(env), next(iter(sorted(regions)), None))
        self.remember(accepted.envelope, accepted.region)
        return accepted

    # ---- scope ------------------------------------------------------------------------

    def _regions(self, env: ev.Envelope) -> set[str]:
        """The regions a fact is about: every one must be in the grant."""
        body = env.body
        region = getattr(body, "region", None)
        if region:
            return {str(region)}
        if isinstance(body, (ev.PersonDied, ev.PersonStatusChanged)):
            return self._person_regions(body.person_id)
        child = env.child_id()
        if child:
            return self._child_regions(child)
        return set()

    def _child_regions(self, child_id: str) -> set[str]:
        enrolled = self.known.enrollments.get(self.key_of(child_id), {})
        active = {r for r, on in enrolled.items() if on}
        return active or set(enrolled) or {child_id[:6]}

    def _person_regions(self, person_id: str) -> set[str]:
        key = self.key_of(person_id)
        children = set(self.known.links.get(key, set()))
        if key in self.known.enrollments:
            children.add(key)
        regions: set[str] = set()
        for child in children:
            regions |= set(self.known.enrollments.get(child, {}))
        return regions or {person_id[:6]}

    # ---- corrections ------------------------------------------------------------------

    def _correction(self, env: ev.Envelope) -> Accepted | Refused:
        body = env.body
        if isinstance(body, ev.EventRetracted):
            named, index = body.retracted_event_id, self.known.events
        else:
            assert isinstance(body, ev.DisbursementReversed)
            named, index = body.disbursement_id, self.known.disbursements
        target = self._target(env.source, named, index)
        if isinstance(target, Refused):
            return target
        if isinstance(body, ev.EventRetracted):
            new_body: ev.Body = dataclasses.replace(body, retracted_event_id=target.qualified)
        else:
            new_body = dataclasses.replace(body, disbursement_id=target.qualified)
        out = dataclasses.replace(env, event_id=qualified(env.source, env.event_id),
                                  body=new_body)
        self._remember_event(out, target.region)
        return Accepted(out, target.region)

    def _target(self, me: str, named: str, index: dict[str, list[Owned]]) -> Owned | Refused:
        """The fact a correction names: the sender's own, or another source's with a
        corrections grant for its region; an id nobody sent yet is the sender's own."""
        mine = qualified(me, named)
        candidates = index.get(named, [])
        for fact in candidates:
            if fact.qualified == mine:
                return fact
        # one fact may be indexed under its own id and its qualified id: count it once
        explicit = list({f.qualified: f for owned in index.values() for f in owned
                         if f.qualified == named}.values())
        if any(f.source == me for f in explicit):  # its own, named in the qualified form
            return next(f for f in explicit if f.source == me)
        others = explicit or [f for f in candidates if f.source != me]
        if not others:
            return Owned(mine, me, None)
        if len(others) == 1 and self.grant.may_correct_in(others[0].region):
            return others[0]
        return Refused(Refusal.CORRECTION_NOT_OWNED,
                       f"{named!r} names a fact of another source; a source corrects only "
                       "its own facts, or those of a region its credential's `corrections` "
                       "grant names", others[0].region)

    # ---- memory -----------------------------------------------------------------------

    def _remember_event(self, env: ev.Envelope, region: str | None) -> None:
        own = unqualified(env.source, env.event_id)
        self.known.events.setdefault(own, []).append(Owned(env.event_id, env.source, region))

    def remember(self, env: ev.Envelope, region: str | None) -> None:
        """Add an accepted (qualified) fact to what the rest of the batch sees."""
        self._remember_event(env, region)
        body, known = env.body, self.known
        if isinstance(body, ev.Disbursement):
            own = unqualified(env.source, body.disbursement_id)
            known.disbursements.setdefault(own, []).append(
                Owned(body.disbursement_id, env.source, body.region))
        for person, child in person_links(env, self.key_of):
            known.links.setdefault(person, set()).add(child)
        if isinstance(body, ev.ChildEnrolled):
            known.enrollments.setdefault(self.key_of(body.child_id), {})[body.region] = True
        elif isinstance(body, ev.EnrollmentEnded):
            enrolled = known.enrollments.get(self.key_of(body.child_id), {})
            for r in enrolled:
                enrolled[r] = False


def person_links(env: ev.Envelope, key_of: Callable[[str], str]) -> Iterable[tuple[str, str]]:
    """(person key, child key) for each person a child's fact names."""
    body = env.body
    if isinstance(body, ev.ChildEnrolled):
        child = key_of(body.child_id)
        for parent in body.parents:
            yield key_of(parent.person_id), child
    elif isinstance(body, ev.GuardianAppointed):
        yield key_of(body.guardian_id), key_of(body.child_id)
    elif isinstance(body, ev.Disbursement):
        yield key_of(body.payee_id), key_of(body.child_id)
