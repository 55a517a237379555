"""`python -m humiao_dev.bench`: every step in one invocation, then the table and the JSON.

Steps (issue 7): 1 raw kafka-python consumption of the input topic (the limit); 2 the
verifier from offset zero, one process then two (same group, two partitions), each into
a fresh database; 3 ingest by SubmitBatch and by file import; 4 latency at a steady rate;
5 the verifier's peak RSS for growing numbers of children; 6 replay (= the one-process
run of step 2: offset zero into an empty database); 7 a payment workbook imported against
the same events as JSON lines (`import_workbook_to_jsonl_ratio`). The input of 1, 2 and 6
is produced once: a demo-generator city of at least --events facts (late corrections included).

Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the embedded broker; DATABASE_URL's
server (else 127.0.0.1:5432, else the embedded PostgreSQL) for databases of its own,
dropped at the end. A step that fails is reported under "errors"; the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from humiao.config import PrivacySettings
from humiao_dev.bench.context import BenchContext, env_pairs, machine
from humiao_dev.bench.report import ratio, render_table, results_rows, size_label
from humiao_dev.stack.database import resolve_admin_dsn
from humiao_dev.stack.supervisor import project_root

STEPS = ("raw", "verifier", "two", "ingest", "latency", "memory", "tabular", "console")
log = logging.getLogger("humiao_dev.bench")


def say(text: str = "") -> None:
    print(text, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m humiao_dev.bench",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a developer's run: 100k events, 20k ingest events, 10 s of latency, "
                        "memory at 1k/10k/100k children")
    p.add_argument("--events", type=int, help="facts in the verifier's input (1,000,000)")
    p.add_argument("--months", type=int, default=24, help="months of the city's history (24)")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--partitions", type=int, default=2,
                   help="partitions of the input topic (2: one per verifier of step 2)")
    p.add_argument("--ingest-events", type=int, help="events sent through ingest (100,000)")
    p.add_argument("--latency-rate", type=int, default=1000, help="events/s fed (1000)")
    p.add_argument("--latency-seconds", type=float, help="seconds of steady feed (25)")
    p.add_argument("--memory-children", help="comma-separated sizes (10000,100000,1000000)")
    p.add_argument("--memory-events-per-child", type=int, choices=(2, 3), default=2,
                   help="3: enrollment, guardian, payment; 2: no guardian (child is payee)")
    p.add_argument("--console-alerts", type=int, help="alerts behind the console (100,000)")
    p.add_argument("--console-requests", type=int, default=300,
                   help="queue pages loaded (300)")
    p.add_argument("--only", help=f"comma-separated steps of {','.join(STEPS)} (all)")
    p.add_argument("--profile", action="store_true",
                   help="sample the one-process verifier with py-spy (top entries in the JSON)")
    p.add_argument("--verifier-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the verifier processes (repeatable)")
    p.add_argument("--keep-databases", action="store_true",
                   help="leave the run's databases behind for inspection")
    p.add_argument("--output", type=Path, help="results file (bench-results.json at the root)")
    p.add_argument("--workdir", type=Path, help="logs and profiles (.humiao/bench)")
    args = p.parse_args(argv)
    quick = args.quick
    args.events = args.events or (100_000 if quick else 1_000_000)
    args.ingest_events = args.ingest_events or (20_000 if quick else 100_000)
    args.console_alerts = args.console_alerts or (20_000 if quick else 100_000)
    args.latency_seconds = args.latency_seconds or (10.0 if quick else 25.0)
    sizes = args.memory_children or ("1000,10000,100000" if quick else "10000,100000,1000000")
    args.memory_sizes = [int(s) for s in sizes.split(",") if s.strip()]
    args.steps = [s.strip() for s in (args.only or ",".join(STEPS)).split(",") if s.strip()]
    unknown = set(args.steps) - set(STEPS)
    if unknown:
        p.error(f"--only: unknown steps {sorted(unknown)}; choose from {', '.join(STEPS)}")
    return args


class Run:
    """Results of one invocation, filled step by step."""

    def __init__(self, args: argparse.Namespace, ctx: BenchContext) -> None:
        self.args = args
        self.ctx = ctx
        self.details: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.flat: dict[str, Any] = {}

    def step(self, name: str, fn: Callable[[], None]) -> None:
        say(f"\n== {name}")
        started = time.perf_counter()
        try:
            fn()
        except Exception as exc:
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            say(f"   FAILED: {self.errors[name]}")
            log.debug("%s", traceback.format_exc())
            (self.ctx.workdir / f"error-{name}.txt").write_text(traceback.format_exc())
        say(f"   ({time.perf_counter() - started:.1f}s)")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    root = project_root()
    workdir = (args.workdir or root / ".humiao" / "bench").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    output = (args.output or root / "bench-results.json").resolve()
    began = time.perf_counter()

    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        from humiao_dev.stack.broker import start_broker

        broker = start_broker(log_file=workdir / "broker.log")
        bootstrap = broker.bootstrap
    admin = resolve_admin_dsn(os.environ.get("DATABASE_URL"), root / ".humiao" / "pgdata")
    ctx = BenchContext(bootstrap=bootstrap, admin_dsn=admin, secret=PrivacySettings().secret,
                       workdir=workdir, partitions=args.partitions,
                       verifier_env=dict(env_pairs(args.verifier_env)),
                       keep_databases=args.keep_databases)
    run = Run(args, ctx)
    info = machine(bootstrap, broker is None, admin)
    say(f"Humiao benchmark: {info['nproc']} cores, Python {info['python']}, "
        f"{info['broker']}, PostgreSQL {info['postgresql']}, crc32c "
        f"{'installed' if info['crc32c_installed'] else 'MISSING'}")
    try:
        from humiao_dev.bench import steps

        steps.run_all(run)
    finally:
        ctx.cleanup()
        if broker is not None:
            broker.stop()
    doc = {
        **run.flat,
        "machine": info,
        "parameters": {
            "events": args.events, "months": args.months, "seed": args.seed,
            "partitions": args.partitions, "ingest_events": args.ingest_events,
            "latency_rate": args.latency_rate, "latency_seconds": args.latency_seconds,
            "memory_children": args.memory_sizes,
            "memory_events_per_child": args.memory_events_per_child,
            "steps": args.steps, "quick": args.quick, "profile": args.profile,
            "verifier_env": ctx.verifier_env,
        },
        "details": run.details,
        "errors": run.errors,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "total_seconds": round(time.perf_counter() - began, 1),
    }
    output.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    say("")
    for line in render_table(results_rows(doc), title="Results (ratios are within this run)"):
        say(line)
    if "replay_note" in doc:
        say(f"replay: {doc['replay_note']}")
    profile = run.details.get("verifier", {}).get("profile_lines")
    if profile:
        say("")
        for line in profile:
            say(line)
    for name, error in run.errors.items():
        say(f"step {name} FAILED: {error} (traceback in {workdir / f'error-{name}.txt'})")
    say(f"\nwritten to {output} ({doc['total_seconds']:.0f}s in all)")
    return 1 if run.errors else 0


def size_key(children: int) -> str:
    return f"peak_rss_mb_{size_label(children)}"


def set_ratio(run: Run, key: str, a: str, b: str) -> None:
    run.flat[key] = ratio(run.flat.get(a), run.flat.get(b))


if __name__ == "__main__":
    sys.exit(main())
