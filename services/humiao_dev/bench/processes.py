"""The services under test as real processes (`python -m humiao.verifier`, `python -m
humiao.ingest`), configured through their environment like the local stack does, plus
what the benchmark reads of them: readiness, /metrics, and peak RSS from /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from humiao_dev.stack.supervisor import health, log_tail


class ServiceFailed(RuntimeError):
    """A service process exited or never became ready; the message has its log tail."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ready_file: Path
    grpc: str = ""
    metrics: str = ""
    started: float = field(default_factory=time.perf_counter)
    #: perf_counter when the ready file appeared (imports done, dependencies connected)
    ready_at: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise ServiceFailed(f"{self.name} exited ({self.process.returncode}); "
                                f"last lines of {self.log}:\n{log_tail(self.log)}")

    def wait_ready(self, timeout: float = 120.0, serving: bool = True) -> None:
        """Until the ready file appears (and gRPC health says SERVING, if asked)."""
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            self.check()
            if time.monotonic() > deadline:
                raise ServiceFailed(f"{self.name}: no ready file after {timeout:.0f}s")
            time.sleep(0.02)
        self.ready_at = time.perf_counter()
        info = json.loads(self.ready_file.read_text())
        self.grpc, self.metrics = str(info["grpc"]), str(info["metrics"])
        while serving and health(self.grpc) != "SERVING":
            self.check()
            if time.monotonic() > deadline:
                raise ServiceFailed(f"{self.name}: not SERVING after {timeout:.0f}s; "
                                    f"log {self.log}:\n{log_tail(self.log)}")
            time.sleep(0.05)

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics, timeout=5) as reply:
            return str(reply.read().decode())

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, SIGKILL if it will not go; the exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def spawn(name: str, module: str, env: Mapping[str, str], workdir: Path) -> Service:
    """Start `python -m module` in its own session, logging to workdir/logs/."""
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    (workdir / "run").mkdir(parents=True, exist_ok=True)
    log = workdir / "logs" / f"{name}.log"
    ready = workdir / "run" / f"{name}.ready"
    ready.unlink(missing_ok=True)
    full = {
        **os.environ,
        "HUMIAO_GRPC_HOST": "127.0.0.1",
        "HUMIAO_DEVELOPMENT": "true",  # development secrets, as the local stack
        "HUMIAO_GRPC_PORT": "0",
        "HUMIAO_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
        **env,
        "HUMIAO_READY_FILE": str(ready),
    }
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", module], env=full, cwd=workdir,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Service(name, proc, log, ready)


def proc_status_kb(pid: int, field_name: str) -> int | None:
    """A `kB` line of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: now); None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class RssSampler:
    """Samples VmRSS of some processes on a thread; `peak_mb` also trusts VmHWM."""

    def __init__(self, pids: list[int], interval: float = 0.25) -> None:
        self.pids = pids
        self.interval = interval
        self.peak_kb: dict[int, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        for pid in self.pids:
            for name in ("VmHWM", "VmRSS"):
                kb = proc_status_kb(pid, name)
                if kb is not None and kb > self.peak_kb[pid]:
                    self.peak_kb[pid] = kb

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def peak_mb(self, pid: int) -> float:
        return self.peak_kb.get(pid, 0) / 1024
