"""`humiao up | down | status`, and `--wait` for `humiao ingest`.

The state file (.humiao/stack.json, or $HUMIAO_STATE_DIR/stack.json) written by `up` is
what the other commands read by default: endpoints, development tokens, database and
broker addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from humiao.cli.main import CliError
from humiao.config import KafkaSettings
from humiao.domain.values import format_fen
from humiao_dev.stack import supervisor
from humiao_dev.stack.supervisor import StackError, StackState


def register(sub: Any) -> None:
    up = sub.add_parser("up", help="start broker, database and services in the background")
    up.add_argument("--partitions", type=int, default=None,
                    help="partitions of the events topic (default $HUMIAO_PARTITIONS or 6)")
    up.add_argument("--topic-prefix", default=None,
                    help="prefix of every topic (default $HUMIAO_TOPIC_PREFIX or 'humiao.')")
    up.add_argument("--timeout", type=float, default=120.0,
                    help="seconds to wait for every service to be healthy")
    up.add_argument("--json", action="store_true", help="print the state as JSON")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the local stack (ingest, verifier, desk, broker)")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="health of each service, verifier lag, alerts")
    status.add_argument("--json", action="store_true", help="print as JSON")
    status.set_defaults(func=cmd_status)

    _add_wait_to_ingest(sub)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    directory = supervisor.state_dir()
    previous = supervisor.load_state(directory)
    if previous is not None and supervisor.stack_is_live(previous):
        _say(f"humiao: the stack is already running (started {previous.started_at}); "
             "nothing to do")
        _print_state(previous, args.json)
        return 0
    if previous is not None:
        keep_broker = previous.broker_pid is not None and supervisor.is_ours(
            previous.broker_pid, "broker")
        _say("humiao: an earlier stack is partly down; restarting its services"
             + (" (the broker keeps its data)" if keep_broker else ""))
        supervisor.stop_leftovers(previous, keep_broker=keep_broker)
    try:
        state = supervisor.start_stack(
            directory,
            topic_prefix=args.topic_prefix,
            partitions=args.partitions,
            timeout=args.timeout,
            progress=lambda m: _say(f"  {m}"),
        )
    except StackError as exc:
        raise CliError(str(exc)) from None
    finally:
        supervisor.release_children()  # they outlive this command
    _say("humiao: the stack is up. Note: the embedded broker keeps events in memory; "
         "`humiao down` empties it.")
    _print_state(state, args.json)
    return 0


def _print_state(state: StackState, as_json: bool) -> None:
    if as_json:
        print(json.dumps(state.to_json(), indent=2))
    else:
        for line in supervisor.describe(state):
            print(line)


def cmd_down(args: argparse.Namespace) -> int:
    state = supervisor.load_state()
    if state is None:
        _say(f"humiao: no stack state in {supervisor.state_dir()}; nothing to stop")
        return 0
    supervisor.stop_stack(state, progress=lambda m: _say(f"  {m}"))
    _say("humiao: the stack is down")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = supervisor.load_state()
    if state is None:
        raise CliError(f"no stack state in {supervisor.state_dir()}: run `humiao up` first")
    report: dict[str, Any] = {"services": supervisor.stack_health(state)}
    try:
        lag = supervisor.verifier_lag(state)
        report["verifier_lag"] = [
            {"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag}
            for p in lag
        ]
    except Exception as exc:  # the broker or database may be down: say so, go on
        report["verifier_lag_error"] = f"{type(exc).__name__}: {exc}"
    try:
        counts = asyncio.run(supervisor.alert_counts(state.database_url))
        report["alerts"] = [
            {"code": c, "status": s, "alerts": n, "amount_at_risk_fen": fen}
            for c, s, n, fen in counts
        ]
    except Exception as exc:
        report["alerts_error"] = f"{type(exc).__name__}: {exc}"
    healthy = all(s in ("SERVING", "RUNNING") for s in report["services"].values())
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if healthy else 1
    for name, status in report["services"].items():
        print(f"{name:<9} {status}")
    if "verifier_lag" in report:
        total = sum(p["lag"] for p in report["verifier_lag"])
        parts = " ".join(f"p{p['partition']}={p['lag']}" for p in report["verifier_lag"])
        print(f"verifier lag: {total} records ({parts or 'no partitions yet'})")
    else:
        print(f"verifier lag: unknown ({report['verifier_lag_error']})")
    if "alerts" in report:
        by_status: dict[str, int] = {}
        open_fen = 0
        for row in report["alerts"]:
            by_status[row["status"]] = by_status.get(row["status"], 0) + row["alerts"]
            if row["status"] != "WITHDRAWN":
                open_fen += row["amount_at_risk_fen"]
        summary = ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())) or "none yet"
        print(f"alerts: {summary}; at risk (not withdrawn) {format_fen(open_fen)} yuan")
    return 0 if healthy else 1


# --- `humiao ingest FILE --wait` ---------------------------------------------------------


def wait_for_verifier(timeout: float = 600.0) -> float:
    """Wait until the verifier has processed everything published so far.

    Uses the stack state (`humiao up`) or, without one, KAFKA_BOOTSTRAP_SERVERS,
    DATABASE_URL and HUMIAO_TOPIC_PREFIX from the environment.
    """
    state = supervisor.load_state()
    if state is not None:
        dsn, kafka, group = state.database_url, state.kafka, state.verifier_group
    else:
        dsn = os.environ.get("DATABASE_URL", "")
        kafka = KafkaSettings()
        group = os.environ.get("HUMIAO_VERIFIER_GROUP", supervisor.DEFAULT_GROUP)
        if not dsn or not kafka.kafka_bootstrap_servers:
            raise CliError("--wait needs the stack state (`humiao up`) or DATABASE_URL and "
                           "KAFKA_BOOTSTRAP_SERVERS")

    def show(done: int, total: int) -> None:
        print(f"\rverifier: {done}/{total} records processed", end="", file=sys.stderr,
              flush=True)

    try:
        waited = supervisor.wait_until_processed(dsn, kafka, group=group, timeout=timeout,
                                                 on_progress=show if sys.stderr.isatty() else None)
    except TimeoutError as exc:
        raise CliError(str(exc)) from None
    if sys.stderr.isatty():
        print(file=sys.stderr)
    _say(f"verifier: caught up ({waited:.1f}s)")
    return waited


def _add_wait_to_ingest(sub: Any) -> None:
    """Give `humiao ingest` a --wait flag without touching its module: wrap its handler.

    humiao.cli.ingest_cmd registers before us (COMMAND_MODULES order). If it ever adds
    --wait itself, or is missing, this does nothing.
    """
    parser = getattr(sub, "choices", {}).get("ingest")
    if parser is None:
        return
    if any("--wait" in action.option_strings for action in parser._actions):
        return
    parser.add_argument("--wait", action="store_true",
                        help="return only when the verifier has processed everything imported")
    parser.add_argument("--wait-timeout", type=float, default=600.0,
                        help="seconds --wait waits at most (default 600)")
    inner: Callable[[argparse.Namespace], int] | None = parser.get_default("func")
    if inner is None:
        return

    def with_wait(args: argparse.Namespace) -> int:
        rc = int(inner(args) or 0)
        if rc == 0 and getattr(args, "wait", False):
            wait_for_verifier(args.wait_timeout)
        return rc

    parser.set_defaults(func=with_wait)
