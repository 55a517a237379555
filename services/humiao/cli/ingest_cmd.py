"""`humiao ingest FILE`: bulk import of canonical JSON lines through the running gateway.

The file (plain or gzip) is streamed in chunks, never loaded whole; each chunk goes
through the gateway's SubmitBatch, so validation, deduplication and publishing are
exactly those of any other source. A few chunks are kept in flight to overlap the
client's JSON parsing with the gateway's work. Lines that are not even parseable JSON
envelopes are rejected here; the gateway's rejections come back per event. Both land
in the rejects side file, one JSON object per line:
    {"line": 17, "eventId": "...", "reasons": ["disbursement.amountFen: must not be negative"]}

`humiao ingest hash-token [TOKEN]` prints the SHA-256 to put in HUMIAO_SOURCE_CREDENTIALS.
"""

from __future__ import annotations

import argparse
import collections
import getpass
import gzip
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import grpc
from google.rpc import error_details_pb2, status_pb2

from humiao.adapters.codec import proto_from_json
from humiao.api.events.v1 import events_pb2
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.cli.local_state import read_local_state
from humiao.domain.identity import mask_ids_inside
from humiao.domain.validation import ValidationFailed
from humiao.edge import open_channel
from humiao.ingest.limits import MAX_BATCH_EVENTS
from humiao.tabular.command import is_spreadsheet, register_options

TARGET_ENV = "HUMIAO_INGEST_TARGET"
TOKEN_ENV = "HUMIAO_INGEST_TOKEN"
DEFAULT_CHUNK = 1000
#: The longest line read as an envelope; a longer one is rejected on its own.
MAX_LINE_BYTES = 256 * 1024
#: Text per chunk: a chunk's request stays well under the gateway's 4 MiB.
CHUNK_BYTES = 2 * 1024 * 1024
#: Chunks awaiting the gateway's answer while the next one is parsed.
IN_FLIGHT = 3
#: Attempts per chunk when the gateway answers UNAVAILABLE (safe: eventIds dedupe).
RETRIES = 8


class ImportFailed(Exception):
    """The import could not go on (bad token, gateway gone); the message says why."""


@dataclass
class ImportSummary:
    """What an import did. `rejected` counts local and gateway rejections together."""

    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejects_path: Path | None = None
    chunks: int = 0

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        text = (
            f"{self.lines} lines: {self.accepted} accepted, {self.duplicates} duplicate, "
            f"{self.rejected} rejected in {self.seconds:.1f}s "
            f"({self.events_per_second:,.0f} events/s)"
        )
        if self.rejected and self.rejects_path is not None:
            text += f"; reasons in {self.rejects_path}"
        return text


@dataclass
class _Chunk:
    lines: list[int] = field(default_factory=list)
    events: list[events_pb2.Envelope] = field(default_factory=list)
    local_rejects: list[dict[str, Any]] = field(default_factory=list)


def _open_lines(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(raw file for progress, line stream); gzip recognised by its magic bytes."""
    raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 (closed by the caller)
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        return raw, stream
    return raw, raw


def _event_id_of(line: bytes) -> str | None:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    value = obj.get("eventId") if isinstance(obj, dict) else None
    return value if isinstance(value, str) else None


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(number, line) for each line; None for a line over MAX_LINE_BYTES, which is read
    past in pieces and never held whole (one huge line must not abort the import)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(1024 * 1024)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        yield number, line


def _chunks(stream: IO[bytes], chunk_size: int) -> Iterator[_Chunk]:
    """Chunks of at most `chunk_size` lines and CHUNK_BYTES of text (the gateway reads
    messages of 4 MiB at most)."""
    chunk, size = _Chunk(), 0
    for number, line in _lines(stream):
        if line is None:
            chunk.local_rejects.append({"line": number, "eventId": None, "reasons": [
                f"line: longer than {MAX_LINE_BYTES} bytes (an envelope is far smaller)"]})
        elif not line.strip():
            continue
        else:
            try:
                chunk.events.append(proto_from_json(line))
                chunk.lines.append(number)
                size += len(line)
            except ValidationFailed as exc:
                chunk.local_rejects.append(
                    {"line": number, "eventId": _masked(_event_id_of(line)),
                     "reasons": [mask_ids_inside(str(v)) for v in exc.violations]}
                )
        if len(chunk.events) + len(chunk.local_rejects) >= chunk_size or size >= CHUNK_BYTES:
            yield chunk
            chunk, size = _Chunk(), 0
    if chunk.events or chunk.local_rejects:
        yield chunk


def _masked(text: str | None) -> str | None:
    return None if text is None else mask_ids_inside(text)


def status_reasons(status: status_pb2.Status) -> list[str]:
    """Readable reasons of a rejection: each field violation, else the status message."""
    reasons: list[str] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Is(bad.DESCRIPTOR) and detail.Unpack(bad):
            reasons += [f"{v.field or '(envelope)'}: {v.description}" for v in bad.field_violations]
    return reasons or [status.message]


class _Rejects:
    """The side file, created on the first rejection only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._out: IO[str] | None = None

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records or self.path is None:
            return
        if self._out is None:
            self._out = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        for record in sorted(records, key=lambda r: int(r["line"])):
            self._out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


def _submit_with_retry(
    stub: ingest_pb2_grpc.IngestServiceStub,
    request: ingest_pb2.SubmitBatchRequest,
    metadata: tuple[tuple[str, str], ...],
    first: Any,
    timeout: float,
) -> ingest_pb2.SubmitBatchResponse:
    """Wait for a call; retry it with backoff while the gateway is UNAVAILABLE."""
    call = first
    delay = 0.5
    for attempt in range(RETRIES):
        try:
            answer: ingest_pb2.SubmitBatchResponse = call.result()
            return answer
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise ImportFailed(f"the gateway refused the token: {exc.details()}") from None
            if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                    or attempt == RETRIES - 1:
                raise ImportFailed(f"the gateway failed: {code}: {exc.details()}") from None
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
        call = stub.SubmitBatch.future(request, metadata=metadata, timeout=timeout)
    raise AssertionError("unreachable")


def import_file(
    path: str | Path,
    stub: ingest_pb2_grpc.IngestServiceStub,
    token: str,
    rejects_path: str | Path | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    *,
    in_flight: int = IN_FLIGHT,
    progress: bool | None = None,
    call_timeout: float = 120.0,
) -> ImportSummary:
    """Stream `path` through SubmitBatch; return the counts. Reusable from Python (the demo).

    `progress` None shows a bar on stderr only when it is a terminal.
    """
    from tqdm import tqdm

    source = Path(path)
    summary = ImportSummary(rejects_path=Path(rejects_path) if rejects_path else None)
    rejects = _Rejects(summary.rejects_path)
    metadata = (("authorization", f"Bearer {token}"),)
    pending: collections.deque[tuple[_Chunk, ingest_pb2.SubmitBatchRequest, Any]] = (
        collections.deque()
    )
    show = sys.stderr.isatty() if progress is None else progress
    started = time.perf_counter()
    raw, stream = _open_lines(source)
    bar = tqdm(total=os.path.getsize(source), unit="B", unit_scale=True, file=sys.stderr,
               disable=not show, desc=source.name)

    def settle(chunk: _Chunk, request: ingest_pb2.SubmitBatchRequest, call: Any) -> None:
        answer = _submit_with_retry(stub, request, metadata, call, call_timeout)
        found = list(chunk.local_rejects)
        for result in answer.results:
            if result.outcome == ingest_pb2.REJECTED:
                found.append({"line": chunk.lines[result.index],
                              "eventId": _masked(result.event_id),
                              "reasons": [mask_ids_inside(r)
                                          for r in status_reasons(result.status)]})
        summary.accepted += answer.accepted
        summary.duplicates += answer.duplicates
        summary.rejected += len(found)
        rejects.write(found)

    try:
        for chunk in _chunks(stream, chunk_size):
            summary.chunks += 1
            summary.lines += len(chunk.events) + len(chunk.local_rejects)
            request = ingest_pb2.SubmitBatchRequest(events=chunk.events)
            call = (stub.SubmitBatch.future(request, metadata=metadata, timeout=call_timeout)
                    if chunk.events else None)
            if call is None:
                summary.rejected += len(chunk.local_rejects)
                rejects.write(chunk.local_rejects)
            else:
                pending.append((chunk, request, call))
            while len(pending) >= max(1, in_flight):
                settle(*pending.popleft())
            bar.update(raw.tell() - bar.n)
        while pending:
            settle(*pending.popleft())
        bar.update(raw.tell() - bar.n)
    finally:
        for _, _, call in pending:
            call.cancel()
        bar.close()
        if stream is not raw:
            stream.close()
        raw.close()
        rejects.close()
    summary.seconds = time.perf_counter() - started
    return summary


# --- command line --------------------------------------------------------------------------


def read_stack_state(path: Path | None = None) -> dict[str, Any]:
    """The state `humiao up` leaves behind (gateway address, a source token), if any."""
    return read_local_state(path)


def resolve_target_and_token(
    target: str | None, token: str | None, state_path: Path | None = None
) -> tuple[str, str]:
    """Flags, then HUMIAO_INGEST_TARGET / HUMIAO_INGEST_TOKEN, then .humiao/stack.json."""
    state = read_stack_state(state_path)
    target = target or os.environ.get(TARGET_ENV) or state.get("ingest")
    token = token or os.environ.get(TOKEN_ENV) or state.get("source_token")
    if not target:
        raise ImportFailed(f"no gateway address: pass --target, set {TARGET_ENV}, "
                           "or start the stack with `humiao up`")
    if not token:
        raise ImportFailed(f"no source token: pass --token or set {TOKEN_ENV}")
    return str(target), str(token)


def open_stub(target: str) -> tuple[grpc.Channel, ingest_pb2_grpc.IngestServiceStub]:
    channel = open_channel(
        target, os.environ,
        options=[("grpc.max_send_message_length", 4 * 1024 * 1024),
                 ("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    return channel, ingest_pb2_grpc.IngestServiceStub(channel)


def _hash_token(args: argparse.Namespace) -> int:
    from humiao.ingest.credentials import hash_token

    token = args.token_value
    if not token:
        token = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline()
    token = token.strip()
    if not token:
        raise ImportFailed("no token given")
    print(hash_token(token))
    return 0


def run(args: argparse.Namespace) -> int:
    from humiao.cli.main import CliError

    try:
        if args.file == "hash-token":
            return _hash_token(args)
        if args.token_value:
            raise ImportFailed(f"unexpected argument {args.token_value!r}")
        path = Path(args.file)
        if not path.is_file():
            raise ImportFailed(f"{path}: no such file")
        target, token = resolve_target_and_token(args.target, args.token)
        if is_spreadsheet(path):
            return _spreadsheet(args, path, target, token)
        rejects = Path(args.rejects) if args.rejects else path.with_name(path.name +
                                                                          ".rejects.jsonl")
        channel, stub = open_stub(target)
        try:
            summary = import_file(path, stub, token, rejects, args.chunk_size)
        finally:
            channel.close()
    except ImportFailed as exc:
        raise CliError(str(exc)) from None
    print(summary.render())
    args.import_summary = summary  # for later steps of the command (e.g. a --wait)
    return 0  # the import completed; rejected lines are counted above and in the side file


def _spreadsheet(args: argparse.Namespace, path: Path, target: str, token: str) -> int:
    """FILE.xlsx / FILE.csv with --mapping: humiao.tabular does the work."""
    from humiao.tabular.command import TableError, run_spreadsheet
    from humiao.tabular.mapping import MappingError

    channel, stub = open_stub(target)
    try:
        result = run_spreadsheet(args, path, stub, token, read_stack_state().get("source"),
                                 target)
    except (MappingError, TableError, ValueError) as exc:
        raise ImportFailed(f"{path}: {exc}") from None
    finally:
        channel.close()
    print(result.render())
    args.import_summary = result
    return 0


def _chunk_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_BATCH_EVENTS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_BATCH_EVENTS} (the gateway's limit)")
    return value


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "ingest",
        help="import a file of envelopes (canonical JSON lines, .gz too) or a spreadsheet "
             "(.xlsx, .csv with --mapping) through the gateway",
        description=(
            "Stream FILE (one canonical-JSON envelope per line, plain or gzip) through the "
            "running ingest gateway. `humiao ingest hash-token [TOKEN]` prints the hash of a "
            "source token for HUMIAO_SOURCE_CREDENTIALS."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the file to import, or `hash-token`")
    parser.add_argument("token_value", nargs="?", metavar="TOKEN", help=argparse.SUPPRESS)
    parser.add_argument("--rejects", metavar="PATH",
                        help="where rejected lines go (default FILE.rejects.jsonl)")
    parser.add_argument("--target", metavar="HOST:PORT",
                        help=f"gateway address (default ${TARGET_ENV} or .humiao/stack.json)")
    parser.add_argument("--token", help=f"source token (default ${TOKEN_ENV})")
    parser.add_argument("--chunk-size", type=_chunk_size, default=DEFAULT_CHUNK,
                        help=f"events per SubmitBatch call (default {DEFAULT_CHUNK}, "
                             f"at most {MAX_BATCH_EVENTS})")
    register_options(parser)
    parser.set_defaults(func=run)
