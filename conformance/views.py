"""What the app saw of a connection: the observer's record, read for a transcript.

A client can only report what reached the wire; the app's side of a tagged
connection is recorded inside the server process by :mod:`conformance.observer`
(one record per connection, written when the app's call returns) and, under
the probe app, by the app itself (:mod:`conformance.probe_app`).  This module
is the one place a check reads them:

- :func:`app_view`: the observer's record, as written, without its tag:
  ``received`` and ``sent`` (every event, as :func:`conformance.observer.summarise`
  reduced it), ``send_errors`` and ``app_error``; or ``missing``.  The probes
  keep it whole, because how the server spoke ASGI is what they record;
- :func:`app_outcome`: the deterministic part of that view, for the scenarios:
  how the connection ended for the app, without the count of messages, which
  depends on timing where the client cut the connection short;
- :func:`received_after_connect`: the events after ``websocket.connect``;
- :func:`app_report`: what the probe app reported of itself.

What the client saw is read elsewhere: :mod:`conformance.probes._support` and
:mod:`conformance.scenarios.helpers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .checks import OBSERVE_WAIT, Target

__all__ = ["app_outcome", "app_report", "app_view", "received_after_connect"]


async def app_view(target: Target, connection_id: str, within: float = OBSERVE_WAIT) -> dict[str, Any]:
    """The observer's record of the app on this connection, without its id; waits up to ``within`` seconds."""
    record = await target.observed(connection_id, within)
    return {key: value for key, value in record.items() if key != "id"}


def app_outcome(view: Mapping[str, Any], *, messages: bool = False) -> dict[str, Any]:
    """The deterministic part of an :func:`app_view`.

    - ``disconnect``: the ``websocket.disconnect`` event the app received (its
      code, and its reason where the server gives one), or None;
    - ``closed_with``: the code of the ``websocket.close`` the app sent, or None
      (also when the app tried, but its ``send()`` raised or never returned);
    - ``send_errors``: which events' ``send()`` raised, and what, without repeats;
    - ``app_error``: the exception the app raised, or None;
    - ``messages``, only when asked for: the ``websocket.receive`` events, as
      the key they carried and its length.

    Messages are left out unless asked for because where the client cut the
    connection short, how many went each way depends on timing.
    """
    if "missing" in view:
        return {"observed": False}
    disconnect = next((event for event in view["received"] if event["type"] == "websocket.disconnect"), None)
    closes = [event for event in view["sent"] if event["type"] == "websocket.close"]
    errors = {f"{error['event']}: {error['error']}" for error in view["send_errors"]}
    outcome: dict[str, Any] = {
        "disconnect": None if disconnect is None else _without_type(disconnect),
        "closed_with": closes[0].get("code") if closes else None,
        "send_errors": sorted(errors),
        "app_error": view["app_error"],
    }
    if messages:
        outcome["messages"] = [
            _without_type(event) for event in view["received"] if event["type"] == "websocket.receive"
        ]
    return outcome


def received_after_connect(view: Mapping[str, Any]) -> Any:
    """The events the app received after ``websocket.connect``, from an :func:`app_view`; or why there are none."""
    if "received" not in view:
        return view.get("missing", "no observation")
    received: list[dict[str, Any]] = view["received"]
    return [event for event in received if event.get("type") != "websocket.connect"]


async def app_report(target: Target, connection_id: str) -> dict[str, Any]:
    """What the probe app itself reported on this connection (see ``conformance.probe_app.report``)."""
    record = await target.observed(f"{connection_id}/probe")
    report: dict[str, Any] = record.get("probe", {"missing": "the probe app reported nothing"})
    return report


def _without_type(event: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.items() if key != "type"}
