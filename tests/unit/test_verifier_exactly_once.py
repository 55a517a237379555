"""The verifier's batch orchestrator against the in-memory store (verifier_fake.py):
exactly-once effects (offset fencing, replays, a crash before commit) and late facts
(retractions, reversals, deaths) — the logic, without PostgreSQL or Kafka. The same
behaviour against the real store: tests/integration/test_verifier*.py."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence

import pytest
from verifier_fake import Crash, FakeVerifierStore

from builders import (
    CHILD,
    GUARDIAN,
    GUARDIAN2,
    closed,
    died,
    enrolled,
    guardian,
    paid,
    retract,
    reversed_,
)
from humiao.adapters.codec import envelope_from_bytes, envelope_to_proto
from humiao.config import KafkaSettings
from humiao.domain import events as ev
from humiao.domain.policy import PolicyBook
from humiao.verifier.metrics import VerifierMetrics
from humiao.verifier.processor import BatchResult, Fenced, InRecord, Processor
from humiao_dev.demo.city import history as city_history
from integration.verifier_support import SECRET, assert_alerts_match, expected_drafts

GROUP, TOPIC = "humiao-verifier", "events"

#: The local stack's development signing key (what ingest would sign with).
SIGNING = KafkaSettings().record_signing_secret


class Feeder:
    """One consumer's view: a processor and the offsets it believes are stored
    (everything on partition 0, as with one partition every copy lands there)."""

    def __init__(self, store: FakeVerifierStore, **cache: int) -> None:
        self.store = store
        self.processor = Processor(group=GROUP, secret=SECRET, signing_secret=SIGNING,
                                   policies=PolicyBook.default(), metrics=VerifierMetrics(),
                                   **cache)
        self.position = -1

    async def start(self) -> None:
        self.position = (await self.store.ensure_offsets(GROUP, TOPIC, [0]))[0]

    async def feed(self, envelopes: Sequence[ev.Envelope], at: int | None = None) -> BatchResult:
        """Process `envelopes` as the records from offset `at` (default: where it is)."""
        first = max(0, self.position) if at is None else at
        records = [InRecord.signed(SIGNING, 0, first + i, 0, None,
                                   envelope_to_proto(e).SerializeToString())
                   for i, e in enumerate(envelopes)]
        batch = self.processor.prepare(TOPIC, records)
        assert not batch.dead, batch.dead
        result = await self.processor.process(self.store, batch, {0: self.position})
        self.position = result.next_offsets[0]
        return result


def statuses(store: FakeVerifierStore) -> dict[str, str]:
    return {aid: a["status"] for aid, a in store.tables.alerts.items()}


async def started(store: FakeVerifierStore, **cache: int) -> Feeder:
    feeder = Feeder(store, **cache)
    await feeder.start()
    return feeder


@pytest.mark.parametrize("cached_children", [100_000, 0])
async def test_every_batch_leaves_exactly_the_alerts_the_domain_implies(
    cached_children: int,
) -> None:
    """With the working set on and off: shuffled facts with repeats, random batches."""
    history = city_history(12, months=8, seed=11)
    rng = random.Random(7)
    envelopes = list(history.envelopes)
    envelopes += rng.sample(envelopes, len(envelopes) // 8)
    rng.shuffle(envelopes)
    feeder = await started(FakeVerifierStore(), cached_children=cached_children)
    fed: list[ev.Envelope] = []
    while len(fed) < len(envelopes):
        chunk = envelopes[len(fed): len(fed) + rng.randint(1, 60)]
        await feeder.feed(chunk)
        fed.extend(chunk)
        assert_alerts_match(feeder.store.tables.alerts, expected_drafts(fed, history.child_ids))
    assert feeder.processor.evaluated["all"] > 0


async def test_a_zombie_whose_offsets_moved_is_fenced_and_writes_nothing() -> None:
    store = FakeVerifierStore()
    live, zombie = await started(store), await started(store)
    await live.feed([paid("2024-03")])  # a payment to a child never enrolled: an alert
    before = copy.deepcopy(store.tables)
    with pytest.raises(Fenced) as fenced:
        await zombie.feed([paid("2024-04")], at=0)  # it still believes offset -1 is stored
    assert fenced.value.partitions == [0]
    assert store.tables == before
    assert not zombie.processor.memory.children  # nothing staged reached its memory


async def test_replaying_a_committed_batch_changes_nothing() -> None:
    store = FakeVerifierStore()
    feeder = await started(store)
    facts = [enrolled(), guardian(), paid("2024-01", payee=GUARDIAN),
             paid("2024-02", payee=GUARDIAN2)]
    await feeder.feed(facts)
    assert store.tables.alerts and store.tables.versions
    before = copy.deepcopy(store.tables)
    # the same records again, read after the committed offset (a duplicate delivery)...
    again = await feeder.feed(facts)
    # ...and by a fresh process that holds no working set
    fresh = await started(store)
    replay = await fresh.feed(facts)
    assert (again.changes, replay.changes) == (0, 0)
    assert store.tables.alerts == before.alerts
    assert store.tables.versions == before.versions
    assert store.tables.facts == before.facts


async def test_a_crash_between_write_and_commit_loses_nothing() -> None:
    facts = [enrolled(), paid("2024-01", payee=GUARDIAN2), paid("2024-02", amount=1)]
    clean = await started(FakeVerifierStore())
    await clean.feed(facts)
    assert len(statuses(clean.store)) >= 2

    store = FakeVerifierStore()
    crashing = await started(store)
    store.crash_at_commit = True
    with pytest.raises(Crash):
        await crashing.feed(facts)
    assert store.tables.alerts == {} and store.tables.facts == {}
    assert store.tables.offsets[(GROUP, TOPIC, 0)] == -1
    restarted = await started(store)  # the next owner reads the stored offset: -1
    await restarted.feed(facts)
    assert statuses(store) == statuses(clean.store)
    assert [v[:3] for v in store.tables.versions] == [v[:3] for v in clean.store.tables.versions]
    assert store.tables.offsets == clean.store.tables.offsets


async def test_the_processor_that_crashed_forgets_nothing_it_did_not_commit() -> None:
    """Its working set is applied only after commit: a retry by the same processor
    re-reads what the failed batch did not store."""
    store = FakeVerifierStore()
    feeder = await started(store)
    await feeder.feed([enrolled(), guardian()])
    store.crash_at_commit = True
    late = [paid("2024-01", payee=GUARDIAN2)]
    with pytest.raises(Crash):
        await feeder.feed(late)
    await feeder.feed(late)
    assert store.tables.alerts
    assert_alerts_match(store.tables.alerts, expected_drafts(_fed(store), [CHILD]))
    assert len(store.tables.facts) == 3


def _fed(store: FakeVerifierStore) -> list[ev.Envelope]:
    return [envelope_from_bytes(f.payload) for f in store.tables.facts.values()]


async def test_a_late_retraction_withdraws_the_alert_it_rested_on() -> None:
    store = FakeVerifierStore()
    feeder = await started(store)
    payment = paid("2024-03")  # no enrollment: NOT_ENROLLED
    await feeder.feed([payment])
    assert list(statuses(store).values()) == ["OPEN"]
    result = await feeder.feed([retract(payment)])
    assert result.changes == 1
    assert list(statuses(store).values()) == ["WITHDRAWN"]
    # retracting the retraction brings the payment, and its alert, back
    await feeder.feed([retract(_retraction_of(store, payment))])
    assert list(statuses(store).values()) == ["REOPENED"]


def _retraction_of(store: FakeVerifierStore, target: ev.Envelope) -> str:
    for f in store.tables.facts.values():
        if f.kind == "eventRetracted" and f.ref is not None and f.ref.value == target.event_id:
            return f.event_id
    raise AssertionError("no retraction stored")


async def test_a_late_reversal_and_a_late_death_reach_a_held_child() -> None:
    """The child is held in the working set: the corrections are found from the
    partition's corrections and the person's facts, not by reading its history."""
    store = FakeVerifierStore()
    feeder = await started(store)
    wrong = paid("2024-02", payee=GUARDIAN2)
    await feeder.feed([enrolled(), guardian(), paid("2024-01", payee=GUARDIAN), wrong])
    assert "OPEN" in statuses(store).values()
    await feeder.feed([reversed_(wrong, "2024-02-20")])
    assert set(statuses(store).values()) == {"WITHDRAWN"}
    late = [died(CHILD, "2024-03-05"), paid("2024-04", payee=GUARDIAN), closed("2024-04")]
    facts = [*_fed(store), *late]
    await feeder.feed(late)
    assert_alerts_match(store.tables.alerts, expected_drafts(facts, [CHILD]))
    assert any(s == "OPEN" for s in statuses(store).values())  # paid after death
