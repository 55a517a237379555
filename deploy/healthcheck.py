#!/usr/bin/env python3
"""Container health check: ask the service's own gRPC health service (Compose healthcheck).

Usage: humiao-healthcheck PORT [SERVICE]. Exit 0 only when the answer is SERVING, so a
service whose Kafka or PostgreSQL is unreachable is reported unhealthy, not just alive.
Kubernetes does not need this: it has native `grpc:` probes.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    port = int(argv[1]) if len(argv) > 1 else 50051
    service = argv[2] if len(argv) > 2 else ""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=3
            )
        except grpc.RpcError as exc:
            print(f"health check failed: {exc.code().name}", file=sys.stderr)
            return 1
    serving = answer.status == health_pb2.HealthCheckResponse.SERVING
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
    return 0 if serving else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
