"""What the benchmark feeds: a demo-generator city sized to a number of events, and a
minimal many-children history for the memory runs, both produced straight to Kafka with
the gateway's routing (humiao.adapters.topics.routing_key)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from humiao.domain import events as ev
from humiao.domain.identity import compose_citizen_id as citizen_id
from humiao.domain.validation import compose_credit_code
from humiao.domain.values import Period, Program, Situation
from humiao_dev.demo.city import City, CityConfig, generate_city

STANDARD_FEN = {
    Program.ORPHAN_INSTITUTIONAL: 200_000,
    Program.ORPHAN_DISPERSED: 150_000,
}


def at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


#: Regions of the memory history.
MEMORY_REGIONS = ("110105", "110106", "310101")
MEMORY_PERIOD = Period.of(2022, 1)
_PROGRAMS = (Program.ORPHAN_INSTITUTIONAL, Program.ORPHAN_DISPERSED,
             Program.DE_FACTO_UNSUPPORTED)


@dataclass(frozen=True)
class SizedCity:
    city: City
    #: the history then the late corrections, in the order they are produced
    envelopes: list[ev.Envelope]


def city_of_size(events: int, *, months: int = 24, seed: int = 2024,
                 pilot_children: int = 400, **config: Any) -> SizedCity:
    """A demo city (its shape: stories, injected faults, late corrections) with at least
    `events` envelopes. Sized from a small pilot city; grown again if it came out short.
    `config`: other CityConfig fields (injection_rate, ...)."""
    base = CityConfig(seed=seed, months=months, **config)
    pilot = generate_city(dataclasses.replace(base, children=pilot_children))
    per_child = (len(pilot.events) + len(pilot.corrections)) / pilot_children
    children = max(20, math.ceil(events / per_child * 1.01))
    while True:
        city = generate_city(dataclasses.replace(base, children=children))
        total = len(city.events) + len(city.corrections)
        if total >= events:
            return SizedCity(city, [*city.events, *city.corrections])
        children = math.ceil(children * events / total * 1.02)


def _memory_child(i: int) -> tuple[str, str, Program, dt.date, dt.date, str, str, str]:
    """(region, child, program, birth, approved, father, mother, guardian) of child i."""
    region = MEMORY_REGIONS[i % len(MEMORY_REGIONS)]
    j = i // len(MEMORY_REGIONS)
    program = _PROGRAMS[j % len(_PROGRAMS)]
    # A distinct (birth date, sequence) per region: 1000 children per birth day; parents
    # and guardians of their own per child: 1000 per birth day and prefix.
    birth = dt.date(2008, 1, 1) + dt.timedelta(days=j // 1000)
    child = citizen_id(region, birth, j)
    pb = dt.date(1978, 1, 1) + dt.timedelta(days=i // 1000)
    father, mother = citizen_id("220102", pb, i), citizen_id("220103", pb, i)
    if program is Program.ORPHAN_INSTITUTIONAL:
        guardian = compose_credit_code("12", region, f"{j % 50:09d}")
    else:
        guardian = citizen_id("220104", dt.date(1970, 1, 1) + dt.timedelta(days=i // 1000), i)
    approved = MEMORY_PERIOD.first_day() - dt.timedelta(days=30 + i % 200)
    return region, child, program, birth, approved, father, mother, guardian


def _situations(program: Program) -> tuple[Situation, Situation]:
    if program is Program.DE_FACTO_UNSUPPORTED:
        return Situation.IN_CUSTODY, Situation.DECEASED
    return Situation.DECEASED, Situation.DECEASED


def _standard(program: Program) -> int:
    return STANDARD_FEN[Program.ORPHAN_DISPERSED if program is Program.DE_FACTO_UNSUPPORTED
                        else program]


_MEMORY_PAID = MEMORY_PERIOD.first_day() + dt.timedelta(days=9)


def memory_history(children: int, *, guardians: bool = True) -> Iterator[ev.Envelope]:
    """A minimal history for `children` children: the standards, then per child an
    enrollment, a guardian appointment (unless not `guardians`: then the child is its own
    payee) and one correct payment. No alert is implied; what grows with the children is
    the state the verifier has to hold. Streamed and deterministic.

    The reference for `memory_records`, which builds the same bytes faster."""
    start = MEMORY_PERIOD
    for region in MEMORY_REGIONS:
        for program, amount in STANDARD_FEN.items():
            yield ev.Envelope(f"MS-{region}-{program.name}",
                              at(start.first_day() - dt.timedelta(days=40)), "bench",
                              ev.AllowanceStandardSet(region, program, start, amount))
    for i in range(children):
        region, child, program, birth, approved, father, mother, guardian = _memory_child(i)
        first, second = _situations(program)
        yield ev.Envelope(f"ME-{i}", at(approved + dt.timedelta(days=1)), "bench",
                          ev.ChildEnrolled(child, birth, program, region, approved,
                                           (ev.ParentRecord(father, first),
                                            ev.ParentRecord(mother, second))))
        payee = child
        if guardians:
            payee = guardian
            yield ev.Envelope(f"MG-{i}", at(approved + dt.timedelta(days=2)), "bench",
                              ev.GuardianAppointed(child, guardian, approved))
        yield ev.Envelope(f"MD-{i}", at(_MEMORY_PAID, 10), "bench",
                          ev.Disbursement(f"MD-{i}", child, program, start, _standard(program),
                                          _MEMORY_PAID, payee, region))


def memory_records(children: int, secret: bytes, *, guardians: bool = True
                   ) -> Iterator[tuple[bytes, bytes, bool]]:
    """encode(memory_history(...)) built straight in protobuf: about five times faster,
    which matters for a million children (tests check the bytes are the same)."""
    from humiao.api.events.v1 import events_pb2 as pb
    from humiao.domain.identity import pseudonym

    head = memory_history(0)
    yield from encode(head, secret)
    period = str(MEMORY_PERIOD)
    paid = _MEMORY_PAID.isoformat()
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def seconds(when: dt.datetime) -> int:
        return int((when - epoch).total_seconds())

    paid_at = seconds(at(_MEMORY_PAID, 10))
    for i in range(children):
        region, child, program, birth, approved, father, mother, guardian = _memory_child(i)
        first, second = _situations(program)
        key = pseudonym(secret, child).encode()
        approved_on = approved.isoformat()
        enrolled = pb.Envelope(event_id=f"ME-{i}", source="bench", child_enrolled=pb.ChildEnrolled(
            child_id=child, birth_date=birth.isoformat(), program=program.name, region=region,
            approved_on=approved_on,
            parents=[pb.ParentRecord(person_id=father, situation=first.name),
                     pb.ParentRecord(person_id=mother, situation=second.name)]))
        enrolled.recorded_at.seconds = seconds(at(approved + dt.timedelta(days=1)))
        yield key, enrolled.SerializeToString(), False
        payee = child
        if guardians:
            payee = guardian
            appointed = pb.Envelope(event_id=f"MG-{i}", source="bench",
                                    guardian_appointed=pb.GuardianAppointed(
                                        child_id=child, guardian_id=guardian,
                                        effective_date=approved_on))
            appointed.recorded_at.seconds = seconds(at(approved + dt.timedelta(days=2)))
            yield key, appointed.SerializeToString(), False
        paid_msg = pb.Envelope(event_id=f"MD-{i}", source="bench", disbursement=pb.Disbursement(
            disbursement_id=f"MD-{i}", child_id=child, program=program.name, period=period,
            amount_fen=_standard(program), paid_on=paid, payee_id=payee, region=region))
        paid_msg.recorded_at.seconds = paid_at
        yield key, paid_msg.SerializeToString(), False


def encode(envelopes: Iterable[ev.Envelope], secret: bytes
           ) -> Iterator[tuple[bytes, bytes, bool]]:
    """(key, value, broadcast?) per envelope, as the ingest gateway would publish it."""
    from humiao.adapters.codec import envelope_to_proto
    from humiao.adapters.topics import routing_key

    for env in envelopes:
        key, broadcast = routing_key(env, secret)
        yield key, envelope_to_proto(env).SerializeToString(), broadcast


def produce(bootstrap: str, topic: str, partitions: int,
            records: Iterable[tuple[bytes, bytes, bool]]) -> tuple[int, int]:
    """Send every record (broadcast ones to every partition), signed as ingest signs them
    (the verifier takes no other); (events, records) sent."""
    from humiao.adapters.kafka_bridge import new_producer
    from humiao.adapters.record_signing import signed_headers
    from humiao.config import KafkaSettings

    signing = KafkaSettings().record_signing_secret
    producer = new_producer(bootstrap, "humiao-bench", linger_ms=20, batch_size=512 * 1024,
                            acks=1)
    events = sent = 0
    try:
        for key, value, broadcast in records:
            events += 1
            headers = signed_headers(signing, key, value)
            if broadcast:
                for p in range(partitions):
                    producer.send(topic, key=key, value=value, partition=p, headers=headers)
                sent += partitions
            else:
                producer.send(topic, key=key, value=value, headers=headers)
                sent += 1
        producer.flush()
    finally:
        producer.close()
    return events, sent
