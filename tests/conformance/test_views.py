"""conformance.views: what the app saw, read from the observer's record of a real (in-memory) connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any, cast

from asgi_ws.servers import SERVERS
from conformance.checks import OBSERVE_HEADER, Target
from conformance.launcher import RunningServer
from conformance.observer import Observer
from conformance.views import app_outcome, app_report, app_view, received_after_connect

TAG = "c1-test"


async def _echo_twice_then_close(scope: Any, receive: Any, send: Any) -> None:
    """Accept, echo two messages, close with 4000, then send once more (which the test's send refuses)."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    for _ in range(2):
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"]})
    await send({"type": "websocket.close", "code": 4000})
    await send({"type": "websocket.send", "text": "after close"})


def _observe(path: Path) -> Target:
    """Run the app above under the observer with in-memory receive and send; a target that reads its record."""
    events = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "one"},
        {"type": "websocket.receive", "text": "three"},
    ]
    closed = False

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(message: Any) -> None:
        nonlocal closed
        if closed:
            raise OSError("the connection is closed")
        closed = message["type"] == "websocket.close"

    scope = {"type": "websocket", "path": "/echo", "headers": [(OBSERVE_HEADER.encode(), TAG.encode())]}
    with contextlib.suppress(OSError):  # the app's last send raises, as send() above makes it: the observer records it
        asyncio.run(Observer(_echo_twice_then_close, path)(scope, receive, send))
    return Target(server=cast(RunningServer, None), entry=SERVERS["uvicorn"], observations=path)


def test_app_view_is_the_record_without_its_tag(tmp_path: Path) -> None:
    view = asyncio.run(app_view(_observe(tmp_path / "observed.jsonl"), TAG))
    assert view["received"][1] == {"type": "websocket.receive", "text": 3}
    assert view["send_errors"] == [{"event": "websocket.send", "error": "OSError"}]
    assert view["app_error"] == "OSError"
    assert "id" not in view


def test_app_outcome_keeps_the_deterministic_part(tmp_path: Path) -> None:
    view = asyncio.run(app_view(_observe(tmp_path / "observed.jsonl"), TAG))
    assert app_outcome(view) == {
        "disconnect": None,
        "closed_with": 4000,
        "send_errors": ["websocket.send: OSError"],
        "app_error": "OSError",
    }
    assert app_outcome(view, messages=True)["messages"] == [{"text": 3}, {"text": 5}]


def test_received_after_connect_leaves_the_connect_event_out(tmp_path: Path) -> None:
    view = asyncio.run(app_view(_observe(tmp_path / "observed.jsonl"), TAG))
    assert received_after_connect(view) == [
        {"type": "websocket.receive", "text": 3},
        {"type": "websocket.receive", "text": 5},
    ]


def test_a_connection_without_a_record_says_so(tmp_path: Path) -> None:
    target = _observe(tmp_path / "observed.jsonl")
    view = asyncio.run(app_view(target, "c2-never-connected", within=0.0))
    assert app_outcome(view) == {"observed": False}
    assert received_after_connect(view) == "the app wrote no observation for this connection"


def test_app_report_is_what_the_probe_app_wrote_of_itself(tmp_path: Path) -> None:
    target = _observe(tmp_path / "observed.jsonl")
    with (tmp_path / "observed.jsonl").open("a") as file:
        file.write(json.dumps({"id": f"{TAG}/probe", "probe": {"accept": "returned"}}) + "\n")
    assert asyncio.run(app_report(target, TAG)) == {"accept": "returned"}
