"""`humiao up | status | ingest --wait | down` as a user runs them: real processes.

`up` starts its own embedded broker here (KAFKA_BOOTSTRAP_SERVERS removed) and uses the
test's fresh database; the state directory is the test's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import pytest

from humiao_dev.demo.city import CityConfig, generate_city, write_city
from humiao_dev.demo.scoring import fetch_alerts

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
#: What the `humiao` console script runs (`-m humiao.cli.main` would load main twice).
HUMIAO_CLI = "import sys; from humiao.cli.main import main; sys.exit(main(sys.argv[1:]))"


def humiao(
    *args: str, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HUMIAO_CLI, *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def service_pids(state: dict[str, Any]) -> list[int]:
    return [int(p) for p in state["pids"].values() if p]


async def test_up_twice_status_ingest_wait_restart_and_down(
    tmp_path: Path, database_url: str
) -> None:
    state_dir = tmp_path / "state"
    # a user's own credentials are honoured beside the stack's development ones
    bank = {sha256(b"tok-bank").hexdigest():
            {"source": "bank-110105", "regions": ["110105"], "kinds": ["allowanceStandardSet"]}}
    viewer = {sha256(b"tok-viewer").hexdigest():
              {"name": "Viewer Zhao", "role": "viewer", "regions": ["110105"]}}
    env = {**os.environ, "HUMIAO_STATE_DIR": str(state_dir), "DATABASE_URL": database_url,
           "HUMIAO_PARTITIONS": "3", "HUMIAO_TOPIC_PREFIX": "e2e.",
           "HUMIAO_SOURCE_CREDENTIALS": json.dumps(bank),
           "HUMIAO_STAFF_CREDENTIALS": json.dumps(viewer)}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)

    assert humiao("status", env=env).returncode == 2  # nothing started yet: a clear error
    up = humiao("up", "--json", env=env)
    assert up.returncode == 0, up.stderr
    state = json.loads(up.stdout)
    pids = service_pids(state)
    try:
        assert set(state["pids"]) == {"broker", "ingest", "verifier", "desk", "console"}
        assert all(alive(p) for p in pids)
        assert state["partitions"] == 3 and state["topic_prefix"] == "e2e."
        assert json.loads((state_dir / "stack.json").read_text())["ingest"] == state["ingest"]
        # Only hashes in the credential files; the plain tokens only in the state file.
        source_creds = (state_dir / "source-credentials.json").read_text()
        staff_creds = (state_dir / "staff-credentials.json").read_text()
        assert state["source_token"] not in source_creds
        assert sha256(state["source_token"].encode()).hexdigest() in source_creds
        assert sha256(state["staff_token"].encode()).hexdigest() in staff_creds
        assert sha256(b"tok-bank").hexdigest() in source_creds
        assert sha256(b"tok-viewer").hexdigest() in staff_creds
        for private in ("stack.json", "source-credentials.json", "staff-credentials.json"):
            assert (state_dir / private).stat().st_mode & 0o777 == 0o600, private

        again = humiao("up", "--json", env=env)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stderr
        assert json.loads(again.stdout)["pids"] == state["pids"]

        status = humiao("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        for name in ("ingest", "verifier", "desk", "console"):
            assert f"{name:<9} SERVING" in status.stdout

        # the login link opens the console signed in, and leaves the address bar clean
        assert state["console_login_url"].startswith(state["console"] + "/login?token=")
        with httpx.Client(follow_redirects=True, timeout=20) as browser:
            page = browser.get(state["console_login_url"])
            assert page.status_code == 200 and "预警队列" in page.text
            assert str(page.url) == state["console"] + "/alerts"
            assert "developer" in page.text

        # envelopes naming their own source system go in with the stack's token
        city = generate_city(CityConfig(seed=21, children=60, source="minzheng-own-system"))
        files = write_city(city, tmp_path / "city")
        ingest = humiao("ingest", str(files.events), "--target", state["ingest"],
                        "--token", state["source_token"], "--wait", env=env)
        assert ingest.returncode == 0, ingest.stdout + ingest.stderr
        assert "caught up" in ingest.stderr
        alerts = await fetch_alerts(database_url)  # no polling: --wait returned after them
        assert {a.key() for a in alerts if a.implied} == set(city.before_corrections)
        standard = {"eventId": "std-1", "recordedAt": "2024-01-02T08:00:00+08:00",
                    "source": "bank-110105", "allowanceStandardSet": {
                        "region": "110105", "program": "ORPHAN_DISPERSED",
                        "effectiveFrom": "2030-01", "monthlyAmountFen": 150000}}
        (tmp_path / "bank.jsonl").write_text(json.dumps(standard) + "\n")
        bank_run = humiao("ingest", str(tmp_path / "bank.jsonl"), "--target", state["ingest"],
                          "--token", "tok-bank", env=env)
        assert bank_run.returncode == 0, bank_run.stdout + bank_run.stderr
        viewed = humiao("alerts", "list", "--json", "--limit", "1", "--target", state["desk"],
                        "--token", "tok-viewer", env=env)
        assert viewed.returncode == 0, viewed.stderr
        report = json.loads(humiao("status", "--json", env=env).stdout)
        assert sum(p["lag"] for p in report["verifier_lag"]) == 0
        assert sum(p["end"] for p in report["verifier_lag"]) >= len(city.events)
        # alerts still implied (open) are the city's truth; a fact that arrived on one
        # partition before a broadcast standard reached it may have raised an alert that
        # the standard then withdrew, which `status` shows as WITHDRAWN history
        assert sum(r["alerts"] for r in report["alerts"]
                   if r["status"] != "WITHDRAWN") == len(city.before_corrections)

        # A service that died is noticed: `up` restarts the services, keeps the broker.
        os.kill(state["pids"]["desk"], signal.SIGTERM)
        assert wait_gone([state["pids"]["desk"]]) == []
        assert "STOPPED" in humiao("status", env=env).stdout
        restarted = humiao("up", "--json", env=env)
        assert restarted.returncode == 0, restarted.stderr
        assert "partly down" in restarted.stderr
        new_state = json.loads(restarted.stdout)
        assert new_state["pids"]["broker"] == state["pids"]["broker"]
        assert new_state["pids"]["desk"] != state["pids"]["desk"]
        assert new_state["source_token"] == state["source_token"]
        assert humiao("status", env=env).returncode == 0
        pids = service_pids(new_state)
    finally:
        down = humiao("down", env=env)
    assert down.returncode == 0, down.stderr
    assert wait_gone(pids) == []
    assert not (state_dir / "stack.json").exists()
    assert "nothing to stop" in humiao("down", env=env).stderr
