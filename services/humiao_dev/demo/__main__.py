"""`python -m humiao_dev.demo`: a synthetic city through the real stack, scored against its truth.

1. generate the city (seeded) into .humiao/demo/city/;
2. start broker, ingest, verifier and desk as processes, with a topic prefix and a
   database of the demo's own (a running `humiao up` is left alone);
3. feed the history through the ingest gateway and wait for the verifier; check the
   alerts against what the history alone implies;
4. feed the late corrections (reversals, retractions) and wait again: the alerts they
   take back must be withdrawn, the ones they cause raised;
5. print the table per check, precision and recall, three alerts as staff see them, and
   where to look next; stop the stack (or keep it with --keep-running).

Exit status 1 unless precision and recall are 100% for every check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from humiao.domain.alerts import AlertCode
from humiao.domain.values import format_fen
from humiao_dev.demo.city import City, CityConfig, ExpectedAlert, generate_city, write_city
from humiao_dev.demo.scoring import RaisedAlert, Score, fetch_alerts, render, score
from humiao_dev.demo.workbooks import Workbook
from humiao_dev.stack import supervisor
from humiao_dev.stack.supervisor import StackState

#: What the `humiao` console script runs (`-m humiao.cli.main` would load main twice).
CLI_SNIPPET = "import sys; from humiao.cli.main import main; sys.exit(main(sys.argv[1:]))"
#: Codes shown as examples, in order of preference (one alert each).
EXAMPLE_CODES = (
    AlertCode.PAID_AFTER_DEATH,
    AlertCode.PAYEE_NOT_GUARDIAN,
    AlertCode.MISSED_PAYMENT,
    AlertCode.ORPHAN_PARENT_ALIVE,
    AlertCode.AMOUNT_MISMATCH,
)


def say(text: str = "") -> None:
    print(text, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m humiao_dev.demo",
                                description=__doc__.split("\n")[0])
    p.add_argument("--shuffled", action="store_true",
                   help="feed the same city shuffled, with duplicates and late arrivals")
    p.add_argument("--from-workbooks", action="store_true",
                   help="write the city as the .xlsx workbooks a bureau would receive (one "
                        "per feed, built-in mappings) and feed those instead of JSON lines")
    p.add_argument("--keep-running", action="store_true",
                   help="leave the demo stack running at the end (stop: humiao down "
                        "with HUMIAO_STATE_DIR=.humiao/demo/stack)")
    p.add_argument("--children", type=int, default=2500, help="children in the city (2500)")
    p.add_argument("--months", type=int, default=18, help="months of history (18)")
    p.add_argument("--seed", type=int, default=2024, help="random seed (2024)")
    p.add_argument("--partitions", type=int, default=6, help="partitions of the events topic")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="seconds to wait for the verifier per feed (900)")
    p.add_argument("--database", default="humiao_demo",
                   help="database the demo (re)creates for itself (humiao_demo)")
    p.add_argument("--out", type=Path, default=None,
                   help="working directory (default .humiao/demo under the project)")
    args = p.parse_args(argv)
    if args.from_workbooks and args.shuffled:
        p.error("--from-workbooks feeds the recorded order; not with --shuffled")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = (args.out or supervisor.state_dir() / "demo").resolve()
    mode = "shuffled, with duplicates and late arrivals" if args.shuffled else "recorded order"
    say(f"Humiao demo: a synthetic city through the real stack ({mode})")
    say("=" * 78)

    t0 = time.monotonic()
    config = CityConfig(seed=args.seed, children=args.children, months=args.months,
                        source=supervisor.DEV_SOURCE)
    city = generate_city(config)
    files = write_city(city, workdir / "city", shuffle=args.shuffled)
    sent_events = _count_lines(files.events)
    say(f"city: {city.children} children in {len(config.regions)} districts "
        f"({', '.join(config.regions)}), {config.months} months from {config.start}, "
        f"seed {config.seed}")
    say(f"      {len(city.events)} facts ({city.disbursements} disbursements) and "
        f"{len(city.corrections)} late corrections -> {workdir / 'city'} "
        f"({time.monotonic() - t0:.1f}s)")
    _print_stories(city)
    books: list[Workbook] = []
    corrections = files.corrections
    if args.from_workbooks:
        books, corrections = as_workbooks(city, workdir / "city")
    sent_fixes = _count_lines(corrections)

    stack_dir = workdir / "stack"
    old = supervisor.load_state(stack_dir)
    if old is not None:
        say("stopping the previous demo stack")
        supervisor.stop_stack(old)
    say("starting the stack (own topics and database, so `humiao up` is not disturbed):")
    database_url = supervisor.resolve_database(supervisor.state_dir(), args.database, fresh=True)
    try:
        state = supervisor.start_stack(
            stack_dir,
            topic_prefix=f"demo-{uuid.uuid4().hex[:6]}.",
            partitions=args.partitions,
            database_url=database_url,
            progress=lambda m: say(f"  {m}"),
        )
    except supervisor.StackError as exc:
        say(f"the stack did not start: {exc}")
        return 2
    ok = False
    try:
        ok = run(args, city, books or files.events, corrections, sent_events, sent_fixes,
                 state)
    except TimeoutError as exc:
        say(f"\n{exc}; the services' logs are in {stack_dir / 'logs'}")
    finally:
        if args.keep_running:
            supervisor.release_children()
            say(f"\nThe stack keeps running. Stop it with: HUMIAO_STATE_DIR={stack_dir} "
                ".venv/bin/humiao down")
            if state.console_login_url:
                say(f"The console, signed in as the development supervisor: "
                    f"{state.console_login_url}")
        else:
            supervisor.stop_stack(state)
            say("\nstack stopped")
    return 0 if ok else 1


def run(args: argparse.Namespace, city: City, events: Path | list[Workbook],
        corrections: Path, sent_events: int, sent_fixes: int, state: StackState) -> bool:
    say("")
    what = f"{len(events)} workbooks" if isinstance(events, list) else "envelopes"
    say(f"feeding {sent_events} facts as {what} through the ingest gateway "
        f"({state.ingest}) ...")
    t_feed = time.monotonic()
    first = feed_workbooks(state, events) if isinstance(events, list) else feed(state, events)
    waited = supervisor.wait_until_processed(state.database_url, state.kafka,
                                             group=state.verifier_group, timeout=args.timeout)
    t_first = time.monotonic() - t_feed
    say(f"  accepted {first['accepted']}, duplicates {first['duplicates']}, rejected "
        f"{first['rejected']}; verifier caught up {waited:.1f}s after the last send")
    before = asyncio.run(fetch_alerts(state.database_url))
    implied_before = {a.key() for a in before if a.implied}
    first_ok = implied_before == set(city.before_corrections)
    say(f"  alerts now: {len(implied_before)} (the history alone implies "
        f"{len(city.before_corrections)}: {'match' if first_ok else 'MISMATCH'})")

    say(f"feeding {sent_fixes} late corrections (reversals and retractions) ...")
    t_fix = time.monotonic()
    second = feed(state, corrections)
    supervisor.wait_until_processed(state.database_url, state.kafka,
                                    group=state.verifier_group, timeout=args.timeout)
    t_second = time.monotonic() - t_fix
    elapsed = t_first + t_second
    alerts = asyncio.run(fetch_alerts(state.database_url))
    result = score(city.truth, alerts, city.withdrawn_by_corrections)
    accepted = first["accepted"] + second["accepted"]
    say(f"  accepted {second['accepted']}, duplicates {second['duplicates']}, rejected "
        f"{second['rejected']}")

    say("")
    say("Results per check (raised = implied by the facts now; withdrawn = taken back by "
        "the late corrections)")
    for line in render(result):
        say(line)
    say("")
    say(f"precision {100 * result.precision:.1f}%   recall {100 * result.recall:.1f}%   "
        f"amount at risk found {format_fen(result.amount_found_fen)} yuan")
    say(f"withdrawn by the corrections: {result.withdrawn} of {result.expected_withdrawn}; "
        f"raised by them: {len(city.raised_by_corrections)}")
    total_sent = sent_events + sent_fixes
    say(f"time: {elapsed:.1f}s from first send to verdicts, {total_sent} envelopes "
        f"({accepted} distinct facts) -> {total_sent / elapsed:,.0f} events/s end to end")
    _explain_failures(result)
    examples = _pick_examples(alerts, city.truth)
    _write_results(args, city, result, first_ok, elapsed, total_sent, state, examples)

    _examples(state, examples)
    _next_steps(state, args)
    good = result.perfect and first_ok and first["rejected"] == 0 and second["rejected"] == 0
    say("")
    say("RESULT: " + ("100% precision and recall on every check" if good else
                      "NOT perfect: see above"))
    return good


def feed(state: StackState, path: Path) -> dict[str, int]:
    """Send a file through the ingest gateway, as `humiao ingest` does (its import_file)."""
    from humiao.cli.ingest_cmd import import_file, open_stub

    channel, stub = open_stub(state.ingest)
    try:
        summary = import_file(path, stub, state.source_token,
                              path.with_name(path.name + ".rejects.jsonl"), progress=False)
    finally:
        channel.close()
    return {"accepted": summary.accepted, "duplicates": summary.duplicates,
            "rejected": summary.rejected}


def as_workbooks(city: City, directory: Path) -> tuple[list[Workbook], Path]:
    """The city's history as workbooks (city/workbooks/*.xlsx), and its late corrections
    as JSON lines whose retractions name the ids the workbook rows are imported under."""
    from humiao_dev.demo.city import write_envelopes
    from humiao_dev.demo.workbooks import derived_ids, remap_retractions, write_workbooks

    t0 = time.monotonic()
    books = write_workbooks(city.events, directory / "workbooks")
    ids: dict[str, str] = {}
    for book in books:
        ids.update(derived_ids(book, city.config.source))
    corrections = directory / "corrections-for-workbooks.jsonl"
    write_envelopes(corrections, remap_retractions(city.corrections, ids))
    listed = ", ".join(f"{b.path.name} ({len(b.envelopes)} rows)" for b in books)
    say(f"      as workbooks: {listed} -> {directory / 'workbooks'} "
        f"({time.monotonic() - t0:.1f}s)")
    return books, corrections


def feed_workbooks(state: StackState, books: list[Workbook]) -> dict[str, int]:
    """Each workbook through the gateway, as `humiao ingest FILE.xlsx --mapping` does."""
    from humiao.cli.ingest_cmd import open_stub
    from humiao.tabular import import_workbook, load_mapping

    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    channel, stub = open_stub(state.ingest)
    try:
        for book in books:
            result = import_workbook(book.path, load_mapping(book.mapping), stub,
                                     state.source_token, source=state.source, progress=False)
            counts["accepted"] += result.accepted
            counts["duplicates"] += result.duplicates
            counts["rejected"] += result.rejected
            if result.rejected:
                say(f"  {book.path.name}: {result.rejected} rows rejected, see "
                    f"{result.error_book}")
    finally:
        channel.close()
    return counts


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _print_stories(city: City) -> None:
    honest = {k[len("honest: "):]: v for k, v in city.stories.items() if k.startswith("honest")}
    fixed = {k[len("corrected: "):]: v for k, v in city.stories.items()
             if k.startswith("corrected")}
    injected = sum(v for k, v in city.stories.items() if k.startswith("injected"))
    say("      honest life events: " + ", ".join(f"{k} {v}" for k, v in honest.items()))
    say("      honest errors corrected late: " + ", ".join(f"{k} {v}" for k, v in fixed.items()))
    say(f"      injected irregularities: {injected} children, {len(city.truth)} alerts expected")


def _explain_failures(result: Score) -> None:
    for title, items in (("missed", result.missed), ("spurious", result.spurious)):
        for alert in sorted(items)[:10]:
            say(f"  {title}: {alert.code.name} child {alert.child_id} {alert.period} "
                f"{alert.subject or '-'}")


def _write_results(args: argparse.Namespace, city: City, result: Score, first_ok: bool,
                   elapsed: float, sent: int, state: StackState, examples: list[str]) -> None:
    doc = {
        "shuffled": args.shuffled,
        "from_workbooks": args.from_workbooks,
        "seed": city.config.seed,
        "children": city.children,
        "table": [
            {"code": r.code.name, "injected": r.injected, "raised": r.raised,
             "withdrawn": r.withdrawn, "missed": r.missed, "spurious": r.spurious,
             "amount_found_fen": r.amount_found_fen}
            for r in result.rows
        ],
        "precision": result.precision,
        "recall": result.recall,
        "perfect": result.perfect,
        "before_corrections_match": first_ok,
        "withdrawn": result.withdrawn,
        "expected_withdrawn": result.expected_withdrawn,
        "amount_found_fen": result.amount_found_fen,
        "seconds": round(elapsed, 2),
        "envelopes_sent": sent,
        "metrics": supervisor.metrics_urls(state),
        "examples": examples,
    }
    name = ("results-shuffled.json" if args.shuffled
            else "results-workbooks.json" if args.from_workbooks else "results.json")
    out = (args.out or supervisor.state_dir() / "demo") / name
    out.write_text(json.dumps(doc, indent=2))
    say(f"results written to {out}")


def _pick_examples(alerts: Sequence[RaisedAlert], truth: frozenset[ExpectedAlert]) -> list[str]:
    chosen: list[str] = []
    for code in EXAMPLE_CODES:
        found = sorted(a.alert_id for a in alerts if a.implied and a.code is code
                       and a.key() in truth)
        if found:
            chosen.append(found[0])
        if len(chosen) == 3:
            break
    return chosen


def _examples(state: StackState, examples: list[str]) -> None:
    say("")
    say("Three alerts as monitoring staff see them (`humiao alerts show ID`):")
    env = {**os.environ, "HUMIAO_DESK_TARGET": state.desk, "HUMIAO_DESK_TOKEN": state.staff_token,
           "HUMIAO_STATE_DIR": state.state_dir,
           "HUMIAO_STACK_FILE": str(Path(state.state_dir) / supervisor.STATE_FILE)}
    for alert_id in examples:
        say("-" * 78)
        proc = subprocess.run(
            [sys.executable, "-c", CLI_SNIPPET, "alerts", "show", alert_id],
            env=env, capture_output=True, text=True, timeout=60,
        )
        say((proc.stdout or proc.stderr).rstrip())
    say("-" * 78)


def _next_steps(state: StackState, args: argparse.Namespace) -> None:
    say("")
    say("Where to look next:")
    for name, url in supervisor.metrics_urls(state).items():
        say(f"  metrics {name:<9} {url}")
    prefix = f"HUMIAO_STATE_DIR={state.state_dir} " if args.keep_running else ""
    if args.keep_running:
        say("  the stack is still running; with its state file, try:")
    else:
        say("  run `.venv/bin/humiao up` (or this demo with --keep-running), then try:")
    for cmd in ("humiao status",
                "humiao alerts list --code PAID_AFTER_DEATH",
                "humiao summary",
                "humiao alerts show <alert id>",
                "humiao child timeline <child ID number>",
                "humiao ingest .humiao/demo/city/events.jsonl --wait"):
        say(f"    {prefix}.venv/bin/{cmd}")


if __name__ == "__main__":
    raise SystemExit(main())
