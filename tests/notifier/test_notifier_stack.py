"""`humiao up` starts the notifier when HUMIAO_NOTIFY_ROUTES is set, `humiao down` stops
it; real processes, the session's broker, the test's own database and state directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from humiao_dev.processes import health

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
HUMIAO_CLI = "import sys; from humiao.cli.main import main; sys.exit(main(sys.argv[1:]))"


def humiao(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HUMIAO_CLI, *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


def test_up_starts_the_notifier_with_routes_and_down_stops_it(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text('[receivers.hook]\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n'
                      '[[routes]]\nreceiver = "hook"\n')
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "DATABASE_URL": database_url, "HUMIAO_STATE_DIR": str(tmp_path / "state"),
           "HUMIAO_TOPIC_PREFIX": f"s{tmp_path.name[-8:]}.",
           "HUMIAO_NOTIFY_ROUTES": str(routes)}
    up = humiao("up", "--json", env=env)
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((tmp_path / "state" / "stack.json").read_text())
        notifier = state["services"]["notifier"]
        assert health(notifier["grpc"]) == "SERVING"
        assert "notifier" in humiao("status", env=env).stdout
    finally:
        down = humiao("down", env=env)
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 30
    while Path(f"/proc/{notifier['pid']}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{notifier['pid']}").exists() or "Z" in Path(
        f"/proc/{notifier['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0]
    # without the variable the stack has no notifier
    env.pop("HUMIAO_NOTIFY_ROUTES")
    again = humiao("up", "--json", env=env)
    try:
        assert again.returncode == 0, again.stderr
        state = json.loads((tmp_path / "state" / "stack.json").read_text())
        assert "notifier" not in state["services"]
    finally:
        humiao("down", env=env)
