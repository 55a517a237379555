"""Sampling the verifier with py-spy while it is timed (`--profile`), and the top of
the profile: functions by own samples and by samples under them."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TopEntry:
    frame: str
    samples: int
    share: float  # of all samples


@dataclass(frozen=True)
class ProfileSummary:
    samples: int
    own: list[TopEntry]
    total: list[TopEntry]

    def lines(self, n: int = 15) -> list[str]:
        out = [f"py-spy: {self.samples} samples of the busy threads",
               "  own time (the function itself):"]
        out += [f"    {e.share * 100:5.1f}%  {e.frame}" for e in self.own[:n]]
        out += ["  total time of Humiao functions (with what they call):"]
        out += [f"    {e.share * 100:5.1f}%  {e.frame}" for e in self.ours()[:n]]
        return out

    def ours(self) -> list[TopEntry]:
        """Total-time entries of the project's own code (not threading, asyncio, ...)."""
        return [e for e in self.total if "humiao/" in e.frame]


def summarise_collapsed(lines: Iterable[str], top: int = 60) -> ProfileSummary:
    """Summarise py-spy's raw (collapsed-stack) output: `frame;frame;... count` lines."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count

    def entries(counter: Counter[str]) -> list[TopEntry]:
        return [TopEntry(f, n, n / samples if samples else 0.0)
                for f, n in counter.most_common(top)]

    return ProfileSummary(samples, entries(own), entries(total))


def py_spy() -> str | None:
    """The py-spy executable next to this Python, else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Sampler:
    """py-spy attached to one process until stopped; writes collapsed stacks."""

    def __init__(self, pid: int, output: Path, rate: int = 100) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy not found: .venv/bin/pip install py-spy")
        self.output = output
        self.process = subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
             "--function", "--nonblocking", "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def stop(self, timeout: float = 30.0) -> ProfileSummary | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        if not self.output.exists():
            sys.stderr.write(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}\n")
            return None
        with self.output.open(encoding="utf-8", errors="replace") as fh:
            return summarise_collapsed(fh)
