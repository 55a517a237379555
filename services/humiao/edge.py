"""What every gRPC call meets before a servicer sees it.

A caller without a known token is turned away before its message is parsed (the gRPC
core still bounds what it receives: HUMIAO_GRPC_MAX_RECEIVE_BYTES), and a message that
is not the protobuf the method expects is answered INVALID_ARGUMENT instead of an
INTERNAL error with a traceback in the log. Health and reflection stay open: they carry
no data. Servicers still authenticate each call themselves (to learn who calls); the
gate only keeps unknown callers from costing memory and CPU.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc

Metadata = Sequence[tuple[str, str | bytes]]
TokenCheck = Callable[[Metadata], Awaitable[bool]]

#: Services every caller may use: they carry no data of anybody's.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _Malformed:
    """Stands in for a request that could not be parsed."""


MALFORMED = _Malformed()


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # DecodeError and friends: answered by the wrapped behaviour
            return MALFORMED

    return parse


async def _refuse(context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                        "the request is not a valid protobuf message of this method")


def _guarded(handler: grpc.RpcMethodHandler,
             on_malformed: Callable[[], None]) -> grpc.RpcMethodHandler:
    """The same handler, with malformed requests answered INVALID_ARGUMENT."""

    async def _refuse_malformed(context: grpc.aio.ServicerContext) -> None:
        on_malformed()
        await _refuse(context)

    async def _checked(requests: AsyncIterator[Any],
                       context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async for request in requests:
            if request is MALFORMED:
                await _refuse_malformed(context)
            yield request

    parse = _tolerant(handler.request_deserializer)
    serialize = handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        inner_ss = handler.stream_stream

        def stream_stream(requests: AsyncIterator[Any], context: Any) -> Any:
            return inner_ss(_checked(requests, context), context)

        return grpc.stream_stream_rpc_method_handler(stream_stream, parse, serialize)
    if handler.request_streaming:
        inner_su = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: Any) -> Any:
            return await inner_su(_checked(requests, context), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, parse, serialize)
    if handler.response_streaming:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if request is MALFORMED:
                await _refuse_malformed(context)
            produced = inner_us(request, context)
            if hasattr(produced, "__aiter__"):
                async for response in produced:
                    yield response
            else:  # a servicer that writes with context.write and returns
                await produced

        return grpc.unary_stream_rpc_method_handler(unary_stream, parse, serialize)
    inner_uu = handler.unary_unary

    async def unary_unary(request: Any, context: Any) -> Any:
        if request is MALFORMED:
            await _refuse_malformed(context)
        return await inner_uu(request, context)

    return grpc.unary_unary_rpc_method_handler(unary_unary, parse, serialize)


def _turned_away(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape that reads nothing and answers UNAUTHENTICATED."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def refuse_stream(_request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield None  # pragma: no cover - abort raises

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse_stream)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse_stream)
    return grpc.unary_unary_rpc_method_handler(refuse)


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    """Token gate (when `known` is given) and malformed-message answer for every method
    outside OPEN_SERVICES."""

    def __init__(self, known: TokenCheck | None = None,
                 refusal: str = "a valid token is required (authorization: Bearer <token>)",
                 counted: Callable[[str, grpc.StatusCode], None] | None = None) -> None:
        self._known = known
        self._refusal = refusal
        #: Told (method, code) of each call the edge answers itself, for the calls metric.
        self._counted = counted or (lambda _method, _code: None)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method or ""
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        name = method.rsplit("/", 1)[-1]
        if self._known is not None and not await self._known(details.invocation_metadata or ()):
            self._counted(name, grpc.StatusCode.UNAUTHENTICATED)
            return _turned_away(handler, self._refusal)
        return _guarded(handler, lambda: self._counted(name, grpc.StatusCode.INVALID_ARGUMENT))


def bearer(metadata: Metadata) -> str:
    """The token of an `authorization: Bearer <token>` entry, or '' when there is none."""
    for key, value in metadata:
        if key.lower() == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


# --- TLS ---------------------------------------------------------------------------------


class EdgeConfigError(ValueError):
    """A TLS or listening setting that cannot work, naming the variable."""


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_credentials(
    cert_file: Path | None, key_file: Path | None, client_ca_file: Path | None
) -> grpc.ServerCredentials | None:
    """TLS for the listener when a certificate is configured; with a client CA, callers
    must present a certificate it signed (mutual TLS). None: plaintext."""
    if (cert_file is None) != (key_file is None):
        raise EdgeConfigError("HUMIAO_TLS_CERT_FILE and HUMIAO_TLS_KEY_FILE go together")
    if cert_file is None or key_file is None:
        if client_ca_file is not None:
            raise EdgeConfigError(
                "HUMIAO_TLS_CLIENT_CA_FILE needs HUMIAO_TLS_CERT_FILE and HUMIAO_TLS_KEY_FILE")
        return None
    ca = _read(client_ca_file, "HUMIAO_TLS_CLIENT_CA_FILE") if client_ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(key_file, "HUMIAO_TLS_KEY_FILE"), _read(cert_file, "HUMIAO_TLS_CERT_FILE"))],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


def channel_credentials(
    ca_file: str | None, cert_file: str | None = None, key_file: str | None = None
) -> grpc.ChannelCredentials:
    """Client side of server_credentials: trust `ca_file` (system roots when None) and
    present a client certificate for mutual TLS when both files are given."""
    if (cert_file is None) != (key_file is None):
        raise EdgeConfigError(
            "HUMIAO_TLS_CLIENT_CERT_FILE and HUMIAO_TLS_CLIENT_KEY_FILE go together")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(Path(ca_file), "HUMIAO_TLS_CA_FILE") if ca_file else None,
        private_key=_read(Path(key_file), "HUMIAO_TLS_CLIENT_KEY_FILE") if key_file else None,
        certificate_chain=(_read(Path(cert_file), "HUMIAO_TLS_CLIENT_CERT_FILE")
                           if cert_file else None),
    )


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EdgeConfigError(f"{variable}: cannot read {path} ({exc.strerror})") from None


#: Client-side TLS variables (the CLI and any other caller of ingest or the desk).
CLIENT_TLS_VARIABLES = ("HUMIAO_TLS", "HUMIAO_TLS_CA_FILE", "HUMIAO_TLS_CLIENT_CERT_FILE",
                        "HUMIAO_TLS_CLIENT_KEY_FILE")


def client_credentials(env: Mapping[str, str]) -> grpc.ChannelCredentials | None:
    """TLS credentials when HUMIAO_TLS=true or a CA file is named; None: plaintext (the
    local stack on 127.0.0.1)."""
    ca = env.get("HUMIAO_TLS_CA_FILE") or None
    wanted = env.get("HUMIAO_TLS", "").strip().lower() in ("1", "true", "yes") or ca
    if not wanted:
        return None
    return channel_credentials(ca, env.get("HUMIAO_TLS_CLIENT_CERT_FILE") or None,
                               env.get("HUMIAO_TLS_CLIENT_KEY_FILE") or None)


def open_channel(target: str, env: Mapping[str, str],
                 options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """A blocking channel to `target`, over TLS when the environment asks for it."""
    credentials = client_credentials(env)
    if credentials is None:
        return grpc.insecure_channel(target, options=list(options))
    return grpc.secure_channel(target, credentials, options=list(options))
