"""What can go wrong in a desk call, independent of gRPC.

The servicer raises these; one decorator (humiao.desk.api.rpc) turns each into
its status code, so every method reports the same failure the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DeskError(Exception):
    """Base of every expected failure; the message is safe to show the caller."""


class Unauthenticated(DeskError):
    pass


class PermissionDenied(DeskError):
    pass


class NotFound(DeskError):
    """Also what a caller gets for anything outside their regions (never reveal existence)."""


class FailedPrecondition(DeskError):
    pass


class ResourceExhausted(DeskError):
    """Past a per-staff limit (whole-ID reads per hour)."""


class Aborted(DeskError):
    """The alert changed since the caller read it (optimistic version check lost)."""


@dataclass(frozen=True)
class FieldProblem:
    field: str
    reason: str


class InvalidArgument(DeskError):
    """Bad request fields; carried to the client as google.rpc.BadRequest violations."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.field}: {p.reason}" for p in self.problems))


def invalid(field: str, reason: str) -> InvalidArgument:
    return InvalidArgument([FieldProblem(field, reason)])
