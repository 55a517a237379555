"""Fault 2: PostgreSQL taken away mid-processing. Ingest, verifier and desk run as
processes whose DATABASE_URL points at a loopback proxy; the test cuts it (every
connection reset, new ones refused) while the verifier is working through a backlog,
then restores it.

While cut: each service reports NOT_SERVING and stays up, the verifier retries (its
batch-failure counter grows) without moving a single offset, ingest answers UNAVAILABLE
(never ACCEPTED: it cannot record what it published), the desk answers UNAVAILABLE.
After: everything is processed and the alerts are what an undisturbed run gives (the
domain's own conclusion from the whole set), every version once, all of them on the wire.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc
import pytest
from fault_support import (
    NOT_SERVING,
    SERVING,
    ServiceProcess,
    TcpProxy,
    assert_contiguous,
    await_until,
    bearer,
    committed_offsets,
    committed_total,
    fetch,
    host_port,
    metric_value,
    migrate,
    service_env,
    source_credentials,
    staff_credentials,
    start_serving,
    stop_all,
    stored_payloads,
    true_end_offsets,
    version_history,
    via_proxy,
    wait_settled,
    wire_versions,
)

from humiao.adapters.codec import envelope_to_proto
from humiao.api.desk.v1 import desk_pb2, desk_pb2_grpc
from humiao.api.events.v1 import events_pb2
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.config import KafkaSettings
from humiao.ingest.grants import own_form
from humiao_dev.demo.city import history as city_history
from integration.verifier_support import (
    alert_rows,
    assert_alerts_match,
    expected_drafts,
    shuffled,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(200)]

SEED = 4242
GROUP = "fault-database"
SOURCE_TOKEN = "fault-db-source"
STAFF_TOKEN = "fault-db-supervisor"


async def submit(stub: ingest_pb2_grpc.IngestServiceStub, events: Sequence[events_pb2.Envelope],
                 chunk: int = 400) -> int:
    """Submit in chunks; every event must be ACCEPTED. Returns how many were."""
    accepted = 0
    for i in range(0, len(events), chunk):
        answer = await stub.SubmitBatch(
            ingest_pb2.SubmitBatchRequest(events=events[i:i + chunk]),
            metadata=bearer(SOURCE_TOKEN), timeout=60)
        assert answer.accepted == len(events[i:i + chunk]), answer.results[0]
        accepted += answer.accepted
    return accepted


async def test_postgres_cut_mid_processing_then_restored(
    make_topics: Callable[..., KafkaSettings],
    make_database: Callable[[], Awaitable[str]],
    tmp_path: Path,
) -> None:
    history = city_history(150, months=14, seed=SEED)
    events = [envelope_to_proto(e) for e in shuffled(history.envelopes, seed=SEED)]
    first, second = events[: len(events) * 2 // 3], events[len(events) * 2 // 3:]
    topics = make_topics(4)
    dsn = await migrate(await make_database())
    proxy = TcpProxy(*host_port(dsn)).start()
    env = service_env(
        topics, via_proxy(dsn, proxy.port),
        HUMIAO_VERIFIER_GROUP=GROUP,
        HUMIAO_VERIFIER_BATCH_MAX="60",
        HUMIAO_VERIFIER_LINGER_MS="5",
        HUMIAO_VERIFIER_SESSION_TIMEOUT_MS="6000",
        HUMIAO_SOURCE_CREDENTIALS=source_credentials(
            **{SOURCE_TOKEN: ("synthetic", "*", "*")}),
        HUMIAO_STAFF_CREDENTIALS=staff_credentials(
            **{STAFF_TOKEN: ("Supervisor", "supervisor", "*")}),
    )
    services: dict[str, ServiceProcess] = {}
    try:  # the proxy is closed whatever happens from here on
        services.update(start_serving(("ingest", "verifier", "desk"), env, tmp_path))
        ingest_channel = grpc.aio.insecure_channel(services["ingest"].target)
        desk_channel = grpc.aio.insecure_channel(services["desk"].target)
        ingest = ingest_pb2_grpc.IngestServiceStub(ingest_channel)
        desk = desk_pb2_grpc.AlertDeskStub(desk_channel)
        verifier = services["verifier"]

        # A backlog for the verifier, then the cut as soon as it has committed a batch.
        await submit(ingest, first)
        backlog = await asyncio.to_thread(true_end_offsets, topics.bootstrap,
                                          topics.events_topic)

        async def some_committed() -> bool:
            verifier.assert_alive()
            return await committed_total(dsn, GROUP) > 0

        await await_until("a first committed batch", some_committed, 60, interval=0.01)
        open_connections = proxy.cut()
        cut_at = time.monotonic()
        at_cut = await committed_offsets(dsn, GROUP)
        assert sum(at_cut.values()) < sum(backlog.values()), "cut too late to prove anything"
        assert proxy.refuses()

        for svc in services.values():
            svc.wait_health(NOT_SERVING, 20)
        not_serving_after = time.monotonic() - cut_at

        # Ingest cannot record what it would publish: UNAVAILABLE, and nothing published.
        ends_before = await asyncio.to_thread(true_end_offsets, topics.bootstrap,
                                              topics.events_topic)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ingest.SubmitBatch(ingest_pb2.SubmitBatchRequest(events=second[:50]),
                                     metadata=bearer(SOURCE_TOKEN), timeout=30)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
        with pytest.raises(grpc.aio.AioRpcError) as desk_refused:
            await desk.ListAlerts(desk_pb2.ListAlertsRequest(), metadata=bearer(STAFF_TOKEN),
                                  timeout=30)
        desk_code = desk_refused.value.code()
        assert await asyncio.to_thread(true_end_offsets, topics.bootstrap,
                                       topics.events_topic) == ends_before

        # The verifier keeps retrying (with backoff) and moves no offset.
        def failures() -> float:
            return metric_value(verifier.scrape(), "humiao_verifier_batch_failures_total")

        async def retried() -> bool:
            verifier.assert_alive()
            return verifier.tail(50000).count("batch dropped, retrying") >= 4  # 0.2+0.4+0.8 s

        await await_until("the verifier to retry with backoff", retried, 30)
        assert await committed_offsets(dsn, GROUP) == at_cut
        for svc in services.values():
            svc.assert_alive()
            assert svc.health() == NOT_SERVING
        cut_seconds = time.monotonic() - cut_at

        proxy.restore()
        for svc in services.values():
            svc.wait_health(SERVING, 60)
        await submit(ingest, second)
        ends = await asyncio.to_thread(true_end_offsets, topics.bootstrap, topics.events_topic)
        await wait_settled(dsn, GROUP, ends, 90, alive=verifier.assert_alive)
        rows = await alert_rows(dsn)
        assert_alerts_match(rows, expected_drafts([own_form(e) for e in history.envelopes],
                                                history.child_ids))
        assert_contiguous(await version_history(dsn))
        wire, _ = await asyncio.to_thread(wire_versions, topics)
        assert wire == await stored_payloads(dsn)
        facts = await fetch(dsn, "SELECT count(*) AS n FROM facts")
        assert facts[0]["n"] == len(history.envelopes)
        listed = await desk.ListAlerts(desk_pb2.ListAlertsRequest(page_size=1),
                                       metadata=bearer(STAFF_TOKEN), timeout=30)
        assert listed.total == len(rows)
        retries = failures()
        assert retries > 0
        await ingest_channel.close()
        await desk_channel.close()
    finally:
        codes = stop_all(services.values())
        proxy.close()
    assert codes == {"ingest": 0, "verifier": 0, "desk": 0}, {
        n: s.tail() for n, s in services.items() if codes.get(n) != 0}
    print(f"\npostgres cut: {open_connections} connections reset; all NOT_SERVING "
          f"{not_serving_after:.1f}s after the cut; cut for {cut_seconds:.1f}s with "
          f"{sum(at_cut.values())}/{sum(backlog.values())} records committed; "
          f"{retries:.0f} verifier batches rolled back; {len(rows)} alerts after restore")
    # Checked last so the recovery above is proven either way: a dependency outage is
    # UNAVAILABLE (retry later), not INTERNAL (a bug of ours).
    assert desk_code == grpc.StatusCode.UNAVAILABLE, f"desk answered {desk_code} while cut"
