"""The steps of one benchmark run, in order, each filling `run.flat` (the figures of
bench-results.json) and `run.details` (everything behind them)."""

from __future__ import annotations

import gc
import time
from typing import TYPE_CHECKING, Any

from humiao_dev.bench.cli import say, set_ratio, size_key
from humiao_dev.bench.report import size_label

if TYPE_CHECKING:
    from humiao.config import KafkaSettings
    from humiao_dev.bench.cli import Run

def default_batch_max() -> int:
    """The verifier's default micro-batch, so the raw consumer polls as the verifier does."""
    from humiao.verifier.settings import VerifierSettings

    return int(VerifierSettings.model_fields["humiao_verifier_batch_max"].default)


def run_all(run: Run) -> None:
    wanted = set(run.args.steps)
    state: dict[str, Any] = {}
    if wanted & {"raw", "verifier", "two", "ingest"}:
        run.step("input: a demo city produced to Kafka", lambda: produce_input(run, state))
    if "kafka" not in state:
        wanted -= {"raw", "verifier", "two"}
    if "raw" in wanted:
        run.step("1. raw kafka-python consumption (the limit)", lambda: raw(run, state))
    if "verifier" in wanted:
        run.step("2a. verifier, one process, offset 0 -> all committed (also step 6, replay)",
                 lambda: verifier(run, state, 1))
    if "two" in wanted:
        run.step("2b. verifier, two processes in one group", lambda: verifier(run, state, 2))
    if "ingest" in wanted and "city" in state:
        run.step("3. ingest: SubmitBatch and file import", lambda: ingest(run, state))
    if "latency" in wanted:
        run.step(f"4. latency at {run.args.latency_rate} events/s", lambda: latency(run))
    if "memory" in wanted:
        run.step("5. verifier peak memory by children", lambda: memory(run))
    if "tabular" in wanted:
        run.step("7. tabular import: a payment workbook against the same JSON lines",
                 lambda: tabular(run))
    if "console" in wanted:
        run.step(f"8. console queue pages with {run.args.console_alerts:,} alerts",
                 lambda: console(run))


def batch_max(run: Run) -> int:
    return int(run.ctx.verifier_env.get("HUMIAO_VERIFIER_BATCH_MAX", default_batch_max()))


def produce_input(run: Run, state: dict[str, Any]) -> None:
    from humiao.adapters.codec import envelope_to_proto
    from humiao_dev.bench.verifier_runs import end_offsets
    from humiao_dev.bench.workload import city_of_size, encode, produce

    args, ctx = run.args, run.ctx
    # A million envelopes are tens of millions of objects: left to the collector, every
    # full collection walks them, and the generator, the producer and the raw consumer of
    # this process (which allocate per record) run at a third of their speed. So no
    # collection while generating (the city has no reference cycles), the city frozen
    # while produced, and only what later steps need kept once it is in Kafka.
    t = time.perf_counter()
    gc.disable()
    try:
        sized = city_of_size(args.events, months=args.months, seed=args.seed)
    finally:
        gc.enable()
    gen_s = time.perf_counter() - t
    gc.freeze()
    state["truth"] = len(sized.city.truth)
    state["withdrawn"] = len(sized.city.withdrawn_by_corrections)
    state["source"] = sized.city.config.source
    # As bytes: a list of bytes is nothing for the collector to walk (see below).
    state["ingest"] = [envelope_to_proto(e).SerializeToString()
                       for e in sized.envelopes[: args.ingest_events]]
    state["city"] = True
    say(f"   city: {sized.city.children} children, {args.months} months, "
        f"{len(sized.city.events)} facts + {len(sized.city.corrections)} late corrections "
        f"({gen_s:.1f}s)")
    if not set(args.steps) & {"raw", "verifier", "two"}:
        gc.unfreeze()
        return
    kafka = ctx.kafka("input")
    t = time.perf_counter()
    events, records = produce(ctx.bootstrap, kafka.events_topic, kafka.humiao_partitions,
                              encode(sized.envelopes, ctx.secret))
    produce_s = time.perf_counter() - t
    detail = {
        "children": sized.city.children, "disbursements": sized.city.disbursements,
        "alerts_implied": len(sized.city.truth),
    }
    del sized
    gc.unfreeze()
    gc.collect()
    gc.freeze()  # what is left (modules, the ingest bytes) need not be walked again
    end = end_offsets(kafka)
    if sum(end.values()) != records:
        raise RuntimeError(f"topic holds {sum(end.values())} records, {records} were sent")
    state["kafka"], state["end"] = kafka, end
    run.details["input"] = {
        **detail, "months": args.months, "events": events,
        "records": records, "partitions": kafka.humiao_partitions,
        "records_per_partition": {str(p): n for p, n in sorted(end.items())},
        "generate_seconds": round(gen_s, 1), "produce_seconds": round(produce_s, 1),
        "produce_records_per_s": round(records / produce_s),
    }
    run.flat["input_events"], run.flat["input_records"] = events, records
    say(f"   produced {events} events as {records} records (broadcast facts go to every "
        f"partition) in {produce_s:.1f}s ({records / produce_s:,.0f}/s)")


def raw(run: Run, state: dict[str, Any]) -> None:
    from humiao_dev.bench.verifier_runs import decode_consume, raw_consume

    kafka: KafkaSettings = state["kafka"]
    expected = sum(state["end"].values())
    tries = [raw_consume(run.ctx.bootstrap, kafka.events_topic, expected, batch_max(run))
             for _ in range(2)]
    best = max(t["records_per_s"] for t in tries)
    run.details["raw"] = {"tries": [{**t, "records_per_s": round(t["records_per_s"])}
                                    for t in tries], "max_poll_records": batch_max(run)}
    run.flat["raw_consume_records_per_s"] = round(best)
    each = ", ".join(f"{t['records_per_s']:,.0f}" for t in tries)
    say(f"   {expected} records, best of 2: {best:,.0f} records/s ({each})")
    ceiling = decode_consume(run.ctx.bootstrap, kafka.events_topic, expected, batch_max(run))
    run.details["decode_ceiling"] = {**ceiling, "records_per_s": round(ceiling["records_per_s"])}
    run.flat["decode_ceiling_records_per_s"] = round(ceiling["records_per_s"])
    set_ratio(run, "decode_ceiling_to_raw_ratio", "decode_ceiling_records_per_s",
              "raw_consume_records_per_s")
    say(f"   the same read, decoding and validating every record (no state): "
        f"{ceiling['records_per_s']:,.0f} records/s, "
        f"{run.flat['decode_ceiling_to_raw_ratio']} of raw")


def verifier(run: Run, state: dict[str, Any], processes: int) -> None:
    from humiao_dev.bench.verifier_runs import run_verifiers

    profile = None
    if processes == 1 and run.args.profile:
        profile = run.ctx.workdir / "verifier-profile.txt"
    tag = "one" if processes == 1 else "two"
    result = run_verifiers(run.ctx, state["kafka"], processes, tag, state["end"],
                           profile=profile)
    detail = result.to_json()
    if result.profile is not None:
        detail["profile_lines"] = result.profile.lines()
        detail["profile_file"] = str(profile)
        detail["profile_top_own"] = [
            {"frame": e.frame, "share": round(e.share, 4)} for e in result.profile.own[:20]]
        detail["profile_top_total"] = [
            {"frame": e.frame, "share": round(e.share, 4)} for e in result.profile.ours()[:20]]
    rate = round(result.records_per_s)
    if processes == 1:
        run.details["verifier"] = detail
        run.flat["verifier_events_per_s"] = rate
        set_ratio(run, "verifier_to_raw_ratio", "verifier_events_per_s",
                  "raw_consume_records_per_s")
        run.flat["replay_events_per_s"] = rate
        run.flat["replay_seconds"] = round(result.seconds, 2)
        run.flat["replay_note"] = ("the one-process run of step 2 is the replay: every "
                                   "record from offset zero into an empty database")
    else:
        run.details["verifier_two"] = detail
        run.flat["verifier_two_process_events_per_s"] = rate
        set_ratio(run, "two_to_one_ratio", "verifier_two_process_events_per_s",
                  "verifier_events_per_s")
    say(f"   {result.records} records in {result.seconds:.1f}s: {rate:,}/s "
        f"(startup {result.startup_seconds:.1f}s, peak RSS "
        f"{', '.join(f'{m:.0f}' for m in result.peak_rss_mb)} MB, CPU "
        f"{', '.join(f'{c:.0f}' for c in result.cpu_seconds)} s, "
        f"{result.alerts} alerts / {result.alert_versions} versions)")
    truth = state["truth"]
    detail["implied_alerts_expected"] = truth
    detail["withdrawn_by_corrections_expected"] = state["withdrawn"]
    if result.implied != truth:
        say(f"   NOTE: {result.implied} alerts implied, the city's truth has {truth}: "
            f"{result.implied_by_code}")


def ingest(run: Run, state: dict[str, Any]) -> None:
    from humiao.adapters.codec import envelope_from_bytes
    from humiao_dev.bench.ingest_runs import ingest_phase

    envelopes = [envelope_from_bytes(b) for b in state["ingest"]]
    result = ingest_phase(run.ctx, envelopes, state["source"])
    run.details["ingest"] = result
    run.flat["ingest_batch_events_per_s"] = result["batch"]["events_per_s"]
    run.flat["ingest_file_events_per_s"] = result["file"]["events_per_s"]
    for name in ("batch", "file"):
        r = result[name]
        say(f"   {name}: {r['events']} events in {r['seconds']:.1f}s: "
            f"{r['events_per_s']:,}/s (accepted {r['accepted']}, rejected {r['rejected']})")
        if r["accepted"] != r["events"]:
            raise RuntimeError(f"ingest {name}: only {r['accepted']} of {r['events']} accepted")


def latency(run: Run) -> None:
    from humiao_dev.bench.latency import latency_phase
    from humiao_dev.bench.workload import city_of_size

    args = run.args
    need = int(args.latency_rate * args.latency_seconds)
    sized = city_of_size(need, months=18, seed=args.seed + 1, injection_rate=0.02)
    envelopes = sized.envelopes[:need]
    result = latency_phase(run.ctx, envelopes, sized.city.config.source, args.latency_rate)
    run.details["latency"] = result
    for q in ("p50", "p95", "p99"):
        run.flat[f"latency_{q}_ms"] = result[f"{q}_ms"]
    say(f"   fed {result['feed']['events']} events at {result['feed']['events_per_s']}/s; "
        f"{result['alert_versions']} alert versions: p50 {result['p50_ms']} ms, "
        f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms (verdict committed p99 "
        f"{result['verdict_p99_ms']} ms)")


def memory(run: Run) -> None:
    from humiao_dev.bench.verifier_runs import memory_run

    sizes = sorted(run.args.memory_sizes)
    found: dict[str, float] = {}
    runs = []
    for children in sizes:
        r = memory_run(run.ctx, children, guardians=run.args.memory_events_per_child == 3)
        runs.append(r)
        found[size_label(children)] = r["peak_rss_mb"]
        run.flat[size_key(children)] = r["peak_rss_mb"]
        run.flat["peak_rss_mb"] = dict(found)
        say(f"   {children} children ({r['records']} records): peak RSS "
            f"{r['peak_rss_mb']:.0f} MB, {r['verifier']['records_per_s']:,}/s")
    run.details["memory"] = runs
    if len(sizes) >= 2:
        run.flat["memory_growth_ratio"] = round(
            found[size_label(sizes[-1])] / found[size_label(sizes[-2])], 3)


def tabular(run: Run) -> None:
    from humiao_dev.bench.tabular_runs import tabular_phase
    from humiao_dev.bench.workload import city_of_size

    args = run.args
    rows = args.ingest_events
    sized = city_of_size(int(rows * 1.3), months=args.months, seed=args.seed + 2)
    result = tabular_phase(run.ctx, sized.envelopes, rows, sized.city.config.source)
    run.details["tabular"] = result
    run.flat["import_jsonl_events_per_s"] = result["jsonl"]["events_per_s"]
    run.flat["import_workbook_rows_per_s"] = result["workbook"]["rows_per_s"]
    set_ratio(run, "import_workbook_to_jsonl_ratio", "import_workbook_rows_per_s",
              "import_jsonl_events_per_s")
    say(f"   {result['rows']} payment rows ({result['workbook_mb']} MB .xlsx, "
        f"{result['jsonl_mb']} MB JSON lines; converting alone "
        f"{result['convert_only_rows_per_s']:,} rows/s)")
    say(f"   JSON lines {result['jsonl']['events_per_s']:,} events/s, workbook "
        f"{result['workbook']['rows_per_s']:,} rows/s: ratio "
        f"{run.flat['import_workbook_to_jsonl_ratio']} (target >= 0.5)")
    for name, key in (("jsonl", "events"), ("workbook", "rows")):
        r = result[name]
        if r["accepted"] != r[key]:
            raise RuntimeError(f"tabular {name}: only {r['accepted']} of {r[key]} accepted")


def console(run: Run) -> None:
    from humiao_dev.bench.console_runs import console_phase

    result = console_phase(run.ctx, run.args.console_alerts, run.args.console_requests,
                           run.args.seed + 3)
    run.details["console"] = result
    run.flat["console_queue_p95_ms"] = result["p95_ms"]
    say(f"   {result['requests']} queue pages over {result['alerts']:,} alerts: p50 "
        f"{result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms "
        "(target p95 < 300 ms)")
