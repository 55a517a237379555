"""Service processes started the one way: `python -m <module>` in its own session, its
log and ready file under a work directory, waited for until its ready file appears and
gRPC health says SERVING. Used by the local stack and the benchmark."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- health ----------------------------------------------------------------------------


def health(address: str, timeout: float = 2.0) -> str:
    """The gRPC health status of a server ('SERVING', 'NOT_SERVING', or 'UNREACHABLE')."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


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
    http: str = ""  # a service with a web side (the console) says where it is
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
        self.http = str(info.get("http") or "")
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


def spawn(name: str, module: str, env: Mapping[str, str], workdir: Path,
          cwd: Path | None = None) -> Service:
    """Start `python -m module` in its own session (it outlives its starter's terminal),
    logging to workdir/logs/<name>.log, its ready file at workdir/run/<name>.ready."""
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
        proc = subprocess.Popen([sys.executable, "-m", module], env=full, cwd=cwd or workdir,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Service(name, proc, log, ready)
