"""Step 3: events/s through the ingest gateway (a process of its own, a fresh database and
topic), by SubmitBatch calls and by the file import of `humiao ingest`."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from humiao.config import KafkaSettings
from humiao.domain.events import Envelope
from humiao_dev.bench.context import BenchContext
from humiao_dev.bench.processes import Service, spawn

#: Events per SubmitBatch call and calls awaiting an answer (as `humiao ingest` does).
CHUNK = 1000
IN_FLIGHT = 3


@dataclass
class Gateway:
    service: Service
    token: str
    kafka: KafkaSettings
    dsn: str


def credentials(token: str, source: str) -> str:
    """HUMIAO_SOURCE_CREDENTIALS inline: one source, every region and kind."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    return json.dumps({digest: {"source": source, "regions": "*", "kinds": "*"}})


@contextlib.contextmanager
def gateway(ctx: BenchContext, tag: str, source: str,
            kafka: KafkaSettings | None = None) -> Iterator[Gateway]:
    """An ingest process on a fresh database (and, unless given, fresh topics)."""
    kafka = kafka or ctx.kafka(tag)
    dsn = ctx.new_database(tag)
    token = "bench-" + secrets.token_urlsafe(18)
    service = spawn(f"ingest-{tag}", "humiao.ingest",
                    ctx.service_env(kafka, dsn,
                                    HUMIAO_SOURCE_CREDENTIALS=credentials(token, source)),
                    ctx.workdir)
    try:
        service.wait_ready()
        yield Gateway(service, token, kafka, dsn)
    finally:
        service.stop()
        ctx.drop_database(dsn)


@contextlib.contextmanager
def gateway_stub(ctx: BenchContext, tag: str, source: str) -> Iterator[tuple[Gateway, Any]]:
    """A fresh gateway (see `gateway`) and a stub on it; its topics deleted afterwards."""
    from humiao.cli.ingest_cmd import open_stub

    with gateway(ctx, tag, source) as gw:
        channel, stub = open_stub(gw.service.grpc)
        try:
            yield gw, stub
        finally:
            channel.close()
        ctx.delete_topics([gw.kafka.events_topic, gw.kafka.alerts_topic,
                           gw.kafka.deadletter_topic])


def requests_of(envelopes: Sequence[Envelope], chunk: int = CHUNK) -> list[Any]:
    from humiao.adapters.codec import envelope_to_proto
    from humiao.api.ingest.v1 import ingest_pb2

    return [ingest_pb2.SubmitBatchRequest(events=[envelope_to_proto(e)
                                                  for e in envelopes[i:i + chunk]])
            for i in range(0, len(envelopes), chunk)]


def submit_all(target: str, token: str, requests: list[Any], in_flight: int = IN_FLIGHT,
               timeout: float = 120.0) -> dict[str, Any]:
    """Send prepared SubmitBatch requests, `in_flight` at a time; counts and seconds."""
    from humiao.api.ingest.v1 import ingest_pb2
    from humiao.cli.ingest_cmd import open_stub, status_reasons

    channel, stub = open_stub(target)
    metadata = (("authorization", f"Bearer {token}"),)
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    sample: list[str] = []
    pending: collections.deque[Any] = collections.deque()

    def settle(call: Any) -> None:
        answer = call.result()
        counts["accepted"] += answer.accepted
        counts["duplicates"] += answer.duplicates
        counts["rejected"] += answer.rejected
        if answer.rejected and not sample:
            bad = [r for r in answer.results if r.outcome == ingest_pb2.REJECTED]
            sample.extend(status_reasons(bad[0].status))

    try:
        started = time.perf_counter()
        for request in requests:
            pending.append(stub.SubmitBatch.future(request, metadata=metadata, timeout=timeout))
            while len(pending) >= in_flight:
                settle(pending.popleft())
        while pending:
            settle(pending.popleft())
        seconds = time.perf_counter() - started
    finally:
        channel.close()
    return {**counts, "seconds": round(seconds, 3), "rejected_sample": sample[:3]}


def batch_throughput(ctx: BenchContext, envelopes: Sequence[Envelope], source: str
                     ) -> dict[str, Any]:
    requests = requests_of(envelopes)
    with gateway(ctx, "ingestbatch", source) as gw:
        result = submit_all(gw.service.grpc, gw.token, requests)
        ctx.delete_topics([gw.kafka.events_topic, gw.kafka.alerts_topic,
                           gw.kafka.deadletter_topic])
    n = len(envelopes)
    return {"events": n, "chunk": CHUNK, "in_flight": IN_FLIGHT, **result,
            "events_per_s": round(n / result["seconds"])}


def file_throughput(ctx: BenchContext, envelopes: Sequence[Envelope], source: str
                    ) -> dict[str, Any]:
    from humiao.cli.ingest_cmd import import_file
    from humiao_dev.demo.city import write_envelopes

    path = ctx.workdir / "ingest-events.jsonl"
    write_envelopes(path, envelopes)
    rejects = path.with_name(path.name + ".rejects.jsonl")
    try:
        with gateway_stub(ctx, "ingestfile", source) as (gw, stub):
            summary = import_file(path, stub, gw.token, rejects, progress=False)
    finally:
        size = path.stat().st_size if path.exists() else 0
        path.unlink(missing_ok=True)
    return {"events": summary.lines, "accepted": summary.accepted,
            "duplicates": summary.duplicates, "rejected": summary.rejected,
            "file_mb": round(size / 1e6, 1), "seconds": round(summary.seconds, 3),
            "events_per_s": round(summary.events_per_second)}


def ingest_phase(ctx: BenchContext, envelopes: Sequence[Envelope], source: str
                 ) -> dict[str, Any]:
    return {"batch": batch_throughput(ctx, envelopes, source),
            "file": file_throughput(ctx, envelopes, source)}
