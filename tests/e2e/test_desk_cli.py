"""`humiao alerts|child|summary` run as the real command against a running desk
process (`python -m humiao.desk`), on alerts the real verifier raised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from desk_support import (
    REGION_A,
    REGION_B,
    VerifierDriver,
    credentials_json,
    died,
    enrolled,
    guardian,
    paid,
    person,
    unenrolled_payments,
)
from humiao.adapters.db import create_pool
from humiao.domain.identity import mask_id

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
HUMIAO = str(ROOT / ".venv" / "bin" / "humiao")


@dataclass
class Running:
    target: str
    metrics: str
    pool: asyncpg.Pool
    child: str

    def run(
        self, *args: str, token: str = "tok-li", ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUMIAO_")}  # no stack state
        env["HUMIAO_DESK_TARGET"] = self.target
        env["HUMIAO_STACK_FILE"] = "/nonexistent/stack.json"
        cmd = [HUMIAO, *args, "--token", token]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr
        if ok:
            assert done.returncode == 0, done.stderr
        else:
            assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
        return done


def _wait_serving(target: str, deadline: float) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "desk did not become SERVING"
            time.sleep(0.05)


@pytest.fixture
def desk_process(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    ready = tmp_path / "ready.json"
    env = dict(os.environ, DATABASE_URL=database_url, HUMIAO_READY_FILE=str(ready),
               HUMIAO_GRPC_PORT="0", HUMIAO_METRICS_PORT="0",
               HUMIAO_STAFF_CREDENTIALS=credentials_json(), HUMIAO_DESK_POLL_SECONDS="0.05",
               HUMIAO_DESK_GAUGE_SECONDS="0.2", HUMIAO_SHUTDOWN_GRACE_SECONDS="1")
    proc = subprocess.Popen([sys.executable, "-m", "humiao.desk"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "desk wrote no ready file"
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        _wait_serving(info["grpc"], deadline)
        yield info["grpc"], info["metrics"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
    assert proc.returncode == 0, "desk did not stop cleanly on SIGTERM"


@pytest.fixture
async def desk(desk_process: tuple[str, str], database_url: str) -> AsyncIterator[Running]:
    import datetime as dt

    pool = await create_pool(database_url)
    try:
        verifier = VerifierDriver(pool)
        await verifier.feed(unenrolled_payments(REGION_A, 12, period="2024-02")
                            + unenrolled_payments(REGION_B, 5, period="2024-02"))
        child, g = person(), person(born=dt.date(1970, 1, 1))
        await verifier.feed([enrolled(child, REGION_A), guardian(child, g),
                             paid(child, "2024-01", REGION_A, payee=g),
                             paid(child, "2024-03", REGION_A, payee=g), died(child, "2024-02-15")])
        yield Running(desk_process[0], desk_process[1], pool, child)
    finally:
        await pool.close()


async def test_list_table_and_json_follow_the_cursor(desk: Running) -> None:
    table = desk.run("alerts", "list", token="tok-viewer-a").stdout
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["告警编号", "类型", "状态"]
    assert "\033[" not in table  # not a terminal: no colours
    assert len(lines) == 2 + 13
    assert "死亡后发放" in table and "未纳入保障" in table and "待处理" in table
    assert mask_id(desk.child) in table and desk.child not in table
    assert "1,200.00" in table

    english = desk.run("alerts", "list", "--lang", "en", "--code", "paid_after_death").stdout
    assert english.splitlines()[0].split()[:2] == ["Alert", "Code"]
    assert "PAID_AFTER_DEATH" in english and "OPEN" in english
    assert len(english.splitlines()) == 3

    everything = json.loads(desk.run("alerts", "list", "--json", "--page-size", "5",
                                     token="tok-boss").stdout)
    truth = {r["alert_id"] for r in await desk.pool.fetch("SELECT alert_id FROM alerts")}
    assert len(everything) == len(truth) == 18
    assert {a["alert_id"] for a in everything} == truth
    assert all(isinstance(a["amount_at_risk_fen"], int) for a in everything)
    assert all("*" in a["child_id"] for a in everything)

    limited = json.loads(desk.run("alerts", "list", "--json", "--limit", "4",
                                  "--page-size", "3").stdout)
    assert len(limited) == 4
    filtered = json.loads(desk.run(
        "alerts", "list", "--json", "--status", "OPEN", "--region", REGION_A,
        "--period-from", "2024-03", "--period-to", "2024-03", "--child", desk.child).stdout)
    assert [a["code"] for a in filtered] == ["PAID_AFTER_DEATH"]
    outside = json.loads(desk.run("alerts", "list", "--json", "--region", REGION_B).stdout)
    assert outside == []  # Li works in region A only


async def test_work_an_alert_from_the_command_line(desk: Running) -> None:
    aid = await desk.pool.fetchval("SELECT alert_id FROM alerts WHERE code = 'PAID_AFTER_DEATH'")
    acked = desk.run("alerts", "ack", aid, "--note", "visiting Tuesday").stdout
    assert aid in acked and "处理中" in acked and "v2" in acked
    again = desk.run("alerts", "ack", aid, token="tok-wang", ok=False)
    assert "failed precondition" in again.stderr and "ACKNOWLEDGED" in again.stderr
    stale = desk.run("alerts", "resolve", aid, "--version", "1", "--resolution", "OTHER",
                     "--note", "x", ok=False)
    assert "aborted" in stale.stderr

    desk.run("alerts", "note", aid, "bank statement requested")
    done = json.loads(desk.run("alerts", "resolve", aid, "--resolution", "confirmed_improper",
                               "--recovered-fen", "120000", "--note", "repaid in full",
                               "--json").stdout)
    assert done["status"] == "RESOLVED" and done["amount_recovered_fen"] == 120000
    denied = desk.run("alerts", "reopen", aid, "--reason", "x", ok=False)
    assert "permission denied" in denied.stderr
    reopened = desk.run("alerts", "reopen", aid, "--reason", "new facts", "--lang", "en",
                        token="tok-zhao").stdout
    assert "REOPENED" in reopened
    desk.run("alerts", "assign", aid, "Wang", token="tok-zhao")

    shown = desk.run("alerts", "show", aid, token="tok-viewer-a").stdout
    assert desk.child in shown  # whole, and audited
    for text in ("版本记录", "审计记录", "READ_ALERT_ID", "repaid in full", "disbursement",
                 "personDied", "bank statement requested"):
        assert text in shown, text
    masked = desk.run("alerts", "show", aid, "--masked", token="tok-viewer-a").stdout
    assert desk.child not in masked and mask_id(desk.child) in masked  # not audited
    as_json = json.loads(desk.run("alerts", "show", aid, "--json").stdout)
    assert [v["status"] for v in as_json["versions"]] == [
        "OPEN", "ACKNOWLEDGED", "RESOLVED", "REOPENED", "ACKNOWLEDGED"]
    reads = await desk.pool.fetch(
        "SELECT actor FROM desk_audit WHERE action = 'READ_ALERT_ID' ORDER BY audit_id")
    assert [r["actor"] for r in reads] == ["Viewer A", "Li"]


async def test_timeline_summary_watch_and_clear_errors(desk: Running) -> None:
    timeline = desk.run("child", "timeline", desk.child).stdout
    assert desk.child in timeline
    assert "核验无误" in timeline and "有告警" in timeline and "死亡后发放" in timeline
    body = [line for line in timeline.splitlines()[3:] if line.strip()]
    assert [line.split()[0] for line in body] == sorted(line.split()[0] for line in body)
    masked = desk.run("child", "timeline", desk.child, "--masked").stdout
    assert desk.child not in masked and mask_id(desk.child) in masked
    hidden = desk.run("child", "timeline", desk.child, token="tok-chen", ok=False)
    assert "not found" in hidden.stderr and desk.child not in hidden.stderr

    summary = desk.run("summary", "--lang", "en", token="tok-boss").stdout
    assert summary.splitlines()[0].split()[:3] == ["Region", "Code", "Status"]
    total = summary.splitlines()[-1].split()
    assert total[:2] == ["Total", "18"]
    as_json = json.loads(desk.run("summary", "--json", "--period-from", "2024-02").stdout)
    assert as_json["alerts"] == 13 and {r["region"] for r in as_json["rows"]} == {REGION_A}

    watched = desk.run("alerts", "watch", "--json", "--cursor", "0", "--limit", "3",
                       "--region", REGION_A).stdout.splitlines()
    changes = [json.loads(line) for line in watched]
    assert len(changes) == 3 and all(c["region"] == REGION_A for c in changes)
    assert [c["cursor"] for c in changes] == sorted(c["cursor"] for c in changes)

    bad = desk.run("alerts", "list", "--period-from", "2024-13", "--child", "123", ok=False)
    assert "invalid request" in bad.stderr
    assert "filter.period_from" in bad.stderr and "filter.child" in bad.stderr
    assert "unknown value 'NOPE'" in desk.run("alerts", "list", "--code", "nope",
                                              ok=False).stderr
    assert "unauthenticated" in desk.run("alerts", "list", token="wrong", ok=False).stderr
    assert "permission denied" in desk.run("alerts", "ack", "Ax", "--version", "1",
                                           token="tok-viewer-a", ok=False).stderr
    away = subprocess.run([HUMIAO, "summary", "--target", "127.0.0.1:9", "--token", "t"],
                          capture_output=True, text=True, timeout=60)
    assert away.returncode == 2 and "cannot reach the desk" in away.stderr

    metrics = urllib.request.urlopen(desk.metrics, timeout=5).read().decode()
    assert 'humiao_desk_calls_total{code="OK",method="GetChildTimeline"}' in metrics
    assert 'humiao_desk_calls_total{code="INVALID_ARGUMENT",method="ListAlerts"}' in metrics
    assert 'humiao_desk_calls_total{code="UNAUTHENTICATED",method="ListAlerts"}' in metrics
    assert "humiao_desk_watch_subscribers" in metrics
    deadline = time.monotonic() + 10
    gauge = 'humiao_desk_open_alerts{age="lt_1d",code="NOT_ENROLLED",status="OPEN"} 17.0'
    while gauge not in metrics:
        assert time.monotonic() < deadline, "open alerts gauge never refreshed"
        time.sleep(0.1)
        metrics = urllib.request.urlopen(desk.metrics, timeout=5).read().decode()
