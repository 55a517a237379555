"""The changes staff make to an alert, one call of the desk each: the queue's bulk
actions and the alert page's forms both come here."""

from __future__ import annotations

from starlette.datastructures import FormData

from humiao.api.desk.v1 import desk_pb2
from humiao.console.desk_client import DeskClient, DeskRefusal
from humiao.console.filters import RESOLUTIONS
from humiao.console.web import text_field

ACTIONS = ("acknowledge", "assign", "note", "resolve", "reopen")


def values_of(form: FormData) -> dict[str, str]:
    """What an action form carries, each field cut to its limit."""
    return {"note": text_field(form, "note"), "assignee": text_field(form, "assignee", 128),
            "resolution": text_field(form, "resolution", 40),
            "recovered": text_field(form, "recovered", 20)}


async def perform(desk: DeskClient, token: str, action: str, alert_id: str, version: int,
                  values: dict[str, str]) -> None:
    """`values`: note, assignee, resolution, recovered (yuan), as the forms name them."""
    note = values.get("note", "")
    if action == "acknowledge":
        await desk.call(token, "AcknowledgeAlert", desk_pb2.AcknowledgeAlertRequest(
            alert_id=alert_id, expected_version=version, note=note))
    elif action == "assign":
        await desk.call(token, "AssignAlert", desk_pb2.AssignAlertRequest(
            alert_id=alert_id, expected_version=version, assignee=values.get("assignee", ""),
            reason=note))
    elif action == "note":
        await desk.call(token, "AddNote", desk_pb2.AddNoteRequest(alert_id=alert_id, text=note))
    elif action == "resolve":
        await desk.call(token, "ResolveAlert", resolve_request(alert_id, version, values))
    elif action == "reopen":
        await desk.call(token, "ReopenAlert", desk_pb2.ReopenAlertRequest(
            alert_id=alert_id, expected_version=version, reason=note))
    else:
        raise DeskRefusal("invalid", "action: not one the console offers")


def yuan_to_fen(text: str) -> int:
    """'1,234.5' -> 123450; integer arithmetic only."""
    text = text.replace(",", "").strip()
    if not text:
        return 0
    whole, _, cents = text.partition(".")
    bad_cents = bool(cents) and (not cents.isdigit() or len(cents) > 2)
    if not whole.isdigit() or bad_cents or len(whole) > 12:
        raise ValueError("amount: yuan with at most two decimals")
    return int(whole) * 100 + int((cents + "00")[:2])


def resolve_request(alert_id: str, version: int, values: dict[str, str]
                    ) -> desk_pb2.ResolveAlertRequest:
    resolution = values["resolution"]
    if resolution not in RESOLUTIONS:
        raise DeskRefusal("invalid", "resolution: choose one")
    try:
        recovered = yuan_to_fen(values.get("recovered", ""))
    except ValueError as exc:
        raise DeskRefusal("invalid", str(exc)) from None
    return desk_pb2.ResolveAlertRequest(
        alert_id=alert_id, expected_version=version,
        resolution=resolution,
        amount_recovered_fen=recovered, note=values["note"])
