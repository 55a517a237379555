"""Step 7: a payment workbook through the gateway against the same events as JSON lines.

The workbook is the demo city's payments written as a bank's 代发 file (the demo's
workbook writer, payments mapping); the JSON lines are exactly the envelopes importing
that workbook gives (read back with `read_workbook`, so the ids and contents are the
same). Each import gets a gateway of its own (fresh database and topics), so neither
meets the other's duplicates. The ratio is rows/s of the workbook to events/s of the
JSON lines; the target is at least 0.5 (issue 16).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from humiao.domain.events import Disbursement, Envelope
from humiao_dev.bench.context import BenchContext
from humiao_dev.bench.ingest_runs import gateway_stub


def payment_files(ctx: BenchContext, envelopes: Sequence[Envelope], rows: int,
                  source: str) -> tuple[Any, Any, dict[str, Any]]:
    """(workbook path, JSON-lines path, details) for the first `rows` payments."""
    from humiao.adapters.codec import proto_to_json
    from humiao.tabular import load_mapping, read_workbook
    from humiao_dev.demo.workbooks import write_workbook

    payments = [e for e in envelopes if isinstance(e.body, Disbursement)][:rows]
    book = ctx.workdir / "tabular-payments.xlsx"
    lines = ctx.workdir / "tabular-payments.jsonl"
    t = time.perf_counter()
    write_workbook(book, load_mapping("payments"), payments)
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    read = read_workbook(book, load_mapping("payments"), source=source)
    read_s = time.perf_counter() - t
    if read.rejected or len(read.envelopes) != len(payments):
        raise RuntimeError(f"the workbook read back with {read.rejected} rejected rows")
    with lines.open("w", encoding="utf-8") as out:
        for msg in read.envelopes:
            out.write(proto_to_json(msg) + "\n")
    details = {"rows": len(payments), "workbook_mb": round(book.stat().st_size / 1e6, 1),
               "jsonl_mb": round(lines.stat().st_size / 1e6, 1),
               "write_seconds": round(write_s, 1),
               "convert_only_rows_per_s": round(len(payments) / read_s)}
    return book, lines, details


def tabular_phase(ctx: BenchContext, envelopes: Sequence[Envelope], rows: int, source: str
                  ) -> dict[str, Any]:
    from humiao.cli.ingest_cmd import import_file
    from humiao.tabular import import_workbook, load_mapping

    book, lines, details = payment_files(ctx, envelopes, rows, source)
    try:
        with gateway_stub(ctx, "tabjsonl", source) as (gw, stub):
            jsonl = import_file(lines, stub, gw.token, None, progress=False)
        with gateway_stub(ctx, "tabxlsx", source) as (gw, stub):
            sheet = import_workbook(book, load_mapping("payments"), stub, gw.token,
                                    source=source, progress=False)
    finally:
        for path in (book, lines, book.with_name(book.stem + ".errors.xlsx")):
            path.unlink(missing_ok=True)
        for state in ctx.workdir.glob(".humiao-import.*.json"):
            state.unlink()
    return {**details,
            "jsonl": {"events": jsonl.lines, "accepted": jsonl.accepted,
                      "rejected": jsonl.rejected, "seconds": round(jsonl.seconds, 2),
                      "events_per_s": round(jsonl.events_per_second)},
            "workbook": {"rows": sheet.read, "accepted": sheet.accepted,
                         "rejected": sheet.rejected, "seconds": round(sheet.seconds, 2),
                         "rows_per_s": round(sheet.rows_per_second)}}
