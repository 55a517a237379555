"""The ingest gateway's servicer: validate, deduplicate, judge the grant, publish, record.

Per call: every event is validated; the survivors are deduplicated by their qualified id
(`<source>/<id>`: ids are unique per source) against PostgreSQL, judged against the
source's grant with what ingest knows of earlier facts (ingest/grants.py: owned
corrections, enrollment regions, persons' children), published to Kafka with their ids
qualified, and only once acknowledged recorded and answered ACCEPTED. If Kafka fails the call
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

from humiao.adapters import ingest_store
from humiao.adapters.codec import envelope_from_proto
from humiao.adapters.publisher import EventPublisher, PublishError
from humiao.api.events.v1 import events_pb2
from humiao.api.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from humiao.domain.events import Envelope
from humiao.domain.identity import pseudonym
from humiao.domain.validation import ValidationFailed
from humiao.edge import Metadata, bearer
from humiao.ingest.credentials import CredentialStore, SourceCredential
from humiao.ingest.grants import Accepted, Judge, Known, Refused, qualified
from humiao.ingest.limits import MAX_BATCH_EVENTS, MAX_STREAM_EVENTS
from humiao.ingest.metrics import CALLS, IngestMetrics, Rejection

log = logging.getLogger(__name__)

SERVICE_NAME = "humiao.ingest.v1.IngestService"
#: A client stream is processed in chunks of this many events as they arrive.
STREAM_CHUNK = 1000
_ACCEPTED = ingest_pb2.ACCEPTED
_DUPLICATE = ingest_pb2.DUPLICATE
_REJECTED = ingest_pb2.REJECTED

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


def _refusal_status(refused: Refused) -> status_pb2.Status:
    metadata = {"region": refused.region} if refused.region else {}
    return _denied_status(Rejection(refused.reason.value), refused.message, **metadata)


UNAUTHENTICATED_MESSAGE = (
    "a valid source token is required (metadata 'authorization: Bearer <token>')")


def bearer_token(context: grpc.aio.ServicerContext) -> str:
    return bearer(context.invocation_metadata() or ())


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    """humiao.ingest.v1.IngestService over validated, deduplicated, published events."""

    def __init__(self, deps: Dependencies, credentials: CredentialStore,
                 metrics: IngestMetrics | None = None, *, pseudonym_key: bytes) -> None:
        self._deps = deps
        self._secret = pseudonym_key
        self._credentials = credentials
        self._metrics = metrics or IngestMetrics()
        self._lock = asyncio.Lock()

    async def knows(self, metadata: Metadata) -> bool:
        """The edge's gate: is this a known source token (before any message is read)?"""
        return self._credentials.authenticate(bearer(metadata)) is not None

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> SourceCredential:
        credential = self._credentials.authenticate(bearer_token(context))
        if credential is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
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
        if len(request.events) > MAX_BATCH_EVENTS:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"events: at most {MAX_BATCH_EVENTS} per SubmitBatch, "
                                f"got {len(request.events)}: split the batch")
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
            if len(results) + len(chunk) >= MAX_STREAM_EVENTS:
                await context.abort(  # those before were answered in order: resend the rest
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"at most {MAX_STREAM_EVENTS} events per SubmitStream: the first "
                    f"{len(results)} were processed; send the rest in a new stream")
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
            if not credential.allows_source(env.source):
                self._refuse(result, env, Judge(credential, Known(), self._key).judge(env))
                continue
            candidates.append((i, env))
        if candidates:
            async with self._lock:
                await self._publish_new(candidates, results, credential)
        return results

    def _key(self, person_id: str) -> str:
        return pseudonym(self._secret, person_id)

    def _refuse(self, result: ingest_pb2.EventResult, env: Envelope, verdict: object) -> None:
        assert isinstance(verdict, Refused)
        result.outcome = _REJECTED
        result.status.CopyFrom(_refusal_status(verdict))
        self._metrics.rejected(Rejection(verdict.reason.value))
        self._metrics.outcome(env.kind, "rejected")

    async def _publish_new(
        self,
        candidates: list[tuple[int, Envelope]],
        results: list[ingest_pb2.EventResult],
        credential: SourceCredential,
    ) -> None:
        """Under the lock: drop replays, judge the rest in order, publish, record."""
        pool, publisher = self._deps.pool, self._deps.publisher
        assert pool is not None and publisher is not None
        try:
            known_ids = await ingest_store.known_ids(
                pool, [qualified(env.source, env.event_id) for _, env in candidates])
            fresh = []
            for i, env in candidates:
                q = qualified(env.source, env.event_id)
                if q in known_ids:
                    self._answer_duplicate(results[i], env)
                else:
                    known_ids.add(q)  # a later copy in this batch is a duplicate
                    fresh.append((i, env))
            judge = Judge(credential, await ingest_store.load_known(
                pool, [env for _, env in fresh], self._key), self._key)
        except (asyncpg.PostgresError, OSError) as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
        accepted: list[tuple[int, Accepted]] = []
        for i, env in fresh:
            verdict = judge.judge(env)
            if isinstance(verdict, Refused):
                self._refuse(results[i], env, verdict)
            else:
                accepted.append((i, verdict))
        if accepted:
            await self._publish(accepted, results)

    async def _publish(
        self, accepted: list[tuple[int, Accepted]], results: list[ingest_pb2.EventResult]
    ) -> None:
        publisher = self._deps.publisher
        assert publisher is not None
        accepted_at = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        failure: PublishError | None = None
        try:
            await publisher.publish([a.envelope for _, a in accepted],
                                    int(accepted_at.timestamp() * 1000))
            published = accepted
        except PublishError as exc:
            failure = exc
            published = [accepted[j] for j in sorted(exc.published)]
        else:
            self._metrics.published(time.perf_counter() - started)
        recorded = await self._record([a for _, a in published], accepted_at)
        if failure is not None:
            log.warning("publish failed: %s (%d of %d recorded)", failure, len(recorded),
                        len(accepted))
            raise Unavailable(f"Kafka unavailable: {failure}")
        for i, fact in published:
            if fact.envelope.event_id in recorded:
                results[i].outcome = _ACCEPTED
                self._metrics.outcome(fact.envelope.kind, "accepted")
            else:  # another gateway recorded it meanwhile
                self._answer_duplicate(results[i], fact.envelope)

    def _answer_duplicate(self, result: ingest_pb2.EventResult, env: Envelope) -> None:
        result.outcome = _DUPLICATE  # a replay, not a rejection: only the outcome counts it
        self._metrics.outcome(env.kind, "duplicate")

    async def _record(self, published: list[Accepted], accepted_at: dt.datetime) -> set[str]:
        pool = self._deps.pool
        assert pool is not None
        try:
            return await ingest_store.record(pool, published, accepted_at, self._key)
        except (asyncpg.PostgresError, OSError) as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc


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
