"""The console's one adapter: calls to the alert desk with the signed-in person's token.

Every desk status becomes a DeskRefusal the pages can explain; the console never reads
the database itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from humiao.api.desk.v1 import desk_pb2, desk_pb2_grpc
from humiao.edge import client_credentials

#: Desk statuses the console explains to the person (the rest are "unavailable").
EXPLAINED = {
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.PERMISSION_DENIED: "forbidden",
    grpc.StatusCode.FAILED_PRECONDITION: "moved_on",
    grpc.StatusCode.ABORTED: "moved_on",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "limited",
    grpc.StatusCode.UNAUTHENTICATED: "signed_out",
}


class DeskRefusal(Exception):
    """The desk said no (or could not be reached): `kind` names why, `detail` is the
    desk's own message, which never holds an ID number."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _refusal(exc: grpc.aio.AioRpcError) -> DeskRefusal:
    return DeskRefusal(EXPLAINED.get(exc.code(), "unavailable"), exc.details() or "")


def open_desk_channel(target: str, env: Mapping[str, str]) -> grpc.aio.Channel:
    """An asyncio channel to the desk, over TLS when the environment asks for it."""
    credentials = client_credentials(env)
    if credentials is None:
        return grpc.aio.insecure_channel(target)
    return grpc.aio.secure_channel(target, credentials)


class DeskClient:
    def __init__(self, channel: grpc.aio.Channel, timeout: float = 10.0) -> None:
        self.stub = desk_pb2_grpc.AlertDeskStub(channel)
        self.timeout = timeout

    async def call(self, token: str, method: str, request: Any) -> Any:
        try:
            return await getattr(self.stub, method)(
                request, metadata=(("authorization", f"Bearer {token}"),), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc) from None

    async def watch(self, token: str, request: desk_pb2.WatchAlertsRequest
                    ) -> AsyncIterator[desk_pb2.WatchAlertsResponse]:
        stream = self.stub.WatchAlerts(request, metadata=(("authorization", f"Bearer {token}"),))
        try:
            async for item in stream:
                yield item
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc) from None
        finally:
            stream.cancel()

    async def who(self, token: str) -> desk_pb2.WhoAmIResponse:
        response: desk_pb2.WhoAmIResponse = await self.call(
            token, "WhoAmI", desk_pb2.WhoAmIRequest())
        return response
