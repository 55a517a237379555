"""The edge of ingest and the desk, tried as an attacker would (issue 14, items 7, 8, 11):
unknown callers are turned away before their message is parsed, memory stays bounded
under huge unauthenticated calls, malformed protobuf is INVALID_ARGUMENT without a
traceback, concurrent calls are capped, and TLS (mutual too) is offered by every service
while plaintext is refused on an address other machines reach."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fault_support import (
    SERVING,
    ServiceProcess,
    migrated_database,
    new_topics,
    service_env,
    source_credentials,
    staff_credentials,
    start_serving,
    stop_all,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from humiao.api.desk.v1 import desk_pb2
from humiao.api.ingest.v1 import ingest_pb2

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.slow]

SOURCE_TOKEN = "edge-source-token"
STAFF_TOKEN = "edge-staff-token"
MiB = 1024 * 1024
SUBMIT = "/humiao.ingest.v1.IngestService/SubmitBatch"
SUBMIT_STREAM = "/humiao.ingest.v1.IngestService/SubmitStream"
LIST = "/humiao.desk.v1.AlertDesk/ListAlerts"
WATCH = "/humiao.desk.v1.AlertDesk/WatchAlerts"
GARBAGE = b"\xff\xff\xff\xff not a protobuf"


@dataclass
class Edge:
    env: dict[str, str]
    work: Path
    ingest: ServiceProcess
    desk: ServiceProcess


@pytest.fixture(scope="module")
def edge(kafka_bootstrap: str, admin_dsn: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    kafka = new_topics(kafka_bootstrap, partitions=1)
    work = tmp_path_factory.mktemp("edge")
    with migrated_database(admin_dsn) as dsn:
        env = service_env(
            kafka, dsn,
            HUMIAO_SOURCE_CREDENTIALS=source_credentials(**{SOURCE_TOKEN: ("edge", "*", "*")}),
            HUMIAO_STAFF_CREDENTIALS=staff_credentials(
                **{STAFF_TOKEN: ("Edge Supervisor", "supervisor", "*")}))
        services = start_serving(("ingest", "desk"), env, work)
        try:
            yield Edge(env, work, services["ingest"], services["desk"])
            codes = stop_all(services.values())
            assert codes == {"ingest": 0, "desk": 0}, {n: s.tail() for n, s in services.items()}
        finally:
            stop_all(services.values())


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def raw_unary(target: str, method: str, payload: bytes,
                    metadata: Any = None, credentials: Any = None) -> grpc.StatusCode:
    channel = (grpc.aio.secure_channel(target, credentials) if credentials is not None
               else grpc.aio.insecure_channel(target))
    async with channel:
        call = channel.unary_unary(method)
        try:
            await call(payload, metadata=metadata, timeout=60)
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK


async def test_twelve_unauthenticated_60_mib_calls_leave_memory_bounded(edge: Edge) -> None:
    huge = b"\x0a" + bytes(60 * MiB)
    for svc, method in ((edge.ingest, SUBMIT), (edge.desk, LIST)):
        codes = await asyncio.gather(*(raw_unary(svc.target, method, huge) for _ in range(12)))
        assert set(codes) <= {grpc.StatusCode.RESOURCE_EXHAUSTED,
                              grpc.StatusCode.UNAUTHENTICATED}, codes
        peak = peak_rss_mib(svc.pid)
        print(f"\n{svc.name}: peak resident memory {peak:.0f} MiB after 12 x 60 MiB")
        assert peak < 300, f"{svc.name} peaked at {peak:.0f} MiB"
        svc.assert_alive()


async def test_a_stranger_is_turned_away_before_the_message_is_read(edge: Edge) -> None:
    small = ingest_pb2.SubmitBatchRequest().SerializeToString()
    for token in (None, "not-a-known-token"):
        metadata = auth(token) if token else None
        for target, method, payload in ((edge.ingest.target, SUBMIT, GARBAGE),
                                        (edge.ingest.target, SUBMIT, small),
                                        (edge.desk.target, LIST, GARBAGE)):
            code = await raw_unary(target, method, payload, metadata)
            assert code == grpc.StatusCode.UNAUTHENTICATED, (method, token, code)
    # a source token is no staff token, and the other way round
    assert await raw_unary(edge.desk.target, LIST, b"", auth(SOURCE_TOKEN)) \
        == grpc.StatusCode.UNAUTHENTICATED
    assert await raw_unary(edge.ingest.target, SUBMIT, small, auth(STAFF_TOKEN)) \
        == grpc.StatusCode.UNAUTHENTICATED
    # health stays open: it carries nothing
    async with grpc.aio.insecure_channel(edge.desk.target) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert answer.status == SERVING


async def test_a_message_over_4_mib_is_refused_even_from_a_known_caller(edge: Edge) -> None:
    over = b"\x0a" + bytes(5 * MiB)
    assert await raw_unary(edge.ingest.target, SUBMIT, over, auth(SOURCE_TOKEN)) \
        == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await raw_unary(edge.desk.target, LIST, over, auth(STAFF_TOKEN)) \
        == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_malformed_protobuf_is_invalid_argument_without_a_traceback(edge: Edge) -> None:
    assert await raw_unary(edge.ingest.target, SUBMIT, GARBAGE, auth(SOURCE_TOKEN)) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert await raw_unary(edge.desk.target, LIST, GARBAGE, auth(STAFF_TOKEN)) \
        == grpc.StatusCode.INVALID_ARGUMENT
    async with grpc.aio.insecure_channel(edge.ingest.target) as channel:
        stream = channel.stream_unary(SUBMIT_STREAM)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stream(iter([GARBAGE]), metadata=auth(SOURCE_TOKEN), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with grpc.aio.insecure_channel(edge.desk.target) as channel:
        watch = channel.unary_stream(WATCH)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in watch(GARBAGE, metadata=auth(STAFF_TOKEN), timeout=30):
                pass
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # a valid request still works after all that
    ok = desk_pb2.ListAlertsRequest().SerializeToString()
    assert await raw_unary(edge.desk.target, LIST, ok, auth(STAFF_TOKEN)) == grpc.StatusCode.OK
    for svc in (edge.ingest, edge.desk):
        assert "Traceback" not in svc.tail(200_000), svc.tail()


async def test_nul_bytes_in_an_event_are_a_named_rejection_not_internal(edge: Edge) -> None:
    from humiao.api.events.v1 import events_pb2

    msg = events_pb2.Envelope(event_id="nul\x00id", source="edge\x00")
    msg.recorded_at.FromJsonString("2024-05-01T08:00:00Z")
    msg.person_died.person_id = "1101051990\x000101234"
    msg.person_died.date_of_death = "2024-03-01"
    request = ingest_pb2.SubmitBatchRequest(events=[msg])
    async with grpc.aio.insecure_channel(edge.ingest.target) as channel:
        call = channel.unary_unary(SUBMIT, response_deserializer=
                                   ingest_pb2.SubmitBatchResponse.FromString)
        answer = await call(request.SerializeToString(), metadata=auth(SOURCE_TOKEN),
                            timeout=30)
    assert answer.rejected == 1
    assert answer.results[0].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "eventId" in answer.results[0].status.message


async def test_calls_beyond_the_cap_are_refused_not_queued(edge: Edge, tmp_path: Path) -> None:
    env = {**edge.env, "HUMIAO_GRPC_MAX_CONCURRENT_CALLS": "2"}
    desk = start_serving(("desk",), env, tmp_path)["desk"]
    try:
        async with grpc.aio.insecure_channel(desk.target) as channel:
            watch = channel.unary_stream(WATCH)
            request = desk_pb2.WatchAlertsRequest(after_cursor=0).SerializeToString()
            streams = [watch(request, metadata=auth(STAFF_TOKEN)) for _ in range(2)]
            for stream in streams:  # both open: their first heartbeat or change arrives
                await asyncio.wait_for(stream.read(), timeout=30)
            code = await raw_unary(desk.target, LIST, b"", auth(STAFF_TOKEN))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            for stream in streams:
                stream.cancel()
        await asyncio.sleep(0.5)
        assert await raw_unary(desk.target, LIST, b"", auth(STAFF_TOKEN)) == grpc.StatusCode.OK
    finally:
        stop_all([desk])


# --- TLS -------------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


def _certificate(subject: str, key: Any, issuer: x509.Name, signer: Any, *, ca: bool,
                 dns: list[str] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, a server certificate for localhost and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    ca_key = _write_key(d / "ca.key")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Humiao test CA")])
    ca = _certificate("Humiao test CA", ca_key, ca_name, ca_key, ca=True)
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, dns in (("server", ["localhost"]), ("client", None)):
        key = _write_key(d / f"{name}.key")
        cert = _certificate(f"humiao-{name}", key, ca_name, ca_key, ca=False, dns=dns)
        (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem",
               d / "client.key")


def _tls_target(svc: ServiceProcess) -> str:
    return "localhost:" + svc.target.rsplit(":", 1)[1]


async def test_the_desk_over_tls_and_mutual_tls(edge: Edge, pki: Pki, tmp_path: Path) -> None:
    ok = desk_pb2.ListAlertsRequest().SerializeToString()
    trust = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    tls_env = {**edge.env, "HUMIAO_TLS_CERT_FILE": str(pki.server_cert),
               "HUMIAO_TLS_KEY_FILE": str(pki.server_key), "HUMIAO_GRPC_HEALTH_PORT": "0"}
    desk = start_serving(("desk",), tls_env, tmp_path)["desk"]
    try:
        target = _tls_target(desk)
        assert desk.info is not None and desk.info["tls"] is True
        assert await raw_unary(target, LIST, ok, auth(STAFF_TOKEN), trust) == grpc.StatusCode.OK
        assert await raw_unary(desk.target, LIST, ok, auth(STAFF_TOKEN)) \
            == grpc.StatusCode.UNAVAILABLE  # plaintext is not spoken
    finally:
        stop_all([desk])

    mutual_env = {**tls_env, "HUMIAO_TLS_CLIENT_CA_FILE": str(pki.ca)}
    desk = start_serving(("desk",), mutual_env, tmp_path)["desk"]
    try:
        target = _tls_target(desk)
        assert await raw_unary(target, LIST, ok, auth(STAFF_TOKEN), trust) \
            == grpc.StatusCode.UNAVAILABLE  # no client certificate: no handshake
        client = grpc.ssl_channel_credentials(
            root_certificates=pki.ca.read_bytes(), private_key=pki.client_key.read_bytes(),
            certificate_chain=pki.client_cert.read_bytes())
        assert await raw_unary(target, LIST, ok, auth(STAFF_TOKEN), client) == grpc.StatusCode.OK
        # the plaintext health port answers health and nothing else
        assert desk.info is not None
        health_target = desk.info["health"]
        async with grpc.aio.insecure_channel(health_target) as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10)
            assert answer.status == SERVING
        assert await raw_unary(health_target, LIST, ok, auth(STAFF_TOKEN)) \
            == grpc.StatusCode.UNIMPLEMENTED
    finally:
        stop_all([desk])


def test_the_cli_speaks_tls_when_told(edge: Edge, pki: Pki, tmp_path: Path) -> None:
    import subprocess
    import sys

    tls_env = {**edge.env, "HUMIAO_TLS_CERT_FILE": str(pki.server_cert),
               "HUMIAO_TLS_KEY_FILE": str(pki.server_key), "HUMIAO_GRPC_HEALTH_PORT": "0"}
    desk = start_serving(("desk",), tls_env, tmp_path)["desk"]
    try:
        base = {k: v for k, v in edge.env.items() if not k.startswith("HUMIAO_TLS")}
        cmd = [sys.executable, "-m", "humiao.cli.main", "summary", "--target",
               _tls_target(desk), "--token", STAFF_TOKEN]
        plain = subprocess.run(cmd, env=base, capture_output=True, text=True, timeout=60)
        assert plain.returncode != 0
        tls = subprocess.run(cmd, env={**base, "HUMIAO_TLS_CA_FILE": str(pki.ca)},
                             capture_output=True, text=True, timeout=60)
        assert tls.returncode == 0, tls.stderr
    finally:
        stop_all([desk])


def test_a_bad_tls_setting_is_refused_at_start_naming_the_variable(
        edge: Edge, pki: Pki, tmp_path: Path) -> None:
    cases = {
        "HUMIAO_TLS_KEY_FILE": {"HUMIAO_TLS_CERT_FILE": str(pki.server_cert)},
        "HUMIAO_TLS_CLIENT_CA_FILE": {"HUMIAO_TLS_CLIENT_CA_FILE": str(pki.ca)},
        "HUMIAO_GRPC_ALLOW_PLAINTEXT": {"HUMIAO_GRPC_HOST": "0.0.0.0"},
    }
    for variable, extra in cases.items():
        svc = ServiceProcess("desk", {**edge.env, **extra}, tmp_path).start()
        assert svc.proc is not None
        assert svc.proc.wait(timeout=60) != 0
        assert variable in svc.tail(), svc.tail()


async def test_a_batch_or_stream_past_its_event_limit_is_refused(edge: Edge) -> None:
    from humiao.api.events.v1 import events_pb2
    from humiao.ingest.limits import MAX_BATCH_EVENTS

    empty = events_pb2.Envelope()
    too_many = ingest_pb2.SubmitBatchRequest(events=[empty] * (MAX_BATCH_EVENTS + 1))
    async with grpc.aio.insecure_channel(edge.ingest.target) as channel:
        call = channel.unary_unary(SUBMIT)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(too_many.SerializeToString(), metadata=auth(SOURCE_TOKEN), timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"at most {MAX_BATCH_EVENTS}" in (caught.value.details() or "")
