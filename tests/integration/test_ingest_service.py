"""`python -m humiao.ingest` as a process: readiness follows Kafka and PostgreSQL,
reflection, metrics, SIGTERM, restart; and the bulk file import through it."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from humiao.adapters.codec import envelope_to_proto, proto_to_json
from humiao.api.ingest.v1 import ingest_pb2
from humiao.cli.ingest_cmd import import_file, open_stub
from humiao.ingest.credentials import hash_token
from humiao_dev.stack.broker import free_port, start_broker
from strategies import random_envelope

pytestmark = pytest.mark.integration

TOKEN = "bulk-source-token"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    target: str
    metrics: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode


def start_gateway(tmp: Path, bootstrap: str, database_url: str, prefix: str) -> Gateway:
    ready = tmp / f"ready-{uuid.uuid4().hex[:6]}.json"
    log = tmp / f"ingest-{uuid.uuid4().hex[:6]}.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "HUMIAO_TOPIC_PREFIX": prefix,
        "HUMIAO_PARTITIONS": "4",
        "DATABASE_URL": database_url,
        "HUMIAO_SOURCE_CREDENTIALS": json.dumps(
            {hash_token(TOKEN): {"source": "bulk", "regions": "*", "kinds": "*"}}
        ),
        "HUMIAO_READY_FILE": str(ready),
        "HUMIAO_GRPC_PORT": "0",
        "HUMIAO_METRICS_PORT": "0",
        "HUMIAO_SHUTDOWN_GRACE_SECONDS": "5",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "humiao.ingest"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=tmp)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"gateway did not start:\n{log.read_text()}")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return Gateway(process, info["grpc"], info["metrics"], log)


def health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(
            service="humiao.ingest.v1.IngestService"), timeout=5)
        return int(answer.status)


def wait_for_health(target: str, status: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while health(target) != status:
        assert time.monotonic() < deadline, f"health never became {status}"
        time.sleep(0.1)


def lines_of(envelopes: list[object]) -> list[str]:
    return [proto_to_json(envelope_to_proto(e)) for e in envelopes]  # type: ignore[arg-type]


@pytest.fixture
def gateway(tmp_path: Path, kafka_bootstrap: str, database_url: str) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path, kafka_bootstrap, database_url, f"t{uuid.uuid4().hex[:10]}.")
    try:
        wait_for_health(gw.target, health_pb2.HealthCheckResponse.SERVING)
        yield gw
    finally:
        assert gw.stop() == 0, gw.log.read_text()


def test_health_follows_kafka_then_reflection_metrics_shutdown_and_restart(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    prefix = f"t{uuid.uuid4().hex[:10]}."
    gw = start_gateway(tmp_path, bootstrap, database_url, prefix)
    broker = None
    try:
        # Kafka does not answer yet: not serving, and calls are refused as UNAVAILABLE.
        assert health(gw.target) == health_pb2.HealthCheckResponse.NOT_SERVING
        channel, stub = open_stub(gw.target)
        with channel:
            with pytest.raises(grpc.RpcError) as caught:
                stub.SubmitBatch(ingest_pb2.SubmitBatchRequest(),
                                 metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

            broker = start_broker(port)
            wait_for_health(gw.target, health_pb2.HealthCheckResponse.SERVING)

            services = ProtoReflectionDescriptorDatabase(channel).get_services()
            assert "humiao.ingest.v1.IngestService" in services
            assert "grpc.health.v1.Health" in services

            rng = random.Random(20)
            sent = [envelope_to_proto(random_envelope(rng, event_id=f"p-{i}", source="bulk"))
                    for i in range(5)]
            meta = (("authorization", f"Bearer {TOKEN}"),)
            answer = stub.SubmitBatch(ingest_pb2.SubmitBatchRequest(events=sent), metadata=meta)
            assert answer.accepted == 5
        with urllib.request.urlopen(gw.metrics, timeout=5) as response:
            metrics = response.read().decode()
        assert 'humiao_ingest_events_total{kind="disbursement",outcome="accepted"} 5.0' in metrics
        assert "humiao_ingest_publish_seconds_bucket" in metrics
        assert gw.stop(signal.SIGTERM) == 0  # drains, flushes the producer, closes the pool
        assert "service=ingest stopped" in gw.log.read_text()

        gw = start_gateway(tmp_path, bootstrap, database_url, prefix)
        wait_for_health(gw.target, health_pb2.HealthCheckResponse.SERVING)
        channel, stub = open_stub(gw.target)
        with channel:
            again = stub.SubmitBatch(ingest_pb2.SubmitBatchRequest(events=sent), metadata=meta)
        assert again.duplicates == 5 and again.accepted == 0
    finally:
        code = gw.stop()
        if broker is not None:
            broker.stop()
    assert code == 0


def test_file_import_of_100k_lines_with_rejects(gateway: Gateway, tmp_path: Path) -> None:
    rng = random.Random(21)
    kinds = ("disbursement", "childEnrolled", "guardianAppointed", "personDied",
             "enrollmentEnded")
    path = tmp_path / "events.jsonl.gz"
    bad_lines: dict[int, str] = {}
    duplicates = 0
    total = 100_000
    started = time.perf_counter()
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        for n in range(1, total + 1):
            env = random_envelope(rng, event_id=f"bulk-{n}", source="bulk", kinds=kinds)
            line = proto_to_json(envelope_to_proto(env))
            if n % 10_000 == 7:
                line, bad_lines[n] = line[:-5], "not valid JSON"
            elif n % 10_000 == 8:
                line = line.replace('"source":"bulk"', '"source":"bulk","amountFen":"x"')
                bad_lines[n] = "is not a field"
            elif n % 10_000 == 9:
                obj = json.loads(line)
                body = next(k for k in obj if k not in ("eventId", "recordedAt", "source"))
                obj[body]["childId" if "childId" in obj[body] else "personId"] = "110105"
                line, bad_lines[n] = json.dumps(obj), "18 characters"
            elif n % 10_000 == 10 and n > 100:
                line = line.replace(f'"bulk-{n}"', f'"bulk-{n - 100}"')  # an earlier id
                duplicates += 1
            out.write(line + "\n")
    generated = time.perf_counter() - started

    rejects = tmp_path / "rejects.jsonl"
    channel, stub = open_stub(gateway.target)
    with channel:
        summary = import_file(path, stub, TOKEN, rejects, chunk_size=2000, progress=False)
    assert summary.lines == total
    assert summary.rejected == len(bad_lines)
    assert summary.duplicates == duplicates
    assert summary.accepted == total - len(bad_lines) - duplicates
    found = {}
    for line in rejects.read_text().splitlines():
        record = json.loads(line)
        found[record["line"]] = record
    assert set(found) == set(bad_lines)
    for n, reason in bad_lines.items():
        assert any(reason in r for r in found[n]["reasons"]), found[n]
        assert found[n]["eventId"] in (f"bulk-{n}", None)
    print(f"\nfile import: generated {total} lines in {generated:.1f}s; {summary.render()}")


def test_submit_batch_throughput(gateway: Gateway) -> None:
    """Figures for the README: events/s through SubmitBatch, 2,000-event batches, 2 in flight."""
    rng = random.Random(22)
    kinds = ("disbursement", "childEnrolled", "guardianAppointed", "personDied")
    batches = [
        ingest_pb2.SubmitBatchRequest(events=[
            envelope_to_proto(random_envelope(rng, event_id=f"tp-{b}-{i}", source="bulk",
                                              kinds=kinds))
            for i in range(2000)
        ])
        for b in range(10)
    ]
    meta = (("authorization", f"Bearer {TOKEN}"),)
    channel, stub = open_stub(gateway.target)
    with channel:
        started = time.perf_counter()
        calls = [stub.SubmitBatch.future(b, metadata=meta, timeout=120) for b in batches[:2]]
        accepted = 0
        for batch in batches[2:]:
            accepted += calls.pop(0).result().accepted
            calls.append(stub.SubmitBatch.future(batch, metadata=meta, timeout=120))
        accepted += sum(call.result().accepted for call in calls)
        seconds = time.perf_counter() - started
    assert accepted == 20_000
    rate = accepted / seconds
    print(f"\nSubmitBatch: {accepted} events in {seconds:.1f}s ({rate:,.0f} events/s)")


def run_cli(argv: list[str]) -> int:
    """The `humiao ingest` command exactly as main() dispatches it."""
    import argparse

    from humiao.cli import ingest_cmd

    parser = argparse.ArgumentParser(prog="humiao")
    ingest_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_reads_stack_state_and_writes_rejects(
    gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from humiao.cli.main import CliError

    monkeypatch.delenv("HUMIAO_INGEST_TARGET", raising=False)
    monkeypatch.delenv("HUMIAO_INGEST_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    rng = random.Random(23)
    good = lines_of([random_envelope(rng, event_id=f"cli-{i}", source="bulk")
                     for i in range(3)])
    data = tmp_path / "small.jsonl"
    data.write_text("\n".join([good[0], '{"eventId": "broken"', good[1], "", good[2]]) + "\n")

    with pytest.raises(CliError, match="no gateway address"):
        run_cli(["ingest", str(data)])

    (tmp_path / ".humiao").mkdir()
    (tmp_path / ".humiao" / "stack.json").write_text(
        json.dumps({"ingest": gateway.target, "source_token": TOKEN}))
    assert run_cli(["ingest", str(data)]) == 0  # completed, one line rejected
    out = capsys.readouterr().out
    assert "4 lines: 3 accepted, 0 duplicate, 1 rejected" in out
    rejects = [json.loads(x) for x in
               (tmp_path / "small.jsonl.rejects.jsonl").read_text().splitlines()]
    assert rejects == [{"line": 2, "eventId": None,
                        "reasons": [rejects[0]["reasons"][0]]}]
    assert "not valid JSON" in rejects[0]["reasons"][0]

    assert run_cli(["ingest", str(data), "--rejects", str(tmp_path / "r2.jsonl")]) == 0
    assert "0 accepted, 3 duplicate, 1 rejected" in capsys.readouterr().out

    with pytest.raises(CliError, match="refused the token"):
        run_cli(["ingest", str(data), "--token", "wrong"])

    assert run_cli(["ingest", "hash-token", "s3cret"]) == 0
    assert capsys.readouterr().out.strip() == hash_token("s3cret")
