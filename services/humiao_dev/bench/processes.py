"""The services under test as real processes (`python -m humiao.verifier`, `python -m
humiao.ingest`), configured through their environment like the local stack does, plus
what the benchmark reads of them: readiness, /metrics, and peak RSS from /proc."""

from __future__ import annotations

import threading
from pathlib import Path

from humiao_dev.processes import Service, ServiceFailed, spawn

__all__ = ["RssSampler", "Service", "ServiceFailed", "proc_status_kb", "spawn"]


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
