"""`python -m humiao_dev.demo` on a small city: the real stack finds exactly the ground truth,
in recorded order, shuffled with duplicates, and fed from the workbooks a bureau would
receive, and prints the same table each time."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from humiao_dev.stack import supervisor
from humiao_dev.stack.database import drop_database

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def table_lines(stdout: str) -> list[str]:
    """The printed per-check table and the precision line (timings excluded)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("check "))
    end = next(i for i, line in enumerate(lines) if line.startswith("precision "))
    return lines[start:end + 1]


def test_small_city_scores_perfectly_recorded_and_shuffled(
    tmp_path: Path, admin_dsn: str, kafka_bootstrap: str
) -> None:
    database = f"humiao_demo_test_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "DATABASE_URL": admin_dsn, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    outputs: dict[str, str] = {}
    try:
        for mode in ("recorded", "shuffled", "workbooks"):
            proc = subprocess.run(
                [sys.executable, "-m", "humiao_dev.demo", "--children", "220", "--seed", "31",
                 "--partitions", "3", "--database", database, "--out", str(tmp_path),
                 "--timeout", "150",
                 *({"shuffled": ["--shuffled"], "workbooks": ["--from-workbooks"]}
                   .get(mode, []))],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=240,
            )
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
            outputs[mode] = proc.stdout
    finally:
        left = supervisor.load_state(tmp_path / "stack")
        if left is not None:  # the demo was killed before it could stop its stack
            supervisor.stop_stack(left)
        asyncio.run(drop_database(admin_dsn, database))

    recorded = json.loads((tmp_path / "results.json").read_text())
    mixed = json.loads((tmp_path / "results-shuffled.json").read_text())
    for result in (recorded, mixed):
        assert result["perfect"] and result["before_corrections_match"]
        assert result["precision"] == 1.0 and result["recall"] == 1.0
        assert result["withdrawn"] == result["expected_withdrawn"] > 0
        assert all(row["injected"] > 0 for row in result["table"])
    assert mixed["envelopes_sent"] > recorded["envelopes_sent"]  # duplicates were sent
    assert recorded["table"] == mixed["table"]
    assert table_lines(outputs["recorded"]) == table_lines(outputs["shuffled"])
    books = json.loads((tmp_path / "results-workbooks.json").read_text())
    assert books["perfect"] and books["before_corrections_match"] and books["from_workbooks"]
    assert books["table"] == recorded["table"]
    assert table_lines(outputs["workbooks"]) == table_lines(outputs["recorded"])
    assert "as workbooks: roster.xlsx" in outputs["workbooks"]
    assert {p.name for p in (tmp_path / "city" / "workbooks").glob("*.xlsx")} >= {
        "roster.xlsx", "guardians.xlsx", "payments.xlsx", "cycles.xlsx", "standards.xlsx"}

    out = outputs["shuffled"]
    assert "RESULT: 100% precision and recall on every check" in out
    assert len(recorded["examples"]) == 3
    for alert_id in mixed["examples"]:  # shown in full through the real desk CLI
        assert f"{alert_id}\n" in out
    assert "humiao:" not in out  # no CLI error in place of an example
    assert "stack stopped" in out
    assert not (tmp_path / "stack" / "stack.json").exists()
