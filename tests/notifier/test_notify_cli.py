"""`humiao notify test` and `humiao notify preview`, and the local stack's choice of
services (the notifier only when HUMIAO_NOTIFY_ROUTES is set)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from notify_emulators import Emulator
from notify_support import child_id, ids_in, insert_alerts

from humiao.adapters.db import create_pool
from humiao.cli.main import main
from humiao.domain.identity import mask_id
from humiao_dev.stack.supervisor import services_for


@pytest.fixture
def wecom() -> Iterator[Emulator]:
    emu = Emulator("wecom").start()
    yield emu
    emu.stop()


def routes(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(f"""
[receivers.district-110105]
kind = "wecom"
url = "{url}"

[[routes]]
regions = ["110105"]
codes = ["PAID_AFTER_DEATH", "MISSED_PAYMENT"]
receiver = "district-110105"
""")
    return path


def test_notify_test_sends_a_test_message(
    tmp_path: Path, wecom: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    path = routes(tmp_path, wecom.url)
    assert main(["notify", "test", "district-110105", "--routes", str(path)]) == 0
    assert "测试消息" in wecom.received[0].body["markdown"]["content"]
    wecom.fail_next(40058)
    assert main(["notify", "test", "district-110105", "--routes", str(path)]) == 2
    err = capsys.readouterr().err
    assert "40058" in err and "KEY" not in err  # the robot's key is a secret


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["notify", "test", "nobody"], "no receiver named 'nobody'"),
        (["notify", "preview", "--receiver", "nobody"], "no route matches"),
    ],
)
def test_notify_refuses_unknown_names(
    tmp_path: Path, wecom: Emulator, capsys: pytest.CaptureFixture[str],
    argv: list[str], says: str,
) -> None:
    assert main([*argv, "--routes", str(routes(tmp_path, wecom.url))]) == 2
    assert says in capsys.readouterr().err


def test_notify_without_routes_or_with_a_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HUMIAO_NOTIFY_ROUTES", raising=False)
    assert main(["notify", "test", "x"]) == 2
    assert "HUMIAO_NOTIFY_ROUTES" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[receivers.a]\nkind = "pager"\nurl = "https://x"\n')
    assert main(["notify", "test", "a", "--routes", str(bad)]) == 2
    assert "receivers.a.kind" in capsys.readouterr().err
    assert main(["notify", "test", "a", "--routes", str(tmp_path / "missing.toml")]) == 2


@pytest.mark.integration
async def test_notify_preview_renders_open_alerts_masked(
    tmp_path: Path, wecom: Emulator, database_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pool = await create_pool(database_url)
    async with pool.acquire() as conn:
        await insert_alerts(conn, range(40))  # codes cycle: 0, 13, 26, 39 are death
        await insert_alerts(conn, [100], region="110106")  # another region: not shown
        await conn.execute("UPDATE alerts SET status = 'WITHDRAWN' WHERE alert_id = $1",
                           "A" + f"{13:024x}")
    await pool.close()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("HUMIAO_CONSOLE_URL", "https://console.example")
    path = routes(tmp_path, wecom.url)
    code = await asyncio.to_thread(main, ["notify", "preview", "--routes", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "死亡后发放" in out and "漏发" in out and "110106" not in out
    assert mask_id(child_id(0)) in out and mask_id(child_id(13)) not in out
    assert "https://console.example/alerts/" in out
    assert ids_in(out) == []
    assert wecom.received == []  # a preview sends nothing


def test_the_local_stack_starts_the_notifier_only_when_routes_are_set() -> None:
    assert "notifier" not in services_for({})
    assert services_for({"HUMIAO_NOTIFY_ROUTES": "/etc/humiao/routes.toml"})[-1] == "notifier"
