"""The ingest gateway in-process against the real broker and PostgreSQL: per-event
answers, what lands on Kafka, credentials and scope, Kafka failure."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from kafka import KafkaConsumer, TopicPartition

from humiao.adapters.codec import envelope_from_bytes, envelope_to_proto
from humiao.adapters.db import create_pool
from humiao.adapters.publisher import EventPublisher, PublisherOptions
from humiao.adapters.topics import ensure_topics, partition_for_key, routing_key
from humiao.api.events.v1 import events_pb2
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.config import KafkaSettings
from humiao.domain.events import (
    Envelope,
    PersonDied,
)
from humiao.ingest.api import Dependencies, IngestServicer
from humiao.ingest.credentials import CredentialStore, hash_token, parse_credentials
from humiao.ingest.grants import own_form
from humiao_dev.stack.broker import start_broker
from strategies import random_citizen_id, random_envelope

pytestmark = pytest.mark.integration

SECRET = b"test-pseudonym-key"
ALL_TOKEN = "token-city-all"
DISTRICT_TOKEN = "token-district-110105"
CREDENTIALS = {
    hash_token(ALL_TOKEN): {"source": "city", "regions": "*", "kinds": "*"},
    hash_token(DISTRICT_TOKEN): {
        "source": "district-110105",
        "regions": ["110105"],
        "kinds": ["childEnrolled", "disbursement", "personDied"],
    },
}


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@dataclass
class Gateway:
    stub: ingest_pb2_grpc.IngestServiceStub
    kafka: KafkaSettings
    database_url: str
    pool: asyncpg.Pool

    async def submit(
        self, envelopes: Sequence[Envelope | events_pb2.Envelope], token: str = ALL_TOKEN
    ) -> ingest_pb2.SubmitBatchResponse:
        events = [e if isinstance(e, events_pb2.Envelope) else envelope_to_proto(e)
                  for e in envelopes]
        return await self.stub.SubmitBatch(
            ingest_pb2.SubmitBatchRequest(events=events), metadata=auth(token), timeout=60
        )


async def start_gateway(
    kafka: KafkaSettings, database_url: str, options: PublisherOptions | None = None
) -> tuple[grpc.aio.Server, int, Dependencies]:
    await asyncio.to_thread(ensure_topics, kafka)
    deps = Dependencies(
        pool=await create_pool(database_url),
        publisher=await EventPublisher.open(kafka, SECRET, options),
    )
    deps.ready.set()
    store: CredentialStore = parse_credentials(CREDENTIALS)
    server = grpc.aio.server()
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(
        IngestServicer(deps, store, pseudonym_key=SECRET), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port, deps


async def stop_gateway(server: grpc.aio.Server, deps: Dependencies) -> None:
    await server.stop(None)
    assert deps.publisher is not None and deps.pool is not None
    await deps.publisher.close(timeout=2)
    await deps.pool.close()


@pytest.fixture
async def gateway(kafka_settings: KafkaSettings, database_url: str) -> AsyncIterator[Gateway]:
    server, port, deps = await start_gateway(kafka_settings, database_url)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        assert deps.pool is not None
        yield Gateway(ingest_pb2_grpc.IngestServiceStub(channel), kafka_settings, database_url,
                      deps.pool)
    finally:
        await channel.close()
        await stop_gateway(server, deps)


def consume_all(kafka: KafkaSettings, expected: int, timeout: float = 20.0) -> list[object]:
    """Every record of the events topic, waiting until `expected` arrived (then a bit more)."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="earliest")
    try:
        partitions = [TopicPartition(kafka.events_topic, p)
                      for p in range(kafka.humiao_partitions)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[object] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if len(records) >= expected:
                # anything extra (a wrongly duplicated publish) would be here by now
                for batch in consumer.poll(timeout_ms=300).values():
                    records.extend(batch)
                break
        return records
    finally:
        consumer.close()


def envelopes(n: int, seed: int, kinds: Sequence[str] = ("disbursement",), source: str = "city",
              region: str = "110105") -> list[Envelope]:
    rng = random.Random(seed)
    return [random_envelope(rng, event_id=f"ev-{seed}-{i}", source=source, region=region,
                            kinds=kinds) for i in range(n)]


def bad_request(result: ingest_pb2.EventResult) -> dict[str, str]:
    assert result.status.code == code_pb2.INVALID_ARGUMENT
    detail = error_details_pb2.BadRequest()
    assert result.status.details[0].Unpack(detail)
    return {v.field: v.description for v in detail.field_violations}


async def test_batch_answers_each_event(gateway: Gateway) -> None:
    a, b, c = envelopes(3, seed=1)
    first = await gateway.submit([a])
    assert [r.outcome for r in first.results] == [ingest_pb2.ACCEPTED]

    invalid = envelope_to_proto(b)
    invalid.event_id = "ev-invalid"
    invalid.disbursement.amount_fen = -100
    invalid.disbursement.period = "2024-13"
    invalid.disbursement.child_id = invalid.disbursement.child_id[:17] + "Z"
    answer = await gateway.submit([b, a, invalid, b, c])

    assert [r.outcome for r in answer.results] == [
        ingest_pb2.ACCEPTED, ingest_pb2.DUPLICATE, ingest_pb2.REJECTED, ingest_pb2.DUPLICATE,
        ingest_pb2.ACCEPTED,
    ]
    assert [r.index for r in answer.results] == [0, 1, 2, 3, 4]
    assert answer.results[2].event_id == "ev-invalid"
    assert (answer.accepted, answer.duplicates, answer.rejected) == (2, 2, 1)
    violations = bad_request(answer.results[2])
    assert set(violations) == {
        "disbursement.amountFen", "disbursement.period", "disbursement.childId"
    }
    assert "negative" in violations["disbursement.amountFen"]
    assert "-100" not in answer.results[2].status.message or "amountFen" in \
        answer.results[2].status.message
    async with gateway.pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_id, own_id, kind, source FROM ingested_events")
    # ids are unique per source: recorded and published qualified with the source
    assert {(r["event_id"], r["own_id"], r["kind"], r["source"]) for r in rows} == {
        (f"city/{e.event_id}", e.event_id, "disbursement", "city") for e in (a, b, c)
    }
    records = await asyncio.to_thread(consume_all, gateway.kafka, 3)
    assert sorted(envelope_from_bytes(r.value).event_id for r in records) == sorted(  # type: ignore[attr-defined]
        f"city/{e.event_id}" for e in (a, b, c)
    )


async def test_published_messages_decode_to_the_same_envelopes(gateway: Gateway) -> None:
    sent = envelopes(40, seed=2, kinds=("childEnrolled", "disbursement", "guardianAppointed",
                                         "enrollmentEnded", "childAdopted",
                                         "schoolingExtension"))
    before_ms = int(time.time() * 1000)
    answer = await gateway.submit(sent)
    assert answer.accepted == len(sent)
    records = await asyncio.to_thread(consume_all, gateway.kafka, len(sent))
    assert len(records) == len(sent)
    by_id = {own_form(e).event_id: own_form(e) for e in sent}
    for record in records:
        env = envelope_from_bytes(record.value)  # type: ignore[attr-defined]
        assert env == by_id[env.event_id]
        key, broadcast = routing_key(env, SECRET)
        assert not broadcast
        assert record.key == key  # type: ignore[attr-defined]
        assert env.child_id() is not None and env.child_id().encode() not in record.key  # type: ignore[attr-defined, union-attr]
        assert record.partition == partition_for_key(key, 4)  # type: ignore[attr-defined]
        assert before_ms - 5 <= record.timestamp <= int(time.time() * 1000) + 5  # type: ignore[attr-defined]


async def test_broadcast_kinds_land_once_on_every_partition(gateway: Gateway) -> None:
    sent = envelopes(5, seed=3, kinds=("personDied", "personStatusChanged", "paymentCycleClosed",
                                        "allowanceStandardSet", "disbursementReversed",
                                        "eventRetracted"))
    answer = await gateway.submit(sent)
    assert answer.accepted == len(sent)
    records = await asyncio.to_thread(consume_all, gateway.kafka, 4 * len(sent))
    assert len(records) == 4 * len(sent)
    for env in sent:
        copies = [r for r in records if envelope_from_bytes(r.value) == own_form(env)]  # type: ignore[attr-defined]
        assert sorted(r.partition for r in copies) == [0, 1, 2, 3]  # type: ignore[attr-defined]
        assert len({r.key for r in copies}) == 1  # type: ignore[attr-defined]


async def test_replay_after_restart_is_duplicate_and_not_republished(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    sent = envelopes(10, seed=4)
    for round_ in range(2):
        server, port, deps = await start_gateway(kafka_settings, database_url)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            answer = await stub.SubmitBatch(
                ingest_pb2.SubmitBatchRequest(events=[envelope_to_proto(e) for e in sent]),
                metadata=auth(ALL_TOKEN),
            )
        await stop_gateway(server, deps)
        expected = ingest_pb2.ACCEPTED if round_ == 0 else ingest_pb2.DUPLICATE
        assert {r.outcome for r in answer.results} == {expected}
    records = await asyncio.to_thread(consume_all, kafka_settings, len(sent))
    assert len(records) == len(sent)


async def test_missing_or_unknown_token_is_unauthenticated(gateway: Gateway) -> None:
    request = ingest_pb2.SubmitBatchRequest(events=[envelope_to_proto(envelopes(1, seed=5)[0])])
    for metadata in ((), auth("not-a-token"), (("authorization", ALL_TOKEN),)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await gateway.stub.SubmitBatch(request, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.SubmitStream(iter(request.events))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await asyncio.to_thread(consume_all, gateway.kafka, 1, 1.0) == []


async def test_out_of_scope_events_are_denied_one_by_one(gateway: Gateway) -> None:
    rng = random.Random(6)
    ok = envelopes(1, seed=6, source="district-110105")[0]
    other_region = envelopes(1, seed=7, source="district-110105", region="110106")[0]
    wrong_kind = envelopes(1, seed=8, source="district-110105",
                           kinds=("guardianAppointed",))[0]
    wrong_source = envelopes(1, seed=9, source="city")[0]
    died_here = Envelope("died-here", ok.recorded_at, "district-110105",
                         PersonDied(random_citizen_id(rng, "110105"), ok.recorded_at.date()))
    died_elsewhere = Envelope("died-elsewhere", ok.recorded_at, "district-110105",
                              PersonDied(random_citizen_id(rng, "320102"),
                                         ok.recorded_at.date()))
    answer = await gateway.submit(
        [ok, other_region, wrong_kind, wrong_source, died_here, died_elsewhere],
        token=DISTRICT_TOKEN,
    )
    outcomes = [r.outcome for r in answer.results]
    assert outcomes == [ingest_pb2.ACCEPTED, ingest_pb2.REJECTED, ingest_pb2.REJECTED,
                        ingest_pb2.REJECTED, ingest_pb2.ACCEPTED, ingest_pb2.REJECTED]
    denied = [answer.results[i].status for i in (1, 2, 3, 5)]
    assert {s.code for s in denied} == {code_pb2.PERMISSION_DENIED}
    assert "region 110106" in denied[0].message
    assert "guardianAppointed" in denied[1].message
    assert "is not this credential's" in denied[2].message
    assert "district-110105" in denied[2].message  # says which source the credential allows
    assert "region 320102" in denied[3].message
    info = error_details_pb2.ErrorInfo()
    assert denied[0].details[0].Unpack(info) and info.reason == "REGION_NOT_ALLOWED"


async def test_stream_is_answered_in_order_across_chunks(gateway: Gateway) -> None:
    sent = envelopes(2300, seed=10)
    stream = [envelope_to_proto(e) for e in sent] + [envelope_to_proto(sent[0])]
    answer = await gateway.stub.SubmitStream(iter(stream), metadata=auth(ALL_TOKEN), timeout=60)
    assert [r.index for r in answer.results] == list(range(len(stream)))
    assert answer.accepted == len(sent) and answer.duplicates == 1
    assert answer.results[-1].outcome == ingest_pb2.DUPLICATE


async def test_kafka_failure_answers_unavailable_and_records_nothing(
    database_url: str, kafka_settings: KafkaSettings
) -> None:
    await _kafka_failure(database_url, kafka_settings)


async def _kafka_failure(database_url: str, kafka_settings: KafkaSettings) -> None:
    broker = await asyncio.to_thread(start_broker)
    kafka = kafka_settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
    options = PublisherOptions(linger_ms=1, max_block_ms=2000, delivery_timeout_ms=3000,
                               request_timeout_ms=1000)
    try:
        server, port, deps = await start_gateway(kafka, database_url, options)
    except BaseException:
        broker.stop()
        raise
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ingest_pb2_grpc.IngestServiceStub(channel)
            warm = envelopes(1, seed=11)
            answer = await stub.SubmitBatch(
                ingest_pb2.SubmitBatchRequest(events=[envelope_to_proto(e) for e in warm]),
                metadata=auth(ALL_TOKEN))
            assert answer.accepted == 1
            broker.process.send_signal(signal.SIGSTOP)  # the broker hangs: nothing is acked
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SubmitBatch(
                    ingest_pb2.SubmitBatchRequest(
                        events=[envelope_to_proto(e) for e in envelopes(3, seed=12)]),
                    metadata=auth(ALL_TOKEN), timeout=30)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - started < 15
        assert deps.pool is not None
        async with deps.pool.acquire() as conn:
            ids = {r[0] for r in await conn.fetch("SELECT event_id FROM ingested_events")}
        assert ids == {f"{warm[0].source}/{warm[0].event_id}"}
    finally:
        await server.stop(None)
        assert deps.publisher is not None and deps.pool is not None
        broker.process.send_signal(signal.SIGCONT)
        await deps.publisher.close(timeout=1)
        await deps.pool.close()
        broker.stop()


async def test_a_stream_past_its_limit_is_refused_after_answering_what_came_before(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    import humiao.ingest.api as api

    monkeypatch.setattr(api, "MAX_STREAM_EVENTS", 3)
    stream = [envelope_to_proto(e) for e in envelopes(5, seed=41)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.stub.SubmitStream(iter(stream), metadata=auth(ALL_TOKEN), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 3 events per SubmitStream" in (caught.value.details() or "")
    again = await gateway.stub.SubmitStream(iter(stream[:3]), metadata=auth(ALL_TOKEN),
                                            timeout=60)
    assert again.accepted + again.duplicates == 3
