"""The ingest gateway's servicer: validate, check scope, deduplicate, publish, record.

Per call: every event is validated and checked against the source's credential; the
survivors are deduplicated against PostgreSQL (one query), published to Kafka and only
once acknowledged recorded (one insert) and answered ACCEPTED. If Kafka fails the call
is answered UNAVAILABLE, after recording what did get published, so a retry answers
those DUPLICATE and publishes only the rest.

One lock per process spans lookup, publish and record: two concurrent calls carrying
the same eventId then cannot both publish it. Validation runs outside the lock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from humiao.adapters.codec import envelope_from_proto
from humiao.adapters.publisher import EventPublisher, PublishError
from humiao.api.events.v1 import events_pb2
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.domain.events import Envelope
from humiao.domain.validation import ValidationFailed
from humiao.ingest.credentials import CredentialStore, SourceCredential, scope_region
from humiao.ingest.metrics import CALLS, IngestMetrics, Rejection

log = logging.getLogger(__name__)

SERVICE_NAME = "humiao.ingest.v1.IngestService"
#: A client stream is processed in chunks of this many events as they arrive.
STREAM_CHUNK = 1000
_ACCEPTED = ingest_pb2.ACCEPTED
_DUPLICATE = ingest_pb2.DUPLICATE
_REJECTED = ingest_pb2.REJECTED

_KNOWN_IDS = "SELECT event_id FROM ingested_events WHERE event_id = ANY($1::text[])"
_RECORD = (
    "INSERT INTO ingested_events (event_id, kind, source, accepted_at)"
    " SELECT e, k, $3, $4 FROM unnest($1::text[], $2::text[]) AS t(e, k)"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


class Unavailable(Exception):
    """A dependency (Kafka or PostgreSQL) failed; the call is answered UNAVAILABLE."""


@dataclass
class Dependencies:
    """What the servicer needs; filled in once Kafka and PostgreSQL answer."""

    pool: asyncpg.Pool | None = None
    publisher: EventPublisher | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def _invalid_status(exc: ValidationFailed) -> status_pb2.Status:
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in exc.violations
        ]
    )
    detail = any_pb2.Any()
    detail.Pack(bad)
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=f"invalid event: {exc}", details=[detail]
    )


def _denied_status(reason: Rejection, message: str, **metadata: str) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(
        reason=reason.name, domain="ingest.humiao", metadata=metadata
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message=message, details=[detail])


def _scope_problem(
    env: Envelope, credential: SourceCredential
) -> tuple[Rejection, status_pb2.Status] | None:
    if env.source != credential.source:
        return Rejection.SOURCE_MISMATCH, _denied_status(
            Rejection.SOURCE_MISMATCH, "source does not match credential"
        )
    if not credential.allows_kind(env.kind):
        return Rejection.KIND_NOT_ALLOWED, _denied_status(
            Rejection.KIND_NOT_ALLOWED,
            f"source {credential.source} may not send {env.kind} events",
            kind=env.kind,
        )
    region = scope_region(env)
    if region is not None and not credential.allows_region(region):
        return Rejection.REGION_NOT_ALLOWED, _denied_status(
            Rejection.REGION_NOT_ALLOWED,
            f"source {credential.source} may not send events for region {region}",
            region=region,
        )
    return None


def bearer_token(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    """humiao.ingest.v1.IngestService over validated, deduplicated, published events."""

    def __init__(self, deps: Dependencies, credentials: CredentialStore,
                 metrics: IngestMetrics | None = None) -> None:
        self._deps = deps
        self._credentials = credentials
        self._metrics = metrics or IngestMetrics()
        self._lock = asyncio.Lock()

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> SourceCredential:
        credential = self._credentials.authenticate(bearer_token(context))
        if credential is None:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "a valid source token is required (metadata 'authorization: Bearer <token>')",
            )
        assert credential is not None
        if not self._deps.ready.is_set():
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                "not ready: waiting for Kafka and PostgreSQL")
        return credential

    @CALLS.unary
    async def SubmitBatch(
        self, request: ingest_pb2.SubmitBatchRequest, context: grpc.aio.ServicerContext
    ) -> ingest_pb2.SubmitBatchResponse:
        credential = await self._authenticate(context)
        results = await self._process_or_abort(request.events, 0, credential, context)
        return _response(results)

    @CALLS.unary
    async def SubmitStream(
        self,
        request_iterator: AsyncIterator[events_pb2.Envelope],
        context: grpc.aio.ServicerContext,
    ) -> ingest_pb2.SubmitBatchResponse:
        credential = await self._authenticate(context)
        results: list[ingest_pb2.EventResult] = []
        chunk: list[events_pb2.Envelope] = []
        async for msg in request_iterator:
            chunk.append(msg)
            if len(chunk) >= STREAM_CHUNK:
                results += await self._process_or_abort(chunk, len(results), credential, context)
                chunk = []
        if chunk:
            results += await self._process_or_abort(chunk, len(results), credential, context)
        return _response(results)

    async def _process_or_abort(
        self,
        messages: Sequence[events_pb2.Envelope],
        offset: int,
        credential: SourceCredential,
        context: grpc.aio.ServicerContext,
    ) -> list[ingest_pb2.EventResult]:
        try:
            return await self.process(messages, offset, credential)
        except Unavailable as exc:
            self._metrics.publish_failed()
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise  # unreachable: abort raises

    async def process(
        self, messages: Sequence[events_pb2.Envelope], offset: int, credential: SourceCredential
    ) -> list[ingest_pb2.EventResult]:
        """One result per message, in order. Raises Unavailable if Kafka or the DB fails."""
        metrics = self._metrics
        metrics.batch(len(messages))
        results: list[ingest_pb2.EventResult] = []
        candidates: list[tuple[int, Envelope]] = []
        for i, msg in enumerate(messages):
            result = ingest_pb2.EventResult(index=offset + i, event_id=msg.event_id[:256])
            results.append(result)
            try:
                env = envelope_from_proto(msg)
            except ValidationFailed as exc:
                result.outcome = _REJECTED
                result.status.CopyFrom(_invalid_status(exc))
                metrics.rejected(Rejection.INVALID_FIELD)
                metrics.outcome(_kind_of(msg), "rejected")
                continue
            problem = _scope_problem(env, credential)
            if problem is not None:
                reason, status = problem
                result.outcome = _REJECTED
                result.status.CopyFrom(status)
                metrics.rejected(reason)
                metrics.outcome(env.kind, "rejected")
                continue
            candidates.append((i, env))
        if candidates:
            async with self._lock:
                await self._publish_new(candidates, results, credential)
        return results

    async def _publish_new(
        self,
        candidates: list[tuple[int, Envelope]],
        results: list[ingest_pb2.EventResult],
        credential: SourceCredential,
    ) -> None:
        pool, publisher = self._deps.pool, self._deps.publisher
        assert pool is not None and publisher is not None
        try:
            rows = await pool.fetch(_KNOWN_IDS, [env.event_id for _, env in candidates])
            known = {r[0] for r in rows}
        except (asyncpg.PostgresError, OSError) as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
        fresh: list[tuple[int, Envelope]] = []
        for i, env in candidates:
            if env.event_id in known:
                self._answer_duplicate(results[i], env)
            else:
                known.add(env.event_id)  # a later copy in this batch is a duplicate
                fresh.append((i, env))
        if not fresh:
            return
        accepted_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        failure: PublishError | None = None
        try:
            await publisher.publish([env for _, env in fresh], int(accepted_at.timestamp() * 1000))
            published = fresh
        except PublishError as exc:
            failure = exc
            published = [fresh[j] for j in sorted(exc.published)]
        else:
            self._metrics.published(time.perf_counter() - started)
        recorded = await self._record(published, credential, accepted_at)
        if failure is not None:
            log.warning("publish failed: %s (%d of %d recorded)", failure, len(recorded),
                        len(fresh))
            raise Unavailable(f"Kafka unavailable: {failure}")
        for i, env in published:
            if env.event_id in recorded:
                results[i].outcome = _ACCEPTED
                self._metrics.outcome(env.kind, "accepted")
            else:  # another gateway recorded it meanwhile
                self._answer_duplicate(results[i], env)

    def _answer_duplicate(self, result: ingest_pb2.EventResult, env: Envelope) -> None:
        result.outcome = _DUPLICATE  # a replay, not a rejection: only the outcome counts it
        self._metrics.outcome(env.kind, "duplicate")

    async def _record(
        self, published: list[tuple[int, Envelope]], credential: SourceCredential,
        accepted_at: dt.datetime,
    ) -> set[str]:
        if not published:
            return set()
        pool = self._deps.pool
        assert pool is not None
        try:
            rows = await pool.fetch(
                _RECORD,
                [env.event_id for _, env in published],
                [env.kind for _, env in published],
                credential.source,
                accepted_at,
            )
        except (asyncpg.PostgresError, OSError) as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
        return {r[0] for r in rows}


def _kind_of(msg: events_pb2.Envelope) -> str | None:
    field_name = msg.WhichOneof("body")
    if not field_name:
        return None
    return str(events_pb2.Envelope.DESCRIPTOR.fields_by_name[field_name].json_name)


def _response(results: list[ingest_pb2.EventResult]) -> ingest_pb2.SubmitBatchResponse:
    counts: dict[Any, int] = {_ACCEPTED: 0, _DUPLICATE: 0, _REJECTED: 0}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return ingest_pb2.SubmitBatchResponse(
        results=results,
        accepted=counts[_ACCEPTED],
        duplicates=counts[_DUPLICATE],
        rejected=counts[_REJECTED],
    )
